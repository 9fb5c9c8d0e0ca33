"""COCO Keypoints JSON <-> canonical model.

`decoder` (JSON -> model, faithful to what is written), `encoder` (model -> JSON), `metadata`
(a schema from the file's own categories), `columns` (JSON values -> numpy columns). The
decoder and encoder load on first use (`from kpdeliver.codecs.coco import encode`)."""

from __future__ import annotations

from kpdeliver.codecs.protocol import Codec, DecodeOptions, EncodeOptions, lazy_attributes

_PUBLIC = {  # name -> submodule that defines it, imported when first asked for
    "decode": "decoder",
    "encode": "encoder",
    "schema_from_coco_category": "metadata",
    "load_json": "kpdeliver.codecs.json_doc",
}
__all__ = ["CODEC", "sniff", *_PUBLIC]  # noqa: PLE0604 (the lazily loaded names)


__getattr__ = lazy_attributes(__name__, _PUBLIC)


def sniff(name: str, head: bytes) -> float:
    """Any JSON object or list that no more specific JSON format claims (COCO files are large:
    the first bytes are all there is to go on)."""
    return 0.5 if head[:1] in (b"{", b"[") else 0.0


def _decode(data: bytes, options: DecodeOptions = DecodeOptions()):
    from kpdeliver.codecs.coco.decoder import decode

    o = options
    return decode(data, schema=o.schema, source=o.source, annotator=o.annotator, category=o.category)


def _near_miss(name: str) -> str | None:
    if name.lower().endswith(".pts"):
        return (
            "an iBUG .pts landmark file (one face, no image reference, size or visibility flags) is not an "
            "annotation export kpdeliver reads; use its COCO-style JSON"
        )
    return None


def _encode(dataset, options: EncodeOptions) -> dict[str, bytes]:
    from kpdeliver.codecs.coco.encoder import encode

    return {"annotations.json": encode(dataset)}


CODEC = Codec(name="coco", sniff=sniff, decode=_decode, encode=_encode, near_miss=_near_miss)
