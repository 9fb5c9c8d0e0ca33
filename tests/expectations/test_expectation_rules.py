"""Each rule, broken alone on a clean dataset, gives exactly its findings and no others."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from kpdeliver.config import ValidationSettings
from kpdeliver.findings import FINDINGS_SCHEMA
from tests.expectations.expectation_helpers import NAMES, clean_dataset, findings_set, run

pytestmark = pytest.mark.slow  # Great Expectations


def test_clean_dataset_has_no_findings():
    report = run(clean_dataset())
    assert report.findings.schema == FINDINGS_SCHEMA
    assert report.findings.num_rows == 0
    assert report.n_errors == 0


def test_empty_dataset_has_no_findings():
    from kpdeliver.model import Dataset
    from kpdeliver.schema import COCO17

    assert run(Dataset.empty(COCO17)).findings.num_rows == 0


def test_missing_annotator_is_null_not_empty():
    ds = clean_dataset()
    ds.instances.annotator[:] = ""
    _kp(ds, 2, "nose", y=-3)
    assert run(ds).findings["annotator"].to_pylist() == [None]


def _mutated(mutate):
    ds = clean_dataset()
    mutate(ds)
    return ds


def _kp(ds, row, name, x=None, y=None, v=None):
    j = NAMES.index(name)
    for col, val in ((0, x), (1, y), (2, v)):
        if val is not None:
            ds.instances.keypoints[row, j, col] = val


CASES = {
    "non_finite": (lambda ds: _kp(ds, 1, "nose", x=np.nan), {("schema.non_finite", 11, "nose")}),
    "non_finite_inf": (lambda ds: _kp(ds, 1, "nose", y=np.inf), {("schema.non_finite", 11, "nose")}),
    "invalid_flag_fractional": (
        lambda ds: _kp(ds, 0, "left_wrist", v=0.29),
        {("visibility.invalid_flag", 10, "left_wrist")},
    ),
    "invalid_flag_three": (
        lambda ds: _kp(ds, 0, "left_wrist", v=3),
        {("visibility.invalid_flag", 10, "left_wrist")},
    ),
    "unlabeled_with_coords": (
        lambda ds: _kp(ds, 0, "left_ear", x=150, y=120),
        {("visibility.unlabeled_with_coords", 10, "left_ear")},
    ),
    "unlabeled_minus_one": (
        lambda ds: _kp(ds, 0, "right_ear", x=-1, y=-1),
        {("visibility.unlabeled_with_coords", 10, "right_ear")},
    ),
    "labeled_at_origin": (
        lambda ds: _kp(ds, 2, "nose", x=0, y=0),
        {("visibility.labeled_at_origin", 12, "nose")},
    ),
    "num_keypoints_mismatch": (
        lambda ds: ds.instances.num_keypoints.__setitem__(1, 12),
        {("visibility.num_keypoints_mismatch", 11, None)},
    ),
    "visible_past_right_edge": (
        lambda ds: _kp(ds, 2, "left_knee", x=641),
        {("bounds.visible_outside_image", 12, "left_knee")},
    ),
    "visible_above_frame": (
        lambda ds: _kp(ds, 2, "nose", y=-3),
        {("bounds.visible_outside_image", 12, "nose")},
    ),
    "occluded_outside_within_margin": (
        lambda ds: _kp(ds, 2, "nose", y=-25, v=1),
        {("bounds.occluded_outside_image", 12, "nose")},
    ),
    "occluded_far_outside": (
        lambda ds: _kp(ds, 2, "nose", x=640 + 0.6 * 640, v=1),
        {("bounds.occluded_far_outside", 12, "nose")},
    ),
    "keypoint_outside_bbox": (
        lambda ds: _kp(ds, 0, "left_ankle", x=400),
        {("bounds.keypoint_outside_bbox", 10, "left_ankle")},
    ),
    "bbox_outside_image": (
        lambda ds: ds.instances.bbox.__setitem__((1, 2), 400),
        {("bounds.bbox_outside_image", 11, None)},
    ),
    "duplicate_annotation_id": (
        lambda ds: ds.instances.id.__setitem__(2, 10),
        {("schema.duplicate_id", 10, None)},
    ),
    "unknown_category": (
        lambda ds: ds.instances.category_id.__setitem__(1, 7),
        {("schema.unknown_category", 11, None)},
    ),
    "unknown_image": (
        lambda ds: ds.instances.image_id.__setitem__(2, 99),
        {("schema.unknown_image", 12, None)},
    ),
    "duplicate_image_id": (
        lambda ds: (ds.images.id.__setitem__(1, 1), ds.instances.image_id.__setitem__(2, 1)),
        {("schema.duplicate_id", None, None)},
    ),
    "image_size_unknown": (
        lambda ds: ds.images.width.__setitem__(1, 0),
        {("schema.missing_field", None, None)},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rule_alone(case):
    mutate, expected = CASES[case]
    assert findings_set(_mutated(mutate)) == expected


def test_duplicate_ids_report_every_holder():
    t = run(_mutated(lambda ds: ds.instances.id.__setitem__(2, 10))).findings
    assert t.num_rows == 2  # both instances that carry id 10
    assert sorted(t["image_id"].to_pylist()) == [1, 2]
    t = run(_mutated(CASES["duplicate_image_id"][0])).findings
    assert t["file_name"].to_pylist() == ["a.jpg", "b.jpg"]


def test_unknown_size_stops_bounds_checks_on_that_image():
    def mutate(ds):
        ds.images.height[1] = 0
        _kp(ds, 2, "nose", x=5000)  # would be outside the frame, but the frame is unknown

    t = run(_mutated(mutate)).findings
    assert t.num_rows == 1 and t["check"][0].as_py() == "schema.missing_field"
    assert t["image_id"][0].as_py() == 2 and "'width'/'height'" in t["message"][0].as_py()


def test_absent_num_keypoints_is_not_a_mismatch():
    def mutate(ds):
        ds.instances.num_keypoints[0] = -1

    assert findings_set(_mutated(mutate)) == set()


def test_finding_is_located_and_measured():
    row = run(_mutated(lambda ds: _kp(ds, 2, "nose", y=-3))).findings.to_pylist()[0]
    assert row["severity"] == "error"
    assert (row["image_id"], row["file_name"], row["annotation_id"], row["annotator"]) == (
        2,
        "b.jpg",
        12,
        "ann_a",
    )
    assert row["value"] == pytest.approx(3.0)  # pixels outside the frame
    assert "annotation 12" in row["message"] and "'nose'" in row["message"] and "640x480" in row["message"]


def test_every_failing_point_is_reported_without_truncation():
    """GX's partial lists stop at 20; the findings do not."""
    ds = clean_dataset()
    many = np.tile(clean_dataset().instances.keypoints[2:3], (60, 1, 1))
    many[:, 0] = (10, -5, 2)  # every nose above the frame
    from kpdeliver.model import Instances

    ds = ds.replace(
        instances=Instances.build(id=np.arange(100, 160), image_id=np.full(60, 2), keypoints=many)
    )
    t = run(ds).findings
    assert t.num_rows == 60
    assert set(t["check"].to_pylist()) == {"bounds.visible_outside_image"}
    assert sorted(t["annotation_id"].to_pylist()) == list(range(100, 160))


