"""Every keypoint file in ../shared/fixtures/external decodes with the counts written here, or is
refused with the specific error documented here; quirks come out as findings; encode -> decode in
the file's own format is lossless.

The expected numbers are independent of kpdeliver: they are the fixture README's per-file quirk
table (a json-module scan), and for CVAT / YOLO / Label Studio a count by hand of the XML / text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kpdeliver.codecs import CodecError, coco, cvat, label_studio
from kpdeliver.codecs.registry import decode_bytes
from kpdeliver.collect.files import read_annotations
from kpdeliver.collect.inspect import visibility_histogram
from kpdeliver.schema import COCO17
from tests.codecs.yolo_pose.test_yolo_codec import yolo_roundtrip

# path: (images, instances, K, visibility histogram, a quirk the findings must mention or None)
COCO_FILES = {
    "datumaro-cvat-ai/coco_person_keypoints/annotations/person_keypoints_train.json": (
        1,
        1,
        3,
        {0: 1, 1: 1, 2: 1},
        "no keypoint names",
    ),
    "datumaro-cvat-ai/coco_person_keypoints/annotations/person_keypoints_val.json": (
        1,
        2,
        3,
        {2: 6},
        "no keypoint names",
    ),
    "datumaro-openvinotoolkit/coco_person_keypoints/annotations/person_keypoints_train.json": (
        1,
        1,
        3,
        {0: 1, 1: 1, 2: 1},
        "no keypoint names",
    ),
    "datumaro-openvinotoolkit/coco_person_keypoints/annotations/person_keypoints_val.json": (
        1,
        2,
        3,
        {2: 6},
        "no keypoint names",
    ),
    "mmpose/300vw/anno_300vw.json": (3, 3, 68, {1: 204}, "no keypoint names"),
    "mmpose/300w/test_300w.json": (2, 2, 68, {1: 136}, "no keypoint names"),
    "mmpose/300wlp/test_300wlp.json": (2, 2, 68, {2: 136}, "no keypoint names"),
    "mmpose/aflw/test_aflw.json": (2, 2, 19, {1: 38}, "no keypoint names"),
    "mmpose/aic/test_aic.json": (3, 9, 14, {0: 25, 1: 32, 2: 69}, None),
    "mmpose/ak/test_animalkingdom.json": (2, 2, 23, {0: 34, 1: 12}, None),
    "mmpose/animalpose/test_animalpose.json": (2, 2, 20, {0: 8, 2: 32}, None),
    "mmpose/ap10k/test_ap10k.json": (2, 2, 17, {0: 2, 2: 32}, None),
    "mmpose/atrw/test_atrw.json": (2, 2, 15, {2: 30}, None),
    "mmpose/coco/test_coco.json": (4, 14, 17, {0: 57, 1: 17, 2: 164}, None),
    "mmpose/coco/test_coco_wholebody.json": (4, 14, 17, {0: 57, 1: 17, 2: 164}, "extra keypoint arrays"),
    "mmpose/cofw/test_cofw.json": (2, 2, 29, {1: 15, 2: 43}, "no keypoint names"),
    "mmpose/crowdpose/test_crowdpose.json": (
        2,
        5,
        14,
        {0: 23, 1: 17, 2: 30},
        "skeleton edge(s) index past 14",
    ),
    "mmpose/deepfasion2/deepfasion2.json": (2, 2, 294, {0: 529, 1: 14, 2: 45}, None),
    "mmpose/exlpose/test_exlpose.json": (2, 6, 14, {0: 2, 2: 82}, None),
    "mmpose/fly/test_fly.json": (2, 2, 32, {2: 64}, None),
    "mmpose/freihand/test_freihand.json": (8, 8, 21, {1: 168}, None),
    "mmpose/halpe/test_halpe.json": (4, 14, 136, {0: 1048, 1: 17, 2: 839}, "no keypoint names"),
    "mmpose/horse10/test_horse10.json": (3, 3, 22, {0: 14, 2: 52}, None),
    "mmpose/humanart/test_humanart.json": (
        3,
        4,
        17,
        {0: 7, 2: 61},
        "names 21 keypoints but annotations carry 17",
    ),
    "mmpose/jhmdb/test_jhmdb_sub1.json": (3, 3, 15, {2: 45}, None),
    "mmpose/lapa/test_lapa.json": (2, 2, 106, {2: 212}, "no keypoint names"),
    "mmpose/locust/test_locust.json": (2, 2, 35, {2: 70}, None),
    "mmpose/macaque/test_macaque.json": (2, 2, 17, {0: 3, 2: 31}, None),
    "mmpose/mhp/test_mhp.json": (2, 4, 16, {0: 23, 2: 41}, None),
    "mmpose/mpii/test_mpii_trb.json": (5, 5, 40, {0: 19, 1: 2, 2: 179}, None),
    "mmpose/ochuman/test_ochuman.json": (3, 5, 17, {0: 12, 1: 7, 2: 66}, None),
    "mmpose/onehand10k/test_onehand10k.json": (4, 4, 21, {0: 21, 1: 63}, None),
    "mmpose/panoptic/test_panoptic.json": (4, 4, 21, {1: 84}, None),
    "mmpose/posetrack18/annotations/test_posetrack18_val.json": (3, 14, 17, {0: 56, 1: 182}, None),
    "mmpose/posetrack18/annotations/val/003418_mpii_test.json": (1, 1, 17, {0: 6, 1: 11}, None),
    "mmpose/posetrack18/annotations/val/009473_mpii_test.json": (1, 2, 17, {0: 5, 1: 29}, None),
    "mmpose/posetrack18/annotations/val/012834_mpii_test.json": (1, 11, 17, {0: 45, 1: 142}, None),
    "mmpose/rhd/test_rhd.json": (3, 3, 21, {1: 63}, "nested"),
    "mmpose/wflw/test_wflw.json": (2, 4, 98, {1: 392}, "no keypoint names"),
    "mmpose/zebra/test_zebra.json": (2, 2, 9, {2: 18}, None),
}

# CVAT, counted in the XML: images has 2 skeletons (4 elements, one outside each) and a free
# 3-point shape of label2 (another label: reported, not an instance nor held back); video has one
# skeleton track listed at frames 10, 13, 16 whose element "3" is outside from 13 on, and a 3-point
# points track of another label (reported likewise).
OTHER_FILES = {
    "datumaro-cvat-ai/cvat_for_images/train.xml": (2, 2, 4, {0: 2, 2: 6}, "box/polygon/polyline", 0),
    "datumaro-cvat-ai/cvat_for_video/annotations.xml": (3, 3, 4, {0: 2, 2: 10}, "box/polygon/polyline", 0),
    "datumaro-cvat-ai/yolov8_pose": (1, 1, 3, {2: 3}, "no flip_idx", 0),
    "datumaro-cvat-ai/yolov8_pose_two_values_per_point": (1, 1, 3, {2: 3}, "no visibility", 0),
    # Label Studio, counted in the JSON: 3 of 17 COCO keypoints under one box (a self-loop relation);
    # two loose points of a 2-label config; ML-backend predictions with no image size (held back).
    "label-studio-sdk/test_export_yolo/data_keypoints.json": (1, 1, 17, {0: 14, 2: 3}, "to itself", 0),
    "label-studio-sdk/test_export_coco/data.json": (1, 1, 2, {2: 2}, "not grouped", 0),
    "label-studio-ml-backend/yolo_keypoints/test_keypoint_labels_1.json": (1, 0, 17, {}, "original_width", 1),
    "label-studio-ml-backend/yolo_keypoints/test_keypoint_labels_2.json": (1, 0, 17, {}, "original_width", 1),
}

# Files with keypoints that are refused, and the specific reason each is given.
REFUSED = {
    "cocoapi/person_keypoints_results/person_keypoints_val2014_fakekeypoints100_results.json": "COCO keypoint *results* file",
    "mmpose/mpii/test_mpii.json": "MPII-style list",
    "mmpose/300vw/001/annot/000006.pts": "iBUG .pts landmark file",
    "mmpose/300vw/001/annot/000009.pts": "iBUG .pts landmark file",
    "mmpose/300vw/401/annot/000731.pts": "iBUG .pts landmark file",
    "mmpose/300vw/401/annot/000732.pts": "iBUG .pts landmark file",
}


def _keypoint_files(external: Path) -> set[str]:
    """Every file in the fixtures that holds keypoints (YOLO sets count as their folder)."""
    out = set()
    for f in external.rglob("*"):
        rel = f.relative_to(external).as_posix()
        if f.suffix in (".json", ".pts") or (f.suffix == ".xml" and b"<View" not in f.read_bytes()[:200]):
            out.add(rel)
        elif f.name == "data.yaml":
            out.add(f.parent.relative_to(external).as_posix())
    return out


def test_every_keypoint_file_is_accounted_for(external):
    assert _keypoint_files(external) == set(COCO_FILES) | set(OTHER_FILES) | set(REFUSED)


def _check(decoded, expected):
    images, instances, k, hist, quirk = expected[:5]
    ds = decoded.dataset
    assert (len(ds.images), len(ds.instances), ds.schema.num_keypoints) == (images, instances, k)
    assert visibility_histogram(ds.instances.v) == {str(a): b for a, b in hist.items()}
    if quirk:
        assert any(quirk in m for m in decoded.findings["message"].to_pylist()), decoded.findings["message"]


@pytest.mark.parametrize("rel", sorted(COCO_FILES))
def test_coco_file_decodes_with_independent_counts_and_roundtrips(external, rel):
    decoded = read_annotations(external / rel)
    _check(decoded, COCO_FILES[rel])
    assert decoded.rejected.num_rows == 0
    ds = decoded.dataset
    back = coco.decode(coco.encode(ds), schema=ds.schema).dataset
    np.testing.assert_array_equal(back.instances.keypoints, ds.instances.keypoints)
    # ids below 1 are renumbered on writing (COCOeval reads a matched id 0 as unmatched), kept as source_id
    np.testing.assert_array_equal(back.instances.extra.get("source_id", back.instances.id), ds.instances.id)
    assert back.instances.id.min(initial=1) >= 1
    np.testing.assert_array_equal(back.instances.track_id, ds.instances.track_id)
    np.testing.assert_array_equal(back.instances.category_id, ds.instances.category_id)


@pytest.mark.parametrize("rel", sorted(OTHER_FILES))
def test_cvat_yolo_label_studio_files_decode_and_roundtrip(external, rel):
    decoded = read_annotations(external / rel)
    _check(decoded, OTHER_FILES[rel])
    assert decoded.rejected.num_rows == OTHER_FILES[rel][5]
    if rel.endswith(".xml"):  # the free points of another label are reported
        assert "decode.other_label" in decoded.findings["check"].to_pylist()
    ds = decoded.dataset
    if rel.endswith(".xml"):
        back = cvat.decode(
            cvat.encode(ds, mode="video" if "video" in rel else "images"), schema=ds.schema
        ).dataset
    elif rel.endswith(".json"):
        back = label_studio.decode(label_studio.encode(ds), schema=ds.schema).dataset
    else:
        back = yolo_roundtrip(ds)
    np.testing.assert_allclose(back.instances.keypoints, ds.instances.keypoints, atol=1e-3, rtol=0)


@pytest.mark.parametrize("rel", sorted(REFUSED))
def test_refused_files_get_a_specific_error(external, rel):
    with pytest.raises(CodecError, match=REFUSED[rel].replace("*", r"\*").replace(".", r"\.")):
        decode_bytes(Path(rel).name, (external / rel).read_bytes(), source=rel)


def test_cvat_outside_points_keep_their_position_for_audit(external):
    ins = read_annotations(external / "datumaro-cvat-ai/cvat_for_images/train.xml").dataset.instances
    assert ins.extra["outside_x"][0, 0] == 1 and ins.extra["outside_y"][1, 2] == 5


def test_builtin_schema_reads_fixture_by_name(external):
    """A client's schema applied to a file whose names match (keypoint order by name)."""
    d = read_annotations(external / "mmpose/coco/test_coco.json", schema=COCO17)
    assert d.dataset.schema is COCO17 and len(d.dataset.instances) == 14
    with pytest.raises(CodecError, match="head_bottom|incomplete"):
        read_annotations(external / "mmpose/posetrack18/annotations/val/003418_mpii_test.json", schema=COCO17)
