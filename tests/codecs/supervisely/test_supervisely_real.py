"""Supervisely projects written by Supervisely's own SDK (tests/fixtures/real/supervisely, see its
PROVENANCE.md), through the CLI as a user runs it: `inspect` recognises a project folder, one
annotation file and a .tar download; COCO -> Supervisely -> COCO and Supervisely -> COCO ->
Supervisely keep instances, keypoint order, flags and coordinates (0.01 px).

Expected counts are counted in the files themselves (json, not kpdeliver)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from kpdeliver.collect.files import read_annotations

ROOT = Path(__file__).resolve().parents[3]
REAL = ROOT / "tests" / "fixtures" / "real"
SLY = REAL / "supervisely"
KPDELIVER = Path(sys.executable).with_name("kpdeliver")
FILES = {
    "crowdpose/meta.json",
    "crowdpose/train/ann/107292.jpg.json",
    "crowdpose/train/ann/114203.jpg.json",
    "crowdpose/val/ann/104173.jpg.json",
    "crowdpose/val/ann/115625.jpg.json",
    "mixed_animals.tar",
}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([str(KPDELIVER), *args], capture_output=True, text=True, env=env, timeout=300)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    return proc


def inspect(path: Path) -> list[dict]:
    proc = run_cli("inspect", "--json", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def counted(ann_files: list[Path]) -> tuple[int, dict[str, int]]:
    """Graph objects and flags counted in annotation files: enabled node 2, disabled 1, absent 0."""
    meta = json.loads((SLY / "crowdpose/meta.json").read_text())
    k = len(next(c for c in meta["classes"] if c["shape"] == "graph")["geometry_config"]["nodes"])
    objects = [
        o for f in ann_files for o in json.loads(f.read_text())["objects"] if o["geometryType"] == "graph"
    ]
    disabled = sum(bool(n.get("disabled")) for o in objects for n in o["nodes"].values())
    nodes = sum(len(o["nodes"]) for o in objects)
    return len(objects), {"0": len(objects) * k - nodes, "1": disabled, "2": nodes - disabled}


def test_fixtures_are_listed_and_have_provenance():
    found = {
        p.relative_to(SLY).as_posix() for p in SLY.rglob("*") if p.is_file() and p.name != "PROVENANCE.md"
    }
    assert found == FILES
    assert "6.74.51" in (SLY / "PROVENANCE.md").read_text()


def test_inspect_recognises_a_project_folder_as_one_export():
    [report] = inspect(SLY / "crowdpose")
    n, hist = counted(sorted(SLY.glob("crowdpose/*/ann/*.json")))
    assert (report["format"], report["error"], report["num_keypoints"]) == ("supervisely", "", 14)
    assert (report["images"], report["instances"], report["visibility"]) == (4, n, hist) == (4, 9, hist)
    assert any("9 objects of geometry 'rectangle' (class 'person_box')" in o for o in report["oddities"])


def test_inspect_recognises_one_annotation_file_with_its_project_meta():
    one = SLY / "crowdpose/val/ann/104173.jpg.json"
    [report] = inspect(one)
    n, hist = counted([one])
    assert (report["format"], report["images"], report["instances"]) == ("supervisely", 1, n)
    assert report["visibility"] == hist


def test_inspect_reads_a_tar_download_and_reports_the_class_that_is_not_the_schema():
    [report] = inspect(SLY / "mixed_animals.tar")
    assert (report["num_keypoints"], report["instances"], report["visibility"]) == (17, 3, {"1": 3, "2": 48})
    assert (
        "3 items held back at decode" in report["oddities"]
    )  # the flies: their own class, not the mouse schema
    assert any("class 'fly'" in o for o in report["oddities"])
    assert any("3 objects of geometry 'polygon' (class 'ground')" in o for o in report["oddities"])


def canonical(ds) -> dict[str, np.ndarray]:
    """Instances per image file name as sorted (N, K, 3) rows; x, y of v=0 points zeroed."""
    kp = ds.instances.keypoints.copy()
    kp[kp[..., 2] == 0, :2] = 0.0
    row, names = ds.image_index(), ds.images.file_name.tolist()
    out: dict[str, list] = {str(n): [] for n in names}
    for i in range(len(kp)):
        out[str(names[row[i]])].append(kp[i])
    return {
        n: np.stack(sorted(v, key=lambda a: tuple(a.ravel()))) if v else np.zeros((0, *kp.shape[1:]))
        for n, v in out.items()
    }


def assert_same(a, b) -> None:
    assert b.schema.keypoints == a.schema.keypoints and len(b.instances) == len(a.instances)
    ca, cb = canonical(a), canonical(b)
    assert sorted(ca) == sorted(cb)
    for name in ca:
        np.testing.assert_array_equal(cb[name][..., 2], ca[name][..., 2], err_msg=name)
        np.testing.assert_allclose(cb[name][..., :2], ca[name][..., :2], atol=0.01, rtol=0, err_msg=name)


def convert(src: Path, to: str, out: Path, *extra: str) -> Path:
    proc = run_cli("convert", str(src), "--to", to, "--out", str(out), *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / "annotations.json" if to == "coco" else out


@pytest.mark.parametrize("src", ["crowdpose", "mixed_animals.tar"])
def test_supervisely_to_coco_and_back_is_exact(src, tmp_path):
    original = read_annotations(SLY / src).dataset
    as_coco = convert(SLY / src, "coco", tmp_path / "coco")
    assert_same(original, read_annotations(as_coco).dataset)
    back = convert(as_coco, "supervisely", tmp_path / "back")
    again = read_annotations(back).dataset
    assert_same(original, again)
    assert again.schema.skeleton == original.schema.skeleton


@pytest.mark.parametrize(
    "rel, category",
    [("xtcocoapi/example_crowdpose_val.json", None), ("sleap-io/coco/mixed_animals/annotations.json", "fly")],
)
def test_coco_to_supervisely_and_back_is_exact(rel, category, tmp_path):
    by = ("--category", category) if category else ()
    original = read_annotations(REAL / rel, category=category).dataset
    as_sly = convert(REAL / rel, "supervisely", tmp_path / "sly", *by)
    assert (as_sly / "meta.json").is_file()
    assert_same(original, read_annotations(as_sly).dataset)
    back = convert(as_sly, "coco", tmp_path / "coco")
    assert_same(original, read_annotations(back).dataset)
    assert json.loads(back.read_text())["categories"][0]["keypoints"] == list(original.schema.keypoints)


def test_a_project_downloaded_as_tar_gz_reads_like_the_folder(tmp_path):
    packed = tmp_path / "crowdpose.tar.gz"
    with tarfile.open(packed, "w:gz") as tar:
        tar.add(SLY / "crowdpose", arcname="crowdpose")
    assert_same(read_annotations(SLY / "crowdpose").dataset, read_annotations(packed).dataset)


def test_category_reads_the_other_graph_class_of_a_mixed_project(tmp_path):
    flies = read_annotations(SLY / "mixed_animals.tar", category="fly")
    assert (flies.dataset.schema.num_keypoints, len(flies.dataset.instances)) == (13, 3)
    assert (
        flies.rejected.num_rows == 3 and flies.dataset.schema.category == "fly"
    )  # now the mice are held back
    as_coco = convert(SLY / "mixed_animals.tar", "coco", tmp_path / "coco", "--category", "fly")
    assert_same(flies.dataset, read_annotations(as_coco).dataset)
    proc = run_cli(
        "convert",
        str(SLY / "mixed_animals.tar"),
        "--to",
        "coco",
        "--out",
        str(tmp_path / "x"),
        "--category",
        "bird",
    )
    assert proc.returncode == 2 and "no graph class 'bird'" in proc.stderr
