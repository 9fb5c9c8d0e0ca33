"""Canonical model -> Label Studio import JSON (predictions or annotations)."""

from __future__ import annotations

import numpy as np
import orjson

from kpdeliver.codecs import CodecError
from kpdeliver.codecs.label_studio.config import VISIBILITY_CONTROL
from kpdeliver.model import Dataset, bbox_or_from_keypoints
from kpdeliver.schema import KeypointSchema


def encode(dataset: Dataset, *, as_predictions: bool = True, model_version: str = "kpdeliver") -> bytes:
    """Label Studio import JSON: one task per image, each instance a box (id `kp-<instance id>`)
    with its labeled keypoints as child regions (`parentID`). v=0 points are left out; v=1 points
    carry the `occluded` choice. `as_predictions=False` writes them as annotations instead."""
    schema, ins, im = dataset.schema, dataset.instances, dataset.images
    row = dataset.image_index()
    unsized = (im.width <= 0) | (im.height <= 0)
    if len(ins) and (np.any(row < 0) or np.any(unsized[row])):
        bad = "an unknown image" if np.any(row < 0) else repr(im.file_name[row[unsized[row]][0]])
        raise CodecError(
            f"Label Studio encode: instances on {bad} with no width/height; percent coordinates need them"
        )
    bbox = bbox_or_from_keypoints(ins)
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
        tasks.append(
            {
                "id": int(im.id[r]),
                "data": {"image": str(im.file_name[r])},
                ("predictions" if as_predictions else "annotations"): [work],
            }
        )
    return orjson.dumps(tasks, option=orjson.OPT_SERIALIZE_NUMPY)


def _instance_regions(schema: KeypointSchema, inst_id: int, bbox, pct, v, w: int, h: int) -> list[dict]:
    box_id = f"kp-{inst_id}"
    common = {"to_name": "image", "original_width": w, "original_height": h, "image_rotation": 0}
    out = [
        {
            "id": box_id,
            "type": "rectanglelabels",
            "from_name": "bbox",
            **common,
            "value": {
                "x": bbox[0] / w * 100,
                "y": bbox[1] / h * 100,
                "width": bbox[2] / w * 100,
                "height": bbox[3] / h * 100,
                "rotation": 0,
                "rectanglelabels": [schema.category],
            },
        }
    ]
    for j in np.flatnonzero(v > 0).tolist():
        rid = f"{box_id}-{j}"
        out.append(
            {
                "id": rid,
                "type": "keypointlabels",
                "from_name": "keypoints",
                "parentID": box_id,
                **common,
                "value": {
                    "x": float(pct[j, 0]),
                    "y": float(pct[j, 1]),
                    "width": 0.5,
                    "keypointlabels": [schema.keypoints[j]],
                },
            }
        )
        if v[j] == 1:
            out.append(
                {
                    "id": rid,
                    "type": "choices",
                    "from_name": VISIBILITY_CONTROL,
                    **common,
                    "value": {"choices": ["occluded"]},
                }
            )
    return out
