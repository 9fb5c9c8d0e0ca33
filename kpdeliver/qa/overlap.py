"""Overlap checks: each instance of an image labeled by two or more annotators against the others'
(kpdeliver.qa.agreement groups and compares them): left/right swaps, low agreement, visibility
flags the group disagrees on, and per annotator and keypoint, agreement and convention offsets.
Where only two labels meet, neither can be told right: a disagreement warns both annotators.

Instances gold already judged (`gold_matched`) are measured but not reported again. The result
hands on each instance's agreement and the visibility confusion (scorecards), the per-keypoint
statistics (qa/keypoints.parquet) and each member's offsets from each other member (drift).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from kpdeliver.config import DeepQASettings
from kpdeliver.findings import concat_findings, findings_for
from kpdeliver.qa.agreement import (
    N_STATES,
    STATE_WORDS,
    Groups,
    MemberComparison,
    compare_members,
    overlap_groups,
    visibility_confusion,
    visibility_states,
)
from kpdeliver.qa.context import Context, DriftSamples
from kpdeliver.qa.oks import oks_from_terms
from kpdeliver.qa.robust import MAD_TO_SD, group_count, group_mean, group_median
from kpdeliver.qa.swaps import blame_pairs, exchange_pairs, swap_keypoint, swap_message


@dataclass(frozen=True)
class KeypointStats:
    """Per annotator and keypoint [A, K]."""

    agreement: np.ndarray  # mean OKS term against the others
    offset: np.ndarray  # [A, K, 2] convention offset (smallest median difference to another annotator)
    offset_n: np.ndarray  # instances behind that median
    offset_se: np.ndarray  # [A, K, 2] standard error of that median

    @classmethod
    def none(cls, a: int, k: int) -> KeypointStats:
        return cls(
            np.full((a, k), np.nan),
            np.full((a, k, 2), np.nan),
            np.zeros((a, k), np.int64),
            np.full((a, k, 2), np.nan),
        )


@dataclass(frozen=True)
class OverlapResult:
    findings: pa.Table
    agreement_oks: np.ndarray  # [n] mean OKS with the other annotators of the item (NaN: no overlap)
    visibility: np.ndarray  # [A, K, 3, 3] confusion of own flag x the others' most frequent flag
    keypoints: KeypointStats
    drift_samples: DriftSamples  # each member against each other member, swapped members left out


def overlap_findings(ctx: Context, s: DeepQASettings, gold_matched: np.ndarray) -> OverlapResult:
    """Swaps first; then, with the swapped members put right, agreement, visibility and offsets (so one
    member's swap does not make an innocent member look like the odd one out)."""
    schema = ctx.schema
    k, a = schema.num_keypoints, ctx.n_annotators
    groups = overlap_groups(ctx.keys, ctx.ann, ctx.kps, ctx.s2, ctx.box, schema, match_min=s.match_min_oks)
    unmatched = _unmatched_findings(ctx, groups, gold_matched)
    agreement_oks = np.full(ctx.n, np.nan)
    if not (groups.rows >= 0).any():
        return OverlapResult(
            unmatched,
            agreement_oks,
            np.zeros((a, k, N_STATES, N_STATES), np.int64),
            KeypointStats.none(a, k),
            DriftSamples.none(k),
        )
    present, rows, n_oth, swap, pair_mask, fixed, cmp, cmp2 = _swaps_put_right(ctx, s, groups)
    pair_oks = np.where(swap[:, None], cmp.pair_oks[present], cmp2.pair_oks[present])
    oks = oks_from_terms(pair_oks)  # mean over the others it has points to compare with (NaN: none)
    low = (oks < s.low_agreement_oks) & (np.sum(pair_oks < s.low_agreement_oks, axis=1) * 2 > n_oth) & ~swap
    own = ~gold_matched[rows]  # gold, where present, already judged this instance
    agreement_oks[rows] = oks
    mine = visibility_states(fixed[rows][..., 2])
    code = ctx.ann_code[rows]
    visibility = visibility_confusion(
        np.repeat(code, k),
        np.tile(np.arange(k), len(rows)),
        mine.ravel(),
        cmp2.others_mode_v[present].ravel(),
        a,
        k,
    )
    slot_code = np.where(present, ctx.ann_code[np.maximum(groups.rows, 0)], -1)
    g_idx, slot_idx = np.nonzero(present)
    other_code = np.where(np.arange(present.shape[1])[None, :] == slot_idx[:, None], -1, slot_code[g_idx])
    stats = _keypoint_stats(
        code, cmp2.kp_agreement[present], ~swap, cmp2.pair_offset[present], other_code, a, k
    )
    # drift evidence: each member against each other member of its group, by who the other is
    m_idx, o_slot = np.nonzero((other_code >= 0) & ~swap[:, None])
    samples = DriftSamples(
        rows[m_idx],
        other_code[m_idx, o_slot],
        cmp2.pair_offset[present][m_idx, o_slot],
        1.0 - cmp2.pair_oks[present][m_idx, o_slot],
    )
    others = [
        f"the {n} other annotators of this image" if n > 1 else "the other annotator of this image"
        for n in n_oth
    ]
    tables = _swap_and_low_tables(ctx, s, rows, present, swap, own, low, oks, pair_mask, cmp, n_oth, others)
    tables.append(_visibility_findings(ctx, groups.rows, mine, own, n_oth, others))
    tables.append(unmatched)
    tables.append(_offset_findings(ctx, stats, s))
    return OverlapResult(concat_findings(tables), agreement_oks, visibility, stats, samples)


def _unmatched_findings(ctx: Context, groups: Groups, gold_matched: np.ndarray) -> pa.Table:
    """Instances no other annotator of the image labeled, and instances an annotator missed."""
    um = groups.unmatched[
        ~gold_matched[groups.unmatched]
    ]  # gold found those real: gold tells who missed them
    return concat_findings(
        [
            ctx.table(
                "qa.low_agreement",
                um,
                message=[
                    f"annotator {w} labeled an instance no other annotator of this image labeled"
                    for w in ctx.ann[um]
                ],
            ),
            _missed_findings(ctx, groups, gold_matched),
        ]
    )


def _swap_and_low_tables(
    ctx: Context,
    s: DeepQASettings,
    rows: np.ndarray,
    present: np.ndarray,
    swap: np.ndarray,
    own: np.ndarray,
    low: np.ndarray,
    oks: np.ndarray,
    pair_mask: np.ndarray,
    cmp: MemberComparison,
    n_oth: np.ndarray,
    others: list[str],
) -> list[pa.Table]:
    """Swap findings (softened where only two labels meet) and low-agreement findings for own instances."""
    schema = ctx.schema
    sw = np.flatnonzero(swap & own)
    swaps = ctx.table(
        "qa.left_right_swap",
        rows[sw],
        keypoint=swap_keypoint(schema, pair_mask[sw]),
        value=np.nanmax(np.where(pair_mask[sw], cmp.swap_gain[present][sw], np.nan), axis=1)
        if len(sw)
        else [],
        message=swap_message(schema, ctx.ann[rows[sw]], pair_mask[sw], [others[i] for i in sw]),
    )
    # with a single other label nobody can tell who swapped: both are told, as a warning
    tables = [_soften(swaps, n_oth[sw] < 2, "; with two labels only, either one may be the swapped one")]
    lo = np.flatnonzero(low & own)
    tables.append(
        ctx.table(
            "qa.low_agreement",
            rows[lo],
            value=oks[lo],
            message=[
                f"annotator {ctx.ann[rows[i]]}'s instance agrees with {others[i]} at OKS {oks[i]:.2f} "
                f"(threshold {s.low_agreement_oks:g})"
                for i in lo
            ],
        )
    )
    return tables


def _swaps_put_right(ctx: Context, s: DeepQASettings, groups: Groups) -> tuple:
    """The members compared twice: as labeled, then with the members the others outvote as swapped put
    right. (present [G, slots], rows of the present members, their numbers of others, swapped, swapped
    pairs [m, P], the points put right [n, K, 3], the first comparison, the second)."""
    gains = {"swap_gain": s.swap_gain, "pair_swap_gain": s.pair_swap_gain}
    cmp = compare_members(ctx.kps, ctx.s2, groups.rows, ctx.schema, **gains)
    present = groups.rows >= 0
    rows = groups.rows[present]
    n_oth = cmp.n_others[present]
    swap = cmp.swap_votes[present] * 2 > n_oth
    pair_mask = (cmp.swap_pair_votes[present] * 2 > n_oth[:, None]) & swap[:, None]
    pair_mask[swap & ~pair_mask.any(axis=1)] = True  # each partner saw other pairs: blame them all
    pair_mask = blame_pairs(pair_mask)
    fixed = ctx.kps.copy()
    fixed[rows[swap]] = exchange_pairs(ctx.kps[rows[swap]], pair_mask[swap], ctx.schema)
    cmp2 = compare_members(fixed, ctx.s2, groups.rows, ctx.schema, **gains)
    return present, rows, n_oth, swap, pair_mask, fixed, cmp, cmp2


def _missed_findings(ctx: Context, groups: Groups, gold_matched: np.ndarray) -> pa.Table:
    """An annotator of an overlap image who labeled nothing matching an object the others labeled is told,
    when those who labeled it are at least as many as those who did not (with two labels only, both the
    one who labeled it and the one who did not are told: either may be wrong). Objects gold judged are
    left to gold (it names the gold instances an annotator missed)."""
    width = groups.rows.shape[1]
    objects = np.vstack(
        [groups.rows, np.pad(groups.unmatched[:, None], ((0, 0), (0, width - 1)), constant_values=-1)]
    )
    objects = objects[~(gold_matched[np.maximum(objects, 0)] & (objects >= 0)).any(axis=1)]
    first = objects[:, 0]
    _, key_code = np.unique(ctx.keys.astype(str), return_inverse=True)
    on_image = np.zeros((key_code.max(initial=-1) + 1, ctx.n_annotators), bool)
    on_image[key_code, ctx.ann_code] = True
    labeled = np.zeros((len(objects), ctx.n_annotators), bool)
    o_i, slot = np.nonzero(objects >= 0)
    labeled[o_i, ctx.ann_code[objects[o_i, slot]]] = True
    absent = on_image[key_code[first]] & ~labeled
    n_lab, n_abs = labeled.sum(axis=1), absent.sum(axis=1)
    o, a = np.nonzero(absent & (n_lab >= n_abs)[:, None])
    who = [
        ", ".join(f"{ctx.ann[r]}'s instance {ctx.ann_id[r]}" for r in objects[i][objects[i] >= 0]) for i in o
    ]
    image_id = [ctx.image_key_ids.get(kk, i) for kk, i in zip(ctx.keys[first[o]], ctx.image_id[first[o]])]
    return findings_for(
        "qa.low_agreement",
        image_id=np.array(image_id, np.int64),
        file_name=ctx.file_name[first[o]],
        annotator=np.asarray(ctx.annotator_names, dtype=object)[a],
        message=[
            f"annotator {ctx.annotator_names[w]} labeled nothing on this image matching {m}"
            + ("; with two labels only, either one may be wrong" if n_lab[i] == 1 else "")
            for w, m, i in zip(a, who, o)
        ],
        n=len(o),
    )


def _visibility_findings(
    ctx: Context, slots: np.ndarray, mine: np.ndarray, own: np.ndarray, n_oth: np.ndarray, others: list
) -> pa.Table:
    """Keypoints whose visibility the members of a group do not all give alike. Where one flag has a
    majority, the members who differ from it are told; where none has (two labels that disagree, or a
    tie), every member is, as no one can tell who is right. mine: [m, K] flags of the members
    (slots[slots >= 0]); own: [m] the member is not judged by gold already; n_oth, others: [m] how many
    other members it has, and who they are in words."""
    members, g_idx = slots[slots >= 0], np.nonzero(slots >= 0)[0]
    m_i, kp = np.nonzero(mine >= 0)
    counts = np.zeros((len(slots), mine.shape[1], N_STATES), np.int64)
    np.add.at(counts, (g_idx[m_i], kp, mine[m_i, kp]), 1)
    counts = counts[g_idx]  # [m, K, 3] per member: the flags of its group, its own included
    n_valid, top = counts.sum(axis=-1), counts.max(axis=-1)
    majority = np.where(top * 2 > n_valid, counts.argmax(axis=-1), -1)
    told = (mine >= 0) & (top < n_valid) & ((majority < 0) | (mine != majority)) & own[:, None]
    i, j = np.nonzero(told)
    theirs = counts[i, j] - (np.arange(N_STATES) == mine[i, j][:, None])  # the others' flags
    tail = np.where(
        majority[i, j] >= 0,
        "",
        np.where(
            n_oth[i] < 2,
            "; with two labels only, either one may be wrong",
            "; no flag has a majority, so each of them is told",
        ),
    )
    names = np.asarray(ctx.schema.keypoints, dtype=object)
    return ctx.table(
        "qa.low_agreement",
        members[i],
        keypoint=names[j],
        value=mine[i, j].astype(np.float64),
        message=[
            f"visibility: annotator {ctx.ann[members[r]]} marks {names[k]} {STATE_WORDS[f]}; "
            f"{others[r]} {'mark' if n_oth[r] > 1 else 'marks'} it {_flag_words(t)}{e}"
            for r, k, f, t, e in zip(i, j, mine[i, j], theirs, tail)
        ],
    )


def _flag_words(counts: np.ndarray) -> str:
    """The others' flags in words: "visible", or "visible (2), occluded (1)" when they differ."""
    states = [s for s in np.argsort(-counts, kind="stable") if counts[s] > 0]
    if len(states) == 1:
        return str(STATE_WORDS[states[0]])
    return ", ".join(f"{STATE_WORDS[s]} ({counts[s]})" for s in states)


def _soften(table: pa.Table, mask: np.ndarray, note: str) -> pa.Table:
    if not mask.any():
        return table
    sev = np.where(mask, "warning", np.asarray(table["severity"].to_pylist(), dtype=object))
    msg = [m + note if w else m for m, w in zip(table["message"].to_pylist(), mask)]
    table = table.set_column(
        table.schema.get_field_index("severity"), "severity", pa.array(sev.tolist(), pa.string())
    )
    return table.set_column(table.schema.get_field_index("message"), "message", pa.array(msg, pa.string()))


def _keypoint_stats(code, kp_agree, keep, pair_offset, other_code, a: int, k: int) -> KeypointStats:
    """Per annotator and keypoint: mean agreement, and the convention offset.

    The offset of annotator j is the median of (j's point - i's point) per other annotator i, and j
    is given the smallest of these (in size) over the annotators i it shares enough items with: j
    only has a convention of its own if it differs from every other annotator. pair_offset:
    [m, A, K, 2] per member and slot, other_code: [m, A] annotator of each slot (-1 none or self);
    members not in `keep` (swapped ones) are left out of the offsets.
    """
    kp = np.arange(k)
    grp = (code[:, None] * k + kp[None, :]).ravel()
    agreement = group_mean(kp_agree.ravel(), grp, a * k)[1].reshape(a, k)
    valid = (other_code >= 0) & keep[:, None]
    pgrp = ((code[:, None] * a + other_code)[..., None] * k + kp).astype(np.int64)  # [m, A, K]
    pgrp, po = pgrp[valid], pair_offset[valid]  # [q, K], [q, K, 2]
    size = a * a * k
    med = np.stack([group_median(po[..., ax].ravel(), pgrp.ravel(), size) for ax in (0, 1)], -1)
    cnt = group_count(po[..., 0].ravel(), pgrp.ravel(), size)
    mad = np.stack(
        [group_median(np.abs(po[..., ax] - med[pgrp, ax]).ravel(), pgrp.ravel(), size) for ax in (0, 1)], -1
    )
    med, cnt, mad = med.reshape(a, a, k, 2), cnt.reshape(a, a, k), mad.reshape(a, a, k, 2)
    size_of = np.where(cnt > 0, np.hypot(med[..., 0], med[..., 1]), np.inf)
    size_of[np.arange(a), np.arange(a)] = np.inf
    best = np.argmin(size_of, axis=1)  # [A, K]: the other annotator j is closest to
    jj, kk = np.meshgrid(np.arange(a), np.arange(k), indexing="ij")
    found = np.isfinite(size_of[jj, best, kk])
    offset_n = np.where(found, cnt[jj, best, kk], 0)
    # standard error of a median: 1.2533 * sd / sqrt(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        offset_se = 1.2533 * MAD_TO_SD * mad[jj, best, kk] / np.sqrt(offset_n)[..., None]
    return KeypointStats(
        agreement, np.where(found[..., None], med[jj, best, kk], np.nan), offset_n, offset_se
    )


def _offset_findings(ctx: Context, stats: KeypointStats, s: DeepQASettings) -> pa.Table:
    off, se, n = stats.offset, stats.offset_se, stats.offset_n
    mag = np.hypot(off[..., 0], off[..., 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.nanmax(np.where(np.isfinite(off), np.abs(off) / np.maximum(se, 1e-9), 0.0), axis=-1)
    bad = (
        (n >= s.offset_min_instances)
        & (np.nan_to_num(mag) >= s.offset_min)
        & (np.nan_to_num(t) >= s.offset_t)
    )
    ai, ki = np.nonzero(bad)
    msgs = [
        f"annotator {ctx.annotator_names[a]} places {ctx.schema.keypoints[k]} "
        f"{_direction(off[a, k, 0], off[a, k, 1], s.offset_min)} than the others on {n[a, k]} instances"
        for a, k in zip(ai, ki)
    ]
    return findings_for(
        "qa.low_agreement",
        annotator=[ctx.annotator_names[a] for a in ai],
        keypoint=[ctx.schema.keypoints[k] for k in ki],
        value=mag[ai, ki],
        message=msgs,
        n=len(ai),
    )


def _direction(dx: float, dy: float, min_shown: float) -> str:
    vertical = f"{abs(dy):.2f} scale units {'higher' if dy < 0 else 'lower'}"
    horizontal = f"{abs(dx):.2f} scale units further {'left' if dx < 0 else 'right'} in the image"
    first, second = (vertical, horizontal) if abs(dy) >= abs(dx) else (horizontal, vertical)
    return f"{first} and {second}" if min(abs(dx), abs(dy)) >= min_shown else first
