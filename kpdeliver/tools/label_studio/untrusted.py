"""What the annotation tool's server says is untrusted: text from it is made safe to show to a
person, ids from it are checked before they go into a URL, and its JSON may hold NaN/Infinity.

`shown` removes terminal escape sequences (colours, clear screen, window titles, hidden links)
and every other control or direction-changing character, redacts the API token (and any
`Authorization:` header a server echoes), and cuts the text to a few hundred characters.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from kpdeliver.errors import ToolError

SHOWN_MAX = 300  # characters of a server's text shown in one message
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, clear screen
    r"|\x1b[]PX^_].*?(?:\x07|\x1b\\|\x9c|$)"  # OSC (titles, hidden links), DCS, SOS, PM, APC strings
    r"|\x9b[0-?]*[ -/]*[@-~]|[\x90\x98\x9d\x9e\x9f].*?(?:\x07|\x9c|$)"  # their 8-bit forms
    r"|\x1b[ -/]*[0-~]?",  # any other escape
    re.S,
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
_CREDENTIAL = re.compile(
    r"((?:authorization|token|bearer|api[_-]?key)[\"'\s:=]+(?:token\s+|bearer\s+)?)[^\s\"',;&]+", re.I
)
REDACTED = "[redacted]"


def shown(text: Any, secret: str | None = None, limit: int = SHOWN_MAX) -> str:
    """`text` from a server, safe to print on one line: no escapes or control characters, no
    `secret` and no credential a header echo carries, at most `limit` characters."""
    text = _ESCAPES.sub("", str(text))
    text = " ".join(_CONTROL.sub(" ", text).split())
    if secret:
        text = text.replace(secret, REDACTED)
    text = _CREDENTIAL.sub(lambda m: m.group(1) + REDACTED, text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def positive_id(value: Any, what: str) -> int:
    """`value` if it is a positive whole number (an id that may go into a URL path), else ToolError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise ToolError(
            f"Label Studio gave {what} {shown(repr(value), limit=60)}, not a positive whole number; "
            "refused (it would go into a URL)"
        )
    return value


def load_json(data: bytes) -> Any:
    """A server's JSON; NaN and Infinity literals (which orjson refuses) are read as floats, so an
    export holding them is written out as it came and its values become findings on delivery.
    ValueError when it is not JSON (or nested deeper than 1,024 levels)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        if "depth" in str(e):
            raise
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def dump_json(doc: Any) -> bytes:
    """`doc` as indented JSON, NaN and Infinity kept as literals (orjson would write them as null)."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).encode()


def objects(value: Any) -> list[dict]:
    """The objects of a list a server sent (anything else in it, or instead of it, is no object)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
