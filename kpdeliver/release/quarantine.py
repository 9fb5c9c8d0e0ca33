"""What a release delivers: per image the trusted labels (`delivery_candidates`), less what must not
be delivered: instances (or whole images) with error findings, and the items refused at decode.
Each held-back instance keeps its raw form in `qa/quarantine.parquet`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from kpdeliver.collect.exports import CollectResult
from kpdeliver.config import QuarantineScope
from kpdeliver.findings import error_annotation_ids
from kpdeliver.model import Dataset, concat_instances

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
        orjson.dumps(
            {
                "id": int(ins.id[i]),
                "image_id": int(ins.image_id[i]),
                "category_id": int(ins.category_id[i]),
                "bbox": ins.bbox[i].tolist(),
                "keypoints": ins.keypoints[i].reshape(-1).tolist(),
                "num_keypoints": int(ins.num_keypoints[i]),
                "annotator": ins.annotator[i],
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        ).decode()
        for i in idx.tolist()
    ]


def _located(rejected: pa.Table) -> np.ndarray:
    """Batch images of labels held back at decode (gold labels are never delivered: they hold nothing)."""
    labels = rejected.filter(
        pc.and_(pc.is_valid(rejected["image_id"]), pc.not_equal(rejected["annotator"], "gold"))
    )
    return labels["image_id"].to_numpy()


def _why(dataset: Dataset, idx: np.ndarray, errs: pa.Table, row: np.ndarray) -> tuple[list[str], list[str]]:
    """The checks and reasons of each held-back instance (`idx`): its error findings, else why it goes."""
    ins = dataset.instances
    by_ann: dict[int, list[tuple[str, str]]] = {}
    for a, c, m in zip(
        errs["annotation_id"].to_pylist(), errs["check"].to_pylist(), errs["message"].to_pylist()
    ):
        if a is not None:
            by_ann.setdefault(a, []).append((c, m))
    checks, reasons = [], []
    for i in idx.tolist():
        hits = by_ann.get(int(ins.id[i]), [])
        if not hits and row[i] < 0:
            hits = [
                (
                    "schema.unknown_image",
                    f"image id {ins.extra.get('source_image_id', ins.image_id)[i]} is not in the batch",
                )
            ]
        elif not hits:
            hits = [
                (
                    "image",
                    "held back with its image: the image has a held-back label or an image error, "
                    "and ships whole or not at all",
                )
            ]
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
    names = np.where(
        row >= 0, dataset.images.file_name[np.clip(row, 0, None)] if len(dataset.images) else None, None
    )
    source = ins.extra.get("source", np.full(len(ins), "", dtype=object))
    checks, reasons = _why(dataset, idx, errs, row)
    quarantined = pa.table(
        {
            "annotation_id": ins.id[idx],
            "image_id": ins.image_id[idx],
            "file_name": pa.array(names[idx].tolist(), pa.string()),
            "annotator": pa.array(ins.annotator[idx].tolist(), pa.string()),
            "source": pa.array(source[idx].tolist(), pa.string()),
            "checks": pa.array(checks, pa.string()),
            "reasons": pa.array(reasons, pa.string()),
            "raw": pa.array(_instance_raw(dataset, idx), pa.string()),
        },
        schema=QUARANTINE_SCHEMA,
    )
    name_of = dict(zip(dataset.images.id.tolist(), dataset.images.file_name.tolist()))
    from_decode = pa.table(
        {
            "annotation_id": rejected["annotation_id"],
            "image_id": rejected["image_id"],
            "file_name": pa.array([name_of.get(i) for i in rejected["image_id"].to_pylist()], pa.string()),
            "annotator": rejected["annotator"],
            "source": rejected["source"],
            "checks": rejected["check"],
            "reasons": rejected["reason"],
            "raw": rejected["raw"],
        },
        schema=QUARANTINE_SCHEMA,
    )
    keep_images = dataset.subset_images(~image_err)
    delivered = keep_images.subset_instances(~np.isin(keep_images.instances.id, ins.id[idx]))
    return delivered, pa.concat_tables([quarantined, from_decode]), image_err


@dataclass(frozen=True)
class Quarantined:
    """What a run may deliver and what it holds back."""

    candidates: Dataset  # the instances up for delivery (review-only overlap labels left out)
    reviewed: Dataset  # every label QA saw, annotators' and gold (the report's pictures)
    delivered: Dataset
    table: pa.Table  # qa/quarantine.parquet: every held-back instance with its checks and raw form
    images: np.ndarray  # mask over the candidates' images held back whole (quarantine scope: image)
    review_only: int  # overlap labels kept for agreement only
    instances_in: int  # every instance collected, gold and held back at decode included


def quarantine_delivery(
    collected: CollectResult, assignments: pa.Table, findings: pa.Table, scope: QuarantineScope
) -> Quarantined:
    """A delivery's candidates (delivery_candidates), with the instances (or whole images, by
    `scope`) that have error findings held back."""
    candidates, review_only = delivery_candidates(collected, assignments)
    delivered, table, images = hold_back(candidates, findings, collected.rejected, scope)
    gold = len(collected.gold.instances) if collected.gold is not None else 0
    return Quarantined(
        candidates,
        collected.everything,
        delivered,
        table,
        images,
        review_only,
        instances_in=len(collected.dataset.instances) + collected.rejected.num_rows + gold,
    )


def delivery_candidates(collected: CollectResult, assignments: pa.Table) -> tuple[Dataset, int]:
    """The instances a release may deliver, and how many collected ones are review-only.

    Per image: the gold labels where the batch has them (they are the trusted ones), else the
    primary annotator's (or, for an image without a primary owner, its first annotator's).
    Second opinions on overlap images and annotators' labels of gold images feed QA only, so a
    person is never delivered twice.
    """
    ds, ins = collected.dataset, collected.dataset.instances
    gold = collected.gold.instances if collected.gold is not None else None
    gold_images = np.unique(gold.image_id[gold.image_id >= 0]) if gold is not None else np.zeros(0, np.int64)
    prim = assignments.filter(pc.equal(assignments["role"], "primary"))
    owner = dict(zip(prim["image_id"].to_pylist(), prim["annotator"].to_pylist()))
    first: dict[int, str] = {}
    for i, a in zip(ins.image_id.tolist(), ins.annotator.tolist()):
        first.setdefault(i, a)
    labeled = {(i, a) for i, a in zip(ins.image_id.tolist(), ins.annotator.tolist())}
    chosen = {i: owner[i] if (i, owner.get(i)) in labeled else a for i, a in first.items()}
    keep = np.fromiter(
        (chosen[i] == a for i, a in zip(ins.image_id.tolist(), ins.annotator.tolist())), bool, len(ins)
    )
    keep &= ~np.isin(ins.image_id, gold_images)
    parts = [ins.take(np.flatnonzero(keep))]
    if gold is not None:
        parts.append(gold.take(np.flatnonzero(gold.image_id >= 0)))
    return ds.replace(instances=concat_instances(parts, ds.schema.num_keypoints)), int((~keep).sum())
