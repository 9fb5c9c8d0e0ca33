"""Ultralytics YOLO Pose <-> canonical model.

Label line: `cls cx cy w h  x1 y1 v1 ... xK yK vK`, all coordinates normalised to [0, 1].
Ultralytics drops a whole image when any coordinate leaves [0, 1], so a v=1 point estimated
outside the frame is clipped to the edge (or written `0 0 0`, per client config); its true
position stays in the COCO file. `data.yaml` always carries `kpt_shape` and `flip_idx`.

Lines are formatted as fixed-width text by numpy in one pass (no Python loop per value):
formatting is the costly part of a naive converter.
"""
from __future__ import annotations

import posixpath
from pathlib import PurePosixPath
from typing import Mapping

import numpy as np
import yaml

from kpdeliver.codecs import CodecError, Decoded, rejected_rows
from kpdeliver.findings import concat_findings, findings_for
from kpdeliver.model import Category, Dataset, Images, Instances
from kpdeliver.schema import KeypointSchema, pairs_by_prefix

DECIMALS = 7  # 1e-7 of the image side: 1e-3 px up to 10,000 px images
_SCALE = 10**DECIMALS


def yolo_stem(file_name: str) -> str:
    """A flat, unique stem for an image's label and image file in the YOLO tree."""
    return posixpath.splitext(file_name.replace("\\", "/"))[0].replace("/", "__")


def _fixed(values: np.ndarray) -> np.ndarray:
    """[N] floats in [0, 1] -> [N, DECIMALS + 2] uint8 ASCII `d.ddddddd`."""
    q = np.rint(np.clip(values, 0.0, 1.0) * _SCALE).astype(np.int32)
    out = np.empty((len(q), DECIMALS + 2), np.uint8)
    out[:, 1] = ord(".")
    for pos in range(DECIMALS + 1, 1, -1):  # one pass per digit position, least significant first
        out[:, pos] = q % 10 + ord("0")
        q //= 10
    out[:, 0] = q + ord("0")
    return out


def label_lines(
    dataset: Dataset, *, outside: str = "clip"
) -> tuple[np.ndarray, int]:
    """All instances' label lines as one [n, L] uint8 matrix (each row ends in a newline)."""
    ins, im = dataset.instances, dataset.images
    n, k = len(ins), dataset.schema.num_keypoints
    row = dataset.image_index()
    w = im.width[row].astype(np.float64)
    h = im.height[row].astype(np.float64)
    if n and (np.any(row < 0) or np.any(w <= 0) or np.any(h <= 0)):
        raise CodecError("YOLO encode needs every instance's image with a known width and height")
    cat_ids = sorted(c.id for c in dataset.categories)
    cls = np.searchsorted(np.asarray(cat_ids), ins.category_id)
    cls_w = len(str(max(len(cat_ids) - 1, 0)))

    bbox = np.where(np.isnan(ins.bbox), ins.bbox_from_keypoints(), ins.bbox)
    bbox = np.nan_to_num(bbox)
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

    field = DECIMALS + 3  # digits + separator
    width = cls_w + 1 + 4 * field + k * (2 * field + 2)
    buf = np.full((n, width), ord(" "), np.uint8)
    cls_txt = np.char.rjust(cls.astype(str), cls_w).astype(f"S{cls_w}").view(np.uint8).reshape(n, cls_w) if n else np.zeros((0, cls_w), np.uint8)
    buf[:, :cls_w] = cls_txt
    pos = cls_w + 1
    for j in range(4):
        buf[:, pos:pos + field - 1] = _fixed(box[:, j])
        pos += field
    kp_block = buf[:, pos:].reshape(n, k, 2 * field + 2)
    kp_block[:, :, : field - 1] = _fixed(xn.reshape(-1)).reshape(n, k, field - 1)
    kp_block[:, :, field: 2 * field - 1] = _fixed(yn.reshape(-1)).reshape(n, k, field - 1)
    kp_block[:, :, 2 * field] = ord("0") + v
    buf[:, -1] = ord("\n")
    return buf, width


