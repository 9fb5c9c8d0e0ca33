"""Temporal checks on video tracks: point jitter and visibility flicker.

A track is one owner's `track_id` (the owner: the annotator, and the export file when known), its
frames ordered by `frame` (video = track_id >= 0 and frame >= 0). Jitter is judged against the
track's own motion, so a fast but smooth movement is not flagged: each labeled point is compared with
the straight path through its nearest labeled neighbours (one frame on each side, interpolated by
frame number; at a track's end or beside a gap, carried on from the two on one side), in units of the
track's median instance scale and of that prediction's noise, and gets a robust z-score (median, MAD)
within its (track, keypoint) series. A point is a jump when that z-score and the distance are both
high and its neighbours, once it is left out of their paths, fit them (DeepLabCut's outlier "jump"
test, made to blame the right frame and to pass a sudden change of speed).

`video_findings` reports, per track, left/right swaps against the frames around them
(kpdeliver.qa.swaps), then jumps and flicker on the swap-corrected track. It needs nothing from
the other checks and hands nothing on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from kpdeliver.config import DeepQASettings
from kpdeliver.findings import concat_findings, empty_findings
from kpdeliver.qa.agreement import STATE_WORDS, visibility_states
from kpdeliver.qa.context import Context
from kpdeliver.qa.robust import group_median, robust_scale
from kpdeliver.qa.swaps import (
    blame_pairs,
    exchange_pairs,
    mirrored_whole,
    pair_names,
    swap_keypoint,
    track_swapped_pairs,
)


@dataclass(frozen=True)
class TrackOrder:
    rows: np.ndarray  # instance rows of video frames, by owner, track, frame (duplicate frames dropped)
    new_track: np.ndarray  # bool: first row of a track
    track: np.ndarray  # track number 0..T-1 per row


def track_order(owners: np.ndarray, track_id: np.ndarray, frame: np.ndarray) -> TrackOrder:
    video = np.flatnonzero((track_id >= 0) & (frame >= 0))
    _, ann = np.unique(owners[video].astype(str), return_inverse=True)
    order = np.lexsort((frame[video], track_id[video], ann))
    rows = video[order]
    key = np.stack([ann[order], track_id[rows]], 1)
    new_track = np.ones(len(rows), bool)
    new_track[1:] = (key[1:] != key[:-1]).any(axis=1)
    dup = np.zeros(len(rows), bool)
    dup[1:] = ~new_track[1:] & (frame[rows][1:] == frame[rows][:-1])
    rows, new_track = rows[~dup], new_track[~dup]
    return TrackOrder(rows, new_track, np.cumsum(new_track) - 1)


RETURN_SHARE = 0.6  # an excursion's frames are at least this share of their distance from the bridge off each side's path


@dataclass(frozen=True)
class Jitter:
    flagged: np.ndarray  # [n, K] bool: first frame of an excursion, rows in track order
    last: np.ndarray  # [n, K] row of the excursion's last frame (-1 where not flagged)
    frames: np.ndarray  # [n, K] its number of frames (0 where not flagged)
    deviation: np.ndarray  # [n, K] mean distance from the path bridging it, scale units
    z: np.ndarray  # [n, K] the smallest robust z-score over its frames


def jitter(
    kps: np.ndarray, s2: np.ndarray, frames: np.ndarray, tracks: TrackOrder, *, z_min: float, min_dev: float,
    max_gap: int = 3, max_frames: int = 3,
) -> Jitter:
    """Excursions in tracks: a point that leaves its path for 1..max_frames labeled frames in a row and
    comes back; kps/s2/frames are already in track order.

    Every frame of an excursion is far off the straight path bridging it (from the point before to the
    point after, robust z and distance), and leaving the excursion out makes the points on either side
    fit their own paths: displaced points pull the neighbours' paths, so a neighbour of an excursion is
    far off too but does not pass this test, nor does a window that holds only part of an excursion
    (its neighbour is displaced), nor a smooth but fast curve, a sudden change of speed or direction, or
    a step to a new place that stays, which all bend the neighbours' paths as much as the window's.
    Longer excursions need a point on both sides (only a return tells them from a step); a single
    frame at a track's end is judged from the two points on one side."""
    n, k = kps.shape[:2]
    if n == 0:
        empty = np.zeros((0, k))
        return Jitter(empty.astype(bool), empty.astype(np.int64), empty.astype(np.int64), empty, empty)
    n_tracks = int(tracks.track.max()) + 1
    scale = group_median(np.sqrt(s2), tracks.track, n_tracks)[tracks.track]
    lab = kps[..., 2] > 0
    starts = np.flatnonzero(tracks.new_track)
    first, end = starts[tracks.track], np.r_[starts[1:], n][tracks.track]

    def prev(at):
        return _prev_usable(lab, at, first)

    def nxt(at):
        return _next_usable(lab, at, end)

    def path(at, l1, r1, gap):
        return _off_path(kps, frames, at, (l1, prev(l1)), (r1, nxt(r1)), scale, gap)

    window = [np.where(lab, np.arange(n)[:, None], -1)]  # window[i]: the i-th frame of a window opening at each row
    for _ in range(max_frames - 1):
        window.append(nxt(window[-1]))
    p1 = prev(window[0])
    _, score = path(window[0], p1, nxt(window[0]), max_gap)
    groups = (tracks.track[:, None] * k + np.arange(k)[None, :]).ravel()
    med, sd = robust_scale(score.ravel(), groups, n_tracks * k, floor=min_dev / z_min)
    # a keypoint's spread is floored at the middle one of its track's keypoints: fifty frames of a point
    # that barely moves can give too narrow a spread, and then a plain placement error reads as a jump
    sd = np.maximum(sd, np.median(sd.reshape(n_tracks, k), axis=1).repeat(k))
    med, sd = med[groups].reshape(n, k), sd[groups].reshape(n, k)
    cols = np.broadcast_to(np.arange(k), (n, k))
    none = (np.full((n, k), -1), np.full((n, k), -1))
    out = Jitter(np.zeros((n, k), bool), np.full((n, k), -1), np.zeros((n, k), np.int64), np.full((n, k), np.nan),
                 np.full((n, k), np.nan))
    taken = np.zeros((n, k), bool)  # frames already in a reported excursion
    for w in range(max_frames, 0, -1):  # longest first: a window inside a found excursion is not reported again
        gap = max_gap + w - 1
        win, r1 = window[:w], nxt(window[w - 1])
        devs, scores = zip(*(path(at, p1, r1, gap) for at in win))
        # and off where each side, carried on alone, puts it: a step that stays, or a sharp turn, leaves the
        # window on one side's path (or on both), however far it is from the bridge
        sides = [_off_path(kps, frames, at, side, far, scale, gap)[0]
                 for at in win for side, far in (((p1, prev(p1)), none), (none, (r1, nxt(r1))))]
        away = np.all([np.nan_to_num(d, nan=np.inf) >= RETURN_SHARE * devs[i // 2] for i, d in enumerate(sides)], axis=0)
        low = np.nan_to_num(np.min(scores, axis=0), nan=-np.inf)
        z = (low - med) / sd
        # each neighbour judged with the window left out (its own path then skips over it)
        _, before = path(p1, prev(p1), r1, gap)
        _, after = path(r1, p1, nxt(r1), gap)
        fits = np.maximum(low / 3, med + sd * z_min / 2)
        settled = (np.nan_to_num(before, nan=-np.inf) <= fits) & (np.nan_to_num(after, nan=-np.inf) <= fits)
        found = (win[-1] >= 0) & (z >= z_min) & (low >= min_dev) & settled & away
        if w > 1:
            found &= (p1 >= 0) & (r1 >= 0)
        for at in win:
            found &= ~taken[np.maximum(at, 0), cols]
        for at in win:
            taken[at[found], cols[found]] = True
        out.flagged[found] = True
        out.last[found] = win[-1][found]
        out.frames[found] = w
        out.deviation[found] = np.mean(devs, axis=0)[found]
        out.z[found] = z[found]
    return out


def _off_path(kps, frames, at, left, right, scale, max_gap):
    """Distance of the points at rows `at` ([n, K], -1: none) from the straight path through the
    nearest given neighbours (left and right: the two nearest rows on each side, -1 where none): one
    on each side, else the two on one side (a track's end), in scale units; and that distance divided
    by the prediction's noise relative to plain interpolation's (label noise sigma: interpolation
    leaves 1.5 sigma^2, carrying on from one side 6 sigma^2), so every point is judged on one scale."""
    k = at.shape[1]
    (l1, l2), (r1, r2) = left, right
    a = np.where(l1 >= 0, np.where(r1 >= 0, l1, l2), r1)
    b = np.where(l1 >= 0, np.where(r1 >= 0, r1, l1), r2)
    ok = (at >= 0) & (a >= 0) & (b >= 0)
    at, a, b = np.maximum(at, 0), np.maximum(a, 0), np.maximum(b, 0)
    f, fa, fb = (frames[i].astype(np.float64) for i in (at, a, b))
    ok &= (np.abs(fa - f) <= max_gap) & (np.abs(fb - f) <= max_gap) & (fa != fb)
    wb = np.where(ok, (f - fa) / np.where(ok, fb - fa, 1.0), 0.0)
    wa = 1.0 - wb
    cols = np.broadcast_to(np.arange(k), at.shape)
    pred = wa[..., None] * kps[a, cols, :2] + wb[..., None] * kps[b, cols, :2]
    dev = np.where(ok, np.hypot(*np.moveaxis(kps[at, cols, :2] - pred, -1, 0)) / scale[at], np.nan)
    return dev, dev / np.sqrt((1.0 + wa**2 + wb**2) / 1.5)


def _prev_usable(usable: np.ndarray, at: np.ndarray, first: np.ndarray) -> np.ndarray:
    """[n, K] row of the nearest usable point before row `at` in the same track (-1: none)."""
    n, k = usable.shape
    idx = np.maximum.accumulate(np.where(usable, np.arange(n)[:, None], -1), axis=0)
    cols = np.broadcast_to(np.arange(k), at.shape)
    out = np.where(at >= 1, idx[np.maximum(at - 1, 0), cols], -1)
    return np.where((at >= 0) & (out >= first[:, None]), out, -1)


def _next_usable(usable: np.ndarray, at: np.ndarray, end: np.ndarray) -> np.ndarray:
    """[n, K] row of the nearest usable point after row `at` in the same track (-1: none); `end` is the
    first row after each row's track."""
    n, k = usable.shape
    idx = np.minimum.accumulate(np.where(usable, np.arange(n)[:, None], n)[::-1], axis=0)[::-1]
    cols = np.broadcast_to(np.arange(k), at.shape)
    out = np.where((at >= 0) & (at + 1 < n), idx[np.minimum(at + 1, n - 1), cols], n)
    return np.where((at >= 0) & (out < end[:, None]), out, -1)


@dataclass(frozen=True)
class Flicker:
    flagged: np.ndarray  # [n, K] bool: frames in a short visibility run that differs from the runs around it
    run_length: np.ndarray  # [n, K] length of that run (0 where not flagged)
    before: np.ndarray  # [n, K] the state around the run (-1 where not flagged)
    at_end: np.ndarray  # [n, K] bool: the run is a track's first or last frame (one neighbouring run only)


def flicker(states: np.ndarray, new_track: np.ndarray, *, window: int) -> Flicker:
    """Visibility runs of <= window frames whose state differs from the equal states on both sides, and
    no longer than either of those runs (of 2,1,1,2 between long runs of 1, the single 2s are the odd
    ones out, not the 1s between them); and a single frame at a track's end that differs from the
    steady run (longer than `window`) beside it."""
    n, k = states.shape
    if n == 0:
        empty = np.zeros((0, k), bool)
        return Flicker(empty, np.zeros((0, k), np.int64), np.zeros((0, k), np.int64), empty)
    x = states.T.ravel()  # column by column: runs never cross keypoints (new_track[0] is True)
    starts_track = np.tile(new_track, k)
    change = starts_track.copy()
    change[1:] |= x[1:] != x[:-1]
    run = np.cumsum(change) - 1
    first = np.flatnonzero(change)
    length = np.diff(np.append(first, len(x)))
    val = x[first]
    opens_track = starts_track[first]
    next_opens = np.r_[opens_track[1:], True]
    prev_val, next_val = np.r_[-2, val[:-1]], np.r_[val[1:], -2]
    prev_len, next_len = np.r_[0, length[:-1]], np.r_[length[1:], 0]
    inner = (
        (length <= window) & ~opens_track & ~next_opens & (prev_val == next_val) & (prev_val != val)
        & (prev_len >= length) & (next_len >= length)
    )
    # a track's end: only one side to compare with, so only a single frame against a steady run
    start = opens_track & ~next_opens & (length == 1) & (next_len > window) & (next_val != val)
    end = ~opens_track & next_opens & (length == 1) & (prev_len > window) & (prev_val != val)
    bad = (inner | start | end) & (val >= 0) & (np.where(start, next_val, prev_val) >= 0)
    around = np.where(start, next_val, prev_val)

    def per_point(a):
        return a[run].reshape(k, n).T

    flagged = per_point(bad)
    return Flicker(flagged, np.where(flagged, per_point(length), 0), np.where(flagged, per_point(around), -1),
                   flagged & per_point(start | end))


def video_findings(ctx: Context, s: DeepQASettings) -> pa.Table:
    schema = ctx.schema
    # a track is one annotator's track id within one export file (track ids restart per video)
    owner = ctx.ann if ctx.source is None else np.char.add(np.char.add(ctx.ann.astype(str), "\0"),
                                                           ctx.source.astype(str))
    to = track_order(owner, ctx.track_id, ctx.frame)
    if len(to.rows) == 0:
        return empty_findings()
    rows = to.rows
    kps, s2, frame = ctx.kps[rows], ctx.s2[rows], ctx.frame[rows]
    swapped = blame_pairs(track_swapped_pairs(kps, s2, to.new_track, schema, pair_swap_gain=s.pair_swap_gain))
    fixed = exchange_pairs(kps, swapped, schema)  # jitter and flicker are judged on the swap-corrected track
    where = [f"frame {f} of track {t} (annotator {a})" for f, t, a in zip(frame, ctx.track_id[rows], ctx.ann[rows])]
    names = np.asarray(schema.keypoints, dtype=object)
    tables = []
    sw = np.flatnonzero(swapped.any(axis=1))
    tables.append(ctx.table(
        "qa.left_right_swap", rows[sw], keypoint=swap_keypoint(schema, swapped[sw]), value=swapped[sw].sum(axis=1),
        message=[f"{'left and right (every pair)' if whole else p} exchanged in {where[i]} compared with the frames "
                 f"around it"
                 for i, p, whole in zip(sw, pair_names(schema, swapped[sw]), mirrored_whole(swapped[sw]))]))
    jit = jitter(fixed, s2, frame, to, z_min=s.jitter_z, min_dev=s.jitter_min)
    i, j = np.nonzero(jit.flagged)
    last = jit.last[i, j]
    tables.append(ctx.table(
        "qa.temporal_jitter", rows[i], keypoint=names[j], value=jit.deviation[i, j],
        message=[f"{n} jumps {d:.2f} scale units off its path in {where[r]} (robust z {z:.1f})" if m == 1 else
                 f"{n} jumps {d:.2f} scale units off its path for {m} frames, frames {frame[r]}-{frame[e]} of track "
                 f"{ctx.track_id[rows[r]]} (annotator {ctx.ann[rows[r]]}), and comes back (robust z {z:.1f})"
                 for r, e, n, d, z, m in zip(i, last, names[j], jit.deviation[i, j], jit.z[i, j], jit.frames[i, j])]))
    states = visibility_states(fixed[..., 2])
    fl = flicker(states, to.new_track, window=s.flicker_window)
    i, j = np.nonzero(fl.flagged)
    tables.append(ctx.table(
        "qa.temporal_jitter", rows[i], keypoint=names[j], value=fl.run_length[i, j].astype(np.float64),
        message=[f"visibility of {n} is {STATE_WORDS[v]} in {where[r]}, at the track's end, and "
                 f"{STATE_WORDS[b]} in the frames beside it" if e else
                 f"visibility of {n} flickers {STATE_WORDS[b]} -> {STATE_WORDS[v]} -> {STATE_WORDS[b]} in {where[r]}"
                 for r, n, b, v, e in zip(i, names[j], fl.before[i, j], states[i, j], fl.at_end[i, j])]))
    return concat_findings(tables)
