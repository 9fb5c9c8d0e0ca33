"""Supervisely projects (meta.json + `<dataset>/ann/<item>.json`) <-> canonical model.

A project is a folder (or a .zip / .tar of one): `meta.json` marks it, and the reader hands the
codec meta.json as `data` and the annotation files as `files`; a single annotation file is read
with its project's meta.json as `metadata`. `meta` (classes of geometry `graph`, the schema),
`decoder` (visibility rule and audit columns there), `encoder`, `paths` (datasets and item
names). Loaded on first use."""

from __future__ import annotations

from kpdeliver.codecs.protocol import Codec, DecodeOptions, EncodeOptions, lazy_attributes

_PUBLIC = {  # name -> submodule that defines it, imported when first asked for
    "decode": "decoder",
    "encode": "encoder",
    "schema_from_meta": "meta",
    "project_file": "paths",
}
__all__ = ["CODEC", "sniff", "sniff_meta", "META_JSON", *_PUBLIC]  # noqa: PLE0604 (the lazily loaded names)

META_JSON = "meta.json"

__getattr__ = lazy_attributes(__name__, _PUBLIC)


def sniff(name: str, head: bytes) -> float:
    """An annotation file: a JSON object with `size` and `objects` (and no COCO `images`)."""
    if head.startswith(b"{") and b'"objects"' in head and b'"size"' in head and b'"images"' not in head:
        return 1.0
    return 0.0


def sniff_meta(name: str, head: bytes) -> bool:
    """A project's meta.json: a JSON object with `classes` (COCO says `categories`)."""
    return (
        head.startswith(b"{")
        and b'"classes"' in head
        and any(
            k in head
            for k in (b'"shape"', b'"geometry_config"', b'"projectType"', b'"classes": []', b'"classes":[]')
        )
    )


def _decode(data: bytes, options: DecodeOptions = DecodeOptions()):
    """`data` is meta.json and `files` the project's annotation files; or `data` is one annotation
    file and `metadata` its project's meta.json. `category` names the graph class that is the schema."""
    from kpdeliver.codecs import CodecError
    from kpdeliver.codecs.supervisely.decoder import decode

    schema, annotator, source, metadata, files, category = (
        options.schema,
        options.annotator,
        options.source,
        options.metadata,
        options.files,
        options.category,
    )

    if files is not None:
        return decode(data, files, schema=schema, source=source, annotator=annotator, category=category)
    if metadata is None:
        raise CodecError(
            f"{source}: a Supervisely annotation file is read with its project's meta.json (the "
            "project folder, or a .zip/.tar of it)"
        )
    parts = source.replace("\\", "/").rsplit("!", 1)[-1].split("/")
    name = "/".join(parts[-3:] if len(parts) >= 3 and parts[-2] == "ann" else parts[-1:]) or "item.json"
    return decode(
        metadata, {name: data}, schema=schema, source=source, annotator=annotator, category=category
    )


def _encode(dataset, options: EncodeOptions) -> dict[str, bytes]:
    from kpdeliver.codecs.supervisely.encoder import encode

    return encode(dataset)


def _schema_from_metadata(data: bytes, *, source: str = ""):
    from kpdeliver.codecs.supervisely.meta import schema_from_meta

    return schema_from_meta(data, source=source)


def _project_file(rel: str) -> bool:
    from kpdeliver.codecs.supervisely.paths import project_file

    return project_file(rel)


CODEC = Codec(
    name="supervisely",
    sniff=sniff,
    decode=_decode,
    encode=_encode,
    sniff_metadata=sniff_meta,
    schema_from_metadata=_schema_from_metadata,
    folder_markers=(META_JSON,),
    folder_files=_project_file,
)
