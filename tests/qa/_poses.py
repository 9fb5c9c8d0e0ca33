"""Hand-made coco17 poses and datasets for the deep-QA tests."""

from __future__ import annotations

import numpy as np

from kpdeliver.model import Dataset, Images, Instances
from kpdeliver.schema import COCO17, KeypointSchema

# a person facing the camera, mid-hip at the origin, y down; the subject's left is at image right
FRONT = np.array(
    [
        [0, -160],
        [8, -168],
        [-8, -168],
        [16, -164],
        [-16, -164],  # nose, eyes, ears
        [40, -120],
        [-40, -120],
        [50, -70],
        [-50, -70],
        [55, -25],
        [-55, -25],  # shoulders, elbows, wrists
        [25, 0],
        [-25, 0],
        [27, 60],
        [-27, 60],
        [28, 120],
        [-28, 120],  # hips, knees, ankles
    ],
    dtype=np.float64,
)

K = {n: i for i, n in enumerate(COCO17.keypoints)}


def pose(cx: float = 300, cy: float = 400, *, xy: np.ndarray = FRONT, v: float = 2.0) -> np.ndarray:
    out = np.zeros((len(xy), 3))
    out[:, :2] = xy + np.array([cx, cy])  # numpy: every point moved by the centre
    out[:, 2] = v
    return out


def swapped(kps: np.ndarray, *names: str) -> np.ndarray:
    out = kps.copy()
    for n in names:
        a, b = K[f"left_{n}"], K[f"right_{n}"]
        out[[a, b]] = out[[b, a]]
    return out


def make_dataset(labels: list[dict], *, schema: KeypointSchema = COCO17, id_offset: int = 0) -> Dataset:
    """labels: dicts with kps [K, 3], file (image file name), and optional annotator, track, frame."""
    files = sorted({lab["file"] for lab in labels})
    ids = {f: i + 1 + id_offset for i, f in enumerate(files)}
    kps = np.stack([lab["kps"] for lab in labels]) if labels else np.zeros((0, schema.num_keypoints, 3))
    lab_xy = np.where(kps[..., 2:] > 0, kps[..., :2], np.nan)
    lo, hi = np.nanmin(lab_xy, axis=1), np.nanmax(lab_xy, axis=1)
    bbox = np.concatenate([lo - 5, hi - lo + 10], axis=1)
    n = len(labels)
    images = Images.build(
        id=[ids[f] for f in files], file_name=files, width=[1280] * len(files), height=[720] * len(files)
    )
    instances = Instances.build(
        id=np.arange(1, n + 1) + id_offset,
        image_id=[ids[lab["file"]] for lab in labels],
        keypoints=kps,
        bbox=bbox,
        annotator=[lab.get("annotator", "A") for lab in labels],
        track_id=[lab.get("track", -1) for lab in labels],
        frame=[lab.get("frame", -1) for lab in labels],
        num_kpts=schema.num_keypoints,
    )
    return Dataset(schema, images, instances)


def noisy(kps: np.ndarray, rng: np.random.Generator, sd: float) -> np.ndarray:
    out = kps.copy()
    out[:, :2] += rng.normal(0, sd, (len(kps), 2))
    return out


def rows_of(findings, check: str) -> list[dict]:
    return [r for r in findings.to_pylist() if r["check"] == check]
