"""Annotator drift: a sustained change in how one annotator labels, found by a two-window test.

Each annotator's instances that have a reference (gold, else the consensus of the other annotators)
form a series in submission order (the order of that annotator's rows). Channels: the signed offset
of every keypoint from its reference, x and y (scale units), and 1 - OKS. Each channel is scaled by
its robust spread over all annotators and clipped at +-4 (one wild point cannot fake a shift). For
every split point t, the windows before and after t are compared (standardised difference of means,
the CUSUM change-point statistic); the largest over split points and channels, if above the
threshold, is the drift, and t is where it starts. A constant offset (the annotator's convention
from day one) has no split point, so it is not drift; it is reported as a convention offset.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from kpdeliver.qa.robust import MAD_TO_SD

_SD_FLOOR = 1e-3
_CLIP = 4.0


@dataclass(frozen=True)
class DriftAlarm:
    start: int  # index of the first sample after the change
    channel: int  # which channel changed most
    shift: float  # mean after minus mean before, in the channel's units
    statistic: float  # standardised difference of the two windows' means


def channel_spread(series: np.ndarray) -> np.ndarray:
    """Robust standard deviation of each channel (column) of series [n, C], floored."""
    if len(series) == 0:
        return np.full(series.shape[1], _SD_FLOOR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN channel: spread falls to the floor
        med = np.nanmedian(series, axis=0)
        mad = np.nanmedian(np.abs(series - med), axis=0)
    return np.maximum(MAD_TO_SD * np.nan_to_num(mad, nan=0.0), _SD_FLOOR)


def change_point(series: np.ndarray, spread: np.ndarray, *, min_segment: int, threshold: float) -> DriftAlarm | None:
    """The strongest change in one annotator's series [n, C] (NaN = not measured), or None."""
    n = len(series)
    if n < 2 * min_segment:
        return None
    measured = np.isfinite(series)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = np.nanmedian(series, axis=0)
    z = np.clip(np.where(measured, (series - centre) / spread, 0.0), -_CLIP, _CLIP)
    s, c = np.cumsum(z, axis=0), np.cumsum(measured, axis=0)
    n1, n2 = c[:-1], c[-1] - c[:-1]  # split after row t: [0..t] | [t+1..]
    ok = (n1 >= min_segment) & (n2 >= min_segment)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = (s[-1] - s[:-1]) / n2 - s[:-1] / n1
        stat = np.where(ok, np.abs(diff) / np.sqrt(1.0 / n1 + 1.0 / n2), 0.0)
    t, ch = np.unravel_index(np.argmax(stat), stat.shape)
    if stat[t, ch] < threshold:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        shift = np.nanmean(series[t + 1:, ch]) - np.nanmean(series[: t + 1, ch])
    return DriftAlarm(int(t + 1), int(ch), float(shift), float(stat[t, ch]))


def difference_at(series: np.ndarray, spread: np.ndarray, *, split: int, channel: int) -> float:
    """Signed standardised difference (after minus before) of one channel at a given split row:
    used to check, on another reference, a change found elsewhere. NaN when a side is empty."""
    x = series[:, channel]
    before, after = x[:split][np.isfinite(x[:split])], x[split:][np.isfinite(x[split:])]
    if len(before) == 0 or len(after) == 0:
        return float("nan")
    z = np.clip((np.concatenate([before, after]) - np.median(np.concatenate([before, after]))) / spread[channel],
                -_CLIP, _CLIP)
    zb, za = z[: len(before)], z[len(before):]
    return float((za.mean() - zb.mean()) / np.sqrt(1.0 / len(zb) + 1.0 / len(za)))
