"""The fast path for well-formed COCO keypoints files: msgspec decodes only the fields kpdeliver
uses straight into typed structs, with no tree of Python dicts, and keypoints arrive as raw
JSON text parsed into one float64 block by Arrow's CSV reader.

Anything it does not recognise exactly (an unknown field, a value of another type, a NaN
literal, nested or ragged keypoints, several keypoint categories, an id beyond int64, a
possible duplicate key) raises `NotTypical`, and the caller reads the file the generic way,
so odd files get exactly the findings they always had."""

from __future__ import annotations

from itertools import chain
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np
from msgspec import UNSET, Raw, Struct, UnsetType

from kpdeliver.codecs.json_doc import _SPACED_KEY_END
from kpdeliver.errors import DecodeError
from kpdeliver.model import NONE


class NotTypical(DecodeError):
    """The file needs the generic decoder."""


class _Image(Struct, forbid_unknown_fields=True):
    id: int
    file_name: str | UnsetType = UNSET
    width: int | UnsetType = UNSET
    height: int | UnsetType = UNSET
    frame_id: int | UnsetType = UNSET
    # what YOLO and the model never use: skipped as raw JSON text, never built into Python objects
    license: Raw | UnsetType = UNSET
    coco_url: Raw | UnsetType = UNSET
    flickr_url: Raw | UnsetType = UNSET
    date_captured: Raw | UnsetType = UNSET


class _Annotation(Struct, forbid_unknown_fields=True):
    id: int
    image_id: int
    keypoints: Raw
    category_id: int | UnsetType = UNSET
    bbox: tuple[float, float, float, float] | UnsetType = UNSET
    area: float | UnsetType = UNSET
    iscrowd: int | UnsetType = UNSET
    num_keypoints: int | UnsetType = UNSET
    annotator: str | UnsetType = UNSET
    track_id: int | UnsetType = UNSET
    frame_id: int | UnsetType = UNSET
    frame: int | UnsetType = UNSET
    source_id: int | UnsetType = UNSET
    segmentation: Raw | UnsetType = UNSET  # polygons or a crowd's RLE: skipped, never built


class _File(Struct, forbid_unknown_fields=True):
    images: list[_Image]
    annotations: list[_Annotation]
    categories: Any = UNSET
    info: Any = UNSET
    licenses: Any = UNSET


_DECODER = msgspec.json.Decoder(_File)
_ENCODER = msgspec.json.Encoder()
_CHUNK = 8_192  # rows parsed at a time: the text and table alive at once stay small, their memory reused
_MAX_K = 2048  # keypoints per instance the typed path parses as CSV columns (whole-body 133, face meshes 478)


def read(data: bytes, columns: dict[str, list] | None = None) -> _File:
    """The typed file, or NotTypical. Duplicate keys (which a struct resolves silently) are ruled
    out by counting: the file must hold exactly as many `"key":` as the typed file written back
    (every field the structs hold, every key of the small untyped parts: categories, info,
    licenses). Keys spaced as `"key" :` are counted too; anything either count misreads (a key
    escaped as `\\u0022`) only makes them differ, and the generic decoder reads the file.
    `columns`, when given, receives the annotations' optional fields the count went through, as
    lists by field name (UNSET where absent), so the caller need not collect them again."""
    try:
        doc = _DECODER.decode(data)
    except msgspec.DecodeError as e:
        raise NotTypical(str(e)) from None
    if count_keys(data) != _written_keys(doc, {} if columns is None else columns):
        raise NotTypical("key count differs: possible duplicate keys")
    return doc


_QUOTE, _COLON, _SPACES = ord('"'), ord(":"), np.array([ord(c) for c in " \t\r\n"], np.uint8)
_WINDOW = 1 << 20  # bytes scanned at a time: the scan's temporaries stay in the CPU's cache


def count_keys(data: bytes) -> int:
    """How many `"key":` (and `"key" :`) the JSON text holds: every quote followed by a colon. One
    vectorised pass over the text (bytes.count of a two-byte pattern is several times slower); a
    quote followed by a space or a control character sends the text to the regex that counts the
    spaced keys too (it counts only `"` + JSON whitespace + `:`)."""
    if len(data) < 4096:  # a value of a few keys: numpy's set-up would cost more than the scan
        return data.count(b'":') + len(_SPACED_KEY_END.findall(data))
    arr = np.frombuffer(data, np.uint8)
    keys, spaced = 0, False
    for start in range(0, max(len(arr) - 1, 0), _WINDOW):
        window = arr[start : start + _WINDOW + 1]
        quote, after = window[:-1] == _QUOTE, window[1:]
        keys += int(np.count_nonzero(quote & (after == _COLON)))
        spaced = spaced or bool((quote & (after <= ord(" "))).any())
    if spaced:  # pretty-printed: `"key" :` counts too
        keys += len(_SPACED_KEY_END.findall(data))
    return keys


def _raw_keys(values: list) -> int:
    """The keys inside fields kept as raw JSON text; NotTypical when one holds a duplicate key
    (the generic decoder reports it). A chunk of values at a time: the joined text stays small."""
    return sum(_raw_keys_of(values[start : start + _CHUNK]) for start in range(0, len(values), _CHUNK))


def _raw_keys_of(values: list) -> int:
    """`_raw_keys` of a few values: only those holding a quote before a colon or a space (a
    possible key) are decoded, to compare their keys with their text's."""
    joined = b"".join(values)  # Raw is a buffer: no copy per value
    arr = np.frombuffer(joined, np.uint8)
    quotes = np.flatnonzero(arr[:-1] == _QUOTE)
    after = arr[quotes + 1]
    maybe = quotes[(after == _COLON) | np.isin(after, _SPACES)]
    if not len(maybe):
        return 0
    ends = np.cumsum(np.fromiter(map(len, values), np.int64, len(values)))
    text = (
        b"["
        + b",".join([values[i] for i in np.unique(np.searchsorted(ends, maybe, side="right")).tolist()])
        + b"]"
    )
    if count_keys(_ENCODER.encode(msgspec.json.decode(text))) != count_keys(text):
        raise NotTypical("a duplicate key inside a skipped field")
    return count_keys(joined)


