"""Temporal checks on video tracks: point jitter and visibility flicker.

A track is one owner's `track_id` (the owner: the annotator, and the export file when known), its
frames ordered by `frame`. How jitter is judged against the track's own motion is written in
kpdeliver.qa.jitter, which holds the jitter test and the track order; this module holds the
visibility flicker test and the video findings of both.

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
from kpdeliver.qa.jitter import TrackOrder, jitter, track_order
from kpdeliver.qa.swaps import (
    blame_pairs,
    exchange_pairs,
    mirrored_whole,
    pair_names,
    swap_keypoint,
    track_swapped_pairs,
)


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
    prev_val, next_val = np.concatenate(([-2], val[:-1])), np.concatenate((val[1:], [-2]))
    prev_len, next_len = np.r_[0, length[:-1]], np.r_[length[1:], 0]
    inner = (
        (length <= window)
        & ~opens_track
        & ~next_opens
        & (prev_val == next_val)
        & (prev_val != val)
        & (prev_len >= length)
        & (next_len >= length)
    )
    # a track's end: only one side to compare with, so only a single frame against a steady run
    start = opens_track & ~next_opens & (length == 1) & (next_len > window) & (next_val != val)
    end = ~opens_track & next_opens & (length == 1) & (prev_len > window) & (prev_val != val)
    bad = (inner | start | end) & (val >= 0) & (np.where(start, next_val, prev_val) >= 0)
    around = np.where(start, next_val, prev_val)

    def per_point(a):
        return a[run].reshape(k, n).T

    flagged = per_point(bad)
    return Flicker(
        flagged,
        np.where(flagged, per_point(length), 0),
        np.where(flagged, per_point(around), -1),
        flagged & per_point(start | end),
    )


def video_findings(ctx: Context, s: DeepQASettings) -> pa.Table:
    schema = ctx.schema
    # a track is one annotator's track id within one export file (track ids restart per video)
    owner = (
        ctx.ann
        if ctx.source is None
        else np.char.add(np.char.add(ctx.ann.astype(str), "\0"), ctx.source.astype(str))
    )
    to = track_order(owner, ctx.track_id, ctx.frame)
    if len(to.rows) == 0:
        return empty_findings()
    rows = to.rows
    kps, s2, frame = ctx.kps[rows], ctx.s2[rows], ctx.frame[rows]
    swapped = blame_pairs(track_swapped_pairs(kps, s2, to.new_track, schema, pair_swap_gain=s.pair_swap_gain))
    fixed = exchange_pairs(kps, swapped, schema)  # jitter and flicker are judged on the swap-corrected track
    where = [
        f"frame {f} of track {t} (annotator {a})" for f, t, a in zip(frame, ctx.track_id[rows], ctx.ann[rows])
    ]
    return concat_findings(
        [
            _swap_table(ctx, rows, swapped, where),
            _jitter_table(ctx, s, rows, fixed, s2, frame, to, where),
            _flicker_table(ctx, s, rows, fixed, to, where),
        ]
    )


def _swap_table(ctx: Context, rows: np.ndarray, swapped: np.ndarray, where: list[str]) -> pa.Table:
    """Left/right swaps of a frame against the frames around it."""
    schema = ctx.schema
    sw = np.flatnonzero(swapped.any(axis=1))
    return ctx.table(
        "qa.left_right_swap",
        rows[sw],
        keypoint=swap_keypoint(schema, swapped[sw]),
        value=swapped[sw].sum(axis=1),
        message=[
            f"{'left and right (every pair)' if whole else p} exchanged in {where[i]} compared with the frames "
            f"around it"
            for i, p, whole in zip(sw, pair_names(schema, swapped[sw]), mirrored_whole(swapped[sw]))
        ],
    )


def _jitter_table(
    ctx: Context,
    s: DeepQASettings,
    rows: np.ndarray,
    fixed: np.ndarray,
    s2: np.ndarray,
    frame: np.ndarray,
    to: TrackOrder,
    where: list[str],
) -> pa.Table:
    """Jumps off a point's path on the swap-corrected track, one finding per frame of an excursion."""
    names = np.asarray(ctx.schema.keypoints, dtype=object)
    jit = jitter(fixed, s2, frame, to, ctx.schema.sigma_array, z_min=s.jitter_z, min_dev=s.jitter_min)
    # every frame of an excursion carries the finding (each displaced point is one to correct)
    at, j = np.nonzero(jit.first >= 0)
    i = jit.first[at, j]
    last = jit.last[i, j]
    return ctx.table(
        "qa.temporal_jitter",
        rows[at],
        keypoint=names[j],
        value=jit.deviation[i, j],
        message=[
            f"{n} jumps {d:.2f} scale units off its path in {where[r]} ({z:.1f} sigma of its noise)"
            if m == 1
            else f"{n} jumps {d:.2f} scale units off its path for {m} frames, frames {frame[r]}-{frame[e]} of track "
            f"{ctx.track_id[rows[r]]} (annotator {ctx.ann[rows[r]]}), and comes back ({z:.1f} sigma of its "
            f"noise); this is frame {frame[t]}"
            for t, r, e, n, d, z, m in zip(
                at, i, last, names[j], jit.deviation[i, j], jit.z[i, j], jit.frames[i, j]
            )
        ],
    )


def _flicker_table(
    ctx: Context, s: DeepQASettings, rows: np.ndarray, fixed: np.ndarray, to: TrackOrder, where: list[str]
) -> pa.Table:
    """Short visibility runs that differ from the runs around them on the swap-corrected track."""
    names = np.asarray(ctx.schema.keypoints, dtype=object)
    states = visibility_states(fixed[..., 2])
    fl = flicker(states, to.new_track, window=s.flicker_window)
    i, j = np.nonzero(fl.flagged)
    return ctx.table(
        "qa.temporal_jitter",
        rows[i],
        keypoint=names[j],
        value=fl.run_length[i, j].astype(np.float64),
        message=[
            f"visibility of {n} is {STATE_WORDS[v]} in {where[r]}, at the track's end, and "
            f"{STATE_WORDS[b]} in the frames beside it"
            if e
            else f"visibility of {n} flickers {STATE_WORDS[b]} -> {STATE_WORDS[v]} -> {STATE_WORDS[b]} in {where[r]}"
            for r, n, b, v, e in zip(i, names[j], fl.before[i, j], states[i, j], fl.at_end[i, j])
        ],
    )
