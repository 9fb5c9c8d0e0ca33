"""Words every message shares: `plural`, the one way a count and its noun are said."""

from __future__ import annotations


def plural(n: int, noun: str, plural_form: str | None = None) -> str:
    """'1 problem', '2 problems', '1,204 files' ('1 batch', '2 batches' with `plural_form`)."""
    return f"{n:,} {noun if n == 1 else plural_form or noun + 's'}"
