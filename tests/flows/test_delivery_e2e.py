"""A full delivery of the synthetic demo batch, checked by the outputs' real consumers."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from kpdeliver.config import load_config
from kpdeliver.release.publish import published_versions
from kpdeliver.schema import COCO17
from kpdeliver.storage import LocalStore
from tests.yolo_rules import check_yolo_pose_tree

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory, prefect_harness):
    from flows.delivery import delivery_run
    from kpdeliver.synth import make_demo_batch

    root = tmp_path_factory.mktemp("demo")
    make_demo_batch(root, seed=3)
    config = load_config(root / "client.yaml")
    first = delivery_run(config)
    second = delivery_run(config)
    return root, config, first, second


def test_coco_loads_in_pycocotools_and_evaluates_to_ap_1(demo):
    _, _, summary, _ = demo
    rel = Path(summary.release)
    files = sorted((rel / "coco").glob("*.json"))
    assert files
    for path in files:
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(str(path))
            if not gt.getAnnIds():
                continue
            dets = [{**a, "score": 1.0} for a in gt.loadAnns(gt.getAnnIds())]
            dt = gt.loadRes(dets)
            ev = COCOeval(gt, dt, iouType="keypoints")
            ev.params.kpt_oks_sigmas = COCO17.sigma_array
            ev.evaluate(), ev.accumulate(), ev.summarize()
        assert ev.stats[0] == pytest.approx(1.0), path.name


def test_yolo_tree_is_accepted_by_ultralytics_rules(demo):
    _, _, summary, _ = demo
    yolo = Path(summary.release) / "yolo"
    assert check_yolo_pose_tree(yolo) == []
    cfg = yaml.safe_load((yolo / "data.yaml").read_text())
    assert cfg["kpt_shape"] == [17, 3]
    flip = np.array(cfg["flip_idx"])
    assert np.array_equal(flip, COCO17.flip_idx) and np.array_equal(flip[flip], np.arange(17))
    images = sorted(p for p in (yolo / "images").rglob("*") if p.is_file())
    labels = sorted((yolo / "labels").rglob("*.txt"))
    assert len(images) == len(labels) == summary.counts["images_delivered"]
    for lab in labels:
        for line in lab.read_text().splitlines():
            vals = np.array(line.split(), float)
            assert len(vals) == 5 + 3 * 17
            kp = vals[5:].reshape(17, 3)
            labeled = kp[:, 2] > 0
            assert ((kp[labeled, :2] >= 0) & (kp[labeled, :2] <= 1)).all()
            assert (kp[~labeled] == 0).all()


def test_indexes_and_findings_follow_the_design_columns(demo):
    _, _, summary, _ = demo
    rel = Path(summary.release)
    images = pq.read_table(rel / "index/images.parquet")
    assert {"image_id", "file_name", "sha256", "width", "height", "split", "n_instances", "status"} <= set(
        images.column_names
    )
    anns = pq.read_table(rel / "index/annotations.parquet")
    assert {"annotation_id", "image_id", "annotator", "track_id", "frame", "bbox", "keypoints"} <= set(
        anns.column_names
    )
    assert anns.num_rows == summary.counts["instances_delivered"]
    assert np.asarray(anns["keypoints"].to_pylist()).shape[1:] == (17, 3)
    findings = pq.read_table(rel / "qa/findings.parquet")
    assert findings.column_names[:9] == [
        "check",
        "severity",
        "image_id",
        "file_name",
        "annotation_id",
        "keypoint",
        "annotator",
        "value",
        "message",
    ]
    delivered = images.to_pylist()
    assert (
        sum(r["status"] in ("delivered", "unlabeled") for r in delivered)
        == summary.counts["images_delivered"]
    )


def test_manifest_hashes_every_file_and_counts_add_up(demo):
    _, _, summary, _ = demo
    rel = Path(summary.release)
    manifest = json.loads((rel / "manifest.json").read_text())
    on_disk = {p.relative_to(rel).as_posix() for p in rel.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    for name, meta in manifest["files"].items():
        data = (rel / name).read_bytes()
        assert meta["size"] == len(data) and meta["sha256"] == hashlib.sha256(data).hexdigest(), name
    c = manifest["counts"]
    assert (
        c["instances_delivered"] + c["instances_quarantined"] + c["instances_review_only"]
        == c["instances_in"]
    )
    signoff = json.loads((rel / "qa/signoff.json").read_text())
    assert signoff["verdict"] in ("pass", "conditional", "fail") and "content_sha256" in signoff
    assert manifest["verdict"] == signoff["verdict"] and manifest["qa"]["reasons"] == signoff["reasons"]


def test_the_same_delivery_twice_is_refused_as_a_duplicate(demo):
    _, config, first, second = demo
    assert second.duplicate_of_published and second.version == first.version == 1
    assert published_versions(LocalStore(config.releases), config.client, config.dataset) == [1]
    catalog = pq.read_table(Path(config.releases) / config.client / "catalog.parquet")
    assert catalog["version"].to_pylist() == [1]
    assert catalog["verdict"].to_pylist() == [first.verdict] and first.verdict in ("conditional", "fail")


def test_a_changed_batch_publishes_the_next_version_with_stable_content(demo, prefect_harness):
    from flows.delivery import delivery_run

    _root, config, first, _ = demo
    export = next((Path(config.source) / "annotations").rglob("*.json"))
    doc = json.loads(export.read_text())
    doc["annotations"][0]["keypoints"][0] += 1.0
    export.write_text(json.dumps(doc))
    third = delivery_run(config)
    assert third.version == 2 and not third.duplicate_of_published
    m1 = json.loads((Path(first.release) / "manifest.json").read_text())["files"]
    m2 = json.loads((Path(third.release) / "manifest.json").read_text())["files"]
    same = [f for f in m1 if f.startswith("yolo/images/") and m1[f] == m2.get(f)]
    assert len(same) == sum(f.startswith("yolo/images/") for f in m1)  # images unchanged, byte for byte


def test_every_mistake_injected_into_the_demo_is_found(demo):
    root, _, summary, _ = demo
    truth = json.loads((root / "truth.json").read_text())
    findings = pq.read_table(Path(summary.release) / "qa/findings.parquet").to_pylist()
    assert len(truth["mistakes"]) >= 6
    for m in truth["mistakes"]:
        hits = [
            r
            for r in findings
            if r["check"] == m["expected_check"]
            and r["annotation_id"] == m["annotation_id"]
            and (m["keypoint"] is None or r["keypoint"] == m["keypoint"])
        ]
        assert hits, f"not found: {m}"


def test_the_flow_run_carries_findings_and_scorecard_artifacts(demo):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    _, config, _, _ = demo
    prefix = f"{config.client}-{config.dataset}-"  # artifact keys carry the client
    keys = [
        prefix + k
        for k in (
            "findings-by-check",
            "findings-by-annotator",
            "findings-by-keypoint",
            "annotator-scorecards",
        )
    ]
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
    assert {a.key for a in arts} == set(keys)
    by_check = json.loads(next(a for a in arts if a.key == prefix + "findings-by-check").data)
    assert {"check", "severity", "count"} <= set(by_check[0])


def test_gold_images_are_delivered_with_the_gold_labels_only(demo):
    root, _, summary, _ = demo
    rel = Path(summary.release)
    gold_names = set(json.loads((root / "truth.json").read_text())["gold"])
    images = pq.read_table(rel / "index/images.parquet").to_pylist()
    gold_ids = {r["image_id"] for r in images if r["file_name"] in gold_names}
    assert len(gold_ids) == len(gold_names)
    anns = pq.read_table(rel / "index/annotations.parquet").to_pylist()
    on_gold = [a["annotator"] for a in anns if a["image_id"] in gold_ids]
    assert on_gold and set(on_gold) == {"gold"}
    assert len({a["annotation_id"] for a in anns}) == len(anns)
