"""NaN and infinities name the keypoint: `validate` and `convert` hold the instance back, and the
`schema.non_finite` findings carry the keypoint, one per bad keypoint, as the row rules' findings
(the delivery's path) do; a bad box or area is one finding naming the field."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from kpdeliver.cli import app
from kpdeliver.codecs.coco import encode
from kpdeliver.collect.files import read_annotations
from kpdeliver.collect.non_finite import hold_non_finite
from kpdeliver.schema import COCO17
from tests.expectations.expectation_helpers import clean_dataset

NAN, INF = float("nan"), float("inf")


def _export(tmp_path):
    """The clean dataset (annotations 10, 11, 12) with NaN/infinite numbers written as JSON writes them."""
    doc = json.loads(encode(clean_dataset()))
    kps = {a["id"]: a["keypoints"] for a in doc["annotations"]}
    kps[10][0] = NAN  # nose x
    kps[10][3 * 9 + 1] = INF  # left_wrist y
    kps[12][3 * 16 + 2] = -INF  # right_ankle v
    doc["annotations"][1]["bbox"][2] = INF  # annotation 11: a bad box, its points fine
    path = tmp_path / "nonfinite.json"
    path.write_text(json.dumps(doc))  # NaN / Infinity / -Infinity literals, as real exports carry them
    return path


EXPECTED = [(10, "nose"), (10, "left_wrist"), (11, None), (12, "right_ankle")]


def _located(findings):
    rows = [r for r in findings.to_pylist() if r["check"] == "schema.non_finite"]
    return sorted(((r["annotation_id"], r["keypoint"]) for r in rows), key=str), rows


def test_held_back_instances_name_each_bad_keypoint(tmp_path):
    decoded = hold_non_finite(read_annotations(_export(tmp_path), schema=COCO17))
    located, rows = _located(decoded.findings)
    assert located == sorted(EXPECTED, key=str)
    assert sorted(decoded.rejected["annotation_id"].to_pylist()) == [
        10,
        11,
        12,
    ]  # each instance held back once
    msg = {(r["annotation_id"], r["keypoint"]): r["message"] for r in rows}
    assert msg[(10, "nose")].startswith(
        "nonfinite.json: annotation id=10, field 'keypoints', keypoint 'nose': x, y, v = nan, "
    )
    assert "field 'bbox'" in msg[(11, None)]
    assert all(r["file_name"] and r["image_id"] and r["source"] == "nonfinite.json" for r in rows)


@pytest.mark.slow  # Great Expectations
def test_validate_and_the_row_rules_name_the_same_keypoints(tmp_path):
    path = _export(tmp_path)
    res = CliRunner().invoke(
        app, ["validate", str(path), "--schema", "coco17", "--out", str(tmp_path / "out")]
    )
    assert res.exit_code == 1, res.output
    by_cli, _ = _located(pq.read_table(tmp_path / "out" / "findings.parquet"))
    assert by_cli == sorted(EXPECTED, key=str)
    from expectations import validate_dataset
    from kpdeliver.config import ValidationSettings

    by_rules, _ = _located(
        validate_dataset(read_annotations(path, schema=COCO17).dataset, ValidationSettings()).findings
    )
    assert [f for f in by_cli if f[1]] == [
        f for f in by_rules if f[1]
    ]  # the points: named alike on both paths
