"""Keypoint schemas: names, skeleton, left/right pairs (-> flip_idx) and OKS sigmas.

A schema is the contract between annotators, codecs, QA and clients. It is immutable and
checks its own invariants when built, so a bad custom schema fails at load time, not
half-way through a delivery.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kpdeliver.bounded import SCHEMA_MAX_BYTES, BoundsError, read_yaml
from kpdeliver.errors import DecodeError

DEFAULT_SIGMA = (
    0.05  # OKS sigma for keypoints whose source declares none (CVAT, Label Studio, YOLO, bare COCO)
)


class SchemaError(DecodeError, ValueError):
    """A keypoint schema (built-in, YAML or CVAT skeleton) breaks an invariant."""


@dataclass(frozen=True)
class KeypointSchema:
    """One keypoint layout.

    `skeleton` edges and `flip_pairs` use 0-based keypoint indices. `sigmas` are the per-keypoint
    OKS constants (COCO convention: kappa = 2 * sigma).
    """

    name: str
    keypoints: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]
    category: str = "object"
    source: str = ""
    aliases: Mapping[str, str] = field(default_factory=dict)
    # what each keypoint is, for the labeling guide (name -> one or two sentences); not part of to_dict
    definitions: Mapping[str, str] = field(default_factory=dict)
    # where the sigmas come from when a file says so (`measured v0003`, written by `kpdeliver schema`)
    sigmas_source: str = ""

    def __post_init__(self) -> None:
        k = len(self.keypoints)
        if k == 0:
            raise SchemaError(f"schema {self.name!r}: no keypoints")
        if len(set(self.keypoints)) != k:
            dupes = sorted({n for n in self.keypoints if self.keypoints.count(n) > 1})
            raise SchemaError(f"schema {self.name!r}: duplicate keypoint names {dupes}")
        if len(self.sigmas) != k:
            raise SchemaError(f"schema {self.name!r}: {len(self.sigmas)} sigmas for {k} keypoints")
        if not all(np.isfinite(s) and s > 0 for s in self.sigmas):
            raise SchemaError(f"schema {self.name!r}: OKS sigmas must be positive and finite")
        for a, b in self.skeleton:
            if not (0 <= a < k and 0 <= b < k) or a == b:
                raise SchemaError(f"schema {self.name!r}: skeleton edge ({a}, {b}) out of range 0..{k - 1}")
        seen: set[int] = set()
        for a, b in self.flip_pairs:
            if not (0 <= a < k and 0 <= b < k) or a == b:
                raise SchemaError(f"schema {self.name!r}: flip pair ({a}, {b}) out of range 0..{k - 1}")
            if a in seen or b in seen:
                raise SchemaError(f"schema {self.name!r}: keypoint in more than one flip pair ({a}, {b})")
            seen.update((a, b))
        unknown = sorted(set(self.definitions) - set(self.keypoints))
        if unknown:
            raise SchemaError(f"schema {self.name!r}: definitions for unknown keypoints {unknown}")
        flip = self.flip_idx
        if not np.array_equal(flip[flip], np.arange(k)):
            raise SchemaError(f"schema {self.name!r}: flip_idx is not an involution")

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    @property
    def flip_idx(self) -> np.ndarray:
        """Index permutation that swaps every left/right pair (what Ultralytics calls flip_idx)."""
        idx = np.arange(len(self.keypoints))
        for a, b in self.flip_pairs:
            idx[a], idx[b] = b, a
        return idx

    @property
    def sigma_array(self) -> np.ndarray:
        return np.asarray(self.sigmas, dtype=np.float64)

    def index(self, name: str) -> int:
        return self.keypoints.index(name)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "category": self.category,
            "keypoints": list(self.keypoints),
            "skeleton": [list(e) for e in self.skeleton],
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "sigmas": list(self.sigmas),
            "source": self.source,
        }


def schema_from_dict(data: Mapping, *, origin: str = "<dict>") -> KeypointSchema:
    """Build a schema from a plain mapping (a YAML file's content).

    Pairs and edges may be given by name or by 0-based index. A YAML file says
    `skeleton_base: 1` when its edge indices are 1-based (COCO's convention). Left/right pairs are
    stated as `flip_pairs:` (or `pairs:`); a file that states none has its names paired by their
    left/right token (`flip_pairs: []` says there are none).
    """
    try:
        names = tuple(str(n) for n in data["keypoints"])
    except (KeyError, TypeError):
        raise SchemaError(f"{origin}: field 'keypoints' (list of names) is required") from None
    base = int(data.get("skeleton_base", 0))

    def as_index(v, what: str) -> int:
        if isinstance(v, str):
            if v not in names:
                raise SchemaError(f"{origin}: {what} names unknown keypoint {v!r}")
            return names.index(v)
        return int(v) - base

    skeleton = tuple((as_index(a, "skeleton"), as_index(b, "skeleton")) for a, b in data.get("skeleton", ()))
    if "flip_pairs" in data and "pairs" in data:
        raise SchemaError(f"{origin}: give left/right pairs once, as 'flip_pairs' or as 'pairs'")
    stated = data.get("flip_pairs", data.get("pairs"))
    if stated is None:  # not stated: pair the names by their left/right token
        pairs = pairs_by_side(names)
    else:
        try:
            pairs = tuple((as_index(a, "flip_pairs"), as_index(b, "flip_pairs")) for a, b in stated)
        except (TypeError, ValueError):
            raise SchemaError(
                f"{origin}: 'flip_pairs' must be a list of [left, right] names or indices"
            ) from None
    sigmas = data.get("sigmas")
    definitions = data.get("definitions") or {}
    if not isinstance(definitions, Mapping):
        raise SchemaError(f"{origin}: 'definitions' must map keypoint names to their descriptions")
    if sigmas is None:
        sigmas = [float(data.get("default_sigma", DEFAULT_SIGMA))] * len(names)
    elif isinstance(sigmas, Mapping):
        default = float(data.get("default_sigma", DEFAULT_SIGMA))
        sigmas = [float(sigmas.get(n, default)) for n in names]
    return KeypointSchema(
        name=str(data.get("name", Path(origin).stem)),
        keypoints=names,
        skeleton=skeleton,
        flip_pairs=pairs,
        sigmas=tuple(float(s) for s in sigmas),
        category=str(data.get("category", "object")),
        source=str(data.get("source", origin)),
        definitions={str(n): str(d) for n, d in definitions.items()},
        sigmas_source=str(data.get("sigmas_source", "")),
    )


def load_schema_yaml(path: str | Path) -> KeypointSchema:
    p = Path(path)
    try:  # a regular file of bounded size: a FIFO or a device is refused, never waited on
        data = read_yaml(p, what="schema file", limit=SCHEMA_MAX_BYTES)
    except BoundsError as e:
        raise SchemaError(str(e)) from None
    if not isinstance(data, Mapping):
        raise SchemaError(f"schema file {p} must hold a mapping")
    return schema_from_dict(data, origin=str(p))


_SIDE = {"left": "l", "l": "l", "right": "r", "r": "r"}


def _side_tokens(name: str) -> list[str]:
    """Lower-case word tokens of a name: split at separators and camelCase humps (`LeftHand`,
    `LShoulder` -> left hand, l shoulder)."""
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name.strip())
    return [t for t in re.split(r"[\s_\-.:/]+", s.lower()) if t]


def _side_key(name: str) -> tuple[str, tuple[str, ...]] | None:
    """(side, the name with its side token blanked) when exactly one token says left or right."""
    tokens = _side_tokens(name)
    at = [i for i, t in enumerate(tokens) if t in _SIDE]
    if len(at) != 1:
        return None
    i = at[0]
    return _SIDE[tokens[i]], (*tuple(tokens[:i]), "*", *tuple(tokens[i + 1 :]))


def pairs_by_side(names: Iterable[str]) -> tuple[tuple[int, int], ...]:
    """Left/right pairs of names that differ only by their side token, wherever it stands and however
    it is spelt: `left_eye`/`right_eye`, `l_eye`/`r_eye`, `LeftHand`/`RightHand`, `front_left_paw`/
    `front_right_paw`, `mouth_end_right`/`mouth_end_left`. A side with two candidates pairs nothing.
    Pairs are (left index, right index), in the order of the left names."""
    slots: dict[tuple[str, ...], dict[str, list[int]]] = {}
    for i, n in enumerate(names):
        key = _side_key(n)
        if key is not None:
            slots.setdefault(key[1], {"l": [], "r": []})[key[0]].append(i)
    pairs = [(s["l"][0], s["r"][0]) for s in slots.values() if len(s["l"]) == 1 and len(s["r"]) == 1]
    return tuple(sorted(pairs))


def unpaired_side_names(schema: KeypointSchema) -> list[str]:
    """Names that say left or right but are in no flip pair: a horizontal flip would keep their
    labels on the wrong side, so inspect and convert name them."""
    paired = {i for p in schema.flip_pairs for i in p}
    return [n for i, n in enumerate(schema.keypoints) if i not in paired and _side_key(n) is not None]


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


def schema_version(schema: KeypointSchema) -> str:
    """A short fingerprint of what labels must follow (names, skeleton, pairs, sigmas, definitions):
    the labeling guide carries it, so a guide is known to match its schema."""
    import hashlib
    import json

    doc = {**schema.to_dict(), "definitions": dict(schema.definitions)}
    doc.pop("source", None)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]


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
