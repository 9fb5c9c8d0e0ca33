"""CVAT for video 1.1: tracks expanded to one instance per frame.

Shapes listed in the file are used as written (CVAT dumps interpolated frames too), frames on
the task's frame step between two listed shapes are linearly interpolated, and a track ends at
an `outside` shape.

A skeleton track comes in two layouts: CVAT/Datumaro exports hold one sub-`<track>` per element
(its `<points frame=>` listed there), CVAT's documentation shows each `<skeleton frame=>` holding
its elements' `<points>`. Both give the same series per element. A frame where no element is
labelled (the whole track `outside`) is no instance."""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

import numpy as np

from kpdeliver.codecs import CodecError
from kpdeliver.codecs.cvat.attributes import first_xy, flag, int_attr, int_text, xy_pairs
from kpdeliver.codecs.cvat.shapes import ShapeWalk
from kpdeliver.model import NONE, Images


def _frame_grid(root: Element) -> tuple[int, int]:
    """(start_frame, step) of a video task."""
    task = root.find("./meta/task")
    if task is None:
        task = root.find("./meta/job")
    start = int_text(task.findtext("start_frame")) if task is not None else 0
    filt = (task.findtext("frame_filter") or "") if task is not None else ""
    m = re.search(r"step\s*=\s*(\d+)", filt)
    return start, int(m.group(1)) if m else 1


def _track_series(shapes: list[Element], frames: np.ndarray, xy_of, n_pts: int):
    """For every frame: xy [F, n_pts, 2], present [F], outside [F], occluded [F].

    Listed shapes are used as written; a gap between two listed shapes is interpolated
    linearly, unless the earlier one is `outside` (the track ended there)."""
    listed = sorted(((int_attr(s, "frame", 0), s) for s in shapes), key=lambda t: t[0])
    lf = np.array([f for f, _ in listed], dtype=np.int64)
    lxy = np.array([xy_of(s) for _, s in listed]).reshape(len(listed), n_pts, 2)
    lout = np.array([flag(s, "outside") for _, s in listed], bool)
    locc = np.array([flag(s, "occluded") for _, s in listed], bool)
    prev = np.searchsorted(lf, frames, side="right") - 1
    has_prev = prev >= 0
    p = np.clip(prev, 0, len(lf) - 1)
    nxt = np.clip(prev + 1, 0, len(lf) - 1)
    exact = has_prev & (lf[p] == frames)
    between = has_prev & ~exact & (prev + 1 < len(lf)) & ~lout[p]
    t = np.where(between, (frames - lf[p]) / np.maximum(lf[nxt] - lf[p], 1), 0.0)
    xy = lxy[p] + (lxy[nxt] - lxy[p]) * t[:, None, None]
    present = exact | between
    outside = present & lout[p]
    return xy, present, outside, present & locc[p]


def video_images(root: Element, walk: ShapeWalk) -> Images:
    """Every track's instances added to `walk.rows`; one image per frame used."""
    size = root.find("./meta//original_size")
    w = int_text(size.findtext("width")) if size is not None else 0
    h = int_text(size.findtext("height")) if size is not None else 0
    grid = _frame_grid(root)
    used: set[int] = set()
    for tr in root.findall("track"):
        tid = int_attr(tr, "id", NONE)
        label = tr.get("label", "")
        skel = tr.findall("skeleton")
        pts = tr.findall("points")
        if skel:
            series = _skeleton_track(tr, skel, walk, tid, grid)
        elif pts:
            series = _points_track(pts, walk, tid, label, grid)
        else:
            continue
        if series is None:
            continue
        frames, xy, present, outside, occluded = series
        for j, f in enumerate(frames.tolist()):
            used.add(f)
            walk.rows.add(
                image_id=f,
                track_id=tid,
                frame=f,
                label=label,
                xy=xy[j],
                present=present[j],
                outside=outside[j],
                occluded=occluded[j],
            )
    numbers = sorted(used)
    return Images.build(
        id=numbers,
        file_name=[f"frame_{f:06d}" for f in numbers],
        width=[w] * len(numbers),
        height=[h] * len(numbers),
        source=[walk.source] * len(numbers),
    )


