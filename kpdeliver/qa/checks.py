"""From detector outputs to findings: one function per family of checks, sharing a Context.

Messages say who did what where, in plain words; `value` holds the measured number.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from kpdeliver.config import DeepQASettings
from kpdeliver.findings import concat_findings, empty_findings, findings_for
from kpdeliver.model import Dataset
from kpdeliver.qa.agreement import (
    N_STATES,
    cohen_kappa,
    compare_members,
    overlap_groups,
    visibility_confusion,
    visibility_states,
)
from kpdeliver.qa.coverage import coverage
from kpdeliver.qa.drift import DriftAlarm, Evidence, change_point, difference_at, drift_channels, pool_references
from kpdeliver.qa.gold import match_gold, point_mismatches
from kpdeliver.qa.oks import scale_sq
from kpdeliver.qa.robust import MAD_TO_SD, group_count, group_median
from kpdeliver.qa.swaps import flip_pairs_array, swap_evidence, track_swapped_pairs
from kpdeliver.qa.temporal import flicker, jitter, track_order
from kpdeliver.schema import KeypointSchema

STATE_WORDS = np.array(["not labeled", "occluded", "visible"], dtype=object)


@dataclass(frozen=True)
class Context:
    schema: KeypointSchema
    kps: np.ndarray
    s2: np.ndarray
    ann: np.ndarray  # annotator name per instance
    annotator_names: tuple[str, ...]
    ann_code: np.ndarray
    keys: np.ndarray  # file name per instance (image id when the image is unknown)
    image_id: np.ndarray
    file_name: np.ndarray
    ann_id: np.ndarray
    source: np.ndarray | None
    track_id: np.ndarray
    frame: np.ndarray
    image_key_ids: dict  # file name -> (image id, file name) for locating findings without an instance

    @classmethod
    def of(cls, dataset: Dataset) -> "Context":
        ins = dataset.instances
        row = dataset.image_index()
        names_col = dataset.images.file_name
        file_name = np.array([names_col[r] if r >= 0 else None for r in row], dtype=object)
        keys = np.where(file_name == None, np.char.add("#image ", ins.image_id.astype(str)), file_name)  # noqa: E711
        ann = np.array([a if a else "(unnamed)" for a in ins.annotator], dtype=object)
        names, code = np.unique(ann.astype(str), return_inverse=True)
        empty = len(ins) == 0  # an empty Instances may carry K = 0 columns
        kps = np.zeros((0, dataset.schema.num_keypoints, 3)) if empty else ins.keypoints
        return cls(
            schema=dataset.schema, kps=kps, s2=np.zeros(0) if empty else scale_sq(ins), ann=ann,
            annotator_names=tuple(names.tolist()), ann_code=code.astype(np.int64), keys=keys.astype(object),
            image_id=ins.image_id, file_name=file_name, ann_id=ins.id, source=ins.extra.get("source"),
            track_id=ins.track_id, frame=ins.frame,
            image_key_ids={f: i for i, f in zip(dataset.images.id.tolist(), names_col.tolist())},
        )

    @property
    def n(self) -> int:
        return len(self.kps)

    def table(self, check: str, rows: np.ndarray, *, message, keypoint=None, value=None, severity=None) -> pa.Table:
        if len(rows) == 0:
            return empty_findings()
        return findings_for(
            check, message=list(message), image_id=self.image_id[rows], file_name=self.file_name[rows],
            annotation_id=self.ann_id[rows], annotator=self.ann[rows], keypoint=keypoint, value=value,
            source=None if self.source is None else self.source[rows], severity=severity, n=len(rows),
        )


@dataclass
class RefStore:
    """What the reference checks measured per instance and per annotator, for drift and scorecards."""

    agree_oks: np.ndarray  # [n] mean OKS with the other annotators of the item
    gold_oks: np.ndarray  # [n]
    samples: list  # drift evidence: (rows, reference code, offsets [m, K, 2], 1 - OKS [m]) per batch
    gold_matched: np.ndarray  # [n] bool
    consensus_conf: np.ndarray  # [A, K, 3, 3] own flag x consensus flag
    gold_conf: np.ndarray  # [A, K, 3, 3] own flag x gold flag
    kp_agree: np.ndarray  # [A, K] mean OKS term against the others
    offset: np.ndarray  # [A, K, 2] convention offset (smallest median difference to another annotator)
    offset_n: np.ndarray  # [A, K]
    offset_se: np.ndarray  # [A, K, 2] standard error of that median

    @classmethod
    def empty(cls, ctx: Context) -> "RefStore":
        n, k, a = ctx.n, ctx.schema.num_keypoints, len(ctx.annotator_names)
        conf = np.zeros((a, k, N_STATES, N_STATES), np.int64)
        return cls(np.full(n, np.nan), np.full(n, np.nan), [],
                   np.zeros(n, bool), conf, conf.copy(), np.full((a, k), np.nan), np.full((a, k, 2), np.nan),
                   np.zeros((a, k), np.int64), np.full((a, k, 2), np.nan))

    def keypoint_table(self, ctx: Context) -> pa.Table:
        a, k = self.kp_agree.shape
        kappa = cohen_kappa(self.consensus_conf)
        gkappa = cohen_kappa(self.gold_conf)

        def col(x):
            x = np.asarray(x, np.float64).ravel()
            return pa.array(x, pa.float64(), mask=~np.isfinite(x))

        return pa.table({
            "annotator": pa.array(np.repeat(ctx.annotator_names, k).tolist(), pa.string()),
            "keypoint": pa.array(list(ctx.schema.keypoints) * a, pa.string()),
            "agreement": col(self.kp_agree),
            "visibility_kappa": col(kappa),
            "gold_visibility_kappa": col(gkappa),
            "offset_x": col(self.offset[..., 0]),
            "offset_y": col(self.offset[..., 1]),
            "n_offset": pa.array(self.offset_n.ravel().astype(np.int64)),
        })


def _pair_names(schema: KeypointSchema, mask: np.ndarray) -> list[str]:
    pairs = flip_pairs_array(schema)
    names = np.array([f"{schema.keypoints[a]}/{schema.keypoints[b]}" for a, b in pairs], dtype=object)
    return [", ".join(names[m]) for m in mask]


def _blame_pairs(pair_mask: np.ndarray) -> np.ndarray:
    """Most pairs exchanged = the instance is mirrored: its close-together pairs (e.g. the shoulders of a
    side view, which show no gain) were exchanged too, flags included."""
    mirrored = pair_mask.sum(axis=1) * 2 > pair_mask.shape[1]
    return pair_mask | mirrored[:, None]


def _pairs_to_keypoints(schema: KeypointSchema, pair_mask: np.ndarray) -> np.ndarray:
    out = np.zeros((len(pair_mask), schema.num_keypoints), bool)
    pairs = flip_pairs_array(schema)
    out[:, pairs[:, 0]] = pair_mask
    out[:, pairs[:, 1]] |= pair_mask
    return out


def _swap_keypoint(schema: KeypointSchema, pair_mask: np.ndarray) -> list:
    """Finding keypoint of a swap: the first exchanged pair's first point; null for a mirrored instance."""
    pairs = flip_pairs_array(schema)
    whole = pair_mask.sum(axis=1) * 2 > len(pairs)
    first = np.argmax(pair_mask, axis=1) if len(pairs) else np.zeros(len(pair_mask), np.int64)
    return [None if w or not m.any() else schema.keypoints[pairs[f, 0]] for w, m, f in zip(whole, pair_mask, first)]


