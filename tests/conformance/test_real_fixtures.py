"""Real annotation files from other public projects (tests/fixtures/real, see each PROVENANCE.md),
run through the most stable surface, the CLI in a subprocess, as a new user would.

For every fixture: `inspect` never shows a traceback and exits 0, or 2 with a clear error. Every file
that decodes goes to COCO and back to its own format with instance counts, keypoint order,
visibility flags and labelled coordinates (0.01 px) intact. YOLO trees that `convert` writes are
handed to Ultralytics' own `check_det_dataset` and `verify_image_label` in the benchmark venv (the
`ultralytics_python` fixture of tests/conftest.py finds it in the checkout; missing, those tests fail).

The expected counts are independent of kpdeliver: they were counted by hand in the files (the
comments say how). Known gaps of issue 11 are strict xfails named by their class; when a fix lands
the xfail turns into a failure, and the marker is removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from kpdeliver.collect.files import read_annotations

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "fixtures" / "real"
KPDELIVER = Path(sys.executable).with_name("kpdeliver")
PHOTOS_DIR = "pillow/"
PROJECTS_DIR = "supervisely/"  # Supervisely projects: tests/codecs/supervisely/test_supervisely_real.py


def xfail(cls: str):
    return pytest.mark.xfail(strict=True, reason=f"issue 11: {cls}")


# rel path: (instances, keypoints per instance, visibility histogram) as counted in the file,
# or None when the file is not an annotation export and must be refused clearly.
FIXTURES = {
    # 3 images, each one mouse (17 points, v=2) and one fly (13 points, v=2).
    "sleap-io/coco/mixed_animals/annotations.json": (6, None, {"2": 3 * 17 + 3 * 13}),
    # 3 mice; per instance 6 points v=0 (with real coordinates) and 11 v=1.
    "sleap-io/coco/visibility_binary/annotations.json": (3, 17, {"0": 18, "1": 33}),
    # Label Studio export, no labeling config: 4 pups (pup1/pup2 rectangles on 2 tasks; 4+3+4+4
    # points tied to them by relations), plus 'uniqbp' points (moth_*, nest) that belong to no box.
    "sleap-io/labelstudio/multi_animal_from_dlc.json": (4, 4, None),
    # CVAT images example: one 3-point skeleton, all outside=0; a 4-point free <points> shape.
    "cvat/xml_format.example-images.xml": (1, 3, {"2": 3}),
    # CVAT video example, skeleton track in the documented layout: keyframes 0, 6, 13 visible,
    # 1, 7, 14 entirely outside (no instance there).
    "cvat/xml_format.example-video.xml": (3, 3, {"2": 9}),
    # CrowdPose ground truth in COCO form (xtcocoapi demo): 4 images, 10 people, 14 points, every
    # 'num_keypoints' but one differs from its v>0 count, skeleton written with COCO-17 indices
    # (3 edges point past the 14 keypoints), 'crowdIndex' on each image.
    "xtcocoapi/example_crowdpose_val.json": (10, 14, {"0": 21, "1": 77, "2": 42}),
    # A 30-image slice of COCO val2017 person keypoints (super-gradients test data): 65 people, 25
    # of them with no labelled point at all (num_keypoints 0, all zeros), 10 images with no person.
    "super-gradients/person_keypoints_val2017.json": (65, 17, {"0": 789, "1": 33, "2": 283}),
    # Not annotation exports: an mmpose dataset_info file and a single Label Studio result object.
    "deeplabcut/quadruped_dataset.json": None,
    "label-studio/keypointlabels.example.json": None,
}

INSPECT_XFAIL = {}

DECODABLE = [rel for rel, exp in FIXTURES.items() if exp is not None]
ROUNDTRIP_XFAIL = {}


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [str(KPDELIVER), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-3000:]


def params(rels, xfails):
    return [pytest.param(r, marks=xfail(xfails[r])) if r in xfails else r for r in sorted(rels)]


def test_every_real_fixture_is_listed_and_has_provenance():
    """Annotation files are listed here; the photos under pillow/ in test_real_photos.py."""
    files = {
        p.relative_to(REAL).as_posix()
        for p in REAL.rglob("*")
        if p.is_file()
        and p.name != "PROVENANCE.md"
        and not p.relative_to(REAL).as_posix().startswith((PHOTOS_DIR, PROJECTS_DIR))
    }
    assert files == set(FIXTURES)
    for project in {Path(r).parts[0] for r in FIXTURES} | {PHOTOS_DIR.rstrip("/"), PROJECTS_DIR.rstrip("/")}:
        assert (REAL / project / "PROVENANCE.md").is_file(), project


@pytest.mark.parametrize("rel", params(FIXTURES, INSPECT_XFAIL))
def test_inspect_gives_counts_or_a_clear_refusal(rel):
    proc = run_cli("inspect", "--json", str(REAL / rel))
    no_traceback(proc)
    expected = FIXTURES[rel]
    if expected is None:
        assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
        assert "cannot read" in proc.stdout + proc.stderr
        return
    assert proc.returncode == 0, proc.stderr
    reports = json.loads(proc.stdout)  # one per keypoint category: a mouse and a fly are two schemas
    instances, k, hist = expected
    assert [r["error"] for r in reports] == [""] * len(reports)
    assert sum(r["instances"] for r in reports) == instances
    if k is not None:
        assert [r["num_keypoints"] for r in reports] == [k]
    if hist is not None:
        total: dict[str, int] = {}
        for r in reports:
            for flag, n in r["visibility"].items():
                total[flag] = total.get(flag, 0) + n
        assert total == hist


def canonical(ds) -> dict[str, np.ndarray]:
    """Instances per image base name, as (N, K, 3) sorted rows; x, y of v=0 points are zeroed
    (COCO says an unlabelled point has no position, so a format may drop it)."""
    names = ds.images.file_name.tolist()
    row = ds.image_index()
    kp = np.concatenate([ds.instances.xy, ds.instances.v[..., None].astype(float)], axis=-1)
    kp[kp[..., 2] == 0, :2] = 0.0
    out: dict[str, list] = {}
    for i in range(len(ds.instances)):
        out.setdefault(Path(str(names[row[i]])).name, []).append(kp[i])
    return {n: np.stack(sorted(v, key=lambda a: tuple(a.ravel()))) for n, v in out.items()}


def assert_same(a, b) -> None:
    assert len(b.instances) == len(a.instances)
    assert tuple(b.schema.keypoints) == tuple(a.schema.keypoints)
    ca, cb = canonical(a), canonical(b)
    assert sorted(ca) == sorted(cb)
    for name in ca:
        np.testing.assert_array_equal(cb[name][..., 2], ca[name][..., 2], err_msg=name)
        np.testing.assert_allclose(cb[name][..., :2], ca[name][..., :2], atol=0.01, rtol=0, err_msg=name)


OWN_FORMAT = {".json": "coco", ".xml": "cvat"}


def own_format(rel: str) -> str:
    return "label-studio" if "labelstudio" in rel else OWN_FORMAT[Path(rel).suffix]


def convert(src: Path, to: str, out: Path, *extra: str) -> Path:
    proc = run_cli("convert", str(src), "--to", to, "--out", str(out), *extra)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if to == "yolo":
        return out
    [written] = [p for p in out.rglob("*") if p.suffix in (".json", ".xml") and p.name != "label_config.xml"]
    return written


@pytest.mark.parametrize("rel", params(DECODABLE, ROUNDTRIP_XFAIL))
def test_to_coco_and_back_keeps_instances_order_flags_and_coordinates(rel, tmp_path):
    src = REAL / rel
    categories = CATEGORIES.get(rel, [None])
    total = 0
    for category in categories:  # a file of several keypoint categories: each is its own schema
        original = read_annotations(src, category=category).dataset
        total += len(original.instances)
        by = ("--category", category) if category else ()
        as_coco = convert(src, "coco", tmp_path / f"coco{category}", *by)
        assert_same(original, read_annotations(as_coco).dataset)
        extra = ("--cvat-mode", "video") if "video" in rel else ()
        back = convert(as_coco, own_format(rel), tmp_path / f"back{category}", *extra)
        assert_same(original, read_annotations(back).dataset)
    assert total == FIXTURES[rel][0]


CATEGORIES = {"sleap-io/coco/mixed_animals/annotations.json": ["mouse", "fly"]}


# --- YOLO trees in the layouts Ultralytics' own dataset YAMLs use ------------------------------------
# Ultralytics is AGPL-3.0, so none of its files is vendored here; its dataset layouts are facts,
# written out by the test: tiger-pose (`kpt_shape: [12, 2]`, no visibility column, `train: train`
# meaning train/images + train/labels), dog-pose (`[24, 3]` with no flip_idx at all) and coco8-pose
# (`images/train` folders, COCO flip_idx, an empty `test:` key). Label rows are deterministic, every
# visibility value, 2 images per split.
COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
YOLO_LAYOUTS = {
    "xy-only-no-flip-split-dirs": ({"kpt_shape": [12, 2]}, "train", "val", ""),
    "no-flip-idx-split-dirs": ({"kpt_shape": [24, 3]}, "train", "val", ""),
    "images-dirs-empty-test-key": (
        {"kpt_shape": [17, 3], "flip_idx": COCO_FLIP},
        "images/train",
        "images/val",
        "test: # no test split\n",
    ),
}


def split_dirs(spec: str) -> tuple[str, str]:
    """Image and label folder of one split, as Ultralytics' img2label_paths maps them."""
    if spec.startswith("images/"):
        return spec, "labels/" + spec.removeprefix("images/")
    return f"{spec}/images", f"{spec}/labels"


