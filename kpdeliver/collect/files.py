"""Formats at the file and folder level: detect, read (with image sizes from image headers),
decode sniffed bytes, and write a dataset in any format.

Codecs stay pure (bytes in, model out); this module is where files are found and opened.
Codec modules are imported lazily so `kpdeliver convert` only loads what it uses.
"""
from __future__ import annotations

import io
import os
import zipfile
from dataclasses import fields
from pathlib import Path
from typing import Mapping

import numpy as np
import pyarrow as pa

from kpdeliver.codecs import REJECTED_SCHEMA, CodecError, Decoded
from kpdeliver.findings import concat_findings, findings_for
from kpdeliver.images import IMAGE_EXTENSIONS, image_size
from kpdeliver.model import NONE, Dataset, Images, Instances, concat_images, concat_instances
from kpdeliver.schema import KeypointSchema

FORMATS = ("coco", "cvat", "label-studio", "yolo")
_SNIFF = 4096


def sniff_bytes(name: str, data: bytes) -> str:
    """`coco`, `cvat`, `label-studio`, `zip` or `unknown`, from the first bytes (never a full parse:
    the COCO file may be large)."""
    head = data[:_SNIFF].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"<"):
        return "label-studio-config" if b"<View" in head and b"<annotations" not in head else "cvat"
    if head.startswith(b"["):
        return "label-studio" if any(k in head for k in (b'"result"', b'"annotations"', b'"predictions"', b'"data"')) else "coco"
    if head.startswith(b"{"):
        if b'"data"' in head and b'"images"' not in head and (b'"annotations"' in head or b'"predictions"' in head):
            return "label-studio"
        return "coco"
    return "unknown"


def decode_bytes(
    name: str,
    data: bytes,
    *,
    schema: KeypointSchema | None = None,
    annotator: str = "",
    source: str = "",
    label_config: bytes | None = None,
    sizes: Mapping[str, tuple[int, int]] | None = None,
) -> Decoded:
    """Decode one annotation export whatever its format (COCO JSON, CVAT XML, Label Studio JSON,
    or a .zip holding one of those), sniffed from its bytes. Raises CodecError naming `name`
    when the bytes are no keypoint export we read.

    `label_config` (a Label Studio labeling config) gives Label Studio's keypoint order when no
    schema is given; `sizes` (image reference -> (width, height)) serves Label Studio regions
    that carry no image size."""
    source = source or name
    kind = sniff_bytes(name, data)
    if kind == "coco":
        from kpdeliver.codecs import coco

        return coco.decode(data, schema=schema, source=source, annotator=annotator)
    if kind == "cvat":
        from kpdeliver.codecs import cvat

        return cvat.decode(data, schema=schema, source=source, annotator=annotator)
    if kind == "label-studio":
        from kpdeliver.codecs import label_studio

        return label_studio.decode(data, schema=schema, source=source, annotator=annotator, label_config=label_config,
                                   sizes=sizes)
    if kind == "zip":
        return _decode_zip(data, schema=schema, annotator=annotator, source=source)
    if kind == "label-studio-config":
        raise CodecError(f"{source}: a Label Studio labeling config, not annotations")
    if name.lower().endswith(".pts"):
        raise CodecError(f"{source}: an iBUG .pts landmark file (one face, no image reference, size or "
                         "visibility flags) is not an annotation export kpdeliver reads; use its COCO-style JSON")
    raise CodecError(f"{source}: not a keypoint export we read (COCO JSON, CVAT XML, Label Studio JSON, "
                     "or a .zip of one; YOLO labels are read as a folder with data.yaml)")


