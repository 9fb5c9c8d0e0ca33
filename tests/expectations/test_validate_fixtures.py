"""`kpdeliver validate` on every COCO-style fixture in ../shared/fixtures/external: the findings
match a plain recount of the raw JSON, and the quirks its README lists."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from kpdeliver.cli import app
from kpdeliver.collect.files import detect_format, read_annotations
from tests.conftest import EXTERNAL

pytestmark = pytest.mark.slow  # Great Expectations

runner = CliRunner()
COCO_FILES = sorted(
    p.relative_to(EXTERNAL).as_posix() for p in EXTERNAL.rglob("*.json") if detect_format(p) == "coco"
)
LISTS = {  # JSON lists, not COCO datasets: unusable on their own
    "cocoapi/person_keypoints_results/person_keypoints_val2014_fakekeypoints100_results.json",
    "mmpose/mpii/test_mpii.json",
}
# What ../shared/fixtures/external/README.md says each file holds (quirk scan columns)
README_QUIRKS = {
    "mmpose/crowdpose/test_crowdpose.json": {"visibility.num_keypoints_mismatch": 4},
    "mmpose/halpe/test_halpe.json": {
        "visibility.num_keypoints_mismatch": 12,
        "visibility.unlabeled_with_coords": 39,
    },
    "mmpose/ak/test_animalkingdom.json": {"visibility.unlabeled_with_coords": 34},
}


def run_validate(path: Path, out: Path):
    res = runner.invoke(app, ["validate", str(path), "--schema", "file", "--out", str(out)])
    return res, (pq.read_table(out / "findings.parquet") if (out / "findings.parquet").exists() else None)


def raw_counts(path: Path, k: int) -> Counter:
    """Row-rule violations counted straight from the JSON, one annotation at a time."""
    doc = json.loads(path.read_text())
    sizes = {im["id"]: (im.get("width") or 0, im.get("height") or 0) for im in doc["images"]}
    out = Counter()
    for a in doc["annotations"]:
        kp = np.asarray(a["keypoints"], dtype=float).reshape(-1)
        if kp.size != 3 * k:
            continue  # held back at decode (schema.keypoint_count)
        x, y, v = kp[0::3], kp[1::3], kp[2::3]
        declared = a.get("num_keypoints")
        if isinstance(declared, int) and declared != int((v > 0).sum()):
            out["visibility.num_keypoints_mismatch"] += 1
        out["visibility.unlabeled_with_coords"] += int(((v == 0) & ((x != 0) | (y != 0))).sum())
        out["visibility.invalid_flag"] += int((~np.isin(v, (0, 1, 2))).sum())
        w, h = sizes.get(a["image_id"], (0, 0))
        if w > 0 and h > 0:
            out["bounds.visible_outside_image"] += int(
                ((v == 2) & ((x < 0) | (x > w) | (y < 0) | (y > h))).sum()
            )
    return out


@pytest.mark.parametrize("rel", COCO_FILES)
def test_every_coco_fixture(rel, tmp_path):
    path = EXTERNAL / rel
    res, findings = run_validate(path, tmp_path)
    if rel in LISTS:
        assert res.exit_code == 2 and "JSON list" in res.output and findings is None
        return
    assert res.exit_code in (0, 1), res.output
    assert (tmp_path / "report.html").is_file() and (
        tmp_path / "validation" / "validation_results.json"
    ).is_file()
    got = Counter(findings["check"].to_pylist())
    expected = raw_counts(path, read_annotations(path).dataset.schema.num_keypoints)
    for check, n in expected.items():
        assert got[check] == n, f"{rel}: {check}"
    for check, n in README_QUIRKS.get(rel, {}).items():
        assert got[check] == n, f"{rel}: README says {n} x {check}"
    assert res.exit_code == (1 if "error" in findings["severity"].to_pylist() else 0)


def test_posetrack_point_above_the_frame(tmp_path):
    """README: a labeled point at y=-24.9 (v=1, so allowed within the margin; reported as info)."""
    _, t = run_validate(EXTERNAL / "mmpose/posetrack18/annotations/test_posetrack18_val.json", tmp_path)
    rows = [r for r in t.to_pylist() if r["check"] == "bounds.occluded_outside_image"]
    assert len(rows) == 1
    assert rows[0]["keypoint"] == "head_top" and rows[0]["value"] == pytest.approx(24.9385, abs=1e-3)
    assert "-24.9" in rows[0]["message"] and rows[0]["severity"] == "info"


def test_wholebody_fractional_hand_flags(tmp_path):
    """COCO-WholeBody's hand part carries fractional flags (README: 0.04-0.29). The codec decodes
    the body part only, so the right hands are validated as a 21-point file of their own."""
    doc = json.loads((EXTERNAL / "mmpose/coco/test_coco_wholebody.json").read_text())
    anns = [
        {**{k: a[k] for k in ("id", "image_id", "category_id")}, "keypoints": a["righthand_kpts"]}
        for a in doc["annotations"]
    ]
    hand = {
        "images": doc["images"],
        "annotations": anns,
        "categories": [{"id": 1, "name": "hand", "keypoints": [f"hand_{i}" for i in range(21)]}],
    }
    path = tmp_path / "righthand.json"
    path.write_text(json.dumps(hand))
    _, t = run_validate(path, tmp_path / "out")
    v = np.concatenate([np.asarray(a["keypoints"], float)[2::3] for a in anns])
    fractional = int((~np.isin(v, (0, 1, 2))).sum())
    assert fractional > 0
    flags = [r for r in t.to_pylist() if r["check"] == "visibility.invalid_flag"]
    assert len(flags) == fractional
    assert all(0 < r["value"] < 1 and r["severity"] == "error" for r in flags)


@pytest.mark.parametrize(
    "rel",
    [
        "datumaro-cvat-ai/cvat_for_images/train.xml",
        "datumaro-cvat-ai/yolov8_pose",
        "label-studio-sdk/test_export_yolo/data_keypoints.json",
    ],
)
def test_other_formats(rel, tmp_path):
    res, findings = run_validate(EXTERNAL / rel, tmp_path)
    assert res.exit_code == (1 if "error" in findings["severity"].to_pylist() else 0), res.output
    assert (tmp_path / "report.html").is_file()
