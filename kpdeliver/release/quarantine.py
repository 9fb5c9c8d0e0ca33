"""Hold back what must not be delivered: instances (or whole images) with error findings, and the
items refused at decode. Each held-back instance keeps its raw form in `qa/quarantine.parquet`."""
from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from kpdeliver.config import QuarantineScope
from kpdeliver.findings import error_annotation_ids
from kpdeliver.model import Dataset

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


def _instance_raw(dataset: Dataset, idx: np.ndarray) -> list[str]:
    ins = dataset.instances
    return [
        orjson.dumps({"id": int(ins.id[i]), "image_id": int(ins.image_id[i]), "category_id": int(ins.category_id[i]),
                      "bbox": ins.bbox[i].tolist(), "keypoints": ins.keypoints[i].reshape(-1).tolist(),
                      "num_keypoints": int(ins.num_keypoints[i]), "annotator": ins.annotator[i]},
                     option=orjson.OPT_SERIALIZE_NUMPY).decode()
        for i in idx.tolist()
    ]


def _located(rejected: pa.Table) -> np.ndarray:
    """Batch images of labels held back at decode (gold labels are never delivered: they hold nothing)."""
    labels = rejected.filter(pc.and_(pc.is_valid(rejected["image_id"]), pc.not_equal(rejected["annotator"], "gold")))
    return labels["image_id"].to_numpy()


def _why(dataset: Dataset, idx: np.ndarray, errs: pa.Table, row: np.ndarray) -> tuple[list[str], list[str]]:
    """The checks and reasons of each held-back instance (`idx`): its error findings, else why it goes."""
    ins = dataset.instances
    by_ann: dict[int, list[tuple[str, str]]] = {}
    for a, c, m in zip(errs["annotation_id"].to_pylist(), errs["check"].to_pylist(), errs["message"].to_pylist()):
        if a is not None:
            by_ann.setdefault(a, []).append((c, m))
    checks, reasons = [], []
    for i in idx.tolist():
        hits = by_ann.get(int(ins.id[i]), [])
        if not hits and row[i] < 0:
            hits = [("schema.unknown_image",
                     f"image id {ins.extra.get('source_image_id', ins.image_id)[i]} is not in the batch")]
        elif not hits:
            hits = [("image", "held back with its image: the image has a held-back label or an image error, "
                              "and ships whole or not at all")]
        checks.append(",".join(sorted({c for c, _ in hits})))
        reasons.append(" | ".join(m for _, m in hits))
    return checks, reasons


def hold_back(
    dataset: Dataset, findings: pa.Table, rejected: pa.Table, scope: QuarantineScope
) -> tuple[Dataset, pa.Table, np.ndarray]:
    """Hold back instances (or whole images) with error findings.

    Returns the delivered dataset, the quarantine table (decode-time rejects included, each
    with its raw form) and a mask of the images held back whole: those with a held-back label (any
    scope), and with an image-level error (image scope).
    """
    ins = dataset.instances
    bad_ids = error_annotation_ids(findings)
    errs = findings.filter(pc.equal(findings["severity"], "error"))
    bad = np.isin(ins.id, bad_ids) | (ins.image_id < 0) | ~np.isin(ins.image_id, dataset.images.id)
    # an image never ships with one of its people held back (a detector would learn them as background):
    # it is held back whole, with every label on it; image scope also holds images with image-level errors
    held_images = np.union1d(ins.image_id[bad], _located(rejected))
    if scope is QuarantineScope.image:
        held_images = np.union1d(held_images, errs["image_id"].drop_null().to_numpy())
    image_err = np.isin(dataset.images.id, held_images)
    bad |= np.isin(ins.image_id, dataset.images.id[image_err])
    idx = np.flatnonzero(bad)

    row = dataset.image_index()
    names = np.where(row >= 0, dataset.images.file_name[np.clip(row, 0, None)] if len(dataset.images) else None, None)
    source = ins.extra.get("source", np.full(len(ins), "", dtype=object))
    checks, reasons = _why(dataset, idx, errs, row)
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
    name_of = dict(zip(dataset.images.id.tolist(), dataset.images.file_name.tolist()))
    from_decode = pa.table(
        {
            "annotation_id": rejected["annotation_id"], "image_id": rejected["image_id"],
            "file_name": pa.array([name_of.get(i) for i in rejected["image_id"].to_pylist()], pa.string()),
            "annotator": rejected["annotator"],
            "source": rejected["source"], "checks": rejected["check"], "reasons": rejected["reason"], "raw": rejected["raw"],
        },
        schema=QUARANTINE_SCHEMA,
    )
    keep_images = dataset.subset_images(~image_err)
    delivered = keep_images.subset_instances(~np.isin(keep_images.instances.id, ins.id[idx]))
    return delivered, pa.concat_tables([quarantined, from_decode]), image_err