def _decode_zip(data: bytes, *, schema, annotator: str, source: str) -> Decoded:
    """A CVAT / Label Studio download: the one annotation file inside (annotations.xml, *.json)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise CodecError(f"{source}: broken zip ({e})") from None
    with zf:
        inner = [n for n in zf.namelist() if n.lower().endswith((".xml", ".json")) and not n.endswith("/")]
        if len(inner) != 1:
            raise CodecError(f"{source}: zip holds {len(inner)} .xml/.json files {inner[:5]}; expected exactly one")
        return decode_bytes(inner[0], zf.read(inner[0]), schema=schema, annotator=annotator,
                            source=f"{source}!{inner[0]}")


def detect_format(path: str | Path) -> str:
    """The format a file or folder holds: one of FORMATS, or `unknown`."""
    p = Path(path)
    if p.is_dir():
        if _data_yaml(p) is not None:
            return "yolo"
        kinds = {detect_format(f) for f in annotation_files(p)} - {"unknown"}
        return kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else "unknown")
    if p.name == "data.yaml":
        return "yolo"
    with p.open("rb") as fh:
        kind = sniff_bytes(p.name, fh.read(_SNIFF))
    return kind if kind in FORMATS else "unknown"


def _data_yaml(folder: Path) -> Path | None:
    for name in ("data.yaml", "dataset.yaml", "data.yml"):
        if (folder / name).is_file():
            return folder / name
    return None


def annotation_files(folder: Path) -> list[Path]:
    """Annotation files under a folder (JSON and XML, Label Studio configs excluded), sorted."""
    out = []
    for f in sorted(folder.rglob("*")):
        if f.suffix.lower() not in (".json", ".xml", ".zip") or not f.is_file() or f.name.startswith("."):
            continue
        with f.open("rb") as fh:
            if sniff_bytes(f.name, fh.read(_SNIFF)) != "label-studio-config":
                out.append(f)
    return out


def _label_config_near(path: Path) -> bytes | None:
    """A Label Studio labeling config beside the export (the project's XML with a <View>)."""
    for f in sorted(path.parent.glob("*.xml")):
        data = f.read_bytes()
        if sniff_bytes(f.name, data) == "label-studio-config":
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
    (Label Studio refers to `/data/upload/<project>/<name>`); the folder is scanned on first use."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._index: dict[str, Path] | None = None

    def _find(self, ref: str) -> Path | None:
        if self._index is None:
            self._index = image_index(self._folder)
        return self._index.get(str(ref).replace("\\", "/").rsplit("/", 1)[-1])

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
) -> Decoded:
    """Read a file or folder of annotations into the canonical model.

    A folder with `data.yaml` is YOLO Pose; any other folder has each of its annotation files
    decoded and merged (files that cannot be read become `collect.unreadable_file` findings).
    Image sizes missing from the annotations are read from image headers found beside them
    (or under `images_dir`)."""
    p = Path(path)
    if not p.exists():
        raise CodecError(f"{p}: no such file or folder")
    fmt = fmt or detect_format(p)
    if fmt == "yolo":
        return _read_yolo(p if p.is_dir() else p.parent, schema=schema)
    files = annotation_files(p) if p.is_dir() else [p]
    if not files:
        raise CodecError(f"{p}: no annotation files (.json, .xml, .zip) found")
    root = p if p.is_dir() else p.parent
    index: dict[str, Path] | None = None
    parts, bad = [], []
    for f in files:
        data = f.read_bytes()
        config = sizes = None
        if sniff_bytes(f.name, data) == "label-studio":
            config = _label_config_near(f)
            sizes = _HeaderSizes(Path(images_dir) if images_dir else root)
        try:
            d = decode_bytes(f.name, data, schema=schema, annotator=annotator, source=_rel(f, root),
                             label_config=config, sizes=sizes)
        except CodecError as e:
            if len(files) == 1:
                raise
            bad.append(findings_for("collect.unreadable_file", message=str(e), source=_rel(f, root), n=1))
            continue
        schema = schema or d.dataset.schema
        if _needs_images(d.dataset.images):
            # scanned only when needed: the folder beside a large COCO file may hold thousands of files
            index = index if index is not None else image_index(Path(images_dir) if images_dir else root)
            _resolve_images(d.dataset.images, index)
        parts.append(d)
    if not parts:
        raise CodecError(f"{p}: none of its {len(files)} annotation files could be read: "
                         + "; ".join(t["message"][0].as_py() for t in bad))
    merged = merge_decoded(parts)
    if bad:
        merged.merge_findings(*bad)
    return merged


def _rel(f: Path, root: Path) -> str:
    try:
        return f.relative_to(root).as_posix()
    except ValueError:
        return f.as_posix()


