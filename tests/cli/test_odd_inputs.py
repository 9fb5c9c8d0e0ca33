"""Classes of odd input found by fuzzing the CLI (inspect, convert, validate) with mutations of
real exports: each ends as a held-back item with its finding, or a one-sentence refusal (exit 2),
never a traceback; and the `kpdeliver` entry point turns any bug left into one sentence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kpdeliver.cli import app
from kpdeliver.codecs.cvat import CODEC as CVAT
from kpdeliver.codecs.label_studio import CODEC as LABEL_STUDIO
from kpdeliver.codecs.protocol import DecodeOptions
from kpdeliver.collect.non_finite import hold_non_finite
from kpdeliver.report.overlays import Crop

REAL = Path(__file__).parents[1] / "fixtures" / "real"
runner = CliRunner()


def coco_doc() -> dict:
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "keypoints": [10, 20, 2, 30, 40, 2],
                "bbox": [5, 5, 40, 40],
                "area": 1600,
                "iscrowd": 0,
            }
        ],
        "categories": [{"id": 1, "name": "thing", "keypoints": ["head", "tail"], "skeleton": [[1, 2]]}],
    }


def invoke(*args) -> object:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def write(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc))
    return path


# --- COCO: an image table left empty (every image id unusable) -----------------------------------


def test_coco_with_no_usable_image_id_is_inspected_and_refused_for_yolo(tmp_path):
    doc = coco_doc()
    doc["images"][0]["id"] = None
    src = write(tmp_path / "ann.json", doc)
    shown = invoke("inspect", src)
    assert shown.exit_code == 0 and "images the file does not list" in " ".join(shown.output.split())
    refused = invoke("convert", src, "--to", "yolo", "--out", tmp_path / "out")
    assert refused.exit_code == 2
    assert "images the input does not list" in refused.output


# --- COCO: categories of the wrong shape ---------------------------------------------------------


@pytest.mark.parametrize("categories", [5, True, "person", {"id": 1}])
def test_coco_categories_not_a_list_is_refused(tmp_path, categories):
    doc = coco_doc()
    doc["categories"] = categories
    result = invoke("convert", write(tmp_path / "ann.json", doc), "--to", "coco", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "'categories' must be lists" in result.output


@pytest.mark.parametrize("field, value", [("keypoints", 5), ("keypoints", {"a": 1}), ("skeleton", 3.5)])
def test_coco_category_field_not_a_list_is_read_without_it(tmp_path, field, value):
    doc = coco_doc()
    doc["categories"][0][field] = value
    src = write(tmp_path / "ann.json", doc)
    result = invoke("convert", src, "--to", "coco", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "1 instance," in result.output or "1 instance " in result.output
    shown = invoke("inspect", src)
    assert f"field '{field}': not a list; ignored" in " ".join(shown.output.split())  # rich wraps lines


# --- YOLO: data.yaml that is not what Ultralytics reads ------------------------------------------


def yolo_tree(root: Path, data_yaml: str) -> Path:
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "1.txt").write_text("0 0.5 0.5 0.2 0.2 0.1 0.2 2 0.3 0.4 2 0.5 0.6 2\n")
    (root / "data.yaml").write_text(data_yaml)
    return root


GOOD_YAML = "path: .\ntrain: images/train\nnames: {0: a}\n"


@pytest.mark.parametrize(
    "data_yaml, field",
    [
        ("a: [unclosed", "not valid YAML"),
        ("- 1\n- 2\n", "not a mapping"),
        (GOOD_YAML + "kpt_shape: [100000000, 3]\n", "'kpt_shape'"),  # once allocated gigabytes
        (GOOD_YAML + "kpt_shape: [0, 3]\n", "'kpt_shape'"),
        (GOOD_YAML + "kpt_shape: [3.5, 3]\n", "'kpt_shape'"),
        (GOOD_YAML + "kpt_shape: 3\n", "'kpt_shape'"),
        (GOOD_YAML + "kpt_shape: [3, 3]\nflip_idx: [0, 5, 1]\n", "'flip_idx'"),
        ("path: .\ntrain: images/train\nkpt_shape: [3, 3]\nnames: 5\n", "'names'"),
        ("path: .\ntrain: images/train\nkpt_shape: [3, 3]\nnames: {a: b}\n", "'names'"),
    ],
)
def test_yolo_unusable_data_yaml_is_refused_in_one_sentence(tmp_path, data_yaml, field):
    tree = yolo_tree(tmp_path / "yolo", data_yaml)
    for args in (("inspect", tree), ("convert", tree, "--to", "coco", "--out", tmp_path / "out")):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert field in result.output


# --- CVAT: numbers past 32 bits, element points without coordinates, absurd frame spans ----------


def cvat_bytes(name: str, old: str, new: str) -> bytes:
    text = (REAL / "cvat" / name).read_text()
    assert old in text
    return text.replace(old, new, 1).encode()


@pytest.mark.parametrize("height", ["1e400", "99999999999999999999999", "-5e9"])
def test_cvat_size_past_32_bits_reads_as_unknown(height):
    data = cvat_bytes("xml_format.example-images.xml", 'height="1200"', f'height="{height}"')
    decoded = CVAT.decode(data, DecodeOptions(source="ann.xml"))
    assert decoded.dataset.images.height.min() == 0  # unknown: the rules say so, nothing overflows


def test_cvat_track_element_without_points_is_held_back_as_non_finite():
    data = cvat_bytes("xml_format.example-video.xml", 'points="112.07,258.59"', 'points=""')
    decoded = hold_non_finite(CVAT.decode(data, DecodeOptions(source="ann.xml")))
    held = decoded.rejected.to_pylist()
    assert held and all(r["check"] == "schema.non_finite" for r in held)
    assert np.isfinite(decoded.dataset.instances.keypoints).all()


def test_cvat_track_spanning_billions_of_frames_is_refused(tmp_path):
    src = tmp_path / "ann.xml"
    src.write_bytes(
        cvat_bytes("xml_format.example-video.xml", '<skeleton frame="0"', '<skeleton frame="-2000000000"')
    )
    result = invoke("convert", src, "--to", "coco", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "track id=1" in result.output and "frame number is wrong" in result.output


# --- Label Studio: an image size no image has ---------------------------------------------------


def test_label_studio_size_past_32_bits_holds_the_region_back():
    tasks = json.loads((REAL / "sleap-io" / "labelstudio" / "multi_animal_from_dlc.json").read_text())
    results = tasks[0]["annotations"][0]["result"]
    for r in results:
        r["original_width"] = 1e308
    decoded = LABEL_STUDIO.decode(json.dumps(tasks).encode(), DecodeOptions(source="tasks.json"))
    held = [r for r in decoded.rejected["reason"].to_pylist() if "original_width" in r]
    assert held and all(f"task {tasks[0]['id']} " in r for r in held)
    assert decoded.findings["check"].to_pylist().count("schema.missing_field") == len(held)


# --- report: points far past their image --------------------------------------------------------


@pytest.mark.parametrize("width, height", [(25, 20), (0, 0)])
def test_report_crop_of_points_far_outside_is_a_real_box(width, height):
    far = np.array([[1e5, 1e5, 2.0], [1e5 + 10, 1e5 + 10, 2.0]])
    crop = Crop.around([far], [], width, height)
    assert crop.x1 >= crop.x0 and crop.y1 >= crop.y0


# --- the entry point: a bug is one sentence, unless debugging -----------------------------------

BUG = (
    "import sys, kpdeliver.collect.inspect as i\n"
    "def boom(*a, **k): raise RuntimeError('simulated bug')\n"
    "i.inspect_path = boom\n"
    "sys.argv = ['kpdeliver', 'inspect', sys.argv[1]]\n"
    "from kpdeliver.cli import main\n"
    "main()\n"
)


@pytest.mark.parametrize("debug", [False, True])
def test_entry_point_turns_a_bug_into_one_sentence(tmp_path, monkeypatch, debug):
    env = {k: v for k, v in __import__("os").environ.items() if k != "KPDELIVER_DEBUG"}
    if debug:
        env["KPDELIVER_DEBUG"] = "1"
    src = write(tmp_path / "ann.json", coco_doc())
    done = subprocess.run(
        [sys.executable, "-c", BUG, str(src)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == (1 if debug else 2)
    if debug:
        assert "Traceback" in done.stderr and "simulated bug" in done.stderr
    else:
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith("internal error: RuntimeError: simulated bug")
        assert "please report it" in done.stderr and len(done.stderr.strip().splitlines()) == 1
