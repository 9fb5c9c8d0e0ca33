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

from collections.abc import Iterator

import numpy as np
import pandas as pd

from kpdeliver.model import Dataset

Frame = tuple[tuple[str, str], pd.DataFrame]  # (suite, table) and rows of that table


def iter_frames(dataset: Dataset) -> Iterator[Frame]:
    """The tables one at a time, the small ones first; a points table in pieces of at most
    `_PIECE` rows (its rules are all per row), so that neither the builder nor GX ever holds a
    whole points table of a million instances (1.3 GB, and GX works in three times its input)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero side or absent box gives inf/NaN on purpose
        yield from _images(dataset).items()
        yield from _instances(dataset).items()
        yield from _points(dataset)


def image_sizes(dataset: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per instance: image row (-1 unknown), width and height as float (NaN when unknown)."""
    img = dataset.image_index()
    sides = np.stack([dataset.images.width, dataset.images.height], axis=1).astype(np.float64)
    sides = np.vstack([sides, [[np.nan, np.nan]]])  # row -1: unknown image
    sides[sides <= 0] = np.nan
    return img, sides[img, 0], sides[img, 1]


def _pieces(key: tuple[str, str], columns: list[str], fill, index: np.ndarray, name: str) -> Iterator[Frame]:
    """Float columns in pieces of `_PIECE` rows, each one [columns, rows] block that pandas keeps
    as is (a dict of columns would be copied into one), NaN where a column does not apply.
    `fill(rows, block)` writes the columns of the points `rows` (a slice) into `block`
    ([columns, len(rows)], all NaN), `_CHUNK` points at a time, so its temporaries stay small."""
    for first in range(0, max(len(index), 1), _PIECE):
        last = min(len(index), first + _PIECE)
        block = np.full((len(columns), last - first), np.nan)
        for start in range(first, last, _CHUNK):
            rows = slice(start, min(last, start + _CHUNK))
            fill(rows, block[:, rows.start - first : rows.stop - first])
        yield (
            key,
            pd.DataFrame(block.T, columns=columns, index=pd.Index(index[first:last], name=name), copy=False),
        )


_CHUNK = 1 << 20  # points computed at a time: about 100 MB of temporaries
_PIECE = 4 * _CHUNK  # rows of a points table handed on at a time


def _points(dataset: Dataset) -> Iterator[Frame]:
    ins = dataset.instances
    k = dataset.schema.num_keypoints
    kp = ins.keypoints.reshape(-1, 3)
    pt = np.flatnonzero(kp.any(axis=1))  # points written exactly (0, 0, 0) are left out
    finite = np.isfinite(kp[pt]).all(axis=1)
    for first in range(0, max(len(pt), 1), _PIECE):
        yield (
            ("schema", "points"),
            pd.DataFrame(
                {"finite": finite[first : first + _PIECE]},
                index=pd.Index(pt[first : first + _PIECE], name="pt"),
            ),
        )

    def visibility(rows: slice, block: np.ndarray) -> None:
        x, y, v = kp[pt[rows]].T
        ok = finite[rows]
        np.copyto(block[0], v, where=ok)
        np.copyto(block[1], np.maximum(np.abs(x), np.abs(y)), where=ok & (v == 0))
        np.copyto(block[2], np.abs(x) + np.abs(y), where=ok & (v > 0))

    yield from _pieces(
        ("visibility", "points"), ["v", "unlabeled_offset", "labeled_origin_distance"], visibility, pt, "pt"
    )

    labeled = pt[finite & (kp[pt, 2] > 0)]
    _, w_i, h_i = image_sizes(dataset)

    def bounds(rows: slice, block: np.ndarray) -> None:
        p = labeled[rows]
        x, y, v = kp[p].T
        inst = p // k
        xn, yn = x / w_i[inst], y / h_i[inst]  # position as a fraction of the image side
        lo, hi = np.minimum(xn, yn), np.maximum(xn, yn)
        bbox = ins.bbox[inst]
        bu, bv = (x - bbox[:, 0]) / bbox[:, 2], (y - bbox[:, 1]) / bbox[:, 3]  # as a fraction of the box side
        np.copyto(block[0], lo, where=v == 2)
        np.copyto(block[1], hi, where=v == 2)
        np.copyto(block[2], np.maximum(-lo, hi - 1), where=v == 1)
        np.copyto(
            block[3],
            np.maximum(-np.minimum(bu, bv), np.maximum(bu, bv) - 1),
            where=np.isfinite(bbox).all(axis=1),
        )

    yield from _pieces(
        ("bounds", "points"),
        ["visible_min", "visible_max", "occluded_outside", "box_outside"],
        bounds,
        labeled,
        "pt",
    )


def _instances(dataset: Dataset) -> dict[tuple[str, str], pd.DataFrame]:
    ins = dataset.instances
    img, w, h = image_sizes(dataset)
    declared = ins.num_keypoints
    counted = (ins.v > 0).sum(axis=1)
    x0, y0, bw, bh = ins.bbox.T
    index = pd.Index(np.arange(len(ins)), name="row")
    return {
        ("schema", "instances"): pd.DataFrame(
            {"annotation_id": ins.id, "category_id": ins.category_id, "image_known": img >= 0}, index=index
        ),
        ("visibility", "instances"): pd.DataFrame(
            {
                # not checkable when absent (-1) or when a flag is not a number (non_finite says so)
                "num_keypoints_excess": np.where(
                    (declared >= 0) & np.isfinite(ins.v).all(axis=1), declared - counted, np.nan
                ),
            },
            index=index,
        ),
        ("bounds", "instances"): pd.DataFrame(
            {
                "bbox_outside": np.maximum(
                    -np.minimum(x0 / w, y0 / h), np.maximum((x0 + bw) / w, (y0 + bh) / h) - 1
                ),
            },
            index=index,
        ),
    }


def _images(dataset: Dataset) -> dict[tuple[str, str], pd.DataFrame]:
    im = dataset.images
    return {
        ("schema", "images"): pd.DataFrame(
            {"image_id": im.id, "size_known": (im.width > 0) & (im.height > 0)},
            index=pd.Index(np.arange(len(im)), name="row"),
        )
    }
