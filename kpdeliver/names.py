"""Map an export's keypoint names onto a schema, by name only.

Names are compared after normalisation (case, separators, `l`/`r` and `left`/`right`
prefixes) and through a declared alias table. A mapping that is ambiguous or incomplete is
refused with an error naming the keypoints involved, never guessed by position.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from kpdeliver.schema import KeypointSchema, SchemaError

# Common spellings seen in exports (compact: lower case, no separators) -> canonical names.
# OpenPose writes LShoulder / RElbow, some tools lsho / rank, MPII r_ankle.
_SIDE_PARTS = {
    "shoulder": ("shoulder", "sho", "shoul"),
    "elbow": ("elbow", "elb"),
    "wrist": ("wrist", "wri"),
    "hip": ("hip",),
    "knee": ("knee", "kne"),
    "ankle": ("ankle", "ank"),
    "eye": ("eye",),
    "ear": ("ear",),
}
ALIASES: dict[str, str] = {
    f"{s[0]}{spelling}": f"{side}_{part}"
    for part, spellings in _SIDE_PARTS.items()
    for spelling in spellings
    for side, s in (("left", "l"), ("right", "r"))
}


def normalise_name(name: str) -> str:
    """Canonical spelling: lower snake case, side as a `left_` / `right_` prefix, aliases applied.

    `L_Shoulder`, `LShoulder`, `lshoulder`, `shoulder_left` and `left-shoulder` all give `left_shoulder`."""
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name.strip())
    s = re.sub(r"[\s\-\.]+", "_", s.lower()).strip("_")
    s = re.sub(r"^l_", "left_", s)
    s = re.sub(r"^r_", "right_", s)
    m = re.fullmatch(r"(.+?)_(l|r|left|right)", s)
    if m:
        s = ("left_" if m.group(2).startswith("l") else "right_") + m.group(1)
    compact = s.replace("_", "")
    short = re.sub(r"^(left|right)", lambda m: m.group(1)[0], compact)
    return ALIASES.get(short, s)


def _key(name: str) -> str:
    """What two names must share to be the same keypoint: the canonical name without separators."""
    return normalise_name(name).replace("_", "")


def map_keypoint_names(names: Sequence[str], schema: KeypointSchema) -> np.ndarray:
    """Index array `perm` such that `file_kps[:, perm]` is in schema order.

    Raises SchemaError when a schema keypoint has no match, a name matches twice, or the
    export carries a keypoint the schema does not know.
    """
    target = {_key(n): i for i, n in enumerate(schema.keypoints)}
    found: dict[int, int] = {}
    unknown, clashes = [], []
    for j, raw in enumerate(names):
        i = target.get(_key(raw))
        if i is None:
            unknown.append(raw)
        elif i in found:
            clashes.append((names[found[i]], raw))
        else:
            found[i] = j
    if clashes:
        raise SchemaError(
            f"ambiguous keypoint names for schema {schema.name!r}: "
            + ", ".join(f"{a!r} and {b!r}" for a, b in clashes)
        )
    missing = [schema.keypoints[i] for i in range(schema.num_keypoints) if i not in found]
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"names not in schema {schema.name!r}: {unknown}")
        if missing:
            parts.append(f"schema keypoints with no match: {missing}")
        raise SchemaError("incomplete keypoint mapping: " + "; ".join(parts))
    return np.array([found[i] for i in range(schema.num_keypoints)], dtype=np.int64)


def index_by_names(labels: Sequence[str], keys: Sequence, schema: KeypointSchema) -> dict:
    """`keys[j]` (a format's own id of the point labelled `labels[j]`) -> schema index, by name:
    exact, or through the alias table. SchemaError when the labels do not map onto the schema."""
    if list(labels) == list(schema.keypoints):
        return {k: i for i, k in enumerate(keys)}
    perm = map_keypoint_names(list(labels), schema)
    return {keys[j]: i for i, j in enumerate(perm.tolist())}
