"""Folder exports read as a whole from disk: a Supervisely project (meta.json and its datasets'
annotation files), or one annotation file of it, read with the meta.json of its project."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from posixpath import basename

from kpdeliver.codecs import CodecError, Decoded, registry
from kpdeliver.codecs.protocol import Codec, DecodeOptions
from kpdeliver.schema import KeypointSchema

MAX_LEVELS_UP = 8  # <project>/<ds>/datasets/<child>/datasets/<grandchild>/ann/<item>.json


def folder_codec(folder: Path) -> Codec | None:
    """The codec whose export is this whole folder (YOLO's data.yaml, Supervisely's meta.json)."""
    return registry.folder_codec(lambda name: (folder / name).is_file(), lambda name: _head(folder / name))


def _head(f: Path) -> bytes:
    with f.open("rb") as fh:
        return fh.read(registry.SNIFF_BYTES)


def _marker_in(folder: Path, codec: Codec) -> Path | None:
    if folder_codec(folder) is not codec:
        return None
    return next(folder / n for n in codec.folder_markers if (folder / n).is_file())


def export_root(path: Path, codec: Codec) -> tuple[Path, Path]:
    """(the folder holding the export's marker, the marker): the folder itself, or for one file
    of the export, the nearest folder above it that holds the marker."""
    folders = [path] if path.is_dir() else list(path.parents)[:MAX_LEVELS_UP]
    if path.is_dir() and _marker_in(path, codec) is None:  # a folder holding one project further down
        folders = sorted(
            {m.parent for n in codec.folder_markers for m in path.rglob(n) if _marker_in(m.parent, codec)}
        )
        if len(folders) > 1:
            raise CodecError(
                f"{path}: holds {len(folders)} {codec.name.title()} projects "
                f"({', '.join(str(f) for f in folders[:3])}); read each on its own"
            )
    for folder in folders:
        marker = _marker_in(folder, codec)
        if marker is not None:
            return folder, marker
    raise CodecError(
        f"{path}: a {codec.name.title()} annotation file, but no {' or '.join(codec.folder_markers)} "
        f"of its project in the {len(folders)} folders above it; read it with its project"
    )


def read_folder_export(
    path: Path,
    codec: Codec,
    *,
    schema: KeypointSchema | None,
    annotator: str = "",
    category: str | None = None,
) -> Decoded:
    """A whole export folder, or one of its files with the export's marker."""
    root, marker = export_root(path, codec)
    wanted = codec.folder_files or (lambda rel: False)
    if path.is_dir():
        found = [
            f for f in sorted(root.rglob("*.json")) if f.is_file() and wanted(f.relative_to(root).as_posix())
        ]
    else:
        from kpdeliver.codecs.supervisely.paths import item_meta_path, parse_ann_path

        kept = root / item_meta_path(*parse_ann_path(path.relative_to(root).as_posix()))
        found = [path] + ([kept] if kept.is_file() else [])
    files = {f.relative_to(root).as_posix(): f.read_bytes() for f in found}
    return codec.decode(
        marker.read_bytes(),
        DecodeOptions(
            schema=schema,
            annotator=annotator,
            files=files,
            source=marker.relative_to(root.parent).as_posix(),
            category=category,
        ),
    )


def _in_keys(root: str, keyset: set[str], name: str) -> bool:
    return root + name in keyset


def _head_of(head: Callable[[str], bytes], root: str, name: str) -> bytes:
    return head(root + name)


def split_store_projects(
    keys: list[str], head: Callable[[str], bytes]
) -> tuple[dict[str, list[str]], list[str]]:
    """Folder exports among a store's keys (a Supervisely project dropped unpacked under
    `annotations/<annotator>/`): (marker key -> the project's files, the keys in no project). A
    folder is a project when its marker's first bytes are the format's (`head(key)`); every key
    under it belongs to it (its images and other files are not exports of their own)."""
    keyset = set(keys)
    markers = {n for c in registry.folder_codecs() for n in c.folder_markers}
    roots = sorted({k[: len(k) - len(basename(k))] for k in keys if basename(k) in markers}, key=len)
    projects: dict[str, list[str]] = {}
    taken: set[str] = set()
    for root in roots:
        if any(root.startswith(r) for r in taken):
            continue
        c = registry.folder_codec(partial(_in_keys, root, keyset), partial(_head_of, head, root))
        if c is None or c.folder_files is None:
            continue
        marker = next(root + n for n in c.folder_markers if root + n in keyset)
        projects[marker] = [k for k in keys if k.startswith(root)]
        taken.add(root)
    return projects, [k for k in keys if not any(k.startswith(r) for r in taken)]


def decode_store_project(
    read: Callable[[str], bytes],
    marker: str,
    keys: list[str],
    *,
    schema: KeypointSchema | None,
    annotator: str,
    category: str | None = None,
) -> Decoded:
    """One project of `split_store_projects`, decoded as its folder would be."""
    root = marker[: len(marker) - len(basename(marker))]
    data = read(marker)
    c = registry.folder_codec(lambda name: root + name == marker, lambda name: data)
    if c is None or c.folder_files is None:
        raise CodecError(f"{marker}: not a project marker of a format we read")
    files = {k[len(root) :]: read(k) for k in keys if k != marker and c.folder_files(k[len(root) :])}
    return c.decode(
        data, DecodeOptions(schema=schema, annotator=annotator, source=marker, files=files, category=category)
    )
