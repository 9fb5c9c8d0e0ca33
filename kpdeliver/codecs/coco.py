"""COCO Keypoints JSON <-> canonical model.

Decoding is faithful: coordinates and visibility flags are kept exactly as written (a float
flag, a `(-1, -1, 0)` unlabeled point) so validation can report them. Per-item problems that
make an instance impossible to model (wrong keypoint count, non-numeric values, missing
keypoints) hold that item back as `rejected` with a finding naming file, item and field;
every other item is still decoded.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson

from kpdeliver.codecs import CodecError, Decoded, rejected_rows
from kpdeliver.findings import concat_findings, findings_for
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
    raw_edges = [e for e in (cat.get("skeleton") or []) if isinstance(e, (list, tuple)) and len(e) == 2]
    flat = [int(x) for e in raw_edges for x in e if isinstance(x, (int, float))]
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


def _valid_numbers(kp: list) -> bool:
    flat = kp if not (kp and isinstance(kp[0], list)) else [x for p in kp for x in p]
    return all(x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)) for x in flat)


def decode(
    data: bytes,
    *,
    schema: KeypointSchema | None = None,
    source: str = "",
    annotator: str = "",
) -> Decoded:
    """Decode a COCO keypoints file. With no schema, the file's own category defines one."""
    doc = load_json(data, source)
    if isinstance(doc, list):
        raise CodecError(
            f"{source}: a JSON list, not a COCO dataset (a detection *results* file has no images "
            "or categories; decode it against its ground truth)"
        )
    if not isinstance(doc, dict) or "annotations" not in doc:
        raise CodecError(f"{source}: field 'annotations' is missing; not a COCO keypoints file")
    anns = doc.get("annotations") or []
    raw_images = doc.get("images") or []
    cats = [c for c in (doc.get("categories") or []) if isinstance(c, dict)]
    if not isinstance(anns, list) or not isinstance(raw_images, list):
        raise CodecError(f"{source}: fields 'images' and 'annotations' must be lists")

    lengths = np.fromiter((_kp_length(a.get("keypoints")) if isinstance(a, dict) else -1 for a in anns), np.int64, len(anns))
    if schema is None:
        named = [c for c in cats if c.get("keypoints")]
        k = len(named[0]["keypoints"]) if named else (int(np.bincount(lengths[lengths > 0]).argmax()) if (lengths > 0).any() else 0)
        if k == 0:
            raise CodecError(f"{source}: no keypoints found (no category 'keypoints' names and no annotation 'keypoints')")
        schema = schema_from_coco_category(named[0] if named else (cats[0] if cats else {}), k)
    k = schema.num_keypoints
    order = _name_order(cats, schema, source)

    findings: list = []
    rejected: list[dict] = []
    img_of = {}
    images = _decode_images(raw_images, source, img_of, findings)

    keep_rows: list[int] = []
    for i, a in enumerate(anns):
        reason = None
        if not isinstance(a, dict):
            reason = ("schema.bad_type", "annotations", f"annotation #{i} is not an object")
        elif lengths[i] < 0:
            what = "missing" if a.get("keypoints") is None else "not a list of [x, y, v] triplets"
            reason = ("schema.missing_field" if a.get("keypoints") is None else "schema.bad_type", "keypoints", f"keypoints {what}")
        elif lengths[i] != k:
            reason = ("schema.keypoint_count", "keypoints", f"{lengths[i]} keypoints, schema {schema.name!r} has {k}")
        elif not _valid_numbers(a["keypoints"]):
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

    good = [anns[i] for i in keep_rows]
    kps = _keypoint_array([a["keypoints"] for a in good], k)
    if order is not None:
        kps = kps[:, order, :]
    instances = Instances.build(
        id=[_int(a.get("id")) for a in good],
        image_id=[_int(a.get("image_id")) for a in good],
        category_id=[_int(a.get("category_id"), 1) for a in good],
        bbox=[_bbox(a.get("bbox")) for a in good],
        area=[_num(a.get("area")) for a in good],
        iscrowd=[_int(a.get("iscrowd"), 0) for a in good],
        annotator=[str(a.get("annotator") or annotator) for a in good],
        track_id=[_int(a.get("track_id")) for a in good],
        frame=[_int(a.get("frame_id", a.get("frame"))) for a in good],
        num_keypoints=[_int(a.get("num_keypoints")) for a in good],
        keypoints=kps,
        num_kpts=k,
    )
    _fill_frames_from_images(instances, raw_images)
    categories = tuple(Category(_int(c.get("id"), 1), str(c.get("name", "")), str(c.get("supercategory", ""))) for c in cats)
    dataset = Dataset(schema, images, instances, categories)
    return Decoded(dataset, concat_findings(findings), rejected_rows(rejected))


def _bbox(b: Any) -> list[float]:
    if isinstance(b, list) and len(b) == 4:
        return [_num(x) for x in b]
    return [np.nan] * 4


def _decode_images(raw: list, source: str, img_of: dict, findings: list) -> Images:
    ids, names, ws, hs = [], [], [], []
    for i, im in enumerate(raw):
        if not isinstance(im, dict) or _int(im.get("id")) == NONE:
            findings.append(findings_for("schema.missing_field", message=f"{source}: image #{i}, field 'id': missing or not an integer", source=source, n=1))
            continue
        iid = _int(im.get("id"))
        name = str(im.get("file_name", ""))
        img_of[iid] = name
        ids.append(iid)
        names.append(name)
        ws.append(_int(im.get("width"), 0))
        hs.append(_int(im.get("height"), 0))
    return Images.build(id=ids, file_name=names, width=ws, height=hs, source=[source] * len(ids))


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

    Only names decide: a file with no names is taken in schema order (position is all there is)."""
    named = [c for c in cats if c.get("keypoints")]
    if not named:
        return None
    names = [str(n) for n in named[0]["keypoints"]]
    if tuple(names) == schema.keypoints:
        return None
    from kpdeliver.mapping import map_keypoint_names

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
