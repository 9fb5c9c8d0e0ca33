"""A COCO file as a whole: is it a COCO dataset (or what else it is), its category objects, and
the file-level oddities decoding works around, each noted as an info finding."""

from __future__ import annotations

import numpy as np

from kpdeliver.codecs import CodecError, DecodeLog
from kpdeliver.codecs.coco.metadata import skeleton_edges


def coco_doc(doc, source: str) -> dict:
    """The parsed file as a COCO dataset's dict, or CodecError saying what it is instead."""
    if isinstance(doc, list):
        raise CodecError(f"{source}: a JSON list, not a COCO dataset ({_list_kind(doc)})")
    if not isinstance(doc, dict) or "annotations" not in doc:
        raise CodecError(f"{source}: field 'annotations' is missing; not a COCO keypoints file")
    if not all(isinstance(doc.get(f) or [], list) for f in ("images", "annotations", "categories")):
        raise CodecError(f"{source}: fields 'images', 'annotations' and 'categories' must be lists")
    return doc


def read_categories(raw: list, log: DecodeLog) -> list[dict]:
    """The category objects; one whose 'keypoints' or 'skeleton' is not a list is read without it."""
    cats = []
    for c in raw:
        if not isinstance(c, dict):
            continue
        for key in ("keypoints", "skeleton"):
            if c.get(key) is not None and not isinstance(c[key], list):
                log.quirk(f"category {c.get('name')!r}, field {key!r}: not a list; ignored")
                c = {**c, key: []}
        cats.append(c)
    return cats


def _list_kind(doc: list) -> str:
    """What a top-level JSON list most likely is, so the refusal names it."""
    first = doc[0] if doc and isinstance(doc[0], dict) else {}
    if "joints" in first and "joints_vis" in first:
        return "an MPII-style list of {joints, joints_vis, center, scale}: convert it to COCO first"
    if "image_id" in first and "keypoints" in first:
        return (
            "a COCO keypoint *results* file: no images, categories or flags of its own; "
            "decode it against its ground truth"
        )
    if "data" in first or "result" in first or "annotations" in first:
        return "it looks like a Label Studio export: read it with the Label Studio codec"
    return "no 'images', 'annotations' or 'categories' fields"


def note_quirks(cats: list[dict], anns: list, lengths: np.ndarray, log: DecodeLog) -> None:
    """Info findings for file-level oddities that decoding works around (nothing is dropped silently)."""
    msgs = []
    k = int(np.bincount(lengths[lengths > 0]).argmax()) if (lengths > 0).any() else 0
    for c in cats:
        names = c.get("keypoints") or []
        if names and k and len(names) != k:
            msgs.append(
                f"category {c.get('name')!r} names {len(names)} keypoints but annotations carry {k}; "
                "names ignored"
            )
        elif not names and k:
            msgs.append(f"category {c.get('name')!r} has no keypoint names; points taken in file order")
        edges = skeleton_edges(c)
        flat = [x for e in edges for x in e]
        if flat and k:
            base = 0 if min(flat) == 0 else 1
            bad = sum(1 for a, b in edges if not (0 <= a - base < k and 0 <= b - base < k))
            if bad:
                msgs.append(
                    f"category {c.get('name')!r}: {bad} skeleton edge(s) index past {k} keypoints; dropped"
                )
    first = next((a for a in anns if isinstance(a, dict)), {})
    parts = sorted(key for key in first if key.endswith("_kpts") or key.startswith("keypoints_"))
    if parts:
        msgs.append(f"annotations carry extra keypoint arrays {parts}; only 'keypoints' is decoded")
    if (
        first
        and isinstance(first.get("keypoints"), list)
        and first["keypoints"]
        and isinstance(first["keypoints"][0], list)
    ):
        msgs.append("keypoints stored nested as [[x, y, v], ...]")
    for m in msgs:
        log.quirk(m)
