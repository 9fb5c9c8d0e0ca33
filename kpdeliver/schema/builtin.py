"""The built-in keypoint schemas (COCO-17, 68- and 98-point faces, 21-point hand) with their
published sigmas, and looking a schema up by name or file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kpdeliver.schema.core import DEFAULT_SIGMA, KeypointSchema, SchemaError, load_schema_yaml, pairs_by_side

_COCO17_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
# COCO's published per-keypoint sigmas (cocoapi COCOeval.computeOks).
_COCO17_SIGMAS = (
    0.026,
    0.025,
    0.025,
    0.035,
    0.035,
    0.079,
    0.079,
    0.072,
    0.072,
    0.062,
    0.062,
    0.107,
    0.107,
    0.087,
    0.087,
    0.089,
    0.089,
)
# COCO's person skeleton (1-based in the annotation files), here 0-based.
_COCO17_SKELETON = tuple(
    (a - 1, b - 1)
    for a, b in (
        (16, 14),
        (14, 12),
        (17, 15),
        (15, 13),
        (12, 13),
        (6, 12),
        (7, 13),
        (6, 7),
        (6, 8),
        (7, 9),
        (8, 10),
        (9, 11),
        (2, 3),
        (1, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (4, 6),
        (5, 7),
    )
)

# What each point is, for the labeling guide. Left and right are the person's own, never the image's.
_COCO17_DEFINITIONS = {
    "nose": "Tip of the nose: the most forward point of the nose, not the nostrils.",
    "left_eye": "Centre of the person's left eye (the pupil when open, the middle of the lid line when closed).",
    "right_eye": "Centre of the person's right eye (the pupil when open, the middle of the lid line when closed).",
    "left_ear": "The person's left ear at the ear canal opening (the tragus), not the lobe or the top of the ear.",
    "right_ear": "The person's right ear at the ear canal opening (the tragus), not the lobe or the top of the ear.",
    "left_shoulder": "Centre of the person's left shoulder joint, where the upper arm meets the torso; not the "
    "edge of the clothing.",
    "right_shoulder": "Centre of the person's right shoulder joint, where the upper arm meets the torso; not the "
    "edge of the clothing.",
    "left_elbow": "Centre of the person's left elbow joint (the point the forearm turns about).",
    "right_elbow": "Centre of the person's right elbow joint (the point the forearm turns about).",
    "left_wrist": "Centre of the person's left wrist, where the forearm meets the hand; not the hand or fingers.",
    "right_wrist": "Centre of the person's right wrist, where the forearm meets the hand; not the hand or fingers.",
    "left_hip": "Centre of the person's left hip joint (the top of the thigh bone), inside the body outline, "
    "not the edge of the clothing.",
    "right_hip": "Centre of the person's right hip joint (the top of the thigh bone), inside the body outline, "
    "not the edge of the clothing.",
    "left_knee": "Centre of the person's left knee joint (behind the kneecap).",
    "right_knee": "Centre of the person's right knee joint (behind the kneecap).",
    "left_ankle": "Centre of the person's left ankle joint (between the two ankle bones), not the heel or toes.",
    "right_ankle": "Centre of the person's right ankle joint (between the two ankle bones), not the heel or toes.",
}

COCO17 = KeypointSchema(
    name="coco17",
    keypoints=_COCO17_NAMES,
    skeleton=_COCO17_SKELETON,
    flip_pairs=pairs_by_side(_COCO17_NAMES),
    sigmas=_COCO17_SIGMAS,
    category="person",
    source="COCO 2017 person keypoints; sigmas from cocoapi COCOeval",
    definitions=_COCO17_DEFINITIONS,
)


def _chain(start: int, stop: int, *, closed: bool = False) -> tuple[tuple[int, int], ...]:
    """Edges joining keypoints start..stop-1 in order (a contour), optionally closed."""
    edges = tuple((i, i + 1) for i in range(start, stop - 1))
    return (*edges, (stop - 1, start)) if closed else edges


def _mirror(*spans: tuple[int, int, int, int]) -> tuple[tuple[int, int], ...]:
    """Flip pairs from (a0, a1, b0, step): a0..a1 inclusive paired with b0, b0+step, ..."""
    return tuple((a, b0 + step * (a - a0)) for a0, a1, b0, step in spans for a in range(a0, a1 + 1))


# COCO-WholeBody OKS sigmas (Jin et al., ECCV 2020; github.com/jin-s13/COCO-WholeBody
# evaluation/myeval_wholebody.py, the same numbers as mmpose configs/_base_/datasets/coco_wholebody*.py).
# Face: the 68 iBUG/300W points in 300W order.
_WHOLEBODY_FACE_SIGMAS = (
    0.042,
    0.043,
    0.044,
    0.043,
    0.040,
    0.035,
    0.031,
    0.025,
    0.020,
    0.023,
    0.029,
    0.032,
    0.037,
    0.038,
    0.043,
    0.041,
    0.045,
    0.013,
    0.012,
    0.011,
    0.011,
    0.012,
    0.012,
    0.011,
    0.011,
    0.013,
    0.015,
    0.009,
    0.007,
    0.007,
    0.007,
    0.012,
    0.009,
    0.008,
    0.016,
    0.010,
    0.017,
    0.011,
    0.009,
    0.011,
    0.009,
    0.007,
    0.013,
    0.008,
    0.011,
    0.012,
    0.010,
    0.034,
    0.008,
    0.008,
    0.009,
    0.008,
    0.008,
    0.007,
    0.010,
    0.008,
    0.009,
    0.009,
    0.009,
    0.007,
    0.007,
    0.008,
    0.011,
    0.008,
    0.008,
    0.008,
    0.01,
    0.008,
)
# Hand: 21 points, wrist then thumb/index/middle/ring/pinky from palm to tip (left = right hand values).
_WHOLEBODY_HAND_SIGMAS = (
    0.029,
    0.022,
    0.035,
    0.037,
    0.047,
    0.026,
    0.025,
    0.024,
    0.035,
    0.018,
    0.024,
    0.022,
    0.026,
    0.017,
    0.021,
    0.021,
    0.032,
    0.02,
    0.019,
    0.022,
    0.031,
)

# 300W / iBUG 68-point markup. "right"/"left" are the subject's, as in the iBUG annotation guide:
# 17-21 is the subject's right brow (image left), 36-41 the right eye.
_FACE68_NAMES = (
    tuple(f"jaw_{i}" for i in range(17))
    + tuple(f"right_brow_{i}" for i in range(5))
    + tuple(f"left_brow_{i}" for i in range(5))
    + tuple(f"nose_bridge_{i}" for i in range(4))
    + tuple(f"nose_base_{i}" for i in range(5))
    + tuple(f"right_eye_{i}" for i in range(6))
    + tuple(f"left_eye_{i}" for i in range(6))
    + tuple(f"outer_lip_{i}" for i in range(12))
    + tuple(f"inner_lip_{i}" for i in range(8))
)
FACE68 = KeypointSchema(
    name="face68",
    keypoints=_FACE68_NAMES,
    skeleton=_chain(0, 17)
    + _chain(17, 22)
    + _chain(22, 27)
    + _chain(27, 31)
    + _chain(31, 36)
    + ((30, 33),)
    + _chain(36, 42, closed=True)
    + _chain(42, 48, closed=True)
    + _chain(48, 60, closed=True)
    + _chain(60, 68, closed=True),
    # mirror pairs as in COCO-WholeBody's face flip pairs (offset 23 removed) and mmpose 300w.py
    flip_pairs=_mirror(
        (0, 7, 16, -1),
        (17, 21, 26, -1),
        (31, 32, 35, -1),
        (36, 39, 45, -1),
        (40, 41, 47, -1),
        (48, 50, 54, -1),
        (55, 56, 59, -1),
        (60, 61, 64, -1),
        (65, 65, 67, 0),
    ),
    sigmas=_WHOLEBODY_FACE_SIGMAS,
    category="face",
    source="300W/iBUG 68-point order; OKS sigmas: COCO-WholeBody face (jin-s13/COCO-WholeBody myeval_wholebody.py)",
)

# WFLW 98-point order (Wu et al., CVPR 2018, "Look at Boundary"). No OKS sigmas were ever
# published for WFLW (it is scored with NME), so every point uses the median COCO-WholeBody
# face sigma (0.011): the same order of size as the 300W points it shares.
_FACE98_NAMES = (
    tuple(f"contour_{i}" for i in range(33))
    + tuple(f"right_brow_{i}" for i in range(9))
    + tuple(f"left_brow_{i}" for i in range(9))
    + tuple(f"nose_bridge_{i}" for i in range(4))
    + tuple(f"nose_base_{i}" for i in range(5))
    + tuple(f"right_eye_{i}" for i in range(8))
    + tuple(f"left_eye_{i}" for i in range(8))
    + tuple(f"outer_lip_{i}" for i in range(12))
    + tuple(f"inner_lip_{i}" for i in range(8))
    + ("right_pupil", "left_pupil")
)
FACE98 = KeypointSchema(
    name="face98",
    keypoints=_FACE98_NAMES,
    skeleton=_chain(0, 33)
    + _chain(33, 42, closed=True)
    + _chain(42, 51, closed=True)
    + _chain(51, 55)
    + _chain(55, 60)
    + ((54, 57),)
    + _chain(60, 68, closed=True)
    + _chain(68, 76, closed=True)
    + _chain(76, 88, closed=True)
    + _chain(88, 96, closed=True),
    # WFLW's published flip pairs (as in mmpose wflw.py and the HRNet facial landmark code)
    flip_pairs=_mirror(
        (0, 15, 32, -1),
        (33, 37, 46, -1),
        (38, 41, 50, -1),
        (55, 56, 59, -1),
        (60, 64, 72, -1),
        (65, 67, 75, -1),
        (76, 78, 82, -1),
        (83, 84, 87, -1),
        (88, 89, 92, -1),
        (93, 93, 95, 0),
        (96, 96, 97, 0),
    ),
    sigmas=(float(np.median(_WHOLEBODY_FACE_SIGMAS)),) * 98,
    category="face",
    source="WFLW 98-point order; no published OKS sigmas: median COCO-WholeBody face sigma for every point",
)

_FINGERS = ("thumb", "index", "middle", "ring", "pinky")
_HAND21_NAMES = ("wrist", *tuple(f"{f}_{j}" for f in _FINGERS for j in range(1, 5)))
HAND21 = KeypointSchema(
    name="hand21",
    keypoints=_HAND21_NAMES,
    # each finger: wrist -> joint 1 -> ... -> tip
    skeleton=tuple(e for f in range(5) for e in (((0, 1 + 4 * f), *_chain(1 + 4 * f, 5 + 4 * f)))),
    flip_pairs=(),  # one hand: a horizontal flip changes its side, not its point order
    sigmas=_WHOLEBODY_HAND_SIGMAS,
    category="hand",
    source="21-point hand (wrist + 4 joints per finger, OpenPose/COCO-WholeBody order); "
    "OKS sigmas: COCO-WholeBody hand (jin-s13/COCO-WholeBody myeval_wholebody.py)",
)

BUILTIN_SCHEMAS: dict[str, KeypointSchema] = {s.name: s for s in (COCO17, FACE68, FACE98, HAND21)}


def sigmas_origin(schema: KeypointSchema) -> str:
    """Which sigmas OKS uses with this schema, in words: a file's own `sigmas_source` (`measured
    v0003`), `COCO default` (the published COCO/COCO-WholeBody values), `default 0.05` (none
    declared) or `schema` (the schema file's own values)."""
    if schema.sigmas_source:
        return schema.sigmas_source
    builtin = BUILTIN_SCHEMAS.get(schema.name)
    if builtin is not None and builtin.sigmas == schema.sigmas:
        return "COCO default"
    if set(schema.sigmas) == {DEFAULT_SIGMA}:
        return f"default {DEFAULT_SIGMA:g}"
    return "schema"


def get_schema(name_or_path: str | Path) -> KeypointSchema:
    """A built-in schema by name, or a custom one from a YAML file.

    A CVAT XML skeleton is read by the CVAT codec: `kpdeliver.codecs.resolve.resolve_schema`
    takes every form."""
    key = str(name_or_path)
    if key in BUILTIN_SCHEMAS:
        return BUILTIN_SCHEMAS[key]
    if key.endswith((".yaml", ".yml")):
        return load_schema_yaml(key)
    known = ", ".join(sorted(BUILTIN_SCHEMAS))
    raise SchemaError(
        f"unknown schema {key!r}: use one of {known}, a .yaml schema file or a CVAT .xml with a skeleton"
    )
