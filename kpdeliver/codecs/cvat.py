"""CVAT for images 1.1 and CVAT for video 1.1 XML <-> canonical model.

Visibility mapping (CVAT has flags, not a 0/1/2 value):
- `outside="1"`  -> v=0, coordinates zeroed; the written position is kept in the audit columns
  `extra["outside_x"]`, `extra["outside_y"]` ([n, K], NaN where the point was not outside),
- `occluded="1"` -> v=1,
- otherwise      -> v=2.
A skeleton element that is absent altogether is v=0 with no audit value.

Tracks (video) are expanded to one instance per frame: shapes listed in the file are used as
written (CVAT dumps interpolated frames too), frames on the task's frame step between two
listed shapes are linearly interpolated, and a track ends at an `outside` shape.
Free `<points>` shapes become instances only when they hold exactly K points (no names exist to
map them by); otherwise they are held back with a finding. Boxes, polygons and polylines are
not keypoints and are counted in an info finding.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from xml.etree import ElementTree as ET  # serialising only; all parsing goes through defusedxml
from xml.etree.ElementTree import Element

import numpy as np
from defusedxml import ElementTree as SafeET

from kpdeliver.codecs import CodecError, Decoded, rejected_rows
from kpdeliver.findings import concat_findings, findings_for
from kpdeliver.model import NONE, Category, Dataset, Images, Instances
from kpdeliver.schema import KeypointSchema, SchemaError, pairs_by_prefix

_NON_KEYPOINT_SHAPES = ("box", "polygon", "polyline", "ellipse", "cuboid", "mask", "tag")


@dataclass(frozen=True)
class SkeletonDef:
    """A `<label type="skeleton">` from `<meta>`: element names in order and 0-based edges."""

    name: str
    elements: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]


def _flag(el: Element, name: str) -> bool:
    return str(el.get(name, "0")).strip().lower() in ("1", "true")


def _int_attr(el: Element, name: str, default: int) -> int:
    try:
        return int(float(el.get(name, default)))
    except ValueError:
        return default


def _int_text(text: str | None) -> int:
    try:
        return int(float(text or 0))
    except ValueError:
        return 0


def _coord(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return np.nan  # kept as NaN so validation reports it (schema.non_finite), never a crash


def _xy(text: str | None) -> np.ndarray:
    """`"x1,y1;x2,y2"` -> [m, 2] float array (empty for "")."""
    pts = [p for p in (text or "").split(";") if p.strip()]
    if not pts:
        return np.zeros((0, 2))
    pairs = [(p.split(",") + ["nan"])[:2] for p in pts]
    return np.array([[_coord(a), _coord(b)] for a, b in pairs], dtype=np.float64).reshape(-1, 2)


def skeleton_definitions(root: Element) -> list[SkeletonDef]:
    """Skeleton labels from `<meta>`, elements in the order their sub-labels are declared."""
    labels = root.findall("./meta//labels/label")
    out = []
    for lab in labels:
        if (lab.findtext("type") or "").strip() != "skeleton":
            continue
        name = (lab.findtext("name") or "").strip()
        elements = tuple(
            (sub.findtext("name") or "").strip() for sub in labels if (sub.findtext("parent") or "").strip() == name
        )
        svg = lab.findtext("svg") or ""
        # node ids in the svg refer to elements through data-label-name
        node_name = dict(re.findall(r'data-node-id="(\d+)"[^>]*?data-label-name="([^"]*)"', svg))
        node_name.update({a: b for b, a in re.findall(r'data-label-name="([^"]*)"[^>]*?data-node-id="(\d+)"', svg)})
        edges = []
        for frm, to in _svg_edges(svg):
            a, b = node_name.get(frm), node_name.get(to)
            if a in elements and b in elements and a != b:
                edges.append((elements.index(a), elements.index(b)))
        out.append(SkeletonDef(name, elements, tuple(edges)))
    return out


def _svg_edges(svg: str) -> list[tuple[str, str]]:
    edges = []
    for line in re.findall(r"<line\b[^>]*>", svg):
        frm = re.search(r'data-node-from="(\d+)"', line)
        to = re.search(r'data-node-to="(\d+)"', line)
        if frm and to:
            edges.append((frm.group(1), to.group(1)))
    return edges


def schema_from_skeleton(sk: SkeletonDef, *, sigma: float = 0.05) -> KeypointSchema:
    """A custom schema from a CVAT skeleton definition (CVAT has no OKS sigmas: one default)."""
    return KeypointSchema(
        name=sk.name or "cvat_skeleton",
        keypoints=sk.elements,
        skeleton=sk.edges,
        flip_pairs=pairs_by_prefix(sk.elements),
        sigmas=(sigma,) * len(sk.elements),
        category=sk.name or "object",
        source=f"CVAT skeleton definition {sk.name!r} (sigmas {sigma} by default)",
    )


def schema_from_cvat_xml(data: bytes, *, label: str | None = None, source: str = "") -> KeypointSchema:
    """The schema defined by a CVAT XML file's skeleton label (the first, or the one named)."""
    sks = skeleton_definitions(_parse(data, source))
    sks = [s for s in sks if label in (None, s.name)]
    if not sks:
        raise SchemaError(f"{source}: no skeleton label{' ' + repr(label) if label else ''} in <meta><labels>")
    return schema_from_skeleton(sks[0])


