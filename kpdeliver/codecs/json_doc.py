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
    """Whether the file has more `"key":` ends than the parsed document has keys: one C-level
    count over the bytes against a walk that visits only containers (a list is entered only when
    its first item is one, so the numbers of keypoint arrays are never touched). A `":` inside a
    string or a list mixing numbers and objects can only make this say yes wrongly, which costs
    the exact pass and reports nothing; it never hides a duplicate."""
    raw = data.count(b'":')
    if _SPACED_KEY_END.search(data):  # pretty-printers that write `"key" : value`
        raw += len(_SPACED_KEY_END.findall(data))
    try:
        return raw > _count_keys(doc)
    except RecursionError:  # deeper than Python's stack: let the exact pass decide
        return True


def _count_keys(node: Any) -> int:
    if isinstance(node, dict):
        return len(node) + sum(_count_keys(v) for v in node.values() if isinstance(v, (dict, list)))
    if isinstance(node, list) and node and isinstance(node[0], (dict, list)):
        return sum(_count_keys(x) for x in node)
    return 0


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
            log.quirk(
                f"{len(duplicates) - MAX_DUPLICATES_NAMED} more duplicate keys (last value taken each time)",
                value=float(len(duplicates) - MAX_DUPLICATES_NAMED),
            )
    return doc


def _duplicate_messages(pairs: list[tuple[str, Any]], kept: dict) -> list[str]:
    seen: dict[str, list[Any]] = {}
    for key, value in pairs:
        seen.setdefault(key, []).append(value)
    where = f"object id={kept['id']!r}" if isinstance(kept.get("id"), (int, str)) else "an object"
    return [
        f"{where}: key {key!r} given {len(values)} times with values "
        f"{', '.join(_short(v) for v in values)}; the last ({_short(values[-1])}) is taken"
        for key, values in seen.items()
        if len(values) > 1
    ]


def _short(value: Any) -> str:
    text = json.dumps(value, allow_nan=True)
    return text if len(text) <= 40 else text[:37] + "..."


def raw_json(item: Any) -> str:
    """An item as JSON text for the quarantine row (numpy values included)."""
    return orjson.dumps(item, option=orjson.OPT_SERIALIZE_NUMPY).decode()
