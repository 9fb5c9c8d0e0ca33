"""Label Studio JSON (export and import/pre-annotation) <-> canonical model.

Label Studio stores a keypoint as a `keypointlabels` region with x, y in percent of the
image, converted with the region's `original_width` / `original_height`. When a region has no
image size, it is held back with a finding: a size is never guessed.

Grouping into instances: a region's `parentID`, else a `relation` between it and a
`rectanglelabels` box, else (no grouping at all) every loose point of one annotation forms one
instance, provided no keypoint label repeats (otherwise the grouping is ambiguous and the
points are held back).

Visibility (Label Studio has no v=1): a point that is present is v=2; a present point is v=1
when a per-region `choices` result on the same region id says `occluded` (the `visibility`
control that `label_config` declares); a keypoint that is absent is v=0. `encode` writes v=1
points with that choice, so COCO -> Label Studio -> COCO keeps every flag.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np
import orjson
from defusedxml import ElementTree as SafeET

from kpdeliver.codecs import CodecError, Decoded, rejected_rows
from kpdeliver.codecs.coco import load_json
from kpdeliver.findings import concat_findings, findings_for
from kpdeliver.model import NONE, Category, Dataset, Images, Instances
from kpdeliver.schema import KeypointSchema, SchemaError, pairs_by_prefix

OCCLUDED_CHOICES = frozenset({"occluded", "not visible", "invisible", "hidden"})
VISIBILITY_CONTROL = "visibility"


def config_keypoint_names(label_config: bytes | str, *, source: str = "") -> tuple[tuple[str, ...], str]:
    """Keypoint names from a labeling config's `<KeyPointLabels>`, in `model_index` order
    (document order where no model_index is given), and the first RectangleLabels label."""
    try:
        root = SafeET.fromstring(label_config)
    except Exception as e:
        raise CodecError(f"{source}: labeling config is not valid XML ({e})") from None
    labels = [
        (lab.get("value", ""), lab.get("model_index"))
        for kp in root.iter("KeyPointLabels") for lab in kp.iter("Label")
    ]
    if not labels:
        raise CodecError(f"{source}: labeling config has no <KeyPointLabels> labels")
    with_index = [(int(mi), i, v) for i, (v, mi) in enumerate(labels) if mi is not None and mi.strip().isdigit()]
    if len(with_index) == len(labels):
        names = tuple(v for _, _, v in sorted(with_index))
    else:
        names = tuple(v for v, _ in labels)
    rect = [lab.get("value", "") for r in root.iter("RectangleLabels") for lab in r.iter("Label")]
    return names, (rect[0] if rect else "object")


def schema_from_config(label_config: bytes | str, *, source: str = "") -> KeypointSchema:
    names, category = config_keypoint_names(label_config, source=source)
    return KeypointSchema(name=category, keypoints=names, skeleton=(), flip_pairs=pairs_by_prefix(names),
                          sigmas=(0.05,) * len(names), category=category,
                          source="Label Studio labeling config (sigmas 0.05 by default)")


def _tasks(doc: Any, source: str) -> list[dict]:
    """Export list of tasks, one task, or an ML backend's bare list of predictions."""
    items = doc if isinstance(doc, list) else [doc]
    if not all(isinstance(t, dict) for t in items):
        raise CodecError(f"{source}: not a Label Studio export (expected a list of task objects)")
    if items and all("result" in t and "data" not in t for t in items):
        return [{"id": None, "data": {}, "predictions": items}]
    if items and not any(k in items[0] for k in ("annotations", "predictions", "completions", "data")):
        raise CodecError(f"{source}: not a Label Studio export (tasks have no 'data'/'annotations')")
    return items


def _image_ref(task: dict) -> str:
    data = _dict(task.get("data"))
    for key in ("image", "img", "url"):
        if isinstance(data.get(key), str):
            return data[key]
    vals = [v for v in data.values() if isinstance(v, str)]
    return vals[0] if vals else str(task.get("file_upload") or "")


