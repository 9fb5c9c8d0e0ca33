"""`convert` on a real COCO file with an instance on an image the file does not list, or with
visibility flags that are scores (0.04-0.37, as an mmpose file writes them): a named finding for
that instance, the rest converted; never a refusal of the whole file, never a silent `0 0 0`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kpdeliver.cli import app
from kpdeliver.collect.files import read_annotations

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real" / "super-gradients"
REAL = REAL / "person_keypoints_val2017.json"  # a real COCO val2017 subset
runner = CliRunner()


def _doc() -> dict:
    return json.loads(REAL.read_bytes())


@pytest.mark.parametrize("to", ["cvat", "yolo", "label-studio", "coco"])
def test_an_instance_on_an_unlisted_image_is_named_and_the_rest_converted(tmp_path, to):
    doc = _doc()
    orphan = doc["annotations"][5]
    orphan["image_id"] = 999_999_999
    src = tmp_path / "in.json"
    src.write_text(json.dumps(doc))
    res = runner.invoke(app, ["convert", str(src), "--to", to, "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert f"annotation id={orphan['id']}" in res.output and "999999999" in res.output
    assert _written(tmp_path / "out", to) == len(doc["annotations"]) - 1


def _written(out: Path, to: str) -> int:
    """Instances in the written output (YOLO: label lines; it holds no image sizes to read back by)."""
    if to == "yolo":
        return sum(len(f.read_text().splitlines()) for f in out.rglob("labels/**/*.txt"))
    return len(read_annotations(out, schema=None).dataset.instances)


def test_fractional_flags_are_named_with_what_yolo_writes(tmp_path):
    doc = _doc()
    ann = next(a for a in doc["annotations"] if a["num_keypoints"] >= 5)
    labeled = [j for j in range(17) if ann["keypoints"][3 * j + 2] > 0]
    ann["keypoints"][3 * labeled[0] + 2] = 0.37
    ann["keypoints"][3 * labeled[1] + 2] = 0.04
    src = tmp_path / "in.json"
    src.write_text(json.dumps(doc))
    res = runner.invoke(app, ["convert", str(src), "--to", "yolo", "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    warning = next(line for line in res.output.splitlines() if "warning:" in line and "visibility" in line)
    assert f"annotation id={ann['id']}" in warning
    assert "=0.37 -> v=0" in warning and "=0.04 -> v=0" in warning
