"""Grouped statistics (mean, and the robust median and MAD) without a Python loop over groups."""

from __future__ import annotations

import numpy as np

MAD_TO_SD = 1.4826  # MAD of a normal sample times this estimates its standard deviation


def group_median(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of the finite values of each group 0..n_groups-1 (NaN for a group with none)."""
    ok = np.isfinite(values)
    v, g = values[ok], groups[ok]
    order = np.lexsort((v, g))
    v, g = v[order], g[order]
    counts = np.bincount(g, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.full(n_groups, np.nan)
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    out[has] = 0.5 * (v[lo] + v[hi])
    return out


def group_count(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    return np.bincount(groups[np.isfinite(values)], minlength=n_groups)


def robust_scale(
    values: np.ndarray, groups: np.ndarray, n_groups: int, *, floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per group: the median, and 1.4826 * MAD (a standard deviation robust to outliers) floored at `floor`."""
    med = group_median(values, groups, n_groups)
    mad = group_median(np.abs(values - med[groups]), groups, n_groups)
    return med, np.maximum(MAD_TO_SD * np.nan_to_num(mad, nan=0.0), floor)


def group_mean(values: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group: how many finite values, and their mean (NaN for a group with none)."""
    ok = np.isfinite(values)
    n = np.bincount(groups[ok], minlength=n_groups)
    total = np.bincount(groups[ok], weights=values[ok], minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return n, np.where(n > 0, total / n, np.nan)