def _parse(data: bytes, source: str) -> Element:
    try:
        root = SafeET.fromstring(data)
    except Exception as e:  # defusedxml raises ParseError or its own DefusedXmlException
        raise CodecError(f"{source}: not valid CVAT XML ({type(e).__name__}: {e})") from None
    if root.tag != "annotations":
        raise CodecError(f"{source}: root element is <{root.tag}>, CVAT XML has <annotations>")
    return root


class _Rows:
    """Instance rows gathered while walking the XML (one list per column)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.image_id: list[int] = []
        self.track_id: list[int] = []
        self.frame: list[int] = []
        self.label: list[str] = []
        self.kps: list[np.ndarray] = []
        self.outside: list[np.ndarray] = []

    def add(self, *, image_id: int, track_id: int, frame: int, label: str, xy: np.ndarray,
            present: np.ndarray, outside: np.ndarray, occluded: np.ndarray) -> None:
        kp = np.zeros((self.k, 3))
        v = np.where(~present | outside, 0.0, np.where(occluded, 1.0, 2.0))
        kp[:, :2] = np.where((v > 0)[:, None], xy, 0.0)
        kp[:, 2] = v
        self.kps.append(kp)
        self.outside.append(np.where((present & outside)[:, None], xy, np.nan))
        self.image_id.append(image_id)
        self.track_id.append(track_id)
        self.frame.append(frame)
        self.label.append(label)


def decode(
    data: bytes,
    *,
    schema: KeypointSchema | None = None,
    source: str = "",
    annotator: str = "",
) -> Decoded:
    """Decode CVAT for images / for video 1.1 XML. With no schema, the file's first skeleton
    label defines one; with a schema, skeleton element names are mapped onto it by name."""
    root = _parse(data, source)
    sks = skeleton_definitions(root)
    if schema is None:
        if not sks:
            raise CodecError(f"{source}: <meta><labels> has no skeleton label; pass a schema to read free points")
        schema = schema_from_skeleton(sks[0])
    perms = {sk.name: _element_order(sk, schema, source) for sk in sks}
    if sks and all(isinstance(v, str) for v in perms.values()):
        raise CodecError(next(iter(perms.values())))
    k = schema.num_keypoints
    rows = _Rows(k)
    findings: list = []
    rejected: list[dict] = []
    ctx = dict(source=source, annotator=annotator, findings=findings, rejected=rejected, perms=perms)

    video = root.find("track") is not None or root.find("image") is None
    if video:
        images = _video_images(root, rows, ctx, k)
    else:
        images = _image_shapes(root, rows, ctx, k)
    ignored = sum(len(root.findall(f".//{t}")) for t in _NON_KEYPOINT_SHAPES)
    if ignored:
        findings.append(findings_for("decode.quirk", message=f"{source}: {ignored} box/polygon/polyline/other "
                                     "shapes ignored (not keypoints)", value=float(ignored), source=source, n=1))
    n = len(rows.kps)
    cat_names = [schema.category] + sorted({lab for lab in rows.label if lab != schema.category})
    cat_id = {c: i + 1 for i, c in enumerate(cat_names)}
    instances = Instances.build(
        id=np.arange(1, n + 1), image_id=rows.image_id, keypoints=np.array(rows.kps).reshape(n, k, 3),
        category_id=[cat_id.get(lab, 1) for lab in rows.label], annotator=[annotator] * n,
        track_id=rows.track_id, frame=rows.frame, num_kpts=k,
        extra={"outside_x": np.array(rows.outside).reshape(n, k, 2)[..., 0],
               "outside_y": np.array(rows.outside).reshape(n, k, 2)[..., 1]},
    )
    cats = tuple(Category(cat_id[c], c) for c in cat_names)
    return Decoded(Dataset(schema, images, instances, cats), concat_findings(findings), rejected_rows(rejected))


def _element_order(sk: SkeletonDef, schema: KeypointSchema, source: str) -> dict[str, int] | str:
    """Element name -> schema index, by name (exact, or through the alias table); the reason
    as a string when this skeleton does not map onto the schema."""
    if sk.elements == schema.keypoints:
        return {n: i for i, n in enumerate(sk.elements)}
    from kpdeliver.names import map_keypoint_names

    try:
        perm = map_keypoint_names(list(sk.elements), schema)
    except SchemaError as e:
        return f"{source}: skeleton label {sk.name!r}, field 'elements': {e}"
    return {sk.elements[j]: i for i, j in enumerate(perm.tolist())}


def _skeleton_order(shape: Element, where: str, ctx: dict, image_id: int) -> dict[str, int] | None:
    """The element order for a `<skeleton>` shape's label, or None after holding the shape back."""
    label = shape.get("label", "")
    order = ctx["perms"].get(label, f"{ctx['source']}: skeleton label {label!r} is not defined in <meta>")
    if isinstance(order, dict):
        return order
    _hold(ctx, "schema.unknown_category", f"{order} ({where})", image_id, shape)
    return None


