"""Label Studio JSON (export and import/pre-annotation) <-> canonical model.

`config` (labeling configs: keypoint names, schema, the config `encode` matches), `decoder`
(tasks and works), `regions` (grouping regions into instances), `encoder`. Loaded on first use."""

from __future__ import annotations

from kpdeliver.codecs.protocol import Codec, DecodeOptions, EncodeOptions, lazy_attributes

_PUBLIC = {  # name -> submodule that defines it, imported when first asked for
    "decode": "decoder",
    "encode": "encoder",
    "label_config": "config",
    "config_keypoint_names": "config",
    "schema_from_config": "config",
    "OCCLUDED_CHOICES": "config",
    "VISIBILITY_CONTROL": "config",
}
__all__ = ["CODEC", "sniff", "sniff_config", *_PUBLIC]  # noqa: PLE0604 (the lazily loaded names)

_EXPORT_KEYS = (b'"result"', b'"annotations"', b'"predictions"', b'"data"')


__getattr__ = lazy_attributes(__name__, _PUBLIC)


def sniff(name: str, head: bytes) -> float:
    """A list of tasks (or of bare predictions), or one task object with `data` and its works."""
    if head.startswith(b"["):
        return 1.0 if any(k in head for k in _EXPORT_KEYS) else 0.0
    if (
        head.startswith(b"{")
        and b'"data"' in head
        and b'"images"' not in head
        and (b'"annotations"' in head or b'"predictions"' in head)
    ):
        return 1.0
    return 0.0


def sniff_config(name: str, head: bytes) -> bool:
    """A labeling config (`<View>`), the project's metadata rather than annotations."""
    return head.startswith(b"<") and b"<View" in head and b"<annotations" not in head


def _decode(data: bytes, options: DecodeOptions = DecodeOptions()):
    from kpdeliver.codecs.label_studio.decoder import decode

    o = options
    return decode(
        data, schema=o.schema, source=o.source, annotator=o.annotator, label_config=o.metadata, sizes=o.sizes
    )


def _encode(dataset, options: EncodeOptions) -> dict[str, bytes]:
    from kpdeliver.codecs.label_studio.config import label_config
    from kpdeliver.codecs.label_studio.encoder import encode

    return {"tasks.json": encode(dataset), "label_config.xml": label_config(dataset.schema).encode()}


def _schema_from_metadata(data: bytes, *, source: str = ""):
    from kpdeliver.codecs.label_studio.config import schema_from_config

    return schema_from_config(data, source=source)


CODEC = Codec(
    name="label-studio",
    sniff=sniff,
    decode=_decode,
    encode=_encode,
    sniff_metadata=sniff_config,
    schema_from_metadata=_schema_from_metadata,
    needs_image_sizes=True,
)
