"""COCO Keypoints JSON <-> canonical model.

Decoding is faithful: coordinates and visibility flags are kept exactly as written (a float
flag, a `(-1, -1, 0)` unlabeled point) so validation can report them. Per-item problems that
make an instance impossible to model (wrong keypoint count, non-numeric values, missing
keypoints) hold that item back as `rejected` with a finding naming file, item and field;
every other item is still decoded.
"""
from __future__ import annotations

import gc
import json
from contextlib import contextmanager
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from kpdeliver.codecs import REJECTED_SCHEMA, CodecError, Decoded, rejected_rows
from kpdeliver.findings import FINDINGS_SCHEMA, concat_findings, findings_for
from kpdeliver.model import NONE, Category, Dataset, Images, Instances
from kpdeliver.schema import KeypointSchema, SchemaError, pairs_by_prefix


def load_json(data: bytes, source: str) -> Any:
    """orjson first; the stdlib parser as fallback because it accepts NaN/Infinity literals,
    which real exports contain and which must become findings, not crashes."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CodecError(f"{source}: not valid JSON ({e})") from None


def _num(v: Any, default: float = np.nan) -> float:
    if v is None or isinstance(v, bool):
        return default
    if isinstance(v, (int, float)):
        return float(v)
    return default


def _int(v: Any, default: int = NONE) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    return default


def schema_from_coco_category(cat: dict, num_kpts: int, *, name: str = "custom") -> KeypointSchema:
    """A schema from a COCO category's own keypoint names and skeleton (for files that are not
    in a built-in schema). Unnamed points get `kp<i>`; the skeleton base (0 or 1) is inferred."""
    names = [str(n) for n in (cat.get("keypoints") or [])]
    if len(names) != num_kpts:
        names = [f"kp{i}" for i in range(num_kpts)]
    raw_edges = _edges(cat)
    flat = [x for e in raw_edges for x in e]
    base = 0 if flat and min(flat) == 0 else 1
    edges = tuple(
        (int(a) - base, int(b) - base)
        for a, b in raw_edges
        if 0 <= int(a) - base < num_kpts and 0 <= int(b) - base < num_kpts and a != b
    )
    return KeypointSchema(
        name=str(cat.get("name") or name),
        keypoints=tuple(names),
        skeleton=edges,
        flip_pairs=pairs_by_prefix(names),
        sigmas=(0.05,) * num_kpts,
        category=str(cat.get("name") or "object"),
        source="from the file's COCO category (sigmas 0.05 by default)",
    )


def _edges(cat: dict) -> list[tuple[int, int]]:
    """A category's skeleton edges that are pairs of integers (anything else is not an edge)."""
    raw = cat.get("skeleton") if isinstance(cat.get("skeleton"), list) else []
    return [(int(e[0]), int(e[1])) for e in raw if isinstance(e, (list, tuple)) and len(e) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and float(x).is_integer() for x in e)]


def _kp_length(kp: Any) -> int:
    """Number of keypoints in a flat `[x, y, v, ...]` or nested `[[x, y, v], ...]` list (-1: bad)."""
    if not isinstance(kp, list):
        return -1
    if kp and isinstance(kp[0], list):
        return len(kp) if all(isinstance(p, list) and len(p) == 3 for p in kp) else -1
    return len(kp) // 3 if len(kp) % 3 == 0 else -1


def _keypoint_array(rows: list[list], k: int) -> np.ndarray:
    """[n, K, 3] float64 from flat or nested keypoint lists, one C-level conversion per shape."""
    if not rows:
        return np.zeros((0, k, 3))
    try:
        return np.array(rows, dtype=np.float64).reshape(len(rows), k, 3)
    except (ValueError, TypeError):
        # mixed flat/nested or None inside: convert row by row (rare path)
        out = np.empty((len(rows), k, 3))
        for i, r in enumerate(rows):
            out[i] = np.array([np.nan if x is None else x for x in np.ravel(np.array(r, dtype=object))], dtype=np.float64).reshape(k, 3)
        return out