def _hold(ctx: dict, check: str, msg: str, image_id: int, shape: Element, value: float | None = None) -> None:
    ctx["findings"].append(findings_for(check, message=msg, image_id=image_id, annotator=ctx["annotator"] or None,
                                        value=value, source=ctx["source"], n=1))
    ctx["rejected"].append({"annotation_id": NONE, "image_id": image_id, "annotator": ctx["annotator"],
                            "source": ctx["source"], "check": check, "reason": msg,
                            "raw": ET.tostring(shape, encoding="unicode")})


def _skeleton_points(shape: Element, order: dict[str, int], k: int):
    """xy, present, outside, occluded ([K] arrays) of one `<skeleton>` shape's `<points>` children."""
    xy = np.zeros((k, 2))
    present, outside, occluded = np.zeros(k, bool), np.zeros(k, bool), np.zeros(k, bool)
    for pt in shape.findall("points"):
        i = order.get(pt.get("label", ""))
        if i is None:
            continue
        p = _xy(pt.get("points"))
        if len(p):
            xy[i] = p[0]
            present[i] = True
            outside[i] = _flag(pt, "outside")
            occluded[i] = _flag(pt, "occluded") or _flag(shape, "occluded")
    return xy, present, outside, occluded


def _free_points(shape: Element, k: int, where: str, ctx: dict, image_id: int):
    """A free `<points>` shape: used only when it holds exactly K points."""
    xy = _xy(shape.get("points"))
    if len(xy) == k:
        flag = np.ones(k, bool)
        return xy, flag, np.zeros(k, bool) | _flag(shape, "outside"), flag & _flag(shape, "occluded")
    msg = (f"{ctx['source']}: {where}, <points label={shape.get('label', '')!r}>, field 'points': "
           f"{len(xy)} points, schema has {k}; a free points shape has no names to map, held back")
    _hold(ctx, "schema.keypoint_count", msg, image_id, shape, value=float(len(xy)))
    return None


