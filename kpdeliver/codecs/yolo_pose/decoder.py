"""Ultralytics YOLO Pose label files and data.yaml -> canonical model.

A label whose image size is unknown is held back rather than guessed; with `kpt_shape [K, 2]`
there is no flag, so a point at (0, 0) reads as v=0 and any other as v=2."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath

import numpy as np
import yaml

from kpdeliver.codecs import CodecError, Decoded, DecodeLog, ItemProblem
from kpdeliver.findings import findings_for
from kpdeliver.model import Category, Dataset, Images, Instances
from kpdeliver.schema import DEFAULT_SIGMA, KeypointSchema, pairs_by_side

MAX_KEYPOINTS = (
    10_000  # far above any real skeleton (COCO-WholeBody has 133); a K past it is a typo or an attack
)


def read_data_yaml(data: bytes, source: str) -> tuple[dict, int, int]:
    """(the data.yaml mapping, K, 2 or 3), or a one-sentence refusal naming the field."""
    try:
        doc = yaml.safe_load(data) or {}
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as e:
        raise CodecError(f"{source}: data.yaml is not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise CodecError(f"{source}: data.yaml is not a mapping of fields")
    shape = doc.get("kpt_shape")
    if not (
        isinstance(shape, list)
        and len(shape) == 2
        and all(type(x) is int for x in shape)
        and 0 < shape[0] <= MAX_KEYPOINTS
        and shape[1] in (2, 3)
    ):
        raise CodecError(
            f"{source}: data.yaml field 'kpt_shape' is {shape!r}, not [K, 2|3] with 0 < K <= {MAX_KEYPOINTS}"
        )
    names = doc.get("names")
    if names is not None and not isinstance(names, (list, dict)):
        raise CodecError(
            f"{source}: data.yaml field 'names' is {names!r}, not a list or a mapping of class ids"
        )
    flip = doc.get("flip_idx")
    if flip is not None and not (isinstance(flip, list) and sorted(flip) == list(range(shape[0]))):
        raise CodecError(f"{source}: data.yaml field 'flip_idx' is not a permutation of 0..{shape[0] - 1}")
    return doc, shape[0], shape[1]


def as_class(key, source: str) -> int:
    try:
        return int(key)
    except (TypeError, ValueError):
        raise CodecError(f"{source}: data.yaml field 'names': class id {key!r} is not an integer") from None


def schema_from_data_yaml(doc: Mapping, *, name: str = "yolo") -> KeypointSchema:
    k = int(doc["kpt_shape"][0])
    kpt_names = doc.get("kpt_names") or {}
    names = kpt_names.get(0, kpt_names.get("0", [])) if isinstance(kpt_names, Mapping) else []
    names = [str(n) for n in names] if isinstance(names, list) else []
    if len(names) != k:
        names = [f"kp{i}" for i in range(k)]
    flip = doc.get("flip_idx")
    pairs = tuple((i, int(j)) for i, j in enumerate(flip) if int(j) > i) if flip else pairs_by_side(names)
    return KeypointSchema(
        name=name,
        keypoints=tuple(names),
        skeleton=(),
        flip_pairs=pairs,
        sigmas=(DEFAULT_SIGMA,) * k,
        source=f"from YOLO data.yaml (sigmas {DEFAULT_SIGMA} by default)",
    )


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
    doc, k, dim = read_data_yaml(data_yaml_bytes, source)
    schema = schema or schema_from_data_yaml(doc)
    if schema.num_keypoints != k:
        raise CodecError(
            f"{source}: data.yaml kpt_shape K={k} but schema {schema.name!r} has {schema.num_keypoints}"
        )
    names = _class_names(doc, schema, source)
    log = DecodeLog(source)
    _note_yaml_quirks(doc, k, dim, log)

    ncol = 5 + k * dim
    img_ids, fnames, ws, hs, rows, row_img, row_line = _label_rows(
        labels, sizes, image_names or {}, k, dim, log
    )
    arr = np.asarray(rows, dtype=np.float64).reshape(len(rows), ncol)
    row_of = np.asarray(row_img, dtype=np.int64)
    w = np.asarray(ws, np.float64)[row_of]
    h = np.asarray(hs, np.float64)[row_of]
    kp = arr[:, 5:].reshape(len(rows), k, dim)
    out = _pixel_keypoints(kp, w, h, dim)
    if dim == 3:
        _odd_flags(
            kp[..., 2],
            np.asarray(img_ids, np.int64)[row_of],
            [fnames[i] for i in row_of.tolist()],
            row_line,
            schema,
            log,
        )
    cx, cy, bw, bh = (arr[:, j] for j in range(1, 5))
    bbox = np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h], axis=1)
    cls = arr[:, 0].astype(np.int64)
    images = Images.build(id=img_ids, file_name=fnames, width=ws, height=hs, source=[source] * len(img_ids))
    instances = Instances.build(
        id=np.arange(1, len(rows) + 1),
        image_id=np.asarray(img_ids, np.int64)[row_of] if len(rows) else [],
        category_id=cls + 1,
        bbox=bbox,
        keypoints=out,
        num_kpts=k,
    )
    categories = tuple(Category(i + 1, n) for i, n in sorted(names.items()))
    return Decoded.logged(Dataset(schema, images, instances, categories), log)


def _note_yaml_quirks(doc: dict, k: int, dim: int, log: DecodeLog) -> None:
    """Info findings for what data.yaml leaves out: visibility flags (`kpt_shape [K, 2]`), flip_idx."""
    if dim == 2:
        log.quirk(f"kpt_shape [{k}, 2] has no visibility; points at (0, 0) read as v=0, others as v=2")
    if not doc.get("flip_idx"):
        log.quirk("data.yaml has no flip_idx; horizontal-flip augmentation would swap left and right")


def _class_names(doc: dict, schema: KeypointSchema, source: str) -> dict[int, str]:
    """data.yaml's class names by class id (a list or a mapping); the schema's category alone if none."""
    names = doc.get("names") or {0: schema.category}
    return (
        dict(enumerate(names))
        if isinstance(names, list)
        else {as_class(a, source): str(b) for a, b in names.items()}
    )


def _pixel_keypoints(kp: np.ndarray, w: np.ndarray, h: np.ndarray, dim: int) -> np.ndarray:
    """[N, K, 3] keypoints in pixels from normalised [N, K, dim] ones: the flag as written, or (with
    no flag) 0 at (0, 0) and 2 elsewhere; unlabelled points (v=0) at (0, 0)."""
    out = np.zeros((len(kp), kp.shape[1], 3))
    out[..., 0] = kp[..., 0] * w[:, None]
    out[..., 1] = kp[..., 1] * h[:, None]
    if dim == 3:
        out[..., 2] = kp[..., 2]
    else:
        out[..., 2] = np.where((kp[..., 0] == 0) & (kp[..., 1] == 0), 0, 2)
    out[out[..., 2] == 0, :2] = 0.0
    return out


def _label_rows(
    labels: Mapping[str, bytes],
    sizes: Mapping[str, tuple[int, int]],
    names_of: Mapping[str, str],
    k: int,
    dim: int,
    log: DecodeLog,
) -> tuple[list, list, list, list, list, list, list]:
    """The label files' numbers, one row per well-formed line: (image ids, file names, widths,
    heights, rows, each row's image index, each row's line number). A file whose image size is
    unknown and a malformed line are held back with a finding."""
    source = log.source
    img_ids, fnames, ws, hs = [], [], [], []
    rows, row_img, row_line = [], [], []
    for image_id, key in enumerate(sorted(labels), start=1):
        stem = PurePosixPath(key).stem
        text = labels[key].decode("utf-8", errors="replace")
        lines = [(no, ln) for no, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
        size = sizes.get(key) or sizes.get(stem)
        if size is None:
            # no image id: the image is not in the dataset, the file name says which label file
            log.hold(
                ItemProblem(
                    "schema.missing_field",
                    source,
                    f"{source}: {key}: image size unknown (no image found "
                    f"for stem {stem!r}); labels held back",
                    field="image size",
                    file_name=key,
                    raw=text,
                )
            )
            continue
        w, h = size
        img_ids.append(image_id)
        fnames.append(names_of.get(key) or names_of.get(stem, key))
        ws.append(w)
        hs.append(h)
        for ln_no, ln in lines:
            vals = _line_values(ln, ln_no, key, image_id, k, dim, log)
            if vals is None:
                continue
            rows.append(vals)
            row_img.append(len(img_ids) - 1)
            row_line.append(ln_no)
    return img_ids, fnames, ws, hs, rows, row_img, row_line


def _line_values(
    ln: str, ln_no: int, key: str, image_id: int, k: int, dim: int, log: DecodeLog
) -> list[float] | None:
    """A label line's numbers; None when the line is held back with a finding (non-numeric
    values, or not 5 + K x dim of them)."""
    source, ncol = log.source, 5 + k * dim
    parts = ln.split()
    try:
        vals = [float(x) for x in parts]
    except ValueError:
        vals = None
    if vals is None or len(vals) != ncol:
        what = (
            "non-numeric values" if vals is None else f"{len(parts)} values, expected {ncol} (5 + {k}x{dim})"
        )
        log.hold(
            ItemProblem(
                "schema.keypoint_count" if vals else "schema.bad_type",
                source,
                f"{source}: {key} line {ln_no}: {what}",
                field=f"line {ln_no}",
                image_id=image_id,
                file_name=key,
                value=float(len(parts)) if vals else None,
                raw=ln,
            )
        )
        return None
    return vals


def _odd_flags(
    v: np.ndarray,
    image_ids: np.ndarray,
    files: list[str],
    lines: list[int],
    schema: KeypointSchema,
    log: DecodeLog,
) -> None:
    """A warning per label line whose visibility flags are not 0, 1 or 2 (a score written as a
    flag, 0.37): kept as read, so the delivery's flag rule and every writer meet them."""
    odd = ~np.isin(v, (0, 1, 2))
    for r in np.flatnonzero(odd.any(axis=1)).tolist():
        cols = np.flatnonzero(odd[r])
        points = ", ".join(f"{schema.keypoints[j]}={v[r, j]:g}" for j in cols[:5].tolist())
        more = f" and {len(cols) - 5} more" if len(cols) > 5 else ""
        log.note(
            findings_for(
                "visibility.invalid_flag",
                severity="warning",
                file_name=files[r],
                image_id=int(image_ids[r]),
                annotation_id=r + 1,
                keypoint=schema.keypoints[int(cols[0])],
                value=float(v[r, cols[0]]),
                source=log.source,
                n=1,
                message=f"{log.source}: {files[r]}, label line {lines[r]}: visibility flags not 0, 1 or 2 "
                f"({points}{more}); kept as read, not turned into a flag",
            )
        )
