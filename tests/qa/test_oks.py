"""The OKS engine equals pycocotools' COCOeval.computeOks (real COCO objects, real COCOeval)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from kpdeliver.model import Instances
from kpdeliver.qa.oks import match_max_total, oks_matrix, oks_paired, scale_sq
from kpdeliver.schema import COCO17, schema_from_dict

CUSTOM = schema_from_dict(
    {
        "name": "paw5",
        "keypoints": ["toe_a", "toe_b", "toe_c", "pad", "heel"],
        "sigmas": [0.011, 0.2, 0.05, 0.13, 0.07],
        "skeleton": [[0, 3], [1, 3], [2, 3], [3, 4]],
    },
    origin="test",
)


def _random_case(schema, rng, n_images=12):
    k = schema.num_keypoints
    images, gts, dts = [], [], []
    for img in range(1, n_images + 1):
        images.append({"id": img, "file_name": f"{img}.jpg", "width": 640, "height": 480})
        for _ in range(rng.integers(1, 5)):
            x0, y0 = rng.uniform(0, 400, 2)
            w, h = rng.uniform(20, 200, 2)
            xy = np.stack([x0 + rng.uniform(0, w, k), y0 + rng.uniform(0, h, k)], 1)
            v = rng.choice([0, 1, 2], k, p=[0.2, 0.3, 0.5])
            if rng.random() < 0.1:
                v[:] = 0  # no labeled point: pycocotools scores against the grown bbox
            kp = np.concatenate([np.where(v[:, None] > 0, xy, 0), v[:, None]], 1)
            gts.append(
                {
                    "id": len(gts) + 1,
                    "image_id": img,
                    "category_id": 1,
                    "iscrowd": 0,
                    "area": float(w * h * rng.uniform(0.3, 0.9)),
                    "bbox": [x0, y0, w, h],
                    "num_keypoints": int((v > 0).sum()),
                    "keypoints": kp.ravel().tolist(),
                }
            )
        base = [g for g in gts if g["image_id"] == img]
        for d in range(rng.integers(1, 6)):
            src = np.asarray(base[d % len(base)]["keypoints"], float).reshape(k, 3)
            xy = src[:, :2] + rng.normal(0, rng.uniform(1, 25), (k, 2))
            v = np.where(rng.random(k) < 0.9, 1.0, 0.0)
            kp = np.concatenate([np.where(v[:, None] > 0, xy, 0), v[:, None]], 1)
            dts.append(
                {
                    "image_id": img,
                    "category_id": 1,
                    "score": float(rng.random()),
                    "keypoints": kp.ravel().tolist(),
                }
            )
    return images, gts, dts


def _pycocotools_ious(schema, images, gts, dts):
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": gts,
        "categories": [{"id": 1, "name": "x", "keypoints": list(schema.keypoints), "skeleton": []}],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(dts)
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.kpt_oks_sigmas = schema.sigma_array
        ev.evaluate()
    return ev.ious


@pytest.mark.parametrize("schema", [COCO17, CUSTOM], ids=["coco17", "custom"])
def test_oks_matrix_equals_pycocotools(schema):
    rng = np.random.default_rng(7)
    images, gts, dts = _random_case(schema, rng)
    ious = _pycocotools_ious(schema, images, gts, dts)
    k = schema.num_keypoints
    compared = 0
    for img in images:
        g = [a for a in gts if a["image_id"] == img["id"]]
        d = sorted([a for a in dts if a["image_id"] == img["id"]], key=lambda a: -a["score"])
        gk = np.array([a["keypoints"] for a in g], float).reshape(-1, k, 3)
        dk = np.array([a["keypoints"] for a in d], float).reshape(-1, k, 3)
        ours = oks_matrix(
            dk,
            gk,
            np.array([a["area"] for a in g]),
            schema.sigma_array,
            ref_bbox=np.array([a["bbox"] for a in g], float),
        )
        theirs = np.asarray(ious[(img["id"], 1)])
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)
        compared += ours.size
    assert compared > 20


def test_paired_is_the_diagonal_and_perfect_labels_score_one():
    rng = np.random.default_rng(1)
    ref = np.concatenate([rng.uniform(0, 100, (6, 17, 2)), np.full((6, 17, 1), 2.0)], -1)
    s2 = rng.uniform(500, 5000, 6)
    kps = ref + np.concatenate([rng.normal(0, 3, (6, 17, 2)), np.zeros((6, 17, 1))], -1)
    np.testing.assert_allclose(
        oks_paired(kps, ref, s2, COCO17.sigma_array),
        np.diag(oks_matrix(kps, ref, s2, COCO17.sigma_array)),
        atol=1e-12,
    )
    np.testing.assert_allclose(oks_paired(ref, ref, s2, COCO17.sigma_array), 1.0)


def test_scale_is_area_then_bbox_times_053_then_point_box():
    kps = np.zeros((3, 17, 3))
    kps[:, :2] = [[10, 10, 2], [30, 50, 2]]
    ins = Instances.build(
        id=[1, 2, 3],
        image_id=[1, 1, 1],
        keypoints=kps,
        area=[400.0, np.nan, np.nan],
        bbox=[[0, 0, 10, 10], [0, 0, 10, 20], [np.nan] * 4],
    )
    np.testing.assert_allclose(scale_sq(ins), [400.0, 200 * 0.53, 20 * 40 * 0.53])


def test_hungarian_maximises_total_oks_and_drops_weak_pairs():
    score = np.array([[0.9, 0.8], [0.85, 0.05], [0.02, 0.01]])
    rows, cols = match_max_total(score, min_score=0.1)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 1), (1, 0)]  # 1.65 beats 0.95 greedy
