"""Agreement between annotators on overlap items (images labeled by two or more annotators).

Overlap items are found by image file name, not image id: each annotator's export numbers its
images its own way, while the file name is what the assignment handed out (a merged dataset keeps
one file name per image, so both cases group the same way).

In each overlap image, one annotator (the one with most instances) is the pivot; every other
annotator's instances are matched to the pivot's by maximum total OKS (Hungarian), scoring a pair by
the better of its OKS and its mirrored OKS so that a left/right-swapped instance still finds its
partner; a pair with no labeled point to score (a person labeled with a box only) is scored by
the IoU of its boxes, so identical instances always pair up. A group is one object as labeled by
each annotator. Every member is compared with the others of its group ("leave one out"): pairwise
OKS, per-keypoint OKS terms, the median position of the others (the consensus), their visibility
flags, and pairwise swap evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kpdeliver.qa.oks import (
    keypoint_similarity,
    match_max_total,
    oks_from_terms,
    oks_matrix,
    oks_or_box,
    oks_paired,
)
from kpdeliver.qa.swaps import swap_evidence
from kpdeliver.schema import KeypointSchema

N_STATES = 3  # visibility 0, 1, 2
STATE_WORDS = np.array(["not labeled", "occluded", "visible"], dtype=object)  # per state, for messages


@dataclass(frozen=True)
class Groups:
    rows: np.ndarray  # [G, A] instance row per annotator slot, -1 where absent
    unmatched: np.ndarray  # rows on overlap images that found no partner


def overlap_groups(
    keys: np.ndarray,
    annotators: np.ndarray,
    kps: np.ndarray,
    s2: np.ndarray,
    boxes: np.ndarray,
    schema: KeypointSchema,
    *,
    match_min: float,
) -> Groups:
    """Group the instances of images labeled by >= 2 annotators into one row per labeled object
    (boxes: [n, 4], NaN where absent, for pairs OKS cannot score)."""
    if len(keys) == 0:
        return Groups(np.full((0, 2), -1, np.int64), np.zeros(0, np.int64))
    _, key_code = np.unique(keys.astype(str), return_inverse=True)
    _, ann_code = np.unique(annotators.astype(str), return_inverse=True)
    pairs = np.unique(np.stack([key_code, ann_code], 1), axis=0)
    n_ann = np.bincount(pairs[:, 0], minlength=key_code.max() + 1)
    order = np.argsort(key_code, kind="stable")
    bounds = np.searchsorted(key_code[order], np.arange(len(n_ann) + 1))
    n_rows = np.bincount(key_code, minlength=len(n_ann))
    width = int(n_ann.max())
    simple = (n_ann >= 2) & (n_rows == n_ann)  # one instance per annotator: no assignment problem
    rows_arr, unmatched = _group_simple(
        np.flatnonzero(simple[key_code]),
        key_code,
        ann_code,
        kps,
        s2,
        boxes,
        schema,
        match_min=match_min,
        width=width,
    )
    groups: list[list[int]] = [rows_arr.tolist()] if len(rows_arr) else []
    for key in np.flatnonzero((n_ann >= 2) & ~simple):  # several persons per image: Hungarian per image
        rows = order[bounds[key] : bounds[key + 1]]
        g, u = _group_image(rows, ann_code[rows], kps, s2, boxes, schema, match_min=match_min, width=width)
        groups.append(g)
        unmatched.append(u)
    rows_arr = np.asarray([r for g in groups for r in g], np.int64).reshape(-1, width)
    return Groups(rows_arr, np.concatenate(unmatched) if unmatched else np.zeros(0, np.int64))


def _group_simple(rows, key_code, ann_code, kps, s2, boxes, schema, *, match_min, width):
    """Images where each annotator labeled one instance, all at once; a member too unlike the first is unmatched."""
    rows = rows[np.lexsort((ann_code[rows], key_code[rows]))]
    k = key_code[rows]
    first = np.r_[True, k[1:] != k[:-1]]
    group = np.cumsum(first) - 1
    slot = np.arange(len(rows)) - np.flatnonzero(first)[group]
    out = np.full((int(group.max()) + 1 if len(rows) else 0, width), -1, np.int64)
    out[group, slot] = rows
    pivot = out[:, 0]
    sig = schema.sigma_array
    unmatched = []
    for j in range(1, width):
        m = out[:, j] >= 0
        a, b = out[m, j], pivot[m]

        def sym(x, a=a, b=b):
            return 0.5 * (oks_paired(x, kps[b], s2[b], sig) + oks_paired(kps[b], x, s2[a], sig))

        score = oks_or_box(np.fmax(sym(kps[a]), sym(kps[a][:, schema.flip_idx])), boxes[a], boxes[b])
        weak = np.flatnonzero(m)[~(np.nan_to_num(score, nan=0.0) >= match_min)]
        unmatched.append(out[weak, j])
        out[weak, j] = -1
    alone = (out[:, 1:] < 0).all(axis=1)
    unmatched.append(pivot[alone])
    return out[~alone], unmatched


def _group_image(rows, anns, kps, s2, boxes, schema, *, match_min, width):
    names, counts = np.unique(anns, return_counts=True)
    by_count = names[np.argsort(-counts, kind="stable")]
    pivot = rows[anns == by_count[0]]
    slots = np.full((len(pivot), width), -1, np.int64)
    slots[:, 0] = pivot
    unmatched = []
    for slot, ann in enumerate(by_count[1:], start=1):
        other = rows[anns == ann]
        score = oks_or_box(
            _pair_score(kps[other], s2[other], kps[pivot], s2[pivot], schema),
            boxes[other][:, None],
            boxes[pivot][None, :],
        )
        r, c = match_max_total(score, min_score=match_min)
        slots[c, slot] = other[r]
        unmatched.append(np.setdiff1d(other, other[r]))
    alone = (slots[:, 1:] < 0).all(axis=1)
    unmatched.append(pivot[alone])
    return slots[~alone].tolist(), np.concatenate(unmatched)


def _pair_score(a, a_s2, b, b_s2, schema):
    """Symmetric OKS of every a against every b, the better of as-labeled and mirrored."""
    sig = schema.sigma_array

    def sym(x):
        return 0.5 * (oks_matrix(x, b, b_s2, sig) + oks_matrix(b, x, a_s2, sig).T)

    return np.fmax(sym(a), sym(a[:, schema.flip_idx]))


@dataclass(frozen=True)
class MemberComparison:
    """Per group g and slot j (each [G, A, ...]); NaN / -1 where the slot is empty."""

    pair_oks: np.ndarray  # [G, A, A] symmetric OKS between slots
    kp_agreement: np.ndarray  # [G, A, K] mean OKS term of j's point against each other's
    pair_offset: np.ndarray  # [G, A, A, K, 2] (xy of j - xy of i) / s of i
    others_mode_v: np.ndarray  # [G, A, K] most frequent flag among the others, -1 on ties or none
    n_others: np.ndarray  # [G, A]
    swap_votes: np.ndarray  # [G, A] others against which j looks left/right swapped
    swap_pair_votes: np.ndarray  # [G, A, P] same, per flip pair (all pairs when mirrored as a whole)
    swap_gain: np.ndarray  # [G, A, P] mean pair gain against the others


def visibility_states(v: np.ndarray) -> np.ndarray:
    """Visibility flags as ints 0/1/2; anything else (a rule-check error) as -1."""
    ok = np.isin(v, (0.0, 1.0, 2.0))
    return np.where(ok, np.nan_to_num(v), -1).astype(np.int64)


def compare_members(
    kps: np.ndarray,
    s2: np.ndarray,
    rows: np.ndarray,
    schema: KeypointSchema,
    *,
    swap_gain: float,
    pair_swap_gain: float,
) -> MemberComparison:
    """Compare every member of every group with the other members of its group."""
    g, a = rows.shape
    k, p = schema.num_keypoints, len(schema.flip_pairs)
    present = rows >= 0
    pk = np.where(present[..., None, None], kps[np.maximum(rows, 0)], np.nan)  # [G, A, K, 3]
    ps2 = np.where(present, s2[np.maximum(rows, 0)], np.nan)
    sig = schema.sigma_array
    oks = np.full((g, a, a), np.nan)
    term_sum, term_n = np.zeros((g, a, k)), np.zeros((g, a, k))
    votes, pair_votes = np.zeros((g, a), np.int64), np.zeros((g, a, p), np.int64)
    gain_sum = np.zeros((g, a, p))
    pair_offset = np.full((g, a, a, k, 2), np.nan)
    lab_xy = np.where((pk[..., 2:] > 0), pk[..., :2], np.nan)
    for j in range(a):
        for i in range(a):
            if i == j:
                continue
            both = present[:, j] & present[:, i]
            t = keypoint_similarity(pk[:, j], pk[:, i], ps2[:, i], sig)
            oks[:, j, i] = np.where(both, oks_from_terms(t), np.nan)
            pair_offset[:, j, i] = (lab_xy[:, j] - lab_xy[:, i]) / np.sqrt(ps2[:, i])[:, None, None]
            ok_t = both[:, None] & ~np.isnan(t)
            term_sum[:, j] += np.where(ok_t, t, 0.0)
            term_n[:, j] += ok_t
            ev = swap_evidence(pk[:, j], pk[:, i], ps2[:, i], schema)
            votes[:, j] += both & ev.is_swap(swap_gain=swap_gain, pair_swap_gain=pair_swap_gain)
            pair_votes[:, j] += both[:, None] & ev.exchanged_pairs(
                swap_gain=swap_gain, pair_swap_gain=pair_swap_gain
            )
            gain_sum[:, j] += np.where(both[:, None], np.nan_to_num(ev.pair_gain), 0.0)
    n_others = present.sum(axis=1, keepdims=True) - present
    n_others = np.where(present, n_others, 0)
    sym = 0.5 * (oks + oks.transpose(0, 2, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        kp_agree = np.where(term_n > 0, term_sum / term_n, np.nan)
        gain = gain_sum / np.maximum(n_others, 1)[..., None]
    return MemberComparison(
        sym, kp_agree, pair_offset, _others_mode(pk, present), n_others, votes, pair_votes, gain
    )


def _others_mode(pk, present):
    """Per member, the others' most frequent flag (-1 on ties or none)."""
    g, a, k, _ = pk.shape
    states = np.where(present[..., None], visibility_states(np.nan_to_num(pk[..., 2], nan=-1)), -1)
    counts = np.stack([(states == s).sum(axis=1) for s in range(N_STATES)], -1)  # [G, K, 3]
    mode_v = np.full((g, a, k), -1, np.int64)
    for j in range(a):
        own = np.stack([states[:, j] == s for s in range(N_STATES)], -1)
        c = counts - own  # [G, K, 3]
        top = c.max(axis=-1)
        unique_top = (c == top[..., None]).sum(axis=-1) == 1
        ok = present[:, j, None] & (top > 0) & unique_top
        mode_v[:, j] = np.where(ok, c.argmax(axis=-1), -1)
    return mode_v


def cohen_kappa(confusion: np.ndarray) -> np.ndarray:
    """Cohen's kappa of confusion tables [..., C, C] (rows: rater 1, columns: rater 2); NaN if undefined."""
    c = np.asarray(confusion, np.float64)
    total = c.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        po = np.trace(c, axis1=-2, axis2=-1) / total
        pe = (c.sum(axis=-1) * c.sum(axis=-2)).sum(axis=-1) / total**2
        kappa = (po - pe) / (1.0 - pe)
    return np.where((total > 0) & (pe < 1.0), kappa, np.nan)


def visibility_confusion(
    group: np.ndarray, kp: np.ndarray, mine: np.ndarray, theirs: np.ndarray, n_groups: int, n_kpts: int
) -> np.ndarray:
    """Confusion tables [n_groups, K, 3, 3] of flag pairs; rows with a -1 flag are left out."""
    conf = np.zeros((n_groups, n_kpts, N_STATES, N_STATES), np.int64)
    ok = (mine >= 0) & (theirs >= 0)
    np.add.at(conf, (group[ok], kp[ok], mine[ok], theirs[ok]), 1)
    return conf