def build_yolo_tree(layout: str, root: Path) -> tuple[int, int]:
    keys, train, val, extra = YOLO_LAYOUTS[layout]
    k, dims = keys["kpt_shape"]
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(
        f"train: {train}\nval: {val}\n{extra}kpt_shape: [{k}, {dims}]\n"
        + (f"flip_idx: {keys['flip_idx']}\n" if "flip_idx" in keys else "")
        + "names:\n  0: animal\n"
    )
    rng = np.random.default_rng(k * 10 + dims)
    rows = 0
    for split, spec in (("train", train), ("val", val)):
        img_dir, lbl_dir = split_dirs(spec)
        for j in range(2):
            lines = []
            for _ in range(j + 1):
                xy = rng.uniform(0.1, 0.9, (k, 2)).round(6)
                v = rng.integers(0, 3, k)
                if dims == 3:
                    xy[v == 0] = 0.0
                    pts = " ".join(f"{x:.6f} {y:.6f} {int(c)}" for (x, y), c in zip(xy, v))
                else:
                    pts = " ".join(f"{x:.6f} {y:.6f}" for x, y in xy)
                lines.append(f"0 0.500000 0.500000 0.800000 0.800000 {pts}")
                rows += 1
            label = root / lbl_dir / f"{split}_{j}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text("\n".join(lines) + "\n")
            write_jpeg(root / img_dir / f"{split}_{j}.jpg", 64, 48)
    return rows, k


