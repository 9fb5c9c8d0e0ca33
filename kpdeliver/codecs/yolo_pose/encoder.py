"""Ultralytics YOLO Pose <- canonical model: label lines and data.yaml.

Label line: `cls cx cy w h  x1 y1 v1 ... xK yK vK`, all coordinates normalised to [0, 1].
Ultralytics drops a whole image when any coordinate leaves [0, 1], so a v=1 point estimated
outside the frame is clipped to the edge (or written `0 0 0`, per client config); its true
position stays in the COCO file. `data.yaml` always carries `kpt_shape` and `flip_idx`.

Lines are formatted as fixed-width text by numpy in one pass (no Python loop per value):
formatting is the costly part of a naive converter.
"""

from __future__ import annotations

import posixpath

import numpy as np
import yaml

from kpdeliver.codecs import CodecError
from kpdeliver.model import Category, Dataset, Instances, bbox_or_from_keypoints
from kpdeliver.schema import KeypointSchema

DECIMALS = 7  # 1e-7 of the image side: 1e-3 px up to 10,000 px images
_SCALE = 10**DECIMALS
_FIELD = DECIMALS + 3  # a number's width in a label line: `d.ddddddd` and its separator


_SPLIT_WORDS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
_PLAIN_EXT = ".jpg"  # the one extension that stays out of the stem (most batches' images keep their names)
_ESCAPES = str.maketrans({"%": "%25", "/": "%2F", "\\": "%5C"})


def yolo_stem(file_name: str) -> str:
    """The stem of an image's label and image file in the YOLO tree, one-to-one with the batch key:
    the key without its extension, percent-escaped (`%` as `%25`, `/` as `%2F`, `\\` as `%5C`, a leading
    `.` as `%2E`), then `%2E<ext>` for any extension but `.jpg`, and `%00` for a name without one. So
    `scene_001.jpg` stays `scene_001`, `sub/x.jpg` is `sub%2Fx`, `sub__x.jpg` is `sub__x`, `x.png` is
    `x%2Epng`, `x.` is `x%2E` and `x` is `x%00`: two keys never share a stem (an escaped base holds `%2E`
    only at its start, and never `%00`)."""
    base, ext = posixpath.splitext(file_name)
    stem = base.translate(_ESCAPES)
    if stem.startswith("."):
        stem = "%2E" + stem[1:]
    if ext == _PLAIN_EXT:
        return stem
    return f"{stem}%2E{ext[1:].translate(_ESCAPES)}" if ext else f"{stem}%00"


_LAYOUT_WORDS = frozenset({"images", "labels", *_SPLIT_WORDS})


def tree_stem(file_name: str) -> str:
    """The stem `convert` writes, beside the user's own images: the path without its extension, folders
    joined by `__`, leading YOLO layout folders (`images/train/`, `val/images/`) dropped, since the tree's
    own split folders say that again. Not one-to-one (`x.jpg`, `x.png` and `train/x.jpg` share `x`)."""
    if "/" not in file_name and "\\" not in file_name:  # most names: no folders to join
        return posixpath.splitext(file_name)[0]
    parts = posixpath.splitext(file_name.replace("\\", "/"))[0].split("/")
    while len(parts) > 1 and parts[0].lower() in _LAYOUT_WORDS:
        parts = parts[1:]
    return "__".join(parts)


def unique_stems(file_names, *, one_to_one: bool = True) -> list[str]:
    """Each image's YOLO stem (`yolo_stem`, or `tree_stem` when not `one_to_one`); CodecError naming
    both images if two different names ever share one (never with `yolo_stem`). The same name listed
    twice is one image: its rows share the stem."""
    names = [str(n) for n in file_names]
    stems = [yolo_stem(n) if one_to_one else tree_stem(n) for n in names]
    first: dict[str, str] = {}
    for name, stem in zip(names, stems):
        other = first.setdefault(stem, name)
        if other != name:
            raise CodecError(
                f"images {other!r} and {name!r} would share the YOLO file name {stem!r}; "
                "refusing to name either"
            )
    return stems


def splits_from_names(file_names) -> np.ndarray:
    """Each image's split as its path says (`images/val/…`, `valid/images/…`: YOLO and Roboflow
    layouts, kept through COCO file names), else train."""
    out = []
    for name in map(str, file_names):
        if "/" not in name and "\\" not in name:
            out.append("train")
            continue
        folders = name.replace("\\", "/").lower().split("/")[:-1]
        out.append(next((_SPLIT_WORDS[f] for f in folders if f in _SPLIT_WORDS), "train"))
    return np.asarray(out, dtype=object)


