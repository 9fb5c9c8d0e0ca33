"""Collect annotators' exports from a batch and merge them into one canonical dataset.

Every export under `annotations/<annotator>/` is decoded (format sniffed from its bytes), its
images are matched to the ingested batch by file name, and its instances are re-keyed onto the
batch's image ids. The export's own ids and file stay in audit columns (`source_id`,
`source_image_id`, `source`) so every finding can point back at the annotator's file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from posixpath import basename, dirname

import numpy as np
import pyarrow as pa

from kpdeliver.codecs import REJECTED_SCHEMA, CodecError, registry
from kpdeliver.codecs.label_studio.paths import image_path
from kpdeliver.codecs.registry import decode_bytes
from kpdeliver.collect.categories import merge_categories
from kpdeliver.collect.matching import BatchImages, rejected_onto_batch, rekey_onto_batch
from kpdeliver.collect.projects import decode_store_project, split_store_projects
from kpdeliver.collect.superseded import latest_rounds, supersede_reworked, supersede_rows
from kpdeliver.collect.yolo_store import decode_tree, split_by_tree
from kpdeliver.findings import concat_findings, findings_for
from kpdeliver.model import NONE, Dataset, Instances, concat_instances
from kpdeliver.progress import tracked
from kpdeliver.schema import KeypointSchema
from kpdeliver.storage import ObjectStore, StorageError
from kpdeliver.storage.keys import unsafe_reasons

ANNOTATIONS_PREFIX = "annotations/"
GOLD_PREFIX = "gold/"


@dataclass
class CollectResult:
    dataset: Dataset  # every annotator's instances on the batch's images
    gold: Dataset | None
    findings: pa.Table
    rejected: pa.Table  # items held back at decode, with their raw form
    files: dict[str, str]  # export key -> sha256 of its bytes

    @property
    def everything(self) -> Dataset:
        """Annotators' and gold instances together (what the row rules validate)."""
        if self.gold is None:
            return self.dataset
        both = concat_instances(
            [self.dataset.instances, self.gold.instances], self.dataset.schema.num_keypoints
        )
        return self.dataset.replace(instances=both)


def _image_paths(decoded_images, location: str) -> tuple[np.ndarray, pa.Table]:
    """The path each export image reference denotes (Label Studio server forms and storage URLs
    mapped back, see codecs/label_studio/paths.py), and `ingest.unsafe_key` findings for those
    that are absolute or climb out after decoding; those become ''."""
    refs = [str(n) for n in decoded_images.file_name.tolist()]
    paths = [image_path(r) for r in refs]
    reasons = unsafe_reasons(paths)
    bad = np.flatnonzero(reasons != "")
    messages = [
        f"file_name {refs[i]!r} under {location}"
        + (f" (the image {paths[i]!r})" if paths[i] != refs[i] else "")
        + f" {reasons[i]}; refused"
        for i in bad.tolist()
    ]
    names = [refs[i] for i in bad.tolist()]
    out = np.asarray(paths, dtype=object)
    out[bad] = ""
    return out, findings_for("ingest.unsafe_key", message=messages, file_name=names, source=names, n=len(bad))


def _decode_jobs(
    store: ObjectStore,
    prefix: str,
    annotator: str,
    schema: KeypointSchema,
    category: str | None,
    lookup: BatchImages,
    files: dict[str, str],
) -> list[tuple[str, Callable]]:
    """(key, decode) for every export under `prefix`, sorted by key: each YOLO tree (a folder with
    data.yaml) and each store project as one, then each loose file (with the format metadata
    saved beside it)."""
    keys = [k for k in store.list(prefix) if not k.rsplit("/", 1)[-1].startswith(".")]
    trees, loose = split_by_tree(keys)
    projects, loose = split_store_projects(loose, partial(_head, store))
    metadata, loose = _metadata_by_folder(store, loose, files)
    jobs = [
        (root, partial(decode_tree, store.get, root, trees[root], schema=schema, batch=lookup, files=files))
        for root in trees
    ]
    jobs += [
        (
            marker,
            partial(
                decode_store_project,
                partial(_hashed, store, files),
                marker,
                project,
                schema=schema,
                annotator=annotator,
                category=category,
            ),
        )
        for marker, project in projects.items()
    ]
    jobs += [
        (
            key,
            partial(
                _decode_file,
                store,
                key,
                schema=schema,
                annotator=annotator,
                category=category,
                sizes=lookup,
                files=files,
                metadata=metadata.get(dirname(key)),
            ),
        )
        for key in loose
    ]
    return sorted(jobs, key=lambda job: job[0])


