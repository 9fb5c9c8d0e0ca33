"""Reading a JSON export (COCO, Label Studio) without choking on what real exports contain."""
from __future__ import annotations

import json
from typing import Any

import orjson

from kpdeliver.codecs import CodecError


def load_json(data: bytes, source: str) -> Any:
    """orjson first; the stdlib parser as fallback because it accepts NaN/Infinity literals,
    which real exports contain and which must become findings, not crashes."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CodecError(f"{source}: not valid JSON ({e})") from None


def raw_json(item: Any) -> str:
    """An item as JSON text for the quarantine row (numpy values included)."""
    return orjson.dumps(item, option=orjson.OPT_SERIALIZE_NUMPY).decode()
