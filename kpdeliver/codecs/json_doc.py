"""Reading a JSON export (COCO, Label Studio) without choking on what real exports contain.

Hostile or broken files are refused with a CodecError naming the file (nesting deeper than the
parser's limit); NaN/Infinity literals are read (the stdlib parser accepts them) so they become
findings downstream; duplicate keys in one object, which every parser resolves silently as
"last value wins", are reported when a `DecodeLog` is given.
"""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import orjson

from kpdeliver.codecs import CodecError

if TYPE_CHECKING:
    from kpdeliver.codecs.problems import DecodeLog

MAX_DUPLICATES_NAMED = 20  # findings past this are summed up in one line
_SPACED_KEY_END = re.compile(rb'"[ \t\r\n]+:')


def load_json(data: bytes, source: str, log: DecodeLog | None = None) -> Any:
    """orjson first; the stdlib parser as fallback because it accepts NaN/Infinity literals,
    which real exports contain and which must become findings, not crashes. With `log`,
    duplicate keys become `decode.quirk` findings naming the key and its values."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        if "depth limit" in str(e):
            raise CodecError(f"{source}: JSON nested deeper than 1024 levels ({e}); refused") from None
        return _stdlib_load(data, source, log)
    if log is not None and _may_have_duplicate_keys(data, doc):
        _stdlib_load(data, source, log)  # only to name the duplicates: rare, so its cost is paid rarely
    return doc


def _may_have_duplicate_keys(data: bytes, doc: Any) -> bool:
    """Whether the file has more `"key":` ends than the parsed document has keys. orjson writes
    each key back as `"key":`, and a quote inside a string is escaped alike in both, so on a file
    without duplicates the counts agree; two C-level passes, no Python walk over the document."""
    raw = data.count(b'":')
    if _SPACED_KEY_END.search(data):  # pretty-printers that write `"key" : value`
        raw += len(_SPACED_KEY_END.findall(data))
    return raw > orjson.dumps(doc).count(b'":')


def _stdlib_load(data: bytes, source: str, log: DecodeLog | None) -> Any:
    duplicates: list[str] = []

    def pairs_to_dict(pairs: list[tuple[str, Any]]) -> dict:
        out = dict(pairs)
        if len(out) != len(pairs):
            duplicates.extend(_duplicate_messages(pairs, out))
        return out

    try:
        doc = json.loads(data, object_pairs_hook=pairs_to_dict)
    except RecursionError:
        raise CodecError(f"{source}: JSON nested too deep for any parser; refused") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CodecError(f"{source}: not valid JSON ({e})") from None
    if log is not None:
        for message in duplicates[:MAX_DUPLICATES_NAMED]:
            log.quirk(message)
        if len(duplicates) > MAX_DUPLICATES_NAMED:
            log.quirk(f"{len(duplicates) - MAX_DUPLICATES_NAMED} more duplicate keys (last value taken each time)",
                      value=float(len(duplicates) - MAX_DUPLICATES_NAMED))
    return doc


def _duplicate_messages(pairs: list[tuple[str, Any]], kept: dict) -> list[str]:
    seen: dict[str, list[Any]] = {}
    for key, value in pairs:
        seen.setdefault(key, []).append(value)
    where = f"object id={kept['id']!r}" if isinstance(kept.get("id"), (int, str)) else "an object"
    return [f"{where}: key {key!r} given {len(values)} times with values "
            f"{', '.join(_short(v) for v in values)}; the last ({_short(values[-1])}) is taken"
            for key, values in seen.items() if len(values) > 1]


def _short(value: Any) -> str:
    text = json.dumps(value, allow_nan=True)
    return text if len(text) <= 40 else text[:37] + "..."


def raw_json(item: Any) -> str:
    """An item as JSON text for the quarantine row (numpy values included)."""
    return orjson.dumps(item, option=orjson.OPT_SERIALIZE_NUMPY).decode()
