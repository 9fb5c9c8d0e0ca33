"""Skeleton overlays: an instance's keypoints and the schema's edges drawn on its image, cropped to
the person and scaled to a thumbnail, returned as a JPEG data URI the report embeds.

Visible points (v=2) are filled white dots, occluded ones (v=1) hollow white rings with a dark
edge on both sides (the picture shows through, so the two differ at any size), unlabeled ones (v=0)
are not drawn; the point a finding names gets a red ring. Left limbs are orange, right limbs blue, the
rest green, so a left/right swap shows as crossed colours. The crop may reach past the image
border (filled grey) so that occluded points estimated outside the frame stay in the picture.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from kpdeliver.schema import KeypointSchema

ImageBytes = Callable[[str], bytes]

THUMB_SIDE = 520  # the long side of an overlay, in pixels (the page shows it as is; a click enlarges it)
_LEFT, _RIGHT, _MIDDLE = (255, 140, 0), (30, 120, 255), (40, 200, 90)
_ERROR = (230, 20, 20)
_OUTSIDE = (90, 90, 96)


@dataclass(frozen=True)
class Crop:
    """The image region a thumbnail shows (pixels, may reach past the image) and its scale."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def scale(self) -> float:
        return THUMB_SIDE / max(self.x1 - self.x0, self.y1 - self.y0, 1.0)

    @classmethod
    def around(cls, keypoints: list[np.ndarray], bboxes: list[np.ndarray], width: int, height: int) -> Crop:
        """The box around every labeled point and finite bbox given, with a margin; never much
        larger than the image itself plus a quarter on each side."""
        xs, ys = [], []
        for k in keypoints:
            lab = (k[:, 2] > 0) & np.isfinite(k).all(axis=1)  # a held-back non-finite point is not drawn
            xs += k[lab, 0].tolist()
            ys += k[lab, 1].tolist()
        for b in bboxes:
            if np.isfinite(b).all() and b[2] > 0 and b[3] > 0:
                xs += [b[0], b[0] + b[2]]
                ys += [b[1], b[1] + b[3]]
        if not xs:
            return cls(0, 0, float(width), float(height))
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        pad = 0.12 * max(x1 - x0, y1 - y0, 20.0)
        x0, x1 = max(x0 - pad, -0.25 * width), min(x1 + pad, 1.25 * width)
        y0, y1 = max(y0 - pad, -0.25 * height), min(y1 + pad, 1.25 * height)
        if x1 <= x0 or y1 <= y0:  # every point far past the image (or its size unknown): show the image
            return cls(0, 0, float(width), float(height))
        return cls(x0, y0, x1, y1)


def edge_colours(schema: KeypointSchema) -> list[tuple[int, int, int]]:
    """One colour per skeleton edge: left side, right side, or the middle, by the schema's own
    left/right pairs (`flip_pairs` are (left, right)), so every naming style colours alike."""
    side = {}
    for left, right in schema.flip_pairs:
        side[left], side[right] = 1, 2
    out = []
    for a, b in schema.skeleton:
        s = {side.get(a, 0), side.get(b, 0)} - {0}
        out.append(_LEFT if s == {1} else _RIGHT if s == {2} else _MIDDLE)
    return out


def load_image(
    image_bytes: ImageBytes | None, file_name: str | None, width: int, height: int
) -> tuple[Image.Image, bool]:
    """The image as RGB, or a plain grey canvas of its size when it cannot be read (second value
    False), so the labels are still drawn."""
    if image_bytes is not None and file_name:
        try:
            im = Image.open(io.BytesIO(image_bytes(file_name))).convert("RGB")
            if width > 0 and height > 0 and im.size != (width, height):  # labels are in the indexed size
                im = im.resize((width, height))
            return im, True
        except (OSError, KeyError, UnidentifiedImageError, ValueError):
            pass
    return Image.new("RGB", (max(width, 1), max(height, 1)), (200, 200, 205)), False


