"""Jitter on video tracks: a point that leaves its path for a few frames and comes back.

A track is one owner's `track_id` (the owner: the annotator, and the export file when known), its
frames ordered by `frame` (video = track_id >= 0 and frame >= 0). Jitter is judged against the
track's own motion, so a fast but smooth movement is not flagged: a window of 1-3 labeled frames of
one keypoint is compared with the straight path bridging it (from the labeled point before to the one
after, by frame number; at a track's end a single frame is carried on from the two on one side), in
units of the track's median instance scale, and its distance off that path, over all its frames at
once, is weighed against the track's noise (estimated per track, keypoint and window length from
the median of the same distance over the whole track). An excursion is far off, displaced the same
way in every frame, off the path of each side alone, and its neighbours fit their paths once it is
left out (DeepLabCut's outlier "jump" test, extended to a few frames, made to blame the right frames
and to pass a sudden change of speed or direction and a step that stays).

kpdeliver.qa.temporal reports what `jitter` finds, with swaps and flicker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import chdtri, gammaincinv  # chi-square quantiles, as scipy.stats.chi2 computes them

from kpdeliver.qa.robust import group_median


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


RETURN_SHARE = (
    0.6  # an excursion is at least this share of its distance from the bridge off each side's own path
)
SETTLE_SHARE = (
    0.3  # with the window left out, its neighbours are at most this share of its deviation off their path
)
# (a step that stays, seen as a window of 3, 2 or 1 frames before it, leaves them 0.37, 0.47, 0.65 of it)
FRAME_SHARE = (
    0.5  # every frame of an excursion is displaced at least this share of its mean displacement, its way
)
RAYLEIGH_MEDIAN = float(
    np.sqrt(2 * np.log(2))
)  # median distance of a 2-D normal point from its centre, in sigmas


@dataclass(frozen=True)
class Jitter:
    first: np.ndarray  # [n, K] for every frame of an excursion, the row of its first frame (-1 elsewhere)
    # at an excursion's first frame (rows in track order; -1, 0 or NaN at other rows):
    last: np.ndarray  # [n, K] row of the excursion's last frame
    frames: np.ndarray  # [n, K] its number of frames
    deviation: np.ndarray  # [n, K] its mean displacement off the path bridging it, scale units
    z: np.ndarray  # [n, K] its distance from that path in noise sigmas (Mahalanobis, over its frames)


def jitter(
    kps: np.ndarray,
    s2: np.ndarray,
    frames: np.ndarray,
    tracks: TrackOrder,
    sigmas: np.ndarray,
    *,
    z_min: float,
    min_dev: float,
    max_gap: int = 3,
    max_frames: int = 3,
) -> Jitter:
    """Excursions in tracks: a point that leaves its path for 1..max_frames labeled frames in a row and
    comes back; kps/s2/frames are already in track order, sigmas are the schema's per-keypoint spreads.

    A window of frames is an excursion when, judged on the track's own noise, it is far off the straight
    path bridging it (from the point before to the point after): the Mahalanobis distance of all its
    frames together from that bridge (the bridge's ends are noisy too, so its frames' residuals are
    correlated), against the chi-square with two degrees of freedom per frame at the tail a single
    frame reaches at z_min sigmas; at least min_dev scale units on average; every frame displaced (one
    stretch, not one spike); off each side's own path (a step that stays, or a sharp turn, leaves the
    window on one side's path); and leaving it out makes the points on either side fit their own paths
    (displaced points pull the neighbours' paths, so a neighbour of an excursion, or a window holding
    part of one, is off too but does not pass this, nor does a smooth fast curve or a sudden change of
    speed, which bend the neighbours' paths as much as the window's). Longer excursions need two points
    on each side (only a return, seen against a path, tells them from a step); a single frame at a
    track's end is judged from the two points on one side.

    The noise is a per-axis sigma per track and keypoint, from the distances of single points off their
    neighbours' bridge (robust: their median, as a 2-D normal's), and at least the track's pooled noise
    in units of each keypoint's sigma (fifty frames of one point can give too narrow a spread, and then a
    plain placement error reads as a jump)."""
    n, k = kps.shape[:2]
    if n == 0:
        empty = np.zeros((0, k))
        return Jitter(empty.astype(np.int64), empty.astype(np.int64), empty.astype(np.int64), empty, empty)
    view = _TrackView.of(kps, s2, frames, tracks)
    # window[i]: the i-th frame of a window opening at each row
    window = [np.where(view.lab, np.arange(n)[:, None], -1)]
    for _ in range(max_frames - 1):
        window.append(view.nxt(window[-1]))
    p1 = view.prev(window[0])
    out = Jitter(
        np.full((n, k), -1),
        np.full((n, k), -1),
        np.zeros((n, k), np.int64),
        np.full((n, k), np.nan),
        np.full((n, k), np.nan),
    )
    taken = np.zeros((n, k), bool)  # frames already in a reported excursion
    for w in range(
        max_frames, 0, -1
    ):  # longest first: a window inside a found excursion is not reported again
        win, r1 = window[:w], view.nxt(window[w - 1])
        found, chi2, mean_dev = _excursions(
            view, win, p1, r1, max_gap + w - 1, tracks, sigmas, z_min=z_min, min_dev=min_dev
        )
        _claim(out, taken, win, p1, r1, found, chi2, mean_dev)
    return out


@dataclass(frozen=True)
class _TrackView:
    """Points in track order, with where each row's track starts and ends and its scale."""

    kps: np.ndarray
    frames: np.ndarray
    lab: np.ndarray  # [n, K] labeled
    first: np.ndarray  # [n] first row of each row's track
    end: np.ndarray  # [n] one past its last row
    scale: np.ndarray  # [n] the track's median scale

    @classmethod
    def of(cls, kps: np.ndarray, s2: np.ndarray, frames: np.ndarray, tracks: TrackOrder) -> _TrackView:
        n = kps.shape[0]
        n_tracks = int(tracks.track.max()) + 1
        scale = group_median(np.sqrt(s2), tracks.track, n_tracks)[tracks.track]
        starts = np.flatnonzero(tracks.new_track)
        first, end = starts[tracks.track], np.r_[starts[1:], n][tracks.track]
        return cls(kps, frames, kps[..., 2] > 0, first, end, scale)

    def prev(self, at):
        return _prev_usable(self.lab, at, self.first)

    def nxt(self, at):
        return _next_usable(self.lab, at, self.end)

    def path(self, at, l1, r1, gap):
        return _off_path(self.kps, self.frames, at, (l1, self.prev(l1)), (r1, self.nxt(r1)), self.scale, gap)


