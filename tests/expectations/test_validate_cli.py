"""`kpdeliver validate` end to end (in-process, so Great Expectations is imported once)."""

from __future__ import annotations

import json

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from kpdeliver.cli import app
from kpdeliver.codecs.coco import encode
from kpdeliver.findings import FINDINGS_SCHEMA
from tests.expectations.expectation_helpers import clean_dataset

pytestmark = pytest.mark.slow  # Great Expectations

runner = CliRunner()


def validate(*args):
    return runner.invoke(app, ["validate", *map(str, args)])


def findings_of(out):
    t = pq.read_table(out / "findings.parquet")
    assert t.schema.equals(FINDINGS_SCHEMA)
    return t


@pytest.fixture()
def clean_coco(tmp_path):
    path = tmp_path / "clean.json"
    path.write_bytes(encode(clean_dataset()))
    return path


def test_clean_file_passes_and_writes_everything(clean_coco, tmp_path):
    out = tmp_path / "out"
    res = validate(clean_coco, "--schema", "coco17", "--out", out)
    assert res.exit_code == 0, res.output
    assert findings_of(out).num_rows == 0
    html = (out / "report.html").read_text()
    assert "PASS" in html and "<script" not in html and "http://" not in html and "https://" not in html
    assert (out / "validation" / "validation_results.json").is_file() and "Row rules" in html
    assert "PASS" in res.output


def _coco_doc(path):
    return json.loads(path.read_text())


def test_errors_exit_1_with_located_findings(clean_coco, tmp_path):
    doc = _coco_doc(clean_coco)
    doc["annotations"][2]["keypoints"][1] = -3.0  # nose of annotation 12 above the frame (v=2)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "out"
    res = validate(path, "--schema", "coco17", "--out", out)
    assert res.exit_code == 1, res.output
    rows = findings_of(out).to_pylist()
    # the encoder gave annotation 12 a tight box, which the point leaves too
    assert [(r["check"], r["severity"], r["annotation_id"], r["keypoint"], r["source"]) for r in rows] == [
        ("bounds.visible_outside_image", "error", 12, "nose", str(path)),
        ("bounds.keypoint_outside_bbox", "warning", 12, "nose", str(path)),
    ]
    assert "FAIL" in (out / "report.html").read_text() and "bounds.visible_outside_image" in res.output


@pytest.mark.parametrize(
    "mutate, check",
    [
        (lambda a: a.__setitem__("keypoints", a["keypoints"][:-3]), "schema.keypoint_count"),
        (lambda a: a["keypoints"].__setitem__(4, "high"), "schema.bad_type"),
    ],
)
def test_decode_level_rules_reach_the_findings(clean_coco, tmp_path, mutate, check):
    """The canonical model always holds K points per instance, so these two are caught while decoding."""
    doc = _coco_doc(clean_coco)
    mutate(doc["annotations"][1])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "out"
    res = validate(path, "--schema", "coco17", "--out", out)
    assert res.exit_code == 1, res.output
    t = findings_of(out)
    assert list(zip(t["check"].to_pylist(), t["annotation_id"].to_pylist())) == [(check, 11)]


def test_sizes_file_fills_unknown_sizes(clean_coco, tmp_path):
    doc = _coco_doc(clean_coco)
    for im in doc["images"]:
        im["width"] = im["height"] = 0
    path = tmp_path / "nosize.json"
    path.write_text(json.dumps(doc))
    res = validate(path, "--schema", "coco17", "--out", tmp_path / "a")
    t = findings_of(tmp_path / "a")
    assert res.exit_code == 1 and t["check"].to_pylist() == ["schema.missing_field"] * 2
    sizes = tmp_path / "sizes.csv"
    sizes.write_text("file_name,width,height\na.jpg,640,480\nb.jpg,640,480\n")
    res = validate(path, "--schema", "coco17", "--sizes", sizes, "--out", tmp_path / "b")
    assert res.exit_code == 0 and findings_of(tmp_path / "b").num_rows == 0


@pytest.mark.parametrize(
    "content, schema, words",
    [
        (b"{not json", "coco17", "not valid JSON"),
        (b'{"images": []}', "coco17", "annotations"),
        (b'{"images": [], "annotations": []}', "nope17", "unknown schema"),
        (None, "coco17", "does not exist"),
    ],
)
def test_unusable_input_exits_2_with_one_sentence(tmp_path, content, schema, words):
    path = tmp_path / "in.json"
    if content is not None:
        path.write_bytes(content)
    res = validate(path, "--schema", schema, "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert words in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out" / "findings.parquet").exists()


def test_second_annotator_runs_deep_qa(clean_coco, tmp_path):
    """The same images labeled by a second annotator who swapped left and right on one person."""
    from kpdeliver.schema import COCO17

    ds = clean_dataset()
    ds.instances.keypoints[0] = ds.instances.keypoints[0][COCO17.flip_idx]
    other = tmp_path / "other.json"
    other.write_bytes(encode(ds))
    out = tmp_path / "out"
    res = validate(clean_coco, "--schema", "coco17", "--annotation", f"ann_c={other}", "--out", out)
    assert res.exit_code in (0, 1), res.output
    swaps = findings_of(out).filter(
        pc.equal(pq.read_table(out / "findings.parquet")["check"], "qa.left_right_swap")
    )
    assert "ann_c" in swaps["annotator"].to_pylist()
    assert "ann_c" in pq.read_table(out / "annotators.parquet")["annotator"].to_pylist()
    assert "qa.left_right_swap" in (out / "report.html").read_text()
    sigmas = json.loads((out / "sigmas.json").read_bytes())  # which sigmas OKS used, and the measured ones
    assert sigmas["oks_sigmas_source"] == "COCO default" and len(sigmas["keypoints"]) == 17