def _written_keys(doc: _File, columns: dict[str, list]) -> int:
    """The keys of the typed file as it would be written back: the small untyped parts written
    back, then for the rows, each field present plus the keys inside fields kept as raw JSON text
    (`_raw_keys`). A string field holding `\\":` makes the counts differ (the generic decoder
    reads the file). The annotations' optional fields not kept as raw text go into `columns`."""
    keys = count_keys(_ENCODER.encode(msgspec.structs.replace(doc, images=[], annotations=[])))
    for rows in (doc.images, doc.annotations):
        if not rows:
            continue
        fields = type(rows[0]).__struct_fields__
        required = len(fields) - len(type(rows[0]).__struct_defaults__)
        keys += required * len(rows)  # fields without a default are in every row
        for name in fields[required:]:
            values = list(map(attrgetter(name), rows))
            unset = values.count(UNSET)
            keys += len(values) - unset
            if name in _RAW_FIELDS:
                keys += _raw_keys(list(filter(_is_set, values)) if unset else values)
            elif rows is doc.annotations:
                columns[name] = values
    return keys


def _is_set(value: object) -> bool:
    return value is not UNSET


# raw fields whose keys count (a key inside `keypoints` already fails its parse as numbers)
_RAW_FIELDS = frozenset({"segmentation", "license", "coco_url", "flickr_url", "date_captured"})


def keypoint_count(anns: list[_Annotation]) -> int:
    """The keypoint count of the first annotation's raw `[x, y, v, ...]`; whether every row is
    a flat list of that length is checked when they are parsed (`keypoint_block`)."""
    if not anns:
        raise NotTypical("no annotations")
    values = bytes(anns[0].keypoints).count(b",") + 1
    if values % 3 or values > 3 * _MAX_K:
        raise NotTypical("keypoints not x, y, v triplets, or more than the typed path's columns")
    return values // 3


# A chunk of rows becomes CSV text, one line per annotation: rows joined by ";" (never in JSON
# numbers), brackets and whitespace deleted, then ";" -> newline.
_TO_CSV = bytes.maketrans(b";", b"\n"), b" \t\r\n[]"


def keypoint_block(anns: list, k: int) -> np.ndarray:
    """[n, K, 3] float64 from the typed annotations `anns`, which it consumes (each chunk's structs
    are dropped from the list once read, so a large file's structs leave as its keypoint block
    comes). Arrow's CSV reader parses a chunk of rows at a time as n lines of 3K
    numbers (on all cores, correctly rounded). NotTypical unless every row is a flat list of
    exactly 3K JSON numbers: a nested list or a bare number changes the bracket count; a row of
    another length, a string, true/false or null fails the typed columns."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    names = [str(j) for j in range(3 * k)]
    read = pcsv.ReadOptions(column_names=names, block_size=1 << 22)
    parse = pcsv.ParseOptions(quote_char=False, ignore_empty_lines=False)
    convert = pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.float64()), strings_can_be_null=False)
    out = np.empty((len(anns), 3 * k))
    for start in range(0, len(anns), _CHUNK):
        chunk = anns[start : start + _CHUNK]
        n = len(chunk)
        anns[start : start + n] = [None] * n  # consumed: each chunk's structs go as it is read
        joined = b";".join(list(map(attrgetter("keypoints"), chunk)))  # Raw is a buffer
        del chunk
        if joined.count(b"[") != n or joined.count(b"]") != n:
            raise NotTypical("keypoints nested, or not a list")
        try:
            table = pcsv.read_csv(
                pa.py_buffer(joined.translate(*_TO_CSV)),
                read_options=read,
                parse_options=parse,
                convert_options=convert,
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise NotTypical(str(e)) from None
        if table.num_rows != n or any(c.null_count for c in table.columns):
            raise NotTypical("keypoints with null values")
        block = out[start : start + n]
        for j, column in enumerate(table.columns):
            at = 0
            for piece in column.chunks:  # the values buffer as is (no nulls): to_numpy imports pandas
                block[at : at + len(piece), j] = np.frombuffer(
                    piece.buffers()[1], np.float64, len(piece), piece.offset * 8
                )
                at += len(piece)
    if np.isinf(out).any():  # a literal past float64 (1e999): the generic path says which
        raise NotTypical("keypoint value out of range")
    return out.reshape(len(anns), k, 3)


def int_column(values: list, default: int = NONE) -> np.ndarray:
    """int64 column, `default` where absent; NotTypical past int64 (the generic path names it)."""
    if values.count(UNSET):
        values = [default if v is UNSET else v for v in values]
    try:
        return np.array(values, dtype=np.int64) if values else np.zeros(0, np.int64)
    except OverflowError:
        raise NotTypical("beyond int64") from None


def float_column(values: list, width: int = 0) -> np.ndarray:
    """float64 column, NaN where absent; with `width`, rows of that many numbers (the typed
    structs' fixed-length tuples, read as one flat run: twice as fast as rows of lists)."""
    shape = (len(values), width) if width else (len(values),)
    if values.count(UNSET):
        missing = (np.nan,) * width if width else np.nan
        values = [missing if v is UNSET else v for v in values]
    if width:
        return np.fromiter(chain.from_iterable(values), np.float64, len(values) * width).reshape(shape)
    return np.array(values, dtype=np.float64).reshape(shape)
