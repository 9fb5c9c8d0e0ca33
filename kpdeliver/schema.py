"""Keypoint schemas: names, skeleton, left/right pairs (-> flip_idx) and OKS sigmas.

A schema is the contract between annotators, codecs, QA and clients. It is immutable and
checks its own invariants when built, so a bad custom schema fails at load time, not
half-way through a delivery.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np


class SchemaError(ValueError):
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
    `skeleton_base: 1` when its edge indices are 1-based (COCO's convention).
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
    pairs = tuple(
        (as_index(a, "flip_pairs"), as_index(b, "flip_pairs")) for a, b in data.get("flip_pairs", ())
    )
    sigmas = data.get("sigmas")
    if sigmas is None:
        sigmas = [float(data.get("default_sigma", 0.05))] * len(names)
    elif isinstance(sigmas, Mapping):
        default = float(data.get("default_sigma", 0.05))
        sigmas = [float(sigmas.get(n, default)) for n in names]
    return KeypointSchema(
        name=str(data.get("name", Path(origin).stem)),
        keypoints=names,
        skeleton=skeleton,
        flip_pairs=pairs,
        sigmas=tuple(float(s) for s in sigmas),
        category=str(data.get("category", "object")),
        source=str(data.get("source", origin)),
    )


def load_schema_yaml(path: str | Path) -> KeypointSchema:
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as e:
        raise SchemaError(f"cannot read schema file {p}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise SchemaError(f"schema file {p} is not valid YAML: {e}") from None
    if not isinstance(data, Mapping):
        raise SchemaError(f"schema file {p} must hold a mapping")
    return schema_from_dict(data, origin=str(p))


def pairs_by_prefix(names: Iterable[str], left: str = "left_", right: str = "right_") -> tuple[tuple[int, int], ...]:
    """Left/right pairs of a name list whose names differ only by a left/right prefix."""
    names = list(names)
    pos = {n: i for i, n in enumerate(names)}
    return tuple(
        (i, pos[right + n[len(left):]])
        for i, n in enumerate(names)
        if n.startswith(left) and right + n[len(left):] in pos
    )


_COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
# COCO's published per-keypoint sigmas (cocoapi COCOeval.computeOks).
_COCO17_SIGMAS = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)
# COCO's person skeleton (1-based in the annotation files), here 0-based.
_COCO17_SKELETON = tuple(
    (a - 1, b - 1)
    for a, b in (
        (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
        (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
    )
)

COCO17 = KeypointSchema(
    name="coco17",
    keypoints=_COCO17_NAMES,
    skeleton=_COCO17_SKELETON,
    flip_pairs=pairs_by_prefix(_COCO17_NAMES),
    sigmas=_COCO17_SIGMAS,
    category="person",
    source="COCO 2017 person keypoints; sigmas from cocoapi COCOeval",
)

BUILTIN_SCHEMAS: dict[str, KeypointSchema] = {COCO17.name: COCO17}


def get_schema(name_or_path: str | Path) -> KeypointSchema:
    """A built-in schema by name, or a custom one from a YAML file path."""
    key = str(name_or_path)
    if key in BUILTIN_SCHEMAS:
        return BUILTIN_SCHEMAS[key]
    if key.endswith((".yaml", ".yml")):
        return load_schema_yaml(key)
    known = ", ".join(sorted(BUILTIN_SCHEMAS))
    raise SchemaError(f"unknown schema {key!r}: use one of {known} or a path to a .yaml schema file")
