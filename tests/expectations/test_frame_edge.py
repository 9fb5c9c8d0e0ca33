"""A frame edge is inside for every flag: a point at x = width or y = height (CVAT clamps points to the
edge, YOLO's normalised range includes 1.0) is inside the image whether it is visible or occluded,
and the GX worker process and the in-process rules say so alike."""

from __future__ import annotations

import numpy as np
import pytest

from expectations.worker import GXWorker
from kpdeliver.config import ValidationSettings
from kpdeliver.validation import AnnotationSet, InProcessRules, validate_annotations
from tests.expectations.expectation_helpers import NAMES, clean_dataset, findings_set

pytestmark = pytest.mark.slow  # Great Expectations

W, H = 640, 480  # image b.jpg of the clean dataset; instance 12 (row 2) has no box, so only frame rules speak
EDGES = {"right edge": (W, 240), "bottom edge": (320, H), "corner": (W, H), "left/top corner": (0.5, 0.0)}
PAST = {"right": (W + 0.5, 240), "bottom": (320, H + 0.5)}


def _at(points: list[tuple[float, float, int]]):
    ds = clean_dataset()
    for j, p in enumerate(points):
        ds.instances.keypoints[2, j] = p
    return ds


@pytest.mark.parametrize("v", [2, 1], ids=["visible", "occluded"])
@pytest.mark.parametrize("where", sorted(EDGES))
def test_a_point_on_the_frame_edge_is_inside_for_every_flag(where, v):
    assert findings_set(_at([(*EDGES[where], v)])) == set()


@pytest.mark.parametrize("where", sorted(PAST))
def test_a_point_just_past_the_edge_is_outside_for_every_flag(where):
    ds = _at([(*PAST[where], 2), (*PAST[where], 1)])
    assert findings_set(ds) == {
        ("bounds.visible_outside_image", 12, NAMES[0]),
        ("bounds.occluded_outside_image", 12, NAMES[1]),
    }


def test_worker_and_in_process_rules_agree_on_the_edge():
    points = [(*xy, v) for xy in [*EDGES.values(), *PAST.values()] for v in (2, 1)]
    sets = [AnnotationSet(_at(points), source="edge.json")]
    with GXWorker() as worker:
        by_worker = validate_annotations(sets, rules=worker, settings=ValidationSettings())
    in_process = validate_annotations(sets, rules=InProcessRules(), settings=ValidationSettings())
    assert by_worker.findings.equals(in_process.findings)
    found = sorted(zip(by_worker.findings["check"].to_pylist(), by_worker.findings["keypoint"].to_pylist()))
    past = 2 * len(EDGES)  # the points past the edge come after the edge ones
    checks = ("bounds.visible_outside_image", "bounds.occluded_outside_image") * len(PAST)
    assert found == sorted(zip(checks, NAMES[past : past + 2 * len(PAST)]))
    assert np.all(np.asarray(by_worker.findings["value"].to_pylist()) == 0.5)
