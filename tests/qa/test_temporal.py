"""Temporal jitter and visibility flicker: a jump is found, a fast but smooth motion is not."""

from __future__ import annotations

import numpy as np
import pytest

from kpdeliver.qa import run_deep_qa
from kpdeliver.qa.temporal import flicker
from tests.qa._poses import FRONT, K, make_dataset, noisy, pose, rows_of


def _track(frames, *, annotator="A", track=1):
    return [
        {"file": f"{annotator}{track}/{f}.jpg", "annotator": annotator, "track": track, "frame": f, "kps": k}
        for f, k in enumerate(frames)
    ]


def test_jump_in_a_still_track_is_found_at_its_frame_and_keypoint():
    rng = np.random.default_rng(0)
    frames = [noisy(pose(), rng, 0.6) for _ in range(30)]
    frames[12][K["left_knee"], :2] += [9.0, -7.0]  # an 11 px jump while the subject stands still
    found = rows_of(run_deep_qa(make_dataset(_track(frames))).findings, "qa.temporal_jitter")
    assert [(f["annotation_id"], f["keypoint"]) for f in found] == [(13, "left_knee")]
    assert "frame 12 of track 1" in found[0]["message"] and found[0]["value"] > 0.05


def test_fast_but_smooth_motion_is_not_flagged():
    # the body accelerates to 40 px/frame while the arms swing through 100 degrees: large moves, no jumps
    rng = np.random.default_rng(1)
    frames = []
    for f in range(40):
        xy = FRONT.copy()
        ang = np.radians(50 * np.sin(f / 5))
        for side, sgn in (("left", 1), ("right", -1)):
            sh = xy[K[f"{side}_shoulder"]]
            rot = np.array([[np.cos(sgn * ang), -np.sin(sgn * ang)], [np.sin(sgn * ang), np.cos(sgn * ang)]])
            for j in ("elbow", "wrist"):
                xy[K[f"{side}_{j}"]] = sh + rot @ (FRONT[K[f"{side}_{j}"]] - FRONT[K[f"{side}_shoulder"]])
        frames.append(noisy(pose(cx=100 + 0.5 * f * f, cy=400 - 2 * f, xy=xy), rng, 0.6))
    result = run_deep_qa(make_dataset(_track(frames)))
    assert rows_of(result.findings, "qa.temporal_jitter") == []
    assert rows_of(result.findings, "qa.left_right_swap") == []


def test_jitter_is_judged_per_track():
    # a shaky track and a calm one: the calm track's one jump is found, the shaky track's shake is its norm
    rng = np.random.default_rng(2)
    shaky = [noisy(pose(), rng, 4.0) for _ in range(30)]
    calm = [noisy(pose(), rng, 0.5) for _ in range(30)]
    calm[20][K["nose"], :2] += 8.0
    ds = make_dataset(_track(shaky, track=1) + _track(calm, track=2))
    found = rows_of(run_deep_qa(ds).findings, "qa.temporal_jitter")
    assert [(f["annotation_id"], f["keypoint"]) for f in found] == [(51, "nose")]


def test_flicker_short_runs_only():
    v = np.array([2, 2, 2, 0, 2, 2, 1, 1, 1, 1, 1, 2, 2, 2, 1, 2, 2])[:, None]
    new_track = np.zeros(len(v), bool)
    new_track[0] = True
    fl = flicker(v, new_track, window=2)
    assert np.flatnonzero(fl.flagged[:, 0]).tolist() == [
        3,
        14,
    ]  # 2->0->2 and 2->1->2; the long occlusion is real
    assert fl.before[3, 0] == 2 and fl.run_length[3, 0] == 1


