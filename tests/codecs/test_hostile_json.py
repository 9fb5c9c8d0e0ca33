"""Issue 11, classes 8 and 9: hostile JSON is refused in one sentence, non-finite numbers never
reach a written file, and duplicate keys are reported instead of taken silently."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from kpdeliver.cli import app
from kpdeliver.codecs import CodecError
from kpdeliver.codecs.coco import decode
from kpdeliver.collect.files import read_annotations, write_dataset
from kpdeliver.collect.non_finite import hold_non_finite

runner = CliRunner()


def coco_doc(n: int = 2) -> dict:
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
        "annotations": [
            {
                "id": i + 1,
                "image_id": 1,
                "category_id": 1,
                "keypoints": [10 + i, 20, 2, 30, 40 + i, 2],
                "bbox": [5, 5, 40, 40],
                "area": 1600,
                "iscrowd": 0,
            }
            for i in range(n)
        ],
        "categories": [{"id": 1, "name": "thing", "keypoints": ["head", "tail"], "skeleton": [[1, 2]]}],
    }


def deep_json(levels: int) -> bytes:
    return b'{"annotations": ' + b"[" * levels + b"]" * levels + b"}"


def big_id_json() -> bytes:
    text = json.dumps(coco_doc())
    return text.replace('"id": 1, "image_id"', '"id": 99999999999999999999999, "image_id"', 1).encode()


@pytest.mark.parametrize(
    "data, what", [(deep_json(100_000), "nested deeper than 1024"), (big_id_json(), "beyond 64-bit integers")]
)
def test_hostile_json_is_a_codec_error_naming_file_and_problem(data, what):
    with pytest.raises(CodecError, match=what) as e:
        decode(data, source="hostile.json")
    assert str(e.value).startswith("hostile.json: ")


@pytest.mark.parametrize("data", [deep_json(100_000), big_id_json()])
@pytest.mark.parametrize(
    "command",
    [
        ["inspect"],
        ["convert", "--to", "coco", "--out", "{out}"],
        pytest.param(["validate", "--schema", "file", "--out", "{out}"], marks=pytest.mark.slow),
    ],
)  # validate starts its GX worker
def test_cli_refuses_hostile_json_with_exit_2_and_no_traceback(tmp_path, data, command):
    src = tmp_path / "hostile.json"
    src.write_bytes(data)
    res = runner.invoke(app, [c.replace("{out}", str(tmp_path / "out")) for c in command] + [str(src)])
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "hostile.json" in res.output


def non_finite_file(tmp_path: Path) -> Path:
    """NaN and Infinity literals (the stdlib parser accepts them, so real exports carry them)."""
    doc = coco_doc(4)
    doc["annotations"][0]["keypoints"][0] = float("nan")
    doc["annotations"][1]["bbox"][2] = float("-inf")
    doc["annotations"][2]["keypoints"][4] = float("inf")
    src = tmp_path / "nonfinite.json"
    src.write_text(json.dumps(doc))  # writes NaN / -Infinity / Infinity
    return src


@pytest.mark.parametrize("to", ["coco", "yolo", "cvat", "label-studio"])
def test_convert_holds_non_finite_items_back_and_writes_only_finite_numbers(tmp_path, to):
    src = non_finite_file(tmp_path)
    res = runner.invoke(app, ["convert", str(src), "--to", to, "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "3 items held back" in res.output
    assert (
        "annotation id=1, field 'keypoints'" in res.output and "annotation id=2, field 'bbox'" in res.output
    )
    for f in (tmp_path / "out").rglob("*"):
        if f.is_file():
            text = f.read_text()
            for bad in ("NaN", "nan", "Infinity", "inf", "null", "e+308"):
                assert bad not in text.replace("annotations", "").replace("info", ""), (f, bad)
    back = read_annotations(tmp_path / "out" / "annotations.json") if to == "coco" else None
    if back is not None:
        assert back.dataset.instances.id.tolist() == [4]


def test_hold_non_finite_gives_one_finding_per_item_naming_file_item_and_field(tmp_path):
    decoded = hold_non_finite(read_annotations(non_finite_file(tmp_path)))
    held = decoded.findings.filter(
        decoded.findings["check"].to_numpy(zero_copy_only=False) == "schema.non_finite"
    )
    assert held.num_rows == 3 and decoded.rejected.num_rows == 3
    assert all(m.startswith("nonfinite.json: annotation id=") for m in held["message"].to_pylist())
    assert sorted(decoded.rejected["annotation_id"].to_pylist()) == [1, 2, 3]


def test_write_dataset_refuses_a_dataset_with_non_finite_numbers(tmp_path):
    ds = read_annotations(non_finite_file(tmp_path)).dataset
    with pytest.raises(ValueError, match="NaN/infinite"):
        write_dataset(ds, tmp_path / "out", to="coco")


def test_duplicate_keys_give_a_quirk_naming_key_and_both_values():
    text = json.dumps(coco_doc()).replace('"width": 640', '"width": 5, "width": 640')
    decoded = decode(text.encode(), source="dup.json")
    assert decoded.dataset.images.width.tolist() == [640]  # last value wins, as every parser does
    quirks = [
        m
        for c, m in zip(decoded.findings["check"].to_pylist(), decoded.findings["message"].to_pylist())
        if c == "decode.quirk"
    ]
    assert any("'width'" in m and "5, 640" in m and "id=1" in m for m in quirks), quirks


def test_duplicate_keys_found_in_pretty_printed_files_and_none_reported_without_them():
    doc = coco_doc()
    pretty = json.dumps(doc, indent=2, separators=(",", " : ")).replace(
        '"width" : 640', '"width" : 5,\n "width" : 640'
    )
    quirks = decode(pretty.encode(), source="p.json").findings["message"].to_pylist()
    assert any("'width'" in m for m in quirks), quirks
    # a key-like `":` inside a string value is no duplicate
    doc["images"][0]["file_name"] = 'odd\\": name.jpg'
    clean = decode(orjson.dumps(doc), source="c.json").findings["message"].to_pylist()
    assert not any("given 2 times" in m for m in clean), clean
    assert np.all(decode(orjson.dumps(doc), source="c.json").dataset.images.width == 640)
