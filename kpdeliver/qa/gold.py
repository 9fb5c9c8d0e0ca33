"""Gold items: trusted reference labels for some images, matched to annotators' labels by file name.

On each gold image, each annotator's instances are matched to the gold instances by maximum total
OKS against gold (Hungarian; a pair scores the better of as-labeled and mirrored, so a swapped
instance still meets its gold; where OKS is undefined, as for a gold person with a box only, the
IoU of the boxes). Then, point by point: a point farther from gold than
`tolerance` * kappa * s, or whose visibility flag differs from gold's, is a mismatch.

`gold_findings` reports swaps against gold and the mismatches, and hands on what the later checks
need: which instances gold judged (the overlap checks leave them alone), gold OKS and visibility
agreement (scorecards), and each instance's offsets from gold (drift).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from kpdeliver.config import DeepQASettings
from kpdeliver.findings import concat_findings, empty_findings, findings_for
from kpdeliver.model import Dataset
from kpdeliver.qa.agreement import N_STATES, STATE_WORDS, visibility_confusion, visibility_states
from kpdeliver.qa.context import Context, DriftSamples
from kpdeliver.qa.oks import match_max_total, oks_matrix, oks_or_box
from kpdeliver.qa.swaps import blame_pairs, pairs_to_keypoints, swap_evidence, swap_keypoint, swap_message
from kpdeliver.schema import KeypointSchema


@dataclass(frozen=True)
class GoldMatch:
    rows: np.ndarray  # matched dataset instance rows
    gold_rows: np.ndarray  # their gold instance rows
    missed_gold: np.ndarray  # gold rows some annotator of that image did not label
    missed_by: np.ndarray  # ... and that annotator (object str)
    extra_rows: np.ndarray  # dataset rows on gold images that match no gold instance


def match_gold(
    keys: np.ndarray,
    annotators: np.ndarray,
    kps: np.ndarray,
    gold_keys: np.ndarray,
    gold_kps: np.ndarray,
    gold_s2: np.ndarray,
    schema: KeypointSchema,
    *,
    match_min: float,
    boxes: np.ndarray,
    gold_boxes: np.ndarray,
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
        ref = g_order[np.searchsorted(g_sorted, key, "left") : np.searchsorted(g_sorted, key, "right")]
        score = oks_or_box(
            np.fmax(
                oks_matrix(kps[mine], gold_kps[ref], gold_s2[ref], sig),
                oks_matrix(kps[mine][:, schema.flip_idx], gold_kps[ref], gold_s2[ref], sig),
            ),
            boxes[mine][:, None],
            gold_boxes[ref][None, :],
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


@dataclass(frozen=True)
class GoldResult:
    findings: pa.Table
    matched: np.ndarray  # [n] bool: the instance met a gold instance (gold is its reference)
    oks: np.ndarray  # [n] OKS against its gold instance (NaN: none)
    visibility: np.ndarray  # [A, K, 3, 3] confusion of own flag x gold flag
    drift_samples: DriftSamples  # offsets from gold of the matched instances not swapped

    @classmethod
    def none(cls, ctx: Context) -> GoldResult:
        """No gold: nothing judged."""
        k = ctx.schema.num_keypoints
        return cls(
            empty_findings(),
            np.zeros(ctx.n, bool),
            np.full(ctx.n, np.nan),
            np.zeros((ctx.n_annotators, k, N_STATES, N_STATES), np.int64),
            DriftSamples.none(k),
        )


def gold_findings(ctx: Context, gold: Dataset, s: DeepQASettings) -> GoldResult:
    schema = ctx.schema
    gctx = Context.of(gold)
    gm = match_gold(
        ctx.keys,
        ctx.ann,
        ctx.kps,
        gctx.keys,
        gctx.kps,
        gctx.s2,
        schema,
        match_min=s.match_min_oks,
        boxes=ctx.box,
        gold_boxes=gctx.box,
    )
    rows, grows = gm.rows, gm.gold_rows
    kps, gk, gs2 = ctx.kps[rows], gctx.kps[grows], gctx.s2[grows]
    ev = swap_evidence(kps, gk, gs2, schema)
    swap = ev.is_swap(swap_gain=s.swap_gain, pair_swap_gain=s.pair_swap_gain)
    pair_mask = blame_pairs(ev.exchanged_pairs(swap_gain=s.swap_gain, pair_swap_gain=s.pair_swap_gain))
    in_swap = pairs_to_keypoints(schema, pair_mask)
    dist, far, vis = point_mismatches(kps, gk, gs2, schema.sigma_array, tolerance=s.point_tolerance)
    far &= ~in_swap
    vis &= ~in_swap
    scale = np.sqrt(gs2)
    matched = np.zeros(ctx.n, bool)
    matched[rows] = True
    oks = np.full(ctx.n, np.nan)
    oks[rows] = ev.oks
    samples = _drift_samples(ctx, rows, kps, gk, scale, swap, ev.oks)
    mine, theirs = visibility_states(kps[..., 2]), visibility_states(gk[..., 2])
    k = schema.num_keypoints
    confusion = visibility_confusion(
        np.repeat(ctx.ann_code[rows], k),
        np.tile(np.arange(k), len(rows)),
        mine.ravel(),
        theirs.ravel(),
        ctx.n_annotators,
        k,
    )
    tables = []
    sw = np.flatnonzero(swap)
    tables.append(
        ctx.table(
            "qa.left_right_swap",
            rows[sw],
            keypoint=swap_keypoint(schema, pair_mask[sw]),
            value=(ev.oks_flipped - ev.oks)[sw],
            message=swap_message(schema, ctx.ann[rows[sw]], pair_mask[sw], ["gold"] * len(sw)),
        )
    )
    tables += _mismatch_tables(ctx, s, rows, dist, far, vis, mine, theirs, scale)
    tables += _missed_tables(ctx, gctx, gm)
    return GoldResult(concat_findings(tables), matched, oks, confusion, samples)


def _drift_samples(
    ctx: Context,
    rows: np.ndarray,
    kps: np.ndarray,
    gk: np.ndarray,
    scale: np.ndarray,
    swap: np.ndarray,
    oks: np.ndarray,
) -> DriftSamples:
    """Offsets from gold (in units of the gold scale) of the matched instances not swapped."""
    offset = np.where(
        (kps[..., 2:] > 0) & (gk[..., 2:] > 0), (kps[..., :2] - gk[..., :2]) / scale[:, None, None], np.nan
    )
    return DriftSamples(
        rows[~swap], np.full((~swap).sum(), ctx.n_annotators), offset[~swap], 1.0 - oks[~swap]
    )


def _mismatch_tables(
    ctx: Context,
    s: DeepQASettings,
    rows: np.ndarray,
    dist: np.ndarray,
    far: np.ndarray,
    vis: np.ndarray,
    mine: np.ndarray,
    theirs: np.ndarray,
    scale: np.ndarray,
) -> list[pa.Table]:
    """Findings for matched points too far from gold and for visibility flags that differ from gold's."""
    schema = ctx.schema
    names = np.asarray(schema.keypoints, dtype=object)
    tables = []
    i, j = np.nonzero(far)
    px = dist[i, j] * 2 * schema.sigma_array[j] * scale[i]
    tables.append(
        ctx.table(
            "qa.gold_mismatch",
            rows[i],
            keypoint=names[j],
            value=dist[i, j],
            message=[
                f"annotator {a} places {n} {d:.1f} kappa units ({p:.0f} px) from gold "
                f"(tolerance {s.point_tolerance:g})"
                for a, n, d, p in zip(ctx.ann[rows[i]], names[j], dist[i, j], px)
            ],
        )
    )
    i, j = np.nonzero(vis)
    tables.append(
        ctx.table(
            "qa.gold_mismatch",
            rows[i],
            keypoint=names[j],
            value=mine[i, j].astype(np.float64),
            message=[
                f"visibility: annotator {a} marks {n} {STATE_WORDS[m]}; gold has it {STATE_WORDS[g]}"
                for a, n, m, g in zip(ctx.ann[rows[i]], names[j], mine[i, j], theirs[i, j])
            ],
        )
    )
    return tables


def _missed_tables(ctx: Context, gctx: Context, gm: GoldMatch) -> list[pa.Table]:
    """Findings for instances on gold images matching no gold instance, and gold instances not labeled."""
    tables = []
    tables.append(
        ctx.table(
            "qa.gold_mismatch",
            gm.extra_rows,
            message=[
                f"annotator {a} labeled an instance that matches no gold instance of this image"
                for a in ctx.ann[gm.extra_rows]
            ],
        )
    )
    if len(gm.missed_gold):
        keys = gctx.keys[gm.missed_gold]
        tables.append(
            findings_for(
                "qa.gold_mismatch",
                image_id=np.array([ctx.image_key_ids.get(kk, -1) for kk in keys]),
                file_name=list(keys),
                annotator=list(gm.missed_by),
                message=[
                    f"annotator {a} did not label gold instance {g} of this image"
                    for a, g in zip(gm.missed_by, gctx.ann_id[gm.missed_gold])
                ],
            )
        )
    return tables