def test_flicker_does_not_cross_tracks_and_is_reported():
    v = np.array([2, 2, 0, 2, 2, 0, 2, 2])[:, None]
    new_track = np.array([1, 0, 0, 0, 0, 1, 0, 0], bool)  # the 0 at row 5 opens a new track
    assert np.flatnonzero(flicker(v, new_track, window=2).flagged[:, 0]).tolist() == [2]
    rng = np.random.default_rng(3)
    frames = [noisy(pose(), rng, 0.5) for _ in range(12)]
    frames[6][K["right_knee"]] = [0, 0, 0]
    found = list(rows_of(run_deep_qa(make_dataset(_track(frames))).findings, "qa.temporal_jitter"))
    assert [(f["annotation_id"], f["keypoint"]) for f in found] == [(7, "right_knee")]
    assert found[0]["message"].startswith(
        "visibility of right_knee flickers visible -> not labeled -> visible"
    )


def test_tracks_of_different_export_files_stay_apart():
    # two videos from one annotator both use track id 1 and frames 0..19; their sources tell them apart,
    # so the jump in the second video is seen (merged, its frames would collide with the first's)
    rng = np.random.default_rng(4)
    second = [noisy(pose(cx=900), rng, 0.5) for _ in range(20)]
    second[10][K["nose"], :2] += [8.0, 6.0]
    labels = _track([noisy(pose(cx=300), rng, 0.5) for _ in range(20)])
    labels += [dict(lab, file="other/" + lab["file"]) for lab in _track(second)]
    ds = make_dataset(labels)
    ds.instances.extra["source"] = np.array(["v1.json"] * 20 + ["v2.json"] * 20, dtype=object)
    found = rows_of(run_deep_qa(ds).findings, "qa.temporal_jitter")
    assert [(f["annotation_id"], f["keypoint"], f["source"]) for f in found] == [(31, "nose", "v2.json")]


def test_jump_in_the_last_frame_is_blamed_on_that_frame():
    # at a track's end the path is carried on from two frames on one side: the jump must not be pinned
    # on the frame before it, which the jump pulls off its interpolated path
    rng = np.random.default_rng(6)
    frames = [noisy(pose(cx=200 + 6 * f), rng, 0.4) for f in range(25)]
    frames[24][K["left_wrist"], :2] += [12.0, 9.0]
    found = rows_of(run_deep_qa(make_dataset(_track(frames))).findings, "qa.temporal_jitter")
    assert [(f["annotation_id"], f["keypoint"]) for f in found] == [(25, "left_wrist")]


