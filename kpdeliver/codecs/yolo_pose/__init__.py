"""Ultralytics YOLO Pose <-> canonical model. A YOLO export is a folder: `data.yaml` plus
`labels/<split>/<stem>.txt`; the reader above hands the codec those files' bytes and the image
sizes it read from image headers.

`encoder` (label lines as fixed-width text in one numpy pass, data.yaml), `decoder` (label
files and data.yaml). Loaded on first use."""

from __future__ import annotations

from kpdeliver.codecs.protocol import Codec, DecodeOptions, EncodeOptions, lazy_attributes

_PUBLIC = {  # name -> submodule that defines it, imported when first asked for
    "decode": "decoder",
    "schema_from_data_yaml": "decoder",
    "encode": "encoder",
    "label_lines": "encoder",
    "data_yaml": "encoder",
    "yolo_stem": "encoder",
    "tree_stem": "encoder",
    "unique_stems": "encoder",
    "image_paths": "encoder",
    "splits_from_names": "encoder",
    "DECIMALS": "encoder",
}
__all__ = ["CODEC", "sniff", "DATA_YAML_NAMES", *_PUBLIC]  # noqa: PLE0604 (the lazily loaded names)

DATA_YAML_NAMES = ("data.yaml", "dataset.yaml", "data.yml")


__getattr__ = lazy_attributes(__name__, _PUBLIC)


def sniff(name: str, head: bytes) -> float:
    """The dataset's data.yaml (label files alone say nothing about keypoints)."""
    return 1.0 if name in DATA_YAML_NAMES else 0.0


def _decode(data: bytes, options: DecodeOptions = DecodeOptions()):
    """`data` is data.yaml; `options.files` the label files by relative path; `options.sizes` keyed by label stem."""
    from kpdeliver.codecs.yolo_pose.decoder import decode

    o = options
    return decode(
        o.files or {},
        data_yaml_bytes=data,
        sizes=o.sizes or {},
        schema=o.schema,
        source=o.source,
        image_names=o.image_names,
    )


def _encode(dataset, options: EncodeOptions) -> dict[str, bytes]:
    from kpdeliver.codecs.yolo_pose.encoder import encode

    return encode(dataset, split_of=options.split_of, outside=options.outside)


CODEC = Codec(name="yolo", sniff=sniff, decode=_decode, encode=_encode, folder_markers=DATA_YAML_NAMES)