def draw_overlay(
    image: Image.Image,
    keypoints: np.ndarray,
    schema: KeypointSchema,
    crop: Crop,
    *,
    marked: int | None = None,
) -> Image.Image:
    """A THUMB_SIDE thumbnail of `crop` with one instance's skeleton drawn on it."""
    s = crop.scale
    size = (max(int(round((crop.x1 - crop.x0) * s)), 1), max(int(round((crop.y1 - crop.y0) * s)), 1))  # noqa: RUF046 (numpy floats)
    region = image.crop(
        (int(np.floor(crop.x0)), int(np.floor(crop.y0)), int(np.ceil(crop.x1)), int(np.ceil(crop.y1)))
    )
    thumb = Image.new("RGB", size, _OUTSIDE)
    thumb.paste(region.resize(size, Image.Resampling.BILINEAR))
    # the part of the crop outside the image stays visibly different (the paste filled it black)
    d = ImageDraw.Draw(thumb)
    w, h = image.size
    for box in (
        (crop.x0, crop.y0, 0, crop.y1),
        (w, crop.y0, crop.x1, crop.y1),
        (crop.x0, crop.y0, crop.x1, 0),
        (crop.x0, h, crop.x1, crop.y1),
    ):
        x0, y0, x1, y1 = (
            (box[0] - crop.x0) * s,
            (box[1] - crop.y0) * s,
            (box[2] - crop.x0) * s,
            (box[3] - crop.y0) * s,
        )
        if x1 > x0 and y1 > y0:
            d.rectangle([x0, y0, x1, y1], fill=_OUTSIDE)
    _draw_skeleton(d, (keypoints[:, :2] - [crop.x0, crop.y0]) * s, keypoints, schema, marked=marked)
    return thumb


def draw_people(image: Image.Image, keypoints: np.ndarray, schema: KeypointSchema) -> Image.Image:
    """The whole image scaled to a THUMB_SIDE thumbnail with every person's skeleton drawn on it
    (`keypoints`: [n, K, 3])."""
    w, h = image.size
    crop = Crop(0.0, 0.0, float(w), float(h))
    thumb = image.resize(
        (max(round(w * crop.scale), 1), max(round(h * crop.scale), 1)), Image.Resampling.BILINEAR
    )
    d = ImageDraw.Draw(thumb)
    for k in keypoints:
        _draw_skeleton(d, k[:, :2] * crop.scale, k, schema)
    return thumb


def _draw_skeleton(
    d: ImageDraw.ImageDraw,
    xy: np.ndarray,
    keypoints: np.ndarray,
    schema: KeypointSchema,
    *,
    marked: int | None = None,
) -> None:
    """One instance's edges and points at thumbnail coordinates `xy`."""
    v = np.where(np.isfinite(keypoints).all(axis=1), keypoints[:, 2], 0)  # non-finite points: not drawn
    line = max(2, THUMB_SIDE // 110)
    for (a, b), colour in zip(schema.skeleton, edge_colours(schema), strict=True):
        if v[a] > 0 and v[b] > 0:
            d.line([tuple(xy[a]), tuple(xy[b])], fill=colour, width=line)
    r = max(4, THUMB_SIDE // 75)
    ring = max(2, r // 3)
    for i in np.flatnonzero(v > 0).tolist():
        x, y = xy[i]
        box = (x - r, y - r, x + r, y + r)
        if v[i] >= 2:
            d.ellipse(box, fill=(255, 255, 255), outline=(0, 0, 0), width=2)
        else:  # a white ring between two dark ones, hollow: the picture shows in its middle
            d.ellipse([x - r - 1, y - r - 1, x + r + 1, y + r + 1], outline=(0, 0, 0), width=ring + 2)
            d.ellipse(box, outline=(255, 255, 255), width=ring)
    if marked is not None and 0 <= marked < len(v):
        x, y = xy[marked]
        R = r * 3
        d.ellipse([x - R, y - R, x + R, y + R], outline=_ERROR, width=3)


def data_uri(image: Image.Image, *, quality: int = 80) -> str:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