def _excursions(
    view: _TrackView,
    win: list,
    p1,
    r1,
    gap: int,
    tracks: TrackOrder,
    sigmas: np.ndarray,
    *,
    z_min: float,
    min_dev: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(found, chi2, mean displacement), [n, K] each, of the windows of `len(win)` frames opening at
    each row: `jitter`'s tests, before overlapping windows are resolved."""
    w, (n, k) = len(win), view.lab.shape
    tail = np.exp(-(z_min**2) / 2)  # a single frame's chi-square (2 degrees of freedom) beyond z_min sigmas
    none = (np.full((n, k), -1), np.full((n, k), -1))
    bridge = [view.path(at, p1, r1, gap) for at in win]
    res = np.stack([b.residual for b in bridge])  # [w, n, K, 2]
    shift = res.mean(axis=0)  # the window's displacement off its bridge
    mean_dev = np.nan_to_num(np.hypot(shift[..., 0], shift[..., 1]), nan=-np.inf)
    # every frame displaced the same way: one stretch, not a spike, nor a kink the bridge cuts across
    along = np.nan_to_num((res * shift).sum(axis=-1), nan=-np.inf) / np.maximum(mean_dev, 1e-12)
    raw = _mahalanobis(bridge)
    noise = _track_noise(raw, 2 * w, tracks, sigmas, floor=min_dev / z_min)
    chi2 = np.nan_to_num(raw / noise**2)
    strength = np.nan_to_num(np.stack([b.score for b in bridge]).mean(axis=0), nan=-np.inf) / noise
    # off each side's own path, every frame and the window as a whole beyond the noise: a smooth swing's
    # peak sags off its bridge like an excursion, but the frames entering and leaving it stay on the
    # paths of the sides they are next to, and a step that stays leaves the window on one side's path
    thr = chdtri(2 * w, tail)  # chi2.isf
    off_side = chdtri(
        2 * w, np.exp(-(z_min**2) / 8)
    )  # (z_min / 2 for one frame: carrying a path on is noisy)
    away = np.ones((n, k), bool)
    for left, right in (((p1, view.prev(p1)), none), (none, (r1, view.nxt(r1)))):
        side = [_off_path(view.kps, view.frames, at, left, right, view.scale, gap) for at in win]
        away &= np.nan_to_num(_mahalanobis(side) / noise**2, nan=np.inf) >= off_side
        for b, o in zip(bridge, side):
            away &= np.nan_to_num(o.dev, nan=np.inf) >= RETURN_SHARE * np.nan_to_num(b.dev, nan=np.inf)
    # each neighbour judged with the window left out (its own path then skips over it)
    fits = np.maximum(SETTLE_SHARE * strength, z_min / 2) * noise
    settled = [
        np.nan_to_num(view.path(p1, view.prev(p1), r1, gap).score, nan=-np.inf) <= fits,
        np.nan_to_num(view.path(r1, p1, view.nxt(r1), gap).score, nan=-np.inf) <= fits,
    ]
    found = (
        (win[-1] >= 0)
        & (chi2 >= thr)
        & (mean_dev >= min_dev)
        & np.all(along >= FRAME_SHARE * mean_dev, axis=0)
        & settled[0]
        & settled[1]
        & away
    )
    if w > 1:
        found &= (p1 >= 0) & (view.prev(p1) >= 0) & (r1 >= 0) & (view.nxt(r1) >= 0)
    return found, chi2, mean_dev


def _claim(
    out: Jitter,
    taken: np.ndarray,
    win: list,
    p1,
    r1,
    found: np.ndarray,
    chi2: np.ndarray,
    mean_dev: np.ndarray,
) -> None:
    """Record the windows `found` in `out`, unless their frames or the points bridging them belong to
    a longer excursion found before, or to a stronger window of this length (the clean frames just
    before an excursion sag toward it); their frames are then `taken`."""
    cols = np.broadcast_to(np.arange(taken.shape[1]), taken.shape)
    claim = np.where(taken, np.inf, 0.0)
    for at in win:
        np.maximum.at(claim, (at[found], cols[found]), chi2[found])
    for at in (*win, p1, r1):
        found &= ~(claim[np.maximum(at, 0), cols] > chi2) | (at < 0)
    for at in win:
        taken[at[found], cols[found]] = True
        out.first[at[found], cols[found]] = win[0][found]
    out.last[found] = win[-1][found]
    out.frames[found] = len(win)
    out.deviation[found] = mean_dev[found]
    out.z[found] = np.sqrt(chi2[found])


def _track_noise(
    raw: np.ndarray, dof: int, tracks: TrackOrder, sigmas: np.ndarray, *, floor: float
) -> np.ndarray:
    """[n, K] per-axis noise sigma (scale units) of each row's track and keypoint, for windows whose
    squared Mahalanobis distances in scale units (`raw`, with `dof` degrees of freedom) are given: the
    median of a chi-square is known, so the windows' median gives the sigma (robust: the few windows on
    an excursion do not move it). It holds the track's motion as well as its noise: the longer the
    bridge, the more a fast curve sags off it. At least the track's median in units of each keypoint's
    spread (fifty frames of one point can give too narrow a spread, and then a plain placement error
    reads as a jump), and at least `floor`."""
    k = raw.shape[1]
    n_tracks = int(tracks.track.max()) + 1
    expected = 2 * gammaincinv(dof / 2, 0.5)  # chi2.median
    groups = (tracks.track[:, None] * k + np.arange(k)[None, :]).ravel()
    own = group_median(raw.ravel(), groups, n_tracks * k).reshape(n_tracks, k) / expected
    pooled = group_median((raw / sigmas**2).ravel(), np.repeat(tracks.track, k), n_tracks) / expected
    noise = np.sqrt(np.fmax(np.fmax(own, pooled[:, None] * sigmas**2), floor**2))
    return np.nan_to_num(noise, nan=floor)[tracks.track]


def _mahalanobis(bridge: list[Residual]) -> np.ndarray:
    """[n, K] squared Mahalanobis distance of a window's points from the path bridging them, in units of
    the per-axis noise sigma squared: each residual is its point's noise minus the bridge ends' noise
    weighted (wa, wb), so their covariance is sigma^2 (I + A A^T), A the frames' (wa, wb) rows, and its
    inverse I - A (I + A^T A)^-1 A^T (Woodbury) needs only a 2 x 2 inverse per window."""
    e = np.stack([b.residual for b in bridge])  # [m, n, K, 2]
    wa, wb = np.stack([b.wa for b in bridge]), np.stack([b.wb for b in bridge])  # [m, n, K]
    ua, ub = (wa[..., None] * e).sum(axis=0), (wb[..., None] * e).sum(axis=0)  # A^T e, [n, K, 2]
    m11, m22, m12 = 1 + (wa**2).sum(axis=0), 1 + (wb**2).sum(axis=0), (wa * wb).sum(axis=0)
    det = m11 * m22 - m12**2
    back = (
        (m22[..., None] * ua**2 - 2 * m12[..., None] * ua * ub + m11[..., None] * ub**2) / det[..., None]
    ).sum(-1)
    return (e**2).sum(axis=(0, -1)) - back


@dataclass(frozen=True)
class Residual:
    residual: np.ndarray  # [..., 2] point minus the path's prediction, scale units (NaN where no path)
    wa: np.ndarray  # weights of the path's two ends in that prediction
    wb: np.ndarray

    @property
    def dev(self) -> np.ndarray:
        return np.hypot(self.residual[..., 0], self.residual[..., 1])

    @property
    def score(self) -> np.ndarray:
        """dev in units of the per-axis noise sigma: the prediction's own noise counted (interpolation
        midway adds half a sigma^2, carrying on from one side five)."""
        return self.dev / np.sqrt(1.0 + self.wa**2 + self.wb**2)


def _off_path(kps, frames, at, left, right, scale, max_gap) -> Residual:
    """The points at rows `at` ([n, K], -1: none) against the straight path through the nearest given
    neighbours (left and right: the two nearest rows on each side, -1 where none): one on each side,
    else the two on one side (a track's end), in scale units."""
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
    res = (kps[at, cols, :2] - pred) / scale[at][..., None]
    return Residual(np.where(ok[..., None], res, np.nan), wa, wb)


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
