"""Canonical model -> a Supervisely project: `meta.json` (one graph class per category, node ids
the keypoint names, the skeleton as edges) and `<dataset>/ann/<item>.json` per image (paths.py).

v=2 points are written as nodes, v=1 as nodes marked `"disabled": true` (coordinates kept), v=0
points are left out. Supervisely has no graph object without nodes, so an instance with no
labelled point is kept (with its place among the image's objects) in the item's meta file. Coordinates are written as floats (Supervisely's SDK floors them to whole
pixels when it builds its own objects; the JSON format holds them as written)."""

from __future__ import annotations

import numpy as np
import orjson

from kpdeliver.codecs.supervisely.meta import GRAPH, meta_json
from kpdeliver.codecs.supervisely.paths import ANN, EMPTY, RECORD, image_name, item_meta_path, place
from kpdeliver.model import Dataset


def _nodes(names: tuple[str, ...], kp: list[list[float]]) -> dict:
    return {
        n: ({"loc": [x, y], "disabled": True} if v == 1 else {"loc": [x, y]})
        for n, (x, y, v) in zip(names, kp)
        if v > 0
    }


def encode(dataset: Dataset) -> dict[str, bytes]:
    """The project's files by path relative to its root."""
    schema, ins, im = dataset.schema, dataset.instances, dataset.images
    title = {c.id: c.name for c in dataset.categories}
    titles = list(dict.fromkeys([*title.values()] or [schema.category]))
    files = {"meta.json": meta_json(schema, titles)}
    row = dataset.image_index()
    by_image: dict[int, list[int]] = {}
    for i in np.argsort(row, kind="stable").tolist():
        by_image.setdefault(int(row[i]), []).append(i)
    kps = ins.keypoints.tolist()
    ids, cats, who = ins.id.tolist(), ins.category_id.tolist(), ins.annotator.tolist()
    taken: set[tuple[str, str]] = set()
    for r, (name, image_id) in enumerate(zip(im.file_name.tolist(), im.id.tolist())):
        folder, item = place(str(name), int(image_id), taken)
        objects: list[dict]
        empty: list[dict]
        objects, empty = [], []
        for pos, i in enumerate(by_image.get(r, [])):
            obj = {
                "id": ids[i],
                "classTitle": title.get(cats[i], schema.category),
                "description": "",
                "tags": [],
                **({"labelerLogin": who[i]} if who[i] else {}),
                "geometryType": GRAPH,
                "shape": GRAPH,
                "nodes": _nodes(schema.keypoints, kps[i]),
            }
            (objects if obj["nodes"] else empty).append(obj if obj["nodes"] else {**obj, "index": pos})
        doc = {
            "description": "",
            "size": {"height": int(im.height[r]), "width": int(im.width[r])},
            "tags": [],
            "objects": objects,
        }
        files[f"{folder}/{ANN}/{item}.json"] = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
        record = {
            **({"file_name": str(name)} if image_name(folder, item) != str(name) else {}),
            **({EMPTY: empty} if empty else {}),
        }
        if record:
            files[item_meta_path(folder, item)] = orjson.dumps({RECORD: record})
    return files
