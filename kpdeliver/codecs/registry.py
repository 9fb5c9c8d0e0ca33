"""Which codec reads a file, and the dispatch that used to be `if`-chains over formats.

A format is one folder under `kpdeliver/codecs/` exposing `CODEC`, plus one line in
`CODEC_MODULES`. Codec folders are imported on first use; sniffing imports only their light
`__init__` (a few byte checks), never a decoder.
"""

from __future__ import annotations

import importlib
import io
import zipfile
from collections.abc import Callable, Iterable, Mapping

from kpdeliver.bounded import BoundsError, read_member
from kpdeliver.codecs import CodecError, Decoded
from kpdeliver.codecs.protocol import Codec, DecodeOptions, EncodeOptions
from kpdeliver.model import Dataset
from kpdeliver.schema import KeypointSchema

CODEC_MODULES = {  # format name (as the CLI spells it) -> the folder that defines its CODEC
    "coco": "kpdeliver.codecs.coco",
    "cvat": "kpdeliver.codecs.cvat",
    "label-studio": "kpdeliver.codecs.label_studio",
    "yolo": "kpdeliver.codecs.yolo_pose",
    "supervisely": "kpdeliver.codecs.supervisely",
}
FORMATS = tuple(CODEC_MODULES)
SNIFF_BYTES = 4096  # how much of a file sniffing reads: a COCO file may be gigabytes
ZIP = "zip"
TAR = "tar"  # a .tar or .tar.gz: read when it holds a folder export (a Supervisely project)
UNKNOWN = "unknown"
METADATA_SUFFIX = "-config"  # sniff kind of a format's own metadata file, e.g. `label-studio-config`


def codec(name: str) -> Codec:
    """The codec of a format name; ValueError naming the formats there are."""
    module = CODEC_MODULES.get(name)
    if module is None:
        raise ValueError(f"unknown output format {name!r}; use one of {', '.join(FORMATS)}")
    return importlib.import_module(module).CODEC


def _codecs() -> Iterable[Codec]:
    return (codec(name) for name in CODEC_MODULES)


def folder_codecs() -> list[Codec]:
    """The codecs whose export is a whole folder (they name `folder_markers`)."""
    return [c for c in _codecs() if c.folder_markers]


def _head(data: bytes) -> bytes:
    return data[:SNIFF_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n")


def sniff_bytes(name: str, data: bytes) -> str:
    """A format name, `zip`, `<format>-config` (the format's metadata, not annotations) or
    `unknown`, from a file's name and first bytes (never a full parse)."""
    head = _head(data)
    if head.startswith(b"PK\x03\x04"):
        return ZIP
    from kpdeliver.codecs.archives import is_tar

    if is_tar(data):
        return TAR
    for c in _codecs():
        if c.sniff_metadata is not None and c.sniff_metadata(name, head):
            return c.name + METADATA_SUFFIX
    best, score = UNKNOWN, 0.0
    for c in _codecs():
        s = c.sniff(name, head)
        if s > score:
            best, score = c.name, s
    return best


def is_metadata(kind: str) -> bool:
    return kind.endswith(METADATA_SUFFIX)


def folder_codec(has_file: Callable[[str], bool], head: Callable[[str], bytes] | None = None) -> Codec | None:
    """The codec whose export is a whole folder, for a folder that `has_file` one of its marker
    names (YOLO's data.yaml); asked by name so a folder of many images is never listed. With
    `head` (a marker's first bytes), a marker a format also sniffs (Supervisely's meta.json, a
    common name) counts only when its bytes are that format's."""
    for c in _codecs():
        for name in c.folder_markers:
            sniff = c.sniff_metadata
            if has_file(name) and (head is None or sniff is None or sniff(name, _head(head(name)))):
                return c
    return None


def decode_bytes(
    name: str,
    data: bytes,
    *,
    schema: KeypointSchema | None = None,
    annotator: str = "",
    source: str = "",
    metadata: bytes | None = None,
    sizes: Mapping[str, tuple[int, int]] | None = None,
    category: str | None = None,
) -> Decoded:
    """Decode one annotation export whatever its format (COCO JSON, CVAT XML, Label Studio JSON,
    or a .zip holding one of those), sniffed from its bytes. Raises CodecError naming `name`
    when the bytes are no keypoint export we read.

    `metadata` (the format's own metadata file, e.g. a Label Studio labeling config) gives the
    keypoint order when no schema is given; `sizes` (image reference -> (width, height)) serves
    formats whose regions may carry no image size; `category` names the keypoint category to
    read from a COCO file that holds several (other formats hold one skeleton per export)."""
    source = source or name
    kind = sniff_bytes(name, data)
    if kind == ZIP:
        return _decode_zip(
            data, schema=schema, annotator=annotator, source=source, category=category, sizes=sizes
        )
    if kind == TAR:
        return _decode_tar(data, schema=schema, annotator=annotator, source=source, category=category)
    if is_metadata(kind) and codec(kind.removesuffix(METADATA_SUFFIX)).folder_files is not None:
        c = codec(kind.removesuffix(METADATA_SUFFIX))
        raise CodecError(
            f"{source}: the {c.name.title()} project's {c.folder_markers[0]}, not annotations; read the "
            "project folder, or a .zip/.tar of it"
        )
    if is_metadata(kind):
        raise CodecError(
            f"{source}: a {kind.removesuffix(METADATA_SUFFIX).replace('-', ' ').title()} "
            "labeling config, not annotations"
        )
    if kind != UNKNOWN and (not codec(kind).folder_markers or codec(kind).folder_files is not None):
        return codec(kind).decode(
            data,
            DecodeOptions(
                schema=schema,
                annotator=annotator,
                source=source,
                metadata=metadata,
                sizes=sizes,
                category=category,
            ),
        )
    why = next((why for c in _codecs() if c.near_miss is not None and (why := c.near_miss(name))), None)
    if why:
        raise CodecError(f"{source}: {why}")
    raise CodecError(
        f"{source}: not a keypoint export we read (COCO JSON, CVAT XML, Label Studio JSON, "
        "or a .zip of one; YOLO labels are read as a folder with data.yaml, a Supervisely project "
        "as a folder with meta.json or a .zip/.tar of one)"
    )


BACKUP_MARKERS = {"task.json": "task", "project.json": "project"}  # at the root of a CVAT backup zip


def _hidden(name: str) -> bool:
    """macOS resource forks (`__MACOSX/`, `._x`) and other dot-files a re-zipped export carries."""
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))


