"""Release notes: what changed since the previous release of the same client dataset, from the two
releases' `index/images.parquet` and `index/annotations.parquet` (written as `qa/changes.parquet`).

Images are matched by file name (changed: other bytes, i.e. another sha256); instances by
annotation id (changed: other image, bbox, keypoints or annotator). With no previous release every
delivered image and instance is `added`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CHANGES_SCHEMA = pa.schema(
    [
        ("item", pa.string()),  # image | instance
        ("change", pa.string()),  # added | removed | changed
        ("image_id", pa.int64()),
        ("annotation_id", pa.int64()),
        ("file_name", pa.string()),
        ("detail", pa.string()),
    ]
)
_COMPARED = ("image_id", "bbox", "keypoints", "annotator")


@dataclass(frozen=True)
class ReleaseTables:
    """The two index tables of one release."""

    images: pa.Table
    annotations: pa.Table


@dataclass(frozen=True)
class PreviousRelease:
    """The newest published release of a dataset, which a new release's notes compare with."""

    version: int
    tables: ReleaseTables


def _delivered_images(images: pa.Table) -> pa.Table:
    keep = pc.and_(
        pc.is_valid(images["image_id"]), pc.is_in(images["status"], pa.array(["delivered", "unlabeled"]))
    )
    return images.filter(keep)


def _rows(item: str, change: str, image_id, annotation_id, file_name, detail) -> pa.Table:
    n = len(image_id)
    return pa.table(
        {
            "item": pa.array([item] * n, pa.string()),
            "change": pa.array([change] * n, pa.string()),
            "image_id": pa.array(image_id, pa.int64()),
            "annotation_id": pa.array(annotation_id, pa.int64()),
            "file_name": pa.array(file_name, pa.string()),
            "detail": pa.array(detail, pa.string()),
        },
        schema=CHANGES_SCHEMA,
    )


def release_changes(current: ReleaseTables, previous: ReleaseTables | None) -> pa.Table:
    """One row per image or instance added, removed or changed (CHANGES_SCHEMA)."""
    cur_im = _delivered_images(current.images)
    prev_im = _delivered_images(previous.images) if previous is not None else cur_im.slice(0, 0)
    prev_ann = previous.annotations if previous is not None else current.annotations.slice(0, 0)
    cur_ann = current.annotations
    names = dict(zip(cur_im["image_id"].to_pylist(), cur_im["file_name"].to_pylist()))
    old_names = dict(zip(prev_im["image_id"].to_pylist(), prev_im["file_name"].to_pylist()))

    parts = _image_changes(cur_im, prev_im)
    cur_ids, old_ids = cur_ann["annotation_id"].to_numpy(), prev_ann["annotation_id"].to_numpy()
    parts += _instance_changes(cur_ann, prev_ann, cur_ids, old_ids, names, old_names)
    both = np.intersect1d(cur_ids, old_ids)
    if len(both):
        parts.append(_changed_instances(cur_ann, prev_ann, cur_ids, old_ids, both, names))
    return pa.concat_tables(parts)


def _image_changes(cur_im: pa.Table, prev_im: pa.Table) -> list[pa.Table]:
    """Images added, removed and changed (other bytes, i.e. another sha256), matched by file name."""
    parts = []
    cur_sha = dict(
        zip(
            cur_im["file_name"].to_pylist(), zip(cur_im["image_id"].to_pylist(), cur_im["sha256"].to_pylist())
        )
    )
    old_sha = dict(
        zip(
            prev_im["file_name"].to_pylist(),
            zip(prev_im["image_id"].to_pylist(), prev_im["sha256"].to_pylist()),
        )
    )
    for change, chosen, source in (
        ("added", sorted(set(cur_sha) - set(old_sha)), cur_sha),
        ("removed", sorted(set(old_sha) - set(cur_sha)), old_sha),
        (
            "changed",
            sorted(n for n in set(cur_sha) & set(old_sha) if cur_sha[n][1] != old_sha[n][1]),
            cur_sha,
        ),
    ):
        detail = {"added": "new image", "removed": "no longer delivered", "changed": "image bytes differ"}[
            change
        ]
        parts.append(
            _rows(
                "image",
                change,
                [source[n][0] for n in chosen],
                [None] * len(chosen),
                chosen,
                [detail] * len(chosen),
            )
        )
    return parts