def decode(
    data: bytes,
    *,
    schema: KeypointSchema | None = None,
    source: str = "",
    annotator: str = "",
    label_config: bytes | str | None = None,
    sizes: Mapping[str, tuple[int, int]] | None = None,
) -> Decoded:
    """Decode a Label Studio JSON export (or import/predictions file).

    Keypoint order comes from `schema`, else from `label_config` (model_index order).
    `sizes` (image reference -> (width, height)) is used only for regions without
    `original_width/height`, e.g. when read next to the images."""
    doc = load_json(data, source)
    tasks = _tasks(doc, source)
    st = _State(0, source, annotator)
    if schema is None:
        schema = schema_from_config(label_config, source=source) if label_config is not None \
            else _builtin_by_names(tasks, st, source)
    index = _label_index(schema, label_config, source)
    st.k = k = schema.num_keypoints
    img_ids, names, ws, hs = [], [], [], []
    for t_no, task in enumerate(tasks):
        tid = task.get("id")
        image_id = tid if isinstance(tid, int) and not isinstance(tid, bool) else t_no + 1
        ref = _image_ref(task)
        size = _task_size(task, sizes, ref)
        img_ids.append(image_id)
        names.append(ref)
        ws.append(size[0])
        hs.append(size[1])
        works = _list(task.get("annotations")) or _list(task.get("completions"))
        kind = "annotation"
        if not works:
            works, kind = _list(task.get("predictions")), "prediction"
        elif _list(task.get("predictions")):
            st.quirk(f"task {image_id}: {len(task['predictions'])} predictions ignored (annotations present)")
        for w_no, work in enumerate(works):
            if not isinstance(work, dict) or work.get("was_cancelled"):
                continue
            who = annotator or _who(work)
            where = f"task {image_id} {kind} {work.get('id', w_no)}"
            _decode_results(_list(work.get("result")), st, index=index, image_id=image_id, who=who,
                            where=where, size=size)
    n = len(st.kps)
    instances = Instances.build(
        id=_ids(st.ids), image_id=st.image_id, keypoints=np.array(st.kps).reshape(n, k, 3),
        bbox=np.array(st.bbox).reshape(n, 4), annotator=st.who, num_kpts=k,
        extra={"score": np.asarray(st.score, np.float64)},
    )
    images = Images.build(id=img_ids, file_name=names, width=ws, height=hs, source=[source] * len(img_ids))
    ds = Dataset(schema, images, instances, (Category(1, schema.category),))
    return Decoded(ds, concat_findings(st.findings), rejected_rows(st.rejected))


def _builtin_by_names(tasks: list[dict], st: "_State", source: str) -> KeypointSchema:
    """With no labeling config: the one built-in schema that names every keypoint label used.
    Chosen by name only, and said in a finding; refused when none or several fit."""
    from kpdeliver.names import normalise_name
    from kpdeliver.schema import BUILTIN_SCHEMAS

    used = {normalise_name(lab) for t in tasks for w in _list(t.get("annotations")) + _list(t.get("predictions"))
            if isinstance(w, dict) for r in _list(w.get("result")) if isinstance(r, dict)
            for lab in _list(_dict(r.get("value")).get("keypointlabels")) if isinstance(lab, str)}
    fits = [s for s in BUILTIN_SCHEMAS.values() if used and used <= {normalise_name(n) for n in s.keypoints}]
    if len(fits) != 1:
        raise CodecError(f"{source}: no labeling config and no schema given, and the keypoint labels "
                         f"{sorted(used)[:6]} fit {len(fits)} built-in schemas; pass the labeling config or a schema")
    st.quirk(f"no labeling config: schema {fits[0].name!r} chosen because it names every keypoint label used")
    return fits[0]


def _ids(ids: list[int | None]) -> np.ndarray:
    """Ids recovered from `kp-<id>` box ids when all are present and unique; else 1..n."""
    if ids and all(i is not None for i in ids) and len(set(ids)) == len(ids):
        return np.asarray(ids, np.int64)
    return np.arange(1, len(ids) + 1, dtype=np.int64)


