"""YOLO Pose codec: decode of data.yaml with kpt_shape [K, 2] and [K, 3], round trips."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from kpdeliver.codecs import CodecError, yolo_pose
from kpdeliver.codecs.yolo_pose import tree_stem
from kpdeliver.schema import BUILTIN_SCHEMAS, COCO17
from tests.codecs.conformance import CodecConformance


def yolo_roundtrip(dataset):
    files = yolo_pose.encode(dataset)
    labels = {k: v for k, v in files.items() if k.startswith("labels/")}
    sizes = {
        tree_stem(n): (int(w), int(h))
        for n, w, h in zip(dataset.images.file_name, dataset.images.width, dataset.images.height)
    }
    names = {tree_stem(n): str(n) for n in dataset.images.file_name}
    return yolo_pose.decode(
        labels, data_yaml_bytes=files["data.yaml"], sizes=sizes, schema=dataset.schema, image_names=names
    ).dataset


class TestYoloConformance(CodecConformance):
    def roundtrip(self, dataset):
        return yolo_roundtrip(dataset)


@pytest.mark.parametrize("schema", list(BUILTIN_SCHEMAS.values()), ids=list(BUILTIN_SCHEMAS))
def test_data_yaml_always_has_kpt_shape_and_schema_flip_idx(schema):
    from tests.codecs.conformance import make_dataset

    doc = yaml.safe_load(yolo_pose.encode(make_dataset(schema, 0, n_images=1, max_per_image=1))["data.yaml"])
    assert doc["kpt_shape"] == [schema.num_keypoints, 3]
    assert doc["flip_idx"] == schema.flip_idx.tolist()


def _yaml(k, dim, flip=True) -> bytes:
    doc = {"path": ".", "train": "images/train", "kpt_shape": [k, dim], "names": {0: "thing"}}
    if flip:
        doc["flip_idx"] = list(range(k))
    return yaml.safe_dump(doc).encode()


def test_two_values_per_point_reads_visibility_from_position():
    labels = {"labels/train/a.txt": b"0 0.5 0.5 0.2 0.2 0.1 0.2 0 0 0.5 0.6\n"}
    d = yolo_pose.decode(labels, data_yaml_bytes=_yaml(3, 2), sizes={"a": (100, 50)}, source="y")
    np.testing.assert_allclose(d.dataset.instances.keypoints[0], [[10, 10, 2], [0, 0, 0], [50, 30, 2]])
    assert any("no visibility" in m for m in d.findings["message"].to_pylist())


def test_three_values_per_point_and_missing_flip_idx_quirk():
    labels = {"labels/train/a.txt": b"0 0.5 0.5 0.2 0.2 0.1 0.2 1 0 0 0 0.5 0.6 2\n"}
    d = yolo_pose.decode(labels, data_yaml_bytes=_yaml(3, 3, flip=False), sizes={"a": (100, 50)}, source="y")
    np.testing.assert_allclose(d.dataset.instances.keypoints[0], [[10, 10, 1], [0, 0, 0], [50, 30, 2]])
    assert any("no flip_idx" in m for m in d.findings["message"].to_pylist())


def test_five_column_lines_and_unknown_sizes_are_held_back():
    labels = {"labels/train/a.txt": b"0 0.5 0.5 0.2 0.2\n", "labels/train/b.txt": b""}
    d = yolo_pose.decode(labels, data_yaml_bytes=_yaml(3, 3), sizes={"a": (10, 10)}, source="y")
    assert len(d.dataset.instances) == 0
    assert sorted(d.rejected["check"].to_pylist()) == ["schema.keypoint_count", "schema.missing_field"]


def test_kpt_shape_must_match_schema():
    with pytest.raises(CodecError, match="kpt_shape"):
        yolo_pose.decode({}, data_yaml_bytes=_yaml(3, 3), sizes={}, schema=COCO17, source="y")