def _instance_changes(
    cur_ann: pa.Table,
    prev_ann: pa.Table,
    cur_ids: np.ndarray,
    old_ids: np.ndarray,
    names: dict,
    old_names: dict,
) -> list[pa.Table]:
    """Instances added and removed, matched by annotation id."""
    parts = []
    added, removed = ~np.isin(cur_ids, old_ids), ~np.isin(old_ids, cur_ids)
    for change, table, mask, lookup in (
        ("added", cur_ann, added, names),
        ("removed", prev_ann, removed, old_names),
    ):
        rows = table.filter(pa.array(mask))
        image_ids = rows["image_id"].to_pylist()
        parts.append(
            _rows(
                "instance",
                change,
                image_ids,
                rows["annotation_id"].to_pylist(),
                [lookup.get(i) for i in image_ids],
                [f"labeled by {a}" if a else "" for a in rows["annotator"].to_pylist()],
            )
        )
    return parts


def _changed_instances(
    cur_ann: pa.Table,
    prev_ann: pa.Table,
    cur_ids: np.ndarray,
    old_ids: np.ndarray,
    both: np.ndarray,
    names: dict,
) -> pa.Table:
    """Instances in both releases whose image, bbox, keypoints or annotator changed, naming what did."""
    a = cur_ann.filter(pa.array(np.isin(cur_ids, both))).sort_by("annotation_id")
    b = prev_ann.filter(pa.array(np.isin(old_ids, both))).sort_by("annotation_id")
    what = []
    for col in _COMPARED:
        if col in a.column_names and col in b.column_names:
            what.append((col, _differs(a[col], b[col])))
    changed = np.zeros(a.num_rows, bool)
    for _, d in what:
        changed |= d
    idx = np.flatnonzero(changed)
    details = [", ".join(col.replace("_", " ") for col, d in what if d[i]) + " changed" for i in idx.tolist()]
    image_ids = a["image_id"].take(pa.array(idx)).to_pylist()
    return _rows(
        "instance",
        "changed",
        image_ids,
        a["annotation_id"].take(pa.array(idx)).to_pylist(),
        [names.get(i) for i in image_ids],
        details,
    )


def _differs(a: pa.ChunkedArray, b: pa.ChunkedArray) -> np.ndarray:
    """Row-wise inequality of two equally long columns (list columns compared to 0.01 px)."""
    if pa.types.is_list(a.type) or pa.types.is_fixed_size_list(a.type):
        x = np.asarray(a.to_pylist(), dtype=np.float64).reshape(len(a), -1)
        y = np.asarray(b.to_pylist(), dtype=np.float64).reshape(len(b), -1)
        if x.shape != y.shape:
            return np.ones(len(a), bool)
        return np.asarray(~np.isclose(x, y, atol=0.01, equal_nan=True).all(axis=1))
    one_missing = pc.xor(pc.is_null(a), pc.is_null(b))  # both missing: the same
    return np.asarray(pc.fill_null(pc.not_equal(a, b), one_missing).to_pylist(), bool)


def change_counts(changes: pa.Table) -> dict[str, dict[str, int]]:
    """{item: {change: count}} with every combination present (zeros included)."""
    out = {item: dict.fromkeys(("added", "removed", "changed"), 0) for item in ("image", "instance")}
    for item, change in zip(changes["item"].to_pylist(), changes["change"].to_pylist()):
        if item in out:  # rework rows (item `rework`) are counted by the report's rework section
            out[item][change] += 1
    return out
