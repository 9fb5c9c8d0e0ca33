"""Issue 11, class 4: a COCO file written by kpdeliver scores itself AP 1.0 in pycocotools'
COCOeval (keypoints) whenever its instances have area. A matched ground-truth id 0 counts as
unmatched there (self-AP 0.25 on a real file), so written files never carry annotation id 0."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from kpdeliver.codecs.coco import decode, encode
from kpdeliver.collect.files import read_annotations

ROOT = Path(__file__).resolve().parents[3]
EXTERNAL = ROOT.parent / "shared" / "fixtures" / "external"
WITH_AREA = [
    ROOT / "tests/fixtures/real/super-gradients/person_keypoints_val2017.json",
    ROOT / "tests/fixtures/real/xtcocoapi/example_crowdpose_val.json",
    EXTERNAL / "mmpose/coco/test_coco.json",
    EXTERNAL / "mmpose/300vw/anno_300vw.json",  # annotation ids start at 0
]


def self_ap(doc: dict) -> float:
    """AP of the file's own labelled instances as detections (score 1). A results file holds no
    detection for a person with no labelled point: COCOeval ignores such ground truth."""
    k = len(doc["categories"][0]["keypoints"])
    dets = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "keypoints": a["keypoints"],
            "score": 1.0,
        }
        for a in doc["annotations"]
        if any(v > 0 for v in a["keypoints"][2::3]) and not a.get("iscrowd")
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(doc)
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), "keypoints")
        ev.params.kpt_oks_sigmas = np.full(k, 0.05)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def two_people(first_id: int) -> bytes:
    kp = [[10, 10, 2, 20, 20, 2, 30, 15, 2], [60, 60, 2, 70, 70, 2, 80, 65, 2]]
    return json.dumps(
        {
            "images": [{"id": 0, "file_name": "a.jpg", "width": 100, "height": 100}],
            "annotations": [
                {
                    "id": first_id + i,
                    "image_id": 0,
                    "category_id": 1,
                    "keypoints": kp[i],
                    "num_keypoints": 3,
                    "bbox": [10 + 50 * i, 10 + 50 * i, 20, 10],
                    "area": 200,
                    "iscrowd": 0,
                }
                for i in range(2)
            ],
            "categories": [{"id": 1, "name": "p", "keypoints": ["a", "b", "c"], "skeleton": []}],
        }
    ).encode()


def test_an_id_0_file_scores_below_1_as_is_and_1_once_written():
    source = json.loads(two_people(0))
    assert self_ap(source) < 1.0  # the pycocotools behaviour this guards against
    written = json.loads(encode(decode(two_people(0)).dataset))
    assert [a["id"] for a in written["annotations"]] == [1, 2]
    assert [a["source_id"] for a in written["annotations"]] == [0, 1]
    assert self_ap(written) == 1.0


def test_ids_from_1_are_written_as_held_with_no_source_id():
    written = json.loads(encode(decode(two_people(7)).dataset))
    assert [a["id"] for a in written["annotations"]] == [7, 8]
    assert all("source_id" not in a for a in written["annotations"])


def test_source_ids_survive_a_second_round():
    once = decode(encode(decode(two_people(0)).dataset)).dataset
    assert once.instances.extra["source_id"].tolist() == [0, 1] and once.instances.id.tolist() == [1, 2]


@pytest.mark.parametrize("path", WITH_AREA, ids=lambda p: p.parent.name + "/" + p.name)
def test_written_real_files_with_area_score_themselves_ap_1(path):
    assert path.is_file(), f"{path} is missing (the shared fixtures belong at ../shared beside the clone)"
    written = json.loads(encode(read_annotations(path).dataset))
    assert all(a["id"] >= 1 for a in written["annotations"])
    assert self_ap(written) == 1.0
