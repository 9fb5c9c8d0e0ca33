"""Issue 11, class 3: a COCO file with several keypoint categories (a mouse with 17 points and a
fly with 13, sleap-io's mixed_animals) is several schemas; nothing is dropped silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kpdeliver.cli import app
from kpdeliver.codecs.coco.categories import SeveralCategories
from kpdeliver.codecs.registry import decode_bytes
from kpdeliver.collect.files import read_annotations
from kpdeliver.config import ClientConfig

MIXED = (
    Path(__file__).parents[2]
    / "fixtures"
    / "real"
    / "sleap-io"
    / "coco"
    / "mixed_animals"
    / "annotations.json"
)
runner = CliRunner()


def test_without_a_category_the_file_is_refused_listing_each_with_its_count():
    with pytest.raises(SeveralCategories) as e:
        read_annotations(MIXED)
    assert e.value.categories == ["mouse", "fly"]
    assert "'mouse': 17 keypoints, 3 annotations; 'fly': 13 keypoints, 3 annotations" in str(e.value)


@pytest.mark.parametrize("name, k, other", [("mouse", 17, "fly"), ("fly", 13, "mouse")])
def test_a_named_category_is_read_whole_and_the_other_reported(name, k, other):
    decoded = read_annotations(MIXED, category=name)
    ds = decoded.dataset
    assert (ds.schema.name, ds.schema.num_keypoints, len(ds.instances)) == (name, k, 3)
    assert decoded.rejected.num_rows == 0
    [quirk] = [
        m
        for c, m in zip(decoded.findings["check"].to_pylist(), decoded.findings["message"].to_pylist())
        if c == "decode.quirk"
    ]
    assert f"3 annotations of category '{other}'" in quirk


def test_a_schema_that_fits_one_category_chooses_it():
    from kpdeliver.codecs.coco import schema_from_coco_category

    fly = json.loads(MIXED.read_text())["categories"][1]
    decoded = decode_bytes(MIXED.name, MIXED.read_bytes(), schema=schema_from_coco_category(fly, 13))
    assert len(decoded.dataset.instances) == 3
    assert "3 annotations of category 'mouse'" in " ".join(decoded.findings["message"].to_pylist())


def test_unknown_category_is_a_clear_refusal():
    with pytest.raises(Exception, match="no keypoint category 'cat'.*'mouse'.*'fly'"):
        read_annotations(MIXED, category="cat")


def test_categories_sharing_one_keypoint_list_stay_one_schema(tmp_path):
    """AP-10K names 54 species with the same 17 points: one schema, species kept in category_id."""
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
        "annotations": [
            {"id": i, "image_id": 1, "category_id": i, "keypoints": [1, 2, 2, 3, 4, 2]} for i in (1, 2)
        ],
        "categories": [{"id": i, "name": n, "keypoints": ["a", "b"]} for i, n in ((1, "cat"), (2, "dog"))],
    }
    (tmp_path / "a.json").write_text(json.dumps(doc))
    ds = read_annotations(tmp_path / "a.json").dataset
    assert ds.instances.category_id.tolist() == [1, 2]


def test_inspect_reports_every_category():
    res = runner.invoke(app, ["inspect", "--json", str(MIXED)])
    assert res.exit_code == 0, res.output
    reports = json.loads(res.stdout)
    assert [(r["path"].rsplit("#", 1)[1], r["num_keypoints"], r["instances"]) for r in reports] == [
        ("mouse", 17, 3),
        ("fly", 13, 3),
    ]


def test_convert_without_category_writes_one_output_per_category(tmp_path):
    res = runner.invoke(app, ["convert", str(MIXED), "--to", "coco", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    for name, k in (("mouse", 17), ("fly", 13)):
        doc = json.loads((tmp_path / name / "annotations.json").read_text())
        assert [c["name"] for c in doc["categories"]] == [name]
        assert {len(a["keypoints"]) for a in doc["annotations"]} == {3 * k} and len(doc["annotations"]) == 3


def test_convert_with_category_writes_that_one(tmp_path):
    res = runner.invoke(
        app, ["convert", str(MIXED), "--to", "yolo", "--category", "fly", "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    assert "kpt_shape: [13, 3]" in (tmp_path / "data.yaml").read_text().replace("\n- ", "")


@pytest.mark.slow  # validate starts its Great Expectations worker
def test_validate_refuses_without_category_and_names_them(tmp_path):
    res = runner.invoke(app, ["validate", str(MIXED), "--schema", "file", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "--category" in res.output and "'mouse'" in res.output and "'fly'" in res.output


def test_client_config_names_the_category_and_leaves_the_fingerprint_alone_when_unset():
    base = {"client": "c", "dataset": "d", "source": "s", "releases": "r", "annotators": ["a"]}
    assert "category" not in ClientConfig(**base).model_dump(mode="json")
    assert ClientConfig(**base, category="fly").model_dump(mode="json")["category"] == "fly"
