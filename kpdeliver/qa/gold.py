"""Gold items: trusted reference labels for some images, matched to annotators' labels by file name.

On each gold image, each annotator's instances are matched to the gold instances by maximum total
OKS against gold (Hungarian; a pair scores the better of as-labeled and mirrored, so a swapped
instance still meets its gold). Then, point by point: a point farther from gold than
`tolerance` * kappa * s, or whose visibility flag differs from gold's, is a mismatch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kpdeliver.qa.agreement import visibility_states
from kpdeliver.qa.oks import match_max_total, oks_matrix
from kpdeliver.schema import KeypointSchema


@dataclass(frozen=True)
class GoldMatch:
    rows: np.ndarray  # matched dataset instance rows
    gold_rows: np.ndarray  # their gold instance rows
    missed_gold: np.ndarray  # gold rows some annotator of that image did not label
    missed_by: np.ndarray  # ... and that annotator (object str)
    extra_rows: np.ndarray  # dataset rows on gold images that match no gold instance


def match_gold(
    keys: np.ndarray, annotators: np.ndarray, kps: np.ndarray,
    gold_keys: np.ndarray, gold_kps: np.ndarray, gold_s2: np.ndarray, schema: KeypointSchema,
    *, match_min: float,
) -> GoldMatch:
    """Match every annotator's instances on gold images to the gold instances of the same file name."""
    keys, gold_keys, annotators = keys.astype(str), gold_keys.astype(str), annotators.astype(str)
    on_gold = np.flatnonzero(np.isin(keys, gold_keys))
    rows, gold_rows, missed, missed_by, extra = [], [], [], [], []
    sig = schema.sigma_array
    # one (file name, annotator) block after another, and each file name's gold rows, without a scan per block
    _, block = np.unique(np.stack([keys[on_gold], annotators[on_gold]], 1), axis=0, return_inverse=True)
    order = on_gold[np.argsort(block.ravel(), kind="stable")]
    starts = np.flatnonzero(np.r_[True, np.diff(np.sort(block.ravel())) != 0])
    g_order = np.argsort(gold_keys, kind="stable")
    g_sorted = gold_keys[g_order]
    for mine in np.split(order, starts[1:]):
        if len(mine) == 0:
            continue
        key, ann = keys[mine[0]], annotators[mine[0]]
        ref = g_order[np.searchsorted(g_sorted, key, "left"):np.searchsorted(g_sorted, key, "right")]
        score = np.fmax(
            oks_matrix(kps[mine], gold_kps[ref], gold_s2[ref], sig),
            oks_matrix(kps[mine][:, schema.flip_idx], gold_kps[ref], gold_s2[ref], sig),
        )
        r, c = match_max_total(score, min_score=match_min)
        rows.append(mine[r])
        gold_rows.append(ref[c])
        lost = np.setdiff1d(ref, ref[c])
        missed.append(lost)
        missed_by.append(np.full(len(lost), ann, dtype=object))
        extra.append(np.setdiff1d(mine, mine[r]))

    def cat(parts, dtype=np.int64):
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    return GoldMatch(cat(rows), cat(gold_rows), cat(missed), cat(missed_by, object), cat(extra))


def point_mismatches(
    kps: np.ndarray, gold: np.ndarray, gold_s2: np.ndarray, sigmas: np.ndarray, *, tolerance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For aligned rows: (distance in kappa*s units [n, K], far [n, K], visibility differs [n, K])."""
    kappa_s = 2.0 * np.asarray(sigmas)[None, :] * np.sqrt(gold_s2)[:, None]
    dist = np.hypot(kps[..., 0] - gold[..., 0], kps[..., 1] - gold[..., 1]) / kappa_s
    both = (kps[..., 2] > 0) & (gold[..., 2] > 0)
    dist = np.where(both, dist, np.nan)
    far = np.nan_to_num(dist, nan=0.0) > tolerance
    mine, ref = visibility_states(kps[..., 2]), visibility_states(gold[..., 2])
    vis = (mine >= 0) & (ref >= 0) & (mine != ref)
    return dist, far, vis
