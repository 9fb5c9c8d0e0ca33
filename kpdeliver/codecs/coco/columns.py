"""Turning COCO JSON values into numpy columns: one C-level conversion for the common,
well-formed case, value by value only where the input is ragged or mixed."""

from __future__ import annotations

from typing import Any

import numpy as np

from kpdeliver.model import NONE

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def as_float(v: Any, default: float = np.nan) -> float:
    if v is None or isinstance(v, bool):
        return default
    if isinstance(v, (int, float)):
        return float(v)
    return default


def as_int(v: Any, default: int = NONE) -> int:
    """An integer in int64 range, or `default` (a stand-in for messages; `int_col` refuses
    out-of-range values instead)."""
    out = unbounded_int(v, default)
    return out if INT64_MIN <= out <= INT64_MAX else default


def unbounded_int(v: Any, default: int = NONE) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():  # a 20-digit id reaches orjson as a float: int_col refuses it
        return int(v)
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    return default


def kp_length(kp: Any) -> int:
    """Number of keypoints in a flat `[x, y, v, ...]` or nested `[[x, y, v], ...]` list (-1: bad)."""
    if not isinstance(kp, list):
        return -1
    if kp and isinstance(kp[0], list):
        return len(kp) if all(isinstance(p, list) and len(p) == 3 for p in kp) else -1
    return len(kp) // 3 if len(kp) % 3 == 0 else -1


def keypoint_array(rows: list[list], k: int) -> np.ndarray:
    """[n, K, 3] float64 from flat or nested keypoint lists, one C-level conversion per shape."""
    if not rows:
        return np.zeros((0, k, 3))
    try:
        return np.array(rows, dtype=np.float64).reshape(len(rows), k, 3)
    except (ValueError, TypeError):
        # mixed flat/nested or None inside: convert row by row (rare path)
        out = np.empty((len(rows), k, 3))
        for i, r in enumerate(rows):
            out[i] = np.array(
                [np.nan if x is None else x for x in np.ravel(np.array(r, dtype=object))], dtype=np.float64
            ).reshape(k, 3)
        return out


def uniform_block(anns: list) -> np.ndarray | None:
    """[n, 3K] numbers when every annotation is an object with flat (or nested) numeric keypoints
    of one length: the common case, checked by one numpy conversion instead of per item."""
    try:
        rows = [a["keypoints"] for a in anns]
    except (TypeError, KeyError):
        return None
    arr = try_array(rows)
    if arr.dtype.kind not in "fiu" or not arr.size:
        return None
    if arr.ndim == 3 and arr.shape[2] == 3:
        return arr.reshape(len(rows), -1)
    return arr if arr.ndim == 2 and arr.shape[1] % 3 == 0 else None


def numeric_block(rows: list, k: int) -> np.ndarray | None:
    """[n, K, 3] from well-formed rows in one numpy conversion, or None when any value is not a
    number (None, a string...), so the caller checks row by row. numpy infers float64 only
    when every value is a number (JSON true/false mixed with numbers count as 1/0)."""
    arr = try_array(rows)
    if arr.dtype.kind not in "fiu" or arr.size != len(rows) * k * 3:
        return None
    return arr.astype(np.float64, copy=False).reshape(len(rows), k, 3)


def try_array(values: list) -> np.ndarray:
    """numpy's own conversion, or an empty object array when the values are ragged or mixed."""
    try:
        return np.array(values)
    except (ValueError, TypeError, OverflowError):
        return np.zeros(0, dtype=object)


def int_col(values: list, default: int = NONE) -> np.ndarray:
    """int64 column; numpy converts an all-integer list in C, anything else goes value by value."""
    if values.count(None) == len(values):
        return np.full(len(values), default, np.int64)
    arr = try_array(values) if values else np.zeros(0, np.int64)
    if (
        arr.ndim == 1
        and arr.dtype.kind in "iu"
        and not (arr.dtype.kind == "u" and arr.size and arr.max() > INT64_MAX)
    ):
        return arr.astype(np.int64)
    ints = [unbounded_int(v, default) for v in values]
    too_big = next((v for v in ints if not INT64_MIN <= v <= INT64_MAX), None)
    if too_big is not None:
        raise OverflowError(f"value {too_big} is beyond 64-bit integers")
    return np.fromiter(ints, np.int64, len(values))


def float_col(values: list, width: int = 0) -> np.ndarray:
    """float64 column ([n] or [n, width]); NaN where a value is absent or not a number."""
    shape = (len(values), width) if width else (len(values),)
    if values.count(None) == len(values):
        return np.full(shape, np.nan)
    arr = try_array(values)
    if arr.shape == shape and arr.dtype.kind in "iuf":
        return arr.astype(np.float64)
    if width:
        return np.array([bbox4(v) for v in values], dtype=np.float64).reshape(shape)
    return np.fromiter((as_float(v) for v in values), np.float64, len(values))


def valid_numbers(kp: list) -> bool:
    flat = kp if not (kp and isinstance(kp[0], list)) else [x for p in kp for x in p]
    return all(x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)) for x in flat)


def bbox4(b: Any) -> list[float]:
    if isinstance(b, list) and len(b) == 4:
        return [as_float(x) for x in b]
    return [np.nan] * 4