# No `path` key: Ultralytics resolves a relative `path` against the current directory, and an
# absolute one would tie the release to one machine; without it the YAML's own folder is the root.
def data_yaml(schema: KeypointSchema, categories: tuple[Category, ...], splits: list[str]) -> bytes:
    doc = {
        **{s: f"images/{s}" for s in splits},
        "names": {i: c.name for i, c in enumerate(sorted(categories, key=lambda c: c.id))},
        "kpt_shape": [schema.num_keypoints, 3],
        "flip_idx": schema.flip_idx.tolist(),
        "kpt_names": {0: list(schema.keypoints)},
    }
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=None).encode()


def encode(
    dataset: Dataset, *, split_of: np.ndarray | None = None, outside: str = "clip"
) -> dict[str, bytes]:
    """`data.yaml` plus one `labels/<split>/<stem>.txt` per image (empty for background images).

    `split_of` gives each image's split name (row-aligned with dataset.images); default "train".
    """
    im = dataset.images
    splits = np.asarray(split_of if split_of is not None else ["train"] * len(im), dtype=object)
    buf, width = label_lines(dataset, outside=outside)
    row = dataset.image_index()
    order = np.argsort(row, kind="stable")
    starts = np.searchsorted(row[order], np.arange(len(im)))
    ends = np.searchsorted(row[order], np.arange(len(im)), side="right")
    sorted_buf = buf[order]
    files: dict[str, bytes] = {}
    for i, (name, split) in enumerate(zip(im.file_name.tolist(), splits.tolist())):
        files[f"labels/{split}/{yolo_stem(name)}.txt"] = sorted_buf[starts[i]:ends[i]].tobytes()
    used = [s for s in ("train", "val", "test") if s in set(splits.tolist())] or ["train"]
    files["data.yaml"] = data_yaml(dataset.schema, dataset.categories, used)
    return files


def schema_from_data_yaml(doc: Mapping, *, name: str = "yolo") -> KeypointSchema:
    k = int(doc["kpt_shape"][0])
    kpt_names = doc.get("kpt_names") or {}
    names = list(kpt_names.get(0, kpt_names.get("0", []))) if isinstance(kpt_names, Mapping) else []
    if len(names) != k:
        names = [f"kp{i}" for i in range(k)]
    flip = doc.get("flip_idx")
    pairs = tuple((i, int(j)) for i, j in enumerate(flip) if int(j) > i) if flip else pairs_by_prefix(names)
    return KeypointSchema(name=name, keypoints=tuple(names), skeleton=(), flip_pairs=pairs,
                          sigmas=(0.05,) * k, source="from YOLO data.yaml (sigmas 0.05 by default)")


