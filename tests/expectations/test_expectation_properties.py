"""Property tests: valid datasets give no findings; one random mistake fires the right check on
the right item (and nothing else).

GX runs cost a fraction of a second each, so every example validates several generated
datasets at once, side by side under disjoint ids, in one run."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kpdeliver.model import Dataset, Images, Instances, concat_images, concat_instances
from kpdeliver.schema import COCO17
from tests.expectations.expectation_helpers import NAMES, findings_set

pytestmark = pytest.mark.slow  # Great Expectations

K = COCO17.num_keypoints
SIZES = [(640, 480), (320, 240), (1280, 720)]
SLOW = settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)


@st.composite
def valid_datasets(draw) -> Dataset:
    """People whose boxes lie inside their image and whose labeled points lie inside their box;
    v=0 points at (0, 0); num_keypoints declared correctly or not at all; some boxes absent."""
    n_img = draw(st.integers(1, 3))
    n = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    sizes = np.array([SIZES[i] for i in rng.integers(0, len(SIZES), n_img)])
    img = rng.integers(0, n_img, n)
    w, h = sizes[img, 0].astype(float), sizes[img, 1].astype(float)
    bw, bh = rng.uniform(0.1, 0.5, n) * w, rng.uniform(0.1, 0.5, n) * h
    x0, y0 = 1 + rng.uniform(0, 1, n) * (w - bw - 2), 1 + rng.uniform(0, 1, n) * (h - bh - 2)
    v = rng.choice([0.0, 1.0, 2.0], (n, K), p=[0.3, 0.2, 0.5])
    x = np.where(v > 0, x0[:, None] + rng.uniform(0, 1, (n, K)) * bw[:, None], 0).round(2)
    y = np.where(v > 0, y0[:, None] + rng.uniform(0, 1, (n, K)) * bh[:, None], 0).round(2)
    bbox = np.stack([x0, y0, bw, bh], axis=1)
    bbox[rng.random(n) < 0.3] = np.nan
    declared = np.where(rng.random(n) < 0.7, (v > 0).sum(axis=1), -1)
    images = Images.build(
        id=np.arange(1, n_img + 1),
        file_name=[f"{i}.jpg" for i in range(n_img)],
        width=sizes[:, 0],
        height=sizes[:, 1],
    )
    instances = Instances.build(
        id=np.arange(100, 100 + n),
        image_id=img + 1,
        keypoints=np.stack([x, y, v], axis=2),
        bbox=bbox,
        num_keypoints=declared,
        annotator=[f"ann{i % 2}" for i in range(n)],
    )
    return Dataset(COCO17, images, instances)


def side_by_side(parts: list[Dataset]) -> Dataset:
    """One dataset holding every part, ids shifted by 1000 per part (part i: images and
    annotations i*1000 + their own id)."""
    images = concat_images([p.images for p in parts])
    instances = concat_instances([p.instances for p in parts], K)
    images.id += np.repeat(np.arange(len(parts)) * 1000, [len(p.images) for p in parts])
    shift = np.repeat(np.arange(len(parts)) * 1000, [len(p.instances) for p in parts])
    instances.id += shift
    instances.image_id += shift
    return Dataset(COCO17, images, instances)


def shifted(expected: set, i: int) -> set:
    return {(c, None if a is None else a + i * 1000, k) for c, a, k in expected}


@SLOW
@given(st.lists(valid_datasets(), min_size=1, max_size=8))
def test_valid_datasets_have_no_findings(parts):
    assert findings_set(side_by_side(parts)) == set()


def _labeled(ds, draw):
    rows, kps = np.nonzero(ds.instances.v > 0)
    assume(len(rows))
    i = draw(st.integers(0, len(rows) - 1))
    return int(rows[i]), int(kps[i])


def _side(ds, row: int) -> tuple[float, float]:
    j = np.flatnonzero(ds.images.id == ds.instances.image_id[row])[0]
    return float(ds.images.width[j]), float(ds.images.height[j])


@st.composite
def mutated(draw):
    """(dataset with one mistake, the one finding expected)."""
    ds = draw(valid_datasets())
    ins = ds.instances
    kind = draw(
        st.sampled_from(
            [
                "flag",
                "nan",
                "unlabeled",
                "origin",
                "visible_out",
                "occluded_far",
                "num_kp",
                "category",
                "on_edge",
            ]
        )
    )
    if kind in ("num_kp", "category"):
        row = draw(st.integers(0, len(ins) - 1))
        aid = int(ins.id[row])
        if kind == "num_kp":
            ins.num_keypoints[row] = int((ins.v[row] > 0).sum()) + draw(st.sampled_from([-1, 1, 5]))
            return ds, {("visibility.num_keypoints_mismatch", aid, None)}
        ins.category_id[row] = 99
        return ds, {("schema.unknown_category", aid, None)}
    if kind == "unlabeled":
        rows, kps = np.nonzero(ins.v == 0)
        assume(len(rows))
        i = draw(st.integers(0, len(rows) - 1))
        row, kp = int(rows[i]), int(kps[i])
        ins.keypoints[row, kp, :2] = (draw(st.floats(1, 300)), draw(st.floats(1, 200)))
        return ds, {("visibility.unlabeled_with_coords", int(ins.id[row]), NAMES[kp])}
    row, kp = _labeled(ds, draw)
    aid, name = int(ins.id[row]), NAMES[kp]
    w, h = _side(ds, row)
    if kind == "flag":
        ins.keypoints[row, kp, 2] = draw(st.sampled_from([0.04, 0.5, 1.5, 2.29, 3.0]))
        return ds, {("visibility.invalid_flag", aid, name)}
    if kind == "nan":
        ins.keypoints[row, kp, draw(st.integers(0, 2))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return ds, {("schema.non_finite", aid, name)}
    ins.bbox[row] = np.nan  # the point leaves its box too; only the rule under test should speak
    if kind == "origin":
        ins.keypoints[row, kp, :2] = 0
        return ds, {("visibility.labeled_at_origin", aid, name)}
    if kind == "on_edge":  # not a mistake: the frame's edge is inside, for every flag
        corner = draw(st.sampled_from([(w, h / 2), (w / 2, h), (w, h), (0.5, 0.0)]))
        ins.keypoints[row, kp] = (*corner, draw(st.sampled_from([1, 2])))
        return ds, set()
    if kind == "visible_out":
        ins.keypoints[row, kp] = (draw(st.sampled_from([-1.0, w + 0.5, w + 30])), h / 2, 2)
        return ds, {("bounds.visible_outside_image", aid, name)}
    ins.keypoints[row, kp] = (w / 2, draw(st.sampled_from([-0.6 * h, 1.7 * h])), 1)
    return ds, {("bounds.occluded_far_outside", aid, name)}


@SLOW
@given(st.lists(mutated(), min_size=1, max_size=8))
def test_one_mistake_fires_the_right_check_on_the_right_item(cases):
    expected = set().union(*(shifted(e, i) for i, (_, e) in enumerate(cases)))
    assert findings_set(side_by_side([ds for ds, _ in cases])) == expected
