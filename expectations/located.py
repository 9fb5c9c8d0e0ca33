"""Failing rows of the suites -> located findings (image, annotation, keypoint, annotator,
measured value, one-line message), a whole check at a time.

Only failing rows reach this module, so formatting one message per row is proportional to the
problems found, not to the dataset.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from expectations.frames import image_sizes
from kpdeliver.findings import concat_findings, findings_for
from kpdeliver.model import Dataset

# One check's failing rows of one table, with the severity it reports at:
# (check id, table "points" | "instances" | "images", row ids, severity).
Failing = tuple[str, str, np.ndarray, str]


def _fmt(a: np.ndarray) -> list[str]:
    return [f"{x:g}" for x in a.tolist()]


def _outside(x: np.ndarray, lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
    """How far x lies outside [lo, hi] (0 inside)."""
    return np.maximum(np.maximum(lo - x, x - hi), 0)


_FRAME_MESSAGES = {
    "bounds.visible_outside_image": ("visible (v=2)", ""),
    "bounds.occluded_far_outside": ("occluded (v=1)", " beyond the allowed margin"),
    "bounds.occluded_outside_image": (
        "occluded (v=1)",
        " (allowed within the margin; YOLO export clips or drops it)",
    ),
}


def _where(dataset: Dataset, rows: np.ndarray, source: str) -> tuple[list[str], Any]:
    """Where each instance came from. Collected instances carry their export's file and own
    ids (audit columns), so a finding points into the annotator's file, not only our ids."""
    ins = dataset.instances
    ids, image_ids = ins.id[rows].tolist(), ins.image_id[rows].tolist()
    if "source" not in ins.extra:
        return [f"annotation {a} (image {i})" for a, i in zip(ids, image_ids)], source
    files = ins.extra["source"][rows]
    src_ids = ins.extra.get("source_id", ins.id)[rows].tolist()
    src_img = ins.extra.get("source_image_id", ins.image_id)[rows].tolist()
    where = [
        f"{f}: annotation {s} (its image id {si})" + (f", delivered as annotation {a}" if a != s else "")
        for f, s, si, a in zip(files.tolist(), src_ids, src_img, ids)
    ]
    return where, files


def point_findings(dataset: Dataset, check: str, pt: np.ndarray, *, severity: str, source: str) -> pa.Table:
    """Findings for failing keypoints, `pt` = instance row * K + keypoint index."""
    ins, schema = dataset.instances, dataset.schema
    k = schema.num_keypoints
    pt = np.unique(pt)  # a point failing on two sides is one finding
    row, kp = pt // k, pt % k
    x, y, v = (ins.keypoints.reshape(-1, 3)[pt, j] for j in range(3))
    img, w_all, h_all = image_sizes(dataset)
    w, h = w_all[row], h_all[row]
    names = np.asarray(schema.keypoints, dtype=object)[kp]
    where, source = _where(dataset, row, source)
    where = [f"{w}, keypoint '{n}'" for w, n in zip(where, names.tolist())]
    xs, ys, vs, ws, hs = _fmt(x), _fmt(y), _fmt(v), _fmt(w), _fmt(h)

    if check == "schema.non_finite":
        value, what = None, [f"x, y, v = {a}, {b}, {c} is not finite" for a, b, c in zip(xs, ys, vs)]
    elif check == "visibility.invalid_flag":
        value, what = v, [f"visibility flag {c} is not 0, 1 or 2" for c in vs]
    elif check == "visibility.unlabeled_with_coords":
        value = np.maximum(np.abs(x), np.abs(y))
        what = [f"not labeled (v=0) but written at ({a}, {b}) instead of (0, 0)" for a, b in zip(xs, ys)]
    elif check == "visibility.labeled_at_origin":
        value, what = v, [f"labeled (v={c}) exactly at (0, 0); probably an unlabeled point" for c in vs]
    elif check in _FRAME_MESSAGES:
        value = np.maximum(_outside(x, 0, w), _outside(y, 0, h))
        kind, tail = _FRAME_MESSAGES[check]
        what = [
            f"{kind} at ({a}, {b}) lies outside the {c}x{d} image{tail}" for a, b, c, d in zip(xs, ys, ws, hs)
        ]
    elif check == "bounds.keypoint_outside_bbox":
        bx, by, bw, bh = ins.bbox[row].T
        value = np.maximum(_outside(x, bx, bx + bw), _outside(y, by, by + bh))
        box = [f"[{a}, {b}, {c}, {d}]" for a, b, c, d in zip(_fmt(bx), _fmt(by), _fmt(bw), _fmt(bh))]
        what = [
            f"labeled (v={c}) at ({a}, {b}) lies outside its box {e} beyond the tolerance"
            for a, b, c, e in zip(xs, ys, vs, box)
        ]
    else:
        raise KeyError(f"no point locator for check {check!r}")
    return findings_for(
        check,
        severity=severity,
        image_id=ins.image_id[row],
        file_name=_file_names(dataset, img[row]),
        annotation_id=ins.id[row],
        keypoint=names,
        annotator=_annotators(dataset, row),
        value=value,
        message=[f"{a}: {b}" for a, b in zip(where, what)],
        source=source,
        n=len(pt),
    )


