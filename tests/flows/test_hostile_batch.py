"""A delivery of a batch holding links of every kind and ordinary phone-photo problems: no byte
from outside the batch reaches the release, each bad file has its finding, the rest is delivered."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from kpdeliver.config import load_config
from kpdeliver.schema import COCO17
from tests.photo_fixtures import jpeg, png, png_bomb, truncated_jpeg

pytestmark = pytest.mark.slow
MARK = 123.4567  # a coordinate only the other client's export holds


def _person(i: int, image_id: int, x: float, y: float) -> dict:
    kps = [v for k in range(17) for v in (x + k, y + k, 2)]
    return {
        "id": i,
        "image_id": image_id,
        "category_id": 1,
        "iscrowd": 0,
        "num_keypoints": 17,
        "keypoints": kps,
        "bbox": [x - 1, y - 1, 19, 19],
        "area": 361.0,
    }


def _export(images: dict[int, tuple[str, int, int]], anns: list[dict]) -> str:
    return json.dumps(
        {
            "images": [{"id": i, "file_name": n, "width": w, "height": h} for i, (n, w, h) in images.items()],
            "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": list(COCO17.keypoints), "skeleton": []}],
        }
    )


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, bytes]:
    root = tmp_path_factory.mktemp("hostile")
    other = root / "other_client"
    secret = jpeg(96, 80, seed=99)
    (other / "images/sub").mkdir(parents=True)
    (other / "images/secret.jpg").write_bytes(secret)
    (other / "images/sub/secret2.jpg").write_bytes(secret + b"\0")
    (other / "annotations/ann_x").mkdir(parents=True)
    (other / "annotations/ann_x/labels.json").write_text(
        _export({1: ("img_0.jpg", 96, 80)}, [_person(900, 1, MARK, 20)])
    )
    batch = root / "batch"
    (batch / "images").mkdir(parents=True)
    for n in range(3):
        (batch / f"images/img_{n}.jpg").write_bytes(jpeg(96, 80, seed=n))
    (batch / "images/phone.jpg").write_bytes(jpeg(96, 80, seed=7, orientation=6))  # displayed 80 x 96
    (batch / "images/really_png.jpg").write_bytes(png(96, 80, seed=8))
    (batch / "images/cut.jpg").write_bytes(truncated_jpeg(96, 80, seed=9))
    (batch / "images/bomb.png").write_bytes(png_bomb())
    os.symlink(other / "images/secret.jpg", batch / "images/file_link.jpg")
    os.symlink("../../other_client/images/sub", batch / "images/dir_link")
    os.symlink(root / "missing.jpg", batch / "images/dangling.jpg")
    os.symlink("loop_b.jpg", batch / "images/loop_a.jpg")
    os.symlink("loop_a.jpg", batch / "images/loop_b.jpg")
    (batch / "annotations/ann_a").mkdir(parents=True)
    names = {
        1: ("img_0.jpg", 96, 80),
        2: ("img_1.jpg", 96, 80),
        3: ("img_2.jpg", 96, 80),
        4: ("phone.jpg", 80, 96),
        5: ("really_png.jpg", 96, 80),
    }
    (batch / "annotations/ann_a/export.json").write_text(
        _export(
            names,
            [
                _person(1, 1, 10, 10),
                _person(2, 2, 10, 10),
                _person(3, 3, 10, 10),
                _person(4, 4, 50, 70),  # inside 80 x 96 as displayed, outside the stored 96 x 80
                _person(5, 5, 10, 10),
            ],
        )
    )
    os.symlink(other / "annotations/ann_x/labels.json", batch / "annotations/ann_a/stolen.json")
    os.symlink(other / "annotations/ann_x", batch / "annotations/ann_b")
    (root / "client.yaml").write_text(
        yaml.safe_dump(
            {
                "client": "mine",
                "dataset": "pose",
                "source": "./batch",
                "releases": "./releases",
                "annotators": ["ann_a", "ann_b"],
                "splits": {"train": 1.0, "val": 0.0},
                "qa": {"max_quarantined_fraction": 1.0},
            }
        )
    )
    return root, secret


@pytest.fixture(scope="module")
def delivered(hostile, prefect_harness):
    from flows.delivery import delivery_run

    return delivery_run(load_config(hostile[0] / "client.yaml"))


def test_no_byte_from_outside_the_batch_reaches_the_release(hostile, delivered):
    root, secret = hostile
    files = [p for p in (root / "releases").rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        assert secret[-202:-2] not in data, path  # scan data, unique to the secret image
        assert str(MARK).encode() not in data, path


def test_each_link_and_bad_photo_has_its_finding(delivered):
    rel = Path(delivered.release)
    rows = pq.read_table(rel / "qa/findings.parquet").to_pylist()
    got = {(r["check"], r["file_name"]) for r in rows if r["check"].startswith("ingest.")}
    assert got == {
        ("ingest.symlink", k)
        for k in (
            "images/file_link.jpg",
            "images/dir_link",
            "images/dangling.jpg",
            "images/loop_a.jpg",
            "images/loop_b.jpg",
            "annotations/ann_a/stolen.json",
            "annotations/ann_b",
        )
    } | {
        ("ingest.corrupt_image", "images/cut.jpg"),
        ("ingest.image_too_large", "images/bomb.png"),
        ("ingest.extension_mismatch", "images/really_png.jpg"),
    }


def test_the_rest_is_delivered_with_displayed_sizes(delivered):
    rel = Path(delivered.release)
    index = {r["file_name"]: r for r in pq.read_table(rel / "index/images.parquet").to_pylist()}
    assert (
        index["phone.jpg"]["width"],
        index["phone.jpg"]["height"],
        index["phone.jpg"]["exif_orientation"],
    ) == (80, 96, 6)
    assert index["img_0.jpg"]["exif_orientation"] == 1 and index["really_png.jpg"]["status"] == "delivered"
    assert index["cut.jpg"]["status"] == "corrupt_image" and index["dir_link"]["status"] == "symlink"
    coco = json.loads((rel / "coco/train.json").read_text())
    assert len(coco["annotations"]) == 5  # phone.jpg's instance too: inside its displayed size
    assert delivered.counts["images_delivered"] == 5