def decode(
    labels: Mapping[str, bytes],
    *,
    data_yaml_bytes: bytes,
    sizes: Mapping[str, tuple[int, int]],
    schema: KeypointSchema | None = None,
    source: str = "",
    image_names: Mapping[str, str] | None = None,
) -> Decoded:
    """Decode label files (key: path ending in `<stem>.txt`) given each stem's image size.

    `sizes` maps label stems to (width, height); a label whose image size is unknown is held
    back with a finding rather than guessed. `image_names` maps stems to the images' file
    names (default: the label key). With `kpt_shape [K, 2]` there is no flag: a point at
    (0, 0) reads as v=0, any other as v=2 (a finding says so).
    """
    try:
        doc = yaml.safe_load(data_yaml_bytes) or {}
        kshape = [int(x) for x in doc["kpt_shape"]]
    except (yaml.YAMLError, KeyError, TypeError, ValueError):
        raise CodecError(f"{source}: data.yaml has no valid 'kpt_shape: [K, 2|3]'") from None
    k, dim = kshape
    if dim not in (2, 3):
        raise CodecError(f"{source}: data.yaml kpt_shape [{k}, {dim}]: dim must be 2 or 3")
    schema = schema or schema_from_data_yaml(doc)
    if schema.num_keypoints != k:
        raise CodecError(f"{source}: data.yaml kpt_shape K={k} but schema {schema.name!r} has {schema.num_keypoints}")
    names = doc.get("names") or {0: schema.category}
    names = dict(enumerate(names)) if isinstance(names, list) else {int(a): str(b) for a, b in names.items()}
    findings, rejected = [], []
    if dim == 2:
        findings.append(findings_for("decode.quirk", message=f"{source}: kpt_shape [{k}, 2] has no visibility; "
                                     "points at (0, 0) read as v=0, others as v=2", source=source, n=1))
    if not doc.get("flip_idx"):
        findings.append(findings_for("decode.quirk", message=f"{source}: data.yaml has no flip_idx; "
                                     "horizontal-flip augmentation would swap left and right", source=source, n=1))

    img_ids, fnames, ws, hs = [], [], [], []
    rows, row_img = [], []
    ncol = 5 + k * dim
    for image_id, key in enumerate(sorted(labels), start=1):
        stem = PurePosixPath(key).stem
        text = labels[key].decode("utf-8", errors="replace")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if stem not in sizes:
            msg = f"{source}: {key}: image size unknown (no image found for stem {stem!r}); labels held back"
            findings.append(findings_for("schema.missing_field", message=msg, file_name=key, source=source, n=1))
            rejected.append({"annotation_id": -1, "image_id": image_id, "annotator": "", "source": key,
                             "check": "schema.missing_field", "reason": msg, "raw": text})
            continue
        w, h = sizes[stem]
        img_ids.append(image_id)
        fnames.append((image_names or {}).get(stem, key))
        ws.append(w)
        hs.append(h)
        for ln_no, ln in enumerate(lines, start=1):
            parts = ln.split()
            try:
                vals = [float(x) for x in parts]
            except ValueError:
                vals = None
            if vals is None or len(vals) != ncol:
                what = "non-numeric values" if vals is None else f"{len(parts)} values, expected {ncol} (5 + {k}x{dim})"
                msg = f"{source}: {key} line {ln_no}: {what}"
                check = "schema.keypoint_count" if vals else "schema.bad_type"
                findings.append(findings_for(check, message=msg, image_id=image_id, file_name=key, source=source,
                                             value=float(len(parts)) if vals else None, n=1))
                rejected.append({"annotation_id": -1, "image_id": image_id, "annotator": "", "source": key,
                                 "check": check, "reason": msg, "raw": ln})
                continue
            rows.append(vals)
            row_img.append(len(img_ids) - 1)
    arr = np.asarray(rows, dtype=np.float64).reshape(len(rows), ncol)
    row_img = np.asarray(row_img, dtype=np.int64)
    w = np.asarray(ws, np.float64)[row_img]
    h = np.asarray(hs, np.float64)[row_img]
    kp = arr[:, 5:].reshape(len(rows), k, dim)
    out = np.zeros((len(rows), k, 3))
    out[..., 0] = kp[..., 0] * w[:, None]
    out[..., 1] = kp[..., 1] * h[:, None]
    if dim == 3:
        out[..., 2] = kp[..., 2]
    else:
        out[..., 2] = np.where((kp[..., 0] == 0) & (kp[..., 1] == 0), 0, 2)
    out[out[..., 2] == 0, :2] = 0.0
    cx, cy, bw, bh = (arr[:, j] for j in range(1, 5))
    bbox = np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h], axis=1)
    cls = arr[:, 0].astype(np.int64)
    images = Images.build(id=img_ids, file_name=fnames, width=ws, height=hs, source=[source] * len(img_ids))
    instances = Instances.build(
        id=np.arange(1, len(rows) + 1), image_id=np.asarray(img_ids, np.int64)[row_img] if len(rows) else [],
        category_id=cls + 1, bbox=bbox, keypoints=out, num_kpts=k,
    )
    categories = tuple(Category(i + 1, n) for i, n in sorted(names.items()))
    return Decoded(Dataset(schema, images, instances, categories), concat_findings(findings), rejected_rows(rejected))
