"""Annotator drift: a sustained change in how one annotator labels, found by a two-window test.

Evidence: every instance of the annotator that has a reference (gold, or the other annotators of
the same image) gives one sample per channel: the signed offset of each keypoint from the
reference, x and y (scale units); 1 - OKS; and the mean offset of each left/right pair, since a
convention usually moves both sides of a joint together ("hips placed higher"). Each reference's
samples are centred on their own median (a partner's constant convention is not a change) and
scaled by their own robust spread. An instance with gold uses gold alone; otherwise the mean of its
partners. So every instance counts once however many references it has, and all references of an
annotator together see a change sooner than any one of them.

The samples in submission order are compared on either side of every split point (a two-sample t
with the variance pooled within the windows, each sample clipped at +-4 so one wild point cannot
fake a shift); the largest over split points and channels, if above the threshold, is the
drift and the split is where it starts. A constant offset has no split point: it is not drift but
a convention offset, reported as such by the overlap checks.

`drift_findings` takes the samples the reference checks measured (gold first, then overlap) as
arguments and hands on where each drifting annotator's change starts (scorecards).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from kpdeliver.config import DeepQASettings
from kpdeliver.findings import empty_findings
from kpdeliver.qa.context import Context, DriftSamples
from kpdeliver.qa.robust import MAD_TO_SD
from kpdeliver.qa.swaps import flip_pairs_array
from kpdeliver.schema import KeypointSchema

_SD_FLOOR = 1e-3
_CLIP = 4.0
_VAR_FLOOR = 1e-6
_CONFIRM = 3.0  # standard errors a change must keep, at its start, without any one partner


@dataclass(frozen=True)
class DriftAlarm:
    start: int  # index of the first sample after the change
    channel: int  # which channel changed most
    shift: float  # mean after minus mean before, in the channel's units
    statistic: float  # standardised difference of the two windows' means


@dataclass(frozen=True)
class Evidence:
    """One annotator's drift evidence, one sample per instance, in the order the rows were given."""

    rows: np.ndarray  # [u] instance row of each sample
    raw: np.ndarray  # [u, C] offsets from the reference(s), scale units, each reference centred
    z: np.ndarray  # [u, C] the same, standardised