def _who(work: dict) -> str:
    by = work.get("completed_by")
    if isinstance(by, dict):
        return str(by.get("email") or by.get("id") or "")
    return str(by) if by is not None else str(work.get("model_version") or "")


def _task_size(task: dict, sizes, ref: str) -> tuple[int, int]:
    for work in _list(task.get("annotations")) + _list(task.get("predictions")):
        for r in _list(work.get("result")) if isinstance(work, dict) else []:
            w, h = (_size(r.get("original_width")), _size(r.get("original_height"))) if isinstance(r, dict) else (0, 0)
            if w and h:
                return int(w), int(h)
    if sizes is not None and ref in sizes:
        return sizes[ref]
    return 0, 0


def _label_index(schema: KeypointSchema, label_config, source: str) -> dict[str, int]:
    """Label value -> schema index. With a config, its names are mapped onto the schema by name."""
    from kpdeliver.names import map_keypoint_names, normalise_name

    if label_config is not None:
        names, _ = config_keypoint_names(label_config, source=source)
        if names != schema.keypoints:
            try:
                perm = map_keypoint_names(list(names), schema)
            except SchemaError as e:
                raise CodecError(f"{source}: labeling config <KeyPointLabels>: {e}") from None
            return {names[j]: i for i, j in enumerate(perm.tolist())}
    index = {n: i for i, n in enumerate(schema.keypoints)}
    index.update({normalise_name(n): i for i, n in enumerate(schema.keypoints)})
    return index


def _rid(region: dict, field: str) -> str | None:
    """A region id field as a string (ids are strings or numbers; anything else is no id)."""
    v = region.get(field)
    return str(v) if isinstance(v, (str, int)) and not isinstance(v, bool) else None


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


def _dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _size(v: Any) -> float:
    """A region's original_width/height when it is a positive number, else 0 (unknown)."""
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else 0.0


