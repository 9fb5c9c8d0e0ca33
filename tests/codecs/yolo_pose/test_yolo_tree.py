"""YOLO trees that Ultralytics can train on: val: in data.yaml, the images in the tree, the source's
splits kept, and sizes from --images or --sizes when the input is YOLO."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from kpdeliver.codecs import yolo_pose
from kpdeliver.collect.files import read_annotations, write_dataset
from kpdeliver.collect.yolo_tree import place_images
from kpdeliver.schema import COCO17
from tests.codecs.conformance import make_dataset

ROOT = Path(__file__).resolve().parents[3]
KPDELIVER = Path(sys.executable).with_name("kpdeliver")


def _named(names):
    ds = make_dataset(COCO17, 3, n_images=len(names), max_per_image=1)
    ds.images.file_name[:] = names
    return ds


def test_data_yaml_always_has_val_pointing_at_train_when_there_is_no_val_split():
    doc = yaml.safe_load(yolo_pose.encode(_named(["a.jpg", "b.jpg"]))["data.yaml"])
    assert (doc["train"], doc["val"]) == ("images/train", "images/train")
    doc = yaml.safe_load(
        yolo_pose.encode(_named(["a.jpg", "b.jpg"]), split_of=np.array(["train", "val"]))["data.yaml"]
    )
    assert (doc["train"], doc["val"]) == ("images/train", "images/val")


def test_splits_named_by_the_image_paths_are_kept():
    names = [
        "images/val/a.jpg",
        "valid/images/b.jpg",
        "train/images/c.jpg",
        "cam1/d.jpg",
        "images/test/e.jpg",
    ]
    files = yolo_pose.encode(_named(names))
    assert sorted(k for k in files if k.startswith("labels/")) == [
        "labels/test/e.txt",
        "labels/train/c.txt",
        "labels/train/cam1__d.txt",
        "labels/val/a.txt",
        "labels/val/b.txt",
    ]
    assert yaml.safe_load(files["data.yaml"])["val"] == "images/val"


def _tree_with_val(tmp_path: Path) -> tuple[Path, object]:
    ds = _named(["images/train/a.jpg", "images/val/b.jpg", "images/val/c.jpg"])
    src = tmp_path / "src"
    write_dataset(ds, src, to="yolo")
    for n, w, h in zip(ds.images.file_name, ds.images.width, ds.images.height):
        (src / n).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (int(w), int(h))).save(src / n)
    return src, ds


def test_place_images_links_or_copies_each_image_beside_its_label(tmp_path):
    src, ds = _tree_with_val(tmp_path)
    out = tmp_path / "out"
    write_dataset(ds, out, to="yolo")
    written, missing = place_images(ds, out, src)
    assert missing == [] and sorted(p.relative_to(out).as_posix() for p in written) == [
        "images/train/a.jpg",
        "images/val/b.jpg",
        "images/val/c.jpg",
    ]


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([str(KPDELIVER), *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_yolo_to_yolo_keeps_val_and_carries_the_images(tmp_path):
    src, ds = _tree_with_val(tmp_path)
    _cli("convert", str(src), "--to", "yolo", "--out", str(tmp_path / "again"))
    again = tmp_path / "again"
    assert sorted(p.relative_to(again).as_posix() for p in again.rglob("*.jpg")) == [
        "images/train/a.jpg",
        "images/val/b.jpg",
        "images/val/c.jpg",
    ]
    assert sorted(p.relative_to(again).as_posix() for p in again.rglob("*.txt")) == [
        "labels/train/a.txt",
        "labels/val/b.txt",
        "labels/val/c.txt",
    ]
    back = read_annotations(again).dataset
    assert len(back.instances) == len(ds.instances)


def test_yolo_input_takes_sizes_from_images_or_sizes_file(tmp_path):
    src, ds = _tree_with_val(tmp_path)
    labels_only = tmp_path / "labels_only"
    write_dataset(ds, labels_only, to="yolo")
    assert len(read_annotations(labels_only).dataset.instances) == 0  # no image: no size, held back
    by_images = read_annotations(labels_only, images_dir=src).dataset
    assert len(by_images.instances) == len(ds.instances)
    sizes = tmp_path / "sizes.csv"
    sizes.write_text(
        "file_name,width,height\n"
        + "".join(
            f"{Path(n).name},{w},{h}\n"
            for n, w, h in zip(ds.images.file_name, ds.images.width, ds.images.height)
        )
    )
    _cli("convert", str(labels_only), "--to", "coco", "--out", str(tmp_path / "coco"), "--sizes", str(sizes))
    coco = read_annotations(tmp_path / "coco" / "annotations.json").dataset
    assert sorted(coco.images.width.tolist()) == sorted(ds.images.width.tolist())
    assert len(coco.instances) == len(ds.instances)
    _cli("convert", str(labels_only), "--to", "coco", "--out", str(tmp_path / "coco2"), "--images", str(src))
    assert len(read_annotations(tmp_path / "coco2" / "annotations.json").dataset.instances) == len(
        ds.instances
    )
