"""Supervisely project (meta.json + `<dataset>/ann/<item>.json`) -> canonical model.

Schema: with none given, the first class of geometry `graph` in meta.json (or the one `category`
names, `--category` on the command line) defines it (node
labels in template order, edges as the skeleton, class title as category); objects of other
graph classes are mapped onto it by node label, or held back with a finding when they do not map.

Visibility (Supervisely has a `disabled` mark per node, not a 0/1/2 flag), as Supervisely's own
YOLO export maps it by default:
- a node present and not disabled -> v=2,
- a node marked `"disabled": true` -> v=1, its coordinates kept (labelled, not visible),
- a template node absent from the object -> v=0 at (0, 0).
`encode` writes the same rule back, so COCO -> Supervisely -> COCO keeps every flag.

Audit columns: `extra["sly_object_id"]` (the object's id, NaN when it has none) and
`extra["sly_class"]` (its class title); the image size comes from the annotation's `size`, the
annotator from `labelerLogin` unless one is given. Objects of other geometries (rectangle,
polygon, bitmap...) are counted in a `decode.quirk` finding per geometry and class, never
dropped silently; an object whose class is not in meta.json is held back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kpdeliver.codecs import CodecError, Decoded, DecodeLog, ItemProblem
from kpdeliver.codecs.json_doc import load_json, raw_json
from kpdeliver.codecs.supervisely.meta import GRAPH, GraphClass, node_order, read_meta, schema_from_graph
from kpdeliver.codecs.supervisely.paths import (
    EMPTY,
    RECORD,
    image_name,
    item_meta_path,
    parse_ann_path,
    project_file,
)
from kpdeliver.model import Category, Dataset, Images, Instances
from kpdeliver.schema import KeypointSchema

INT_LIMIT = 2**31 - 1


def _dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan


def _side(v: Any) -> int:
    x = _num(v)
    return int(x) if np.isfinite(x) and 0 < x <= INT_LIMIT else 0


class _Rows:
    """Instances gathered from every annotation file (one list per column)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.kps: list[np.ndarray] = []
        self.image_id: list[int] = []
        self.title: list[str] = []
        self.object_id: list[float] = []
        self.who: list[str] = []


def decode(
    meta: bytes,
    files: Mapping[str, bytes],
    *,
    schema: KeypointSchema | None = None,
    source: str = "",
    annotator: str = "",
    category: str | None = None,
) -> Decoded:
    """Decode a project: `meta` is meta.json, `files` its annotation (and item meta) files by path
    relative to the project root. A loose `<item>.json` (no `ann/` folder) is one annotation file.
    `category` names the graph class whose objects are read when no schema is given (default: the first)."""
    graphs, shapes = read_meta(meta, source or "meta.json")
    if schema is None:
        schema = schema_from_graph(_schema_class(graphs, category, source or "meta.json"), source)
    orders = {g.title: node_order(g, schema) for g in graphs}
    if graphs and all(isinstance(o, str) for o in orders.values()):
        raise CodecError(f"{source or 'meta.json'}: {next(iter(orders.values()))}")
    walk = _Walk(schema.num_keypoints, source, annotator, orders, shapes)
    ann_files = sorted(
        r
        for r in files
        if r.endswith(".json") and r != "meta.json" and not (project_file(r) and r.split("/")[-2] != "ann")
    )
    ids: list[int]
    ids, names, ws, hs = [], [], [], []
    for rel in ann_files:
        folder, item = parse_ann_path(rel)
        doc = load_json(files[rel], f"{source}!{rel}" if source else rel)
        if not isinstance(doc, dict):
            walk.hold(
                "schema.bad_type",
                f"{rel}: not a Supervisely annotation (a JSON object with 'size' and "
                "'objects'); file not read",
                len(ids) + 1,
                doc,
                fld="objects",
            )
            continue
        size, record = _dict(doc.get("size")), _record(files, folder, item)
        ids.append(len(ids) + 1)
        names.append(
            record.get("file_name")
            if isinstance(record.get("file_name"), str) and record["file_name"]
            else image_name(folder, item)
        )
        ws.append(_side(size.get("width")))
        hs.append(_side(size.get("height")))
        for o_no, obj in enumerate(_objects(doc, record)):
            walk.object(_dict(obj), f"{rel}, object {_dict(obj).get('id', o_no)}", ids[-1])
    walk.summarise()
    return walk.decoded(
        schema, graphs, Images.build(id=ids, file_name=names, width=ws, height=hs, source=[source] * len(ids))
    )


def _schema_class(graphs: list[GraphClass], category: str | None, source: str) -> GraphClass:
    titles = [g.title for g in graphs]
    if not graphs:
        raise CodecError(f"{source}: no class of geometry 'graph' (keypoints) in 'classes'; pass a schema")
    if category is not None and category not in titles:
        raise CodecError(f"{source}: no graph class {category!r}; its graph classes are {titles}")
    return graphs[titles.index(category) if category is not None else 0]