def _swap_message(schema, who: np.ndarray, pair_mask: np.ndarray, against: list[str]) -> list[str]:
    pairs = _pair_names(schema, pair_mask)
    whole = pair_mask.sum(axis=1) * 2 > len(schema.flip_pairs)
    return [
        f"annotator {w} labeled this instance mirrored (left and right exchanged) against {g}" if m
        else f"annotator {w} exchanged {p or 'left and right'} against {g}"
        for w, m, p, g in zip(who, whole, pairs, against)
    ]


def gold_findings(ctx: Context, gold: Dataset, s: DeepQASettings, refs: RefStore) -> pa.Table:
    schema = ctx.schema
    gctx = Context.of(gold)
    gm = match_gold(ctx.keys, ctx.ann, ctx.kps, gctx.keys, gctx.kps, gctx.s2, schema, match_min=s.match_min_oks)
    rows, grows = gm.rows, gm.gold_rows
    kps, gk, gs2 = ctx.kps[rows], gctx.kps[grows], gctx.s2[grows]
    ev = swap_evidence(kps, gk, gs2, schema)
    swap = ev.is_swap(swap_gain=s.swap_gain, pair_swap_gain=s.pair_swap_gain)
    pair_mask = _blame_pairs(ev.exchanged_pairs(swap_gain=s.swap_gain, pair_swap_gain=s.pair_swap_gain))
    in_swap = _pairs_to_keypoints(schema, pair_mask)
    dist, far, vis = point_mismatches(kps, gk, gs2, schema.sigma_array, tolerance=s.point_tolerance)
    far &= ~in_swap
    vis &= ~in_swap
    scale = np.sqrt(gs2)
    refs.gold_matched[rows] = True
    refs.gold_oks[rows] = ev.oks
    offset = np.where((kps[..., 2:] > 0) & (gk[..., 2:] > 0), (kps[..., :2] - gk[..., :2]) / scale[:, None, None], np.nan)
    refs.samples.append((rows[~swap], np.full((~swap).sum(), len(ctx.annotator_names)), offset[~swap],
                         1.0 - ev.oks[~swap]))
    mine, theirs = visibility_states(kps[..., 2]), visibility_states(gk[..., 2])
    k = schema.num_keypoints
    refs.gold_conf += visibility_confusion(
        np.repeat(ctx.ann_code[rows], k), np.tile(np.arange(k), len(rows)), mine.ravel(), theirs.ravel(),
        len(ctx.annotator_names), k)
    names = np.asarray(schema.keypoints, dtype=object)
    tables = []
    sw = np.flatnonzero(swap)
    tables.append(ctx.table(
        "qa.left_right_swap", rows[sw], keypoint=_swap_keypoint(schema, pair_mask[sw]),
        value=(ev.oks_flipped - ev.oks)[sw],
        message=_swap_message(schema, ctx.ann[rows[sw]], pair_mask[sw], ["gold"] * len(sw))))
    i, j = np.nonzero(far)
    px = dist[i, j] * 2 * schema.sigma_array[j] * scale[i]
    tables.append(ctx.table(
        "qa.gold_mismatch", rows[i], keypoint=names[j], value=dist[i, j],
        message=[f"annotator {a} places {n} {d:.1f} kappa units ({p:.0f} px) from gold "
                 f"(tolerance {s.point_tolerance:g})" for a, n, d, p in zip(ctx.ann[rows[i]], names[j], dist[i, j], px)]))
    i, j = np.nonzero(vis)
    tables.append(ctx.table(
        "qa.gold_mismatch", rows[i], keypoint=names[j], value=mine[i, j].astype(np.float64),
        message=[f"visibility: annotator {a} marks {n} {STATE_WORDS[m]}; gold has it {STATE_WORDS[g]}"
                 for a, n, m, g in zip(ctx.ann[rows[i]], names[j], mine[i, j], theirs[i, j])]))
    tables.append(ctx.table(
        "qa.gold_mismatch", gm.extra_rows,
        message=[f"annotator {a} labeled an instance that matches no gold instance of this image"
                 for a in ctx.ann[gm.extra_rows]]))
    if len(gm.missed_gold):
        keys = gctx.keys[gm.missed_gold]
        tables.append(findings_for(
            "qa.gold_mismatch", image_id=np.array([ctx.image_key_ids.get(kk, -1) for kk in keys]),
            file_name=list(keys), annotator=list(gm.missed_by),
            message=[f"annotator {a} did not label gold instance {g} of this image"
                     for a, g in zip(gm.missed_by, gctx.ann_id[gm.missed_gold])]))
    return concat_findings(tables)


