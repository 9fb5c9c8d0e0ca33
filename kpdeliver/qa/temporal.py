"""Temporal checks on video tracks: point jitter and visibility flicker.

A track is one owner's `track_id` (the owner: the annotator, and the export file when known), its
frames ordered by `frame` (video = track_id >= 0 and
frame >= 0). Jitter is judged against the track's own motion, so a fast but smooth movement is not
flagged: for each point, its deviation from the straight line between its two neighbouring frames
(half the acceleration; interpolated when frames are missing), in units of the track's median
instance scale, gets a robust z-score within its (track, keypoint) series. A point is a jump when that
z-score and the distance are both high, it is the peak among its neighbours, and its displacement
to or from a neighbour is also unusual for the track (the "jump" of DeepLabCut's outlier test).
A track's first and last frames are judged against the line through the two frames beside them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kpdeliver.qa.robust import group_median, robust_z


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


@dataclass(frozen=True)
class Jitter:
    flagged: np.ndarray  # [n, K] bool, rows in track order
    deviation: np.ndarray  # [n, K] distance from the neighbours' line, scale units
    z: np.ndarray  # [n, K] its robust z-score


def jitter(
    kps: np.ndarray, s2: np.ndarray, frames: np.ndarray, tracks: TrackOrder, *, z_min: float, min_dev: float
) -> Jitter:
    """Jumps in tracks; kps/s2/frames are already in track order."""
    n, k = kps.shape[:2]
    n_tracks = int(tracks.track.max()) + 1 if n else 0
    scale = (group_median(np.sqrt(s2), tracks.track, n_tracks)[tracks.track] if n else np.zeros(0))[:, None]
    same_prev = np.zeros(n, bool)
    same_prev[1:] = ~tracks.new_track[1:]
    same_next = _shift(same_prev.astype(float), -1, fill=0.0) > 0
    same_prev2 = same_prev & (_shift(same_prev.astype(float), 1, fill=0.0) > 0)
    same_next2 = same_next & (_shift(same_next.astype(float), -1, fill=0.0) > 0)
    lab = kps[..., 2] > 0
    xy = np.where(lab[..., None], kps[..., :2], np.nan)
    f = frames.astype(np.float64)
    p1, n1, p2, n2 = _shift(xy, 1), _shift(xy, -1), _shift(xy, 2), _shift(xy, -2)
    fp, fn, fp2, fn2 = _shift(f, 1), _shift(f, -1), _shift(f, 2), _shift(f, -2)
    with np.errstate(invalid="ignore", divide="ignore"):
        inner = p1 + (n1 - p1) * ((f - fp) / (fn - fp))[:, None, None]
        # a track's first and last frames: extrapolated from the two frames beside them
        first = n1 + (n1 - n2) * ((fn - f) / (fn2 - fn))[:, None, None]
        last = p1 + (p1 - p2) * ((f - fp) / (fp - fp2))[:, None, None]
    interior = same_prev & same_next
    at_start, at_end = ~same_prev & same_next2, ~same_next & same_prev2
    expected = np.where(interior[:, None, None], inner, np.where(at_start[:, None, None], first, last))
    ok = (interior | at_start | at_end)[:, None] & np.isfinite(expected[..., 0]) & lab
    dev = np.where(ok, np.hypot(*np.moveaxis(xy - expected, -1, 0)) / scale, np.nan)
    # extrapolation carries twice the label noise of interpolation (sqrt 6 vs sqrt 1.5): judged at half
    score = np.where(interior[:, None], dev, dev / 2)
    jump_in = np.where(same_prev[:, None], np.hypot(*np.moveaxis(xy - p1, -1, 0)) / scale, np.nan)
    jump_in /= np.where(same_prev, f - fp, 1.0)[:, None]
    groups = (tracks.track[:, None] * k + np.arange(k)[None, :]).ravel()
    floor = min_dev / z_min
    z = robust_z(score.ravel(), groups, n_tracks * k, floor=floor).reshape(n, k)
    zj = robust_z(jump_in.ravel(), groups, n_tracks * k, floor=floor).reshape(n, k)
    zj_out = np.where(same_next[:, None], _shift(zj, -1), np.nan)
    jumpy = np.fmax(np.nan_to_num(zj, nan=-np.inf), np.nan_to_num(zj_out, nan=-np.inf)) >= z_min / 2
    d0 = np.nan_to_num(score, nan=-np.inf)
    before = np.where(same_prev[:, None], _shift(d0, 1, fill=-np.inf), -np.inf)
    after = np.where(same_next[:, None], _shift(d0, -1, fill=-np.inf), -np.inf)
    peak = (d0 >= before) & (d0 >= after)
    flagged = ok & (np.nan_to_num(z, nan=0.0) >= z_min) & (d0 >= min_dev) & peak & jumpy
    return Jitter(flagged, dev, z)


def _shift(a: np.ndarray, by: int, *, fill=np.nan) -> np.ndarray:
    out = np.full_like(a, fill, dtype=np.float64)
    if by > 0:
        out[by:] = a[:-by]
    else:
        out[:by] = a[-by:]
    return out


@dataclass(frozen=True)
class Flicker:
    flagged: np.ndarray  # [n, K] bool: frames in a short visibility run between two equal states
    run_length: np.ndarray  # [n, K] length of that run (0 where not flagged)
    before: np.ndarray  # [n, K] the state around the run (-1 where not flagged)


def flicker(states: np.ndarray, new_track: np.ndarray, *, window: int) -> Flicker:
    """Visibility runs of <= window frames whose state differs from the equal states on both sides."""
    n, k = states.shape
    if n == 0:
        return Flicker(np.zeros((0, k), bool), np.zeros((0, k), np.int64), np.zeros((0, k), np.int64))
    x = states.T.ravel()  # column by column: runs never cross keypoints (new_track[0] is True)
    starts_track = np.tile(new_track, k)
    change = starts_track.copy()
    change[1:] |= x[1:] != x[:-1]
    run = np.cumsum(change) - 1
    first = np.flatnonzero(change)
    length = np.diff(np.append(first, len(x)))
    val = x[first]
    opens_track = starts_track[first]
    prev_val = np.r_[-2, val[:-1]]
    next_val = np.r_[val[1:], -2]
    next_opens = np.r_[opens_track[1:], True]
    bad = (
        (length <= window) & ~opens_track & ~next_opens
        & (prev_val == next_val) & (prev_val != val) & (val >= 0) & (prev_val >= 0)
    )
    flagged = bad[run].reshape(k, n).T
    return Flicker(
        flagged,
        np.where(flagged, length[run].reshape(k, n).T, 0),
        np.where(flagged, prev_val[run].reshape(k, n).T, -1),
    )
