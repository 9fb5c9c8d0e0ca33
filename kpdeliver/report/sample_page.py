"""The free sample's page, what a prospect reads: one self-contained HTML page (inline CSS and SVG,
pictures as data URIs, no script), separate from the vendor's QA report.

It says that it is a sample of N images from the prospect's batch of M and how they were chosen
(pose clusters, occlusion, crowd and size coverage, in words and a chart against what a random
pick would hold); shows every sample image with all its people's skeletons (click to enlarge, CSS
only); the schema (keypoint names, the skeleton drawn, the visibility rules) and the visibility
flags counted; what a full delivery holds; and the labels held back on the sample's images,
counted by reason. It never names an annotator, shows a sign-off verdict or an internal path:
its inputs carry none (`SampleInputs`), and the page is rendered from the template
`templates/sample.html.j2`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from html import escape

import numpy as np
import pyarrow as pa
from markupsafe import Markup

from kpdeliver.assign.sample import SampleChoice
from kpdeliver.model import Dataset
from kpdeliver.report import plots
from kpdeliver.report.overlays import ImageBytes, data_uri, draw_people, edge_colours, load_image
from kpdeliver.report.titles import check_title
from kpdeliver.schema import KeypointSchema

HELD_WITH_IMAGE = "image"  # qa/quarantine.parquet's `checks` of a label held back only because its image is
TAG_WORDS = {
    "occluded": "occluded points (hidden, position estimated)",
    "out_of_frame": "points outside the frame",
    "small_person": "small people (under a tenth of the image side)",
}


@dataclass(frozen=True)
class SampleInputs:
    """What the sample page shows. `images`: the sample release's index/images.parquet (file_name,
    width, height, status, n_instances); `held_back`: its qa/quarantine.parquet (only `file_name`
    and `checks` are read); `delivered`: the sample's delivered labels; `files`: the package's files."""

    client: str
    dataset: str
    schema: KeypointSchema
    n_batch: int
    choice: SampleChoice
    delivered: Dataset
    images: pa.Table
    held_back: pa.Table
    image_bytes: ImageBytes | None = None
    files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SamplePicture:
    file_name: str
    status: str  # delivered | background | held back
    uri: str
    caption: str


def _tag_words(tag: str) -> str:
    return TAG_WORDS.get(tag, tag.replace("crowd: ", "crowd ").replace("size: ", "image size "))


def coverage_chart(choice: SampleChoice, n_batch: int) -> Markup:
    """Per tag: images of the sample carrying it, with a tick at what a random pick of as many
    images would hold on average (the batch's share of the tag)."""
    n = len(choice.file_names)
    tags = [t for t, m in choice.batch_tags.items() if m]
    bars = [
        plots.Bar(
            _tag_words(t),
            choice.tags[t],
            f"{choice.tags[t]} of {n} (batch {choice.batch_tags[t]} of {n_batch})",
            target=n * choice.batch_tags[t] / max(n_batch, 1),
        )
        for t in tags
    ]
    vmax = max([b.value or 0 for b in bars] + [b.target or 0 for b in bars] + [1])
    return plots.bar_chart(bars, vmax=vmax * 1.05, label_width=300, width=680, text_width=170)


def skeleton_svg(schema: KeypointSchema, delivered: Dataset, size: int = 320) -> Markup:
    """The schema's skeleton, numbered, drawn on the delivered person with the most labeled points
    (or on a circle when the sample has none), left side orange, right blue."""
    k = schema.num_keypoints
    kps = delivered.instances.keypoints
    if len(kps):  # the most complete person, the most upright of those (taller than wide)
        on = kps[..., 2] > 0

        def extent(c: int) -> np.ndarray:
            return np.where(on, kps[..., c], -np.inf).max(axis=1) - np.where(on, kps[..., c], np.inf).min(
                axis=1
            )

        with np.errstate(all="ignore"):
            tall = np.nan_to_num(extent(1) / np.maximum(extent(0), 1.0), nan=0.0, posinf=0.0, neginf=0.0)
        best = kps[int(np.lexsort((-tall, -on.sum(axis=1)))[0])]
        lab = best[:, 2] > 0
    if not len(kps) or lab.sum() < 2:
        angle = np.linspace(0, 2 * np.pi, k, endpoint=False)
        best, lab = np.stack([np.cos(angle), np.sin(angle), np.full(k, 2.0)], axis=1), np.ones(k, bool)
    xy = best[:, :2] - best[lab, :2].min(axis=0)
    xy = 20 + xy * (size - 40) / max(float(xy[lab].max()), 1e-9)
    parts = [
        f'<svg class="skeleton" width="{size}" height="{size}" viewBox="0 0 {size} {size}" role="img">',
        f'<rect width="{size}" height="{size}" fill="#f4f6fa"/>',
    ]
    for (a, b), colour in zip(schema.skeleton, edge_colours(schema), strict=True):
        if lab[a] and lab[b]:
            parts.append(
                f'<line x1="{xy[a, 0]:.1f}" y1="{xy[a, 1]:.1f}" x2="{xy[b, 0]:.1f}" y2="{xy[b, 1]:.1f}" '
                f'stroke="rgb{colour}" stroke-width="4"/>'
            )
    for i in np.flatnonzero(lab).tolist():
        parts.append(
            f'<circle cx="{xy[i, 0]:.1f}" cy="{xy[i, 1]:.1f}" r="5" fill="#fff" stroke="#1d2330"/>'
            f'<text x="{xy[i, 0] + 7:.1f}" y="{xy[i, 1] - 5:.1f}">{i + 1}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def keypoint_rows(schema: KeypointSchema, delivered: Dataset) -> list[dict]:
    """Per keypoint: number, name, its mirror, and how often the sample labels it visible, occluded, not at all."""
    mirror = dict(schema.flip_pairs) | {b: a for a, b in schema.flip_pairs}
    v = (
        delivered.instances.keypoints[..., 2]
        if len(delivered.instances)
        else np.zeros((0, schema.num_keypoints))
    )
    return [
        {
            "n": i + 1,
            "name": name,
            "mirror": schema.keypoints[mirror[i]] if i in mirror else "",
            "visible": int((v[:, i] == 2).sum()),
            "occluded": int((v[:, i] == 1).sum()),
            "unlabeled": int((v[:, i] == 0).sum()),
        }
        for i, name in enumerate(schema.keypoints)
    ]


def _held_reasons(held_back: pa.Table) -> tuple[Counter, dict[str, list[str]]]:
    """(labels held back per plain reason, file name -> reasons of the labels held back on it)."""
    reasons: Counter = Counter()
    per_image: dict[str, list[str]] = {}
    for name, checks in zip(held_back["file_name"].to_pylist(), held_back["checks"].to_pylist(), strict=True):
        words = (
            "held back with its image (another label on it was held back)"
            if checks == HELD_WITH_IMAGE
            else "; ".join(check_title(c.strip()) for c in str(checks).split(","))
        )
        reasons[words] += 1
        per_image.setdefault(name or "", []).append(words)
    return reasons, per_image


def sample_pictures(inputs: SampleInputs, per_image: dict[str, list[str]]) -> list[SamplePicture]:
    """Every sample image, in the order chosen: its people drawn, or why it is held back."""
    status = dict(
        zip(inputs.images["file_name"].to_pylist(), inputs.images["status"].to_pylist(), strict=True)
    )
    sizes = {
        r["file_name"]: (r["width"] or 0, r["height"] or 0)
        for r in inputs.images.select(["file_name", "width", "height"]).to_pylist()
    }
    ds = inputs.delivered
    row = ds.image_index()
    out = []
    for name in inputs.choice.file_names:
        w, h = sizes.get(name, (0, 0))
        image, _ = load_image(inputs.image_bytes, name, int(w), int(h))
        rows = (
            np.flatnonzero((row >= 0) & (ds.images.file_name[row] == name))
            if len(row)
            else np.zeros(0, np.int64)
        )
        kps = ds.instances.keypoints[rows]
        state = status.get(name, "")
        if state in ("delivered", "unlabeled"):
            v = kps[..., 2]
            caption = (
                (
                    f"{len(kps)} {'person' if len(kps) == 1 else 'people'}: {int((v == 2).sum())} visible, "
                    f"{int((v == 1).sum())} occluded, {int((v == 0).sum())} not labeled points"
                )
                if len(kps)
                else "no person: delivered as a background image"
            )
            out.append(
                SamplePicture(
                    name,
                    "delivered" if len(kps) else "background",
                    data_uri(draw_people(image, kps, inputs.schema)),
                    caption,
                )
            )
        else:
            why = Counter(per_image.get(name, []))
            caption = (
                "held back, with every label on it: " + "; ".join(f"{n} × {r}" for r, n in why.items())
                if why
                else "held back: the image could not be used"
            )
            out.append(
                SamplePicture(
                    name, "held back", data_uri(draw_people(image, kps[:0], inputs.schema)), caption
                )
            )
    return out


def sample_context(inputs: SampleInputs) -> dict:
    """Everything the sample template shows."""
    reasons, per_image = _held_reasons(inputs.held_back)
    pictures = sample_pictures(inputs, per_image)
    v = inputs.delivered.instances.keypoints[..., 2]
    states = Counter(p.status for p in pictures)
    return {
        "client": inputs.client,
        "dataset": inputs.dataset,
        "n": len(inputs.choice.file_names),
        "m": inputs.n_batch,
        "clusters": inputs.choice.n_clusters,
        "chart": coverage_chart(inputs.choice, inputs.n_batch),
        "covered": {
            _tag_words(t): (c, inputs.choice.batch_tags[t])
            for t, c in inputs.choice.tags.items()
            if not t.startswith("pose") and inputs.choice.batch_tags[t]
        },
        "schema": inputs.schema,
        "skeleton": skeleton_svg(inputs.schema, inputs.delivered),
        "keypoints": keypoint_rows(inputs.schema, inputs.delivered),
        "flags": {
            "visible": int((v == 2).sum()),
            "occluded": int((v == 1).sum()),
            "unlabeled": int((v == 0).sum()),
        },
        "people": len(inputs.delivered.instances),
        "pictures": pictures,
        "states": states,
        "held": sorted(reasons.items(), key=lambda kv: -kv[1]),
        "n_held": sum(reasons.values()),
        "files": inputs.files,
        "flip_idx": [] if inputs.schema.flip_idx is None else [int(i) for i in inputs.schema.flip_idx],
    }


def render_sample_page(inputs: SampleInputs) -> str:
    from kpdeliver.report.templating import environment

    return environment().get_template("sample.html.j2").render(s=sample_context(inputs), esc=escape)