def _image_shapes(root: Element, rows: _Rows, ctx: dict, k: int) -> Images:
    ids, names, ws, hs = [], [], [], []
    for im in root.findall("image"):
        iid = _int_attr(im, "id", len(ids))
        ids.append(iid)
        names.append(im.get("name", ""))
        ws.append(_int_attr(im, "width", 0))
        hs.append(_int_attr(im, "height", 0))
        where = f"image id={iid} ({im.get('name', '')})"
        for shape in im:
            if shape.tag == "skeleton":
                order = _skeleton_order(shape, where, ctx, iid)
                if order is None:
                    continue
                xy, present, outside, occluded = _skeleton_points(shape, order, k)
            elif shape.tag == "points":
                got = _free_points(shape, k, where, ctx, iid)
                if got is None:
                    continue
                xy, present, outside, occluded = got
            else:
                continue
            rows.add(image_id=iid, track_id=NONE, frame=NONE, label=shape.get("label", ""), xy=xy,
                     present=present, outside=outside, occluded=occluded)
    return Images.build(id=ids, file_name=names, width=ws, height=hs, source=[ctx["source"]] * len(ids))


def _frame_grid(root: Element) -> tuple[int, int]:
    """(start_frame, step) of a video task."""
    task = root.find("./meta/task")
    if task is None:
        task = root.find("./meta/job")
    start = _int_text(task.findtext("start_frame")) if task is not None else 0
    filt = (task.findtext("frame_filter") or "") if task is not None else ""
    m = re.search(r"step\s*=\s*(\d+)", filt)
    return start, int(m.group(1)) if m else 1


def _track_series(shapes: list[Element], frames: np.ndarray, xy_of, n_pts: int):
    """For every frame: xy [F, n_pts, 2], present [F], outside [F], occluded [F].

    Listed shapes are used as written; a gap between two listed shapes is interpolated
    linearly, unless the earlier one is `outside` (the track ended there)."""
    listed = sorted(((_int_attr(s, "frame", 0), s) for s in shapes), key=lambda t: t[0])
    lf = np.array([f for f, _ in listed], dtype=np.int64)
    lxy = np.array([xy_of(s) for _, s in listed]).reshape(len(listed), n_pts, 2)
    lout = np.array([_flag(s, "outside") for _, s in listed], bool)
    locc = np.array([_flag(s, "occluded") for _, s in listed], bool)
    prev = np.searchsorted(lf, frames, side="right") - 1
    has_prev = prev >= 0
    p = np.clip(prev, 0, len(lf) - 1)
    nxt = np.clip(prev + 1, 0, len(lf) - 1)
    exact = has_prev & (lf[p] == frames)
    between = has_prev & ~exact & (prev + 1 < len(lf)) & ~lout[p]
    t = np.where(between, (frames - lf[p]) / np.maximum(lf[nxt] - lf[p], 1), 0.0)
    xy = lxy[p] + (lxy[nxt] - lxy[p]) * t[:, None, None]
    present = exact | between
    outside = present & lout[p]
    return xy, present, outside, present & locc[p]


