"""Shapes met while walking a CVAT file: rows of instances, and shapes held back with the
reason (a skeleton label not in `<meta>`, a free points shape with the wrong count)."""

from __future__ import annotations

from xml.etree import ElementTree as ET  # serialising a held-back shape only; parsing goes through defusedxml
from xml.etree.ElementTree import Element

import numpy as np

from kpdeliver.codecs import DecodeLog, ItemProblem
from kpdeliver.codecs.cvat.attributes import flag, xy_pairs
from kpdeliver.findings import findings_for


class Rows:
    """Instance rows gathered while walking the XML (one list per column)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.image_id: list[int] = []
        self.track_id: list[int] = []
        self.frame: list[int] = []
        self.label: list[str] = []
        self.kps: list[np.ndarray] = []
        self.outside: list[np.ndarray] = []

    def add(
        self,
        *,
        image_id: int,
        track_id: int,
        frame: int,
        label: str,
        xy: np.ndarray,
        present: np.ndarray,
        outside: np.ndarray,
        occluded: np.ndarray,
    ) -> None:
        kp = np.zeros((self.k, 3))
        v = np.where(~present | outside, 0.0, np.where(occluded, 1.0, 2.0))
        kp[:, :2] = np.where((v > 0)[:, None], xy, 0.0)
        kp[:, 2] = v
        self.kps.append(kp)
        self.outside.append(np.where((present & outside)[:, None], xy, np.nan))
        self.image_id.append(image_id)
        self.track_id.append(track_id)
        self.frame.append(frame)
        self.label.append(label)


class ShapeWalk:
    """What walking one file's shapes needs: the rows so far, the element order of every
    skeleton label (or why it does not map), and the log of held-back shapes."""

    def __init__(
        self,
        *,
        k: int,
        source: str,
        annotator: str,
        orders: dict[str, dict[str, int] | str],
        category: str = "",
    ) -> None:
        self.k, self.source, self.annotator, self.orders, self.category = (
            k,
            source,
            annotator,
            orders,
            category,
        )
        self.rows = Rows(k)
        self.log = DecodeLog(source)

    def hold(
        self, check: str, message: str, image_id: int, shape: Element, *, fld: str, value: float | None = None
    ) -> None:
        self.log.hold(
            ItemProblem(
                check,
                self.source,
                message,
                field=fld,
                image_id=image_id,
                annotator=self.annotator,
                value=value,
                raw=ET.tostring(shape, encoding="unicode"),
            )
        )

    def skeleton_order(self, shape: Element, where: str, image_id: int) -> dict[str, int] | None:
        """The element order for a `<skeleton>` shape's label, or None after holding the shape back."""
        label = shape.get("label", "")
        order = self.orders.get(label, f"{self.source}: skeleton label {label!r} is not defined in <meta>")
        if isinstance(order, dict):
            return order
        self.hold("schema.unknown_category", f"{order} ({where})", image_id, shape, fld="label")
        return None

    def stray(self, label: str, where: str, image_id: int, n_points: int) -> bool:
        """Whether a free points shape (or track) of `label` is of another label than the keypoints
        read here: a file with skeleton labels keeps its keypoints in skeletons, so its free points
        (a wheel, a landmark) are reported, never read as an instance, whatever their count."""
        if not self.orders or label == self.category:
            return False
        self.log.note(
            findings_for(
                "decode.other_label",
                source=self.source,
                image_id=image_id if image_id >= 0 else None,
                n=1,
                value=float(n_points),
                annotator=self.annotator or None,
                message=f"{self.source}: {where}, <points label={label!r}>: a free points shape ({n_points} points) of a "
                "label that is not a skeleton of this schema; not read as an instance",
            )
        )
        return True

    def free_points(self, shape: Element, where: str, image_id: int):
        """A free `<points>` shape: used only when it is of a keypoint label (`stray`) and holds exactly
        K points (it has no names to map)."""
        k = self.k
        xy = xy_pairs(shape.get("points"))
        if self.stray(shape.get("label", ""), where, image_id, len(xy)):
            return None
        if len(xy) == k:
            ones = np.ones(k, bool)
            return xy, ones, np.zeros(k, bool) | flag(shape, "outside"), ones & flag(shape, "occluded")
        msg = (
            f"{self.source}: {where}, <points label={shape.get('label', '')!r}>, field 'points': "
            f"{len(xy)} points, schema has {k}; a free points shape has no names to map, held back"
        )
        self.hold("schema.keypoint_count", msg, image_id, shape, fld="points", value=float(len(xy)))
        return None


def skeleton_points(shape: Element, order: dict[str, int], k: int):
    """xy, present, outside, occluded ([K] arrays) of one `<skeleton>` shape's `<points>` children."""
    xy = np.zeros((k, 2))
    present, outside, occluded = np.zeros(k, bool), np.zeros(k, bool), np.zeros(k, bool)
    for pt in shape.findall("points"):
        i = order.get(pt.get("label", ""))
        if i is None:
            continue
        p = xy_pairs(pt.get("points"))
        if len(p):
            xy[i] = p[0]
            present[i] = True
            outside[i] = flag(pt, "outside")
            occluded[i] = flag(pt, "occluded") or flag(shape, "occluded")
    return xy, present, outside, occluded
