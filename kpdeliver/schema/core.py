"""Keypoint schemas: names, skeleton, left/right pairs (-> flip_idx) and OKS sigmas.

The schema model: `KeypointSchema`, reading it from a dict or YAML file, and left/right pairing by name.

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


def schema_version(schema: KeypointSchema) -> str:
    """A short fingerprint of what labels must follow (names, skeleton, pairs, sigmas, definitions):
    the labeling guide carries it, so a guide is known to match its schema."""
    import hashlib
    import json

    doc = {**schema.to_dict(), "definitions": dict(schema.definitions)}
    doc.pop("source", None)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]
