"""COCO Keypoints codec: round trips and the variants seen in the wild."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kpdeliver.codecs import CodecError, coco
from kpdeliver.schema import COCO17, FACE68
from tests.codecs.conformance import CodecConformance


class TestCocoConformance(CodecConformance):
    same_ids = True

    def roundtrip(self, dataset):
        return coco.decode(coco.encode(dataset), schema=dataset.schema).dataset


def _doc(anns, *, cats=None, images=None) -> bytes:
    cats = (
        cats
        if cats is not None
        else [
            {"id": 1, "name": "person", "keypoints": list(COCO17.keypoints), "skeleton": [[16, 14], [14, 12]]}
        ]
    )
    images = images if images is not None else [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}]
    return json.dumps({"images": images, "annotations": anns, "categories": cats}).encode()


def _ann(i=1, kps=None, **kw):
    kps = kps if kps is not None else [float(j % 50) if j % 3 != 2 else 2 for j in range(51)]
    return {"id": i, "image_id": 1, "category_id": 1, "keypoints": kps, **kw}


def test_nested_keypoints_decode_like_flat():
    flat = _ann(kps=[float(j) for j in range(51)])
    nested = _ann(kps=[[float(3 * p), float(3 * p + 1), float(3 * p + 2)] for p in range(17)])
    a = coco.decode(_doc([flat]), schema=COCO17).dataset.instances.keypoints
    b = coco.decode(_doc([nested]), schema=COCO17).dataset.instances.keypoints
    np.testing.assert_array_equal(a, b)


def test_decode_is_faithful_to_odd_flags_and_unlabeled_markers():
    kps = [-1, -1, 0] * 16 + [10.5, 20.5, 2.0]
    kps[2] = 0.29  # a fractional flag, as in COCO-WholeBody's hands
    d = coco.decode(_doc([_ann(kps=kps)]), schema=COCO17)
    kp = d.dataset.instances.keypoints[0]
    assert kp[0, 2] == pytest.approx(0.29)
    assert (kp[1:16, :2] == -1).all()  # (-1, -1, 0) kept for validation to report
    assert kp[16].tolist() == [10.5, 20.5, 2.0]


def test_missing_optional_fields_are_marked_absent():
    d = coco.decode(_doc([_ann()]), schema=COCO17).dataset.instances
    assert d.num_keypoints[0] == -1 and np.isnan(d.area[0]) and np.isnan(d.bbox[0]).all()


def test_bad_items_are_held_back_with_findings_naming_file_item_field():
    anns = [_ann(1), _ann(2, kps=[1, 2, 2] * 5), _ann(3, kps=["x"] * 51), {"id": 4, "image_id": 1}]
    d = coco.decode(_doc(anns), schema=COCO17, source="ann.json")
    assert d.dataset.instances.id.tolist() == [1]
    assert sorted(d.rejected["annotation_id"].to_pylist()) == [2, 3, 4]
    checks = dict(zip(d.findings["annotation_id"].to_pylist(), d.findings["check"].to_pylist()))
    assert checks == {2: "schema.keypoint_count", 3: "schema.bad_type", 4: "schema.missing_field"}
    assert all("ann.json" in m and "field 'keypoints'" in m for m in d.findings["message"].to_pylist())


def test_null_coordinates_survive_as_nan_for_validation():
    kps = [None, None, 2] + [1.0, 1.0, 2] * 16
    d = coco.decode(_doc([_ann(kps=kps)]), schema=COCO17)
    assert np.isnan(d.dataset.instances.keypoints[0, 0, :2]).all()


def test_keypoint_order_is_mapped_by_name():
    names = list(COCO17.keypoints)[::-1]
    cats = [{"id": 1, "name": "person", "keypoints": names, "skeleton": []}]
    kps = [v for p in range(17) for v in (float(16 - p), 0.0, 2)]  # x = schema index of the name
    d = coco.decode(_doc([_ann(kps=kps)], cats=cats), schema=COCO17).dataset
    assert d.instances.keypoints[0, :, 0].tolist() == list(range(17))


def test_names_that_do_not_fit_the_schema_are_refused():
    cats = [{"id": 1, "name": "person", "keypoints": [f"joint{i}" for i in range(17)]}]
    with pytest.raises(CodecError, match="field 'keypoints'.*incomplete"):
        coco.decode(_doc([_ann()], cats=cats), schema=COCO17, source="x.json")


@pytest.mark.parametrize("edges,base", [([[0, 1], [1, 2]], 0), ([[1, 2], [2, 3]], 1)])
def test_skeleton_index_base_is_inferred(edges, base):
    cats = [{"id": 1, "name": "toy", "keypoints": ["a", "b", "c"], "skeleton": edges}]
    d = coco.decode(_doc([_ann(kps=[1, 1, 2] * 3)], cats=cats)).dataset
    assert d.schema.skeleton == ((0, 1), (1, 2))


def test_empty_name_list_gives_positional_schema_and_a_quirk():
    cats = [{"id": 1, "name": "face", "keypoints": [], "skeleton": []}]
    d = coco.decode(_doc([_ann(kps=[1, 1, 1] * 68)], cats=cats), schema=FACE68)
    assert d.dataset.instances.keypoints.shape == (1, 68, 3)
    assert "no keypoint names" in " ".join(d.findings["message"].to_pylist())


def test_crowd_rle_and_video_fields():
    images = [{"id": 1, "file_name": "v/000001.jpg", "width": 100, "height": 80, "frame_id": 7, "vid_id": 3}]
    anns = [
        _ann(1, iscrowd=True, segmentation={"counts": "abc", "size": [80, 100]}, track_id=4),
        _ann(2, iscrowd=1, track_id=5, frame_id=9),
    ]
    ins = coco.decode(_doc(anns, images=images), schema=COCO17).dataset.instances
    assert ins.iscrowd.tolist() == [1, 1]
    assert ins.track_id.tolist() == [4, 5]
    assert ins.frame.tolist() == [7, 9]  # PoseTrack keeps frame_id on the image


def test_encode_writes_one_based_skeleton_and_computed_counts():
    d = coco.decode(_doc([_ann()]), schema=COCO17).dataset
    doc = json.loads(coco.encode(d))
    assert doc["categories"][0]["skeleton"][0] == [16, 14]
    assert doc["annotations"][0]["num_keypoints"] == 17


def test_results_list_and_mpii_list_are_refused_with_what_they_are():
    with pytest.raises(CodecError, match="results"):
        coco.decode(b'[{"image_id": 1, "category_id": 1, "keypoints": [], "score": 1}]', source="r.json")
    with pytest.raises(CodecError, match="MPII"):
        coco.decode(b'[{"joints": [], "joints_vis": [], "image": "a.jpg"}]', source="m.json")
