"""Reading CVAT XML values: parsing through defusedxml, and attributes that real files get
wrong (a flag written `true`, a coordinate that is not a number) read without a crash."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import numpy as np
from defusedxml import ElementTree as SafeET

from kpdeliver.codecs import CodecError


def parse_cvat(data: bytes, source: str) -> Element:
    """The `<annotations>` root of a CVAT XML file (CodecError naming `source` otherwise)."""
    try:
        root = SafeET.fromstring(data)
    except Exception as e:  # defusedxml raises ParseError or its own DefusedXmlException
        raise CodecError(f"{source}: not valid CVAT XML ({type(e).__name__}: {e})") from None
    if root.tag != "annotations":
        raise CodecError(f"{source}: root element is <{root.tag}>, CVAT XML has <annotations>")
    return root


def flag(el: Element, name: str) -> bool:
    return str(el.get(name, "0")).strip().lower() in ("1", "true")


# CVAT keeps frames and sizes in 32-bit integer columns; a value past them (1e400, -5e9) is a broken
# file, read as absent rather than overflowing int64 or sizing an array by it
INT_LIMIT = 2**31 - 1


def int_attr(el: Element, name: str, default: int) -> int:
    return _bounded_int(el.get(name, default), default)


def int_text(text: str | None) -> int:
    return _bounded_int(text or 0, 0)


def _bounded_int(text, default: int) -> int:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return default
    return int(value) if abs(value) <= INT_LIMIT else default


def coord(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return np.nan  # kept as NaN so validation reports it (schema.non_finite), never a crash


def first_xy(text: str | None) -> np.ndarray:
    """The first point of `"x1,y1;..."` as [1, 2]; NaN when there is none (held back as non-finite)."""
    xy = xy_pairs(text)[:1]
    return xy if len(xy) else np.full((1, 2), np.nan)


def xy_pairs(text: str | None) -> np.ndarray:
    """`"x1,y1;x2,y2"` -> [m, 2] float array (empty for "")."""
    pts = [p for p in (text or "").split(";") if p.strip()]
    if not pts:
        return np.zeros((0, 2))
    pairs = [([*p.split(","), "nan"])[:2] for p in pts]
    return np.array([[coord(a), coord(b)] for a, b in pairs], dtype=np.float64).reshape(-1, 2)
