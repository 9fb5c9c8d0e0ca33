"""Canonical model -> CVAT 1.1 XML, built as an ElementTree (the serialiser does the escaping).

v=0 points are written `outside="1"` at their audit position when one was kept, v=1 as
`occluded="1"`."""

from __future__ import annotations

from xml.etree import ElementTree as ET  # building only; all parsing goes through defusedxml
from xml.etree.ElementTree import Element, SubElement

import numpy as np

from kpdeliver.codecs import CodecError
from kpdeliver.model import Dataset
from kpdeliver.schema import KeypointSchema


def _num(x: float) -> str:
    return repr(float(x))


def _skeleton_svg(schema: KeypointSchema) -> str:
    """The skeleton drawing CVAT keeps in `<svg>`: edges, then one node per element (1-based ids)."""
    edges = "".join(
        f'<line data-type="edge" data-node-from="{a + 1}" data-node-to="{b + 1}"></line>'
        for a, b in schema.skeleton
    )
    nodes = "".join(
        f'<circle r="1.5" data-type="element node" data-element-id="{i + 1}" data-node-id="{i + 1}" '
        f'data-label-name="{n}"></circle>'
        for i, n in enumerate(schema.keypoints)
    )
    return edges + nodes


def _text(parent: Element, tag: str, text: str) -> Element:
    el = SubElement(parent, tag)
    el.text = text
    return el


def _meta(root: Element, dataset: Dataset, *, mode: str, size: tuple[int, int] | None, frames) -> None:
    schema = dataset.schema
    task = SubElement(SubElement(root, "meta"), "task")
    _text(task, "mode", "interpolation" if mode == "video" else "annotation")
    labels = SubElement(task, "labels")
    svg = _skeleton_svg(schema)
    for c in dataset.categories:
        label = SubElement(labels, "label")
        _text(label, "name", c.name)
        _text(label, "type", "skeleton")
        SubElement(label, "attributes")
        _text(label, "svg", svg)
        for n in schema.keypoints:
            element = SubElement(labels, "label")
            _text(element, "name", n)
            _text(element, "type", "points")
            SubElement(element, "attributes")
            _text(element, "parent", c.name)
    if size:
        original = SubElement(task, "original_size")
        _text(original, "width", str(size[0]))
        _text(original, "height", str(size[1]))
    if frames is not None and len(frames):
        # the frame step tells a reader which frames lie between two keyframes
        _text(task, "start_frame", str(int(frames[0])))
        _text(task, "stop_frame", str(int(frames[-1])))
        _text(task, "frame_filter", f"step={_frame_step(frames)}")


def _frame_step(frames: np.ndarray) -> int:
    return max(int(np.gcd.reduce(np.diff(frames))), 1) if len(frames) > 1 else 1


def _element_points(
    parent: Element,
    kp: np.ndarray,
    ox: float,
    oy: float,
    *,
    label: str | None = None,
    frame: int | None = None,
    ends: bool = False,
) -> None:
    """One skeleton element's `<points>`: labelled in images mode, frame-stamped in a video track."""
    x, y, v = kp
    outside = v <= 0 or ends
    if v <= 0 and np.isfinite(ox):
        x, y = ox, oy
    attrs = {"label": label} if label is not None else {"frame": str(frame), "keyframe": "1"}
    attrs.update(outside=str(int(outside)), occluded=str(int(v == 1)), points=f"{_num(x)},{_num(y)}")
    SubElement(parent, "points", attrs)


def encode(dataset: Dataset, *, mode: str = "images") -> bytes:
    """CVAT 1.1 XML: `mode="images"` (one `<skeleton>` per instance) or `"video"` (one skeleton
    track per track_id, every instance a keyframe at its `frame`)."""
    if mode not in ("images", "video"):
        raise ValueError("mode must be 'images' or 'video'")
    schema, ins, im = dataset.schema, dataset.instances, dataset.images
    n, k = len(ins), schema.num_keypoints
    ox = ins.extra.get("outside_x", np.full((n, k), np.nan))
    oy = ins.extra.get("outside_y", np.full((n, k), np.nan))
    cat_name = {c.id: c.name for c in dataset.categories}
    root = Element("annotations")
    _text(root, "version", "1.1")
    if mode == "images":
        _meta(root, dataset, mode=mode, size=None, frames=None)
        _image_body(root, dataset, cat_name, ox, oy)
    else:
        if n and np.any(ins.frame < 0):
            raise CodecError("CVAT video encode needs a frame number on every instance")
        size = (int(im.width.max(initial=0)), int(im.height.max(initial=0)))
        _meta(root, dataset, mode=mode, size=size, frames=np.unique(ins.frame))
        _track_body(root, dataset, cat_name, ox, oy, _frame_step(np.unique(ins.frame)))
    ET.indent(root, space="")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True, short_empty_elements=False) + b"\n"


def _image_body(root: Element, dataset: Dataset, cat_name: dict[int, str], ox, oy) -> None:
    schema, ins, im = dataset.schema, dataset.instances, dataset.images
    row = dataset.image_index()
    by_image: dict[int, list[int]] = {}
    for i in np.argsort(row, kind="stable").tolist():
        by_image.setdefault(int(row[i]), []).append(i)
    for r in range(len(im)):
        image = SubElement(
            root,
            "image",
            {
                "id": str(int(im.id[r])),
                "name": str(im.file_name[r]),
                "width": str(int(im.width[r])),
                "height": str(int(im.height[r])),
            },
        )
        for i in by_image.get(r, []):
            label = cat_name.get(int(ins.category_id[i]), schema.category)
            skeleton = SubElement(image, "skeleton", {"label": label, "occluded": "0", "points": ""})
            for j, name in enumerate(schema.keypoints):
                _element_points(skeleton, ins.keypoints[i, j], ox[i, j], oy[i, j], label=name)


def _track_body(root: Element, dataset: Dataset, cat_name: dict[int, str], ox, oy, step: int) -> None:
    """One skeleton track per track id. Where a track skips a frame of the grid, an `outside`
    keyframe on the next grid frame ends it there, or a reader would interpolate across the gap."""
    schema, ins = dataset.schema, dataset.instances
    n = len(ins)
    tracks = np.where(ins.track_id >= 0, ins.track_id, ins.track_id.max(initial=0) + 1 + np.arange(n))
    for tid in np.unique(tracks).tolist():
        sel = np.flatnonzero(tracks == tid)
        sel = sel[np.argsort(ins.frame[sel], kind="stable")]
        label = cat_name.get(int(ins.category_id[sel[0]]), schema.category)
        track = SubElement(root, "track", {"id": str(tid), "label": label})
        frames = ins.frame[sel]
        gap = np.append(np.diff(frames) > step, False)
        keys = [(i, int(f), False) for i, f in zip(sel.tolist(), frames.tolist())]
        keys += [(i, int(f) + step, True) for i, f in zip(sel[gap].tolist(), frames[gap].tolist())]
        keys.sort(key=lambda t: t[1])
        for _, f, ends in keys:
            SubElement(
                track,
                "skeleton",
                {"frame": str(f), "keyframe": "1", "outside": str(int(ends)), "occluded": "0", "points": ""},
            )
        for j, name in enumerate(schema.keypoints):
            element = SubElement(track, "track", {"id": str(j), "label": name})
            for i, f, ends in keys:
                _element_points(element, ins.keypoints[i, j], ox[i, j], oy[i, j], frame=f, ends=ends)
