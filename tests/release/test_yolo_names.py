"""YOLO file names one-to-one with the batch keys: images whose names used to flatten to the same
YOLO name (`x.jpg` and `train/x.jpg`, `sub/x.jpg` and `sub__x.jpg`, `x.jpg` and `x.png`) each get their
own label and image file, with as many lines as their people; a key listed twice is refused naming both."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpdeliver.codecs import CodecError
from kpdeliver.codecs.yolo_pose import encode, unique_stems, yolo_stem
from kpdeliver.model import Dataset, Images, Instances
from kpdeliver.schema import COCO17

CLASHING = [
    "x.jpg",
    "train/x.jpg",
    "images/train/x.jpg",
    "sub/x.jpg",
    "sub__x.jpg",
    "x.png",
    "x.JPG",
    "x.png.jpg",
    "x%2Epng.jpg",
    ".x.jpg",
    "%2Ex.jpg",
    "a\\b.jpg",
    "a/b.jpg",
]


def _dataset(names: list[str]) -> Dataset:
    n = len(names)
    people = np.arange(n) % 3 + 1  # 1, 2 or 3 people per image
    image_id = np.repeat(np.arange(1, n + 1), people)
    kps = np.tile([40.0, 30.0, 2.0], (len(image_id), 17, 1))
    return Dataset(
        COCO17,
        Images.build(id=np.arange(1, n + 1), file_name=names, width=[200] * n, height=[100] * n),
        Instances.build(id=np.arange(1, len(image_id) + 1), image_id=image_id, keypoints=kps),
    )


def test_images_whose_names_used_to_flatten_alike_each_keep_their_own_label_file():
    ds = _dataset(CLASHING)
    files = encode(ds, split_of=np.array(["train"] * len(CLASHING), dtype=object), one_to_one=True)
    labels = {k: v for k, v in files.items() if k.startswith("labels/")}
    assert len(labels) == len(CLASHING)  # before: 5 label files for 13 images
    for name, stem, people in zip(CLASHING, unique_stems(CLASHING), np.arange(len(CLASHING)) % 3 + 1):
        assert labels[f"labels/train/{stem}.txt"].count(b"\n") == people, name


def test_plain_jpg_names_are_kept_and_the_extension_otherwise_stays_in_the_stem():
    assert yolo_stem("scene_001.jpg") == "scene_001"
    assert yolo_stem("sub/x.jpg") == "sub%2Fx" and yolo_stem("sub__x.jpg") == "sub__x"
    assert yolo_stem("x.png") == "x%2Epng" and yolo_stem("train/x.jpg") == "train%2Fx"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(alphabet="ab_./\\%2EFjpgn", min_size=1, max_size=12), min_size=2, max_size=8, unique=True
    )
)
def test_distinct_keys_never_share_a_stem(names):
    assert len(set(unique_stems(names))) == len(names)


def test_an_image_listed_twice_keeps_the_lines_of_both_rows_in_one_file():
    ds = _dataset(["sub/x.jpg", "y.jpg", "sub/x.jpg"])  # 1, 2 and 3 people
    files = encode(ds, split_of=np.array(["train"] * 3, dtype=object), one_to_one=True)
    assert (
        files["labels/train/sub%2Fx.txt"].count(b"\n") == 4 and files["labels/train/y.txt"].count(b"\n") == 2
    )


def test_convert_keeps_the_users_stems_and_refuses_two_images_that_would_share_one():
    assert unique_stems(["images/val/e.png", "sub/x.jpg"], one_to_one=False) == ["e", "sub__x"]
    with pytest.raises(
        CodecError, match=r"images 'x\.jpg' and 'train/x\.jpg' .* share the YOLO file name 'x'"
    ):
        encode(_dataset(["x.jpg", "train/x.jpg"]))
