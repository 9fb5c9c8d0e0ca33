"""Package a validated dataset as a release and publish it atomically.

Release layout (DESIGN.md), under `<releases>/<client>/<dataset>/v<NNNN>/`:
    coco/<split>.json, yolo/{data.yaml,images/,labels/}, index/*.parquet,
    qa/{findings,quarantine,annotators}.parquet, qa/report.html, qa/signoff.json,
    manifest.json (every other file with size and sha256; written LAST).

Publication protocol (works the same on a folder and on S3):
1. every file is staged under `.staging/<client>/<dataset>/<fingerprint>/`, then a `STAGED`
   marker listing them is written; a killed run can resume from a complete staging area;
2. a version is claimed with a conditional put of `<client>/<dataset>/.claims/v<NNNN>`
   holding the run's fingerprint; a lost claim moves on to the next number;
3. staged files are copied (server-side on S3) into `v<NNNN>/`;
4. `v<NNNN>/manifest.json` is written with a conditional put. Only then is the version
   visible: readers list versions by their manifests, so a run that dies earlier leaves no
   visible release, and a version, once it has a manifest, is never written again.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import PurePosixPath

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from kpdeliver import __version__
from kpdeliver.codecs import coco, yolo_pose
from kpdeliver.config import ClientConfig, QuarantineScope
from kpdeliver.findings import FINDINGS_SCHEMA, error_annotation_ids
from kpdeliver.model import Dataset, parquet_bytes
from kpdeliver.storage import ObjectStore, join_key

QUARANTINE_SCHEMA = pa.schema(
    [
        ("annotation_id", pa.int64()),
        ("image_id", pa.int64()),
        ("file_name", pa.string()),
        ("annotator", pa.string()),
        ("source", pa.string()),
        ("checks", pa.string()),
        ("reasons", pa.string()),
        ("raw", pa.string()),
    ]
)
_VERSION_RE = re.compile(r"^v(\d{4,})/manifest\.json$")


class PublishError(RuntimeError):
    """Publication could not complete; nothing partial is visible."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def input_fingerprint(config: ClientConfig, image_shas: list[str], export_shas: dict[str, str]) -> str:
    """What makes two runs the same delivery: config, image bytes, export bytes, code version."""
    doc = {
        "config": config.model_dump(mode="json", exclude={"source", "releases", "storage"}),
        "images": sorted(image_shas),
        "exports": sorted(export_shas.items()),
        "kpdeliver": __version__,
    }
    return sha256_hex(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))


# --------------------------------------------------------------------------- quarantine


def _instance_raw(dataset: Dataset, idx: np.ndarray) -> list[str]:
    ins = dataset.instances
    return [
        orjson.dumps({"id": int(ins.id[i]), "image_id": int(ins.image_id[i]), "category_id": int(ins.category_id[i]),
                      "bbox": ins.bbox[i].tolist(), "keypoints": ins.keypoints[i].reshape(-1).tolist(),
                      "num_keypoints": int(ins.num_keypoints[i]), "annotator": ins.annotator[i]},
                     option=orjson.OPT_SERIALIZE_NUMPY).decode()
        for i in idx.tolist()
    ]


