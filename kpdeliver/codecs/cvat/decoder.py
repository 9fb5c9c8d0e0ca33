"""CVAT for images 1.1 and CVAT for video 1.1 XML -> canonical model.

Visibility mapping (CVAT has flags, not a 0/1/2 value):
- `outside="1"`  -> v=0, coordinates zeroed; the written position is kept in the audit columns
  `extra["outside_x"]`, `extra["outside_y"]` ([n, K], NaN where the point was not outside),
- `occluded="1"` -> v=1,
- otherwise      -> v=2.
A skeleton element that is absent altogether is v=0 with no audit value.

Tracks (video) are expanded to one instance per frame (video.py). In a file with skeleton labels
a free `<points>` shape of another label is reported (`decode.other_label`), never an instance;
otherwise free points become instances only when they hold exactly K points (no names exist to
map them by), and are held back with a finding when they do not. Boxes, polygons and polylines are not keypoints and are counted
in an info finding.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

import numpy as np

from kpdeliver.codecs import CodecError, Decoded
from kpdeliver.codecs.cvat.attributes import int_attr, parse_cvat
from kpdeliver.codecs.cvat.shapes import ShapeWalk, skeleton_points
from kpdeliver.codecs.cvat.skeleton import element_order, schema_from_skeleton, skeleton_definitions
from kpdeliver.codecs.cvat.video import video_images
from kpdeliver.model import NONE, Category, Dataset, Images, Instances
from kpdeliver.schema import KeypointSchema

_NON_KEYPOINT_SHAPES = ("box", "polygon", "polyline", "ellipse", "cuboid", "mask", "tag")


def decode(
    data: bytes,
    *,
    schema: KeypointSchema | None = None,
    source: str = "",
    annotator: str = "",
) -> Decoded:
    """Decode CVAT for images / for video 1.1 XML. With no schema, the file's first skeleton
    label defines one; with a schema, skeleton element names are mapped onto it by name."""
    root = parse_cvat(data, source)
    sks = skeleton_definitions(root)
    if schema is None:
        if not sks:
            raise CodecError(
                f"{source}: <meta><labels> has no skeleton label; pass a schema to read free points"
            )
        schema = schema_from_skeleton(sks[0])
    orders = {sk.name: element_order(sk, schema, source) for sk in sks}
    if sks and all(isinstance(v, str) for v in orders.values()):
        raise CodecError(next(iter(orders.values())))
    k = schema.num_keypoints
    walk = ShapeWalk(k=k, source=source, annotator=annotator, orders=orders, category=schema.category)

    video = root.find("track") is not None or root.find("image") is None
    images = video_images(root, walk) if video else _image_shapes(root, walk)
    ignored = sum(len(root.findall(f".//{t}")) for t in _NON_KEYPOINT_SHAPES)
    if ignored:
        walk.log.quirk(
            f"{ignored} box/polygon/polyline/other shapes ignored (not keypoints)", value=float(ignored)
        )
    rows = walk.rows
    n = len(rows.kps)
    cat_names = [schema.category, *sorted({lab for lab in rows.label if lab != schema.category})]
    cat_id = {c: i + 1 for i, c in enumerate(cat_names)}
    outside = np.array(rows.outside).reshape(n, k, 2)
    instances = Instances.build(
        id=np.arange(1, n + 1),
        image_id=rows.image_id,
        keypoints=np.array(rows.kps).reshape(n, k, 3),
        category_id=[cat_id.get(lab, 1) for lab in rows.label],
        annotator=[annotator] * n,
        track_id=rows.track_id,
        frame=rows.frame,
        num_kpts=k,
        extra={"outside_x": outside[..., 0], "outside_y": outside[..., 1]},
    )
    cats = tuple(Category(cat_id[c], c) for c in cat_names)
    return Decoded.logged(Dataset(schema, images, instances, cats), walk.log)


def _image_shapes(root: Element, walk: ShapeWalk) -> Images:
    ids: list[int]
    ids, names, ws, hs = [], [], [], []
    for im in root.findall("image"):
        iid = int_attr(im, "id", len(ids))
        ids.append(iid)
        names.append(im.get("name", ""))
        ws.append(int_attr(im, "width", 0))
        hs.append(int_attr(im, "height", 0))
        where = f"image id={iid} ({im.get('name', '')})"
        for shape in im:
            if shape.tag == "skeleton":
                order = walk.skeleton_order(shape, where, iid)
                if order is None:
                    continue
                xy, present, outside, occluded = skeleton_points(shape, order, walk.k)
            elif shape.tag == "points":
                got = walk.free_points(shape, where, iid)
                if got is None:
                    continue
                xy, present, outside, occluded = got
            else:
                continue
            walk.rows.add(
                image_id=iid,
                track_id=NONE,
                frame=NONE,
                label=shape.get("label", ""),
                xy=xy,
                present=present,
                outside=outside,
                occluded=occluded,
            )
    return Images.build(id=ids, file_name=names, width=ws, height=hs, source=[walk.source] * len(ids))