def instance_findings(
    dataset: Dataset, check: str, rows: np.ndarray, *, severity: str, source: str
) -> pa.Table:
    """Findings for failing instances (rows of `dataset.instances`)."""
    ins = dataset.instances
    rows = np.unique(rows)
    img, w_all, h_all = image_sizes(dataset)
    ids, image_ids = ins.id[rows], ins.image_id[rows]
    where, source = _where(dataset, rows, source)
    if check == "schema.duplicate_id":
        value, what = ids, ["annotation id is used by more than one instance"] * len(rows)
    elif check == "schema.unknown_category":
        value = ins.category_id[rows]
        what = [f"category_id {c} is not a declared category" for c in value.tolist()]
    elif check == "schema.unknown_image":
        value = ins.extra.get("source_image_id", ins.image_id)[rows]
        what = [f"image id {i} names no image of the batch" for i in value.tolist()]
    elif check == "visibility.num_keypoints_mismatch":
        value, counted = ins.num_keypoints[rows], (ins.v[rows] > 0).sum(axis=1)
        what = [
            f"num_keypoints says {a} but {b} points have visibility > 0"
            for a, b in zip(value.tolist(), counted.tolist())
        ]
    elif check == "bounds.bbox_outside_image":
        bx, by, bw, bh = ins.bbox[rows].T
        w, h = w_all[rows], h_all[rows]
        value = np.maximum(
            _outside(bx, 0, w),
            np.maximum(_outside(by, 0, h), np.maximum(_outside(bx + bw, 0, w), _outside(by + bh, 0, h))),
        )
        what = [
            f"bbox [{a}, {b}, {c}, {d}] reaches outside the {e}x{f} image"
            for a, b, c, d, e, f in zip(_fmt(bx), _fmt(by), _fmt(bw), _fmt(bh), _fmt(w), _fmt(h))
        ]
    else:
        raise KeyError(f"no instance locator for check {check!r}")
    return findings_for(
        check,
        severity=severity,
        image_id=image_ids,
        file_name=_file_names(dataset, img[rows]),
        annotation_id=ids,
        annotator=_annotators(dataset, rows),
        value=np.asarray(value, dtype=np.float64),
        message=[f"{a}: {b}" for a, b in zip(where, what)],
        source=source,
        n=len(rows),
    )


def image_findings(dataset: Dataset, check: str, rows: np.ndarray, *, severity: str, source: str) -> pa.Table:
    """Findings for failing images (rows of `dataset.images`)."""
    im = dataset.images
    rows = np.unique(rows)
    ids = im.id[rows]
    where = [f"image {i} '{f}'" for i, f in zip(ids.tolist(), im.file_name[rows].tolist())]
    if check == "schema.duplicate_id":
        value, what = ids, ["image id is used by more than one image"] * len(rows)
    elif check == "schema.missing_field":
        value = None
        what = [
            f"field 'width'/'height' is missing ({a}x{b}), so bounds rules cannot run on its points"
            for a, b in zip(im.width[rows].tolist(), im.height[rows].tolist())
        ]
    else:
        raise KeyError(f"no image locator for check {check!r}")
    return findings_for(
        check,
        severity=severity,
        image_id=ids,
        file_name=im.file_name[rows],
        value=None if value is None else np.asarray(value, dtype=np.float64),
        message=[f"{a}: {b}" for a, b in zip(where, what)],
        source=source,
        n=len(rows),
    )


LOCATORS = {"points": point_findings, "instances": instance_findings, "images": image_findings}


def locate(dataset: Dataset, failing: list[Failing], *, source: str) -> pa.Table:
    """The findings table for every failing row, in the order given."""
    return concat_findings(
        [
            LOCATORS[table](dataset, check, ids, severity=severity, source=source)
            for check, table, ids, severity in failing
        ]
    )


def _annotators(dataset: Dataset, rows: np.ndarray) -> list:
    return [a or None for a in dataset.instances.annotator[rows].tolist()]


def _file_names(dataset: Dataset, img_rows: np.ndarray) -> list:
    names = dataset.images.file_name
    return [names[i] if i >= 0 else None for i in img_rows.tolist()]
