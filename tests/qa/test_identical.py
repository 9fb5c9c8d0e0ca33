"""Identical work is judged identical: the same export placed under two annotators (and as gold) pairs
every instance with its copy, at agreement 1.0, with no finding; crowd images included, and people
labeled with a box only, with one point, or with no box."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from kpdeliver.collect.files import read_annotations
from kpdeliver.config import DeepQASettings
from kpdeliver.model import Dataset, concat_instances
from kpdeliver.qa import run_deep_qa
from kpdeliver.qa.context import Context
from kpdeliver.qa.overlap import overlap_findings
from tests.qa._poses import make_dataset, pose

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
# CrowdPose crowd images (one person with a box only among overlapping people), and a COCO slice with
# 25 of 65 people labeled with a box only
CROWD_EXPORTS = ["xtcocoapi/example_crowdpose_val.json", "super-gradients/person_keypoints_val2017.json"]
# the shared real exports: CrowdPose and OCHuman crowds, COCO and Halpe with people labeled by a box only
SHARED_EXPORTS = [
    "mmpose/crowdpose/test_crowdpose.json",
    "mmpose/ochuman/test_ochuman.json",
    "mmpose/coco/test_coco.json",
    "mmpose/halpe/test_halpe.json",
]


def twice(dataset: Dataset) -> Dataset:
    """The dataset's instances once as ann_a and once as ann_b (fresh ids for the copy)."""
    ins = dataset.instances
    copies = [
        replace(ins, annotator=np.full(len(ins), name, dtype=object), id=ins.id + offset)
        for name, offset in (("ann_a", 0), ("ann_b", int(ins.id.max()) + 1))
    ]
    return dataset.replace(instances=concat_instances(copies, dataset.schema.num_keypoints))


def judged(findings) -> list[dict]:
    return [f for f in findings.to_pylist() if f["check"] != "qa.pose_coverage"]


@pytest.mark.parametrize("export", CROWD_EXPORTS)
def test_the_same_crowd_export_under_two_annotators_agrees_fully(export):
    dataset = twice(read_annotations(REAL / export).dataset)
    result = run_deep_qa(dataset)
    assert judged(result.findings) == []
    assert [c["agreement_oks"] for c in result.annotators.to_pylist()] == [1.0, 1.0]
    ctx = Context.of(dataset)
    overlap = overlap_findings(ctx, DeepQASettings(), gold_matched=np.zeros(ctx.n, bool))
    has_points = (ctx.kps[..., 2] > 0).any(axis=1)
    np.testing.assert_array_equal(overlap.agreement_oks[has_points], 1.0)


@pytest.mark.parametrize("export", SHARED_EXPORTS)
def test_the_same_shared_export_under_two_annotators_and_as_gold_agrees_fully(export, external):
    original = read_annotations(external / export).dataset
    dataset = twice(original)
    for result in (run_deep_qa(dataset), run_deep_qa(dataset, gold=original)):
        assert judged(result.findings) == []
        assert [c["agreement_oks"] for c in result.annotators.to_pylist()] == [1.0, 1.0]


@pytest.mark.parametrize("export", CROWD_EXPORTS)
def test_the_same_crowd_export_as_gold_matches_every_instance(export):
    original = read_annotations(REAL / export).dataset
    dataset = twice(original)
    result = run_deep_qa(dataset, gold=original)
    assert judged(result.findings) == []
    cards = result.annotators.to_pylist()
    assert [c["gold_oks"] for c in cards] == [1.0, 1.0]
    assert [c["n_gold"] for c in cards] == [int((dataset.instances.v > 0).any(axis=1).sum()) // 2] * 2


def test_people_with_one_point_or_a_box_only_match_their_copies():
    one_point = np.zeros((17, 3))
    one_point[0] = (410, 300, 2)
    people = [pose(300), pose(700), one_point, np.zeros((17, 3))]
    dataset = make_dataset(
        [
            {"file": "a.jpg", "annotator": a, "kps": pose(100 + 300 * i)}
            for a in "AB"
            for i in range(len(people))
        ]
    )
    bbox = dataset.instances.bbox.copy()
    bbox[2::4] = np.nan  # one point and no box: no scale at all
    bbox[3::4] = (900, 100, 80, 200)  # a box and no point
    dataset = dataset.replace(instances=replace(dataset.instances, keypoints=np.stack(people * 2), bbox=bbox))
    result = run_deep_qa(dataset)
    assert judged(result.findings) == []
    assert [c["agreement_oks"] for c in result.annotators.to_pylist()] == [1.0, 1.0]
    gold = dataset.replace(instances=dataset.instances.take(np.arange(4)))
    against_gold = run_deep_qa(dataset, gold=gold)
    assert judged(against_gold.findings) == []
    assert [c["n_gold"] for c in against_gold.annotators.to_pylist()] == [3, 3]  # the box-only one has no OKS
