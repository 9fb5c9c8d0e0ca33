"""What an annotator does with a rework task in these tests: put their labels right.

A fix starts from the labels the rework task gave back (or, for a label the first export had
in a shape nothing could read, from that export's raw entry): gold images take the gold labels,
other points are moved into the image, unplaced points lose their coordinates, the point count
is made right. A bad fix does that and then puts one visible point outside the image.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
from PIL import Image

from kpdeliver.codecs import coco
from kpdeliver.model import Dataset, Instances, concat_instances
from kpdeliver.schema import COCO17

K = COCO17.num_keypoints


def _raw(batch: Path, annotator: str, file_name: str) -> np.ndarray:
    """The annotator's first-export keypoints of an image, each made 17 points long."""
    doc = orjson.loads((batch / "annotations" / annotator / "person_keypoints.json").read_bytes())
    ids = {im["id"] for im in doc["images"] if im["file_name"] == file_name}
    rows = []
    for a in doc["annotations"]:
        if a["image_id"] in ids:
            flat = (list(a["keypoints"]) + [0] * 3 * K)[: 3 * K]
            rows.append(np.asarray(flat, float).reshape(K, 3))
    return np.stack(rows) if rows else np.zeros((0, K, 3))


def _gold(batch: Path, file_name: str) -> np.ndarray:
    gold = coco.decode((batch / "gold" / "person_keypoints.json").read_bytes(), schema=COCO17).dataset
    image = gold.images.id[gold.images.file_name == file_name]
    return gold.instances.keypoints[np.isin(gold.instances.image_id, image)]


def fixed_labels(part: Dataset, annotator: str, batch: Path, *, bad: set[str] = frozenset()) -> Dataset:
    """The package's images with the annotator's labels put right (`bad`: file names fixed badly)."""
    parts, next_id = [], 1
    sizes = [Image.open(batch / "images" / n).size for n in part.images.file_name.tolist()]
    part = part.replace(
        images=replace(
            part.images,
            width=np.asarray([w for w, _ in sizes], np.int64),
            height=np.asarray([h for _, h in sizes], np.int64),
        )
    )
    for image_id, name, w, h in zip(
        part.images.id.tolist(),
        part.images.file_name.tolist(),
        part.images.width.tolist(),
        part.images.height.tolist(),
        strict=True,
    ):
        mine = part.instances.keypoints[
            (part.instances.image_id == image_id) & (part.instances.annotator == annotator)
        ]
        gold = _gold(batch, name)
        if len(gold):  # the annotator's labels of a gold image are put right by copying gold
            kps = gold.copy()
        else:
            kps = (
                mine.copy()
                if len(mine) >= len(_raw(batch, annotator, name))
                else _raw(batch, annotator, name)
            )
        kps[..., 0] = np.clip(kps[..., 0], 1, w - 2)
        kps[..., 1] = np.clip(kps[..., 1], 1, h - 2)
        kps[kps[..., 2] <= 0] = 0
        if name in bad and len(kps):
            seen = np.flatnonzero(kps[0, :, 2] == 2)
            kps[0, seen[0], :2] = (w + 60, h / 2)
        n = len(kps)
        parts.append(
            Instances.build(
                id=np.arange(next_id, next_id + n),
                image_id=np.full(n, image_id),
                keypoints=kps,
                num_keypoints=(kps[..., 2] > 0).sum(axis=1),
                annotator=[annotator] * n,
                num_kpts=K,
            )
        )
        next_id += n
    return part.replace(instances=concat_instances(parts, K))
