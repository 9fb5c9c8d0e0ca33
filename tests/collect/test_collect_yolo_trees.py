"""YOLO Pose trees dropped under `annotations/<annotator>/` as Roboflow, CVAT and SLEAP write them
are collected like `convert` reads them: labels by Ultralytics' images/labels rule, sizes from the
batch's own images, split lists honoured (their background images kept), READMEs and split lists
never read as labels.

The trees are faithful synthetic copies of each tool's layout (file names, data.yaml fields, split
list lines), with label lines computed from known points: the tools' real exports are not in the
repository's fixtures.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml

from kpdeliver.collect.files import read_annotations
from kpdeliver.schema import KeypointSchema
from kpdeliver.storage import LocalStore
from tests.collect.batch_helpers import checks, collect, placeholder, put_images

K = 3
SCHEMA = KeypointSchema(
    name="tri", keypoints=("a", "b", "c"), skeleton=((0, 1), (1, 2)), flip_pairs=(), sigmas=(0.05,) * K
)
SIZES = {
    "cat_01.jpg": (640, 480),
    "cat_02.jpg": (320, 240),
    "cat_03.jpg": (800, 600),
    "cat_04.jpg": (400, 400),
}
BACKGROUND = "cat_04.jpg"  # listed in the split list, no person: no label file


def _points(i: int) -> np.ndarray:
    """Normalised points of image i: [K, 3] (x, y, v)."""
    return np.array([[0.1 + 0.1 * i, 0.2, 2], [0.3, 0.4 + 0.05 * i, 1], [0.5, 0.6, 2]])


def _line(i: int) -> str:
    kp = _points(i)
    return "0 0.5 0.5 0.8 0.8 " + " ".join(f"{x:.6f} {y:.6f} {int(v)}" for x, y, v in kp) + "\n"


def _labeled() -> list[str]:
    return [n for n in sorted(SIZES) if n != BACKGROUND]


def roboflow(put) -> None:
    put(
        "data.yaml",
        yaml.safe_dump(
            {
                "train": "../train/images",
                "val": "../valid/images",
                "test": "../test/images",
                "nc": 1,
                "names": ["cat"],
                "kpt_shape": [K, 3],
                "flip_idx": [0, 1, 2],
                "roboflow": {
                    "workspace": "ws",
                    "project": "cats",
                    "version": 2,
                    "license": "CC BY 4.0",
                    "url": "https://universe.roboflow.com/ws/cats/dataset/2",
                },
            }
        ),
    )
    put(
        "README.roboflow.txt",
        "\ncats - v2 2026-01-01\n==============================\n"
        "This dataset was exported via roboflow.com\n",
    )
    put(
        "README.dataset.txt",
        "# cats > 2026-01-01\nhttps://universe.roboflow.com/ws/cats\n\nProvided by a Roboflow user\n",
    )
    for i, name in enumerate(_labeled()):
        split = "valid" if i == 1 else "train"
        put(f"{split}/labels/{name[:-4]}.txt", _line(i))


def roboflow_renamed(put) -> None:
    """Roboflow as it names files: `cat_01.jpg` becomes `cat_01_jpg.rf.<hash>.jpg`, its images in the tree."""
    roboflow(lambda rel, text: None if "/labels/" in rel else put(rel, text))
    for i, name in enumerate(_labeled()):
        split = "valid" if i == 1 else "train"
        renamed = f"{name[:-4]}_jpg.rf.{i:02d}5f0c1e8d2b7a9c4e6f1a3b5d7c9e0f2a"
        put(f"{split}/labels/{renamed}.txt", _line(i))
        put(f"{split}/images/{renamed}.jpg", placeholder(*SIZES[name], 100 + i))


def cvat(put) -> None:
    """CVAT's "Ultralytics YOLO Pose 1.0": data.yaml naming one list file per subset, images/<subset>/,
    labels/<subset>/ (no label file for an image without shapes)."""
    put(
        "data.yaml",
        f"path: .\ntrain: train.txt\nValidation: Validation.txt\nnames:\n  0: cat\nkpt_shape:\n- {K}\n- 3\n",
    )
    labeled = _labeled()
    put("train.txt", "".join(f"images/train/{n}\n" for n in [labeled[0], labeled[2], BACKGROUND]))
    put("Validation.txt", f"images/Validation/{labeled[1]}\n")
    for i, name in enumerate(labeled):
        subset = "Validation" if i == 1 else "train"
        put(f"labels/{subset}/{name[:-4]}.txt", _line(i))


def sleap(put) -> None:
    """sleap-io's Ultralytics export: `<split>/images`, `<split>/labels`, data.yaml with an absolute path."""
    put(
        "data.yaml",
        yaml.safe_dump(
            {
                "path": "/home/someone/ultralytics",
                "train": "train/images",
                "val": "val/images",
                "kpt_shape": [K, 3],
                "flip_idx": [0, 1, 2],
                "names": {0: "cat"},
            }
        ),
    )
    for i, name in enumerate(_labeled()):
        put(f"{'val' if i == 1 else 'train'}/labels/{name[:-4]}.txt", _line(i))