def _skeleton_track(
    tr: Element, skel: list[Element], walk: ShapeWalk, tid: int, grid: tuple[int, int]
) -> tuple[np.ndarray, ...] | None:
    """A skeleton track's labelled frames: (frames, xy [F, K, 2], present, outside, occluded [F, K]),
    each element's series in the schema's order; None when its elements do not map onto the schema."""
    k = walk.k
    start, step = grid
    order = walk.skeleton_order(tr, f"track id={tid}", NONE)
    if order is None:
        return None
    frames = _grid_frames(
        [int_attr(s, "frame", 0) for s in skel], start, step, f"{walk.source}: track id={tid}"
    )
    _, alive, gone, occ = _track_series(skel, frames, lambda s: np.zeros((0, 2)), 0)
    frames, occ = frames[alive & ~gone], occ[alive & ~gone]
    xy = np.zeros((len(frames), k, 2))
    present, outside, occluded = (np.zeros((len(frames), k), bool) for _ in range(3))
    for element, shapes in _element_series(tr, skel).items():
        i = order.get(element)
        if i is None or not shapes:
            continue
        sxy, sp, so, socc = _track_series(shapes, frames, lambda s: first_xy(s.get("points")), 1)
        xy[:, i], present[:, i], outside[:, i], occluded[:, i] = sxy[:, 0], sp, so, socc | occ
    labelled = (present & ~outside).any(axis=1)
    return tuple(a[labelled] for a in (frames, xy, present, outside, occluded))


def _points_track(
    pts: list[Element], walk: ShapeWalk, tid: int, label: str, grid: tuple[int, int]
) -> tuple[np.ndarray, ...] | None:
    """A points track's frames inside the track: (frames, xy [F, K, 2], present, outside,
    occluded [F, K]); None when it is held back (a stray label, or shapes of another point count,
    each then read as free points)."""
    k = walk.k
    start, step = grid
    if walk.stray(
        label,
        f"track id={tid} ({len(pts)} shapes)",
        int_attr(pts[0], "frame", NONE),
        len(xy_pairs(pts[0].get("points"))),
    ):
        return None
    if any(len(xy_pairs(s.get("points"))) != k for s in pts):
        for s in pts:
            walk.free_points(
                s, f"track id={tid} ({label!r}) frame {s.get('frame')}", int_attr(s, "frame", NONE)
            )
        return None
    frames = _grid_frames(
        [int_attr(s, "frame", 0) for s in pts], start, step, f"{walk.source}: track id={tid}"
    )
    sxy, sp, so, socc = _track_series(pts, frames, lambda s: xy_pairs(s.get("points")), k)
    keep = sp & ~so
    frames, xy = frames[keep], sxy[keep]
    present = np.ones((len(frames), k), bool)
    outside = np.zeros((len(frames), k), bool)
    occluded = np.repeat(socc[keep][:, None], k, axis=1)
    return frames, xy, present, outside, occluded


def _element_series(track: Element, skeletons: list[Element]) -> dict[str, list[Element]]:
    """Each element's `<points frame=>` shapes of one skeleton track, in either layout."""
    subs = {sub.get("label", ""): sub.findall("points") for sub in track.findall("track")}
    if subs:
        return subs
    by_element: dict[str, list[Element]] = {}
    for sk in skeletons:
        for pt in sk.findall("points"):
            # the frame and the skeleton's own occluded flag move onto the point, as in the export layout
            attrs = {**pt.attrib, "frame": sk.get("frame", "0")}
            if flag(sk, "occluded"):
                attrs["occluded"] = "1"
            by_element.setdefault(pt.get("label", ""), []).append(Element("points", attrs))
    return by_element


MAX_TRACK_FRAMES = 10_000_000  # days of video; a longer track has a broken frame number, not that many frames


def _grid_frames(listed: list[int], start: int, step: int, where: str) -> np.ndarray:
    """Frames from the first listed shape to the last, on the task's frame step."""
    lo, hi = min(listed), max(listed)
    if (hi - lo) // step > MAX_TRACK_FRAMES:
        raise CodecError(
            f"{where}: shapes from frame {lo} to {hi}, more than {MAX_TRACK_FRAMES:,} frames; "
            "a frame number is wrong"
        )
    first = lo + (-(lo - start)) % step  # first grid frame at or after the first listed shape
    grid = np.arange(first, hi + 1, step, dtype=np.int64)
    return np.union1d(grid, np.asarray(listed, np.int64))
