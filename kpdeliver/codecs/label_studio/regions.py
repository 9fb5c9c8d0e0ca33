"""Grouping one annotation's Label Studio regions into instances.

A region's `parentID`, else a `relation` between it and a `rectanglelabels` box, else (no
grouping at all) every loose point of one annotation forms one instance, provided no keypoint
label repeats (otherwise the grouping is ambiguous and the points are held back)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from kpdeliver.codecs import DecodeLog, ItemProblem
from kpdeliver.codecs.json_doc import raw_json
from kpdeliver.codecs.label_studio.config import OCCLUDED_CHOICES


def region_id(region: dict, field: str) -> str | None:
    """A region id field as a string (ids are strings or numbers; anything else is no id)."""
    v = region.get(field)
    return str(v) if isinstance(v, (str, int)) and not isinstance(v, bool) else None


def as_list(v: Any) -> list:
    return v if isinstance(v, list) else []


def as_dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


MAX_SIDE = 2**31 - 1  # no image is wider; a larger "size" (1e308) would overflow the int64 size columns


def size_of(v: Any) -> float:
    """A region's original_width/height when it is a positive number of pixels, else 0 (unknown)."""
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= MAX_SIDE else 0.0


def percent(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan


class Gathered:
    """Instances gathered from every task of one export (one list per column), and the log of
    findings and held-back region groups."""

    def __init__(self, k: int, source: str, annotator: str) -> None:
        self.k, self.source, self.annotator = k, source, annotator
        self.kps: list[np.ndarray] = []
        self.bbox: list[list[float]] = []
        self.image_id: list[int] = []
        self.who: list[str] = []
        self.ids: list[int | None] = []
        self.score: list[float] = []
        self.log = DecodeLog(source)

    def quirk(self, msg: str) -> None:
        self.log.quirk(msg)

    def hold(self, check: str, msg: str, *, fld: str, image_id: int, who: str, raw: Any) -> None:
        self.log.hold(
            ItemProblem(
                check,
                self.source,
                f"{self.source}: {msg}",
                field=fld,
                image_id=image_id,
                annotator=who,
                raw=raw_json(raw),
            )
        )


def decode_results(
    results: list, st: Gathered, *, index: dict, image_id: int, who: str, where: str, size: tuple[int, int]
) -> None:
    """One task's results into `st`: each group of keypoint regions (by box) one instance; a group
    that cannot be read is held back with its problem."""
    regions = [r for r in results if isinstance(r, dict)]
    boxes = {region_id(r, "id"): r for r in regions if r.get("type") == "rectanglelabels"}
    boxes.pop(None, None)
    occluded = {
        region_id(r, "id")
        for r in regions
        if r.get("type") == "choices"
        and OCCLUDED_CHOICES & {str(c).lower() for c in as_list(as_dict(r.get("value")).get("choices"))}
    }
    for key, pts in _point_groups(regions, boxes, st, where).items():
        w, h = size
        if not (w > 0 and h > 0) and any(
            not (size_of(p.get("original_width")) and size_of(p.get("original_height"))) for p in pts
        ):
            st.hold(
                "schema.missing_field",
                f"{where}, region group {key if key != ('loose', None) else 'loose'}: "
                "field 'original_width'/'original_height' missing or not a pixel count and the image size is unknown; "
                "percent coordinates cannot be converted",
                fld="original_width",
                image_id=image_id,
                who=who,
                raw=pts,
            )
            continue
        kp, problem = _group_points(pts, st.k, index, occluded, size)
        if problem:
            check, fld, why = problem
            st.hold(check, f"{where}: {why}", fld=fld, image_id=image_id, who=who, raw=pts)
            continue
        _add_instance(st, kp, pts, boxes.get(key), key, size, image_id=image_id, who=who)


def _point_groups(regions: list[dict], boxes: dict, st: Gathered, where: str) -> dict[Any, list[dict]]:
    """The keypoint regions grouped by the box they belong to (its parentID, or a relation between
    them), or `("loose", None)` for those of no box; a box without points is a group of none."""
    points = [r for r in regions if r.get("type") == "keypointlabels"]
    related = {}
    relations = [
        (region_id(r, "from_id"), region_id(r, "to_id")) for r in regions if r.get("type") == "relation"
    ]
    loops = sum(1 for a, b in relations if a == b)
    if loops:
        st.quirk(f"{where}: {loops} relation(s) from a region to itself ignored")
    for a, b in relations:
        if a != b and a in boxes and b not in boxes:
            related[b] = a
        elif a != b and b in boxes and a not in boxes:
            related[a] = b
    groups: dict[Any, list[dict]] = {}
    for p in points:
        parent = (
            region_id(p, "parentID") if region_id(p, "parentID") in boxes else related.get(region_id(p, "id"))
        )
        groups.setdefault(parent if parent is not None else ("loose", None), []).append(p)
    if ("loose", None) in groups and len(groups) > 1:
        st.quirk(
            f"{where}: {len(groups[('loose', None)])} keypoints belong to no box (no parentID or relation)"
        )
    elif ("loose", None) in groups:
        st.quirk(f"{where}: keypoints not grouped by parentID or relation; read as one instance")
    if ("loose", None) not in groups:
        # points are grouped by box, so a box with none of them is an instance with nothing labeled
        groups.update({b: [] for b in boxes if b not in groups})
    return groups


def _group_points(
    pts: list[dict], k: int, index: dict, occluded: set, size: tuple[int, int]
) -> tuple[np.ndarray, tuple[str, str, str] | None]:
    """The [K, 3] keypoints of one group of regions, or the (check, field, why) that stops it."""
    from kpdeliver.names import normalise_name

    w, h = size
    kp = np.zeros((k, 3))
    seen: dict[int, str] = {}
    for p in pts:
        val = as_dict(p.get("value"))
        label = (as_list(val.get("keypointlabels")) or [None])[0]
        i = index.get(label, index.get(normalise_name(label))) if isinstance(label, str) else None
        if i is None:
            return kp, (
                "schema.keypoint_count",
                "value.keypointlabels",
                f"region {p.get('id')}: label {label!r} is not a schema keypoint",
            )
        if i in seen:
            return kp, (
                "schema.duplicate_id",
                "value.keypointlabels",
                f"keypoint {label!r} appears twice in one instance "
                f"(regions {seen[i]} and {p.get('id')}); grouping is ambiguous",
            )
        x, y = val.get("x"), val.get("y")
        if not (isinstance(x, (int, float)) and isinstance(y, (int, float))):
            return kp, (
                "schema.bad_type",
                "value.x/y",
                f"region {p.get('id')}, field 'value.x/y': not numbers",
            )
        pw = size_of(p.get("original_width")) or w
        ph = size_of(p.get("original_height")) or h
        seen[i] = str(p.get("id"))
        kp[i] = (x / 100.0 * pw, y / 100.0 * ph, 1.0 if region_id(p, "id") in occluded else 2.0)
    return kp, None


def _add_instance(
    st: Gathered,
    kp: np.ndarray,
    pts: list[dict],
    box: dict | None,
    key: Any,
    size: tuple[int, int],
    *,
    image_id: int,
    who: str,
) -> None:
    """One instance into `st`: its points, its box's (NaN without one), and its id when the box's is `kp-<n>`."""
    w, h = size
    if box is not None:
        bv = as_dict(box.get("value"))
        bw = size_of(box.get("original_width")) or w
        bh = size_of(box.get("original_height")) or h
        bbox = [
            percent(bv.get(f)) / 100 * side
            for f, side in (("x", bw), ("y", bh), ("width", bw), ("height", bh))
        ]
        m = re.fullmatch(r"kp-(\d+)", str(key))
    else:
        bbox, m = [np.nan] * 4, None
    st.kps.append(kp)
    st.bbox.append(bbox)
    st.image_id.append(image_id)
    st.who.append(who)
    st.ids.append(int(m.group(1)) if m else None)
    scores = [p["score"] for p in pts if isinstance(p.get("score"), (int, float))]
    st.score.append(float(np.mean(scores)) if scores else np.nan)