def test_thresholds_come_from_settings():
    ds = _mutated(lambda ds: _kp(ds, 2, "nose", x=-200, v=1))  # 200 px = 31 % of the width outside
    assert findings_set(ds) == {("bounds.occluded_outside_image", 12, "nose")}
    assert findings_set(ds, ValidationSettings(occluded_margin=0.25)) == {
        ("bounds.occluded_far_outside", 12, "nose")
    }
    ds = _mutated(lambda ds: _kp(ds, 0, "nose", x=309))  # 9 px = 4.5 % of the 200 px box outside it
    assert findings_set(ds) == set()
    assert findings_set(ds, ValidationSettings(bbox_tolerance=0.01)) == {
        ("bounds.keypoint_outside_bbox", 10, "nose")
    }


def test_mostly_turns_tolerated_errors_into_warnings():
    ds = _mutated(lambda ds: _kp(ds, 2, "nose", y=-3))
    strict = run(ds).findings
    lenient = run(ds, ValidationSettings(mostly=0.9)).findings
    assert strict["severity"].to_pylist() == ["error"]
    assert lenient["severity"].to_pylist() == ["warning"]  # GX says the suite passes at 90 %
    assert lenient["annotation_id"].to_pylist() == [12]


def test_validation_results_written_as_json_not_data_docs(tmp_path):
    import orjson

    from expectations import validate_dataset

    report = validate_dataset(clean_dataset(), ValidationSettings(), docs_dir=tmp_path / "docs")
    assert report.results_path == tmp_path / "docs" / "validation_results.json"
    suites = orjson.loads(report.results_path.read_bytes())
    assert {s["suite"] for s in suites} >= {"coco17.bounds.points", "coco17.visibility.points"}
    assert len(suites) == 7 and all(s["success"] and s["expectations"] for s in suites)
    assert all(e["element_count"] is not None for s in suites for e in s["expectations"])
    assert not list((tmp_path / "docs").rglob("*.html"))  # no CDN-bound GX pages


def test_a_validation_run_logs_nothing_from_great_expectations(tmp_path, caplog):
    # GX sets some of its modules' loggers to INFO; the demo's and the CLI's output must stay ours
    from expectations import validate_dataset

    with caplog.at_level(logging.DEBUG):
        validate_dataset(clean_dataset(), ValidationSettings(), docs_dir=tmp_path / "docs")
    assert [r.getMessage() for r in caplog.records if r.name.startswith("great_expectations")] == []