def _decode_zip(
    data: bytes,
    *,
    schema: KeypointSchema | None,
    annotator: str,
    source: str,
    category: str | None,
    sizes: Mapping[str, tuple[int, int]] | None = None,
) -> Decoded:
    """A CVAT / Label Studio download: the one annotation file inside (CVAT: annotations.xml at the
    root; COCO Keypoints: annotations/person_keypoints_<subset>.json); images beside it are ignored."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as e:
        raise CodecError(f"{source}: broken zip ({e})") from None
    with zf:
        names = [n for n in zf.namelist() if not n.endswith("/") and not _hidden(n)]
        project = _folder_export(
            names,
            lambda n: _member(zf, n, len(data), source),
            schema=schema,
            annotator=annotator,
            source=source,
            category=category,
        )
        if project is not None:
            return project
        backup = next((BACKUP_MARKERS[n] for n in names if n in BACKUP_MARKERS), None)
        if backup is not None:
            raise CodecError(
                f"{source}: a CVAT {backup} backup ({backup}.json, annotations.json, data/), not an "
                "annotation export; export the task's annotations as 'CVAT for images 1.1', "
                "'CVAT for video 1.1' or 'COCO Keypoints 1.0' instead"
            )
        inner = [n for n in names if n.lower().endswith((".xml", ".json"))]
        if len(inner) != 1:
            raise CodecError(
                f"{source}: zip holds {len(inner)} .xml/.json files {inner[:5]}; expected exactly one "
                "(one subset per export file)"
            )
        member = _member(zf, inner[0], len(data), source)
        if sniff_bytes(inner[0], member) == ZIP:
            raise CodecError(
                f"{source}: archive member {inner[0]!r} is itself an archive; archives inside "
                "archives are not opened"
            )
        return decode_bytes(
            inner[0],
            member,
            schema=schema,
            annotator=annotator,
            source=f"{source}!{inner[0]}",
            category=category,
            sizes=sizes,
        )


def _member(zf: zipfile.ZipFile, name: str, archive_size: int, source: str) -> bytes:
    """One member, inflated in pieces, refused unread past a size or ratio cap (a CodecError naming it)."""
    try:
        return read_member(zf, zf.getinfo(name), archive_size=archive_size, source=source)
    except BoundsError as e:
        raise CodecError(str(e)) from None


def _folder_export(
    names: list[str],
    read: Callable[[str], bytes],
    *,
    schema: KeypointSchema | None,
    annotator: str,
    source: str,
    category: str | None = None,
) -> Decoded | None:
    """A folder export (a Supervisely project) among an archive's members, decoded; else None."""
    from kpdeliver.codecs.archives import folder_export

    return folder_export(
        _codecs(), names, read, source=source, schema=schema, annotator=annotator, category=category
    )


def _decode_tar(
    data: bytes, *, schema: KeypointSchema | None, annotator: str, source: str, category: str | None = None
) -> Decoded:
    """A .tar / .tar.gz download of a folder export (Supervisely's own project download)."""
    from kpdeliver.codecs.archives import tar_members

    names, read = tar_members(data, source)
    project = _folder_export(
        [n for n in names if not _hidden(n)],
        read,
        schema=schema,
        annotator=annotator,
        source=source,
        category=category,
    )
    if project is None:
        raise CodecError(
            f"{source}: tar archive holds no Supervisely project (meta.json with <dataset>/ann/*.json); "
            "other exports are read unpacked or as a .zip"
        )
    return project


def encode_files(dataset: Dataset, fmt: str, options: EncodeOptions = EncodeOptions()) -> dict[str, bytes]:
    """The files (relative path -> bytes) that hold `dataset` in format `fmt`."""
    return codec(fmt).encode(dataset, options)


def schema_from_metadata(name: str, data: bytes, *, source: str = "") -> KeypointSchema:
    """A schema from a format's own metadata (a CVAT XML skeleton, a Label Studio labeling
    config), the format sniffed from the bytes. CodecError when the file is no such metadata."""
    kind = sniff_bytes(name, data)
    fmt = kind.removesuffix(METADATA_SUFFIX)
    found = codec(fmt) if fmt in CODEC_MODULES else None
    if found is None or found.schema_from_metadata is None:
        raise CodecError(
            f"{source or name}: no keypoint schema in it (a CVAT XML skeleton or a Label Studio "
            "labeling config defines one)"
        )
    return found.schema_from_metadata(data, source=source or name)