def overlap_findings(ctx: Context, s: DeepQASettings, refs: RefStore) -> pa.Table:
    """Swaps first; then, with the swapped members put right, agreement, visibility and offsets (so one
    member's swap does not make an innocent member look like the odd one out)."""
    schema = ctx.schema
    groups = overlap_groups(ctx.keys, ctx.ann, ctx.kps, ctx.s2, schema, match_min=s.match_min_oks)
    um = groups.unmatched
    unmatched = ctx.table(
        "qa.low_agreement", um,
        message=[f"annotator {w} labeled an instance no other annotator of this image labeled" for w in ctx.ann[um]])
    if not (groups.rows >= 0).any():
        return unmatched
    gains = dict(swap_gain=s.swap_gain, pair_swap_gain=s.pair_swap_gain)
    cmp = compare_members(ctx.kps, ctx.s2, groups.rows, schema, **gains)
    present = groups.rows >= 0
    rows = groups.rows[present]
    n_oth = cmp.n_others[present]
    swap = cmp.swap_votes[present] * 2 > n_oth
    pair_mask = (cmp.swap_pair_votes[present] * 2 > n_oth[:, None]) & swap[:, None]
    pair_mask[swap & ~pair_mask.any(axis=1)] = True  # each partner saw other pairs: blame them all
    pair_mask = _blame_pairs(pair_mask)
    fixed = ctx.kps.copy()
    fixed[rows[swap]] = _unswap(ctx.kps[rows[swap]], pair_mask[swap], schema)
    cmp2 = compare_members(fixed, ctx.s2, groups.rows, schema, **gains)
    pair_oks = np.where(swap[:, None], cmp.pair_oks[present], cmp2.pair_oks[present])
    with np.errstate(invalid="ignore"):
        oks = np.nanmean(pair_oks, axis=1) if len(rows) else np.zeros(0)
    low = (oks < s.low_agreement_oks) & (np.sum(pair_oks < s.low_agreement_oks, axis=1) * 2 > n_oth) & ~swap
    own = ~refs.gold_matched[rows]  # gold, where present, already judged this instance
    refs.agree_oks[rows] = oks
    k, a = schema.num_keypoints, len(ctx.annotator_names)
    mine = visibility_states(fixed[rows][..., 2])
    code = ctx.ann_code[rows]
    refs.consensus_conf += visibility_confusion(
        np.repeat(code, k), np.tile(np.arange(k), len(rows)), mine.ravel(), cmp2.others_mode_v[present].ravel(), a, k)
    slot_code = np.where(present, ctx.ann_code[np.maximum(groups.rows, 0)], -1)
    g_idx, slot_idx = np.nonzero(present)
    other_code = np.where(np.arange(present.shape[1])[None, :] == slot_idx[:, None], -1, slot_code[g_idx])
    _keypoint_stats(refs, code, cmp2.kp_agreement[present], ~swap, cmp2.pair_offset[present], other_code, a, k)
    # drift evidence: each member against each other member of its group, by who the other is
    m_idx, o_slot = np.nonzero((other_code >= 0) & ~swap[:, None])
    refs.samples.append((rows[m_idx], other_code[m_idx, o_slot], cmp2.pair_offset[present][m_idx, o_slot],
                         1.0 - cmp2.pair_oks[present][m_idx, o_slot]))
    names = np.asarray(schema.keypoints, dtype=object)
    others = [f"the {n} other annotators of this image" if n > 1 else "the other annotator of this image"
              for n in n_oth]
    sw = np.flatnonzero(swap & own)
    tables = [ctx.table(
        "qa.left_right_swap", rows[sw], keypoint=_swap_keypoint(schema, pair_mask[sw]),
        value=np.nanmax(np.where(pair_mask[sw], cmp.swap_gain[present][sw], np.nan), axis=1) if len(sw) else [],
        message=_swap_message(schema, ctx.ann[rows[sw]], pair_mask[sw], [others[i] for i in sw]))]
    # with a single other label nobody can tell who swapped: both are told, as a warning
    tables[-1] = _soften(tables[-1], n_oth[sw] < 2, "; with two labels only, either one may be the swapped one")
    lo = np.flatnonzero(low & own)
    tables.append(ctx.table(
        "qa.low_agreement", rows[lo], value=oks[lo],
        message=[f"annotator {ctx.ann[rows[i]]}'s instance agrees with {others[i]} at OKS {oks[i]:.2f} "
                 f"(threshold {s.low_agreement_oks:g})" for i in lo]))
    unanimous = cmp2.others_unanimous_v[present]
    i, j = np.nonzero((unanimous >= 0) & (mine >= 0) & (mine != unanimous) & own[:, None])
    tables.append(ctx.table(
        "qa.low_agreement", rows[i], keypoint=names[j], value=mine[i, j].astype(np.float64),
        message=[f"visibility: annotator {ctx.ann[rows[r]]} marks {n} {STATE_WORDS[m]}; "
                 f"{others[r]} mark it {STATE_WORDS[u]}" for r, n, m, u in zip(i, names[j], mine[i, j], unanimous[i, j])]))
    tables.append(unmatched)
    tables.append(_offset_findings(ctx, refs, s))
    return concat_findings(tables)


