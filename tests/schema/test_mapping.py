"""Keypoint-name mapping onto a schema: by name and alias, never by position."""

from __future__ import annotations

import numpy as np
import pytest

from kpdeliver.names import map_keypoint_names, normalise_name
from kpdeliver.schema import COCO17, HAND21, SchemaError


@pytest.mark.parametrize(
    "spelling",
    [
        "left_shoulder",
        "L_Shoulder",
        "lshoulder",
        "LShoulder",
        "Left Shoulder",
        "left-shoulder",
        "shoulder_left",
        "leftShoulder",
        "l_sho",
    ],
)
def test_common_spellings_normalise_to_one_name(spelling):
    assert normalise_name(spelling) == "left_shoulder"


def test_permuted_and_respelled_names_map_back_to_schema_order():
    rng = np.random.default_rng(0)
    perm = rng.permutation(17)
    openpose = {"left": "L", "right": "R"}
    names = []
    for i in perm:
        n = COCO17.keypoints[i]
        side, _, part = n.partition("_")
        names.append(f"{openpose[side]}{part.capitalize()}" if side in openpose else n.capitalize())
    got = map_keypoint_names(names, COCO17)  # file column got[i] holds schema keypoint i
    np.testing.assert_array_equal(perm[got], np.arange(17))


def test_same_order_is_identity():
    np.testing.assert_array_equal(map_keypoint_names(list(HAND21.keypoints), HAND21), np.arange(21))


def test_ambiguous_mapping_is_refused_naming_both():
    names = list(COCO17.keypoints)
    names[6] = "L_Shoulder"  # two spellings of left_shoulder, right_shoulder missing
    with pytest.raises(SchemaError, match="ambiguous.*'left_shoulder' and 'L_Shoulder'"):
        map_keypoint_names(names, COCO17)


def test_incomplete_mapping_is_refused_naming_what_is_missing_and_unknown():
    names = [*list(COCO17.keypoints[:-1]), "tail"]
    with pytest.raises(SchemaError, match=r"not in schema 'coco17': \['tail'\].*no match: \['right_ankle'\]"):
        map_keypoint_names(names, COCO17)
    with pytest.raises(SchemaError, match="incomplete"):
        map_keypoint_names(list(COCO17.keypoints[:16]), COCO17)  # position alone is never enough
