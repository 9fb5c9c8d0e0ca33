"""Label Studio JSON (export and import/pre-annotation) -> canonical model.

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

from collections.abc import Mapping
from typing import Any

import numpy as np

from kpdeliver.codecs import CodecError, Decoded
from kpdeliver.codecs.json_doc import load_json
from kpdeliver.codecs.label_studio.config import config_keypoint_names, schema_from_config
from kpdeliver.codecs.label_studio.regions import (
    Gathered,
    as_dict,
    as_list,
    decode_results,
    region_id,
    size_of,
)
from kpdeliver.model import Category, Dataset, Images, Instances
from kpdeliver.schema import DEFAULT_SIGMA, KeypointSchema, SchemaError, pairs_by_side


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
    data = as_dict(task.get("data"))
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
    st = Gathered(0, source, annotator)
    if schema is None:
        schema = (
            schema_from_config(label_config, source=source)
            if label_config is not None
            else _schema_from_labels(tasks, st, source)
        )
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
        _decode_works(task, st, index=index, image_id=image_id, annotator=annotator, size=size)
    n = len(st.kps)
    instances = Instances.build(
        id=_ids(st.ids),
        image_id=st.image_id,
        keypoints=np.array(st.kps).reshape(n, k, 3),
        bbox=np.array(st.bbox).reshape(n, 4),
        annotator=st.who,
        num_kpts=k,
        extra={"score": np.asarray(st.score, np.float64)},
    )
    images = Images.build(id=img_ids, file_name=names, width=ws, height=hs, source=[source] * len(img_ids))
    ds = Dataset(schema, images, instances, (Category(1, schema.category),))
    return Decoded.logged(ds, st.log)


def _decode_works(
    task: dict, st: Gathered, *, index: dict[str, int], image_id: int, annotator: str, size: tuple[int, int]
) -> None:
    """A task's annotations (else its predictions) gathered into `st`; cancelled ones skipped, and
    predictions beside annotations noted as ignored."""
    works = as_list(task.get("annotations")) or as_list(task.get("completions"))
    kind = "annotation"
    if not works:
        works, kind = as_list(task.get("predictions")), "prediction"
    elif as_list(task.get("predictions")):
        st.quirk(f"task {image_id}: {len(task['predictions'])} predictions ignored (annotations present)")
    for w_no, work in enumerate(works):
        if not isinstance(work, dict) or work.get("was_cancelled"):
            continue
        who = annotator or _who(work)
        where = f"task {image_id} {kind} {work.get('id', w_no)}"
        decode_results(
            as_list(work.get("result")),
            st,
            index=index,
            image_id=image_id,
            who=who,
            where=where,
            size=size,
        )


def _schema_from_labels(tasks: list[dict], st: Gathered, source: str) -> KeypointSchema:
    """With no labeling config: the one built-in schema that names every keypoint label used,
    else a schema whose order is the labels' as first seen (as `--schema file` takes a file's own
    category). Keypoints under several KeyPointLabels controls: the one control whose points are
    tied to boxes is the schema (the others' points are held back by the decoder, with findings);
    otherwise the file is refused. Whatever is chosen is said in a finding."""
    from kpdeliver.names import normalise_name
    from kpdeliver.schema import BUILTIN_SCHEMAS

    seen, tied = _labels_by_control(tasks)
    if not seen:
        raise CodecError(
            f"{source}: no labeling config, no schema given, and no keypoint labels to take one from"
        )
    controls = sorted(seen) if len(seen) == 1 else sorted(tied)
    if len(controls) != 1:
        raise CodecError(
            f"{source}: no labeling config and no schema given, and the keypoint labels come from "
            f"{len(seen)} KeyPointLabels controls {sorted(seen)}, not one of them tied to boxes; "
            "pass the labeling config or a schema"
        )
    control = controls[0]
    names = tuple(seen[control])
    used = {normalise_name(n) for n in names}
    fits = [s for s in BUILTIN_SCHEMAS.values() if used <= {normalise_name(n) for n in s.keypoints}]
    others = sorted(set(seen) - {control})
    also = f"; points of the other controls {others} are not keypoints of it" if others else ""
    if len(fits) == 1:
        st.quirk(
            f"no labeling config: schema {fits[0].name!r} chosen because it names every keypoint label "
            f"of control {control!r}{also}"
        )
        return fits[0]
    st.quirk(
        f"no labeling config: keypoints of control {control!r} in the order first seen {list(names)}{also}; "
        "pass the labeling config or a schema to fix the order"
    )
    return KeypointSchema(
        name=control,
        keypoints=names,
        skeleton=(),
        flip_pairs=pairs_by_side(names),
        sigmas=(DEFAULT_SIGMA,) * len(names),
        category=control,
        source=f"Label Studio keypoint labels of control {control!r} (no labeling config)",
    )


def _labels_by_control(tasks: list[dict]) -> tuple[dict[str, dict[str, None]], set[str]]:
    """The keypoint labels used, by KeyPointLabels control in first-seen order, and the controls
    whose points are tied to boxes (by `parentID` or a relation)."""
    seen: dict[str, dict[str, None]] = {}  # control -> labels in first-seen order
    tied: set[str] = set()
    for t in tasks:
        for w in (
            as_list(t.get("annotations")) + as_list(t.get("completions")) + as_list(t.get("predictions"))
        ):
            results = (
                [r for r in as_list(w.get("result")) if isinstance(r, dict)] if isinstance(w, dict) else []
            )
            boxes = {region_id(r, "id") for r in results if r.get("type") == "rectanglelabels"} - {None}
            linked = {
                a if b in boxes else b
                for r in results
                if r.get("type") == "relation"
                for a, b in [(region_id(r, "from_id"), region_id(r, "to_id"))]
                if (a in boxes) != (b in boxes)
            }
            for r in results:
                labels = [
                    lab
                    for lab in as_list(as_dict(r.get("value")).get("keypointlabels"))
                    if isinstance(lab, str)
                ]
                if not labels:
                    continue
                control = str(r.get("from_name") or "keypoints")
                seen.setdefault(control, {}).update(dict.fromkeys(labels))
                if region_id(r, "parentID") in boxes or region_id(r, "id") in linked:
                    tied.add(control)
    return seen, tied


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
    for work in as_list(task.get("annotations")) + as_list(task.get("predictions")):
        for r in as_list(work.get("result")) if isinstance(work, dict) else []:
            w, h = (
                (size_of(r.get("original_width")), size_of(r.get("original_height")))
                if isinstance(r, dict)
                else (0, 0)
            )
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