def drift_channels(offsets: np.ndarray, oks_loss: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Channels [m, 2K + 1 + 2P] from offsets [m, K, 2] (NaN = not measured), 1 - OKS [m] and the
    schema's left/right pairs [P, 2]: each keypoint's x and y, 1 - OKS, each pair's mean x and y."""
    m, k = offsets.shape[:2]
    pair_mean = 0.5 * (offsets[:, pairs[:, 0]] + offsets[:, pairs[:, 1]])
    return np.concatenate(
        [offsets.reshape(m, 2 * k), oks_loss[:, None], pair_mean.reshape(m, 2 * len(pairs))], axis=1
    )


def _centre_and_spread(series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and robust standard deviation (floored) of each channel (column) of series [n, C]."""
    if len(series) == 0:
        return np.zeros(series.shape[1]), np.full(series.shape[1], _SD_FLOOR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN channel: spread falls to the floor
        med = np.nanmedian(series, axis=0)
        mad = np.nanmedian(np.abs(series - med), axis=0)
    return np.nan_to_num(med, nan=0.0), np.maximum(MAD_TO_SD * np.nan_to_num(mad, nan=0.0), _SD_FLOOR)


def pool_references(
    rows: np.ndarray, ref: np.ndarray, channels: np.ndarray, *, gold_ref: int, min_group: int
) -> Evidence:
    """One sample per instance from samples (instance row, reference code, channels [m, C]).

    Each reference's samples are centred and scaled by their own median and robust spread; an
    instance with a gold sample takes it alone, others the mean of their partners' samples. A mean
    of m unit samples has a spread between 1/sqrt(m) and 1, so instances are rescaled by the spread
    measured among those with the same number of partners (when at least `min_group` of them).
    """
    codes, r_inv = np.unique(ref, return_inverse=True)
    centred = np.empty_like(channels)
    z = np.empty_like(channels)
    for j in range(len(codes)):  # a handful of references
        sel = r_inv == j
        med, sd = _centre_and_spread(channels[sel])
        centred[sel] = channels[sel] - med
        z[sel] = centred[sel] / sd
    inst, i_inv = np.unique(rows, return_inverse=True)
    is_gold = ref == gold_ref
    has_gold = np.bincount(i_inv, weights=is_gold, minlength=len(inst)) > 0
    use = is_gold | ~has_gold[i_inv]
    raw = _nan_mean(centred[use], i_inv[use], len(inst))
    zm = _nan_mean(z[use], i_inv[use], len(inst))
    kind = np.where(has_gold, 0, np.bincount(i_inv[use], minlength=len(inst)))  # gold, or how many partners
    for g in np.unique(kind):
        sel = kind == g
        if g >= 2 and sel.sum() >= min_group:
            zm[sel] /= np.clip(_centre_and_spread(zm[sel])[1], 1.0 / np.sqrt(g), 1.0)
    return Evidence(inst, raw, zm)


def _nan_mean(x: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    ok = np.isfinite(x)
    total = np.zeros((n, x.shape[1]))
    count = np.zeros((n, x.shape[1]))
    np.add.at(total, group, np.where(ok, x, 0.0))
    np.add.at(count, group, ok)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def change_point(series: np.ndarray, *, min_segment: int, threshold: float) -> DriftAlarm | None:
    """The strongest change in one annotator's standardised series [n, C] (NaN = not measured), or None."""
    n = len(series)
    if n < 2 * min_segment:
        return None
    measured = np.isfinite(series)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = np.nanmedian(series, axis=0)
    z = np.clip(np.where(measured, series - centre, 0.0), -_CLIP, _CLIP)
    c = np.cumsum(measured, axis=0)
    stat = _t_statistic(np.cumsum(z, axis=0), np.cumsum(z * z, axis=0), c, min_segment)
    t, ch = np.unravel_index(np.argmax(stat), stat.shape)
    if stat[t, ch] < threshold:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        shift = np.nanmean(series[t + 1 :, ch]) - np.nanmean(series[: t + 1, ch])
    return DriftAlarm(int(t + 1), int(ch), float(shift), float(stat[t, ch]))


def _t_statistic(s: np.ndarray, q: np.ndarray, c: np.ndarray, min_segment: int) -> np.ndarray:
    """|t| of the two windows on either side of every split (after row t: [0..t] | [t+1..]), from the
    running sums s, sums of squares q and counts c of a series; the variance is pooled within the two
    windows, so a channel with heavier tails than its robust spread suggests is not read as a change.
    0 where a window is shorter than min_segment."""
    n1, n2 = c[:-1], c[-1] - c[:-1]
    s1, s2, q1, q2 = s[:-1], s[-1] - s[:-1], q[:-1], q[-1] - q[:-1]
    ok = (n1 >= min_segment) & (n2 >= min_segment)
    with np.errstate(invalid="ignore", divide="ignore"):
        within = (q1 - s1 * s1 / n1 + q2 - s2 * s2 / n2) / (n1 + n2 - 2)
        t = np.abs(s2 / n2 - s1 / n1) / np.sqrt(np.maximum(within, _VAR_FLOOR) * (1.0 / n1 + 1.0 / n2))
    return np.where(ok, t, 0.0)


def difference_at(x: np.ndarray, split: int) -> float:
    """Signed t (after minus before) of a standardised series x [n] at a given split, the statistic
    change_point maximises: used to check a change found elsewhere. NaN when a side has no measured
    sample."""
    ok = np.isfinite(x)
    n1, n = int(ok[:split].sum()), int(ok.sum())
    if n1 in (0, n):
        return float("nan")
    z = np.clip(np.where(ok, x - np.median(x[ok]), 0.0), -_CLIP, _CLIP)
    s = np.array([[z[:split].sum()], [z.sum()]])
    q = np.array([[np.square(z[:split]).sum()], [np.square(z).sum()]])
    t = _t_statistic(s, q, np.array([[n1], [n]]), 1)[0, 0]
    return float(np.sign((s[1, 0] - s[0, 0]) / (n - n1) - s[0, 0] / n1) * t)


@dataclass(frozen=True)
class _Drift:
    alarm: DriftAlarm
    evidence: Evidence
    partners: list[int]  # annotator codes the change was judged against (besides gold)
    only: int | None  # a partner that is the only reference around the change: either may have changed


@dataclass(frozen=True)
class DriftResult:
    findings: pa.Table
    starts: dict[str, int]  # drifting annotator -> position in its submission order where the change starts


def drift_findings(ctx: Context, s: DeepQASettings, samples: Sequence[DriftSamples]) -> DriftResult:
    """Drift per annotator, from all its references pooled (gold, and the other annotators of shared
    images). A change seen against a partner may be the partner's: it is the annotator's only if it
    stays, the same way at the same point, when any one partner is left out. The clearest confirmed
    change is taken first, and an annotator found drifting stops being a reference for the others, so
    its change is not seen again in its partners. Where one partner is the only reference, both are
    told that either may have changed."""
    if not sum(len(x.rows) for x in samples):
        return DriftResult(empty_findings(), {})
    search = _DriftSearch.of(ctx, s, samples)
    rows_out, msgs, starts = [], [], {}
    for code, drift in sorted(search.run().items()):
        start_row = drift.evidence.rows[drift.alarm.start]
        starts[ctx.annotator_names[code]] = int(search.pos[start_row])
        rows_out.append(start_row)
        msgs.append(search.message(code, drift))
    findings = ctx.table(
        "qa.annotator_drift",
        np.asarray(rows_out, np.int64),
        value=search.pos[rows_out].astype(np.float64),
        message=msgs,
    )
    return DriftResult(findings, starts)


@dataclass(frozen=True)
class _DriftSearch:
    """The still images' samples of every annotator against its references, in submission order."""

    ctx: Context
    s: DeepQASettings
    rows: np.ndarray  # each sample's instance row
    ref: np.ndarray  # its reference's annotator code (gold: ctx.n_annotators)
    channels: np.ndarray  # its drift channels
    pos: np.ndarray  # position of each instance in its annotator's submission order

    @classmethod
    def of(cls, ctx: Context, s: DeepQASettings, samples: Sequence[DriftSamples]) -> _DriftSearch:
        rows = np.concatenate([x.rows for x in samples])
        ref = np.concatenate([x.reference for x in samples])
        pairs = flip_pairs_array(ctx.schema)
        channels = np.concatenate([drift_channels(x.offsets, x.oks_loss, pairs) for x in samples])
        # video frames are left out: a track's frames are one item seen many times (their differences from a
        # reference are strongly correlated, so they would pass for many independent samples), and video
        # labels are less noisy than stills, so a switch between the two would pass for a change
        still = ~ctx.in_video[rows]
        pos = np.zeros(ctx.n, np.int64)
        for code in range(ctx.n_annotators):
            mine = np.flatnonzero(ctx.ann_code == code)
            pos[mine] = np.arange(len(mine))
        return cls(ctx, s, rows[still], ref[still], channels[still], pos)

    def evidence(self, keep: np.ndarray) -> Evidence:
        ev = pool_references(
            self.rows[keep],
            self.ref[keep],
            self.channels[keep],
            gold_ref=self.ctx.n_annotators,
            min_group=2 * self.s.drift_min_segment,
        )
        order = np.argsort(self.pos[ev.rows], kind="stable")
        return Evidence(ev.rows[order], ev.raw[order], ev.z[order])

    def confirmed(self, code: int, usable: np.ndarray) -> _Drift | None:
        """Annotator `code`'s change, if one stays when any one partner is left out."""
        mine = usable & (self.ctx.ann_code[self.rows] == code)
        ev = self.evidence(mine)
        alarm = change_point(ev.z, min_segment=self.s.drift_min_segment, threshold=self.s.drift_threshold)
        if alarm is None:
            return None
        start = self.pos[ev.rows[alarm.start]]
        partners = [int(p) for p in np.unique(self.ref[mine]) if p != self.ctx.n_annotators]
        only = None
        for p in partners:
            rest = self.evidence(mine & (self.ref != p))
            d = difference_at(rest.z[:, alarm.channel], int(np.searchsorted(self.pos[rest.rows], start)))
            if not np.isfinite(d):  # nothing left on one side: this partner is the only reference there
                only = p
            elif d * np.sign(alarm.shift) < _CONFIRM:
                return None
        return _Drift(alarm, ev, partners, only)

    def run(self) -> dict[int, _Drift]:
        """Every drifting annotator's change, the clearest confirmed first."""
        usable = np.ones(len(self.rows), bool)
        found: dict[int, _Drift] = {}
        while True:
            candidates = {
                c: r
                for c in range(self.ctx.n_annotators)
                if c not in found and (r := self.confirmed(c, usable))
            }
            if not candidates:
                return found
            code = max(candidates, key=lambda c: candidates[c].alarm.statistic)
            found[code] = candidates[code]
            if found[code].only is None:  # a drifting annotator is no reference for the others (unless
                usable &= (
                    self.ref != code
                )  # the change may as well be its only partner's: then both are told)

    def message(self, code: int, drift: _Drift) -> str:
        ctx, (alarm, ev, partners, only) = self.ctx, (drift.alarm, drift.evidence, drift.partners, drift.only)
        name, start_row = ctx.annotator_names[code], ev.rows[alarm.start]
        if only is not None:
            against = f"its only reference here is annotator {ctx.annotator_names[only]}: either of them may have changed"
        else:
            has_gold = bool(np.any(self.ref[ctx.ann_code[self.rows] == code] == ctx.n_annotators))
            who = ["gold"] * has_gold + [
                f"{len(partners)} other annotator{'s' * (len(partners) > 1)}"
            ] * bool(partners)
            against = f"against {' and '.join(who)}" + "; it stays when any one annotator is left out" * bool(
                partners
            )
        with np.errstate(invalid="ignore"):
            raw = ev.raw[:, alarm.channel]
            shift = float(np.nanmean(raw[alarm.start :]) - np.nanmean(raw[: alarm.start]))
        return (
            f"annotator {name} drifts from about item {self.pos[start_row]} of {int((ctx.ann_code == code).sum())} "
            f"in submission order ({against}; before/after difference {alarm.statistic:.1f} standard "
            f"errors): {_drift_what(ctx.schema, alarm.channel, shift)}"
        )


def _drift_what(schema: KeypointSchema, channel: int, shift: float) -> str:
    k = schema.num_keypoints
    if channel == 2 * k:
        return f"agreement with the reference changes by {-shift:+.2f} OKS against their earlier work"
    if channel < 2 * k:
        what, axis = schema.keypoints[channel // 2], channel % 2
    else:
        a, b = flip_pairs_array(schema)[(channel - 2 * k - 1) // 2]
        what, axis = f"{schema.keypoints[a]} and {schema.keypoints[b]}", (channel - 2 * k - 1) % 2
    word = (
        ("further left" if shift < 0 else "further right")
        if axis == 0
        else ("higher" if shift < 0 else "lower")
    )
    return f"{what} now placed {abs(shift):.2f} scale units {word} than in their earlier work"
