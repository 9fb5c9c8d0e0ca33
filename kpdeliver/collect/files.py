"""Annotation files and folders: find them, read them (image sizes from image headers), merge
what several files hold, and write a dataset's files to a folder.

Codecs stay pure (bytes in, model out) and `kpdeliver.codecs.registry` picks the codec; this
module is only where files are found, opened and written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa

from kpdeliver.codecs import CodecError, Decoded, registry
from kpdeliver.codecs.coco.categories import SeveralCategories
from kpdeliver.codecs.label_studio.paths import image_path
from kpdeliver.codecs.protocol import Codec, DecodeOptions, EncodeOptions
from kpdeliver.codecs.yolo_pose.decoder import read_data_yaml
from kpdeliver.collect.local import read_input
from kpdeliver.collect.merging import merge_decoded
from kpdeliver.collect.non_finite import non_finite_rows
from kpdeliver.collect.writing import write_files
from kpdeliver.collect.yolo_layout import tree_layout
from kpdeliver.findings import findings_for
from kpdeliver.images import IMAGE_EXTENSIONS, image_size
from kpdeliver.model import Dataset, Images
from kpdeliver.schema import KeypointSchema


def _sniff_file(f: Path) -> str:
    if not f.is_file():  # a named pipe, a device: never opened
        return registry.UNKNOWN
    with f.open("rb") as fh:
        return registry.sniff_bytes(f.name, fh.read(registry.SNIFF_BYTES))


def detect_format(path: str | Path) -> str:
    """The format a file or folder holds: one of `registry.FORMATS`, `mixed` or `unknown`."""
    p = Path(path)
    if p.is_dir():
        whole = _folder_codec(p)
        if whole is not None:
            return whole.name
        kinds = {detect_format(f) for f in annotation_files(p)} - {"unknown"}
        return kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else "unknown")
    kind = _sniff_file(p)
    return kind if kind in registry.FORMATS else "unknown"


def _folder_codec(folder: Path) -> Codec | None:
    """The codec whose export is this whole folder (a YOLO folder with data.yaml)."""
    from kpdeliver.collect.projects import folder_codec

    return folder_codec(folder)


def _marker(folder: Path, codec: Codec) -> Path | None:
    """The file that makes `folder` one export of `codec` (YOLO's data.yaml)."""
    for name in codec.folder_markers:
        if (folder / name).is_file():
            return folder / name
    return None


def annotation_files(folder: Path) -> list[Path]:
    """Annotation files under a folder (JSON and XML, Label Studio configs excluded), sorted."""
    out = []
    for f in sorted(folder.rglob("*")):
        if f.suffix.lower() not in (".json", ".xml", ".zip") or not f.is_file() or f.name.startswith("."):
            continue
        if not registry.is_metadata(_sniff_file(f)):
            out.append(f)
    return out


def _metadata_near(path: Path, fmt: str) -> bytes | None:
    """The format's own metadata file beside the export (a Label Studio project's labeling
    config, the XML with a <View>)."""
    for f in sorted(path.parent.glob("*.xml")):
        if not f.is_file():  # a named pipe or a device named *.xml: never opened
            continue
        data = read_input(f)
        if registry.sniff_bytes(f.name, data) == fmt + registry.METADATA_SUFFIX:
            return data
    return None


def image_index(folder: Path) -> dict[str, Path]:
    """Image files under a folder by relative path, by file name and by stem (first one wins)."""
    index: dict[str, Path] = {}
    for f in sorted(folder.rglob("*")):
        if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file():
            rel = f.relative_to(folder).as_posix()
            for key in (rel, f.name, f.stem):
                index.setdefault(key, f)
    return index


class _HeaderSizes(Mapping):
    """Image sizes read from image headers on demand, looked up by a reference's file name
    (Label Studio refers to `/data/upload/<project>/<hex>-<name>`, `/data/local-files/?d=<path>` or a
    storage URL: codecs/label_studio/paths.py); the folder is scanned on first use."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._index: dict[str, Path] | None = None

    def _find(self, ref: str) -> Path | None:
        if self._index is None:
            self._index = image_index(self._folder)
        raw = str(ref).replace("\\", "/").rsplit("/", 1)[-1]
        return self._index.get(image_path(str(ref)).replace("\\", "/").rsplit("/", 1)[-1]) or self._index.get(
            raw
        )

    def __contains__(self, ref) -> bool:
        return self._find(ref) is not None

    def __getitem__(self, ref) -> tuple[int, int]:
        hit = self._find(ref)
        if hit is None:
            raise KeyError(ref)
        return image_size(hit)

    def __iter__(self):
        return iter(self._index or {})

    def __len__(self) -> int:
        return len(self._index or {})


def _needs_images(images: Images) -> bool:
    """Whether some image lacks a size or a real file name (CVAT video frames)."""
    if not len(images):
        return False
    no_suffix = any("." not in str(n).rsplit("/", 1)[-1] for n in images.file_name.tolist())
    return bool(no_suffix or np.any((images.width <= 0) | (images.height <= 0)))


def _resolve_images(images: Images, index: Mapping[str, Path]) -> None:
    """Fill unknown sizes from image headers, and give suffix-less names (CVAT video frames)
    the real file's name, for images found in `index`."""
    for r, name in enumerate(images.file_name.tolist()):
        name = str(name).replace("\\", "/")
        hit = index.get(name) or index.get(name.rsplit("/", 1)[-1]) or index.get(Path(name).stem)
        if hit is None:
            continue
        if "." not in name.rsplit("/", 1)[-1]:
            images.file_name[r] = hit.name
        if images.width[r] <= 0 or images.height[r] <= 0:
            try:
                images.width[r], images.height[r] = image_size(hit)
            except (OSError, ValueError):  # unreadable, or not an image (ImageProblem)
                continue


def read_annotations(
    path: str | Path,
    *,
    schema: KeypointSchema | None = None,
    fmt: str | None = None,
    images_dir: str | Path | None = None,
    annotator: str = "",
    sizes: Mapping[str, tuple[int, int]] | None = None,
    category: str | None = None,
) -> Decoded:
    """Read a file or folder of annotations into the canonical model (`category`: the keypoint
    category to read from COCO files that hold several).

    A folder with `data.yaml` is YOLO Pose; any other folder has each of its annotation files
    decoded and merged (files that cannot be read become `collect.unreadable_file` findings).
    Image sizes missing from the annotations are read from image headers found beside them
    (or under `images_dir`), or taken from `sizes` (file name -> (width, height))."""
    p = Path(path)
    if not p.exists():
        raise CodecError(f"{p}: no such file or folder")
    fmt = fmt or detect_format(p)
    whole = registry.codec(fmt) if fmt in registry.FORMATS else None
    if whole is not None and whole.folder_files is not None:  # a Supervisely project, or one file of it
        from kpdeliver.collect.projects import read_folder_export

        return read_folder_export(p, whole, schema=schema, annotator=annotator, category=category)
    if whole is not None and whole.folder_markers:
        return _read_folder_export(
            p if p.is_dir() else p.parent, whole, schema=schema, images_dir=images_dir, sizes=sizes
        )
    files = annotation_files(p) if p.is_dir() else [p]
    if not files:
        raise CodecError(f"{p}: no annotation files (.json, .xml, .zip) found")
    parts, bad = _decode_files(
        files,
        p if p.is_dir() else p.parent,
        schema=schema,
        images_dir=images_dir,
        annotator=annotator,
        sizes=sizes,
        category=category,
    )
    if not parts:
        raise CodecError(
            f"{p}: none of its {len(files)} annotation files could be read: "
            + "; ".join(t["message"][0].as_py() for t in bad)
        )
    merged = merge_decoded(parts)
    if bad:
        merged.merge_findings(*bad)
    return merged


def _decode_files(
    files: list[Path],
    root: Path,
    *,
    schema: KeypointSchema | None,
    images_dir: str | Path | None,
    annotator: str,
    sizes: Mapping[str, tuple[int, int]] | None,
    category: str | None,
) -> tuple[list[Decoded], list[pa.Table]]:
    """(each file decoded, a `collect.unreadable_file` finding per file that cannot be: the error
    itself when it is the only file, or when it holds several categories)."""
    index: dict[str, Path] | None = None
    parts, bad = [], []
    given = sizes  # --sizes: file name -> (width, height), wins over image headers
    for f in files:
        data = read_input(f)
        metadata = sizes = None
        kind = registry.sniff_bytes(f.name, data)
        if kind in registry.FORMATS:
            if registry.codec(kind).sniff_metadata is not None:
                metadata = _metadata_near(f, kind)
            if registry.codec(kind).needs_image_sizes:
                sizes = given or _HeaderSizes(Path(images_dir) if images_dir else root)
        try:
            d = registry.decode_bytes(
                f.name,
                data,
                schema=schema,
                annotator=annotator,
                source=_rel(f, root),
                metadata=metadata,
                sizes=sizes,
                category=category,
            )
        except CodecError as e:
            if len(files) == 1 or isinstance(e, SeveralCategories):
                raise
            bad.append(findings_for("collect.unreadable_file", message=str(e), source=_rel(f, root), n=1))
            continue
        schema = schema or d.dataset.schema
        if _needs_images(d.dataset.images):
            # scanned only when needed: the folder beside a large COCO file may hold thousands of files
            index = index if index is not None else image_index(Path(images_dir) if images_dir else root)
            _resolve_images(d.dataset.images, index)
        for table in (given, sizes):
            if table:
                _sizes_by_name(d.dataset.images, table)
        parts.append(d)
    return parts, bad


def _rel(f: Path, root: Path) -> str:
    try:
        return f.relative_to(root).as_posix()
    except ValueError:
        return f.as_posix()


def _sizes_by_name(images: Images, sizes: Mapping[str, tuple[int, int]]) -> None:
    """Unknown image sizes from a sizes table, by file name, then base name, then stem."""
    for r in np.flatnonzero((images.width <= 0) | (images.height <= 0)).tolist():
        wh = _size_of(str(images.file_name[r]), sizes)
        if wh:
            images.width[r], images.height[r] = wh


def _size_of(name: str, sizes: Mapping[str, tuple[int, int]]) -> tuple[int, int] | None:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return sizes.get(name) or sizes.get(base) or sizes.get(Path(base).stem)


def _read_folder_export(
    folder: Path,
    codec: Codec,
    *,
    schema: KeypointSchema | None,
    images_dir: str | Path | None = None,
    sizes: Mapping[str, tuple[int, int]] | None = None,
) -> Decoded:
    """A format whose export is a folder (YOLO Pose): its marker file (data.yaml), the label files
    and background images its layout names (collect/yolo_layout.py), and each one's image size and
    name: in the folder, under `images_dir`, or in `sizes` (by file name or stem)."""
    marker = _marker(folder, codec)
    if marker is None:
        raise CodecError(f"{folder}: {codec.name} folder without {' or '.join(codec.folder_markers)}")
    source = marker.relative_to(folder.parent).as_posix()
    files = [f.relative_to(folder).as_posix() for f in sorted(folder.rglob("*")) if f.is_file()]
    layout = tree_layout(
        read_data_yaml(marker.read_bytes(), source)[0], files, lambda rel: (folder / rel).read_bytes()
    )
    index = image_index(folder)
    if images_dir is not None:
        index = {**image_index(Path(images_dir)), **index}
    names = layout.image_names()
    found = _tree_sizes(names, index, folder, sizes or {})
    return codec.decode(
        marker.read_bytes(),
        DecodeOptions(
            schema=schema,
            source=source,
            sizes=found,
            image_names=names,
            files=layout.label_files(lambda rel: (folder / rel).read_bytes()),
        ),
    )


def _tree_sizes(
    names: dict[str, str], index: Mapping[str, Path], folder: Path, sizes: Mapping[str, tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    """Each label's image size (label key -> (w, h)) from the image found by path, name or stem,
    else from `sizes`; a name the tree gave without extension becomes the found image's."""
    by_stem = {Path(n.replace("\\", "/")).stem: (n, wh) for n, wh in sizes.items()}
    found = {}
    for key, image in names.items():
        base = image.rsplit("/", 1)[-1]
        hit = index.get(image) or index.get(base) or index.get(Path(base).stem)
        if hit is None:
            given = _size_of(image, sizes)
            name, wh = (image, given) if given else by_stem.get(Path(base).stem, (image, None))
            if wh:
                found[key], names[key] = wh, name
            continue
        try:
            found[key] = image_size(hit)
        except (OSError, ValueError):  # unreadable, or not an image (ImageProblem)
            continue
        if not Path(base).suffix:
            names[key] = hit.relative_to(folder).as_posix() if hit.is_relative_to(folder) else hit.name
    return found


def write_dataset(
    dataset: Dataset,
    out_dir: str | Path,
    *,
    to: str,
    split_of: np.ndarray | None = None,
    outside: str = "clip",
    cvat_mode: str = "images",
) -> int:
    """Write a dataset as `coco` (annotations.json), `yolo` (data.yaml + labels/<split>/*.txt),
    `cvat` (annotations.xml) or `label-studio` (tasks.json + label_config.xml). Returns how many
    files were written.
    A dataset holding non-finite numbers is refused: `hold_non_finite` takes those items out first."""
    bad = non_finite_rows(dataset)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} instances hold NaN/infinite numbers; no format's consumers accept them "
            "(hold_non_finite holds them back)"
        )
    files = registry.encode_files(
        dataset, to, EncodeOptions(split_of=split_of, outside=outside, cvat_mode=cvat_mode)
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return write_files(out, files)
