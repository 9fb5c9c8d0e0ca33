"""COCO keypoints files shaped like COCO's own `person_keypoints_train2017.json`: the people of
`synthetic_dataset`, plus what a real export carries and a YOLO conversion does not need —
segmentation polygons on every instance, crowd instances (about 1 in 100, with no keypoints, as in
COCO) whose segmentation is an uncompressed RLE, a `licenses` list, and each image's `license`,
`coco_url`, `flickr_url` and `date_captured`, in COCO's key order. About 700 bytes per instance
(COCO's file: about 900). Written a chunk of instances at a time, so 1M instances stay cheap."""

from __future__ import annotations

import numpy as np
import orjson

from kpdeliver.synth.datasets import synthetic_dataset

CROWD_SHARE = 0.01
_CHUNK = 50_000
_LICENSES = [
    {"url": f"http://creativecommons.org/licenses/by-nc-sa/2.0/{i}", "id": i, "name": f"License {i}"}
    for i in range(1, 9)
]


def coco_shaped(n_images: int, n_instances: int, *, seed: int = 0) -> bytes:
    """The file's bytes (compact JSON, like COCO's). Same seed, same bytes."""
    ds = synthetic_dataset(n_images, n_instances, seed=seed)
    rng = np.random.default_rng(seed + 1)
    im = ds.images
    head = {
        "info": {"description": "COCO-shaped synthetic keypoints", "version": "1.0", "year": 2017},
        "licenses": _LICENSES,
        "images": _images(im.id.tolist(), im.file_name.tolist(), im.width.tolist(), im.height.tolist(), rng),
    }
    parts = [orjson.dumps(head)[:-1], b',"annotations":[']
    ins = ds.instances
    for start in range(0, len(ins), _CHUNK):
        chunk = _annotations(ins.take(slice(start, min(len(ins), start + _CHUNK))), rng)
        parts.append((b"," if start else b"") + orjson.dumps(chunk)[1:-1])
    categories = [
        {
            "supercategory": "person",
            "id": 1,
            "name": "person",
            "keypoints": list(ds.schema.keypoints),
            "skeleton": [[a + 1, b + 1] for a, b in ds.schema.skeleton],
        }
    ]
    parts.append(b'],"categories":' + orjson.dumps(categories) + b"}")
    return b"".join(parts)


def _images(ids: list, names: list, widths: list, heights: list, rng: np.random.Generator) -> list[dict]:
    lic = rng.integers(1, 9, len(ids)).tolist()
    farm, server, photo = (
        rng.integers(1, 10, len(ids)).tolist(),
        rng.integers(1000, 9999, len(ids)).tolist(),
        rng.integers(10**9, 10**10, len(ids)).tolist(),
    )
    day, second = rng.integers(0, 28, len(ids)).tolist(), rng.integers(0, 86400, len(ids)).tolist()
    return [
        {
            "license": lic[i],
            "file_name": names[i],
            "coco_url": f"http://images.cocodataset.org/train2017/{names[i]}",
            "height": heights[i],
            "width": widths[i],
            "date_captured": f"2013-11-{day[i] + 1:02d} {second[i] // 3600:02d}:{second[i] // 60 % 60:02d}:{second[i] % 60:02d}",
            "flickr_url": f"http://farm{farm[i]}.staticflickr.com/{server[i]}/{photo[i]}_4e622c8349_z.jpg",
            "id": ids[i],
        }
        for i in range(len(ids))
    ]


def _polygons(bbox: np.ndarray, rng: np.random.Generator) -> list[list[float]]:
    """One polygon of 10-40 points per row, an ellipse with a ragged rim inside its box."""
    n = len(bbox)
    count = rng.integers(10, 41, n)
    angle = np.sort(rng.uniform(0, 2 * np.pi, (n, 40)), axis=1)
    radius = rng.uniform(0.75, 1.0, (n, 40))
    cx, cy = bbox[:, 0] + bbox[:, 2] / 2, bbox[:, 1] + bbox[:, 3] / 2
    x = cx[:, None] + np.cos(angle) * radius * bbox[:, 2:3] / 2
    y = cy[:, None] + np.sin(angle) * radius * bbox[:, 3:4] / 2
    xy = np.round(np.stack([x, y], axis=2).reshape(n, 80), 2).tolist()
    return [row[: 2 * c] for row, c in zip(xy, count.tolist(), strict=True)]


def _annotations(ins, rng: np.random.Generator) -> list[dict]:
    n = len(ins)
    crowd = rng.random(n) < CROWD_SHARE
    polygons = _polygons(ins.bbox, rng)
    flat = ins.keypoints.reshape(n, -1).copy()
    flat[crowd] = 0  # COCO's crowd regions carry no keypoints
    kps = flat.tolist()
    for row in kps:
        row[2::3] = [int(v) for v in row[2::3]]
    num = np.where(crowd, 0, ins.num_keypoints).tolist()
    area, bbox, ids, img = ins.area.tolist(), ins.bbox.tolist(), ins.id.tolist(), ins.image_id.tolist()
    out = []
    for i, is_crowd in enumerate(crowd.tolist()):
        seg: object = [polygons[i]]
        if is_crowd:
            runs = rng.integers(1, 400, int(rng.integers(100, 400))).tolist()
            seg = {"counts": runs, "size": [480, 640]}
        out.append(
            {
                "segmentation": seg,
                "num_keypoints": num[i],
                "area": area[i],
                "iscrowd": int(is_crowd),
                "keypoints": kps[i],
                "image_id": img[i],
                "bbox": bbox[i],
                "category_id": 1,
                "id": ids[i],
            }
        )
    return out
