"""Real-world-like photo files, made with Pillow: EXIF-rotated JPEGs, truncated JPEGs, a PNG
named .jpg, and a PNG whose header declares more pixels than is safe to decode."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def noise(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def jpeg(w: int, h: int, *, seed: int = 0, orientation: int | None = None) -> bytes:
    """A JPEG stored w x h; with `orientation`, the EXIF tag a phone writes (6: turned 90 degrees)."""
    im, out = noise(w, h, seed), io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    im.save(out, "JPEG", quality=85, exif=exif.tobytes())
    return out.getvalue()


def png(w: int, h: int, *, seed: int = 0) -> bytes:
    out = io.BytesIO()
    noise(w, h, seed).save(out, "PNG")
    return out.getvalue()


def truncated_jpeg(w: int, h: int, *, seed: int = 0) -> bytes:
    """A JPEG cut off mid-scan, as an interrupted upload leaves it: the header is intact."""
    data = jpeg(w, h, seed=seed)
    return data[: len(data) * 2 // 3]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(side: int = 30000) -> bytes:
    """A tiny valid PNG whose IHDR declares side x side pixels (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _chunk(b"IEND", b"")
    )