def _decode_prefix(
    store: ObjectStore,
    prefix: str,
    annotator: str,
    schema: KeypointSchema,
    batch: Dataset,
    category: str | None = None,
    lookup: BatchImages | None = None,
):
    """Every export under `prefix`: each file, and each YOLO tree (a folder with data.yaml) as one."""
    lookup = lookup if lookup is not None else BatchImages(batch)
    files: dict[str, str]
    parts, findings, rejected, files = [], [], [], {}
    for key, decode in _decode_jobs(store, prefix, annotator, schema, category, lookup, files):
        try:
            decoded = decode()
        except (CodecError, StorageError, ValueError) as e:
            findings.append(
                findings_for(
                    "collect.unreadable_file",
                    annotator=annotator,
                    source=key,
                    n=1,
                    message=f"{key}: export of {annotator} not used: {e}",
                )
            )
            continue
        paths, unsafe = _image_paths(decoded.dataset.images, key)
        if unsafe.num_rows:  # such an image never matches a batch image: its instances stay unplaced
            findings.append(unsafe)
        images = decoded.dataset.images.take(np.flatnonzero(paths != ""))
        images.file_name = paths[paths != ""]
        decoded.dataset = decoded.dataset.replace(images=images)
        instances = rekey_onto_batch(decoded.dataset, batch, source=key)
        instances.annotator[:] = annotator
        parts.append((instances, decoded.dataset.categories))
        findings.append(decoded.findings)
        rejected.append(rejected_onto_batch(decoded.rejected, decoded.dataset, batch))
    return parts, findings, rejected, files


def _head(store: ObjectStore, key: str) -> bytes:
    with store.open(key) as fh:
        return fh.read(registry.SNIFF_BYTES)


def _hashed(store: ObjectStore, files: dict[str, str], key: str) -> bytes:
    data = store.get(key)
    files[key] = hashlib.sha256(data).hexdigest()
    return data


def _decode_file(
    store: ObjectStore,
    key: str,
    *,
    schema: KeypointSchema,
    annotator: str,
    category: str | None,
    sizes: BatchImages,
    files: dict[str, str],
    metadata: bytes | None,
):
    data = _hashed(store, files, key)
    return decode_bytes(
        key,
        data,
        schema=schema,
        annotator=annotator,
        source=key,
        category=category,
        sizes=sizes,
        metadata=metadata,
    )


def _metadata_by_folder(
    store: ObjectStore, keys: list[str], files: dict[str, str]
) -> tuple[dict[str, bytes], list[str]]:
    """A format's own metadata among the exports (a Label Studio labeling config saved beside its
    JSON export): by folder, given to the exports beside it, never read as annotations. Returns
    (folder -> bytes, the other keys)."""
    found, rest = {}, []
    for key in keys:
        if key.lower().endswith(".xml"):
            try:
                with store.open(key) as fh:
                    kind = registry.sniff_bytes(basename(key), fh.read(registry.SNIFF_BYTES))
                if registry.is_metadata(kind):
                    found[dirname(key)] = store.get(key)
                    files[key] = hashlib.sha256(found[dirname(key)]).hexdigest()
                    continue
            except StorageError:  # read again by the decode, which reports it
                pass
        rest.append(key)
    return found, rest


def _unique_ids(instances: Instances) -> Instances:
    """Keep the exports' annotation ids when they are unique across the merge and all >= 1;
    renumber all (1..n, stable order) when they collide or one is 0 (COCOeval reads a matched
    id 0 as unmatched). The originals stay in `source_id`."""
    if len(np.unique(instances.id)) != len(instances.id) or (instances.id < 1).any():
        instances.id = np.arange(1, len(instances) + 1, dtype=np.int64)
    return instances


