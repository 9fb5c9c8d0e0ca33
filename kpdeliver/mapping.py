"""Map an export's keypoint names onto a schema, by name only.

Names are compared after normalisation (case, separators, `l`/`r` and `left`/`right`
prefixes) and through a declared alias table. A mapping that is ambiguous or incomplete is
refused with an error naming the keypoints involved, never guessed by position.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from kpdeliver.schema import KeypointSchema, SchemaError

# Common spellings seen in exports -> canonical (normalised) names.
ALIASES: dict[str, str] = {
    "lshoulder": "left_shoulder", "rshoulder": "right_shoulder",
    "lelbow": "left_elbow", "relbow": "right_elbow",
    "lwrist": "left_wrist", "rwrist": "right_wrist",
    "lhip": "left_hip", "rhip": "right_hip",
    "lknee": "left_knee", "rknee": "right_knee",
    "lankle": "left_ankle", "rankle": "right_ankle",
    "leye": "left_eye", "reye": "right_eye",
    "lear": "left_ear", "rear": "right_ear",
}


def normalise_name(name: str) -> str:
    s = re.sub(r"[\s\-\.]+", "_", name.strip().lower())
    s = re.sub(r"^l_", "left_", s)
    s = re.sub(r"^r_", "right_", s)
    compact = s.replace("_", "")
    return ALIASES.get(compact, s)


def map_keypoint_names(names: Sequence[str], schema: KeypointSchema) -> np.ndarray:
    """Index array `perm` such that `file_kps[:, perm]` is in schema order.

    Raises SchemaError when a schema keypoint has no match, a name matches twice, or the
    export carries a keypoint the schema does not know.
    """
    target = {normalise_name(n): i for i, n in enumerate(schema.keypoints)}
    found: dict[int, int] = {}
    unknown, clashes = [], []
    for j, raw in enumerate(names):
        i = target.get(normalise_name(raw))
        if i is None:
            unknown.append(raw)
        elif i in found:
            clashes.append((names[found[i]], raw))
        else:
            found[i] = j
    if clashes:
        raise SchemaError(f"ambiguous keypoint names for schema {schema.name!r}: " + ", ".join(f"{a!r} and {b!r}" for a, b in clashes))
    missing = [schema.keypoints[i] for i in range(schema.num_keypoints) if i not in found]
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"names not in schema {schema.name!r}: {unknown}")
        if missing:
            parts.append(f"schema keypoints with no match: {missing}")
        raise SchemaError("incomplete keypoint mapping: " + "; ".join(parts))
    return np.array([found[i] for i in range(schema.num_keypoints)], dtype=np.int64)