def _pct(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan


class _State:
    def __init__(self, k: int, source: str, annotator: str) -> None:
        self.k, self.source, self.annotator = k, source, annotator
        self.kps: list[np.ndarray] = []
        self.bbox: list[list[float]] = []
        self.image_id: list[int] = []
        self.who: list[str] = []
        self.ids: list[int | None] = []
        self.score: list[float] = []
        self.findings: list = []
        self.rejected: list[dict] = []

    def quirk(self, msg: str) -> None:
        self.findings.append(findings_for("decode.quirk", message=f"{self.source}: {msg}", source=self.source, n=1))

    def hold(self, check: str, msg: str, *, image_id: int, who: str, raw: Any) -> None:
        full = f"{self.source}: {msg}"
        self.findings.append(findings_for(check, message=full, image_id=image_id, annotator=who or None,
                                          source=self.source, n=1))
        self.rejected.append({"annotation_id": NONE, "image_id": image_id, "annotator": who, "source": self.source,
                              "check": check, "reason": full, "raw": orjson.dumps(raw).decode()})


def _decode_results(results: list, st: _State, *, index: dict, image_id: int, who: str, where: str,
                    size: tuple[int, int]) -> None:
    from kpdeliver.names import normalise_name

    regions = [r for r in results if isinstance(r, dict)]
    boxes = {_rid(r, "id"): r for r in regions if r.get("type") == "rectanglelabels"}
    boxes.pop(None, None)
    points = [r for r in regions if r.get("type") == "keypointlabels"]
    occluded = {_rid(r, "id") for r in regions if r.get("type") == "choices"
                and OCCLUDED_CHOICES & {str(c).lower() for c in _list(_dict(r.get("value")).get("choices"))}}
    related = {}
    relations = [(_rid(r, "from_id"), _rid(r, "to_id")) for r in regions if r.get("type") == "relation"]
    loops = sum(1 for a, b in relations if a == b)
    if loops:
        st.quirk(f"{where}: {loops} relation(s) from a region to itself ignored")
    for a, b in relations:
        if a != b and a in boxes and b not in boxes:
            related[b] = a
        elif a != b and b in boxes and a not in boxes:
            related[a] = b
    groups: dict[Any, list[dict]] = {}
    for p in points:
        parent = _rid(p, "parentID") if _rid(p, "parentID") in boxes else related.get(_rid(p, "id"))
        groups.setdefault(parent if parent is not None else ("loose", None), []).append(p)
    if ("loose", None) in groups and len(groups) > 1:
        st.quirk(f"{where}: {len(groups[('loose', None)])} keypoints belong to no box (no parentID or relation)")
    elif ("loose", None) in groups:
        st.quirk(f"{where}: keypoints not grouped by parentID or relation; read as one instance")
    if ("loose", None) not in groups:
        # points are grouped by box, so a box with none of them is an instance with nothing labeled
        groups.update({b: [] for b in boxes if b not in groups})
    for key, pts in groups.items():
        w, h = size
        if any(not (_size(p.get("original_width")) and _size(p.get("original_height"))) for p in pts):
            if not (w > 0 and h > 0):
                st.hold("schema.missing_field", f"{where}, region group {key if key != ('loose', None) else 'loose'}: "
                        "field 'original_width'/'original_height' missing and the image size is unknown; "
                        "percent coordinates cannot be converted", image_id=image_id, who=who, raw=pts)
                continue
        kp = np.zeros((st.k, 3))
        seen: dict[int, str] = {}
        problem = None
        for p in pts:
            val = _dict(p.get("value"))
            label = (_list(val.get("keypointlabels")) or [None])[0]
            i = index.get(label, index.get(normalise_name(label))) if isinstance(label, str) else None
            if i is None:
                problem = ("schema.keypoint_count", f"region {p.get('id')}: label {label!r} is not a schema keypoint")
                break
            if i in seen:
                problem = ("schema.duplicate_id", f"keypoint {label!r} appears twice in one instance "
                           f"(regions {seen[i]} and {p.get('id')}); grouping is ambiguous")
                break
            x, y = val.get("x"), val.get("y")
            if not (isinstance(x, (int, float)) and isinstance(y, (int, float))):
                problem = ("schema.bad_type", f"region {p.get('id')}, field 'value.x/y': not numbers")
                break
            pw = _size(p.get("original_width")) or w
            ph = _size(p.get("original_height")) or h
            seen[i] = str(p.get("id"))
            kp[i] = (x / 100.0 * pw, y / 100.0 * ph, 1.0 if _rid(p, "id") in occluded else 2.0)
        if problem:
            st.hold(problem[0], f"{where}: {problem[1]}", image_id=image_id, who=who, raw=pts)
            continue
        box = boxes.get(key)
        if box is not None:
            bv = _dict(box.get("value"))
            bw = _size(box.get("original_width")) or w
            bh = _size(box.get("original_height")) or h
            bbox = [_pct(bv.get(f)) / 100 * side for f, side in (("x", bw), ("y", bh), ("width", bw), ("height", bh))]
            m = re.fullmatch(r"kp-(\d+)", str(key))
        else:
            bbox, m = [np.nan] * 4, None
        st.kps.append(kp)
        st.bbox.append(bbox)
        st.image_id.append(image_id)
        st.who.append(who)
        st.ids.append(int(m.group(1)) if m else None)
        scores = [p.get("score") for p in pts if isinstance(p.get("score"), (int, float))]
        st.score.append(float(np.mean(scores)) if scores else np.nan)


# ---------------------------------------------------------------- encode


def label_config(schema: KeypointSchema) -> str:
    """A labeling config that matches `encode`: keypoint labels with model_index, a person box,
    and a per-region `visibility` choice for occluded points."""
    from xml.sax.saxutils import quoteattr

    kps = "\n".join(f"    <Label value={quoteattr(n)} model_index=\"{i}\"/>" for i, n in enumerate(schema.keypoints))
    return (
        "<View>\n  <Image name=\"image\" value=\"$image\"/>\n"
        f"  <KeyPointLabels name=\"keypoints\" toName=\"image\">\n{kps}\n  </KeyPointLabels>\n"
        f"  <RectangleLabels name=\"bbox\" toName=\"image\">\n    <Label value={quoteattr(schema.category)}/>\n"
        "  </RectangleLabels>\n"
        f"  <Choices name=\"{VISIBILITY_CONTROL}\" toName=\"image\" perRegion=\"true\">\n"
        "    <Choice value=\"occluded\"/>\n  </Choices>\n</View>\n"
    )


def encode(dataset: Dataset, *, as_predictions: bool = True, model_version: str = "kpdeliver") -> bytes:
    """Label Studio import JSON: one task per image, each instance a box (id `kp-<instance id>`)
    with its labeled keypoints as child regions (`parentID`). v=0 points are left out; v=1 points
    carry the `occluded` choice. `as_predictions=False` writes them as annotations instead."""
    schema, ins, im = dataset.schema, dataset.instances, dataset.images
    row = dataset.image_index()
    unsized = (im.width <= 0) | (im.height <= 0)
    if len(ins) and (np.any(row < 0) or np.any(unsized[row])):
        bad = "an unknown image" if np.any(row < 0) else repr(im.file_name[row[unsized[row]][0]])
        raise CodecError(f"Label Studio encode: instances on {bad} with no width/height; percent coordinates need them")
    bbox = np.where(np.isnan(ins.bbox), ins.bbox_from_keypoints(), ins.bbox)
    bbox = np.nan_to_num(bbox)
    w_i, h_i = im.width[row].astype(float), im.height[row].astype(float)
    pct = np.empty_like(ins.keypoints[..., :2])
    pct[..., 0] = ins.keypoints[..., 0] / w_i[:, None] * 100
    pct[..., 1] = ins.keypoints[..., 1] / h_i[:, None] * 100
    by_image: dict[int, list[int]] = {}
    for i, r in enumerate(row.tolist()):
        by_image.setdefault(r, []).append(i)
    tasks = []
    for r in range(len(im)):
        w, h = int(im.width[r]), int(im.height[r])
        result = []
        for i in by_image.get(r, []):
            result += _instance_regions(schema, int(ins.id[i]), bbox[i], pct[i], ins.v[i], w, h)
        work = {"model_version": model_version, "result": result} if as_predictions else {"result": result}
        tasks.append({"id": int(im.id[r]), "data": {"image": str(im.file_name[r])},
                      ("predictions" if as_predictions else "annotations"): [work]})
    return orjson.dumps(tasks, option=orjson.OPT_SERIALIZE_NUMPY)


def _instance_regions(schema: KeypointSchema, inst_id: int, bbox, pct, v, w: int, h: int) -> list[dict]:
    box_id = f"kp-{inst_id}"
    common = {"to_name": "image", "original_width": w, "original_height": h, "image_rotation": 0}
    out = [{"id": box_id, "type": "rectanglelabels", "from_name": "bbox", **common,
            "value": {"x": bbox[0] / w * 100, "y": bbox[1] / h * 100, "width": bbox[2] / w * 100,
                      "height": bbox[3] / h * 100, "rotation": 0, "rectanglelabels": [schema.category]}}]
    for j in np.flatnonzero(v > 0).tolist():
        rid = f"{box_id}-{j}"
        out.append({"id": rid, "type": "keypointlabels", "from_name": "keypoints", "parentID": box_id, **common,
                    "value": {"x": float(pct[j, 0]), "y": float(pct[j, 1]), "width": 0.5,
                              "keypointlabels": [schema.keypoints[j]]}})
        if v[j] == 1:
            out.append({"id": rid, "type": "choices", "from_name": VISIBILITY_CONTROL, **common,
                        "value": {"choices": ["occluded"]}})
    return out
