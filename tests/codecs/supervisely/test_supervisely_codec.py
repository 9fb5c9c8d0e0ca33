"""Supervisely project codec: conformance, the visibility rule, audit columns, other geometries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kpdeliver.codecs import CodecError
from kpdeliver.codecs.protocol import DecodeOptions
from kpdeliver.codecs.registry import codec
from kpdeliver.schema import COCO17, KeypointSchema
from tests.codecs.conformance import CodecConformance, assert_same_keypoints, make_dataset
from tests.codecs.supervisely import sly_docs

SLY = codec("supervisely")


def decode(files: dict[str, bytes], **kw):
    return SLY.decode(files["meta.json"], DecodeOptions(files=files, **kw))


class TestSuperviselyConformance(CodecConformance):
    same_ids = True

    def roundtrip(self, dataset):
        return decode(SLY.encode(dataset, None), schema=dataset.schema).dataset


def test_graph_class_gives_schema_in_template_order_with_edges():
    ds = decode(sly_docs.project()).dataset
    assert ds.schema.keypoints == ("nose", "left_eye", "right_eye", "left_ear")
    assert ds.schema.skeleton == ((0, 1), (0, 2), (1, 3))
    assert ds.schema.category == "person" and (1, 2) in ds.schema.flip_pairs


def test_disabled_node_is_occluded_with_its_position_and_absent_node_is_unlabelled():
    ds = decode(sly_docs.project()).dataset
    first = ds.instances.keypoints[ds.instances.id.tolist().index(11)]
    # template order, not the order the object lists its nodes in
    assert first.tolist() == [[10.5, 20.75, 2], [12, 22, 1], [30.25, 40.5, 2], [0, 0, 0]]


def test_flags_are_written_back_as_disabled_and_left_out():
    ds = decode(sly_docs.project()).dataset
    files = SLY.encode(ds, None)
    [obj] = json.loads(files["ds0/ann/a.jpg.json"])["objects"]
    assert obj["nodes"] == {
        "nose": {"loc": [10.5, 20.75]},
        "left_eye": {"loc": [12.0, 22.0], "disabled": True},
        "right_eye": {"loc": [30.25, 40.5]},
    }
    again = decode(files).dataset
    np.testing.assert_array_equal(again.instances.keypoints, ds.instances.keypoints)


def test_object_ids_classes_logins_and_image_sizes_are_kept():
    ds = decode(sly_docs.project()).dataset
    ins, im = ds.instances, ds.images
    assert sorted(ins.id.tolist()) == [11, 12]
    assert ins.extra["sly_object_id"].tolist() == [11.0, 12.0]
    assert ins.extra["sly_class"].tolist() == ["person", "person"]
    assert ins.annotator.tolist() == ["anna@example.com", "ben@example.com"]
    sizes = dict(zip(im.file_name.tolist(), zip(im.width.tolist(), im.height.tolist())))
    assert sizes == {"ds0/a.jpg": (640, 480), "ds0/b.jpg": (320, 240), "train/a.jpg": (800, 600)}
    assert decode(sly_docs.project(), annotator="ann_a").dataset.instances.annotator.tolist() == ["ann_a"] * 2


def test_other_geometries_are_reported_not_dropped_silently():
    d = decode(sly_docs.project())
    messages = d.findings["message"].to_pylist()
    assert any("2 objects of geometry 'rectangle' (class 'car')" in m for m in messages), messages
    assert any("1 objects of geometry 'polygon' (class 'road')" in m for m in messages), messages
    assert set(d.findings["check"].to_pylist()) == {"decode.quirk"}


def test_object_of_a_class_missing_from_meta_is_held_back_naming_file_and_object():
    files = sly_docs.project()
    files["ds0/ann/c.jpg.json"] = sly_docs.ann([sly_docs.graph(77, {"a1f0": {"loc": [1, 2]}}, title="ghost")])
    d = decode(files)
    [reason] = d.rejected["reason"].to_pylist()
    assert "ds0/ann/c.jpg.json, object 77" in reason and "'ghost'" in reason
    assert json.loads(d.rejected["raw"][0].as_py())["id"] == 77
    assert len(d.dataset.instances) == 2


def test_a_second_graph_class_is_mapped_by_labels_or_held_back():
    reordered = {"n1": "left_ear", "n2": "nose", "n3": "right_eye", "n4": "left_eye"}
    other = json.loads(sly_docs.meta(nodes=reordered, title="runner"))["classes"][0]
    hand = {
        "title": "hand",
        "shape": "graph",
        "geometry_config": {"nodes": {"h": {"label": "wrist"}}, "edges": []},
    }
    files = {
        "meta.json": sly_docs.meta(extra_classes=[other, hand]),
        "ds0/ann/a.jpg.json": sly_docs.ann(
            [
                sly_docs.graph(
                    1, {"n2": {"loc": [5, 6]}, "n1": {"loc": [7, 8], "disabled": True}}, title="runner"
                ),
                sly_docs.graph(2, {"h": {"loc": [1, 1]}}, title="hand"),
            ]
        ),
    }
    d = decode(files)
    [kp] = d.dataset.instances.keypoints
    assert kp.tolist() == [[5, 6, 2], [0, 0, 0], [0, 0, 0], [7, 8, 1]]
    assert [c.name for c in d.dataset.categories] == ["person", "runner", "hand"]
    [reason] = d.rejected["reason"].to_pylist()
    assert "class 'hand'" in reason and "object 2" in reason


def test_a_given_schema_maps_nodes_by_label():
    schema = KeypointSchema(
        name="p",
        keypoints=("left_ear", "right_eye", "left_eye", "nose"),
        skeleton=(),
        flip_pairs=(),
        sigmas=(0.05,) * 4,
        category="person",
    )
    ds = decode(sly_docs.project(), schema=schema).dataset
    first = ds.instances.keypoints[ds.instances.id.tolist().index(11)]
    assert first.tolist() == [[0, 0, 0], [30.25, 40.5, 2], [12, 22, 1], [10.5, 20.75, 2]]
    with pytest.raises(CodecError, match="class 'person'"):
        decode(sly_docs.project(), schema=COCO17)


def test_nested_datasets_and_names_no_dataset_can_spell_round_trip_exactly():
    ds = make_dataset(COCO17, 3, n_images=5, max_per_image=2)
    ds.images.file_name[:] = ["x.jpg", "a/b/y.jpg", "https://host/cam/z.jpg", "../up.jpg", "cam/.hidden.jpg"]
    files = SLY.encode(ds, None)
    assert "a/datasets/b/ann/y.jpg.json" in files and "ds0/ann/x.jpg.json" in files
    assert not any(p.rsplit("/", 1)[-1].startswith(".") or ".." in p.split("/") for p in files)
    back = decode(files).dataset
    assert sorted(back.images.file_name.tolist()) == sorted(ds.images.file_name.tolist())
    assert_same_keypoints(ds, back)


def test_broken_values_are_findings_or_nan_never_a_crash():
    files = {
        "meta.json": sly_docs.meta(),
        "ds0/ann/a.jpg.json": sly_docs.ann(
            [
                sly_docs.graph(1, {"a1f0": {"loc": ["x", None]}, "zz": {"loc": [1, 2]}, "9c2e": "nope"}),
                "not an object",
            ]
        ),
        "ds0/ann/b.jpg.json": b"[1, 2]",
        "ds0/ann/c.jpg.json": b'{"size": {"width": 1e400, "height": -5}, "objects": {}}',
    }
    d = decode(files)
    [kp] = d.dataset.instances.keypoints
    assert np.isnan(kp[:2, :2]).all() and kp[:2, 2].tolist() == [2, 2]  # NaN: held back later as non-finite
    assert d.dataset.images.width.tolist() == [640, 0]
    assert any("ds0/ann/b.jpg.json" in r for r in d.rejected["reason"].to_pylist())
    assert any("not in their class's template" in m for m in d.findings["message"].to_pylist())
    with pytest.raises(CodecError, match="meta.json"):
        SLY.decode(b'{"classes": "no"}', DecodeOptions(files={}))


def test_an_instance_with_no_labelled_point_keeps_its_place_outside_the_graph_objects():
    ds = next(
        d
        for d in (make_dataset(COCO17, seed, n_images=1, max_per_image=3) for seed in range(100))
        if len(d.instances) == 3
    )
    ds.instances.keypoints[1] = 0.0  # COCO holds such people (num_keypoints 0); Supervisely's SDK refuses a
    files = SLY.encode(ds, None)  # graph object without nodes, so none is written
    [ann] = [json.loads(v) for k, v in files.items() if "/ann/" in k]
    assert len(ann["objects"]) == 2 and all(o["nodes"] for o in ann["objects"])
    back = decode(files).dataset
    np.testing.assert_array_equal(back.instances.keypoints, ds.instances.keypoints)
    assert back.instances.id.tolist() == ds.instances.id.tolist()


def test_video_projects_hostile_metas_and_objects_without_nodes_are_refused_or_held_back():
    video = json.loads(sly_docs.meta())
    video["projectType"] = "videos"
    with pytest.raises(CodecError, match="'projectType' is 'videos'"):
        SLY.decode(json.dumps(video).encode(), DecodeOptions(files={}))
    huge = {"nodes": {str(i): {"label": f"k{i}"} for i in range(10_001)}, "edges": []}
    with pytest.raises(CodecError, match="10001 nodes"):
        SLY.decode(
            json.dumps({"classes": [{"title": "x", "shape": "graph", "geometry_config": huge}]}).encode(),
            DecodeOptions(files={}),
        )
    files = {
        "meta.json": sly_docs.meta(),
        "ds0/ann/a.jpg.json": sly_docs.ann(
            [{"id": 5, "classTitle": "person", "geometryType": "graph", "geometry": {"nodes": {}}}]
        ),
    }
    d = decode(files)
    assert len(d.dataset.instances) == 0 and "field 'nodes' is missing" in d.rejected["reason"][0].as_py()
