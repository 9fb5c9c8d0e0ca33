"""One delivery of a real COCO export (val2017 subset) as each tool writes it, through the whole
flow: COCO with its person category declared as id 3 (annotator and gold), a YOLO Pose tree in
CVAT's layout (split list naming the background images too), a Label Studio export without
original_width/height, and the schema given as a CVAT XML by a path relative to the config.
Nothing is lost: no export unread, no category unknown, no image unsized."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from kpdeliver.codecs import coco, cvat, label_studio
from kpdeliver.codecs.registry import encode_files
from kpdeliver.config import load_config
from kpdeliver.schema import COCO17
from tests.collect.batch_helpers import REAL, placeholder

pytestmark = pytest.mark.slow

COCO_REAL = REAL / "super-gradients" / "person_keypoints_val2017.json"
GOLD_IMAGES = 4


def _with_category_3(doc: dict) -> dict:
    doc = json.loads(json.dumps(doc))
    doc["categories"][0]["id"] = 3
    for a in doc["annotations"]:
        a["category_id"] = 3
    return doc


def _cvat_yolo_tree(folder: Path, doc: dict) -> None:
    """What CVAT's "Ultralytics YOLO Pose 1.0" export holds: data.yaml naming train.txt, the list of
    every image of the subset (those without a person too), labels/train/<stem>.txt for the others."""
    ds = coco.decode(json.dumps(doc).encode(), schema=COCO17).dataset
    files = encode_files(ds, "yolo")
    labels = {k: v for k, v in files.items() if k.startswith("labels/")}
    for key, data in labels.items():
        (folder / "labels/train" / key.rsplit("/", 1)[-1]).parent.mkdir(parents=True, exist_ok=True)
        (folder / "labels/train" / key.rsplit("/", 1)[-1]).write_bytes(data)
    (folder / "train.txt").write_text("".join(f"images/train/{im['file_name']}\n" for im in doc["images"]))
    (folder / "data.yaml").write_text(
        yaml.safe_dump({"path": ".", "train": "train.txt", "names": {0: "person"}, "kpt_shape": [17, 3]})
    )


def _label_studio_without_sizes(doc: dict) -> str:
    ds = coco.decode(json.dumps(doc).encode(), schema=COCO17).dataset
    tasks = json.loads(label_studio.encode(ds, as_predictions=False))
    for task in tasks:
        for work in task.get("annotations", []):
            for r in work.get("result", []):
                r.pop("original_width", None)
                r.pop("original_height", None)
    return json.dumps(tasks)


@pytest.fixture(scope="module")
def delivered(tmp_path_factory, prefect_harness):
    from flows.delivery import delivery_run

    root = tmp_path_factory.mktemp("tools")
    doc = json.loads(COCO_REAL.read_bytes())
    batch = root / "batch"
    for i, im in enumerate(doc["images"]):
        (batch / "images").mkdir(parents=True, exist_ok=True)
        (batch / "images" / im["file_name"]).write_bytes(placeholder(im["width"], im["height"], i))
    three = _with_category_3(doc)
    (batch / "annotations/ann_a").mkdir(parents=True)
    (batch / "annotations/ann_a/person_keypoints_val2017.json").write_text(json.dumps(three))
    _cvat_yolo_tree(batch / "annotations/ann_b/cvat_yolo", doc)
    (batch / "annotations/ann_c").mkdir(parents=True)
    (batch / "annotations/ann_c/project-1-at-2026.json").write_text(_label_studio_without_sizes(doc))
    gold_ids = {im["id"] for im in doc["images"][:GOLD_IMAGES]}
    gold = {
        **three,
        "images": [im for im in three["images"] if im["id"] in gold_ids],
        "annotations": [a for a in three["annotations"] if a["image_id"] in gold_ids],
    }
    (batch / "gold").mkdir()
    (batch / "gold/gold.json").write_text(json.dumps(gold))
    (root / "schemas").mkdir()
    (root / "schemas/person.xml").write_bytes(
        cvat.encode(coco.decode(json.dumps(doc).encode(), schema=COCO17).dataset)
    )
    (root / "client.yaml").write_text(
        yaml.safe_dump(
            {
                "client": "tools",
                "dataset": "pose",
                "schema": "schemas/person.xml",
                "source": "./batch",
                "releases": "./releases",
                "annotators": ["ann_a", "ann_b", "ann_c"],
                "splits": {"train": 1.0, "val": 0.0},
                "qa": {"max_quarantined_fraction": 1.0},
            }
        )
    )
    summary = delivery_run(load_config(root / "client.yaml"))
    return doc, gold, summary


def test_every_export_is_read_and_no_instance_is_lost(delivered):
    doc, gold, summary = delivered
    findings = pq.read_table(Path(summary.release) / "qa/findings.parquet").to_pylist()
    checks = {f["check"] for f in findings}
    assert not checks & {"collect.unreadable_file", "schema.unknown_category"}, checks
    assert not [f for f in findings if "size unknown" in (f["message"] or "")]
    counts = summary.counts
    n = len(doc["annotations"])
    assert counts["instances_in"] == 3 * n + len(gold["annotations"])
    assert (
        counts["instances_delivered"] + counts["instances_quarantined"] + counts["instances_review_only"]
        == counts["instances_in"]
    )


def test_the_declared_category_id_is_the_delivered_one(delivered):
    _, _, summary = delivered
    files = [json.loads(p.read_text()) for p in (Path(summary.release) / "coco").glob("*.json")]
    assert sum(len(f["annotations"]) for f in files) == summary.counts["instances_delivered"] > 0
    for out in files:
        assert [c["id"] for c in out["categories"]] == [3]
        assert {a["category_id"] for a in out["annotations"]} <= {3}
    data = yaml.safe_load((Path(summary.release) / "yolo/data.yaml").read_text())
    assert data["names"] in ({0: "person"}, ["person"])
