"""The demo batch's images: a drawn room with stick-figure people per image, saved as JPEG, and
the batch's checksums.sha256.

Every image is drawn from its own generator, `np.random.default_rng([seed, 1, row])`, so images
do not depend on each other: they can be drawn in any order and in any process, and the bytes
written are the same whatever the number of worker processes. Large batches are drawn in a
process pool, in chunks of images per task. One process draws about 140-190 images a second
(the demo's mix of sizes, on a 2-core VM; 2,000 images in docs/benchmarks.md)."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from statistics import NormalDist

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from kpdeliver.model import Dataset
from kpdeliver.schema import COCO17

NOISE_SD = 5.0
# Sensor noise by table: a random byte per pixel and band picks one of 256 equally likely
# quantiles of N(0, NOISE_SD), rounded to whole levels (|noise| <= 14), stored modulo 256 so
# that Pillow can add it to the wall with `add_modulo`. The wall is 60..229, so the sum never wraps.
_NOISE_LUT = [round(NormalDist(0.0, NOISE_SD).inv_cdf((i + 0.5) / 256)) % 256 for i in range(256)] * 3
JPEG_QUALITY = 78
PARALLEL_FROM = 2000  # batches this large are drawn in os.cpu_count() processes by default
CHUNK = 200  # images per task of the process pool


def _room(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A wall shading from one colour to another, a floor, and sensor noise."""
    top, bottom, floor = rng.integers(60, 230, (3, 3))
    t = np.linspace(0, 1, height)[:, None]
    wall = (1 - t) * top + t * bottom
    wall[int(height * rng.uniform(0.55, 0.7)) :] = floor
    column = Image.fromarray(np.round(wall).astype(np.uint8)[:, None, :])
    back = column.resize((width, height), Image.Resampling.NEAREST)
    noise = Image.frombytes("RGB", (width, height), rng.bytes(width * height * 3)).point(_NOISE_LUT)
    return ImageChops.add_modulo(back, noise)


def draw_scene(kps: np.ndarray, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A room (gradient wall, floor, a few boxes, sensor noise) with stick-figure people drawn
    along the COCO-17 skeleton; each occluded (v=1) point in the frame gets an object over it."""
    im = _room(width, height, rng)
    d = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(1, 4))):  # furniture and windows behind the people
        x0, y0 = rng.uniform(0, width * 0.8), rng.uniform(0, height * 0.6)
        d.rectangle(
            [x0, y0, x0 + rng.uniform(40, 200), y0 + rng.uniform(30, 160)],
            fill=tuple(rng.integers(40, 220, 3).tolist()),
        )
    order = np.argsort([np.max(k[k[:, 2] > 0, 1]) for k in kps])  # nearer (lower) people drawn last
    for k in kps[order]:
        lab = k[:, 2] > 0
        pts = k[lab, :2]
        size = max(np.ptp(pts[:, 1]), np.ptp(pts[:, 0]), 20.0)
        width_px = max(2, int(size * 0.045))
        cloth, skin = tuple(rng.integers(20, 235, 3).tolist()), tuple(rng.integers(150, 230, 3).tolist())
        for a, b in COCO17.skeleton:
            if lab[a] and lab[b] and a >= 5 and b >= 5:
                d.line([tuple(k[a, :2]), tuple(k[b, :2])], fill=cloth, width=width_px)
        if lab[:5].any():
            cx, cy = k[:5][lab[:5], :2].mean(axis=0)
            r = size * 0.06
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=skin)
        for x, y in k[
            (k[:, 2] == 1) & (k[:, 0] >= 0) & (k[:, 0] < width) & (k[:, 1] >= 0) & (k[:, 1] < height), :2
        ]:
            r = size * 0.05
            d.rectangle([x - r, y - r, x + r, y + r], fill=tuple(rng.integers(60, 140, 3).tolist()))
    return im


def _jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue()


# one image to draw: (row in the batch, file name, width, height, its people's [n, 17, 3] keypoints)
Item = tuple[int, str, int, int, np.ndarray]


def _draw_chunk(images_dir: Path, seed: int, items: list[Item]) -> list[str]:
    """Draw and write these images; their checksums.sha256 lines, in the same order."""
    lines = []
    for row, name, width, height, kps in items:
        data = _jpeg(draw_scene(kps, width, height, np.random.default_rng([seed, 1, row])))
        (images_dir / name).write_bytes(data)
        lines.append(f"{hashlib.sha256(data).hexdigest()}  images/{name}\n")
    return lines


def _chunks(truth: Dataset) -> Iterator[list[Item]]:
    """The batch's images in row order, CHUNK at a time, each with its people's keypoints
    (instances grouped by image once, not searched per image)."""
    images, ins = truth.images, truth.instances
    order = np.argsort(ins.image_id, kind="stable")
    ids = ins.image_id[order]
    lo, hi = np.searchsorted(ids, images.id, "left"), np.searchsorted(ids, images.id, "right")
    names, widths, heights = images.file_name.tolist(), images.width.tolist(), images.height.tolist()
    for start in range(0, len(names), CHUNK):
        yield [
            (row, names[row], int(widths[row]), int(heights[row]), ins.keypoints[order[lo[row] : hi[row]]])
            for row in range(start, min(start + CHUNK, len(names)))
        ]


def write_images(batch: Path, truth: Dataset, *, seed: int, workers: int | None = None) -> None:
    """Every image of `truth` drawn as a JPEG under batch/images, and batch/checksums.sha256 (lines
    in image order). `workers` processes draw them (default: one below PARALLEL_FROM images,
    else os.cpu_count()); the files written do not depend on it."""
    images_dir = batch / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    if workers is None:
        workers = 1 if len(truth.images) < PARALLEL_FROM else os.cpu_count() or 1
    if workers <= 1:
        parts = [_draw_chunk(images_dir, seed, items) for items in _chunks(truth)]
    else:
        # forkserver: the caller may run threads (a Prefect API client), which a fork would copy mid-lock
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("forkserver")) as pool:
            chunks = list(_chunks(truth))
            parts = list(pool.map(_draw_chunk, [images_dir] * len(chunks), [seed] * len(chunks), chunks))
    (batch / "checksums.sha256").write_text("".join(line for part in parts for line in part))
