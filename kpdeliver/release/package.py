"""Package a validated dataset as a release, in memory: every file's bytes, the images to copy,
the counts and the sign-off. Writing it anywhere is `publish`'s job.

What a release holds (docs/release.md): coco/<split>.json, yolo/{data.yaml,images/,labels/},
index/*.parquet, qa/{findings,quarantine,annotators}.parquet, qa/report.html, qa/signoff.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from kpdeliver.assign.assignments import split_images
from kpdeliver.codecs import coco, yolo_pose
from kpdeliver.config import ClientConfig
from kpdeliver.findings import FINDINGS_SCHEMA
from kpdeliver.model import Dataset, parquet_bytes
from kpdeliver.release.layout import SIGNOFF, content_digest, sha256_hex
from kpdeliver.release.signoff import Collected, Counts, Verdict, signoff

# index/images.parquet status of an image held back whole because a label on it is held back for its own
# findings (qa/quarantine.parquet says which): no image ships with one of its people missing from its labels
HELD_WITH_LABEL = "held_back_with_label"


@dataclass
class ReleasePlan:
    """Everything a release holds, before it is written anywhere."""

    files: dict[str, bytes]  # release-relative path -> bytes
    copies: list[tuple[str, str, str]]  # (source key, release path, sha256)
    counts: Counts
    verdict: Verdict
    tables: dict[str, pa.Table] = field(
        default_factory=dict, repr=False
    )  # the index/*.parquet files, as tables


def normalise_for_delivery(dataset: Dataset) -> Dataset:
    """Delivered labels follow COCO strictly: v in {0,1,2}, v=0 points at (0, 0)."""
    kps = dataset.instances.keypoints.copy()
    v = np.rint(kps[..., 2])
    kps[..., 2] = v
    kps[v == 0, :2] = 0.0
    return dataset.replace(instances=replace(dataset.instances, keypoints=kps))


def images_index(
    dataset: Dataset, split: np.ndarray, status: np.ndarray, n_inst: np.ndarray, rejected: pa.Table
) -> pa.Table:
    im = dataset.images
    main = pa.table(
        {
            "image_id": pa.array(im.id, pa.int64()),
            "file_name": pa.array(im.file_name.tolist(), pa.string()),
            "sha256": pa.array(im.sha256.tolist(), pa.string()),
            "width": im.width,
            "height": im.height,
            "split": pa.array(split.tolist(), pa.string()),
            "n_instances": n_inst.astype(np.int64),
            "status": pa.array(status.tolist(), pa.string()),
            "exif_orientation": np.asarray(im.orientation).astype(
                np.int64
            ),  # 1 = as stored; 5-8: width/height are swapped
        }
    )
    if rejected.num_rows == 0:
        return main
    extra = pa.table(
        {
            "image_id": pa.nulls(rejected.num_rows, pa.int64()),
            "file_name": rejected["file_name"],
            "sha256": pa.nulls(rejected.num_rows, pa.string()),
            "width": pa.nulls(rejected.num_rows, pa.int64()),
            "height": pa.nulls(rejected.num_rows, pa.int64()),
            "split": pa.nulls(rejected.num_rows, pa.string()),
            "n_instances": pa.array(np.zeros(rejected.num_rows, np.int64)),
            "status": rejected["status"],
            "exif_orientation": pa.nulls(rejected.num_rows, pa.int64()),
        }
    )
    return pa.concat_tables([main, extra.cast(main.schema)])


def annotations_index(delivered: Dataset, split: np.ndarray) -> pa.Table:
    """One row per delivered instance, readable without the manifest: the image's file name and
    split beside the ids, `keypoints` [K, 3] as COCO triplets, `visibility` [K] as integers, and the
    keypoint names (in column order) and schema in the Parquet schema's metadata."""
    table = delivered.instances.to_arrow()
    row = delivered.image_index()
    known = row >= 0
    names = np.full(len(row), None, dtype=object)
    splits = np.full(len(row), None, dtype=object)
    names[known] = delivered.images.file_name[row[known]]
    splits[known] = split[row[known]]
    k = delivered.schema.num_keypoints
    v = delivered.instances.keypoints[..., 2].astype(np.int8).reshape(-1)
    visibility = (
        pa.FixedSizeListArray.from_arrays(pa.array(v, pa.int8()), k)
        if len(row)
        else pa.array([], pa.list_(pa.int8(), k))
    )
    table = table.add_column(2, "file_name", pa.array(names.tolist(), pa.string()))
    table = table.add_column(3, "split", pa.array(splits.tolist(), pa.string()))
    table = table.append_column("visibility", visibility)
    return table.replace_schema_metadata(
        {
            "kpdeliver.schema": delivered.schema.name,
            "kpdeliver.keypoint_names": orjson.dumps(list(delivered.schema.keypoints)),
            "kpdeliver.keypoints": "keypoints[i] = [x, y, v] of keypoint_names[i]; visibility[i] = v "
            "(0 not labeled, 1 labeled not visible, 2 visible)",
        }
    )


