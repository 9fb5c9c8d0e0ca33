"""COCO <-> CVAT XML <-> Label Studio <-> YOLO Pose, chained: order, coordinates (1e-3 px)
and 0/1/2 flags survive every border, in both directions."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from kpdeliver.codecs import coco, cvat, label_studio
from tests.codecs.conformance import assert_same_keypoints, datasets
from tests.codecs.yolo_pose.test_yolo_codec import yolo_roundtrip

STEPS = {
    "coco": lambda ds: coco.decode(coco.encode(ds), schema=ds.schema).dataset,
    "cvat": lambda ds: cvat.decode(cvat.encode(ds), schema=ds.schema).dataset,
    "label-studio": lambda ds: label_studio.decode(label_studio.encode(ds), schema=ds.schema).dataset,
    "yolo": yolo_roundtrip,
}


def _chain(ds, order):
    for name in order:
        ds = STEPS[name](ds)
    return ds


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ds=datasets())
def test_forward_chain_is_lossless(ds):
    assert_same_keypoints(ds, _chain(ds, ["coco", "cvat", "label-studio", "yolo", "coco"]))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ds=datasets())
def test_backward_chain_is_lossless(ds):
    assert_same_keypoints(ds, _chain(ds, ["yolo", "label-studio", "cvat", "coco"]))