def split_quarantine(
    dataset: Dataset, findings: pa.Table, rejected: pa.Table, scope: QuarantineScope
) -> tuple[Dataset, pa.Table, np.ndarray]:
    """Hold back instances (or whole images) with error findings.

    Returns the delivered dataset, the quarantine table (decode-time rejects included, each
    with its raw form) and a mask of quarantined images (image scope only).
    """
    ins = dataset.instances
    bad_ids = error_annotation_ids(findings)
    errs = findings.filter(pc.equal(findings["severity"], "error"))
    image_err = np.zeros(len(dataset.images), bool)
    bad = np.isin(ins.id, bad_ids) | (ins.image_id < 0) | ~np.isin(ins.image_id, dataset.images.id)
    if scope is QuarantineScope.image:
        err_images = np.union1d(ins.image_id[bad], errs["image_id"].drop_null().to_numpy())
        image_err = np.isin(dataset.images.id, err_images)
        bad |= np.isin(ins.image_id, dataset.images.id[image_err])
    idx = np.flatnonzero(bad)

    by_ann: dict[int, list[tuple[str, str]]] = {}
    for a, c, m in zip(errs["annotation_id"].to_pylist(), errs["check"].to_pylist(), errs["message"].to_pylist()):
        if a is not None:
            by_ann.setdefault(a, []).append((c, m))
    row = dataset.image_index()
    names = np.where(row >= 0, dataset.images.file_name[np.clip(row, 0, None)] if len(dataset.images) else None, None)
    source = ins.extra.get("source", np.full(len(ins), "", dtype=object))
    checks, reasons = [], []
    for i in idx.tolist():
        hits = by_ann.get(int(ins.id[i]), [])
        if not hits:
            if row[i] < 0:
                hits = [("schema.unknown_image", f"image id {ins.extra.get('source_image_id', ins.image_id)[i]} is not in the batch")]
            else:
                hits = [("image", "held back with its image (quarantine scope: image)")]
        checks.append(",".join(sorted({c for c, _ in hits})))
        reasons.append(" | ".join(m for _, m in hits))
    quarantined = pa.table(
        {
            "annotation_id": ins.id[idx], "image_id": ins.image_id[idx],
            "file_name": pa.array(names[idx].tolist(), pa.string()),
            "annotator": pa.array(ins.annotator[idx].tolist(), pa.string()),
            "source": pa.array(source[idx].tolist(), pa.string()),
            "checks": pa.array(checks, pa.string()), "reasons": pa.array(reasons, pa.string()),
            "raw": pa.array(_instance_raw(dataset, idx), pa.string()),
        },
        schema=QUARANTINE_SCHEMA,
    )
    from_decode = pa.table(
        {
            "annotation_id": rejected["annotation_id"], "image_id": pa.nulls(rejected.num_rows, pa.int64()),
            "file_name": pa.nulls(rejected.num_rows, pa.string()), "annotator": rejected["annotator"],
            "source": rejected["source"], "checks": rejected["check"], "reasons": rejected["reason"], "raw": rejected["raw"],
        },
        schema=QUARANTINE_SCHEMA,
    )
    keep_images = dataset.subset_images(~image_err) if scope is QuarantineScope.image else dataset
    delivered = keep_images.subset_instances(~np.isin(keep_images.instances.id, ins.id[idx]))
    return delivered, pa.concat_tables([quarantined, from_decode]), image_err


def normalise_for_delivery(dataset: Dataset) -> Dataset:
    """Delivered labels follow COCO strictly: v in {0,1,2}, v=0 points at (0, 0)."""
    kps = dataset.instances.keypoints.copy()
    v = np.rint(kps[..., 2])
    kps[..., 2] = v
    kps[v == 0, :2] = 0.0
    ins = dataset.instances
    ins = type(ins)(**{**{f: getattr(ins, f) for f in ins.__dataclass_fields__ if f not in ("keypoints", "extra")},
                       "keypoints": kps}, extra=ins.extra)
    return dataset.replace(instances=ins)


# --------------------------------------------------------------------------- packaging


@dataclass
class ReleasePlan:
    """Everything a release holds, before it is written anywhere."""

    files: dict[str, bytes]  # release-relative path -> bytes
    copies: list[tuple[str, str, str]]  # (source key, release path, sha256)
    counts: dict
    verdict: dict


def images_index(dataset: Dataset, split: np.ndarray, status: np.ndarray, n_inst: np.ndarray, rejected: pa.Table) -> pa.Table:
    im = dataset.images
    main = pa.table({
        "image_id": pa.array(im.id, pa.int64()), "file_name": pa.array(im.file_name.tolist(), pa.string()),
        "sha256": pa.array(im.sha256.tolist(), pa.string()), "width": im.width, "height": im.height,
        "split": pa.array(split.tolist(), pa.string()), "n_instances": n_inst.astype(np.int64),
        "status": pa.array(status.tolist(), pa.string()),
    })
    if rejected.num_rows == 0:
        return main
    extra = pa.table({
        "image_id": pa.nulls(rejected.num_rows, pa.int64()), "file_name": rejected["file_name"],
        "sha256": pa.nulls(rejected.num_rows, pa.string()), "width": pa.nulls(rejected.num_rows, pa.int64()),
        "height": pa.nulls(rejected.num_rows, pa.int64()), "split": pa.nulls(rejected.num_rows, pa.string()),
        "n_instances": pa.array(np.zeros(rejected.num_rows, np.int64)), "status": rejected["status"],
    })
    return pa.concat_tables([main, extra.cast(main.schema)])