def image_paths(
    dataset: Dataset, split_of: np.ndarray | None = None, *, one_to_one: bool = False
) -> list[str]:
    """Where each image (row) belongs in the tree, without its extension: `images/<split>/<stem>`."""
    names = dataset.images.file_name.tolist()
    splits = split_of if split_of is not None else splits_from_names(names)
    return [f"images/{s}/{stem}" for stem, s in zip(unique_stems(names, one_to_one=one_to_one), splits)]


# `d.ddddddd` as two table lookups: the head `d.ddd` (q // 10^4) and the tail `dddd` (q % 10^4)
_TAIL_DIGITS = 4
_HEAD_W = DECIMALS - _TAIL_DIGITS + 2
_HEAD = np.array(
    [
        f"{h // 10 ** (DECIMALS - _TAIL_DIGITS)}.{h % 10 ** (DECIMALS - _TAIL_DIGITS):0{DECIMALS - _TAIL_DIGITS}d}"
        for h in range(10 ** (DECIMALS - _TAIL_DIGITS) + 1)
    ],
    dtype=f"S{_HEAD_W}",
)
_TAIL = np.array([f"{t:0{_TAIL_DIGITS}d}" for t in range(10**_TAIL_DIGITS)], dtype=f"S{_TAIL_DIGITS}")
# A line seen as records: a number's field (its digits and separator), a keypoint's `x y v `. The
# lookups land in the line as whole elements, with no uint8 loop per character.
_NUMBER = np.dtype(
    {
        "names": ["head", "tail"],
        "formats": [_HEAD.dtype, _TAIL.dtype],
        "offsets": [0, _HEAD_W],
        "itemsize": _FIELD,
    }
)
_POINT = np.dtype(
    {
        "names": ["x", "y", "v"],
        "formats": [_NUMBER, _NUMBER, np.uint8],
        "offsets": [0, _FIELD, 2 * _FIELD],
        "itemsize": 2 * _FIELD + 2,
    }
)


def _put_fixed(field: np.ndarray, values: np.ndarray) -> None:
    """Write floats in [0, 1] as `d.ddddddd` into `field` (a view of `_NUMBER` records in the lines)."""
    q = np.rint(np.clip(values, 0.0, 1.0) * _SCALE).astype(np.int64)
    head, tail = np.divmod(q, 10**_TAIL_DIGITS)
    field["head"] = _HEAD[head]
    field["tail"] = _TAIL[tail]


def label_lines(dataset: Dataset, *, outside: str = "clip") -> tuple[np.ndarray, int]:
    """All instances' label lines as one [n, L] uint8 matrix (each row ends in a newline)."""
    ins, im = dataset.instances, dataset.images
    n, k = len(ins), dataset.schema.num_keypoints
    row = dataset.image_index()
    if n and np.any(row < 0):
        raise CodecError(
            "YOLO encode needs every instance's image with a known width and height; "
            f"{int((row < 0).sum())} instances are on images the input does not list"
        )
    w = im.width[row].astype(np.float64)
    h = im.height[row].astype(np.float64)
    if n and (np.any(w <= 0) or np.any(h <= 0)):
        raise CodecError("YOLO encode needs every instance's image with a known width and height")
    cat_ids = sorted(c.id for c in dataset.categories)
    cls = np.searchsorted(np.asarray(cat_ids), ins.category_id)
    cls_w = len(str(max(len(cat_ids) - 1, 0)))
    # each class's text, right-aligned, looked up per line (a class past the list keeps its number)
    cls_text = np.char.rjust(np.arange(max(len(cat_ids), int(cls.max(initial=0)) + 1)).astype(str), cls_w)

    width = cls_w + 1 + 4 * _FIELD + k * (2 * _FIELD + 2)
    buf = np.empty((n, width), np.uint8)
    for start in range(0, n, _ROWS):
        end = min(n, start + _ROWS)
        _format(
            buf[start:end],
            ins.take(slice(start, end)),
            w[start:end],
            h[start:end],
            cls_text.astype(f"S{cls_w}")[cls[start:end]],
            outside=outside,
        )
    return buf, width


_ROWS = 8_192  # instances formatted at a time: temporaries stay in cache (and near 15 MB at any size)