def _soften(table: pa.Table, mask: np.ndarray, note: str) -> pa.Table:
    if not mask.any():
        return table
    sev = np.where(mask, "warning", np.asarray(table["severity"].to_pylist(), dtype=object))
    msg = [m + note if w else m for m, w in zip(table["message"].to_pylist(), mask)]
    table = table.set_column(table.schema.get_field_index("severity"), "severity", pa.array(sev.tolist(), pa.string()))
    return table.set_column(table.schema.get_field_index("message"), "message", pa.array(msg, pa.string()))


def _keypoint_stats(refs: RefStore, code, kp_agree, keep, pair_offset, other_code, a: int, k: int) -> None:
    """Per annotator and keypoint: mean agreement, and the convention offset.

    The offset of annotator j is the median of (j's point - i's point) per other annotator i, and j
    is given the smallest of these (in size) over the annotators i it shares enough items with: j
    only has a convention of its own if it differs from every other annotator. pair_offset:
    [m, A, K, 2] per member and slot, other_code: [m, A] annotator of each slot (-1 none or self);
    members not in `keep` (swapped ones) are left out of the offsets.
    """
    kp = np.arange(k)
    grp = (code[:, None] * k + kp[None, :]).ravel()
    vals = kp_agree.ravel()
    ok = np.isfinite(vals)
    n = np.bincount(grp[ok], minlength=a * k)
    total = np.bincount(grp[ok], weights=vals[ok], minlength=a * k)
    with np.errstate(invalid="ignore", divide="ignore"):
        refs.kp_agree[:] = np.where(n > 0, total / n, np.nan).reshape(a, k)
    valid = (other_code >= 0) & keep[:, None]
    pgrp = ((code[:, None] * a + other_code)[..., None] * k + kp).astype(np.int64)  # [m, A, K]
    pgrp, po = pgrp[valid], pair_offset[valid]  # [q, K], [q, K, 2]
    size = a * a * k
    med = np.stack([group_median(po[..., ax].ravel(), pgrp.ravel(), size) for ax in (0, 1)], -1)
    cnt = group_count(po[..., 0].ravel(), pgrp.ravel(), size)
    mad = np.stack([group_median(np.abs(po[..., ax] - med[pgrp, ax]).ravel(), pgrp.ravel(), size)
                    for ax in (0, 1)], -1)
    med, cnt, mad = med.reshape(a, a, k, 2), cnt.reshape(a, a, k), mad.reshape(a, a, k, 2)
    size_of = np.where(cnt > 0, np.hypot(med[..., 0], med[..., 1]), np.inf)
    size_of[np.arange(a), np.arange(a)] = np.inf
    best = np.argmin(size_of, axis=1)  # [A, K]: the other annotator j is closest to
    jj, kk = np.meshgrid(np.arange(a), np.arange(k), indexing="ij")
    found = np.isfinite(size_of[jj, best, kk])
    refs.offset[:] = np.where(found[..., None], med[jj, best, kk], np.nan)
    refs.offset_n[:] = np.where(found, cnt[jj, best, kk], 0)
    # standard error of a median: 1.2533 * sd / sqrt(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        refs.offset_se[:] = 1.2533 * MAD_TO_SD * mad[jj, best, kk] / np.sqrt(refs.offset_n)[..., None]