def signoff(config: ClientConfig, counts: dict, findings: pa.Table, annotators: pa.Table | None) -> dict:
    """Verdict against the client's thresholds, with every measured value that decided it."""
    delivered_errors = counts["delivered_error_findings"]
    q_frac = counts["instances_quarantined"] / max(counts["instances_in"], 1)
    measured = {"delivered_error_findings": delivered_errors, "quarantined_fraction": round(q_frac, 6)}
    reasons = []
    if delivered_errors > config.qa.max_error_findings:
        reasons.append(f"{delivered_errors} error findings on delivered items (max {config.qa.max_error_findings})")
    if q_frac > config.qa.max_quarantined_fraction:
        reasons.append(f"{q_frac:.1%} of instances quarantined (max {config.qa.max_quarantined_fraction:.1%})")
    if annotators is not None and annotators.num_rows and "agreement_oks" in annotators.column_names:
        vals = [v for v in annotators["agreement_oks"].to_pylist() if v is not None]
        if vals:
            mean_oks = float(np.mean(vals))
            measured["mean_agreement_oks"] = round(mean_oks, 6)
            if mean_oks < config.qa.min_mean_oks:
                reasons.append(f"mean agreement OKS {mean_oks:.3f} below {config.qa.min_mean_oks}")
    by_check = {}
    for c, s in zip(findings["check"].to_pylist(), findings["severity"].to_pylist()):
        by_check.setdefault(c, {"error": 0, "warning": 0, "info": 0})[s] += 1
    return {
        "verdict": "pass" if not reasons else "fail",
        "reasons": reasons,
        "thresholds": config.qa.model_dump(mode="json"),
        "measured": measured,
        "findings_by_check": dict(sorted(by_check.items())),
    }


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
) -> ReleasePlan:
    """Build every release file in memory (images become copy instructions)."""
    delivered = normalise_for_delivery(delivered)
    im = delivered.images
    has_track = np.zeros(len(im), bool)
    row = delivered.image_index()
    tracked = delivered.instances.track_id >= 0
    has_track[row[tracked & (row >= 0)]] = True
    from kpdeliver.assign.assignments import split_images

    split = split_images(im.file_name.tolist(), has_track, config.splits)
    n_inst = np.bincount(row[row >= 0], minlength=len(im)) if len(im) else np.zeros(0, np.int64)

    files: dict[str, bytes] = {}
    split_names = [s for s in config.splits.ratios() if (split == s).any()] or ["train"]
    for s in split_names:
        part = delivered.subset_images(split == s)
        files[f"coco/{s}.json"] = coco.encode(part)
    yolo_files = yolo_pose.encode(delivered, split_of=split, outside=config.yolo.outside.value)
    files.update({f"yolo/{k}": v for k, v in yolo_files.items()})

    copies = []
    if config.yolo.copy_images:
        for src, name, s, sha in zip(im.source.tolist(), im.file_name.tolist(), split.tolist(), im.sha256.tolist()):
            ext = PurePosixPath(name).suffix
            copies.append((src, f"yolo/images/{s}/{yolo_pose.yolo_stem(name)}{ext}", sha))

    all_im = dataset.images
    status = np.where(np.isin(all_im.id, im.id), "delivered", "quarantined").astype(object)
    labeled = np.isin(all_im.id, delivered.instances.image_id)
    status[(status == "delivered") & ~labeled] = "unlabeled"
    split_all = np.full(len(all_im), None, dtype=object)
    split_all[np.isin(all_im.id, im.id)] = split
    n_all = np.zeros(len(all_im), np.int64)
    n_all[np.isin(all_im.id, im.id)] = n_inst
    files["index/images.parquet"] = parquet_bytes(images_index(dataset, split_all, status, n_all, ingest_rejected))
    files["index/annotations.parquet"] = parquet_bytes(delivered.instances.to_arrow())
    files["index/assignments.parquet"] = parquet_bytes(assignments)
    files["qa/findings.parquet"] = parquet_bytes(findings.cast(FINDINGS_SCHEMA))
    files["qa/quarantine.parquet"] = parquet_bytes(quarantine)
    if annotators is not None:
        files["qa/annotators.parquet"] = parquet_bytes(annotators)
    files.update(extra_files or {})

    delivered_ids = delivered.instances.id
    errs = findings.filter(pc.equal(findings["severity"], "error"))
    counts = {
        "images_listed": len(dataset.images) + ingest_rejected.num_rows,
        "images_delivered": int(len(im)),
        "images_quarantined": int(image_quarantined.sum()),
        "images_rejected_at_ingest": ingest_rejected.num_rows,
        "instances_in": instances_in,
        "instances_delivered": int(len(delivered_ids)),
        "instances_quarantined": int(quarantine.num_rows),
        "instances_review_only": review_only,
        "splits": {s: int((split == s).sum()) for s in split_names},
        "delivered_error_findings": int(np.isin(errs["annotation_id"].drop_null().to_numpy(), delivered_ids).sum()),
        "findings": findings.num_rows,
    }
    verdict = signoff(config, counts, findings, annotators)
    return ReleasePlan(files=files, copies=copies, counts=counts, verdict=verdict)


