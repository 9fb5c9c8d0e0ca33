"""`kpdeliver convert`, `inspect` and `schemas` from the command line, on every fixture folder
(what each command imports: tests/cli/test_cli_imports.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kpdeliver.cli import app
from tests.conformance.test_external_formats import COCO_FILES, OTHER_FILES, REFUSED

runner = CliRunner()


def _folders() -> list[str]:
    """Every fixture folder holding keypoint files (a YOLO set is its own folder)."""
    out = set()
    for rel in [*COCO_FILES, *OTHER_FILES, *REFUSED]:
        out.add(rel if "." not in Path(rel).name else str(Path(rel).parent))
    return sorted(out)


REFUSED_ONLY = {str(Path(r).parent) for r in REFUSED} - {
    str(Path(r).parent) for r in [*COCO_FILES, *OTHER_FILES]
}


@pytest.mark.parametrize("folder", _folders())
def test_inspect_every_fixture_folder(external, folder):
    res = runner.invoke(app, ["inspect", str(external / folder), "--json"])
    if folder in REFUSED_ONLY:
        assert res.exit_code == 2, res.output
        return
    assert res.exit_code == 0, res.output
    reports = json.loads(res.stdout)
    expected = {**COCO_FILES, **OTHER_FILES}
    for r in reports:
        rel = Path(r["path"]).relative_to(external).as_posix()
        if rel in expected:
            images, instances, k = expected[rel][:3]
            assert (r["images"], r["instances"], r["num_keypoints"]) == (images, instances, k), rel
            assert r["format"] in ("coco", "cvat", "label-studio", "yolo")
        else:
            assert rel in REFUSED and r["error"], rel


@pytest.mark.parametrize("to", ["coco", "yolo", "cvat", "label-studio"])
@pytest.mark.parametrize("folder", _folders())
def test_convert_every_fixture_folder(external, tmp_path, folder, to):
    res = runner.invoke(app, ["convert", str(external / folder), "--to", to, "--out", str(tmp_path)])
    if folder in REFUSED_ONLY:
        assert res.exit_code == 2 and "error:" in res.output, res.output
        return
    assert res.exit_code == 0, res.output
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written
    if to == "yolo":
        doc = yaml.safe_load((tmp_path / "data.yaml").read_text())
        assert len(doc["flip_idx"]) == doc["kpt_shape"][0] and doc["kpt_shape"][1] == 3


def test_converted_output_reads_back_with_same_counts(external, tmp_path):
    src = external / "mmpose/coco/test_coco.json"
    for to in ("cvat", "label-studio", "coco"):
        out = tmp_path / to
        assert (
            runner.invoke(
                app, ["convert", str(src), "--to", to, "--schema", "coco17", "--out", str(out)]
            ).exit_code
            == 0
        )
        res = runner.invoke(app, ["inspect", str(out), "--json"])
        r = json.loads(res.stdout)[0]
        assert (r["images"], r["instances"], r["visibility"]) == (4, 14, {"0": 57, "1": 17, "2": 164}), to


def test_schemas_lists_builtins_with_counts_and_sources():
    res = runner.invoke(app, ["schemas"])
    assert res.exit_code == 0
    for name, k in (("coco17", "17"), ("face68", "68"), ("face98", "98"), ("hand21", "21")):
        line = next(ln for ln in res.output.splitlines() if name in ln.split())  # plain columns when piped
        assert k in line.split()
    assert "COCO-WholeBody" in res.output


def test_bad_schema_and_missing_input_fail_in_one_sentence(tmp_path):
    res = runner.invoke(app, ["convert", str(tmp_path / "nope.json"), "--to", "yolo", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "no such file" in res.output
    res = runner.invoke(
        app, ["convert", str(tmp_path), "--to", "yolo", "--schema", "coco99", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2 and "unknown schema" in res.output
