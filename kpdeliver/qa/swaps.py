"""Left/right swaps: against a reference (consensus or gold), and between consecutive video frames;
and how an exchange is put right and told.

An exchanged pair (a, b) shows as a gain when the pair is flipped back:
gain = term(a'->a) + term(b'->b) - term(a->a) - term(b->b) with a' = b and b' = a, in OKS terms
(each in [0, 1], so a gain near 2 means both points sit on the other side's reference). A symmetric
pose (the two points nearly coincide) gives a gain near 0, so it is never flagged.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from kpdeliver.qa.oks import keypoint_similarity, oks_from_terms
from kpdeliver.schema import KeypointSchema


@dataclass(frozen=True)
class SwapEvidence:
    oks: np.ndarray  # [n] OKS as labeled
    oks_flipped: np.ndarray  # [n] OKS with every left/right pair exchanged
    pair_gain: np.ndarray  # [n, P] gain of exchanging each flip pair alone (NaN: not comparable)

    def swapped_pairs(self, *, pair_swap_gain: float) -> np.ndarray:
        return np.nan_to_num(self.pair_gain, nan=-np.inf) > pair_swap_gain

    def mirrored(self, *, swap_gain: float) -> np.ndarray:
        return np.nan_to_num(self.oks_flipped - self.oks, nan=0.0) > swap_gain

    def is_swap(self, *, swap_gain: float, pair_swap_gain: float) -> np.ndarray:
        return self.mirrored(swap_gain=swap_gain) | self.swapped_pairs(pair_swap_gain=pair_swap_gain).any(
            axis=1
        )

    def exchanged_pairs(self, *, swap_gain: float, pair_swap_gain: float) -> np.ndarray:
        """[n, P]: the pairs to blame; every pair of an instance mirrored as a whole."""
        return self.swapped_pairs(pair_swap_gain=pair_swap_gain) | self.mirrored(swap_gain=swap_gain)[:, None]


def flip_pairs_array(schema: KeypointSchema) -> np.ndarray:
    return np.asarray(schema.flip_pairs, np.int64).reshape(-1, 2)


def swap_evidence(
    kps: np.ndarray, ref: np.ndarray, ref_s2: np.ndarray, schema: KeypointSchema
) -> SwapEvidence:
    """Evidence that row i of kps [n, K, 3] has left and right exchanged relative to row i of ref."""
    sig = schema.sigma_array
    terms = keypoint_similarity(kps, ref, ref_s2, sig)
    flipped = keypoint_similarity(kps[:, schema.flip_idx], ref, ref_s2, sig)
    pairs = flip_pairs_array(schema)
    a, b = pairs[:, 0], pairs[:, 1]
    gain = flipped[:, a] + flipped[:, b] - terms[:, a] - terms[:, b]
    return SwapEvidence(oks_from_terms(terms), oks_from_terms(flipped), gain)


def track_swapped_pairs(
    kps: np.ndarray,
    s2: np.ndarray,
    new_track: np.ndarray,
    schema: KeypointSchema,
    *,
    pair_swap_gain: float,
    window: int = 3,
) -> np.ndarray:
    """Pairs labeled the other way round than in the frames around them: bool [n, P].

    Rows are frames sorted by track then frame; new_track marks each track's first row. Each pair is
    centred on its own midpoint (so whole-body motion does not matter) and compared with the median of
    the same pair in up to `window` labeled frames on each side within the track: a run of up to
    `window` swapped frames is the minority there and stands out, while a person turning round (the
    pair's direction changing over many frames) does not; nor does one point jumping past the other
    (the pair's midpoint moves). A second pass leaves the frames flagged by the first out of the
    medians, so a frame next to a swapped run is not judged against it.
    """
    n, p = len(kps), len(schema.flip_pairs)
    if n < 2 or p == 0:
        return np.zeros((n, p), bool)
    pairs = flip_pairs_array(schema)
    a, b = pairs[:, 0], pairs[:, 1]
    both = (kps[:, a, 2] > 0) & (kps[:, b, 2] > 0)  # [n, P]
    h = np.where(both[..., None], (kps[:, a, :2] - kps[:, b, :2]) / 2, np.nan)  # [n, P, 2]
    track = np.cumsum(new_track) - 1
    var = (2.0 * schema.sigma_array) ** 2
    denom = 2.0 * s2[:, None] * ((var[a] + var[b]) / 2)[None, :]
    mid = np.where(both[..., None], (kps[:, a, :2] + kps[:, b, :2]) / 2, np.nan)
    ref_mid = _midpoint_path(
        mid, track
    )  # an exchange leaves the midpoint alone, so swapped frames do not spoil it
    flagged = np.zeros((n, p), bool)
    for _ in range(2):
        ref, count = _neighbour_median(np.where(flagged[..., None], np.nan, h), track, window)
        kept = np.exp(-((h - ref) ** 2).sum(-1) / denom)
        crossed = np.exp(-((h + ref) ** 2).sum(-1) / denom)
        gain = 2.0 * (crossed - kept)  # as the pair terms of swap_evidence: both points exchanged vs kept
        # an exchange keeps the pair where it was; one point jumping past the other moves the midpoint
        # by half the jump (at least the pair's separation when it mimics an exchange)
        stays = ((mid - ref_mid) ** 2).sum(-1) <= (ref**2).sum(-1)
        flagged = both & (count >= 2) & (np.nan_to_num(gain, nan=0.0) > pair_swap_gain) & stays
    # in a frame with an exchange, the other pairs are exchanged too where that fits the neighbours better:
    # pairs too close to show a clear gain (a side view), or with one point unlabeled, whose flags then
    # read the other way round (left visible and right unlabeled between frames with the reverse)
    flags = np.stack([kps[:, a, 2], kps[:, b, 2]], axis=-1)
    ref_flags, _ = _neighbour_median(np.where(flagged[..., None], np.nan, flags), track, window)
    flags_crossed = (flags[..., 0] != flags[..., 1]) & (flags[..., ::-1] == ref_flags).all(axis=-1)
    fits = (both & (np.nan_to_num(gain, nan=0.0) > 0) & stays) | flags_crossed
    return flagged | (flagged.any(axis=1, keepdims=True) & fits)


def _midpoint_path(mid: np.ndarray, track: np.ndarray) -> np.ndarray:
    """Where each pair's midpoint [n, P, 2] would be if it moved on steadily: halfway between the frames
    before and after, or carried on from the two frames beside a track's end (the person may be walking,
    so a median of the frames around an end would lag behind)."""

    def shifted(by: int) -> np.ndarray:
        idx = np.arange(len(mid)) - by
        inside = (idx >= 0) & (idx < len(mid))
        idx = np.clip(idx, 0, len(mid) - 1)
        return np.where((inside & (track[idx] == track))[:, None, None], mid[idx], np.nan)

    p1, n1, p2, n2 = shifted(1), shifted(-1), shifted(2), shifted(-2)
    inner = (p1 + n1) / 2
    return np.where(np.isfinite(inner), inner, np.where(np.isfinite(2 * n1 - n2), 2 * n1 - n2, 2 * p1 - p2))


def _neighbour_median(h: np.ndarray, track: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Median of h [n, P, 2] over the rows within +-window of each row in the same track (the row
    itself left out), and how many such rows had a value."""
    n = len(h)
    rows = []
    for d in (*range(-window, 0), *range(1, window + 1)):
        idx = np.arange(n) + d
        inside = (idx >= 0) & (idx < n)
        idx = np.clip(idx, 0, n - 1)
        rows.append(np.where((inside & (track[idx] == track))[:, None, None], h[idx], np.nan))
    near = np.stack(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no labeled neighbour: no verdict
        return np.nanmedian(near, axis=0), np.sum(~np.isnan(near[..., 0]), axis=0)


# --- from exchanged pairs to findings (gold, overlap and video checks report swaps alike) ---


def mirrored_whole(pair_mask: np.ndarray) -> np.ndarray:
    """[n] bool: most of the instance's pairs [n, P] are exchanged, i.e. it is labeled mirrored."""
    return pair_mask.sum(axis=1) * 2 > pair_mask.shape[1]


def blame_pairs(pair_mask: np.ndarray) -> np.ndarray:
    """Most pairs exchanged = the instance is mirrored: its close-together pairs (e.g. the shoulders of a
    side view, which show no gain) were exchanged too, flags included."""
    return pair_mask | mirrored_whole(pair_mask)[:, None]


def pairs_to_keypoints(schema: KeypointSchema, pair_mask: np.ndarray) -> np.ndarray:
    """[n, K] bool: the keypoints of the exchanged pairs [n, P]."""
    out = np.zeros((len(pair_mask), schema.num_keypoints), bool)
    pairs = flip_pairs_array(schema)
    out[:, pairs[:, 0]] = pair_mask
    out[:, pairs[:, 1]] |= pair_mask
    return out


def exchange_pairs(kps: np.ndarray, pair_mask: np.ndarray, schema: KeypointSchema) -> np.ndarray:
    """kps [n, K, 3] with the pairs in pair_mask [n, P] exchanged (puts a swap right)."""
    pairs = flip_pairs_array(schema)
    a, b = pairs[:, 0], pairs[:, 1]
    m = pair_mask[..., None]
    out = kps.copy()
    out[:, a] = np.where(m, kps[:, b], kps[:, a])
    out[:, b] = np.where(m, kps[:, a], kps[:, b])
    return out


def pair_names(schema: KeypointSchema, pair_mask: np.ndarray) -> list[str]:
    """Per instance, its exchanged pairs in words ("left_wrist/right_wrist, ...")."""
    pairs = flip_pairs_array(schema)
    names = np.array([f"{schema.keypoints[a]}/{schema.keypoints[b]}" for a, b in pairs], dtype=object)
    return [", ".join(names[m]) for m in pair_mask]


def swap_keypoint(schema: KeypointSchema, pair_mask: np.ndarray) -> list:
    """Finding keypoint of a swap: the first exchanged pair's first point; null for a mirrored instance."""
    pairs = flip_pairs_array(schema)
    whole = mirrored_whole(pair_mask)
    first = np.argmax(pair_mask, axis=1) if len(pairs) else np.zeros(len(pair_mask), np.int64)
    return [
        None if w or not m.any() else schema.keypoints[pairs[f, 0]]
        for w, m, f in zip(whole, pair_mask, first)
    ]


def swap_message(
    schema: KeypointSchema, who: np.ndarray, pair_mask: np.ndarray, against: list[str]
) -> list[str]:
    return [
        f"annotator {w} labeled this instance mirrored (left and right exchanged) against {g}"
        if m
        else f"annotator {w} exchanged {p or 'left and right'} against {g}"
        for w, m, p, g in zip(who, mirrored_whole(pair_mask), pair_names(schema, pair_mask), against)
    ]