def finish_plan(plan: ReleasePlan, report_html: str) -> None:
    """Add the report and the sign-off. The sign-off carries the digest of every other file."""
    plan.files["qa/report.html"] = report_html.encode()
    listing = {p: sha256_hex(b) for p, b in plan.files.items()} | {p: sha for _, p, sha in plan.copies}
    digest = sha256_hex(orjson.dumps(listing, option=orjson.OPT_SORT_KEYS))
    plan.files["qa/signoff.json"] = orjson.dumps({**plan.verdict, "content_sha256": digest}, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


# --------------------------------------------------------------------------- staging & publishing


def staging_prefix(client: str, dataset: str, fingerprint: str) -> str:
    return join_key(".staging", client, dataset, fingerprint[:24])


def stage(plan: ReleasePlan, *, release_store: ObjectStore, source_store: ObjectStore, prefix: str, progress=None) -> dict:
    """Write every file of the plan under `prefix`, then the STAGED marker (the file list)."""
    listing: dict[str, dict] = {}
    for path, data in sorted(plan.files.items()):
        release_store.put(join_key(prefix, path), data)
        listing[path] = {"size": len(data), "sha256": sha256_hex(data)}
        if progress:
            progress()
    for src_key, path, sha in plan.copies:
        dst = join_key(prefix, path)
        release_store.copy_from(source_store, src_key, dst)
        copied = release_store.sha256(dst)
        if copied != sha:  # the source changed after ingest hashed it: never publish other bytes
            raise PublishError(f"{source_store.location(src_key)} changed after ingest (sha256 {copied[:12]}… "
                               f"instead of {sha[:12]}…); run the delivery again to re-ingest it")
        listing[path] = {"size": release_store.size(dst), "sha256": sha}
        if progress:
            progress()
    marker = {"files": dict(sorted(listing.items())), "counts": plan.counts, "verdict": plan.verdict["verdict"],
              "qa": {k: plan.verdict[k] for k in ("reasons", "findings_by_check")}}
    release_store.put(join_key(prefix, "STAGED"), orjson.dumps(marker, option=orjson.OPT_SORT_KEYS))
    return marker


def read_staged(store: ObjectStore, prefix: str) -> dict | None:
    key = join_key(prefix, "STAGED")
    return orjson.loads(store.get(key)) if store.exists(key) else None


def published_versions(store: ObjectStore, client: str, dataset: str) -> list[int]:
    base = join_key(client, dataset) + "/"
    out = []
    for key in store.list(base):
        m = _VERSION_RE.match(key[len(base):])
        if m:
            out.append(int(m.group(1)))
    return sorted(out)


def read_manifest(store: ObjectStore, client: str, dataset: str, version: int) -> dict:
    return orjson.loads(store.get(join_key(client, dataset, f"v{version:04d}", "manifest.json")))


def find_duplicate(store: ObjectStore, client: str, dataset: str, fingerprint: str) -> int | None:
    """The published version built from exactly these inputs, if any (newest first)."""
    for v in reversed(published_versions(store, client, dataset)):
        if read_manifest(store, client, dataset, v).get("fingerprint") == fingerprint:
            return v
    return None


@dataclass
class Published:
    version: int
    prefix: str  # release folder key, relative to the release store root
    location: str  # full URL or path
    manifest: dict
    resumed: bool = False


def publish(
    *, store: ObjectStore, client: str, dataset: str, fingerprint: str, staged_prefix: str, manifest_fields: dict,
    max_attempts: int = 50,
) -> Published:
    """Claim the next free version, copy the staged files in, write the manifest last."""
    marker = read_staged(store, staged_prefix)
    if marker is None:
        raise PublishError(f"nothing staged at {store.location(staged_prefix)}")
    claims = join_key(client, dataset, ".claims")
    taken = published_versions(store, client, dataset)
    claimed = sorted(int(k.rsplit("/v", 1)[-1]) for k in store.list(claims + "/") if re.search(r"/v\d{4,}$", k))
    # resume our own unfinished claim first (a run killed after claiming)
    candidates = [v for v in claimed if v not in taken and store.get(join_key(claims, f"v{v:04d}")).decode() == fingerprint]
    version = candidates[0] if candidates else max(taken + claimed + [0]) + 1
    for _ in range(max_attempts):
        claim_key = join_key(claims, f"v{version:04d}")
        mine = store.put_if_absent(claim_key, fingerprint.encode()) or store.get(claim_key).decode() == fingerprint
        prefix = join_key(client, dataset, f"v{version:04d}")
        if mine and not store.exists(join_key(prefix, "manifest.json")):
            for path in marker["files"]:
                store.copy(join_key(staged_prefix, path), join_key(prefix, path))
            manifest = {
                "kpdeliver": __version__, "client": client, "dataset": dataset, "version": version,
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "fingerprint": fingerprint, **manifest_fields,
                "counts": marker["counts"], "verdict": marker["verdict"], "qa": marker.get("qa", {}),
                "files": marker["files"],
            }
            body = orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
            if store.put_if_absent(join_key(prefix, "manifest.json"), body):
                return Published(version, prefix, store.location(prefix), manifest, resumed=bool(candidates))
        if mine:
            existing = read_manifest(store, client, dataset, version)
            if existing.get("fingerprint") == fingerprint:  # a twin run of the same inputs won
                return Published(version, prefix, store.location(prefix), existing, resumed=True)
        version += 1
    raise PublishError(f"could not claim a version for {client}/{dataset} after {max_attempts} attempts")


def clean_staging(store: ObjectStore, prefix: str) -> None:
    store.delete_prefix(prefix + "/")


def rebuild_catalog(store: ObjectStore, client: str) -> pa.Table:
    """`<client>/catalog.parquet`: one row per published release, rebuilt from the manifests
    (so it is always consistent with what is published, whatever runs raced)."""
    rows = []
    for key in store.list(client + "/"):
        parts = key.split("/")
        if len(parts) == 4 and _VERSION_RE.match("/".join(parts[2:])):
            raw = store.get(key)
            m = orjson.loads(raw)
            c = m.get("counts", {})
            rows.append({
                "client": client, "dataset": parts[1], "version": int(m["version"]), "created_at": m.get("created_at"),
                "location": store.location("/".join(parts[:3])), "fingerprint": m.get("fingerprint"),
                "verdict": m.get("verdict"), "images": c.get("images_delivered"), "instances": c.get("instances_delivered"),
                "quarantined": c.get("instances_quarantined"), "manifest_sha256": sha256_hex(raw),
            })
    table = pa.Table.from_pylist(rows) if rows else pa.table({"client": pa.array([], pa.string())})
    if rows:
        table = table.sort_by([("dataset", "ascending"), ("version", "ascending")])
    store.put(join_key(client, "catalog.parquet"), parquet_bytes(table))
    return table
