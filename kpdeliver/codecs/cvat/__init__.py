"""CVAT for images 1.1 and CVAT for video 1.1 XML <-> canonical model.

`skeleton` (the skeleton labels in `<meta>` and the schema they define), `decoder` (image
shapes), `video` (track interpolation), `shapes` (rows and held-back shapes), `encoder`
(ElementTree), `attributes` (XML values read defensively). Loaded on first use."""

from __future__ import annotations

from kpdeliver.codecs.protocol import Codec, DecodeOptions, EncodeOptions, lazy_attributes

_PUBLIC = {  # name -> submodule that defines it, imported when first asked for
    "decode": "decoder",
    "encode": "encoder",
    "SkeletonDef": "skeleton",
    "skeleton_definitions": "skeleton",
    "schema_from_skeleton": "skeleton",
    "schema_from_cvat_xml": "skeleton",
}
__all__ = ["CODEC", "sniff", *_PUBLIC]  # noqa: PLE0604 (the lazily loaded names)


__getattr__ = lazy_attributes(__name__, _PUBLIC)


def sniff(name: str, head: bytes) -> float:
    """Any XML (a Label Studio labeling config is claimed as metadata first; a wrong root is refused at decode,
    naming the file)."""
    return 1.0 if head.startswith(b"<") else 0.0


def _decode(data: bytes, options: DecodeOptions = DecodeOptions()):
    from kpdeliver.codecs.cvat.decoder import decode

    return decode(data, schema=options.schema, source=options.source, annotator=options.annotator)


def _encode(dataset, options: EncodeOptions) -> dict[str, bytes]:
    from kpdeliver.codecs.cvat.encoder import encode

    return {"annotations.xml": encode(dataset, mode=options.cvat_mode)}


def _schema_from_metadata(data: bytes, *, source: str = ""):
    from kpdeliver.codecs.cvat.skeleton import schema_from_cvat_xml

    return schema_from_cvat_xml(data, source=source)


CODEC = Codec(
    name="cvat", sniff=sniff, decode=_decode, encode=_encode, schema_from_metadata=_schema_from_metadata
)
