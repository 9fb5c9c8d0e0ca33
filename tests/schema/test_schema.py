"""Keypoint schemas: invariants of every built-in, the published numbers, custom schemas."""

from __future__ import annotations

import numpy as np
import pytest

from kpdeliver.schema import (
    BUILTIN_SCHEMAS,
    FACE68,
    FACE98,
    HAND21,
    KeypointSchema,
    SchemaError,
    get_schema,
    load_schema_yaml,
    schema_from_dict,
)

BUILTINS = list(BUILTIN_SCHEMAS.values())


@pytest.mark.parametrize("schema", BUILTINS, ids=[s.name for s in BUILTINS])
def test_flip_idx_is_a_valid_involution(schema):
    flip = schema.flip_idx
    k = schema.num_keypoints
    assert sorted(flip.tolist()) == list(range(k))  # a permutation
    np.testing.assert_array_equal(flip[flip], np.arange(k))  # flipping twice is the identity
    for a, b in schema.flip_pairs:  # pairs swap left and right, nothing else moves
        assert flip[a] == b and flip[b] == a
    assert all(flip[i] == i for i in set(range(k)) - {i for p in schema.flip_pairs for i in p})


@pytest.mark.parametrize("schema", BUILTINS, ids=[s.name for s in BUILTINS])
def test_builtin_invariants(schema):
    k = schema.num_keypoints
    assert len(set(schema.keypoints)) == k and len(schema.sigmas) == k
    assert all(0 < s < 0.2 for s in schema.sigmas)
    assert all(0 <= a < k and 0 <= b < k and a != b for a, b in schema.skeleton)
    assert len(set(map(frozenset, schema.skeleton))) == len(schema.skeleton)  # no repeated edge
    assert schema.source  # every number has a stated origin
    # the skeleton reaches every keypoint but WFLW's two pupils (points inside the eye contours)
    loose = set(range(k)) - {i for e in schema.skeleton for i in e}
    assert loose == ({96, 97} if schema.name == "face98" else set())


def test_counts_and_published_sigmas():
    assert [s.num_keypoints for s in BUILTINS] == [17, 68, 98, 21]
    # COCO-WholeBody face sigmas: jaw 0 .042, chin 8 .020, nose tip 30 .007; hand: wrist .029, thumb tip .047
    assert (FACE68.sigmas[0], FACE68.sigmas[8], FACE68.sigmas[30]) == (0.042, 0.020, 0.007)
    assert (HAND21.sigmas[0], HAND21.sigmas[4]) == (0.029, 0.047)
    assert len(set(FACE98.sigmas)) == 1  # no published WFLW sigmas: one documented value


def test_face_mirror_pairs_follow_the_markups():
    f68 = FACE68.flip_idx
    assert f68[0] == 16 and f68[8] == 8 and f68[36] == 45 and f68[48] == 54 and f68[30] == 30
    f98 = FACE98.flip_idx
    assert f98[0] == 32 and f98[16] == 16 and f98[60] == 72 and f98[96] == 97 and f98[54] == 54
    assert HAND21.keypoints[0] == "wrist" and HAND21.keypoints[1:5] == (
        "thumb_1",
        "thumb_2",
        "thumb_3",
        "thumb_4",
    )


def test_invariants_are_enforced():
    with pytest.raises(SchemaError, match="duplicate"):
        KeypointSchema("x", ("a", "a"), (), (), (0.1, 0.1))
    with pytest.raises(SchemaError, match="out of range"):
        KeypointSchema("x", ("a", "b"), ((0, 2),), (), (0.1, 0.1))
    with pytest.raises(SchemaError, match="more than one"):
        KeypointSchema("x", ("a", "b", "c"), (), ((0, 1), (1, 2)), (0.1,) * 3)
    with pytest.raises(SchemaError, match="positive"):
        KeypointSchema("x", ("a",), (), (), (0.0,))


def test_custom_schema_from_yaml(tmp_path):
    p = tmp_path / "dog.yaml"
    p.write_text(
        "name: dog\nkeypoints: [nose, left_ear, right_ear]\nskeleton: [[nose, left_ear], [1, 3]]\n"
        "skeleton_base: 1\nflip_pairs: [[left_ear, right_ear]]\nsigmas: {nose: 0.03}\n"
    )
    s = get_schema(str(p))
    assert (
        s.skeleton == ((0, 1), (0, 2)) and s.flip_idx.tolist() == [0, 2, 1] and s.sigmas == (0.03, 0.05, 0.05)
    )
    assert load_schema_yaml(p) == s
    with pytest.raises(SchemaError, match="unknown keypoint"):
        schema_from_dict({"keypoints": ["a"], "skeleton": [["a", "zz"]]})
    with pytest.raises(SchemaError, match="unknown schema"):
        get_schema("coco18")
