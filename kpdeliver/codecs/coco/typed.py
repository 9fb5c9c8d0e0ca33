"""The fast path for well-formed COCO keypoints files: msgspec decodes only the fields kpdeliver
uses straight into typed structs, with no tree of Python dicts, and keypoints arrive as raw
JSON text parsed into one float64 block by numpy.

Anything it does not recognise exactly (an unknown field, a value of another type, a NaN
literal, nested or ragged keypoints, several keypoint categories, an id beyond int64, a
possible duplicate key) raises `NotTypical`, and the caller reads the file the generic way,
so odd files get exactly the findings they always had."""
from __future__ import annotations

from operator import attrgetter
from typing import Any

import msgspec
import numpy as np
from msgspec import UNSET, Raw, Struct, UnsetType

from kpdeliver.codecs.json_doc import _SPACED_KEY_END, _count_keys
from kpdeliver.model import NONE


class NotTypical(Exception):
    """The file needs the generic decoder."""


class _Image(Struct, forbid_unknown_fields=True):
    id: int
    file_name: str | UnsetType = UNSET
    width: int | UnsetType = UNSET
    height: int | UnsetType = UNSET
    frame_id: int | UnsetType = UNSET
    license: int | UnsetType = UNSET
    coco_url: str | UnsetType = UNSET
    flickr_url: str | UnsetType = UNSET
    date_captured: str | UnsetType = UNSET


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
    segmentation: list[list[float]] | UnsetType = UNSET


class _File(Struct, forbid_unknown_fields=True):
    images: list[_Image]
    annotations: list[_Annotation]
    categories: Any = UNSET
    info: Any = UNSET
    licenses: Any = UNSET


_DECODER = msgspec.json.Decoder(_File)
_FLOATS = msgspec.json.Decoder(list[float])
_CHUNK = 20_000
_IMAGE_FIELDS = _Image.__struct_fields__
_ANN_FIELDS = _Annotation.__struct_fields__


def read(data: bytes) -> _File:
    """The typed file, or NotTypical. Duplicate keys (which a struct resolves silently) are ruled
    out by counting: every `"key":` in the bytes must be a field the structs or the small
    untyped parts (categories, info, licenses) hold."""
    try:
        doc = _DECODER.decode(data)
    except msgspec.DecodeError as e:
        raise NotTypical(str(e)) from None
    keys = data.count(b'":') + (len(_SPACED_KEY_END.findall(data)) if _SPACED_KEY_END.search(data) else 0)
    held = sum(getattr(doc, f) is not UNSET for f in _File.__struct_fields__)
    held += sum(_count_keys(getattr(doc, f)) for f in ("categories", "info", "licenses"))
    held += _present(doc.images, _IMAGE_FIELDS) + _present(doc.annotations, _ANN_FIELDS)
    if keys != held:
        raise NotTypical("key count differs: possible duplicate keys")
    return doc


def _present(items: list, fields: tuple[str, ...]) -> int:
    n = 0
    for f in fields:
        values = list(map(attrgetter(f), items))
        n += len(values) - values.count(UNSET)
    return n


def keypoint_rows(anns: list[_Annotation]) -> tuple[list[bytes], int]:
    """Each annotation's raw `[x, y, v, ...]` text and the one keypoint count they all have;
    NotTypical unless every row is a flat list of the same length, a multiple of 3."""
    raws = list(map(bytes, map(attrgetter("keypoints"), anns)))
    if not raws or any(r[:1] != b"[" or r[-1:] != b"]" for r in raws):
        raise NotTypical("no annotations, or keypoints not a list")
    commas = np.fromiter((r.count(b",") for r in raws), np.int64, len(raws))
    if (commas != commas[0]).any() or (commas[0] + 1) % 3:
        raise NotTypical("keypoints of several lengths")
    return raws, int(commas[0] + 1) // 3


def keypoint_block(raws: list[bytes], k: int) -> np.ndarray:
    """[n, K, 3] float64, msgspec reading a chunk of rows at a time as one flat list of floats
    (it refuses null, booleans, strings and nested lists); chunks bound the Python floats alive."""
    out = np.empty((len(raws), k, 3))
    for start in range(0, len(raws), _CHUNK):
        rows = raws[start:start + _CHUNK]
        try:
            values = _FLOATS.decode(b"[" + b",".join(r[1:-1] for r in rows) + b"]")
        except msgspec.DecodeError as e:
            raise NotTypical(str(e)) from None
        if len(values) != len(rows) * 3 * k:
            raise NotTypical("keypoint count")
        out[start:start + len(rows)] = np.array(values, dtype=np.float64).reshape(len(rows), k, 3)
    return out


def int_column(values: list, default: int = NONE) -> np.ndarray:
    """int64 column, `default` where absent; NotTypical past int64 (the generic path names it)."""
    if values.count(UNSET):
        values = [default if v is UNSET else v for v in values]
    try:
        return np.array(values, dtype=np.int64) if values else np.zeros(0, np.int64)
    except OverflowError:
        raise NotTypical("beyond int64") from None


def float_column(values: list, width: int = 0) -> np.ndarray:
    shape = (len(values), width) if width else (len(values),)
    if values.count(UNSET):
        missing = (np.nan,) * width if width else np.nan
        values = [missing if v is UNSET else v for v in values]
    return np.array(values, dtype=np.float64).reshape(shape)
