"""A batch with every kind of bad input still delivers its good items; each bad item is
quarantined with a finding that names file, item and field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from kpdeliver.config import load_config
from kpdeliver.schema import COCO17

pytestmark = pytest.mark.slow


def _jpeg(path: Path, w=200, h=160) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(sum(map(ord, path.name)))
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path, "JPEG")


def _person(i: int, image_id: int, k: int = 17) -> dict:
    rng = np.random.default_rng(i)
    xy = rng.uniform(40, 120, (k, 2)).round(2)
    kps = np.concatenate([xy, np.full((k, 1), 2.0)], axis=1)
    x0, y0 = xy.min(0) - 2
    x1, y1 = xy.max(0) + 2
    return {
        "id": i,
        "image_id": image_id,
        "category_id": 1,
        "iscrowd": 0,
        "num_keypoints": k,
        "keypoints": kps.reshape(-1).tolist(),
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "area": float((x1 - x0) * (y1 - y0)),
    }


def _export(image_names: dict[int, str], anns: list[dict]) -> str:
    return json.dumps(
        {
            "images": [
                {"id": i, "file_name": n, "width": 200, "height": 160} for i, n in image_names.items()
            ],
            "annotations": anns,
            "categories": [
                {
                    "id": 1,
                    "name": "person",
                    "keypoints": list(COCO17.keypoints),
                    "skeleton": [[a + 1, b + 1] for a, b in COCO17.skeleton],
                }
            ],
        }
    )  # json.dumps writes NaN literally, as real exporters do


@pytest.fixture(scope="module")
def bad_batch(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    batch = root / "batch"
    for n in range(6):
        _jpeg(batch / "images" / f"img_{n}.jpg")
    names_a = {1: "img_0.jpg", 2: "img_1.jpg", 3: "img_2.jpg", 4: "img_3.jpg"}
    nan_person = _person(104, 4)
    nan_person["keypoints"][0] = float("nan")
    anns_a = [
        _person(101, 1),
        _person(102, 2),
        _person(103, 3),
        nan_person,
        {**_person(105, 1, k=16)},  # wrong keypoint count
        _person(106, 999),
    ]  # unknown image id
    (batch / "annotations/ann_a").mkdir(parents=True)
    (batch / "annotations/ann_a/export.json").write_text(_export(names_a, anns_a))
    (batch / "annotations/ann_b").mkdir(parents=True)
    (batch / "annotations/ann_b/broken.json").write_text('{"images": [ {"id": 1, ')  # malformed file
    (batch / "annotations/ann_b/good.json").write_text(
        _export({7: "img_4.jpg", 8: "img_5.jpg"}, [_person(201, 7), _person(202, 8)])
    )
    (root / "client.yaml").write_text(
        yaml.safe_dump(
            {
                "client": "badco",
                "dataset": "pose",
                "schema": "coco17",
                "source": "./batch",
                "releases": "./releases",
                "annotators": ["ann_a", "ann_b"],
                "splits": {"train": 1.0, "val": 0.0},
                "qa": {"max_quarantined_fraction": 1.0},
            }
        )
    )
    return root


@pytest.fixture(scope="module")
def delivered(bad_batch, prefect_harness):
    from flows.delivery import delivery_run

    return delivery_run(load_config(bad_batch / "client.yaml"))


def test_run_finishes_and_delivers_the_good_items(delivered):
    rel = Path(delivered.release)
    coco = json.loads((rel / "coco/train.json").read_text())
    # 101 shares img_0 with 105 (refused at decode): the image is held back whole with both, so that no
    # delivered image misses a person
    assert sorted(a["id"] for a in coco["annotations"]) == [102, 103, 201, 202]
    held = {r["annotation_id"]: r["checks"] for r in pq.read_table(rel / "qa/quarantine.parquet").to_pylist()}
    assert held[101] == "image" and held[105] == "schema.keypoint_count"
    c = delivered.counts
    assert c["instances_in"] == 8  # 6 from ann_a + 2 from ann_b; the broken file had none readable
    assert (
        c["instances_delivered"] + c["instances_quarantined"] + c["instances_review_only"]
        == c["instances_in"]
    )


@pytest.mark.parametrize(
    "check, annotation_id, source_part",
    [
        ("schema.keypoint_count", 105, "ann_a/export.json"),
        ("schema.unknown_image", 106, "ann_a/export.json"),
        ("schema.non_finite", 104, "ann_a/export.json"),
        ("collect.unreadable_file", None, "ann_b/broken.json"),
    ],
)
def test_each_bad_item_has_its_finding(delivered, check, annotation_id, source_part):
    rel = Path(delivered.release)
    f = pq.read_table(rel / "qa/findings.parquet").to_pylist()
    hits = [
        r for r in f if r["check"] == check and (annotation_id is None or r["annotation_id"] == annotation_id)
    ]
    assert hits, f"no {check} finding for {annotation_id}"
    if source_part:
        assert any(source_part in (r["source"] or "") or source_part in r["message"] for r in hits)
    if annotation_id is not None:
        q = pq.read_table(rel / "qa/quarantine.parquet").to_pylist()
        held = [r for r in q if r["annotation_id"] == annotation_id]
        assert held and check in held[0]["checks"] and held[0]["raw"]


def test_quarantined_items_keep_their_raw_form(delivered):
    q = pq.read_table(Path(delivered.release) / "qa/quarantine.parquet").to_pylist()
    wrong_k = next(r for r in q if r["annotation_id"] == 105)
    assert len(json.loads(wrong_k["raw"])["keypoints"]) == 16 * 3


def test_unknown_image_finding_names_the_exports_own_image_id(delivered):
    f = pq.read_table(Path(delivered.release) / "qa/findings.parquet").to_pylist()
    hit = next(r for r in f if r["check"] == "schema.unknown_image")
    assert "image id 999" in hit["message"] and "annotations/ann_a/export.json" in hit["message"]