def write_jpeg(path: Path, w: int, h: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (max(int(w), 10), max(int(h), 10)), (90, 120, 150)).save(path, quality=70)


@pytest.mark.parametrize("layout", sorted(YOLO_LAYOUTS))
def test_yolo_tree_in_ultralytics_layouts_reads_and_roundtrips(layout, tmp_path):
    root = tmp_path / layout
    rows, k = build_yolo_tree(layout, root)
    proc = run_cli("inspect", "--json", str(root))
    no_traceback(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [report] = json.loads(proc.stdout)
    assert (report["instances"], report["num_keypoints"]) == (rows, k)
    original = read_annotations(root).dataset
    as_coco = convert(root, "coco", tmp_path / "coco")
    assert_same(original, read_annotations(as_coco).dataset)
    back = convert(as_coco, "yolo", tmp_path / "back", "--images", str(root))
    assert_same(original, read_annotations(back).dataset)
    # the source's splits are kept: what was val stays val
    split_of = {p.stem: p.parent.name for p in back.rglob("*.txt")}
    assert split_of == {f"{s}_{j}": s for s in ("train", "val") for j in range(2)}
    again = convert(root, "yolo", tmp_path / "again")  # YOLO -> YOLO, its own images carried along
    assert {p.relative_to(again).as_posix() for p in again.rglob("*.jpg")} == {
        f"images/{s}/{s}_{j}.jpg" for s in ("train", "val") for j in range(2)
    }
    assert_same(original, read_annotations(again).dataset)


@pytest.mark.parametrize("layout", sorted(YOLO_LAYOUTS))
def test_yolo_from_a_tree_in_ultralytics_layouts_passes_ultralytics_checks(
    layout, tmp_path, ultralytics_python
):
    build_yolo_tree(layout, tmp_path / layout)
    again = convert(tmp_path / layout, "yolo", tmp_path / "again")
    assert ultralytics_verdict(ultralytics_python, again / "data.yaml", tmp_path) == {"check": "", "bad": []}


# --- Ultralytics' own checks on what `convert --to yolo` writes -------------------------------------
ULTRA_CHECK = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from ultralytics.data.utils import check_det_dataset, img2label_paths, verify_image_label
    data_yaml = Path(sys.argv[1])
    out = {"check": "", "bad": []}
    try:
        data = check_det_dataset(str(data_yaml))
    except Exception as e:  # what the user would see from `yolo train`
        out["check"] = f"{type(e).__name__}: {e}"
        data = None
    if data is not None:
        nkpt, ndim = data["kpt_shape"]
        for split in ("train", "val"):
            for im in sorted(Path(data[split]).rglob("*.jpg")):
                [lb] = img2label_paths([str(im)])
                r = verify_image_label((str(im), lb, "", True, len(data["names"]), nkpt, ndim, False))
                if r[0] is None or r[8]:
                    out["bad"].append([str(im), r[-1]])
    print(json.dumps(out))
    """
)


def ultralytics_verdict(python: Path, data_yaml: Path, tmp_path: Path) -> dict:
    env = {**os.environ, "YOLO_CONFIG_DIR": str(tmp_path / "yolo-config"), "YOLO_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [str(python), "-c", ULTRA_CHECK, str(data_yaml)], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


ULTRA_SOURCES = [rel for rel in DECODABLE if rel not in ROUNDTRIP_XFAIL]


@pytest.mark.parametrize("rel", ULTRA_SOURCES)
def test_yolo_written_by_convert_passes_ultralytics_checks(rel, tmp_path, ultralytics_python):
    """The fixtures come without images: tiny JPEGs of each image's size stand in for them, and
    `convert --images` puts them into the tree."""
    from kpdeliver.codecs.coco.categories import SeveralCategories
    from kpdeliver.codecs.label_studio.paths import image_path

    try:
        categories = [None]
        read_annotations(REAL / rel)
    except SeveralCategories as several:  # each category is its own schema, so its own YOLO tree
        categories = list(several.categories)
    for category in categories:
        option = ["--category", category] if category else []
        ds = read_annotations(REAL / rel, category=category).dataset
        photos, out = tmp_path / f"photos-{category}", tmp_path / f"yolo-{category}"
        for n, w, h in zip(ds.images.file_name.tolist(), ds.images.width.tolist(), ds.images.height.tolist()):
            write_jpeg(photos / (Path(image_path(str(n))).stem + ".jpg"), w, h)
        tree = convert(REAL / rel, "yolo", out, "--images", str(photos), *option)
        assert len(list(tree.rglob("*.jpg"))) == len(ds.images)
        verdict = ultralytics_verdict(ultralytics_python, tree / "data.yaml", tmp_path)
        assert verdict == {"check": "", "bad": []}, category


# --- left/right pairs from real names ---------------------------------------------------------------
def test_flip_idx_from_deeplabcut_quadruped_names_matches_its_swap_table(tmp_path):
    info = json.loads((REAL / "deeplabcut/quadruped_dataset.json").read_text())["dataset_info"][
        "keypoint_info"
    ]
    names = [info[str(i)]["name"] for i in range(len(info))]
    truth = [names.index(info[str(i)]["swap"]) if info[str(i)]["swap"] else i for i in range(len(names))]
    kps = []
    for i in range(len(names)):
        kps += [10.0 + 2 * i, 20.0 + i, 2]
    coco = {
        "images": [{"id": 1, "file_name": "dog.jpg", "width": 200, "height": 200}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "keypoints": kps,
                "num_keypoints": len(names),
                "bbox": [5, 5, 100, 100],
                "area": 10000,
                "iscrowd": 0,
            }
        ],
        "categories": [{"id": 1, "name": "quadruped", "keypoints": names, "skeleton": []}],
    }
    src = tmp_path / "quadruped.json"
    src.write_text(json.dumps(coco))
    tree = convert(src, "yolo", tmp_path / "yolo")
    assert yaml.safe_load((tree / "data.yaml").read_text())["flip_idx"] == truth
