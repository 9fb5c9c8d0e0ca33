"""Pose coverage: joint angles on hand-made poses; empty bins become findings."""

from __future__ import annotations

import numpy as np
import pytest

from kpdeliver.config import CoverageBin, DeepQASettings
from kpdeliver.qa import run_deep_qa
from kpdeliver.qa.coverage import pose_measures
from kpdeliver.schema import COCO17, schema_from_dict
from tests.qa._poses import FRONT, K, make_dataset, pose, rows_of


def test_joint_angles_of_hand_made_poses():
    arms_down = FRONT.copy()
    for s, sgn in (("left", 1), ("right", -1)):
        arms_down[K[f"{s}_hip"]] = [40 * sgn, 0]  # trunk sides vertical, arms along them
        arms_down[K[f"{s}_elbow"]] = [40 * sgn, -70]
        arms_down[K[f"{s}_wrist"]] = [40 * sgn, -20]
    overhead = arms_down.copy()
    overhead[K["left_elbow"]] = [40, -170]
    overhead[K["left_wrist"]] = [40, -220]
    squat = FRONT.copy()
    squat[K["left_knee"]] = [27 + 60, 0]  # thigh horizontal, shin vertical: 90 degrees
    squat[K["left_ankle"]] = [27 + 60, 60]
    m = pose_measures(np.stack([pose(xy=arms_down), pose(xy=overhead), pose(xy=squat)]), COCO17)
    assert m["elbow_flexion"][0] == pytest.approx([0, 0], abs=1e-6)
    assert m["arm_elevation"][0] == pytest.approx([0, 0], abs=1e-6)
    assert m["arm_elevation"][1, 0] == pytest.approx(180, abs=1e-6)
    assert m["knee_flexion"][2, 0] == pytest.approx(90, abs=2)
    assert m["trunk_lean"][0, 0] == pytest.approx(0, abs=1e-6)


def test_empty_bins_are_reported_in_plain_words():
    ds = make_dataset(
        [{"file": f"{i}.jpg", "kps": pose(cx=300 + i)} for i in range(20)]
    )  # all standing alike
    found = rows_of(run_deep_qa(ds).findings, "qa.pose_coverage")
    msgs = " | ".join(f["message"] for f in found)
    assert "no arms fully overhead" in msgs and "no deep squats" in msgs
    assert all(f["severity"] == "info" and f["value"] == 0 for f in found)
    assert "upright trunks" not in msgs  # those are there


def test_min_count_and_custom_schema_bins():
    ds = make_dataset([{"file": f"{i}.jpg", "kps": pose()} for i in range(3)])
    settings = DeepQASettings(
        coverage_targets=(
            CoverageBin(name="upright trunks", measure="trunk_lean", low=0, high=10, min_count=5),
        )
    )
    (f,) = rows_of(run_deep_qa(ds, settings=settings).findings, "qa.pose_coverage")
    assert f["message"].startswith("only 3 upright trunks") and f["value"] == 3
    arm = schema_from_dict(
        {
            "name": "arm",
            "keypoints": ["shoulder", "elbow", "wrist"],
            "skeleton": [["shoulder", "elbow"], ["elbow", "wrist"]],
        },
        origin="test",
    )
    kps = np.array([[[0, 0, 2], [0, 50, 2], [0, 100, 2]]] * 4, dtype=float)  # straight arms only
    found = rows_of(
        run_deep_qa(
            make_dataset([{"file": f"{i}.jpg", "kps": k} for i, k in enumerate(kps)], schema=arm)
        ).findings,
        "qa.pose_coverage",
    )
    assert sorted(f["message"].split(" (")[0] for f in found) == [
        "no elbow bent 135-180 degrees",
        "no elbow bent 45-90 degrees",
        "no elbow bent 90-135 degrees",
    ]