def _video_images(root: Element, rows: _Rows, ctx: dict, k: int) -> Images:
    size = root.find("./meta//original_size")
    w = _int_text(size.findtext("width")) if size is not None else 0
    h = _int_text(size.findtext("height")) if size is not None else 0
    start, step = _frame_grid(root)
    used: set[int] = set()
    for tr in root.findall("track"):
        tid = _int_attr(tr, "id", NONE)
        label = tr.get("label", "")
        skel = tr.findall("skeleton")
        pts = tr.findall("points")
        if skel:
            order = _skeleton_order(tr, f"track id={tid}", ctx, NONE)
            if order is None:
                continue
            frames = _grid_frames([_int_attr(s, "frame", 0) for s in skel], start, step)
            _, alive, gone, occ = _track_series(skel, frames, lambda s: np.zeros((0, 2)), 0)
            frames, occ = frames[alive & ~gone], occ[alive & ~gone]
            xy = np.zeros((len(frames), k, 2))
            present, outside, occluded = (np.zeros((len(frames), k), bool) for _ in range(3))
            for sub in tr.findall("track"):
                i = order.get(sub.get("label", ""))
                if i is None or not sub.findall("points"):
                    continue
                sxy, sp, so, socc = _track_series(sub.findall("points"), frames, lambda s: _xy(s.get("points"))[:1], 1)
                xy[:, i], present[:, i], outside[:, i], occluded[:, i] = sxy[:, 0], sp, so, socc | occ
        elif pts:
            if any(len(_xy(s.get("points"))) != k for s in pts):
                for s in pts:
                    _free_points(s, k, f"track id={tid} ({label!r}) frame {s.get('frame')}", ctx, _int_attr(s, "frame", NONE))
                continue
            frames = _grid_frames([_int_attr(s, "frame", 0) for s in pts], start, step)
            sxy, sp, so, socc = _track_series(pts, frames, lambda s: _xy(s.get("points")), k)
            keep = sp & ~so
            frames, xy = frames[keep], sxy[keep]
            present = np.ones((len(frames), k), bool)
            outside = np.zeros((len(frames), k), bool)
            occluded = np.repeat(socc[keep][:, None], k, axis=1)
        else:
            continue
        for j, f in enumerate(frames.tolist()):
            used.add(f)
            rows.add(image_id=f, track_id=tid, frame=f, label=label, xy=xy[j], present=present[j],
                     outside=outside[j], occluded=occluded[j])
    frames = sorted(used)
    return Images.build(id=frames, file_name=[f"frame_{f:06d}" for f in frames], width=[w] * len(frames),
                        height=[h] * len(frames), source=[ctx["source"]] * len(frames))


def _grid_frames(listed: list[int], start: int, step: int) -> np.ndarray:
    """Frames from the first listed shape to the last, on the task's frame step."""
    lo, hi = min(listed), max(listed)
    first = lo + (-(lo - start)) % step  # first grid frame at or after the first listed shape
    grid = np.arange(first, hi + 1, step, dtype=np.int64)
    return np.union1d(grid, np.asarray(listed, np.int64))


# ---------------------------------------------------------------- encode


def _fmt(x: float) -> str:
    return repr(float(x))


def _meta(schema: KeypointSchema, categories, *, mode: str, size: tuple[int, int] | None, frames=None) -> str:
    svg = "".join(
        f'&lt;line data-type="edge" data-node-from="{a + 1}" data-node-to="{b + 1}"&gt;&lt;/line&gt;'
        for a, b in schema.skeleton
    ) + "".join(
        f'&lt;circle r="1.5" data-type="element node" data-element-id="{i + 1}" data-node-id="{i + 1}" '
        f'data-label-name="{_esc(n)}"&gt;&lt;/circle&gt;'
        for i, n in enumerate(schema.keypoints)
    )
    labels = []
    for c in categories:
        labels.append(f"<label><name>{_esc(c.name)}</name><type>skeleton</type><attributes></attributes>"
                      f"<svg>{svg}</svg></label>")
        labels += [f"<label><name>{_esc(n)}</name><type>points</type><attributes></attributes>"
                   f"<parent>{_esc(c.name)}</parent></label>" for n in schema.keypoints]
    extra = ""
    if size:
        extra = f"<original_size><width>{size[0]}</width><height>{size[1]}</height></original_size>"
    if frames is not None and len(frames):
        # the frame step tells a reader which frames lie between two keyframes
        step = int(np.gcd.reduce(np.diff(frames))) if len(frames) > 1 else 1
        extra += (f"<start_frame>{int(frames[0])}</start_frame><stop_frame>{int(frames[-1])}</stop_frame>"
                  f"<frame_filter>step={max(step, 1)}</frame_filter>")
    return (f"<meta><task><mode>{'interpolation' if mode == 'video' else 'annotation'}</mode>"
            f"<labels>{''.join(labels)}</labels>{extra}</task></meta>")