def _split_and_count(delivered: Dataset, config: ClientConfig) -> tuple[np.ndarray, np.ndarray]:
    """Each delivered image's split (a video's frames together) and number of delivered instances."""
    im, row = delivered.images, delivered.image_index()
    has_track = np.zeros(len(im), bool)
    has_track[row[(delivered.instances.track_id >= 0) & (row >= 0)]] = True
    n_inst = np.bincount(row[row >= 0], minlength=len(im)) if len(im) else np.zeros(0, np.int64)
    return split_images(im.file_name.tolist(), has_track, config.splits), n_inst


def _image_copies(im, split: np.ndarray) -> list[tuple[str, str, str]]:
    """(source key, `yolo/images/<split>/<stem><ext>`, sha256) of each delivered image."""
    stems = yolo_pose.unique_stems(im.file_name.tolist())
    return [
        (src, f"yolo/images/{s}/{stem}{PurePosixPath(name).suffix}", sha)
        for src, name, stem, s, sha in zip(
            im.source.tolist(), im.file_name.tolist(), stems, split.tolist(), im.sha256.tolist()
        )
    ]


def image_status(images, delivered: Dataset, quarantine: pa.Table) -> np.ndarray:
    """Each batch image's status in index/images.parquet: delivered, unlabeled (delivered without a
    label), held_back_with_label (a label on it is held back for its own findings) or quarantined."""
    status = np.where(np.isin(images.id, delivered.images.id), "delivered", "quarantined").astype(object)
    own = quarantine.filter(pc.not_equal(quarantine["checks"], "image"))["image_id"].drop_null().to_numpy()
    status[(status == "quarantined") & np.isin(images.id, own)] = HELD_WITH_LABEL
    status[(status == "delivered") & ~np.isin(images.id, delivered.instances.image_id)] = "unlabeled"
    return status


def labels_by_annotator(annotators: list[str], reviewed: Dataset, quarantine: pa.Table) -> dict[str, int]:
    """Labels collected from each configured annotator: those QA saw, plus those held back at decode."""
    out = {}
    for name in annotators:
        seen = reviewed.instances.id[reviewed.instances.annotator == name]
        held = quarantine.filter(pc.equal(quarantine["annotator"], name))["annotation_id"]
        held = held.to_numpy(zero_copy_only=False)
        out[name] = len(seen) + int((~np.isin(held, seen)).sum())
    return out


def package_release(
    *,
    config: ClientConfig,
    dataset: Dataset,
    delivered: Dataset,
    findings: pa.Table,
    quarantine: pa.Table,
    image_quarantined: np.ndarray,
    ingest_rejected: pa.Table,
    assignments: pa.Table,
    annotators: pa.Table | None = None,
    extra_files: dict[str, bytes] | None = None,
    instances_in: int,
    review_only: int = 0,
    reviewed: Dataset | None = None,
    rework_rate: float | None = None,
) -> ReleasePlan:
    """Build every release file in memory (images become copy instructions). `reviewed`: every label
    collected (review-only ones included; default `dataset`), for the sign-off's per-annotator rule."""
    delivered = normalise_for_delivery(delivered)
    im = delivered.images
    split, n_inst = _split_and_count(delivered, config)

    files, split_names = _label_files(delivered, split, config)
    copies = _image_copies(im, split) if config.yolo.copy_images else []
    tables = {
        **_index_tables(dataset, delivered, split, n_inst, quarantine, ingest_rejected),
        "index/assignments.parquet": assignments,
        "qa/findings.parquet": findings.cast(FINDINGS_SCHEMA),
        "qa/quarantine.parquet": quarantine,
        "qa/annotators.parquet": annotators,
    }
    files.update(
        {path: parquet_bytes(t) for path, t in tables.items() if t is not None} | (extra_files or {})
    )

    counts = _counts(
        dataset,
        delivered,
        findings,
        quarantine,
        image_quarantined,
        ingest_rejected,
        split,
        split_names,
        instances_in=instances_in,
        review_only=review_only,
    )
    collected = _collected(config, assignments, reviewed or dataset, quarantine, n_inst)
    verdict = _verdict(config, counts, findings, annotators, delivered, collected, rework_rate)
    return ReleasePlan(
        files=files,
        copies=copies,
        counts=counts,
        verdict=verdict,
        tables={p: t for p, t in tables.items() if p.startswith("index/")},
    )


