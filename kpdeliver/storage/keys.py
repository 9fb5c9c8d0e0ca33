"""The one set of rules for a safe key: a '/'-separated path relative to its prefix, never empty,
never absolute, never climbing out ('..'), without control characters. `check_key` refuses one key
(UnsafeKeyError); `unsafe_reasons` says why, for a whole column of keys or `file_name`s at a time
(ingest and collect turn those into `ingest.unsafe_key` findings)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kpdeliver.storage.base import UnsafeKeyError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

# (pattern, why), checked in this order; a key none of them matches (and not empty) is safe
UNSAFE_KEY_RULES = (
    (r"[\x00-\x1f\x7f]", "holds control characters"),
    (r"^(?:[/\\]|[A-Za-z]:[/\\])", "is an absolute path"),
    (r"(?:^|[/\\])\.\.(?:[/\\]|$)", "climbs out of its prefix ('..')"),
)
_COMPILED = tuple((re.compile(pattern), why) for pattern, why in UNSAFE_KEY_RULES)


def unsafe_reason(key: str) -> str:
    """Why `key` is unsafe, '' when it is safe."""
    if not key:
        return "is empty"
    return next((why for pattern, why in _COMPILED if pattern.search(key)), "")


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative key, else raise UnsafeKeyError naming it."""
    if not key or not isinstance(key, str):
        raise UnsafeKeyError(f"empty or non-string key {key!r}")
    why = unsafe_reason(key)
    if why:
        raise UnsafeKeyError(f"key {key!r} {why}")
    return key


def unsafe_reasons(keys: Sequence[str | None] | pa.Array) -> np.ndarray:
    """Per key, why it is unsafe ('' when it is safe): the rules above, vectorised over the column."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(keys, pa.string()) if not isinstance(keys, pa.Array) else keys.cast(pa.string())
    reasons = np.full(len(arr), "", dtype=object)
    empty = pc.fill_null(pc.equal(pc.utf8_length(arr), 0), True).to_numpy(zero_copy_only=False)
    reasons[empty] = "is empty"
    for pattern, why in UNSAFE_KEY_RULES:
        hit = pc.fill_null(pc.match_substring_regex(arr, pattern), False).to_numpy(zero_copy_only=False)
        reasons[hit & (reasons == "")] = why
    return reasons


__all__ = ["UNSAFE_KEY_RULES", "check_key", "unsafe_reason", "unsafe_reasons"]