def _esc(s: str) -> str:
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def _element_xml(names, kp: np.ndarray, ox: np.ndarray, oy: np.ndarray, frame_attr: str) -> list[str]:
    """`<points>` of skeleton elements (labelled in images mode; frame-stamped in a video track)."""
    out = []
    for j, name in enumerate(names):
        x, y, v = kp[j]
        outside = v <= 0
        if outside and np.isfinite(ox[j]):
            x, y = ox[j], oy[j]
        label = "" if frame_attr else f' label="{_esc(name)}"'
        out.append(f'<points{label}{frame_attr} outside="{int(outside)}" occluded="{int(v == 1)}" '
                   f'points="{_fmt(x)},{_fmt(y)}"></points>')
    return out


def encode(dataset: Dataset, *, mode: str = "images") -> bytes:
    """CVAT 1.1 XML: `mode="images"` (one `<skeleton>` per instance) or `"video"` (one skeleton
    track per track_id, every instance a keyframe at its `frame`). v=0 points are written
    `outside="1"` at their audit position when one was kept, v=1 as `occluded="1"`."""
    if mode not in ("images", "video"):
        raise ValueError("mode must be 'images' or 'video'")
    schema, ins, im = dataset.schema, dataset.instances, dataset.images
    n, k = len(ins), schema.num_keypoints
    ox = ins.extra.get("outside_x", np.full((n, k), np.nan))
    oy = ins.extra.get("outside_y", np.full((n, k), np.nan))
    cat_name = {c.id: c.name for c in dataset.categories}
    names = schema.keypoints
    body: list[str] = []
    if mode == "images":
        row = dataset.image_index()
        order = np.argsort(row, kind="stable")
        by_image: dict[int, list[int]] = {}
        for i in order.tolist():
            by_image.setdefault(int(row[i]), []).append(i)
        for r in range(len(im)):
            body.append(f'<image id="{int(im.id[r])}" name="{_esc(im.file_name[r])}" '
                        f'width="{int(im.width[r])}" height="{int(im.height[r])}">')
            for i in by_image.get(r, []):
                body.append(f'<skeleton label="{_esc(cat_name.get(int(ins.category_id[i]), schema.category))}" '
                            f'occluded="0" points="">')
                body += _element_xml(names, ins.keypoints[i], ox[i], oy[i], "")
                body.append("</skeleton>")
            body.append("</image>")
        size = None
    else:
        if n and np.any(ins.frame < 0):
            raise CodecError("CVAT video encode needs a frame number on every instance")
        tracks = np.where(ins.track_id >= 0, ins.track_id, ins.track_id.max(initial=0) + 1 + np.arange(n))
        for tid in np.unique(tracks).tolist():
            sel = np.flatnonzero(tracks == tid)
            sel = sel[np.argsort(ins.frame[sel], kind="stable")]
            label = cat_name.get(int(ins.category_id[sel[0]]), schema.category)
            body.append(f'<track id="{tid}" label="{_esc(label)}">')
            body += [f'<skeleton frame="{int(ins.frame[i])}" keyframe="1" outside="0" occluded="0" points=""></skeleton>'
                     for i in sel]
            for j, name in enumerate(names):
                body.append(f'<track id="{j}" label="{_esc(name)}">')
                for i in sel:
                    body += _element_xml([name], ins.keypoints[i, j:j + 1], ox[i, j:j + 1],
                                         oy[i, j:j + 1], f' frame="{int(ins.frame[i])}" keyframe="1"')
                body.append("</track>")
            body.append("</track>")
        size = (int(im.width.max(initial=0)), int(im.height.max(initial=0)))
    frames = np.unique(ins.frame) if mode == "video" else None
    xml = ('<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>'
           + _meta(schema, dataset.categories, mode=mode, size=size, frames=frames) + "\n" + "\n".join(body) + "\n</annotations>\n")
    return xml.encode("utf-8")
