"""Which instances the report pictures: the worst findings (each next to the gold or another
annotator's label of the same person where QA compared them) and a seeded random pick of
delivered instances."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from PIL import Image

from kpdeliver.model import Dataset
from kpdeliver.report.overlays import Crop, ImageBytes, data_uri, draw_overlay, load_image
from kpdeliver.report.titles import check_title

GOLD = "gold"  # the annotator name collected gold labels carry
# checks that compare an annotator's label with a reference: shown side by side with it
COMPARED = {
    "qa.gold_mismatch": GOLD,
    "qa.left_right_swap": None,
    "qa.low_agreement": None,
    "qa.annotator_drift": None,
}
# which findings are the most telling pictures, after severity
_PRIORITY = (
    "qa.left_right_swap",
    "qa.gold_mismatch",
    "bounds.visible_outside_image",
    "bounds.occluded_far_outside",
    "qa.low_agreement",
    "qa.temporal_jitter",
    "visibility.unlabeled_with_coords",
)
_SEVERITY = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Panel:
    label: str
    uri: str


@dataclass(frozen=True)
class Picture:
    title: str  # file name and who labeled it
    caption: str  # what the finding says, or what the picture shows
    severity: str = ""
    check: str = ""
    panels: list[Panel] = field(default_factory=list)
    image_missing: bool = False

    @property
    def check_title(self) -> str:
        return check_title(self.check) if self.check else ""


class Gallery:
    """Draws pictures of instances of `dataset` (every annotator's and gold labels), reading each
    image once."""

    def __init__(self, dataset: Dataset, image_bytes: ImageBytes | None) -> None:
        self.dataset = dataset
        self.image_bytes = image_bytes
        self.row_of = {int(i): r for r, i in enumerate(dataset.instances.id.tolist())}
        self._image_row = dataset.image_index()
        self._images: dict[int, tuple[Image.Image, bool]] = {}

    def _image(self, image_row: int) -> tuple[Image.Image, bool]:
        if image_row not in self._images:
            im = self.dataset.images
            self._images[image_row] = load_image(
                self.image_bytes, im.file_name[image_row], int(im.width[image_row]), int(im.height[image_row])
            )
        return self._images[image_row]

    def has(self, annotation_id) -> bool:
        return (
            annotation_id is not None
            and annotation_id in self.row_of
            and self._image_row[self.row_of[annotation_id]] >= 0
        )

    def reference_of(self, row: int, reference: str | None) -> int | None:
        """The label of the same person by `reference` (gold), or by any other annotator when
        None: the instance on the same image whose labeled points lie closest."""
        ins = self.dataset.instances
        same = np.flatnonzero((ins.image_id == ins.image_id[row]) & (ins.annotator != ins.annotator[row]))
        if reference is not None:
            same = same[ins.annotator[same] == reference]
        else:
            gold = same[ins.annotator[same] == GOLD]
            same = gold if len(gold) else same
        if not len(same):
            return None
        centre = _centre(ins.keypoints[row])
        return int(
            same[np.argmin([np.linalg.norm(_centre(ins.keypoints[j]) - centre) for j in same.tolist()])]
        )

    def picture(
        self,
        row: int,
        *,
        caption: str,
        reference: int | None = None,
        marked: int | None = None,
        severity: str = "",
        check: str = "",
    ) -> Picture:
        ins, im = self.dataset.instances, self.dataset.images
        r_img = int(self._image_row[row])
        image, found = self._image(r_img)
        rows = [row] + ([reference] if reference is not None else [])
        crop = Crop.around(
            [ins.keypoints[r] for r in rows],
            [ins.bbox[r] for r in rows],
            int(im.width[r_img]),
            int(im.height[r_img]),
        )
        panels = [
            Panel(
                _who(ins.annotator[r]),
                data_uri(
                    draw_overlay(
                        image,
                        ins.keypoints[r],
                        self.dataset.schema,
                        crop,
                        marked=marked if r == row else None,
                    )
                ),
            )
            for r in rows
        ]
        title = f"{im.file_name[r_img]} · annotation {int(ins.id[row])}"
        return Picture(title, caption, severity, check, panels, image_missing=not found)


def _who(annotator: str) -> str:
    return "gold (reference)" if annotator == GOLD else (annotator or "label")


def _centre(k: np.ndarray) -> np.ndarray:
    lab = k[:, 2] > 0
    return k[lab, :2].mean(axis=0) if lab.any() else np.zeros(2)


def worst_findings(gallery: Gallery, findings: pa.Table, n: int) -> list[Picture]:
    """Pictures of the `n` most serious findings that point at a labeled instance, one per instance."""
    if n <= 0 or findings.num_rows == 0:
        return []
    rows = findings.select(["check", "severity", "annotation_id", "keypoint", "message"]).to_pylist()
    rank = {c: i for i, c in enumerate(_PRIORITY)}
    rows.sort(key=lambda f: (_SEVERITY.get(f["severity"], 3), rank.get(f["check"], len(rank))))
    out, seen = [], set()
    schema = gallery.dataset.schema
    for f in rows:
        ann = f["annotation_id"]
        if ann in seen or not gallery.has(ann):
            continue
        seen.add(ann)
        row = gallery.row_of[ann]
        reference = gallery.reference_of(row, COMPARED[f["check"]]) if f["check"] in COMPARED else None
        marked = schema.keypoints.index(f["keypoint"]) if f["keypoint"] in schema.keypoints else None
        out.append(
            gallery.picture(
                row,
                caption=f["message"],
                reference=reference,
                marked=marked,
                severity=f["severity"],
                check=f["check"],
            )
        )
        if len(out) == n:
            break
    return out


def random_delivered(gallery: Gallery, delivered: Dataset, n: int, *, seed: int) -> list[Picture]:
    """Pictures of `n` delivered instances chosen at random (seeded: the same release, the same pick)."""
    ids = [i for i in delivered.instances.id.tolist() if gallery.has(i)]
    if n <= 0 or not ids:
        return []
    pick = np.random.default_rng(seed).choice(np.asarray(sorted(ids)), min(n, len(ids)), replace=False)
    out = []
    for ann in sorted(pick.tolist()):
        row = gallery.row_of[ann]
        k = gallery.dataset.instances.keypoints[row]
        caption = (
            f"{int((k[:, 2] == 2).sum())} visible, {int((k[:, 2] == 1).sum())} occluded, "
            f"{int((k[:, 2] == 0).sum())} unlabeled points · labeled by {_who(gallery.dataset.instances.annotator[row])}"
        )
        out.append(gallery.picture(row, caption=caption))
    return out
