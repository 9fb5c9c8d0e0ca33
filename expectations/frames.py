"""The canonical model as the pandas tables the suites run on, one table per (suite, level).

Built from whole numpy columns (no Python object per keypoint). Three levels:

- points: one row per keypoint, indexed by `pt` = instance row * K + keypoint. Points written
  exactly (0, 0, 0) are left out (no rule can fail on them; they are a third of a typical file),
  and the bounds table holds only labeled points (v > 0), the only ones bounds rules are about.
- instances: one row per instance, indexed by `row` (its position in `dataset.instances`).
- images: one row per image, indexed by `row`.

Each table holds only the columns its suite reads: GX copies a whole table whenever it filters
rows, so narrow tables are what keeps a 100,000-instance run fast.

A rule that compares a point with its own image or box (a per-row bound that GX's core
expectations cannot express) gets a precomputed column normalised to that image or box
("how far outside, as a fraction of its side": 0 on the edge, 0.5 half a side out), NaN where
the rule does not apply. GX counts NaN as "missing", not as "unexpected", so each rule
sees exactly the rows it is about without a per-expectation row filter.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from kpdeliver.model import Dataset

Frames = dict[tuple[str, str], pd.DataFrame]  # (suite, table) -> its rows


def build_frames(dataset: Dataset) -> Frames:
    """Every (suite, table) frame for one dataset."""
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero side or absent box gives inf/NaN on purpose
        return {**_points(dataset), **_instances(dataset), **_images(dataset)}


def image_sizes(dataset: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per instance: image row (-1 unknown), width and height as float (NaN when unknown)."""
    img = dataset.image_index()
    sides = np.stack([dataset.images.width, dataset.images.height], axis=1).astype(np.float64)
    sides = np.vstack([sides, [[np.nan, np.nan]]])  # row -1: unknown image
    sides[sides <= 0] = np.nan
    return img, sides[img, 0], sides[img, 1]


def _frame(cols: dict[str, tuple[np.ndarray, np.ndarray]], index: np.ndarray, name: str) -> pd.DataFrame:
    """Float columns, NaN where their mask is False, as one [columns, rows] block that pandas
    keeps as is (a dict of columns would be copied into one)."""
    block = np.full((len(cols), len(index)), np.nan)
    for j, (mask, col) in enumerate(cols.values()):
        np.copyto(block[j], col, where=mask)
    return pd.DataFrame(block.T, columns=list(cols), index=pd.Index(index, name=name), copy=False)


def _points(dataset: Dataset) -> Frames:
    ins = dataset.instances
    n, k = len(ins), dataset.schema.num_keypoints
    kp = ins.keypoints.reshape(n * k, 3)
    x, y, v = kp[:, 0], kp[:, 1], kp[:, 2]
    pt = np.flatnonzero(~((x == 0) & (y == 0) & (v == 0)))
    x, y, v = x[pt], y[pt], v[pt]
    finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(v)
    visibility = _frame({
        "v": (finite, v),
        "unlabeled_offset": (finite & (v == 0), np.maximum(np.abs(x), np.abs(y))),
        "labeled_origin_distance": (finite & (v > 0), np.abs(x) + np.abs(y)),
    }, pt, "pt")

    labeled = finite & (v > 0)
    pt, x, y, v = pt[labeled], x[labeled], y[labeled], v[labeled]
    inst = pt // k
    _, w_i, h_i = image_sizes(dataset)
    xn, yn = x / w_i[inst], y / h_i[inst]  # position as a fraction of the image side
    lo, hi = np.minimum(xn, yn), np.maximum(xn, yn)
    bbox = ins.bbox[inst]
    bu, bv = (x - bbox[:, 0]) / bbox[:, 2], (y - bbox[:, 1]) / bbox[:, 3]  # position as a fraction of the box side
    bounds = _frame({
        "visible_min": (v == 2, lo),
        "visible_max": (v == 2, hi),
        "occluded_outside": (v == 1, np.maximum(-lo, hi - 1)),
        "box_outside": (np.isfinite(bbox).all(axis=1), np.maximum(-np.minimum(bu, bv), np.maximum(bu, bv) - 1)),
    }, pt, "pt")

    schema = pd.DataFrame({"finite": finite}, index=visibility.index)
    return {("schema", "points"): schema, ("visibility", "points"): visibility, ("bounds", "points"): bounds}


def _instances(dataset: Dataset) -> Frames:
    ins = dataset.instances
    img, w, h = image_sizes(dataset)
    declared = ins.num_keypoints
    counted = (ins.v > 0).sum(axis=1)
    x0, y0, bw, bh = ins.bbox.T
    index = pd.Index(np.arange(len(ins)), name="row")
    return {
        ("schema", "instances"): pd.DataFrame(
            {"annotation_id": ins.id, "category_id": ins.category_id, "image_known": img >= 0}, index=index),
        ("visibility", "instances"): pd.DataFrame({
            # not checkable when absent (-1) or when a flag is not a number (non_finite says so)
            "num_keypoints_excess": np.where((declared >= 0) & np.isfinite(ins.v).all(axis=1), declared - counted, np.nan),
        }, index=index),
        ("bounds", "instances"): pd.DataFrame({
            "bbox_outside": np.maximum(-np.minimum(x0 / w, y0 / h), np.maximum((x0 + bw) / w, (y0 + bh) / h) - 1),
        }, index=index),
    }


def _images(dataset: Dataset) -> Frames:
    im = dataset.images
    return {("schema", "images"): pd.DataFrame(
        {"image_id": im.id, "size_known": (im.width > 0) & (im.height > 0)},
        index=pd.Index(np.arange(len(im)), name="row"),
    )}