def _offset_findings(ctx: Context, refs: RefStore, s: DeepQASettings) -> pa.Table:
    off, se, n = refs.offset, refs.offset_se, refs.offset_n
    mag = np.hypot(off[..., 0], off[..., 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.nanmax(np.where(np.isfinite(off), np.abs(off) / np.maximum(se, 1e-9), 0.0), axis=-1)
    bad = (n >= s.offset_min_instances) & (np.nan_to_num(mag) >= s.offset_min) & (np.nan_to_num(t) >= s.offset_t)
    ai, ki = np.nonzero(bad)
    msgs = [f"annotator {ctx.annotator_names[a]} places {ctx.schema.keypoints[k]} "
            f"{_direction(off[a, k, 0], off[a, k, 1], s.offset_min)} than the others on {n[a, k]} instances"
            for a, k in zip(ai, ki)]
    return findings_for("qa.low_agreement", annotator=[ctx.annotator_names[a] for a in ai],
                        keypoint=[ctx.schema.keypoints[k] for k in ki], value=mag[ai, ki], message=msgs, n=len(ai))


def _direction(dx: float, dy: float, min_shown: float) -> str:
    vertical = f"{abs(dy):.2f} scale units {'higher' if dy < 0 else 'lower'}"
    horizontal = f"{abs(dx):.2f} scale units further {'left' if dx < 0 else 'right'} in the image"
    first, second = (vertical, horizontal) if abs(dy) >= abs(dx) else (horizontal, vertical)
    return f"{first} and {second}" if min(abs(dx), abs(dy)) >= min_shown else first


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
    swapped = _blame_pairs(track_swapped_pairs(kps, s2, to.new_track, schema, pair_swap_gain=s.pair_swap_gain))
    fixed = _unswap(kps, swapped, schema)  # jitter and flicker are judged on the swap-corrected track
    where = [f"frame {f} of track {t} (annotator {a})" for f, t, a in zip(frame, ctx.track_id[rows], ctx.ann[rows])]
    names = np.asarray(schema.keypoints, dtype=object)
    tables = []
    sw = np.flatnonzero(swapped.any(axis=1))
    tables.append(ctx.table(
        "qa.left_right_swap", rows[sw], keypoint=_swap_keypoint(schema, swapped[sw]), value=swapped[sw].sum(axis=1),
        message=[f"{'left and right (every pair)' if whole else p} exchanged in {where[i]} compared with the frames "
                 f"around it" for i, p, whole in zip(sw, _pair_names(schema, swapped[sw]),
                                                     swapped[sw].sum(axis=1) * 2 > swapped.shape[1])]))
    jit = jitter(fixed, s2, frame, to, z_min=s.jitter_z, min_dev=s.jitter_min)
    i, j = np.nonzero(jit.flagged)
    tables.append(ctx.table(
        "qa.temporal_jitter", rows[i], keypoint=names[j], value=jit.deviation[i, j],
        message=[f"{n} jumps {d:.2f} scale units off its path in {where[r]} (robust z {z:.1f})"
                 for r, n, d, z in zip(i, names[j], jit.deviation[i, j], jit.z[i, j])]))
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


def _unswap(kps: np.ndarray, swapped: np.ndarray, schema: KeypointSchema) -> np.ndarray:
    pairs = flip_pairs_array(schema)
    a, b = pairs[:, 0], pairs[:, 1]
    m = swapped[..., None]
    out = kps.copy()
    out[:, a] = np.where(m, kps[:, b], kps[:, a])
    out[:, b] = np.where(m, kps[:, a], kps[:, b])
    return out


_DRIFT_CONFIRM = 3.0  # standard errors the change must keep, at its start, without any one partner


@dataclass(frozen=True)
class _Drift:
    alarm: DriftAlarm
    evidence: Evidence
    partners: list[int]  # annotator codes the change was judged against (besides gold)
    only: int | None  # a partner that is the only reference around the change: either may have changed


def drift_findings(ctx: Context, s: DeepQASettings, refs: RefStore) -> tuple[pa.Table, dict[str, int]]:
    """Drift per annotator, from all its references pooled (gold, and the other annotators of shared
    images; see kpdeliver.qa.drift). A change seen against a partner may be the partner's: it is the
    annotator's only if it stays, the same way at the same point, when any one partner is left out.
    The clearest confirmed change is taken first, and an annotator found drifting stops being a
    reference for the others, so its change is not seen again in its partners. Where one partner is
    the only reference, both are told that either may have changed."""
    gold_code = len(ctx.annotator_names)
    if not refs.samples:
        return empty_findings(), {}
    rows = np.concatenate([r for r, *_ in refs.samples])
    ref = np.concatenate([c for _, c, *_ in refs.samples])
    pairs = flip_pairs_array(ctx.schema)
    channels = np.concatenate([drift_channels(o, b, pairs) for _, _, o, b in refs.samples])
    # video frames are left out: a track's frames are one item seen many times (their differences from a
    # reference are strongly correlated, so they would pass for many independent samples), and video
    # labels are less noisy than stills, so a switch between the two would pass for a change
    still = ~((ctx.track_id[rows] >= 0) & (ctx.frame[rows] >= 0))
    rows, ref, channels = rows[still], ref[still], channels[still]
    pos = np.zeros(ctx.n, np.int64)  # position of each instance in its annotator's submission order
    for code in range(gold_code):
        mine = np.flatnonzero(ctx.ann_code == code)
        pos[mine] = np.arange(len(mine))

    def evidence(keep: np.ndarray) -> Evidence:
        ev = pool_references(rows[keep], ref[keep], channels[keep], gold_ref=gold_code,
                             min_group=2 * s.drift_min_segment)
        order = np.argsort(pos[ev.rows], kind="stable")
        return Evidence(ev.rows[order], ev.raw[order], ev.z[order])

    def confirmed(code: int, usable: np.ndarray) -> _Drift | None:
        mine = usable & (ctx.ann_code[rows] == code)
        ev = evidence(mine)
        alarm = change_point(ev.z, min_segment=s.drift_min_segment, threshold=s.drift_threshold)
        if alarm is None:
            return None
        start = pos[ev.rows[alarm.start]]
        partners = [int(p) for p in np.unique(ref[mine]) if p != gold_code]
        only = None
        for p in partners:
            rest = evidence(mine & (ref != p))
            d = difference_at(rest.z[:, alarm.channel], int(np.searchsorted(pos[rest.rows], start)))
            if not np.isfinite(d):  # nothing left on one side: this partner is the only reference there
                only = p
            elif d * np.sign(alarm.shift) < _DRIFT_CONFIRM:
                return None
        return _Drift(alarm, ev, partners, only)

    usable = np.ones(len(rows), bool)
    found = {}
    while True:
        candidates = {c: r for c in range(gold_code) if c not in found and (r := confirmed(c, usable))}
        if not candidates:
            break
        code = max(candidates, key=lambda c: candidates[c].alarm.statistic)
        found[code] = candidates[code]
        if found[code].only is None:  # a drifting annotator is no reference for the others (unless
            usable &= ref != code  # the change may as well be its only partner's: then both are told)

    rows_out, msgs, starts = [], [], {}
    for code, drift in sorted(found.items()):
        alarm, ev, partners, only = drift.alarm, drift.evidence, drift.partners, drift.only
        name, start_row = ctx.annotator_names[code], ev.rows[alarm.start]
        if only is not None:
            against = f"its only reference here is annotator {ctx.annotator_names[only]}: either of them may have changed"
        else:
            has_gold = bool(np.any(ref[ctx.ann_code[rows] == code] == gold_code))
            who = ["gold"] * has_gold + [f"{len(partners)} other annotator{'s' * (len(partners) > 1)}"] * bool(partners)
            against = f"against {' and '.join(who)}" + "; it stays when any one annotator is left out" * bool(partners)
        with np.errstate(invalid="ignore"):
            raw = ev.raw[:, alarm.channel]
            shift = float(np.nanmean(raw[alarm.start:]) - np.nanmean(raw[: alarm.start]))
        starts[name] = int(pos[start_row])
        rows_out.append(start_row)
        msgs.append(f"annotator {name} drifts from about item {pos[start_row]} of {int((ctx.ann_code == code).sum())} "
                    f"in submission order ({against}; before/after difference {alarm.statistic:.1f} standard "
                    f"errors): {_drift_what(ctx.schema, alarm.channel, shift)}")
    return ctx.table("qa.annotator_drift", np.asarray(rows_out, np.int64), value=pos[rows_out].astype(np.float64),
                     message=msgs), starts


def _drift_what(schema: KeypointSchema, channel: int, shift: float) -> str:
    k = schema.num_keypoints
    if channel == 2 * k:
        return f"agreement with the reference changes by {-shift:+.2f} OKS against their earlier work"
    if channel < 2 * k:
        what, axis = schema.keypoints[channel // 2], channel % 2
    else:
        a, b = flip_pairs_array(schema)[(channel - 2 * k - 1) // 2]
        what, axis = f"{schema.keypoints[a]} and {schema.keypoints[b]}", (channel - 2 * k - 1) % 2
    word = ("further left" if shift < 0 else "further right") if axis == 0 else ("higher" if shift < 0 else "lower")
    return f"{what} now placed {abs(shift):.2f} scale units {word} than in their earlier work"


def coverage_findings(ctx: Context, s: DeepQASettings) -> pa.Table:
    if ctx.n == 0:  # nothing delivered, nothing to cover
        return empty_findings()
    bins = coverage(ctx.kps, ctx.schema, targets=s.coverage_targets, generic_bins=s.generic_bins)
    short = [b for b in bins if b.count < b.target.min_count]
    msgs = [f"{'no' if b.count == 0 else f'only {b.count}'} {b.target.name} ({b.target.measure} "
            f"{b.target.low:g}-{b.target.high:g} degrees) among {b.measured} measured instances "
            f"(target {b.target.min_count})" for b in short]
    return findings_for("qa.pose_coverage", value=[float(b.count) for b in short], message=msgs, n=len(short))