def _bytes(data: str | bytes) -> bytes:
    return data if isinstance(data, bytes) else data.encode()


LAYOUTS = {"roboflow": roboflow, "roboflow-renamed": roboflow_renamed, "cvat": cvat, "sleap": sleap}


@pytest.mark.parametrize("tool", sorted(LAYOUTS))
def test_a_tool_yolo_tree_under_an_annotator_is_collected_and_sized_from_the_batch(tmp_path, tool):
    store = LocalStore(tmp_path)
    put_images(store, SIZES)
    LAYOUTS[tool](lambda rel, data: store.put(f"annotations/ann_a/{tool}_export/{rel}", _bytes(data)))
    res = collect(store, SCHEMA, ["ann_a"])
    assert "error" not in res.findings["severity"].to_pylist(), res.findings["message"].to_pylist()
    assert res.rejected.num_rows == 0
    ins, im = res.dataset.instances, res.dataset.images
    assert len(ins) == len(_labeled())
    names = dict(zip(im.id.tolist(), im.file_name.tolist()))
    for row, image_id in enumerate(ins.image_id.tolist()):
        name = names[image_id]
        i = _labeled().index(name)
        w, h = SIZES[name]
        assert np.allclose(ins.keypoints[row, :, :2], _points(i)[:, :2] * [w, h], atol=1e-3)
        assert ins.v[row].tolist() == _points(i)[:, 2].tolist()
    assert {c.name for c in res.dataset.categories} == {"cat"}


@pytest.mark.parametrize("tool", sorted(LAYOUTS))
def test_convert_reads_the_same_tree_without_reading_lists_or_readmes_as_labels(tmp_path, tool):
    root = tmp_path / "export"

    def put(rel: str, data: str | bytes) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(_bytes(data))

    LAYOUTS[tool](put)
    images = tmp_path / "images"
    images.mkdir()
    for i, (name, (w, h)) in enumerate(sorted(SIZES.items())):
        (images / name).write_bytes(placeholder(w, h, i))
    decoded = read_annotations(root, schema=SCHEMA, images_dir=images)
    assert decoded.rejected.num_rows == 0, decoded.rejected["reason"].to_pylist()
    assert len(decoded.dataset.instances) == len(_labeled())
    listed = {BACKGROUND} if tool == "cvat" else set()  # the split list's background image is kept
    names = {
        re.sub(r"_jpg\.rf\.\w+\.jpg$", ".jpg", n.rsplit("/", 1)[-1]) for n in decoded.dataset.images.file_name
    }
    assert names == set(_labeled()) | listed


def test_fractional_visibility_flags_in_a_yolo_label_are_named_not_silently_kept(tmp_path):
    store = LocalStore(tmp_path)
    put_images(store, SIZES)
    sleap(lambda rel, data: store.put(f"annotations/ann_a/ultralytics/{rel}", _bytes(data)))
    store.put(
        "annotations/ann_a/ultralytics/train/labels/cat_01.txt",
        b"0 0.5 0.5 0.8 0.8 0.1 0.2 0.37 0.3 0.4 2 0.5 0.6 0.04\n",
    )
    res = collect(store, SCHEMA, ["ann_a"])
    flags = [r for r in res.findings.to_pylist() if r["check"] == "visibility.invalid_flag"]
    assert len(flags) == 1
    assert (
        "a=0.37" in flags[0]["message"]
        and "c=0.04" in flags[0]["message"]
        and "line 1" in flags[0]["message"]
    )
    assert flags[0]["file_name"] == "cat_01.jpg"


def test_a_tree_whose_data_yaml_is_unusable_is_one_named_finding(tmp_path):
    store = LocalStore(tmp_path)
    put_images(store, SIZES)
    store.put("annotations/ann_a/export/data.yaml", b"names: [cat]\n")  # no kpt_shape
    store.put("annotations/ann_a/export/labels/train/cat_01.txt", _line(0).encode())
    res = collect(store, SCHEMA, ["ann_a"])
    assert checks(res) == ["collect.unreadable_file"]
    assert (
        "kpt_shape" in res.findings["message"][0].as_py() and "export/" in res.findings["source"][0].as_py()
    )
