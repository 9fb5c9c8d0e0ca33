"""Left/right swaps: a true swap is found, a symmetric pose is not flagged."""

from __future__ import annotations

import numpy as np

from kpdeliver.qa import run_deep_qa
from kpdeliver.qa.swaps import swap_evidence, track_swapped_pairs
from kpdeliver.schema import COCO17
from tests.qa._poses import FRONT, K, make_dataset, noisy, pose, rows_of, swapped


def test_swap_against_gold_is_found_and_named():
    truth = pose()
    ds = make_dataset([{"file": "a.jpg", "kps": swapped(truth, "wrist")}, {"file": "b.jpg", "kps": truth}])
    gold = make_dataset([{"file": "a.jpg", "kps": truth}, {"file": "b.jpg", "kps": truth}], id_offset=500)
    found = rows_of(run_deep_qa(ds, gold=gold).findings, "qa.left_right_swap")
    assert len(found) == 1
    assert found[0]["annotation_id"] == 1 and found[0]["keypoint"] == "left_wrist"
    assert found[0]["severity"] == "error" and "left_wrist/right_wrist" in found[0]["message"]


def test_mirrored_instance_is_one_finding_without_keypoint():
    truth = pose()
    mirrored = truth[COCO17.flip_idx]
    ds = make_dataset([{"file": "a.jpg", "kps": mirrored}])
    gold = make_dataset([{"file": "a.jpg", "kps": truth}])
    found = rows_of(run_deep_qa(ds, gold=gold).findings, "qa.left_right_swap")
    assert len(found) == 1 and found[0]["keypoint"] is None and "mirrored" in found[0]["message"]
    # the exchanged flags of a mirrored instance are not reported again as visibility mismatches
    assert not [
        r for r in run_deep_qa(ds, gold=gold).findings.to_pylist() if r["message"].startswith("visibility")
    ]


def test_symmetric_pose_is_not_flagged():
    # hands clasped in front of the body and a side view (shoulders, hips on one line): exchanging
    # two points that coincide changes nothing, in either labeling order
    xy = FRONT.copy()
    xy[[K["left_wrist"], K["right_wrist"]]] = [0, -60]
    xy[[K["left_shoulder"], K["right_shoulder"]]] = [0, -120]
    xy[[K["left_hip"], K["right_hip"]]] = [1, 0]
    truth = pose(xy=xy)
    rng = np.random.default_rng(0)
    labels = [
        {
            "file": f"{i}.jpg",
            "kps": noisy(swapped(truth, "wrist", "shoulder", "hip") if i % 2 else truth, rng, 1.5),
        }
        for i in range(10)
    ]
    gold = make_dataset([{"file": f"{i}.jpg", "kps": truth} for i in range(10)], id_offset=100)
    assert rows_of(run_deep_qa(make_dataset(labels), gold=gold).findings, "qa.left_right_swap") == []
    ev = swap_evidence(truth[None], swapped(truth, "wrist")[None], np.array([20000.0]), COCO17)
    assert np.nanmax(ev.pair_gain) < 0.05  # no pair gains from being exchanged


def test_consensus_blames_the_odd_one_out_and_hedges_with_two_labels():
    rng = np.random.default_rng(1)
    truth = pose()
    three = [
        {
            "file": "x.jpg",
            "annotator": a,
            "kps": noisy(swapped(truth, "knee") if a == "B" else truth, rng, 1.0),
        }
        for a in "ABC"
    ]
    found = rows_of(run_deep_qa(make_dataset(three)).findings, "qa.left_right_swap")
    assert [(f["annotator"], f["keypoint"], f["severity"]) for f in found] == [("B", "left_knee", "error")]
    two = three[:2]
    found = rows_of(run_deep_qa(make_dataset(two)).findings, "qa.left_right_swap")
    assert sorted(f["annotator"] for f in found) == ["A", "B"]
    assert {f["severity"] for f in found} == {"warning"}


def test_video_swap_between_frames_without_reference():
    rng = np.random.default_rng(2)
    labels = []
    for f in range(20):
        kps = noisy(pose(cx=300 + 4 * f), rng, 0.7)
        if f in (9, 10):
            kps = swapped(kps, "ankle")
        labels.append({"file": f"v/{f}.jpg", "track": 1, "frame": f, "kps": kps})
    found = rows_of(run_deep_qa(make_dataset(labels)).findings, "qa.left_right_swap")
    assert sorted(f["annotation_id"] for f in found) == [10, 11]  # frames 9 and 10
    assert {f["keypoint"] for f in found} == {"left_ankle"}
    # and the exchanged points are not reported again as jitter
    assert rows_of(run_deep_qa(make_dataset(labels)).findings, "qa.temporal_jitter") == []


def test_fast_motion_is_not_a_video_swap():
    # the eyes are 16 px apart; the body moves 30 px per frame: frame-to-frame, each eye lands near
    # where the other eye was, yet nothing is exchanged
    rng = np.random.default_rng(3)
    kps = np.stack([noisy(pose(cx=100 + 30 * f), rng, 0.5) for f in range(25)])
    new_track = np.zeros(25, bool)
    new_track[0] = True
    flagged = track_swapped_pairs(kps, np.full(25, 17000.0), new_track, COCO17, pair_swap_gain=0.8)
    assert not flagged.any()


def test_mirrored_last_frame_of_a_walker_is_one_swap_not_jitter():
    # walking 14 px per frame, the last frame but one labeled mirrored; the ears exchange their flags too
    # (one ear unlabeled), so the whole frame is the swap and nothing is left over as jumps or flicker
    rng = np.random.default_rng(5)
    labels = []
    for f in range(20):
        kps = noisy(pose(cx=200 + 14 * f), rng, 0.5)
        kps[K["right_ear"]] = 0.0
        if f == 18:
            kps = kps[COCO17.flip_idx]
        labels.append({"file": f"v/{f}.jpg", "track": 1, "frame": f, "kps": kps})
    findings = run_deep_qa(make_dataset(labels)).findings
    found = rows_of(findings, "qa.left_right_swap")
    assert [(f["annotation_id"], f["keypoint"]) for f in found] == [
        (19, None)
    ]  # every pair: no keypoint named
    assert rows_of(findings, "qa.temporal_jitter") == []