def test_a_sudden_stop_is_not_a_jump():
    # an ankle swings forward at 15 px per frame for 5 frames, then is planted for 5: its speed changes
    # by 15 px per frame within one frame, a large kink in its path but no displacement the next frames undo
    rng = np.random.default_rng(7)
    frames = []
    for f in range(30):
        kps = pose()
        kps[K["left_ankle"], 0] += 15.0 * (5 * (f // 10) + min(f % 10, 5))
        frames.append(noisy(kps, rng, 0.4))
    assert rows_of(run_deep_qa(make_dataset(_track(frames))).findings, "qa.temporal_jitter") == []


def test_flicker_blames_the_odd_frames_and_sees_track_ends():
    # 1 1 1 2 1 1 2 1 1 1: the two single 2s are the odd ones out, not the 1s between them; a single
    # different frame at either end of a steady track is reported too
    v = np.array([1, 1, 1, 2, 1, 1, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0])[:, None]
    new_track = np.zeros(len(v), bool)
    new_track[[0, 10]] = True
    fl = flicker(v, new_track, window=2)
    assert np.flatnonzero(fl.flagged[:, 0]).tolist() == [3, 6, 16]
    assert fl.at_end[:, 0].tolist() == [i == 16 for i in range(len(v))]


def _walk(n_frames=40, seed=10):
    """A subject walking right at 6 px per frame with the arms swinging: smooth, moderately fast."""
    rng = np.random.default_rng(seed)
    frames = []
    for f in range(n_frames):
        xy = FRONT.copy()
        xy[[K["left_wrist"], K["right_wrist"]], 0] += [25 * np.sin(f / 3), -25 * np.sin(f / 3)]
        frames.append(noisy(pose(cx=200 + 6 * f, xy=xy), rng, 0.4))
    return frames


@pytest.mark.parametrize("length", [1, 2, 3])
def test_an_excursion_of_one_to_three_frames_gives_a_finding_on_each_of_its_frames(length):
    frames = _walk()
    for f in range(20, 20 + length):
        frames[f][K["left_elbow"], :2] += [14.0, -10.0]  # the point leaves its path and comes back
    found = rows_of(run_deep_qa(make_dataset(_track(frames))).findings, "qa.temporal_jitter")
    # annotation ids are frame + 1: every displaced frame's annotation is told, naming the keypoint
    assert [(f["annotation_id"], f["keypoint"]) for f in found] == [
        (21 + i, "left_elbow") for i in range(length)
    ]
    named = (
        "frame 20 of track 1" if length == 1 else f"for {length} frames, frames 20-{19 + length} of track 1"
    )
    assert all(named in f["message"] and f["value"] > 0.05 for f in found)
    if length > 1:
        assert [f["message"].rsplit("; ", 1)[1] for f in found] == [
            f"this is frame {20 + i}" for i in range(length)
        ]


def test_each_frame_of_an_excursion_in_two_annotators_tracks_carries_its_own_finding():
    frames = _walk(seed=3)
    for f in (10, 11):
        frames[f][K["right_wrist"], :2] += [-12.0, 12.0]
    labels = _track(frames, annotator="A") + _track(frames, annotator="B")
    found = rows_of(run_deep_qa(make_dataset(labels)).findings, "qa.temporal_jitter")
    assert sorted((f["annotator"], f["annotation_id"], f["keypoint"]) for f in found) == [
        ("A", 11, "right_wrist"),
        ("A", 12, "right_wrist"),
        ("B", 51, "right_wrist"),
        ("B", 52, "right_wrist"),
    ]


def test_fast_turns_and_a_step_that_stays_are_motion_not_excursions():
    # the body rushes right at 30 px per frame and turns back at once at frame 18 (sustained), the arms
    # swing fast, and at frame 28 the left wrist moves 17 px to a new place and stays there
    rng = np.random.default_rng(11)
    frames = []
    for f in range(40):
        xy = FRONT.copy()
        xy[[K["left_wrist"], K["right_wrist"]], 0] += [40 * np.sin(f / 2), -40 * np.sin(f / 2)]
        if f >= 28:
            xy[K["left_wrist"]] += [15.0, -8.0]
        cx = 200 + 30 * f if f <= 18 else 200 + 30 * 18 - 30 * (f - 18)
        frames.append(noisy(pose(cx=cx, cy=400 + 0.3 * f * f, xy=xy), rng, 0.4))
    result = run_deep_qa(make_dataset(_track(frames)))
    assert rows_of(result.findings, "qa.temporal_jitter") == []
    assert rows_of(result.findings, "qa.left_right_swap") == []


def test_a_step_that_stays_is_not_an_excursion_but_a_step_that_returns_is():
    frames = _walk(seed=12)
    for f in range(20, 40):
        frames[f][K["right_knee"], :2] += [15.0, 10.0]  # moved at frame 20 and never back
    assert rows_of(run_deep_qa(make_dataset(_track(frames))).findings, "qa.temporal_jitter") == []
    for f in range(23, 40):
        frames[f][K["right_knee"], :2] -= [15.0, 10.0]  # back after three frames: an excursion
    found = rows_of(run_deep_qa(make_dataset(_track(frames))).findings, "qa.temporal_jitter")
    assert [(f["annotation_id"], f["keypoint"]) for f in found] == [
        (21, "right_knee"),
        (22, "right_knee"),
        (23, "right_knee"),
    ]
    assert all("frames 20-22 of track 1" in f["message"] for f in found)