def collect_exports(
    store: ObjectStore, batch: Dataset, annotators: list[str], *, category: str | None = None
) -> CollectResult:
    """Decode and merge every annotator's exports (and the batch's gold labels, if any); `category`:
    the keypoint category delivered, read from COCO exports that hold several."""
    schema = batch.schema
    parts, findings, rejected, files = [], [], [], {}
    present = {k[len(ANNOTATIONS_PREFIX) :].split("/", 1)[0] for k in store.list(ANNOTATIONS_PREFIX)}
    for who in sorted(present - set(annotators)):
        findings.append(
            findings_for(
                "collect.unreadable_file",
                annotator=who,
                source=f"{ANNOTATIONS_PREFIX}{who}/",
                n=1,
                message=f"{ANNOTATIONS_PREFIX}{who}/: annotator {who!r} is not in the client config; exports not used",
            )
        )
    lookup = BatchImages(batch)
    for annotator in tracked("collect", annotators):  # one annotator's exports at a time
        p, f, r, fl = _decode_prefix(
            store, f"{ANNOTATIONS_PREFIX}{annotator}/", annotator, schema, batch, category, lookup
        )
        parts += p
        findings += f
        rejected += r
        files.update(fl)
    gold_parts, gf, gr, gfiles = _decode_prefix(store, GOLD_PREFIX, "gold", schema, batch, category, lookup)
    merged, categories = merge_categories(parts + gold_parts, batch.categories)
    parts, gold_parts = merged[: len(parts)], merged[len(parts) :]
    instances = concat_instances(parts, schema.num_keypoints)
    latest = latest_rounds(instances)  # reworked labels replace the annotator's earlier ones (superseded.py)
    instances = _unique_ids(supersede_reworked(instances, latest))
    dataset = batch.replace(instances=instances, categories=categories)
    gold = None
    if gold_parts:
        gold_ins = concat_instances(gold_parts, schema.num_keypoints)
        if np.isin(gold_ins.id, instances.id).any() or len(np.unique(gold_ins.id)) != len(gold_ins):
            # one id space for the run: gold ids that collide are renumbered after the annotators'
            gold_ins.id = np.arange(1, len(gold_ins) + 1, dtype=np.int64) + (
                int(instances.id.max()) if len(instances) else 0
            )
        gold = dataset.replace(instances=gold_ins)
    rejected_all = pa.concat_tables([REJECTED_SCHEMA.empty_table(), *rejected, *gr])
    ids = dict(zip(batch.images.file_name.tolist(), batch.images.id.tolist()))
    return CollectResult(
        dataset,
        gold,
        supersede_rows(concat_findings(findings + gf), latest, ids),
        supersede_rows(rejected_all, latest, ids),
        {**files, **gfiles},
    )


def assignment_findings(dataset: Dataset, assignments: pa.Table) -> pa.Table:
    """`collect.unassigned_image`: instances an annotator delivered for an image not assigned to them."""
    ins = dataset.instances
    if not len(ins) or assignments.num_rows == 0:
        return concat_findings([])
    assigned = {
        (i, a) for i, a in zip(assignments["image_id"].to_pylist(), assignments["annotator"].to_pylist())
    }
    pairs = list(zip(ins.image_id.tolist(), ins.annotator.tolist()))
    bad = np.fromiter(((i, a) not in assigned and i != NONE for i, a in pairs), bool, len(pairs))
    if not bad.any():
        return concat_findings([])
    row = dataset.image_index()[bad]
    names = dataset.images.file_name[row]
    return findings_for(
        "collect.unassigned_image",
        image_id=ins.image_id[bad],
        annotation_id=ins.id[bad],
        annotator=ins.annotator[bad],
        file_name=names,
        message=[
            f"{a} labeled {f}, which was not assigned to them" for a, f in zip(ins.annotator[bad], names)
        ],
    )
