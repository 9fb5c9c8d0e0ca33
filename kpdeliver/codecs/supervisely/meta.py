"""Supervisely project meta (`meta.json`): the keypoint classes of geometry `graph` it declares,
the schema one of them defines, how a class's nodes map onto a given schema, and the meta that
matches what `encode` writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from kpdeliver.codecs import CodecError
from kpdeliver.codecs.json_doc import load_json
from kpdeliver.schema import DEFAULT_SIGMA, KeypointSchema, SchemaError, pairs_by_side

GRAPH = "graph"
MAX_NODES = 10_000  # far above any real skeleton (COCO-WholeBody has 133); more is a broken or hostile meta


@dataclass(frozen=True)
class GraphClass:
    """A class of geometry `graph`: node ids and labels in template order, 0-based edges."""

    title: str
    node_ids: tuple[str, ...]
    labels: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]


def _as_dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _as_list(v: Any) -> list:
    return v if isinstance(v, list) else []


def read_meta(data: bytes, source: str) -> tuple[list[GraphClass], dict[str, str]]:
    """(the graph classes in declaration order, every class title -> its geometry) of a meta.json."""
    doc = load_json(data, source)
    if not isinstance(doc, dict) or not isinstance(doc.get("classes"), list):
        raise CodecError(f"{source}: not a Supervisely project meta (no 'classes' list)")
    kind = doc.get("projectType", "images")
    if kind != "images":
        raise CodecError(
            f"{source}: field 'projectType' is {kind!r}; kpdeliver reads Supervisely image projects "
            "(videos: export frames as images, or use CVAT for video)"
        )
    graphs, shapes = [], {}
    for c in doc["classes"]:
        c = _as_dict(c)
        title, shape = str(c.get("title", "")), str(c.get("shape", c.get("geometry_type", "")))
        shapes[title] = shape
        if shape != GRAPH:
            continue
        config = _as_dict(c.get("geometry_config"))
        nodes = _as_dict(config.get("nodes"))
        if len(nodes) > MAX_NODES:
            raise CodecError(
                f"{source}: class {title!r}, field 'geometry_config.nodes': {len(nodes)} nodes, more than "
                f"{MAX_NODES:,}; refused"
            )
        ids = tuple(str(i) for i in nodes)
        labels = tuple(str(_as_dict(n).get("label") or i) for i, n in zip(ids, nodes.values()))
        index = {i: j for j, i in enumerate(ids)}
        edges = tuple(
            (index[a], index[b])
            for e in _as_list(config.get("edges"))
            for a, b in [(str(_as_dict(e).get("src")), str(_as_dict(e).get("dst")))]
            if a in index and b in index and a != b
        )
        graphs.append(GraphClass(title, ids, labels, edges))
    return graphs, shapes


def schema_from_graph(g: GraphClass, source: str) -> KeypointSchema:
    """A custom schema from a graph class (Supervisely has no OKS sigmas: one default)."""
    try:
        return KeypointSchema(
            name=g.title or "supervisely_graph",
            keypoints=g.labels,
            skeleton=g.edges,
            flip_pairs=pairs_by_side(g.labels),
            sigmas=(DEFAULT_SIGMA,) * len(g.labels),
            category=g.title or "object",
            source=f"Supervisely graph class {g.title!r} (sigmas {DEFAULT_SIGMA} by default)",
        )
    except SchemaError as e:
        raise CodecError(f"{source}: class {g.title!r}, field 'geometry_config.nodes': {e}") from None


def schema_from_meta(data: bytes, *, source: str = "") -> KeypointSchema:
    """The schema of a meta.json's first graph class."""
    graphs, _ = read_meta(data, source)
    if not graphs:
        raise CodecError(f"{source}: no class of geometry 'graph' (keypoints) in 'classes'")
    return schema_from_graph(graphs[0], source)


def node_order(g: GraphClass, schema: KeypointSchema) -> dict[str, int] | str:
    """Node id -> schema index, by label (exact, or through the alias table); the reason as a
    string when this class does not map onto the schema."""
    from kpdeliver.names import index_by_names

    try:
        return index_by_names(g.labels, g.node_ids, schema)
    except SchemaError as e:
        return f"class {g.title!r}, field 'geometry_config.nodes': {e}"


def meta_json(schema: KeypointSchema, titles: Sequence[str]) -> bytes:
    """A meta.json with one graph class per title; node ids are the keypoint names."""
    names = schema.keypoints
    config = {
        "nodes": {n: {"label": n, "loc": [0, 0], "color": "#0000FF"} for n in names},
        "edges": [{"src": names[a], "dst": names[b], "color": "#00FF00"} for a, b in schema.skeleton],
    }
    classes = [
        {
            "title": t,
            "description": "",
            "shape": GRAPH,
            "color": "#468A0F",
            "geometry_config": config,
            "hotkey": "",
        }
        for t in titles
    ]
    return orjson.dumps({"classes": classes, "tags": [], "projectType": "images"}, option=orjson.OPT_INDENT_2)