def _format(
    buf: np.ndarray,
    ins: Instances,
    w: np.ndarray,
    h: np.ndarray,
    cls: np.ndarray,
    *,
    outside: str,
) -> None:
    """Fill `buf` ([n, L] uint8) with the label lines of `ins` (images' sides `w`, `h`; class texts `cls`)."""
    n, k = ins.keypoints.shape[:2]
    cls_w = cls.dtype.itemsize
    bbox = bbox_or_from_keypoints(ins)
    x0 = np.clip(bbox[:, 0], 0, w)
    y0 = np.clip(bbox[:, 1], 0, h)
    x1 = np.clip(bbox[:, 0] + bbox[:, 2], 0, w)
    y1 = np.clip(bbox[:, 1] + bbox[:, 3], 0, h)
    box = np.stack([(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h], axis=1)

    v = np.rint(ins.v).astype(np.int64)
    xn = ins.keypoints[..., 0] / w[:, None]
    yn = ins.keypoints[..., 1] / h[:, None]
    off = (xn < 0) | (xn > 1) | (yn < 0) | (yn > 1)
    drop = (v <= 0) | (off & (outside == "zero"))
    v = np.where(drop, 0, np.clip(v, 0, 2))
    xn = np.where(drop, 0.0, xn)
    yn = np.where(drop, 0.0, yn)

    buf[:] = ord(" ")
    buf[:, :cls_w].view(cls.dtype)[:, 0] = cls
    pos = cls_w + 1
    _put_fixed(buf[:, pos : pos + 4 * _FIELD].reshape(n, 4, _FIELD).view(_NUMBER)[..., 0], box)
    points = buf[:, pos + 4 * _FIELD :].reshape(n, k, 2 * _FIELD + 2).view(_POINT)[..., 0]
    _put_fixed(points["x"], xn)
    _put_fixed(points["y"], yn)
    points["v"] = ord("0") + v
    buf[:, -1] = ord("\n")


# No `path` key: Ultralytics resolves a relative `path` against the current directory, and an
# absolute one would tie the release to one machine; without it the YAML's own folder is the root.
def data_yaml(schema: KeypointSchema, categories: tuple[Category, ...], splits: list[str]) -> bytes:
    """Ultralytics refuses a data.yaml without `train` and `val` (check_det_dataset); with no val
    split, `val` names the train images and a comment says so."""
    folders = {s: f"images/{s}" for s in splits}
    folders.setdefault("train", "images/train")
    note = b""
    if "val" not in folders:
        folders["val"] = folders["train"]
        note = b"# no val split in this dataset: val is the train images (metrics on them are not held out)\n"
    doc: dict[str, object] = {
        **{s: folders[s] for s in ("train", "val", "test") if s in folders},
        "names": {i: c.name for i, c in enumerate(sorted(categories, key=lambda c: c.id))},
        "kpt_shape": [schema.num_keypoints, 3],
        "flip_idx": schema.flip_idx.tolist(),
        "kpt_names": {0: list(schema.keypoints)},
    }
    return note + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None).encode()


def encode(
    dataset: Dataset, *, split_of: np.ndarray | None = None, outside: str = "clip", one_to_one: bool = False
) -> dict[str, bytes]:
    """`data.yaml` plus one `labels/<split>/<stem>.txt` per image (empty for background images).

    `split_of` gives each image's split name (row-aligned with dataset.images); default: the split
    its path names (`images/val/…`), else "train". Stems: `yolo_stem` when `one_to_one` (a release,
    which writes the images too), else `tree_stem` (matching the user's own image names).
    """
    im = dataset.images
    splits = np.asarray(
        split_of if split_of is not None else splits_from_names(im.file_name.tolist()), dtype=object
    )
    buf, _ = label_lines(dataset, outside=outside)
    row = dataset.image_index()
    if len(row) and np.any(row[1:] < row[:-1]):  # files list their instances grouped by image as a rule
        order = np.argsort(row, kind="stable")
        buf, row = buf[order], row[order]
    starts = np.searchsorted(row, np.arange(len(im)))
    ends = np.searchsorted(row, np.arange(len(im)), side="right")
    files: dict[str, bytes] = {}
    stems = unique_stems(im.file_name.tolist(), one_to_one=one_to_one)
    for i, (stem, split) in enumerate(zip(stems, splits.tolist())):
        path = f"labels/{split}/{stem}.txt"  # an image listed twice: one file, every row's lines
        files[path] = files.get(path, b"") + buf[starts[i] : ends[i]].tobytes()
    used = [s for s in ("train", "val", "test") if s in set(splits.tolist())] or ["train"]
    files["data.yaml"] = data_yaml(dataset.schema, dataset.categories, used)
    return files
