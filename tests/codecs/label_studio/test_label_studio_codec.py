"""Label Studio JSON codec: percent coordinates, grouping, flags, missing sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kpdeliver.codecs import CodecError, label_studio
from kpdeliver.schema import COCO17, HAND21
from tests.codecs.conformance import CodecConformance, make_dataset


class TestLabelStudioConformance(CodecConformance):
    same_ids = True

    def roundtrip(self, dataset):
        return label_studio.decode(label_studio.encode(dataset), schema=dataset.schema).dataset


def _kp(rid, label, x, y, *, parent=None, size=(200, 100)):
    r = {
        "id": rid,
        "type": "keypointlabels",
        "from_name": "kp",
        "to_name": "image",
        "value": {"x": x, "y": y, "width": 0.5, "keypointlabels": [label]},
    }
    if size:
        r["original_width"], r["original_height"] = size
    if parent:
        r["parentID"] = parent
    return r


def _box(rid, size=(200, 100)):
    return {
        "id": rid,
        "type": "rectanglelabels",
        "from_name": "box",
        "to_name": "image",
        "original_width": size[0],
        "original_height": size[1],
        "value": {"x": 10, "y": 10, "width": 50, "height": 50, "rectanglelabels": ["person"]},
    }


def _export(result, **task) -> bytes:
    return json.dumps(
        [
            {
                "id": 5,
                "data": {"image": "/data/upload/1/a.jpg"},
                "annotations": [{"id": 9, "completed_by": {"email": "ann@x"}, "result": result}],
                **task,
            }
        ]
    ).encode()


def test_percent_coordinates_use_original_size():
    d = label_studio.decode(_export([_box("b"), _kp("k", "nose", 25.0, 50.0, parent="b")]), schema=COCO17)
    kp = d.dataset.instances.keypoints[0]
    assert kp[0].tolist() == [50.0, 50.0, 2.0] and (kp[1:, 2] == 0).all()
    assert d.dataset.instances.annotator.tolist() == ["ann@x"]
    assert d.dataset.instances.bbox[0].tolist() == [20.0, 10.0, 100.0, 50.0]


def test_grouping_by_parent_and_by_relation():
    result = [
        _box("b1"),
        _box("b2"),
        _kp("k1", "nose", 1, 1, parent="b1"),
        _kp("k2", "nose", 2, 2),
        {"type": "relation", "from_id": "k2", "to_id": "b2"},
        {"type": "relation", "from_id": "b1", "to_id": "b1"},
    ]
    d = label_studio.decode(_export(result), schema=COCO17)
    assert len(d.dataset.instances) == 2
    assert sorted(d.dataset.instances.keypoints[:, 0, 0].tolist()) == [2.0, 4.0]
    assert any("to itself" in m for m in d.findings["message"].to_pylist())


def test_loose_points_with_a_repeated_label_are_held_back_not_guessed():
    d = label_studio.decode(
        _export([_kp("a", "nose", 1, 1), _kp("b", "nose", 2, 2)]), schema=COCO17, source="ls.json"
    )
    assert len(d.dataset.instances) == 0
    assert d.rejected["check"].to_pylist() == ["schema.duplicate_id"]


def test_missing_image_size_is_a_finding_not_a_guess():
    d = label_studio.decode(_export([_kp("a", "nose", 1, 1, size=None)]), schema=COCO17, source="ls.json")
    assert len(d.dataset.instances) == 0
    msgs = [
        m
        for c, m in zip(d.findings["check"].to_pylist(), d.findings["message"].to_pylist())
        if c == "schema.missing_field"
    ]
    assert len(msgs) == 1 and "original_width" in msgs[0] and "ls.json" in msgs[0]
    # the image size from elsewhere (read from the image file) is used when given
    d2 = label_studio.decode(
        _export([_kp("a", "nose", 50, 50, size=None)]),
        schema=COCO17,
        sizes={"/data/upload/1/a.jpg": (40, 20)},
    )
    assert d2.dataset.instances.keypoints[0, 0].tolist() == [20.0, 10.0, 2.0]


def test_keypoint_order_from_config_model_index():
    config = (
        '<View><Image name="image" value="$image"/><KeyPointLabels name="kp" toName="image">'
        '<Label value="b" model_index="1"/><Label value="a" model_index="0"/></KeyPointLabels></View>'
    )
    d = label_studio.decode(_export([_kp("x", "a", 10, 10), _kp("y", "b", 20, 20)]), label_config=config)
    assert d.dataset.schema.keypoints == ("a", "b")
    assert d.dataset.instances.keypoints[0, :, 0].tolist() == [20.0, 40.0]


def test_occluded_choice_gives_v1_and_encode_writes_it():
    result = [
        _box("b"),
        _kp("k", "nose", 1, 1, parent="b"),
        {
            "id": "k",
            "type": "choices",
            "from_name": "visibility",
            "to_name": "image",
            "value": {"choices": ["occluded"]},
        },
    ]
    d = label_studio.decode(_export(result), schema=COCO17)
    assert d.dataset.instances.keypoints[0, 0, 2] == 1
    again = label_studio.decode(label_studio.encode(d.dataset), schema=COCO17)
    assert again.dataset.instances.keypoints[0, 0, 2] == 1


def test_encode_is_an_import_file_with_predictions_and_a_matching_config():
    ds = make_dataset(HAND21, 4, n_images=1, max_per_image=2)
    tasks = json.loads(label_studio.encode(ds))
    assert tasks[0]["data"]["image"] == "dir/img_0000.jpg" and "predictions" in tasks[0]
    config = label_studio.label_config(HAND21)
    assert label_studio.config_keypoint_names(config)[0] == HAND21.keypoints
    back = label_studio.decode(label_studio.encode(ds, as_predictions=False), label_config=config)
    assert back.dataset.schema.keypoints == HAND21.keypoints


def test_no_config_no_schema_picks_the_builtin_naming_every_label_or_takes_the_labels_order():
    d = label_studio.decode(_export([_kp("a", "left_knee", 1, 1)]))
    assert d.dataset.schema.name == "coco17"
    d = label_studio.decode(
        _export([_kp("a", "widget", 1, 1), _kp("b", "LeftFin", 2, 2), _kp("c", "RightFin", 3, 3)])
    )
    assert d.dataset.schema.keypoints == ("widget", "LeftFin", "RightFin")
    assert d.dataset.schema.flip_pairs == ((1, 2),)
    assert "order first seen" in " ".join(d.findings["message"].to_pylist())


def test_predictions_list_from_an_ml_backend():
    preds = [{"model_version": "yolo", "result": [_kp("a", "nose", 10, 10), _kp("b", "left_eye", 20, 20)]}]
    d = label_studio.decode(json.dumps(preds).encode(), schema=COCO17)
    assert len(d.dataset.instances) == 1 and np.count_nonzero(d.dataset.instances.v) == 2


def test_no_config_several_controls_take_the_one_tied_to_boxes_and_hold_the_rest_back():
    moth = dict(_kp("m", "moth_nose", 5, 5), from_name="uniqbp")
    pup = [dict(_kp(f"p{i}", n, 10 + i, 10), from_name="mabp") for i, n in enumerate(("snout", "tail"))]
    rel = [{"type": "relation", "from_id": f"p{i}", "to_id": "b"} for i in range(2)]
    d = label_studio.decode(_export([moth, _box("b"), *pup, *rel]))
    assert d.dataset.schema.keypoints == ("snout", "tail") and len(d.dataset.instances) == 1
    assert d.rejected.num_rows == 1 and "moth_nose" in d.findings.to_pylist()[-1]["message"]
    with pytest.raises(CodecError, match="2 KeyPointLabels controls"):
        label_studio.decode(_export([moth, *pup]))