def _uniform_block(anns: list) -> np.ndarray | None:
    """[n, 3K] numbers when every annotation is an object with flat (or nested) numeric keypoints
    of one length: the common case, checked by one numpy conversion instead of per item."""
    try:
        rows = [a["keypoints"] for a in anns]
    except (TypeError, KeyError):
        return None
    arr = _try_array(rows)
    if arr.dtype.kind not in "fiu" or not arr.size:
        return None
    if arr.ndim == 3 and arr.shape[2] == 3:
        return arr.reshape(len(rows), -1)
    return arr if arr.ndim == 2 and arr.shape[1] % 3 == 0 else None


def _no_rows(schema: pa.Schema) -> pa.Table:
    """An empty table from typed null arrays. pyarrow's Schema.empty_table() and pa.array()
    import pandas (a quarter second), which `kpdeliver convert` on a clean file never needs."""
    return pa.Table.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema)


def _numeric_block(rows: list, k: int) -> np.ndarray | None:
    """[n, K, 3] from well-formed rows in one numpy conversion, or None when any value is not a
    number (None, a string...), so the caller checks row by row. numpy infers float64 only
    when every value is a number (JSON true/false mixed with numbers count as 1/0)."""
    arr = _try_array(rows)
    if arr.dtype.kind not in "fiu" or arr.size != len(rows) * k * 3:
        return None
    return arr.astype(np.float64, copy=False).reshape(len(rows), k, 3)


def _try_array(values: list) -> np.ndarray:
    """numpy's own conversion, or an empty object array when the values are ragged or mixed."""
    try:
        return np.array(values)
    except (ValueError, TypeError, OverflowError):
        return np.zeros(0, dtype=object)


def _int_col(values: list, default: int = NONE) -> np.ndarray:
    """int64 column; numpy converts an all-integer list in C, anything else goes value by value."""
    if values.count(None) == len(values):
        return np.full(len(values), default, np.int64)
    arr = _try_array(values) if values else np.zeros(0, np.int64)
    if arr.ndim == 1 and arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    return np.fromiter((_int(v, default) for v in values), np.int64, len(values))


def _float_col(values: list, width: int = 0) -> np.ndarray:
    """float64 column ([n] or [n, width]); NaN where a value is absent or not a number."""
    shape = (len(values), width) if width else (len(values),)
    if values.count(None) == len(values):
        return np.full(shape, np.nan)
    arr = _try_array(values)
    if arr.shape == shape and arr.dtype.kind in "iuf":
        return arr.astype(np.float64)
    if width:
        return np.array([_bbox(v) for v in values], dtype=np.float64).reshape(shape)
    return np.fromiter((_num(v) for v in values), np.float64, len(values))


def _valid_numbers(kp: list) -> bool:
    flat = kp if not (kp and isinstance(kp[0], list)) else [x for p in kp for x in p]
    return all(x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)) for x in flat)


@contextmanager
def _gc_paused():
    """Parsing a large file makes millions of containers and no reference cycles; the cyclic
    collector would walk them again and again (half the decode time on 100k instances)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def decode(
    data: bytes,
    *,
    schema: KeypointSchema | None = None,
    source: str = "",
    annotator: str = "",
) -> Decoded:
    """Decode a COCO keypoints file. With no schema, the file's own category defines one."""
    with _gc_paused():
        return _decode(data, schema=schema, source=source, annotator=annotator)


