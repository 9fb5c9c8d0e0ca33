"""A small clean COCO-17 dataset that every rule test breaks in exactly one way, and a runner
that returns findings as comparable tuples."""

from __future__ import annotations

import numpy as np

from kpdeliver.config import ValidationSettings
from kpdeliver.model import Dataset, Images, Instances
from kpdeliver.schema import COCO17

K = COCO17.num_keypoints
NAMES = COCO17.keypoints


def clean_dataset() -> Dataset:
    """Two 640x480 images, three people. Instance 10 and 11 have boxes; instance 12 has none
    (so a point can move anywhere in the frame without leaving a box). Every point of instance
    10 is labeled except the ears (v=0 at 0, 0); instance 11 has occluded hips."""
    rng = np.random.default_rng(3)
    kps = np.zeros((3, K, 3))
    boxes = np.array([[100, 50, 200, 300], [300, 100, 150, 250], [np.nan] * 4])
    centres = [(200, 200), (375, 225), (500, 300)]
    for i, (cx, cy) in enumerate(centres):
        kps[i, :, 0] = cx + rng.uniform(-60, 60, K).round(1)
        kps[i, :, 1] = cy + rng.uniform(-60, 60, K).round(1)
        kps[i, :, 2] = 2
    kps[0, [3, 4]] = 0  # ears not labeled
    kps[1, [11, 12], 2] = 1  # hips occluded
    images = Images.build(id=[1, 2], file_name=["a.jpg", "b.jpg"], width=[640, 640], height=[480, 480])
    instances = Instances.build(
        id=[10, 11, 12],
        image_id=[1, 1, 2],
        keypoints=kps,
        bbox=boxes,
        annotator=["ann_a", "ann_b", "ann_a"],
        num_keypoints=(kps[..., 2] > 0).sum(axis=1),
    )
    return Dataset(COCO17, images, instances)


def findings_set(dataset: Dataset, settings: ValidationSettings | None = None) -> set[tuple]:
    """{(check, annotation_id, keypoint)} of a validation run (image findings: annotation None)."""
    from expectations import validate_dataset

    report = validate_dataset(dataset, settings or ValidationSettings())
    t = report.findings
    return set(zip(t["check"].to_pylist(), t["annotation_id"].to_pylist(), t["keypoint"].to_pylist()))


def run(dataset: Dataset, settings: ValidationSettings | None = None):
    from expectations import validate_dataset

    return validate_dataset(dataset, settings or ValidationSettings())
