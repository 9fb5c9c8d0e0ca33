"""YOLO Pose trees among a batch's exports: a folder under `annotations/<annotator>/` (or `gold/`)
that holds data.yaml is one export, read as `convert` reads a YOLO folder (collect/yolo_layout.py),
with each label's image size taken from the batch image it labels (ingest measured them)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from posixpath import basename, dirname
from typing import Protocol

from kpdeliver.codecs import Decoded
from kpdeliver.codecs.protocol import DecodeOptions
from kpdeliver.codecs.yolo_pose import CODEC, DATA_YAML_NAMES
from kpdeliver.codecs.yolo_pose.decoder import read_data_yaml
from kpdeliver.collect.yolo_layout import tree_layout
from kpdeliver.schema import KeypointSchema


class BatchLookup(Protocol):
    """The batch's images as an export refers to them: `row(ref)` the batch row, `names` the
    batch's file names, `size(row)` the (width, height) ingest measured (0, 0 when unknown)."""

    names: list[str]

    def row(self, ref: str) -> int | None: ...

    def size(self, row: int) -> tuple[int, int]: ...


def tree_roots(keys: list[str]) -> dict[str, str]:
    """Folder (with a trailing `/`) -> its data.yaml key, for each folder holding one."""
    return {dirname(k) + "/": k for k in sorted(keys) if basename(k) in DATA_YAML_NAMES}


def split_by_tree(keys: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """(tree root -> the keys in it, the keys in no tree); a key belongs to its deepest tree."""
    roots = sorted(tree_roots(keys), key=len, reverse=True)
    trees: dict[str, list[str]] = {r: [] for r in roots}
    loose: list[str] = []
    for k in keys:
        root = next((r for r in roots if k.startswith(r)), None)
        (trees[root] if root is not None else loose).append(k)
    return trees, loose


def decode_tree(
    get: Callable[[str], bytes],
    root: str,
    keys: list[str],
    *,
    schema: KeypointSchema,
    batch: BatchLookup,
    files: dict[str, str],
) -> Decoded:
    """One YOLO tree of the store: its labels on the batch's images (by the image path each label
    stands for, Ultralytics' images/labels rule, or a split list's line). `files` gets each file
    read -> sha256. CodecError (or StorageError) when data.yaml is unusable."""
    read = _hashing(get, files)
    marker = tree_roots(keys)[root]
    data = read(marker)
    layout = tree_layout(
        read_data_yaml(data, marker)[0], [k[len(root) :] for k in keys], lambda r: read(root + r)
    )
    names = layout.image_names()
    sizes: dict[str, tuple[int, int]] = {}
    for key, image in names.items():
        row = batch.row(image)
        if row is not None and min(batch.size(row)) > 0:
            sizes[key], names[key] = batch.size(row), batch.names[row]
    return CODEC.decode(
        data,
        DecodeOptions(
            schema=schema,
            source=marker,
            sizes=sizes,
            image_names=names,
            files=layout.label_files(lambda r: read(root + r)),
        ),
    )


def _hashing(get: Callable[[str], bytes], files: dict[str, str]) -> Callable[[str], bytes]:
    def read(key: str) -> bytes:
        data = get(key)
        files[key] = hashlib.sha256(data).hexdigest()
        return data

    return read