def _decode(data: bytes, *, schema: KeypointSchema | None, source: str, annotator: str) -> Decoded:
    doc = load_json(data, source)
    if isinstance(doc, list):
        raise CodecError(f"{source}: a JSON list, not a COCO dataset ({_list_kind(doc)})")
    if not isinstance(doc, dict) or "annotations" not in doc:
        raise CodecError(f"{source}: field 'annotations' is missing; not a COCO keypoints file")
    anns = doc.get("annotations") or []
    raw_images = doc.get("images") or []
    cats = [c for c in (doc.get("categories") or []) if isinstance(c, dict)]
    if not isinstance(anns, list) or not isinstance(raw_images, list):
        raise CodecError(f"{source}: fields 'images' and 'annotations' must be lists")

    uniform = _uniform_block(anns)
    if uniform is not None:
        lengths = np.full(len(anns), uniform.shape[1] // 3, np.int64)
    else:
        lengths = np.fromiter((_kp_length(a.get("keypoints")) if isinstance(a, dict) else -1 for a in anns),
                              np.int64, len(anns))
    findings: list = _quirks(doc, cats, anns, lengths, source)
    if schema is None:
        schema = _schema_from_file(cats, lengths, source)
    k = schema.num_keypoints
    order = _name_order(cats, schema, source)

    rejected: list[dict] = []
    img_of = {}
    images = _decode_images(raw_images, source, img_of, findings)

    shaped = np.flatnonzero(lengths == k)
    if uniform is not None and len(shaped) == len(anns):
        block = uniform.astype(np.float64, copy=False).reshape(len(anns), k, 3)
    else:
        block = _numeric_block([anns[i]["keypoints"] for i in shaped.tolist()], k) if len(shaped) else None
    # with an all-numeric block only the wrongly shaped items need a look, one by one
    keep_rows: list[int] = []
    suspects = np.flatnonzero(lengths != k).tolist() if block is not None else range(len(anns))
    for i in suspects:
        a = anns[i]
        reason = None
        if not isinstance(a, dict):
            reason = ("schema.bad_type", "annotations", f"annotation #{i} is not an object")
        elif lengths[i] < 0:
            what = "missing" if a.get("keypoints") is None else "not a list of [x, y, v] triplets"
            reason = ("schema.missing_field" if a.get("keypoints") is None else "schema.bad_type", "keypoints", f"keypoints {what}")
        elif lengths[i] != k:
            reason = ("schema.keypoint_count", "keypoints", f"{lengths[i]} keypoints, schema {schema.name!r} has {k}")
        elif block is None and not _valid_numbers(a["keypoints"]):
            reason = ("schema.bad_type", "keypoints", "keypoints hold non-numeric values")
        if reason is None:
            keep_rows.append(i)
            continue
        check, fld, why = reason
        ann_id = _int(a.get("id")) if isinstance(a, dict) else NONE
        img_id = _int(a.get("image_id")) if isinstance(a, dict) else NONE
        msg = f"{source}: annotation id={ann_id} (#{i}), field '{fld}': {why}"
        findings.append(
            findings_for(check, message=msg, annotation_id=ann_id, image_id=img_id,
                         file_name=img_of.get(img_id), annotator=annotator or None, source=source,
                         value=float(lengths[i]) if check == "schema.keypoint_count" else None, n=1)
        )
        rejected.append({"annotation_id": ann_id, "image_id": img_id, "annotator": annotator, "source": source,
                         "check": check, "reason": msg, "raw": orjson.dumps(a, option=orjson.OPT_SERIALIZE_NUMPY).decode() if isinstance(a, dict) else json.dumps(a)})

    if block is not None:
        keep_rows = shaped.tolist()
    good = [anns[i] for i in keep_rows]
    if block is not None:
        kps = block
    else:
        kps = _keypoint_array([a["keypoints"] for a in good], k)
    if order is not None:
        kps = kps[:, order, :]

    def col(key: str) -> list:
        return [a.get(key) for a in good]

    instances = Instances.build(
        id=_int_col(col("id")),
        image_id=_int_col(col("image_id")),
        category_id=_int_col(col("category_id"), 1),
        bbox=_float_col(col("bbox"), 4),
        area=_float_col(col("area")),
        iscrowd=_int_col(col("iscrowd"), 0),
        annotator=[str(a.get("annotator") or annotator) for a in good],
        track_id=_int_col(col("track_id")),
        frame=_int_col([a.get("frame_id", a.get("frame")) for a in good]),
        num_keypoints=_int_col(col("num_keypoints")),
        keypoints=kps,
        num_kpts=k,
    )
    _fill_frames_from_images(instances, raw_images)
    categories = tuple(Category(_int(c.get("id"), 1), str(c.get("name", "")), str(c.get("supercategory", ""))) for c in cats)
    dataset = Dataset(schema, images, instances, categories)
    return Decoded(dataset, concat_findings(findings) if findings else _no_rows(FINDINGS_SCHEMA),
                   rejected_rows(rejected) if rejected else _no_rows(REJECTED_SCHEMA))


def _list_kind(doc: list) -> str:
    """What a top-level JSON list most likely is, so the refusal names it."""
    first = doc[0] if doc and isinstance(doc[0], dict) else {}
    if "joints" in first and "joints_vis" in first:
        return "an MPII-style list of {joints, joints_vis, center, scale}: convert it to COCO first"
    if "image_id" in first and "keypoints" in first:
        return ("a COCO keypoint *results* file: no images, categories or flags of its own; "
                "decode it against its ground truth")
    if "data" in first or "result" in first or "annotations" in first:
        return "it looks like a Label Studio export: read it with the Label Studio codec"
    return "no 'images', 'annotations' or 'categories' fields"


def _schema_from_file(cats: list[dict], lengths: np.ndarray, source: str) -> KeypointSchema:
    """The file's own schema: the category naming as many keypoints as the annotations carry."""
    k = int(np.bincount(lengths[lengths > 0]).argmax()) if (lengths > 0).any() else 0
    named = [c for c in cats if c.get("keypoints")]
    if k == 0:
        if not named:
            raise CodecError(f"{source}: no keypoints found (no category 'keypoints' names and no annotation 'keypoints')")
        k = len(named[0]["keypoints"])
    fitting = [c for c in named if len(c["keypoints"]) == k]
    return schema_from_coco_category(fitting[0] if fitting else (cats[0] if cats else {}), k)


def _quirks(doc: dict, cats: list[dict], anns: list, lengths: np.ndarray, source: str) -> list:
    """Info findings for file-level oddities that decoding works around (nothing is dropped silently)."""
    msgs = []
    k = int(np.bincount(lengths[lengths > 0]).argmax()) if (lengths > 0).any() else 0
    for c in cats:
        names = c.get("keypoints") or []
        if names and k and len(names) != k:
            msgs.append(f"category {c.get('name')!r} names {len(names)} keypoints but annotations carry {k}; "
                        "names ignored")
        elif not names and k:
            msgs.append(f"category {c.get('name')!r} has no keypoint names; points taken in file order")
        edges = _edges(c)
        flat = [x for e in edges for x in e]
        if flat and k:
            base = 0 if min(flat) == 0 else 1
            bad = sum(1 for a, b in edges if not (0 <= a - base < k and 0 <= b - base < k))
            if bad:
                msgs.append(f"category {c.get('name')!r}: {bad} skeleton edge(s) index past {k} keypoints; dropped")
    first = next((a for a in anns if isinstance(a, dict)), {})
    parts = sorted(key for key in first if key.endswith("_kpts") or key.startswith("keypoints_"))
    if parts:
        msgs.append(f"annotations carry extra keypoint arrays {parts}; only 'keypoints' is decoded")
    if first and isinstance(first.get("keypoints"), list) and first["keypoints"] and isinstance(first["keypoints"][0], list):
        msgs.append("keypoints stored nested as [[x, y, v], ...]")
    return [findings_for("decode.quirk", message=f"{source}: {m}", source=source, n=1) for m in msgs]


def _bbox(b: Any) -> list[float]:
    if isinstance(b, list) and len(b) == 4:
        return [_num(x) for x in b]
    return [np.nan] * 4


def _decode_images(raw: list, source: str, img_of: dict, findings: list) -> Images:
    objs = [im if isinstance(im, dict) else {} for im in raw]
    ids = _int_col([im.get("id") for im in objs])
    for i in np.flatnonzero(ids == NONE).tolist():
        findings.append(findings_for("schema.missing_field", message=f"{source}: image #{i}, field 'id': missing or not an integer", source=source, n=1))
    keep = np.flatnonzero(ids != NONE)
    objs = [objs[i] for i in keep.tolist()] if len(keep) < len(objs) else objs
    names = [str(im.get("file_name", "")) for im in objs]
    img_of.update(zip(ids[keep].tolist(), names))
    return Images.build(id=ids[keep], file_name=names, width=_int_col([im.get("width") for im in objs], 0),
                        height=_int_col([im.get("height") for im in objs], 0), source=[source] * len(objs))


def _fill_frames_from_images(instances: Instances, raw_images: list) -> None:
    """PoseTrack keeps `frame_id` on the image; copy it onto instances that lack one."""
    frames = {_int(im.get("id")): _int(im.get("frame_id")) for im in raw_images if isinstance(im, dict) and "frame_id" in im}
    if not frames or not len(instances):
        return
    missing = instances.frame == NONE
    if missing.any():
        instances.frame[missing] = [frames.get(i, NONE) for i in instances.image_id[missing].tolist()]


def _name_order(cats: list[dict], schema: KeypointSchema, source: str) -> np.ndarray | None:
    """Permutation from the file's keypoint order to the schema's, by name (None: same order).

    Only names decide: a file with no names (or names that do not fit its keypoint arrays, a
    quirk reported by `_quirks`) is taken in schema order, since position is all there is."""
    named = [c for c in cats if len(c.get("keypoints") or ()) == schema.num_keypoints]
    if not named:
        return None
    names = [str(n) for n in named[0]["keypoints"]]
    if tuple(names) == schema.keypoints:
        return None
    from kpdeliver.names import map_keypoint_names

    try:
        perm = map_keypoint_names(names, schema)
    except SchemaError as e:
        raise CodecError(f"{source}: category '{named[0].get('name')}', field 'keypoints': {e}") from None
    return perm


def encode(dataset: Dataset, *, indent: bool = False) -> bytes:
    """COCO keypoints JSON. Ids, flags and coordinates are written as held; `num_keypoints` and
    `area` are computed when the model has none."""
    schema = dataset.schema
    ins = dataset.instances
    n, k = len(ins), schema.num_keypoints
    vis = ins.v
    v_int = np.all(vis == np.round(vis)) if n else True
    flat = ins.keypoints.reshape(n, k * 3).tolist()
    vis_list = vis.astype(np.int64).tolist() if v_int else vis.tolist()
    num_kp = (vis > 0).sum(axis=1).tolist()
    bbox = np.where(np.isnan(ins.bbox), ins.bbox_from_keypoints(), ins.bbox)
    bbox = np.nan_to_num(bbox, nan=0.0)
    area = np.where(np.isnan(ins.area), bbox[:, 2] * bbox[:, 3], ins.area).tolist()
    bbox_l = bbox.tolist()
    ids, img_ids, cat_ids = ins.id.tolist(), ins.image_id.tolist(), ins.category_id.tolist()
    crowd, tracks, frames, annot = ins.iscrowd.tolist(), ins.track_id.tolist(), ins.frame.tolist(), ins.annotator.tolist()
    annotations = []
    for i in range(n):
        row = flat[i]
        row[2::3] = vis_list[i]
        a = {
            "id": ids[i], "image_id": img_ids[i], "category_id": cat_ids[i], "iscrowd": crowd[i],
            "keypoints": row, "num_keypoints": num_kp[i], "bbox": bbox_l[i], "area": area[i],
        }
        if tracks[i] != NONE:
            a["track_id"] = tracks[i]
        if frames[i] != NONE:
            a["frame_id"] = frames[i]
        if annot[i]:
            a["annotator"] = annot[i]
        annotations.append(a)
    im = dataset.images
    images = [
        {"id": i, "file_name": f, "width": w, "height": h}
        for i, f, w, h in zip(im.id.tolist(), im.file_name.tolist(), im.width.tolist(), im.height.tolist())
    ]
    skeleton_1based = [[a + 1, b + 1] for a, b in schema.skeleton]
    categories = [
        {"id": c.id, "name": c.name, "supercategory": c.supercategory or c.name,
         "keypoints": list(schema.keypoints), "skeleton": skeleton_1based}
        for c in dataset.categories
    ]
    doc = {"info": {"description": f"kpdeliver export ({schema.name})"}, "images": images,
           "annotations": annotations, "categories": categories}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 if indent else 0)
