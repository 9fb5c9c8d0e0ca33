"""A schema from a COCO file's own categories, and the file-level quirks of its categories."""

from __future__ import annotations

import numpy as np

from kpdeliver.codecs import CodecError
from kpdeliver.schema import DEFAULT_SIGMA, KeypointSchema, SchemaError, pairs_by_side


def schema_from_coco_category(cat: dict, num_kpts: int, *, name: str = "custom") -> KeypointSchema:
    """A schema from a COCO category's own keypoint names and skeleton (for files that are not
    in a built-in schema). Unnamed points get `kp<i>`; the skeleton base (0 or 1) is inferred."""
    names = [str(n) for n in (cat.get("keypoints") or [])]
    if len(names) != num_kpts:
        names = [f"kp{i}" for i in range(num_kpts)]
    raw_edges = skeleton_edges(cat)
    flat = [x for e in raw_edges for x in e]
    base = 0 if flat and min(flat) == 0 else 1
    edges = tuple(
        (int(a) - base, int(b) - base)
        for a, b in raw_edges
        if 0 <= int(a) - base < num_kpts and 0 <= int(b) - base < num_kpts and a != b
    )
    return KeypointSchema(
        name=str(cat.get("name") or name),
        keypoints=tuple(names),
        skeleton=edges,
        flip_pairs=pairs_by_side(names),
        sigmas=(DEFAULT_SIGMA,) * num_kpts,
        category=str(cat.get("name") or "object"),
        source=f"from the file's COCO category (sigmas {DEFAULT_SIGMA} by default)",
    )


def skeleton_edges(cat: dict) -> list[tuple[int, int]]:
    """A category's skeleton edges that are pairs of integers (anything else is not an edge)."""
    raw = cat["skeleton"] if isinstance(cat.get("skeleton"), list) else []
    return [
        (int(e[0]), int(e[1]))
        for e in raw
        if isinstance(e, (list, tuple))
        and len(e) == 2
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) and float(x).is_integer() for x in e)
    ]


def schema_from_file(cats: list[dict], lengths: np.ndarray, source: str) -> KeypointSchema:
    """The file's own schema: the category naming as many keypoints as the annotations carry."""
    k = int(np.bincount(lengths[lengths > 0]).argmax()) if (lengths > 0).any() else 0
    named = [c for c in cats if c.get("keypoints")]
    if k == 0:
        if not named:
            raise CodecError(
                f"{source}: no keypoints found (no category 'keypoints' names and no annotation 'keypoints')"
            )
        k = len(named[0]["keypoints"])
    fitting = [c for c in named if len(c["keypoints"]) == k]
    return schema_from_coco_category(fitting[0] if fitting else (cats[0] if cats else {}), k)


def name_order(cats: list[dict], schema: KeypointSchema, source: str) -> np.ndarray | None:
    """Permutation from the file's keypoint order to the schema's, by name (None: same order).

    Only names decide: a file with no names (or names that do not fit its keypoint arrays, a
    quirk reported by `_quirks`) is taken in schema order, since position is all there is."""
    named = [c for c in cats if len(c.get("keypoints") or ()) == schema.num_keypoints]
    if not named:
        return None
    names = [str(n) for n in named[0]["keypoints"]]
    if tuple(names) == schema.keypoints:
        return None
    from kpdeliver.names import map_keypoint_names

    try:
        perm = map_keypoint_names(names, schema)
    except SchemaError as e:
        raise CodecError(f"{source}: category '{named[0].get('name')}', field 'keypoints': {e}") from None
    return perm
