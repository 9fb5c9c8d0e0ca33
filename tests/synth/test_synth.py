"""Synthetic data: deterministic, plausible, clean where it says so, and every injected mistake
is exactly one that was recorded."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from PIL import Image
from pycocotools.coco import COCO

from kpdeliver.codecs.coco import decode, encode
from kpdeliver.config import load_config
from kpdeliver.schema import COCO17
from kpdeliver.synth import (
    Drift,
    ErrorRates,
    sample_poses,
    sample_tracks,
    simulate_annotator,
    swap_oks,
    synthetic_coco,
    synthetic_dataset,
    video_dataset,
)
from kpdeliver.synth.demo import make_demo_batch


def _inside(kps, w, h):
    w = np.asarray(w, float).reshape(-1, 1)
    h = np.asarray(h, float).reshape(-1, 1)
    return (kps[..., 0] >= 0) & (kps[..., 0] < w) & (kps[..., 1] >= 0) & (kps[..., 1] < h)


def _assert_clean(kps, bbox, w, h):
    v = kps[..., 2]
    assert set(np.unique(v)) <= {0.0, 1.0, 2.0}
    assert _inside(kps, w, h)[v == 2].all(), "a visible point lies outside its image"
    assert (kps[v == 0][:, :2] == 0).all(), "an unlabeled point has coordinates"
    lab = v > 0
    x, y = kps[..., 0], kps[..., 1]
    x0, y0, x1, y1 = bbox[:, :1], bbox[:, 1:2], bbox[:, :1] + bbox[:, 2:3], bbox[:, 1:2] + bbox[:, 3:4]
    eps = 0.011  # boxes are rounded to 0.01 px
    assert (((x >= x0 - eps) & (x <= x1 + eps) & (y >= y0 - eps) & (y <= y1 + eps)) | ~lab).all()
    assert (lab.sum(axis=1) >= 3).all()


def test_sample_poses_is_deterministic_and_shaped():
    a = sample_poses(500, rng=np.random.default_rng(7), width=640, height=480)
    b = sample_poses(500, rng=np.random.default_rng(7), width=640, height=480)
    c = sample_poses(500, rng=np.random.default_rng(8), width=640, height=480)
    assert a[0].shape == (500, 17, 3) and a[0].dtype == np.float64 and a[1].shape == (500, 4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_sample_poses_are_clean_with_a_realistic_visibility_mix():
    rng = np.random.default_rng(0)
    n = 20_000
    w = rng.choice([640, 480, 1280], n)
    h = rng.choice([480, 640, 720], n)
    kps, bbox = sample_poses(n, rng=rng, width=w, height=h)
    _assert_clean(kps, bbox, w, h)
    v = kps[..., 2]
    assert 0.65 < (v == 2).mean() < 0.9
    assert 0.05 < (v == 1).mean() < 0.25
    assert 0.01 < (v == 0).mean() < 0.15
    # some occluded points are estimated just outside the frame, never far
    out = (v == 1) & ~_inside(kps, w, h)
    assert 0 < out.sum() < 0.02 * out.size
    side = np.maximum(w, h)[:, None]
    assert (
        np.maximum.reduce([-kps[..., 0], kps[..., 0] - w[:, None], -kps[..., 1], kps[..., 1] - h[:, None]])[
            out
        ]
        <= 0.031 * np.broadcast_to(side, out.shape)[out]
    ).all()


def test_a_dataset_can_leave_out_a_pose_family():
    full = synthetic_dataset(100, 2000, seed=2).instances.keypoints
    some = synthetic_dataset(100, 2000, seed=2, families=("standing", "walking")).instances.keypoints

    def overhead(k):
        lab = k[..., 2] > 0
        return (
            lab[:, 0] & lab[:, 9] & lab[:, 10] & (k[:, 9, 1] < k[:, 0, 1]) & (k[:, 10, 1] < k[:, 0, 1])
        ).mean()

    assert overhead(full) > 0.04 and overhead(some) < 0.005


def test_sample_poses_cover_varied_poses_and_scales():
    kps, bbox = sample_poses(5000, rng=np.random.default_rng(1), width=640, height=480)
    lab = kps[..., 2] > 0
    nose_y = np.where(lab[:, 0], kps[:, 0, 1], np.nan)
    wrists_up = (lab[:, 9] & lab[:, 10] & (kps[:, 9, 1] < nose_y) & (kps[:, 10, 1] < nose_y)).mean()
    lying = (bbox[:, 2] > 1.3 * bbox[:, 3]).mean()
    # squatting: knees about as high as hips
    hip_y, knee_y = kps[:, 11:13, 1].mean(axis=1), kps[:, 13:15, 1].mean(axis=1)
    thigh = np.linalg.norm(kps[:, 11, :2] - kps[:, 13, :2], axis=1)
    squat = (lab[:, 11:15].all(axis=1) & (knee_y - hip_y < 0.5 * thigh)).mean()
    assert wrists_up > 0.04 and lying > 0.04 and squat > 0.04
    heights = bbox[:, 3]
    assert heights.max() / np.median(heights) > 1.8 and np.median(heights) / heights.min() > 2


def test_synthetic_coco_loads_in_pycocotools_and_is_clean(tmp_path):
    data = synthetic_coco(300, 1200, seed=4)
    assert data == synthetic_coco(300, 1200, seed=4)
    assert data != synthetic_coco(300, 1200, seed=5)
    path = tmp_path / "syn.json"
    path.write_bytes(data)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    assert len(coco.getImgIds()) == 300 and len(coco.getAnnIds()) == 1200
    anns = coco.loadAnns(coco.getAnnIds())
    size = {i["id"]: (i["width"], i["height"]) for i in coco.dataset["images"]}
    kps = np.array([a["keypoints"] for a in anns], float).reshape(-1, 17, 3)
    assert all(isinstance(x, int) for a in anns[:50] for x in a["keypoints"][2::3])
    assert [a["num_keypoints"] for a in anns] == (kps[..., 2] > 0).sum(axis=1).tolist()
    assert all(a["area"] > 0 and len(a["bbox"]) == 4 for a in anns)
    wh = np.array([size[a["image_id"]] for a in anns])
    _assert_clean(kps, np.array([a["bbox"] for a in anns]), wh[:, 0], wh[:, 1])
    assert coco.dataset["categories"][0]["keypoints"] == list(COCO17.keypoints)


def test_synthetic_coco_has_the_counts_asked_for():
    # its speed at 100k instances is bench/synth.py's business, not a test's
    doc = orjson.loads(synthetic_coco(2_000, 10_000, seed=0))
    assert len(doc["annotations"]) == 10_000 and len(doc["images"]) == 2_000


def test_tracks_move_smoothly_with_steady_visibility():
    tr = sample_tracks(6, 60, rng=np.random.default_rng(3), width=1280, height=720)
    assert tr.keypoints.shape == (360, 17, 3) and tr.track_id.tolist() == np.repeat(np.arange(6), 60).tolist()
    assert tr.frame.tolist() == np.tile(np.arange(60), 6).tolist()
    _assert_clean(tr.keypoints, tr.bbox, 1280, 720)
    k = tr.keypoints.reshape(6, 60, 17, 3)
    assert (k[:, 1:, :, 2] == k[:, :1, :, 2]).all(), "visibility flickers inside a clean track"
    scale = np.sqrt(tr.area).reshape(6, 60)
    lab = k[:, 0, :, 2] > 0
    step = np.linalg.norm(np.diff(k[..., :2], axis=1), axis=-1) / scale[:, 1:, None]
    accel = np.linalg.norm(np.diff(k[..., :2], 2, axis=1), axis=-1) / scale[:, 2:, None]
    assert step[np.broadcast_to(lab[:, None], step.shape)].max() < 0.3
    assert accel[np.broadcast_to(lab[:, None], accel.shape)].max() < 0.12
    assert step[np.broadcast_to(lab[:, None], step.shape)].mean() > 0.002, "nobody moves"


def test_video_dataset_round_trips_through_coco_with_tracks():
    ds = video_dataset(3, tracks_per_video=(2, 2), n_frames=10, seed=2)
    assert len(ds.images) == 30 and len(ds.instances) == 60
    assert len(np.unique(ds.instances.track_id)) == 6
    back = decode(encode(ds), schema=COCO17).dataset
    assert np.array_equal(back.instances.track_id, ds.instances.track_id)
    assert np.array_equal(back.instances.frame, ds.instances.frame)
    assert np.array_equal(back.instances.keypoints, ds.instances.keypoints)


def _oks(a, b, area):
    lab = b[..., 2] > 0
    d2 = ((a[..., :2] - b[..., :2]) ** 2).sum(-1)
    e = d2 / (2 * COCO17.sigma_array) ** 2 / area[:, None] / 2
    return (np.exp(-e) * lab).sum(1) / lab.sum(1)


def test_annotator_without_mistakes_is_close_to_the_truth():
    truth = synthetic_dataset(100, 400, seed=1)
    ann, inj = simulate_annotator(truth, annotator="ann_a", rng=np.random.default_rng(0))
    assert inj.num_rows == 0
    assert np.array_equal(ann.instances.v, truth.instances.v)
    assert np.array_equal(ann.instances.id, truth.instances.id)
    assert set(ann.instances.annotator) == {"ann_a"}
    oks = _oks(ann.instances.keypoints, truth.instances.keypoints, truth.instances.area)
    assert 0.85 < oks.mean() < 0.995
    w = truth.images.width[truth.image_index()]
    h = truth.images.height[truth.image_index()]
    _assert_clean(ann.instances.keypoints, ann.instances.bbox, w, h)


RATES = ErrorRates(
    to_visible=0.1,
    to_occluded=0.1,
    swap=0.1,
    outside=0.05,
    jump=0.1,
    flicker=0.05,
    convention={"left_shoulder": (0.0, -0.05)},
    drift=Drift(start=0.6, keypoints=("left_hip",)),
)


def test_injected_mistakes_are_exactly_the_recorded_ones():
    truth = video_dataset(6, tracks_per_video=(2, 3), n_frames=30, seed=5)
    ann, inj = simulate_annotator(
        truth, annotator="ann_b", rng=np.random.default_rng(1), rates=RATES, noise=0.0
    )
    t, a = truth.instances.keypoints, ann.instances.keypoints
    changed = (t != a).any(axis=-1)
    kp = {n: i for i, n in enumerate(COCO17.keypoints)}
    recorded = np.zeros_like(changed)
    rows = inj["row"].to_numpy()
    kinds = inj["kind"].to_pylist()
    names = inj["keypoint"].to_pylist()
    for r, _kind, name in zip(rows, kinds, names):
        if name is None:
            recorded[r] = True
        else:
            recorded[r, kp[name]] = True
    assert not (changed & ~recorded).any(), "a point changed without a record"
    point_rows = [(r, kp[n]) for r, n in zip(rows, names) if n is not None]
    assert all(changed[r, c] for r, c in point_rows), "a record names a point that did not change"
    for r in rows[[n is None for n in names]]:
        assert changed[r].any()
    counts = {k: kinds.count(k) for k in set(kinds)}
    assert set(counts) == {
        "to_visible",
        "to_occluded",
        "left_right_swap",
        "outside_image",
        "jump",
        "flicker",
        "convention",
        "drift",
    }
    # one point mistake per instance at most
    point_kinds = pa.array(
        ["to_visible", "to_occluded", "left_right_swap", "outside_image", "jump", "flicker"]
    )
    single = inj.filter(pc.is_in(inj["kind"], value_set=point_kinds))
    assert len(set(single["row"].to_pylist())) == single.num_rows
    # each kind did what it says
    w = truth.images.width[truth.image_index()]
    h = truth.images.height[truth.image_index()]
    by = {k: [(r, kp.get(n)) for r, kk, n in zip(rows, kinds, names) if kk == k] for k in counts}
    assert all(t[r, c, 2] == 1 and a[r, c, 2] == 2 for r, c in by["to_visible"])
    assert all(t[r, c, 2] == 2 and a[r, c, 2] == 1 for r, c in by["to_occluded"])
    systematic = {(r, c) for k in ("convention", "drift") for r, c in by[k]}
    for r, _ in by["left_right_swap"]:  # the swap moved any systematic offset along with its point
        keep = [c for c in range(17) if (r, c) not in systematic]
        assert np.array_equal(a[r][COCO17.flip_idx][keep], t[r][keep])
    outside = [(r, c) for r, c in by["outside_image"]]
    assert all(a[r, c, 2] == 2 and not _inside(a[r : r + 1, c : c + 1], w[r], h[r])[0, 0] for r, c in outside)
    assert all(truth.instances.track_id[r] >= 0 for r, _ in by["jump"] + by["flicker"])
    assert all(t[r, c, 2] == 2 and (a[r, c] == 0).all() for r, c in by["flicker"])
    assert all(
        np.hypot(*(a[r, c, :2] - t[r, c, :2])) >= 0.2 * np.sqrt(truth.instances.area[r]) - 0.02
        for r, c in by["jump"]
    )
    order = inj.filter(pc.equal(inj["kind"], "drift"))["order"].to_numpy()
    assert order.min() >= int(np.ceil(0.6 * len(truth.instances)))
    # swaps only where they are observable
    swapped = np.array([r for r, _ in by["left_right_swap"]])
    assert (
        swap_oks(t[swapped], COCO17.sigma_array, COCO17.flip_idx, truth.instances.area[swapped]) < 0.5
    ).all()


def test_annotator_simulation_is_deterministic():
    truth = synthetic_dataset(50, 200, seed=3)
    a1, i1 = simulate_annotator(truth, annotator="x", rng=np.random.default_rng(9), rates=RATES)
    a2, i2 = simulate_annotator(truth, annotator="x", rng=np.random.default_rng(9), rates=RATES)
    assert np.array_equal(a1.instances.keypoints, a2.instances.keypoints) and i1.to_pandas().equals(
        i2.to_pandas()
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    make_demo_batch(root, seed=11)
    return root


def _files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_demo_batch_layout_config_and_images(demo, tmp_path):
    cfg = load_config(demo / "client.yaml")
    assert (
        Path(cfg.source) == (demo / "batch").resolve() and Path(cfg.releases) == (demo / "releases").resolve()
    )
    assert cfg.annotators == ["ann_a", "ann_b", "ann_c"] and cfg.schema_name == "coco17"
    images = sorted((demo / "batch/images").glob("*.jpg"))
    assert len(images) == 36
    sums = dict(
        reversed(line.split("  ")) for line in (demo / "batch/checksums.sha256").read_text().splitlines()
    )
    for p in images:
        data = p.read_bytes()
        assert len(data) < 120_000
        assert sums[f"images/{p.name}"] == hashlib.sha256(data).hexdigest()
        with Image.open(p) as im:
            assert im.format == "JPEG" and im.size in {(640, 480), (480, 640), (800, 600)}
    assert (demo / "releases").is_dir() and not any((demo / "releases").iterdir())
    again = tmp_path / "again"
    make_demo_batch(again, seed=11)
    assert _files(again) == _files(demo)


def _export(demo: Path, annotator: str) -> dict:
    return json.loads((demo / "batch/annotations" / annotator / "person_keypoints.json").read_text())


def test_demo_exports_follow_the_assignment_and_load_in_pycocotools(demo):
    from kpdeliver.assign.assignments import assign_annotators
    from kpdeliver.model import Images

    cfg = load_config(demo / "client.yaml")
    names = sorted(p.name for p in (demo / "batch/images").glob("*.jpg"))
    table = assign_annotators(
        Images.build(id=np.arange(1, 37), file_name=names), cfg.annotators, cfg.assignment
    )
    roles = table["role"].to_pylist()
    assert roles.count("overlap") >= 3 and roles.count("gold") == 3 * len(cfg.assignment.gold) > 0
    for a in cfg.annotators:
        assigned = {
            f for f, who in zip(table["file_name"].to_pylist(), table["annotator"].to_pylist()) if who == a
        }
        doc = _export(demo, a)
        assert {i["file_name"] for i in doc["images"]} == assigned
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(demo / "batch/annotations" / a / "person_keypoints.json"))
        assert len(coco.getAnnIds()) == len(doc["annotations"]) > 0
    gold = json.loads((demo / "batch/gold/person_keypoints.json").read_text())
    assert sorted(i["file_name"] for i in gold["images"]) == sorted(cfg.assignment.gold)


def test_demo_mistakes_are_exactly_those_in_truth(demo):
    truth = json.loads((demo / "truth.json").read_text())
    kinds = [m["kind"] for m in truth["mistakes"]]
    assert sorted(kinds) == sorted(
        [
            "left_right_swap",
            "to_visible",
            "to_occluded",
            "visible_outside",
            "outside_image",
            "unlabeled_with_coords",
            "keypoint_count",
            "unknown_image",
        ]
    )
    gold = json.loads((demo / "batch/gold/person_keypoints.json").read_text())
    gold_name = {i["id"]: i["file_name"] for i in gold["images"]}
    kp = {n: i for i, n in enumerate(COCO17.keypoints)}
    found = []
    for a in ("ann_a", "ann_b", "ann_c"):
        doc = _export(demo, a)
        size = {i["id"]: (i["width"], i["height"], i["file_name"]) for i in doc["images"]}
        decoded = decode(json.dumps(doc).encode(), schema=COCO17, source=a)
        for row in decoded.findings.to_pylist():
            found.append((a, row["annotation_id"], None, row["check"]))
        for ann in doc["annotations"]:
            if ann["image_id"] not in size:
                found.append((a, ann["id"], None, "schema.unknown_image"))
                continue
            if len(ann["keypoints"]) != 51:
                continue
            w, h, name = size[ann["image_id"]]
            k = np.array(ann["keypoints"], float).reshape(17, 3)
            inside = (k[:, 0] >= 0) & (k[:, 0] < w) & (k[:, 1] >= 0) & (k[:, 1] < h)
            for c in np.flatnonzero((k[:, 2] == 2) & ~inside):
                found.append((a, ann["id"], COCO17.keypoints[c], "bounds.visible_outside_image"))
            for c in np.flatnonzero((k[:, 2] == 0) & (k[:, :2] != 0).any(axis=1)):
                found.append((a, ann["id"], COCO17.keypoints[c], "visibility.unlabeled_with_coords"))
            if name in gold_name.values():  # against gold: flags and swaps
                ref = [
                    np.array(g["keypoints"], float).reshape(17, 3)
                    for g in gold["annotations"]
                    if gold_name[g["image_id"]] == name
                ]
                g = min(
                    ref, key=lambda r: np.nanmean(np.abs(r[:, :2] - k[:, :2])[(r[:, 2] > 0) & (k[:, 2] > 0)])
                )
                g_flip = g[COCO17.flip_idx]
                if np.abs(g_flip - k)[:, :2].max() < np.abs(g - k)[:, :2].max():
                    found.append((a, ann["id"], None, "qa.left_right_swap"))
                    continue
                for c in np.flatnonzero(g[:, 2] != k[:, 2]):
                    found.append((a, ann["id"], COCO17.keypoints[c], "qa.gold_mismatch"))
    expected = {
        (
            m["annotator"],
            m["annotation_id"],
            m["keypoint"]
            if m["expected_check"]
            not in ("schema.keypoint_count", "schema.unknown_image", "qa.left_right_swap")
            else None,
            m["expected_check"],
        )
        for m in truth["mistakes"]
    }
    assert set(found) == expected
    assert all(m["keypoint"] is None or m["keypoint"] in kp for m in truth["mistakes"])


def test_team_deals_overlap_gold_and_whole_videos():
    from kpdeliver.model import Dataset, concat_images, concat_instances
    from kpdeliver.synth import simulate_team

    still = synthetic_dataset(120, 300, seed=6)
    video = video_dataset(6, n_frames=20, seed=7, first_image_id=10_001, first_instance_id=100_001)
    truth = Dataset(
        COCO17,
        concat_images([still.images, video.images]),
        concat_instances([still.instances, video.instances], 17),
    )
    team = simulate_team(truth, rates={"ann_b": RATES}, overlap=0.25, gold=0.1, seed=4)
    ins = team.dataset.instances
    by_image = {}
    for img, who in zip(ins.image_id.tolist(), ins.annotator.tolist()):
        by_image.setdefault(img, set()).add(who)
    gold_ids = set(team.gold.images.id.tolist())
    assert len(gold_ids) == 12 and all(
        by_image[i] == {"ann_a", "ann_b", "ann_c"} for i in gold_ids if i in by_image
    )
    assert sum(len(a) == 2 for a in by_image.values()) > 10
    # a video goes whole to its annotators: every frame of a track has the same labellers
    track_people = {}
    for t, who in zip(ins.track_id.tolist(), ins.annotator.tolist()):
        if t >= 0:
            track_people.setdefault(t, []).append(who)
    assert all(len(p) == 20 * len(set(p)) for p in track_people.values())
    # truth ids map every label back to its clean instance; ids are unique
    assert len(np.unique(ins.id)) == len(ins)
    assert set(ins.extra["truth_id"].tolist()) <= set(truth.instances.id.tolist())
    # injections point at the right rows of the merged dataset
    inj = team.injections
    assert set(inj["annotator"].to_pylist()) == {"ann_b"}
    rows = inj["row"].to_numpy()
    assert np.array_equal(ins.id[rows], inj["annotation_id"].to_numpy())
    assert set(ins.annotator[rows]) == {"ann_b"}
