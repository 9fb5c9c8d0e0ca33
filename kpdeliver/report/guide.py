"""The labeling guide: one self-contained HTML page (inline CSS, pictures as data URIs, no script)
generated from the keypoint schema, and its PDF printed by headless chromium.

It says what every keypoint is (the schema's `definitions`), which side is left, what the three
visibility flags mean and when to use each, and shows reference pictures (gold labels, or the first
delivered release) with the skeleton drawn and every keypoint numbered. It carries the schema's
version (`schema.schema_version`), in the page and in its file name, so a guide is known to match
the schema the labels are checked against.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ImageDraw, ImageFont

from kpdeliver.model import Dataset
from kpdeliver.report.overlays import THUMB_SIDE, Crop, ImageBytes, data_uri, draw_overlay, load_image
from kpdeliver.report.templating import environment
from kpdeliver.schema import KeypointSchema, schema_version, sigmas_origin

REFERENCE_SIDE = 560  # pixels of a reference picture's longer side
MAX_REFERENCES = 4
# the browser flags of a print cut off from the network (the page needs nothing from it)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
    "--no-pdf-header-footer",
)


class GuideError(RuntimeError):
    """The guide could not be printed (no browser, or the browser failed)."""


@dataclass(frozen=True)
class Reference:
    title: str
    uri: str


class _GuideCrop(Crop):
    """A crop drawn at REFERENCE_SIDE instead of the report's thumbnail side."""

    @property
    def scale(self) -> float:
        return REFERENCE_SIDE / max(self.x1 - self.x0, self.y1 - self.y0, 1.0)


def guide_file_name(schema: KeypointSchema, client: str, dataset: str) -> str:
    """`labeling-guide-<client>-<dataset>-<schema>-<version>` (add .html or .pdf)."""
    return f"labeling-guide-{client}-{dataset}-{schema.name}-{schema_version(schema)}"


def pick_references(dataset: Dataset, limit: int = MAX_REFERENCES) -> np.ndarray:
    """Instance rows to show: the most labeled points first, then those with occluded points (so
    both flags are pictured), then the larger; one per image; ties by id (deterministic)."""
    ins = dataset.instances
    if not len(ins):
        return np.zeros(0, np.int64)
    v = ins.keypoints[..., 2]
    size = np.nan_to_num(ins.bbox[:, 2] * ins.bbox[:, 3], nan=0.0)
    order = np.lexsort((ins.id, -size, -(v == 1).any(axis=1).astype(np.int64), -(v > 0).sum(axis=1)))
    _, first = np.unique(ins.image_id[order], return_index=True)
    return order[np.sort(first)][:limit]


def draw_reference(dataset: Dataset, row: int, image_bytes: ImageBytes | None) -> Reference:
    """One instance drawn with the report's overlay (filled: visible, hollow: occluded) at guide size,
    every labeled keypoint numbered 1..K in schema order."""
    ins, images = dataset.instances, dataset.images
    irow = int(dataset.image_index()[row])
    w, h = int(images.width[irow]), int(images.height[irow])
    name = str(images.file_name[irow])
    image, _ = load_image(image_bytes, name, w, h)
    kps = ins.keypoints[row]
    base = Crop.around([kps], [ins.bbox[row]], w, h)
    crop = _GuideCrop(base.x0, base.y0, base.x1, base.y1)
    pic = draw_overlay(image, kps, dataset.schema, crop)
    d = ImageDraw.Draw(pic)
    font = ImageFont.load_default(size=max(14, REFERENCE_SIDE // 32))
    xy = (kps[:, :2] - [crop.x0, crop.y0]) * crop.scale
    off = max(3, THUMB_SIDE // 70) + 2
    for i in np.flatnonzero((kps[:, 2] > 0) & np.isfinite(kps).all(axis=1)).tolist():
        d.text(
            (xy[i, 0] + off, xy[i, 1] - off),
            str(i + 1),
            font=font,
            fill=(255, 255, 0),
            anchor="lb",
            stroke_width=2,
            stroke_fill=(0, 0, 0),
        )
    return Reference(name, data_uri(pic, quality=85))


def keypoint_rows(schema: KeypointSchema) -> list[dict]:
    """One row per keypoint: number, name, side, mirror partner, definition, OKS sigma."""
    partner, side = {}, {}
    for left, right in schema.flip_pairs:
        partner[left], partner[right] = schema.keypoints[right], schema.keypoints[left]
        side[left], side[right] = "left", "right"
    return [
        {
            "number": i + 1,
            "name": n,
            "side": side.get(i, ""),
            "mirror": partner.get(i, ""),
            "definition": schema.definitions.get(n, ""),
            "sigma": schema.sigmas[i],
        }
        for i, n in enumerate(schema.keypoints)
    ]


def render_guide(
    schema: KeypointSchema,
    *,
    client: str,
    dataset: str,
    references: list[Reference],
    references_from: str,
    embedded: bool = False,
) -> str:
    """The guide page. `references_from` says where the pictures come from (gold labels, release v0001).
    `embedded`: the page's content only, for an annotation tool's instructions (a fragment whose CSS
    applies only inside it; pictures are named, not embedded: the tool strips data URIs)."""
    edges = [(schema.keypoints[a], schema.keypoints[b]) for a, b in schema.skeleton]
    return (
        environment()
        .get_template("guide.html.j2")
        .render(
            schema=schema,
            client=client,
            dataset=dataset,
            version=schema_version(schema),
            rows=keypoint_rows(schema),
            edges=edges,
            references=references,
            references_from=references_from,
            sigmas_from=sigmas_origin(schema),
            missing=[n for n in schema.keypoints if not schema.definitions.get(n)],
            embedded=embedded,
            file_name=guide_file_name(schema, client, dataset),
        )
    )


def tool_instructions(schema: KeypointSchema, *, client: str, dataset: str) -> str:
    """The guide as an annotation tool's project instructions (Label Studio `expert_instruction`)."""
    return render_guide(
        schema, client=client, dataset=dataset, references=[], references_from="", embedded=True
    )


def print_pdf(html: Path, pdf: Path, *, chromium: Path, timeout: float = 120) -> None:
    """Print the page to PDF with headless chromium, offline (the page needs nothing from the network)."""
    profile = pdf.parent / f".{pdf.stem}-chromium-profile"
    try:
        run = subprocess.run(
            [
                str(chromium),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--print-to-pdf={pdf}",
                html.resolve().as_uri(),
            ],
            capture_output=True,
            timeout=timeout,
            cwd=pdf.parent,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GuideError(f"chromium ({chromium}) could not print the guide: {e}") from None
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if run.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        raise GuideError(f"chromium ({chromium}) did not print {pdf} (exit {run.returncode})")