def _verdict(
    config: ClientConfig,
    counts: Counts,
    findings: pa.Table,
    annotators: pa.Table | None,
    delivered: Dataset,
    collected: Collected,
    rework_rate: float | None,
) -> Verdict:
    """The sign-off of the release: its rules judged on the counts, findings and labels per annotator."""
    names, per_name = np.unique(delivered.instances.annotator.astype(str), return_counts=True)
    return signoff(
        config.qa,
        counts,
        findings,
        annotators,
        dict(zip(names.tolist(), per_name.tolist())),
        collected,
        rework_rate,
    )


def _label_files(
    delivered: Dataset, split: np.ndarray, config: ClientConfig
) -> tuple[dict[str, bytes], list[str]]:
    """The COCO file of each split and the YOLO tree's files; the names of the splits used."""
    files: dict[str, bytes] = {}
    split_names = [s for s in config.splits.ratios() if (split == s).any()] or ["train"]
    for s in split_names:
        part = delivered.subset_images(split == s)
        files[f"coco/{s}.json"] = coco.encode(part)
    yolo_files = yolo_pose.encode(
        delivered, split_of=split, outside=config.yolo.outside.value, one_to_one=True
    )
    files.update({f"yolo/{k}": v for k, v in yolo_files.items()})
    return files, split_names


def _index_tables(
    dataset: Dataset,
    delivered: Dataset,
    split: np.ndarray,
    n_inst: np.ndarray,
    quarantine: pa.Table,
    ingest_rejected: pa.Table,
) -> dict[str, pa.Table]:
    """index/images.parquet (every image listed, with its split, status and instance count) and
    index/annotations.parquet (the delivered instances)."""
    all_im, im = dataset.images, delivered.images
    status = image_status(all_im, delivered, quarantine)
    split_all = np.full(len(all_im), None, dtype=object)
    split_all[np.isin(all_im.id, im.id)] = split
    n_all = np.zeros(len(all_im), np.int64)
    n_all[np.isin(all_im.id, im.id)] = n_inst
    return {
        "index/images.parquet": images_index(dataset, split_all, status, n_all, ingest_rejected),
        "index/annotations.parquet": annotations_index(delivered, split),
    }


def _collected(
    config: ClientConfig, assignments: pa.Table, reviewed: Dataset, quarantine: pa.Table, n_inst: np.ndarray
) -> Collected:
    """The labels collected from each annotator given images, and the number of labelled images."""
    assigned = set(assignments["annotator"].to_pylist()) if "annotator" in assignments.column_names else set()
    judged = [a for a in config.annotators if a in assigned]  # one given no image owes no label
    return Collected(
        labels_by_annotator(judged, reviewed, quarantine), labeled_images=int((n_inst > 0).sum())
    )


def _counts(
    dataset: Dataset,
    delivered: Dataset,
    findings: pa.Table,
    quarantine: pa.Table,
    image_quarantined: np.ndarray,
    ingest_rejected: pa.Table,
    split: np.ndarray,
    split_names: list[str],
    *,
    instances_in: int,
    review_only: int,
) -> Counts:
    """The release's counts (qa/signoff.json, the manifest)."""
    delivered_ids = delivered.instances.id
    errs = findings.filter(pc.equal(findings["severity"], "error"))
    return Counts(
        images_listed=len(dataset.images) + ingest_rejected.num_rows,
        images_delivered=len(delivered.images),
        images_quarantined=int(image_quarantined.sum()),
        images_rejected_at_ingest=ingest_rejected.num_rows,
        instances_in=instances_in,
        instances_delivered=len(delivered_ids),
        instances_quarantined=int(quarantine.num_rows),
        instances_review_only=review_only,
        splits={s: int((split == s).sum()) for s in split_names},
        delivered_error_findings=int(
            np.isin(errs["annotation_id"].drop_null().to_numpy(), delivered_ids).sum()
        ),
        findings=findings.num_rows,
    )


def finish_plan(plan: ReleasePlan, report_html: str) -> None:
    """Add the report and the sign-off. The sign-off carries the digest of every other file."""
    plan.files["qa/report.html"] = report_html.encode()
    listing = {p: sha256_hex(b) for p, b in plan.files.items()} | {p: sha for _, p, sha in plan.copies}
    digest = content_digest(listing)
    plan.files[SIGNOFF] = orjson.dumps(
        {**plan.verdict.to_dict(), "content_sha256": digest},
        option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
    )
