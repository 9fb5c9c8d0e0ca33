"""Left/right pairs from keypoint names, wherever the side token stands, and stated in a schema YAML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kpdeliver.schema import (
    COCO17,
    KeypointSchema,
    SchemaError,
    load_schema_yaml,
    pairs_by_side,
    unpaired_side_names,
)

QUADRUPED = Path(__file__).parents[1] / "fixtures" / "real" / "deeplabcut" / "quadruped_dataset.json"


@pytest.mark.parametrize(
    "left, right",
    [
        ("left collar", "right collar"),
        ("front_left_paw", "front_right_paw"),
        ("l_eye", "r_eye"),
        ("LeftHand", "RightHand"),
        ("mouth_end_left", "mouth_end_right"),
        ("LShoulder", "RShoulder"),
        ("Left-Ear", "right_ear"),
        ("hip.L", "hip.R"),
        ("left_brow_3", "right_brow_3"),
    ],
)
def test_pairs_by_the_side_token_wherever_it_stands(left, right):
    assert pairs_by_side(["nose", right, left]) == ((2, 1),)


@pytest.mark.parametrize(
    "names",
    [
        ["leftover", "rightmost"],  # side words inside a longer word are not a side
        ["ear_l", "ear_r_tip"],  # the rest of the name differs
        ["left_eye", "l_eye", "right_eye"],  # two left candidates: ambiguous, nothing paired
        ["left_right_marker", "right_left_marker"],  # two side tokens in one name
    ],
)
def test_no_pair_when_the_names_do_not_mirror(names):
    assert pairs_by_side(names) == ()


def test_deeplabcut_quadruped_pairs_match_its_swap_table():
    info = json.loads(QUADRUPED.read_text())["dataset_info"]["keypoint_info"]
    names = [info[str(i)]["name"] for i in range(len(info))]
    truth = {
        tuple(sorted((i, names.index(info[str(i)]["swap"]))))
        for i in range(len(names))
        if info[str(i)]["swap"]
    }
    assert {tuple(sorted(p)) for p in pairs_by_side(names)} == truth
    schema = KeypointSchema("quadruped", tuple(names), (), pairs_by_side(names), (0.05,) * len(names))
    assert unpaired_side_names(schema) == []


def test_coco17_flip_idx_is_unchanged():
    assert COCO17.flip_idx.tolist() == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


def test_unpaired_side_names_are_named():
    names = ("nose", "left_eye", "right_eye", "left_ear", "tail_l")
    schema = KeypointSchema("s", names, (), pairs_by_side(names), (0.05,) * 5)
    assert unpaired_side_names(schema) == ["left_ear", "tail_l"]


def test_schema_yaml_states_pairs_or_gets_them_from_the_names(tmp_path):
    stated = tmp_path / "stated.yaml"
    stated.write_text("keypoints: [nose, eye_a, eye_b, left_ear, right_ear]\npairs: [[eye_a, eye_b]]\n")
    assert load_schema_yaml(stated).flip_pairs == ((1, 2),)  # stated pairs win over the names
    derived = tmp_path / "derived.yaml"
    derived.write_text("keypoints: [nose, LeftEar, RightEar]\n")
    assert load_schema_yaml(derived).flip_pairs == ((1, 2),)
    none = tmp_path / "none.yaml"
    none.write_text("keypoints: [nose, LeftEar, RightEar]\nflip_pairs: []\n")
    assert load_schema_yaml(none).flip_pairs == ()
    both = tmp_path / "both.yaml"
    both.write_text("keypoints: [a, b]\npairs: [[a, b]]\nflip_pairs: [[a, b]]\n")
    with pytest.raises(SchemaError, match="once"):
        load_schema_yaml(both)
