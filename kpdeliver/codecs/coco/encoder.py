"""Canonical model -> COCO Keypoints JSON."""

from __future__ import annotations

import numpy as np
import orjson

from kpdeliver.model import NONE, Dataset, Instances, bbox_or_from_keypoints


def encode(dataset: Dataset, *, indent: bool = False) -> bytes:
    """COCO keypoints JSON. Ids, flags and coordinates are written as held; `num_keypoints` and
    `area` are computed when the model has none. Annotation ids are renumbered 1..n when any is
    below 1 or repeated (pycocotools' COCOeval takes a matched id 0 for "unmatched", so a file
    with id 0 scores itself AP 0.25, not 1.0); each annotation then keeps its id as `source_id`."""
    schema = dataset.schema
    annotations = _annotations(dataset.instances, schema.num_keypoints)
    im = dataset.images
    images = [
        {"id": i, "file_name": f, "width": w, "height": h}
        for i, f, w, h in zip(im.id.tolist(), im.file_name.tolist(), im.width.tolist(), im.height.tolist())
    ]
    skeleton_1based = [[a + 1, b + 1] for a, b in schema.skeleton]
    categories = [
        {
            "id": c.id,
            "name": c.name,
            "supercategory": c.supercategory or c.name,
            "keypoints": list(schema.keypoints),
            "skeleton": skeleton_1based,
        }
        for c in dataset.categories
    ]
    doc = {
        "info": {"description": f"kpdeliver export ({schema.name})"},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 if indent else 0)


def _annotations(ins: Instances, k: int) -> list[dict]:
    """The COCO annotation objects, one per instance: keypoints flattened with integer flags when
    all are whole, `num_keypoints`, `area` and the bbox filled in when absent, optional fields only
    when set."""
    n = len(ins)
    vis = ins.v
    v_int = np.all(vis == np.round(vis)) if n else True
    flat = ins.keypoints.reshape(n, k * 3).tolist()
    vis_list = vis.astype(np.int64).tolist() if v_int else vis.tolist()
    num_kp = (vis > 0).sum(axis=1).tolist()
    bbox = bbox_or_from_keypoints(ins)
    area = np.where(np.isnan(ins.area), bbox[:, 2] * bbox[:, 3], ins.area).tolist()
    bbox_l = bbox.tolist()
    ids, source_ids = coco_annotation_ids(ins.id)
    img_ids, cat_ids = ins.image_id.tolist(), ins.category_id.tolist()
    crowd, tracks, frames, annot = (
        ins.iscrowd.tolist(),
        ins.track_id.tolist(),
        ins.frame.tolist(),
        ins.annotator.tolist(),
    )
    annotations = []
    for i in range(n):
        row = flat[i]
        row[2::3] = vis_list[i]
        a = {
            "id": ids[i],
            "image_id": img_ids[i],
            "category_id": cat_ids[i],
            "iscrowd": crowd[i],
            "keypoints": row,
            "num_keypoints": num_kp[i],
            "bbox": bbox_l[i],
            "area": area[i],
        }
        if source_ids is not None:
            a["source_id"] = source_ids[i]
        if tracks[i] != NONE:
            a["track_id"] = tracks[i]
        if frames[i] != NONE:
            a["frame_id"] = frames[i]
        if annot[i]:
            a["annotator"] = annot[i]
        annotations.append(a)
    return annotations


def coco_annotation_ids(ids: np.ndarray) -> tuple[list[int], list[int] | None]:
    """The ids to write, and the held ids when they had to be renumbered (else None)."""
    if not len(ids) or (ids.min() >= 1 and len(np.unique(ids)) == len(ids)):
        return ids.tolist(), None
    return list(range(1, len(ids) + 1)), ids.tolist()