def merge_decoded(parts: list[Decoded]) -> Decoded:
    """One Decoded from several files of one schema. Image and instance ids that collide across
    files are shifted past the ids already taken (the source file stays in `Images.source`)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0].dataset
    images, instances, cats = [], [], {}
    next_img = next_ins = 0
    for d in parts:
        ds = d.dataset
        im, ins = ds.images, ds.instances
        shift_img = next_img if np.intersect1d(im.id, np.concatenate([x.id for x in images] or [np.zeros(0, np.int64)])).size else 0
        im = Images(**{f.name: getattr(im, f.name) for f in fields(Images)})
        im.id = im.id + shift_img
        all_ins = np.concatenate([x.id for x in instances] or [np.zeros(0, np.int64)])
        shift_ins = next_ins if np.intersect1d(ins.id, all_ins).size else 0
        ins = ins.take(np.arange(len(ins)))
        ins.id = ins.id + shift_ins
        ins.image_id = np.where(ins.image_id == NONE, NONE, ins.image_id + shift_img)
        images.append(im)
        instances.append(ins)
        next_img = max(next_img, int(im.id.max(initial=0)) + 1)
        next_ins = max(next_ins, int(ins.id.max(initial=0)) + 1)
        for c in ds.categories:
            cats.setdefault(c.id, c)
    k = first.schema.num_keypoints
    merged = concat_instances(instances, k)
    if not len(merged):  # keep [0, K, 3]: model.Instances.empty(K) yields [0, 0, 3]
        merged = Instances.build(id=[], image_id=[], keypoints=np.zeros((0, k, 3)), num_kpts=k)
    ds = Dataset(first.schema, concat_images(images), merged, tuple(cats.values()))
    rejected = pa.concat_tables([REJECTED_SCHEMA.empty_table(), *[d.rejected for d in parts]])
    return Decoded(ds, concat_findings([d.findings for d in parts]), rejected)


def _read_yolo(folder: Path, *, schema: KeypointSchema | None) -> Decoded:
    from kpdeliver.codecs import yolo_pose

    yaml_path = _data_yaml(folder)
    if yaml_path is None:
        raise CodecError(f"{folder}: YOLO Pose folder without data.yaml")
    labels = {f.relative_to(folder).as_posix(): f.read_bytes() for f in sorted(folder.rglob("*.txt"))
              if "labels" in f.relative_to(folder).parts or f.parent == folder}
    index = image_index(folder)
    sizes, names = {}, {}
    for key in labels:
        stem = Path(key).stem
        hit = index.get(stem)
        if hit is not None:
            try:
                sizes[stem] = image_size(hit)
                names[stem] = hit.relative_to(folder).as_posix()
            except (OSError, ValueError):  # unreadable, or not an image (ImageProblem)
                continue
    return yolo_pose.decode(labels, data_yaml_bytes=yaml_path.read_bytes(), sizes=sizes, schema=schema,
                            source=yaml_path.relative_to(folder.parent).as_posix(), image_names=names)


def write_dataset(
    dataset: Dataset,
    out_dir: str | Path,
    *,
    to: str,
    split_of: np.ndarray | None = None,
    outside: str = "clip",
    cvat_mode: str = "images",
) -> list[Path]:
    """Write a dataset as `coco` (annotations.json), `yolo` (data.yaml + labels/<split>/*.txt),
    `cvat` (annotations.xml) or `label-studio` (tasks.json + label_config.xml). Returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if to == "coco":
        from kpdeliver.codecs import coco

        files = {"annotations.json": coco.encode(dataset)}
    elif to == "yolo":
        from kpdeliver.codecs import yolo_pose

        files = yolo_pose.encode(dataset, split_of=split_of, outside=outside)
    elif to == "cvat":
        from kpdeliver.codecs import cvat

        files = {"annotations.xml": cvat.encode(dataset, mode=cvat_mode)}
    elif to == "label-studio":
        from kpdeliver.codecs import label_studio

        files = {"tasks.json": label_studio.encode(dataset),
                 "label_config.xml": label_studio.label_config(dataset.schema).encode()}
    else:
        raise ValueError(f"unknown output format {to!r}; use one of {', '.join(FORMATS)}")
    return _write_files(out, files)


def _write_files(out: Path, files: Mapping[str, bytes]) -> list[Path]:
    made: set[str] = set()
    paths = []
    for rel, data in files.items():
        parent = rel.rpartition("/")[0]
        if parent not in made:
            (out / parent).mkdir(parents=True, exist_ok=True)
            made.add(parent)
        path = out / rel
        # os-level calls: no buffered file object per label file (20,000 of them in the benchmark)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        paths.append(path)
    return paths
