"""A batch for collect tests: placeholder images at the sizes an export states, each distinct
(ingest keeps one of identical images), and the batch as the collect step receives it."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, PngImagePlugin

from kpdeliver.collect.exports import CollectResult, collect_exports
from kpdeliver.ingest.batch import ingest_images
from kpdeliver.model import Dataset, Instances
from kpdeliver.schema import KeypointSchema
from kpdeliver.storage import LocalStore

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"


def placeholder(width: int, height: int, index: int, fmt: str = "JPEG") -> bytes:
    """A plain image whose bytes differ for every index (a JPEG comment, a PNG text chunk)."""
    buf = io.BytesIO()
    image = Image.new("RGB", (width, height), (index * 47 % 256, index * 91 % 256, 90))
    if fmt == "JPEG":
        image.save(buf, fmt, comment=f"placeholder {index}".encode())
    else:
        info = PngImagePlugin.PngInfo()
        info.add_text("placeholder", str(index))
        image.save(buf, fmt, pnginfo=info)
    return buf.getvalue()


def put_images(store: LocalStore, sizes: dict[str, tuple[int, int]]) -> None:
    """`images/<name>` for each name -> (width, height)."""
    for i, (name, (w, h)) in enumerate(sorted(sizes.items())):
        store.put(f"images/{name}", placeholder(w, h, i, "PNG" if name.lower().endswith(".png") else "JPEG"))


def collect(store: LocalStore, schema: KeypointSchema, annotators: list[str], **kw) -> CollectResult:
    """The collect step on the batch in `store`, as the delivery runs it."""
    ingested = ingest_images(store)
    batch = Dataset(schema, ingested.images, Instances.empty(schema.num_keypoints))
    return collect_exports(store, batch, annotators, **kw)


def checks(result: CollectResult) -> list[str]:
    return result.findings["check"].to_pylist()
