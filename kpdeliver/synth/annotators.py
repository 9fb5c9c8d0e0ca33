"""Simulated annotators: a clean dataset in, one annotator's version out, with realistic
placement noise and known injected mistakes recorded row by row.

Every injection is one row of a table (`INJECTIONS_SCHEMA`) naming the instance (row and
annotation id), the keypoint (null for a whole-instance mistake), the kind and the pixel
displacement, so a QA benchmark can score its findings against exactly what was done.

Kinds:
- `to_visible`    an occluded (v=1) point inside the frame marked visible (v=2)
- `to_occluded`   a visible point marked occluded (2 -> 1)
- `left_right_swap`  every left/right pair of the instance exchanged (schema flip_idx)
- `outside_image` a visible point moved outside the image, still marked visible
- `jump`          one point of a tracked frame displaced (temporal jitter); an excursion of several
                  frames is one record per frame, on consecutive frames of one track and keypoint;
                  with `jump_frames` other than (1,), every excursion is a mistake a reviewer can see:
                  at least JUMP_NOISE_MULTIPLE times the placement noise, and with clean frames
                  around it (two on each side of a longer one, where it leaves and comes back)
- `flicker`       one visible point of one tracked frame marked unlabeled (v=0, x=y=0)
- `convention`    a systematic offset of one keypoint on every item of this annotator
- `drift`         a systematic offset that starts part-way through the annotator's items
- `visible_outside`  a point estimated outside the frame (v=1) marked visible (demo batches)
- `unlabeled_with_coords`  a point marked unlabeled (v=0) that keeps its coordinates (demo batches)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa

from kpdeliver.model import Dataset, Instances
from kpdeliver.schema import KeypointSchema
from kpdeliver.synth.datasets import AREA_FRACTION

INJECTIONS_SCHEMA = pa.schema(
    [
        ("annotator", pa.string()),
        ("row", pa.int64()),  # row in the dataset handed to simulate_annotator
        ("annotation_id", pa.int64()),
        ("image_id", pa.int64()),
        ("keypoint", pa.string()),  # null: the whole instance
        ("kind", pa.string()),
        ("order", pa.int64()),  # position of the item in the annotator's submission order
        ("dx", pa.float64()),
        ("dy", pa.float64()),
    ]
)


@dataclass(frozen=True)
class Drift:
    """From item `start` (a fraction of the annotator's items, in submission order) on, the
    named keypoints are placed `offset` (dx, dy, in units of instance scale) away."""

    start: float = 0.5
    keypoints: tuple[str, ...] = ("left_hip", "right_hip")
    offset: tuple[float, float] = (0.0, -0.08)


@dataclass(frozen=True)
class ErrorRates:
    """Rates are fractions of the eligible instances; an instance gets at most one of the
    point mistakes (`to_visible`, `to_occluded`, `swap`, `outside`, `jump`, `flicker`). Swaps go
    only where they show (OKS of the mirrored labelling against the true one below 0.5); jumps
    and flicker only on tracked instances. `convention` maps keypoint names to a (dx, dy) offset
    in instance-scale units applied to every item."""

    to_visible: float = 0.0
    to_occluded: float = 0.0
    swap: float = 0.0
    outside: float = 0.0
    jump: float = 0.0
    flicker: float = 0.0
    jump_size: tuple[float, float] = (0.2, 0.4)  # instance-scale units
    jump_frames: tuple[int, ...] = (1,)  # an excursion lasts one of these numbers of frames, drawn evenly
    convention: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    drift: Drift | None = None


JUMP_NOISE_MULTIPLE = 10.0  # a jump moves a point at least this many times its per-axis placement noise


def instance_scale(instances: Instances) -> np.ndarray:
    """sqrt(area) per instance (area from the bbox when the instance has none)."""
    box_area = AREA_FRACTION * instances.bbox[:, 2] * instances.bbox[:, 3]
    area = np.where(np.isnan(instances.area), box_area, instances.area)
    return np.sqrt(np.maximum(area, 1.0))


def swap_oks(kps: np.ndarray, sigmas: np.ndarray, flip_idx: np.ndarray, area: np.ndarray) -> np.ndarray:
    """OKS (COCO formula) between each instance and its left/right mirror labelling, over the
    points labeled in both; 1.0 where a swap would change nothing measurable."""
    flipped = kps[:, flip_idx]
    both = (kps[..., 2] > 0) & (flipped[..., 2] > 0)
    d2 = ((kps[..., :2] - flipped[..., :2]) ** 2).sum(axis=-1)
    e = d2 / ((2 * sigmas) ** 2) / (area[:, None] + np.spacing(1)) / 2
    n = both.sum(axis=1)
    return np.where(n > 0, (np.exp(-e) * both).sum(axis=1) / np.maximum(n, 1), 1.0)


def _pick_point(rng, mask: np.ndarray) -> np.ndarray:
    """One random True column per row of mask (rows must have one)."""
    score = np.where(mask, rng.random(mask.shape), -1.0)
    return score.argmax(axis=1)


def _inside(xy: np.ndarray, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    return (xy[..., 0] >= 0) & (xy[..., 0] < w[:, None]) & (xy[..., 1] >= 0) & (xy[..., 1] < h[:, None])


class _Log:
    """Collects injection records column-wise."""

    def __init__(self, ins: Instances, names: tuple[str, ...], annotator: str, order: np.ndarray):
        self.ins, self.names, self.annotator, self.order = (
            ins,
            np.asarray(names, dtype=object),
            annotator,
            order,
        )
        self.parts: list[dict] = []

    def add(self, kind: str, rows: np.ndarray, kp: np.ndarray | None = None, dx=None, dy=None) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        n = len(rows)
        self.parts.append(
            {
                "annotator": [self.annotator] * n,
                "row": rows,
                "annotation_id": self.ins.id[rows],
                "image_id": self.ins.image_id[rows],
                "keypoint": [None] * n if kp is None else self.names[np.asarray(kp, dtype=np.int64)].tolist(),
                "kind": [kind] * n,
                "order": self.order[rows],
                "dx": np.full(n, np.nan) if dx is None else np.broadcast_to(np.asarray(dx, np.float64), (n,)),
                "dy": np.full(n, np.nan) if dy is None else np.broadcast_to(np.asarray(dy, np.float64), (n,)),
            }
        )

    def table(self) -> pa.Table:
        if not self.parts:
            return INJECTIONS_SCHEMA.empty_table()
        tables = [
            pa.table(
                {k: pa.array(v, INJECTIONS_SCHEMA.field(k).type) for k, v in p.items()},
                schema=INJECTIONS_SCHEMA,
            )
            for p in self.parts
        ]
        return pa.concat_tables(tables).sort_by([("row", "ascending"), ("kind", "ascending")])


def _offset(kps, rows, cols, scale, offset, w, h, log: _Log, kind: str) -> None:
    """Shift labeled points (rows x cols pairs) by offset * scale; visible ones stay in the image."""
    sel = kps[rows, cols, 2] > 0
    rows, cols = rows[sel], cols[sel]
    _move(kps, rows, cols, np.asarray(offset)[None, :] * scale[rows, None], w, h, log, kind)


def simulate_annotator(
    truth: Dataset,
    *,
    annotator: str,
    rng: np.random.Generator,
    rates: ErrorRates = ErrorRates(),
    noise: float = 0.5,
    order: np.ndarray | None = None,
    sigmas: np.ndarray | None = None,
) -> tuple[Dataset, pa.Table]:
    """One annotator's labelling of `truth`, and the table of mistakes injected into it.

    Placement noise is Gaussian per axis with std `noise * sigma_k * scale / sqrt(2)` (COCO's
    sigmas are the spread of human labels in units of scale = sqrt(area), so noise=1.0 matches
    COCO's measured annotators; the default 0.5 is a careful annotator). `sigmas` replaces the
    schema's per-keypoint sigmas in that formula (a team whose precision per keypoint is known).
    `order` gives each instance's position in the annotator's submission order (default: row
    order); drift starts at that position. Instance ids, images and tracks are kept; bbox grows to
    hold the labels.
    """
    schema, ins = truth.schema, truth.instances
    n = len(ins)
    order = np.arange(n) if order is None else np.asarray(order, dtype=np.int64)
    w, h = _frame_sizes(truth)
    scale = instance_scale(ins)
    log = _Log(ins, schema.keypoints, annotator, order)
    kps = ins.keypoints.copy()
    labeled, visible = kps[..., 2] > 0, kps[..., 2] == 2
    spread = schema.sigma_array if sigmas is None else np.asarray(sigmas, np.float64)
    std = noise * spread[None, :] * scale[:, None] / np.sqrt(2)
    _place(kps, std, labeled, visible, w, h, rng)
    _systematic(kps, rates, order, scale, schema.index, w, h, log)
    pick = _Chooser(rng, n)

    _swaps_and_flags(kps, ins, schema, scale, labeled, visible, rates, pick, w, h, rng, log)

    rows = pick((ins.track_id >= 0) & visible.any(axis=1), rates.jump)
    _jumps(kps, ins, rows, rates, std, scale, labeled, visible, pick.free, w, h, rng, log)

    rows = pick((ins.track_id >= 0) & visible.any(axis=1), rates.flicker)
    cols = _pick_point(rng, visible[rows])
    kps[rows, cols] = 0.0
    log.add("flicker", rows, cols)

    bbox = _grow_bbox(ins.bbox, kps)
    rows = pick(visible.any(axis=1), rates.outside)
    _outside(kps, rows, _pick_point(rng, visible[rows]), w, h, rng, log)

    out = replace(
        ins,
        keypoints=kps,
        bbox=bbox,
        annotator=np.full(n, annotator, dtype=object),
        num_keypoints=(kps[..., 2] > 0).sum(axis=1).astype(np.int64),
        extra=dict(ins.extra),
    )
    return truth.replace(instances=out), log.table()


def _swaps_and_flags(
    kps: np.ndarray,
    ins: Instances,
    schema: KeypointSchema,
    scale: np.ndarray,
    labeled,
    visible,
    rates: ErrorRates,
    pick: _Chooser,
    w: np.ndarray,
    h: np.ndarray,
    rng: np.random.Generator,
    log: _Log,
) -> None:
    """Inject left/right swaps (where one would show) and visibility flips (occluded <-> visible)."""
    observable = swap_oks(ins.keypoints, schema.sigma_array, schema.flip_idx, scale**2) < 0.5
    rows = pick(observable & (labeled.sum(axis=1) >= 4), rates.swap)
    kps[rows] = kps[rows][:, schema.flip_idx]
    log.add("left_right_swap", rows)

    occluded_in = (kps[..., 2] == 1) & _inside(kps[..., :2], w, h)
    rows = pick(occluded_in.any(axis=1), rates.to_visible)
    _flag(kps, rows, _pick_point(rng, occluded_in[rows]), 2.0, log, "to_visible")
    rows = pick(visible.any(axis=1), rates.to_occluded)
    _flag(kps, rows, _pick_point(rng, visible[rows]), 1.0, log, "to_occluded")


def _frame_sizes(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Width and height of each instance's image."""
    img_row = ds.image_index()
    return ds.images.width[img_row].astype(np.float64), ds.images.height[img_row].astype(np.float64)


def _place(kps, std, labeled, visible, w, h, rng) -> None:
    """Gaussian placement noise on every labeled point, in place; visible points stay in the frame (a
    visible point outside is a mistake of its own); coordinates rounded to 0.01 px."""
    n, k = kps.shape[:2]
    xy = kps[..., :2] + rng.normal(size=(n, k, 2)) * std[..., None]
    xy[..., 0] = np.where(visible, np.clip(xy[..., 0], 0, w[:, None] - 0.01), xy[..., 0])
    xy[..., 1] = np.where(visible, np.clip(xy[..., 1], 0, h[:, None] - 0.01), xy[..., 1])
    kps[..., :2] = np.where(labeled[..., None], np.round(xy, 2), 0.0)


def _systematic(kps, rates: ErrorRates, order, scale, index, w, h, log: _Log) -> None:
    """The convention offsets (every item) and the drift (items from its start on), in place."""
    n = len(kps)
    all_rows = np.arange(n)
    for name, off in rates.convention.items():
        _offset(kps, all_rows, np.full(n, index(name)), scale, off, w, h, log, "convention")
    if rates.drift is not None:
        late = all_rows[order >= int(np.ceil(rates.drift.start * n))]
        for name in rates.drift.keypoints:
            _offset(kps, late, np.full(len(late), index(name)), scale, rates.drift.offset, w, h, log, "drift")


class _Chooser:
    """Draws the instances of each point mistake among those still free: an instance gets at most one."""

    def __init__(self, rng: np.random.Generator, n: int):
        self.rng, self.free = rng, np.ones(n, bool)

    def __call__(self, eligible: np.ndarray, rate: float) -> np.ndarray:
        cand = np.flatnonzero(eligible & self.free)
        rows = np.sort(self.rng.choice(cand, round(rate * len(cand)), replace=False)) if len(cand) else cand
        self.free[rows] = False
        return rows


def _jumps(
    kps, ins: Instances, rows, rates: ErrorRates, std, scale, labeled, visible, free, w, h, rng, log: _Log
) -> None:
    """One visible point of each chosen tracked instance displaced (carried over several frames when
    `rates.jump_frames` says so), in place."""
    cols = _pick_point(rng, visible[rows])
    size = rng.uniform(*rates.jump_size, len(rows)) * scale[rows]
    if rates.jump_frames != (
        1,
    ):  # far above the noise: a displacement no one could tell from noise is no mistake
        size = np.maximum(size, JUMP_NOISE_MULTIPLE * std[rows, cols])
    start = kps[rows, cols, :2]
    # a jump lands inside the frame: the first of a few random directions that stays in it,
    # else straight toward the image centre
    angles = rng.uniform(0, 2 * np.pi, (len(rows), 8))
    dest = start[:, None, :] + size[:, None, None] * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    ok = _inside(dest, w[rows], h[rows])
    centre = np.stack([w[rows], h[rows]], axis=1) / 2 - start
    toward = centre / np.maximum(np.linalg.norm(centre, axis=1, keepdims=True), 1e-9) * size[:, None]
    step = np.where(
        np.asarray(ok.any(axis=1))[:, None], dest[np.arange(len(rows)), ok.argmax(axis=1)] - start, toward
    )
    if rates.jump_frames != (1,):  # (only then more draws: the default keeps every other draw as it was)
        rows, cols, step = _excursions(
            ins, labeled, visible, free, rows, cols, step, rng.choice(rates.jump_frames, len(rows))
        )
    _move(kps, rows, cols, step, w, h, log, "jump")


def _excursions(ins: Instances, labeled, visible, free, rows, cols, step, frames):
    """The chosen jumps carried on over the next frames of their track, each for its drawn number of
    frames (the same displacement), where the track shows the point leave and come back: the frames of
    the excursion follow each other with the point visible and the instance free of other mistakes, and
    the two frames on each side of it (both sides for a longer excursion; at a track's end, a single
    frame needs two on one side) are labeled, free, and outside any other excursion's frames and
    context. An excursion that does not fit is shortened, down to one frame, or dropped: at a track's
    end a longer one is a step no one can tell from motion, and two excursions that touch are one.
    Rows of a track are in frame order, as `video_dataset` makes them."""
    n = len(ins)
    taken = ~free
    taken[rows] = False  # the chosen rows themselves: each is judged below, in row order
    reserved = np.zeros(n, bool)  # frames of excursions placed so far, and their context
    chosen = np.zeros(n, bool)
    chosen[rows] = True

    def run(start, lo, hi):
        """Rows start+lo..start+hi-1 if they are all consecutive frames of start's track, else None."""
        at = np.arange(start + lo, start + hi)
        if len(at) == 0:
            return at
        if at[0] < 0 or at[-1] >= n:
            return None
        ok = (ins.track_id[at] == ins.track_id[start]) & (ins.frame[at] == ins.frame[start] + at - start)
        return at if ok.all() else None

    kept: list[bool] = []
    lengths: list[int] = []
    for r, c, m in zip(rows, cols, frames, strict=True):
        placed = 0
        for size in range(int(m), 0, -1):
            body = run(r, 0, size)
            if (
                body is None
                or not visible[body, c].all()
                or (taken | reserved)[body].any()
                or chosen[body[1:]].any()
            ):
                continue
            left, right = run(r, -2, 0), run(r, size, size + 2)
            sides = [s for s in (left, right) if s is not None]
            if (size > 1 and len(sides) < 2) or not sides:
                continue
            ctx = np.concatenate(sides)
            if (~labeled[ctx, c]).any() or (taken | reserved | chosen)[ctx].any():
                continue
            placed = size
            reserved[np.concatenate([body, ctx])] = True
            break
        kept.append(placed > 0)
        lengths.append(placed)
    keep, length = np.asarray(kept, bool), np.asarray(lengths, np.int64)
    rows, cols, step, length = rows[keep], cols[keep], step[keep], length[keep]
    at = np.concatenate([r + np.arange(m) for r, m in zip(rows, length, strict=True)]) if len(rows) else rows
    rep = np.repeat(np.arange(len(rows)), length)
    free[reserved] = False  # the frames around an excursion stay clean: later mistakes go elsewhere
    return at, cols[rep], step[rep]


def _flag(kps: np.ndarray, rows: np.ndarray, cols: np.ndarray, flag: float, log: _Log, kind: str) -> None:
    kps[rows, cols, 2] = flag
    log.add(kind, rows, cols)


def _move(kps, rows, cols, d, w, h, log: _Log, kind: str) -> None:
    before = kps[rows, cols, :2].copy()
    moved = before + d
    # a visible point stays in the frame (leaving it is the `outside_image` mistake, not this one)
    vis = kps[rows, cols, 2] == 2
    moved[:, 0] = np.where(vis, np.clip(moved[:, 0], 0, w[rows] - 0.01), moved[:, 0])
    moved[:, 1] = np.where(vis, np.clip(moved[:, 1], 0, h[rows] - 0.01), moved[:, 1])
    kps[rows, cols, :2] = np.round(moved, 2)
    real = kps[rows, cols, :2] - before
    did = (real != 0).any(axis=1)  # a point pinned at the frame edge did not move: no record
    log.add(kind, rows[did], cols[did], real[did, 0], real[did, 1])


def _outside(kps, rows, cols, w, h, rng, log: _Log) -> None:
    """Move each chosen point past the nearest image edge by 2-15 % of the image side."""
    x, y = kps[rows, cols, 0], kps[rows, cols, 1]
    ww, hh = w[rows], h[rows]
    gaps = np.stack([x, ww - x, y, hh - y], axis=1)
    edge = gaps.argmin(axis=1)
    past = rng.uniform(0.02, 0.15, len(rows)) * np.where(edge < 2, ww, hh)
    nx = np.select([edge == 0, edge == 1], [-past, ww + past], x)
    ny = np.select([edge == 2, edge == 3], [-past, hh + past], y)
    kps[rows, cols, 0], kps[rows, cols, 1] = np.round(nx, 2), np.round(ny, 2)
    log.add("outside_image", rows, cols, nx - x, ny - y)


def _grow_bbox(bbox: np.ndarray, kps: np.ndarray) -> np.ndarray:
    """The clean box, grown where needed so it still encloses the annotator's labeled points."""
    lab = kps[..., 2] > 0
    big = np.where(lab, kps[..., 0], -np.inf).max(axis=1), np.where(lab, kps[..., 1], -np.inf).max(axis=1)
    small = np.where(lab, kps[..., 0], np.inf).min(axis=1), np.where(lab, kps[..., 1], np.inf).min(axis=1)
    x0, y0 = np.minimum(bbox[:, 0], small[0]), np.minimum(bbox[:, 1], small[1])
    x1 = np.maximum(bbox[:, 0] + bbox[:, 2], big[0])
    y1 = np.maximum(bbox[:, 1] + bbox[:, 3], big[1])
    return np.round(np.stack([x0, y0, x1 - x0, y1 - y0], axis=1), 2)