def _record(files: Mapping[str, bytes], folder: str, item: str) -> dict:
    """What `encode` kept in the item's meta file (the exact file name, objects with no node)."""
    kept = files.get(item_meta_path(folder, item))
    if kept is None:
        return {}
    try:
        return _dict(_dict(load_json(kept, item_meta_path(folder, item))).get(RECORD))
    except CodecError:
        return {}


def _objects(doc: dict, record: dict) -> list:
    """The file's objects, with the kept objects that have no node back in their places."""
    objects = list(doc["objects"]) if isinstance(doc.get("objects"), list) else []
    empty = (
        [o for o in record.get(EMPTY, []) if isinstance(o, dict)]
        if isinstance(record.get(EMPTY), list)
        else []
    )
    for obj in sorted(empty, key=lambda o: _side(o.get("index"))):
        objects.insert(_side(obj.get("index")), {**obj, "nodes": {}})
    return objects


class _Walk:
    """What reading objects needs: the rows so far, each graph class's node order (or why it does
    not map), the counts of objects of other geometries, and the log."""

    def __init__(
        self,
        k: int,
        source: str,
        annotator: str,
        orders: dict[str, dict[str, int] | str],
        shapes: dict[str, str],
    ) -> None:
        self.k, self.source, self.annotator, self.orders, self.shapes = k, source, annotator, orders, shapes
        self.rows = _Rows(k)
        self.log = DecodeLog(source)
        self.other: dict[tuple[str, str], int] = {}
        self.stray_nodes = 0

    def hold(self, check: str, message: str, image_id: int, raw: Any, *, fld: str, who: str = "") -> None:
        self.log.hold(
            ItemProblem(
                check,
                self.source,
                f"{self.source}: {message}" if self.source else message,
                field=fld,
                image_id=image_id,
                annotator=who or self.annotator,
                raw=raw_json(raw),
            )
        )

    def object(self, obj: dict, where: str, image_id: int) -> None:
        title = str(obj.get("classTitle", ""))
        who = self.annotator or str(obj.get("labelerLogin") or "")
        geometry = str(obj.get("geometryType") or obj.get("shape") or self.shapes.get(title, ""))
        order = self.orders.get(title)
        if order is None:
            if geometry == GRAPH or "nodes" in obj:
                self.hold(
                    "schema.unknown_category",
                    f"{where}: class {title!r} is no graph class of meta.json; held back",
                    image_id,
                    obj,
                    fld="classTitle",
                    who=who,
                )
            else:
                self.other[(geometry or "unknown", title)] = (
                    self.other.get((geometry or "unknown", title), 0) + 1
                )
            return
        if isinstance(order, str):
            self.hold(
                "schema.keypoint_count", f"{where}: {order}; held back", image_id, obj, fld="nodes", who=who
            )
            return
        if not isinstance(obj.get("nodes"), dict):
            self.hold(
                "schema.missing_field",
                f"{where}: class {title!r} is a graph class, but field 'nodes' is missing "
                "or not an object; held back",
                image_id,
                obj,
                fld="nodes",
                who=who,
            )
            return
        kp = np.zeros((self.k, 3))
        nodes = obj["nodes"]
        for node_id, node in nodes.items():
            i = order.get(node_id)
            if i is None:
                self.stray_nodes += 1
                continue
            node = _dict(node)
            loc = node["loc"] if isinstance(node.get("loc"), list) else []
            xy = [_num(v) for v in loc[:2]] + [np.nan] * (2 - len(loc[:2]))
            kp[i] = (xy[0], xy[1], 1.0 if node.get("disabled") is True else 2.0)
        oid = obj.get("id")
        r = self.rows
        r.kps.append(kp)
        r.image_id.append(image_id)
        r.title.append(title)
        r.object_id.append(float(oid) if type(oid) is int and 0 < oid <= 2**53 else np.nan)
        r.who.append(who)

    def summarise(self) -> None:
        for (geometry, title), n in sorted(self.other.items()):
            self.log.quirk(
                f"{n} objects of geometry {geometry!r} (class {title!r}) not read: not keypoints",
                value=float(n),
            )
        if self.stray_nodes:
            self.log.quirk(
                f"{self.stray_nodes} nodes whose id is not in their class's template ignored",
                value=float(self.stray_nodes),
            )

    def decoded(self, schema: KeypointSchema, graphs: list[GraphClass], images: Images) -> Decoded:
        r = self.rows
        n = len(r.kps)
        titles = [schema.category] + [g.title for g in graphs if g.title != schema.category]
        cat_id = {t: i + 1 for i, t in enumerate(titles)}
        oid = np.asarray(r.object_id, np.float64)
        unique = n and np.isfinite(oid).all() and len(np.unique(oid)) == n
        instances = Instances.build(
            id=oid.astype(np.int64) if unique else np.arange(1, n + 1),
            image_id=r.image_id,
            keypoints=np.array(r.kps).reshape(n, self.k, 3),
            category_id=[cat_id.get(t, 1) for t in r.title],
            annotator=r.who,
            num_kpts=self.k,
            extra={"sly_object_id": oid, "sly_class": np.asarray(r.title, dtype=object)},
        )
        cats = tuple(Category(cat_id[t], t) for t in titles)
        return Decoded.logged(Dataset(schema, images, instances, cats), self.log)
