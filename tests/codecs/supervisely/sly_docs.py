"""Supervisely project files written out by hand, as Supervisely's web tool keeps them: node ids
are random strings, labels live only in meta.json, objects carry ids, class ids and labeler logins."""

from __future__ import annotations

import json

NODES = {"a1f0": "nose", "9c2e": "left_eye", "77bd": "right_eye", "e4a5": "left_ear"}  # template order
EDGES = [("a1f0", "9c2e"), ("a1f0", "77bd"), ("9c2e", "e4a5")]


def meta(
    *, extra_classes: list[dict] | None = None, nodes: dict[str, str] = NODES, title: str = "person"
) -> bytes:
    config = {
        "nodes": {i: {"label": lab, "loc": [0, 0], "color": "#FF0000"} for i, lab in nodes.items()},
        "edges": [{"src": a, "dst": b, "color": "#00FF00"} for a, b in EDGES if a in nodes and b in nodes],
    }
    classes = [
        {"id": 501, "title": title, "shape": "graph", "color": "#468A0F", "geometry_config": config},
        {"id": 502, "title": "car", "shape": "rectangle", "color": "#318A0F", "geometry_config": {}},
        *(extra_classes or []),
    ]
    return json.dumps({"classes": classes, "tags": [], "projectType": "images"}).encode()


def graph(
    oid: int, nodes: dict[str, dict], *, title: str = "person", login: str = "anna@example.com"
) -> dict:
    return {
        "id": oid,
        "classId": 501,
        "classTitle": title,
        "geometryType": "graph",
        "labelerLogin": login,
        "tags": [],
        "nodes": nodes,
    }


def ann(objects: list[dict], *, width: int = 640, height: int = 480) -> bytes:
    return json.dumps(
        {"description": "", "tags": [], "size": {"height": height, "width": width}, "objects": objects}
    ).encode()


RECT = {
    "id": 9001,
    "classId": 502,
    "classTitle": "car",
    "geometryType": "rectangle",
    "points": {"exterior": [[1, 2], [30, 40]], "interior": []},
}
POLY = {
    "id": 9002,
    "classTitle": "road",
    "geometryType": "polygon",
    "points": {"exterior": [[0, 0], [5, 0], [5, 5]]},
}


def project() -> dict[str, bytes]:
    """Two datasets; one disabled node, one absent node, a rectangle and a polygon of other classes."""
    first = graph(
        11,
        {
            "77bd": {"loc": [30.25, 40.5]},
            "a1f0": {"loc": [10.5, 20.75]},
            "9c2e": {"loc": [12, 22], "disabled": True},
        },
    )
    second = graph(12, {k: {"loc": [100 + i, 200 + i]} for i, k in enumerate(NODES)}, login="ben@example.com")
    poly_class = {"title": "road", "shape": "polygon", "geometry_config": {}}
    return {
        "meta.json": meta(extra_classes=[poly_class]),
        "ds0/ann/a.jpg.json": ann([first, RECT]),
        "ds0/ann/b.jpg.json": ann([], width=320, height=240),
        "train/ann/a.jpg.json": ann([second, POLY, dict(RECT, id=9003)], width=800, height=600),
    }
