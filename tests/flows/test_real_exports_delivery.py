"""Every real export (tests/fixtures/real and ../shared/fixtures/external) that `convert` decodes is
delivered through the delivery flow itself (Prefect, local store), as a batch of placeholder images
at the export's stated sizes: once by one annotator, once with the same export under a second
annotator (every image given to both). After each delivery the release keeps the delivery invariant:

- every instance of the export reaches the delivery, and is delivered, quarantined or review-only;
- every delivered image has exactly one YOLO image (byte-equal to the batch's) and one label file
  with as many lines as its delivered instances, and nothing else is in the YOLO tree;
- COCO, YOLO and index/annotations.parquet hold the same instances (points and flags);
- no error finding the export does not deserve: its instances are of its own declared category,
  it is a keypoint export, its images are in the batch; two identical annotators agree.

Exports are found as `convert` finds them (annotation files, YOLO and Supervisely folders, project
tars, decoded by the codec registry); a file of several keypoint categories is delivered once per
category. A failure names the export and lists every broken rule.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image, PngImagePlugin

from kpdeliver.codecs import CodecError, Decoded
from kpdeliver.codecs.coco.categories import SeveralCategories
from kpdeliver.codecs.label_studio.paths import image_path
from kpdeliver.codecs.registry import folder_codec
from kpdeliver.collect.files import annotation_files, read_annotations
from kpdeliver.config import load_config
from kpdeliver.model import Dataset

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BASES = {
    "real": ROOT / "tests" / "fixtures" / "real",
    "external": ROOT.parent / "shared" / "fixtures" / "external",
}
# Error findings no real export deserves, by check or by words of the message.
UNDESERVED_CHECKS = {"schema.unknown_category", "collect.unreadable_file"}
UNDESERVED_WORDS = ("not a keypoint export", "image size unknown")
TWO = ("ann_a", "ann_b")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".JPG", ".PNG")  # a YOLO tree's own images stay out


def export_targets() -> dict[str, Path]:
    """`<base>/<relative path>` -> the annotation file or YOLO folder, as `convert` would take them."""
    out = {}
    for label, base in BASES.items():
        if not base.is_dir():
            continue
        folders = [
            d
            for d in sorted(base.rglob("*"))
            if d.is_dir() and folder_codec(lambda n, d=d: (d / n).is_file())
        ]
        files = [f for f in annotation_files(base) if not any(f.is_relative_to(d) for d in folders)]
        files += sorted(base.rglob("*.tar"))  # a Supervisely project as its download
        for t in folders + files:
            out[f"{label}/{t.relative_to(base).as_posix()}"] = t
    return out


def decoded_parts(target: Path) -> list[tuple[str | None, Decoded]]:
    """(category, decoded) per keypoint category the export holds; [] when it is no export we read."""
    try:
        try:
            return [(None, read_annotations(target))]
        except SeveralCategories as several:
            return [(c, read_annotations(target, category=c)) for c in several.categories]
    except CodecError:
        return []


def batch_name(ref: str) -> str:
    """Where the batch keeps the image an export reference denotes (relative to images/)."""
    path = PurePosixPath(image_path(ref).replace("\\", "/").lstrip("/"))
    name = path.name if ".." in path.parts else path.as_posix()
    if not name or name == ".":
        return ""
    return name if PurePosixPath(name).suffix else name + ".jpg"  # CVAT video frames: frame_000010


def placeholder(path: Path, w: int, h: int, tag: str) -> None:
    """A flat image of the stated size, its own name written into it (no two share their bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = tuple(hashlib.sha256(tag.encode()).digest()[:3])
    im = Image.new("RGB", (w, h), colour)
    if path.suffix.lower() == ".png":
        info = PngImagePlugin.PngInfo()
        info.add_text("name", tag)
        im.save(path, pnginfo=info)
    else:
        im.save(path, "JPEG", quality=50, comment=tag.encode())


def image_sizes(ds: Dataset) -> list[tuple[str, int, int]]:
    """(batch name, width, height) per image; a size the export does not state covers its points."""
    out = []
    row = ds.image_index()
    for i, (ref, w, h) in enumerate(
        zip(ds.images.file_name.tolist(), ds.images.width.tolist(), ds.images.height.tolist())
    ):
        if w <= 0 or h <= 0:
            xy = ds.instances.keypoints[row == i][..., :2].reshape(-1, 2)
            w, h = (np.ceil(xy.max(axis=0)).astype(int) + 1).tolist() if len(xy) else (640, 480)
            w, h = max(w, 64), max(h, 64)
        out.append((batch_name(str(ref)), int(w), int(h)))
    return out


def write_batch(
    root: Path, target: Path, ds: Dataset, category: str | None, annotators: tuple[str, ...]
) -> Path:
    """A client batch: placeholder images, the export under each annotator, a schema file, client.yaml."""
    batch = root / "batch"
    sizes = [(n, w, h) for n, w, h in dict.fromkeys(image_sizes(ds)) if n]
    for name, w, h in sizes or [("unnamed.jpg", 640, 480)]:  # an export naming no image: the batch has one
        if not (batch / "images" / name).exists():
            placeholder(batch / "images" / name, w, h, name)
    for a in annotators:
        dest = batch / "annotations" / a / target.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            shutil.copytree(target, dest, ignore=shutil.ignore_patterns(*("*" + e for e in IMAGE_SUFFIXES)))
        else:
            shutil.copyfile(target, dest)
    (root / "schema.yaml").write_text(yaml.safe_dump(ds.schema.to_dict(), sort_keys=False))
    config = {
        "client": "real",
        "dataset": "exports",
        "schema": str(root / "schema.yaml"),
        "source": str(batch),
        "releases": str(root / "releases"),
        "annotators": list(annotators),
        "assignment": {"seed": 0, "overlap": 1.0 if len(annotators) > 1 else 0.0},
    }
    if category:
        config["category"] = category
    (root / "client.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root / "client.yaml"


def exports() -> list:
    """One parameter per decodable export and keypoint category, named `<base>/<path>[#category]`."""
    out = []
    for key, target in export_targets().items():
        for category, decoded in decoded_parts(target):
            out.append(pytest.param(target, category, decoded, id=key + (f"#{category}" if category else "")))
    return out


EXPORTS = exports()


def read_release(release: Path) -> dict:
    return {
        "images": pq.read_table(release / "index/images.parquet").to_pylist(),
        "annotations": pq.read_table(release / "index/annotations.parquet").to_pylist(),
        "findings": pq.read_table(release / "qa/findings.parquet").to_pylist(),
        "coco": {p.stem: json.loads(p.read_bytes()) for p in sorted((release / "coco").glob("*.json"))},
    }


def count_problems(counts: dict, expected_in: int) -> list[str]:
    c = counts
    out = []
    if c["instances_in"] != expected_in:
        out.append(f"instances_in {c['instances_in']}, but the exports hold {expected_in}")
    if (
        c["instances_delivered"] + c["instances_quarantined"] + c["instances_review_only"]
        != c["instances_in"]
    ):
        out.append(
            f"instances in {c['instances_in']} != delivered {c['instances_delivered']} + quarantined "
            f"{c['instances_quarantined']} + review-only {c['instances_review_only']}"
        )
    return out


def yolo_problems(release: Path, delivered: list[dict], per_image: dict[int, np.ndarray]) -> list[str]:
    """One YOLO image (by its bytes) and one label file per delivered image, label lines = its instances,
    the points those of the index; nothing else in the tree."""
    out = []
    yolo = release / "yolo"
    by_sha: dict[str, list[Path]] = {}
    for p in sorted((yolo / "images").rglob("*")):
        if p.is_file():
            by_sha.setdefault(hashlib.sha256(p.read_bytes()).hexdigest(), []).append(p)
    k, dims = yaml.safe_load((yolo / "data.yaml").read_text())["kpt_shape"]
    used = set()
    for im in delivered:
        copies = by_sha.get(im["sha256"], [])
        if len(copies) != 1:
            out.append(f"{im['file_name']}: {len(copies)} YOLO images with its bytes")
            continue
        rel = copies[0].relative_to(yolo / "images")
        label = (yolo / "labels" / rel).with_suffix(".txt")
        used |= {copies[0], label}
        if not label.is_file():
            out.append(f"{im['file_name']}: no label file {label.relative_to(release)}")
            continue
        lines = [ln.split() for ln in label.read_text().splitlines() if ln.strip()]
        want = per_image.get(im["image_id"], np.zeros((0, k, 3)))
        if len(lines) != im["n_instances"] or len(lines) != len(want):
            out.append(
                f"{im['file_name']}: {len(lines)} label lines, {im['n_instances']} instances in the index "
                f"images, {len(want)} in index/annotations.parquet"
            )
            continue
        got = np.asarray([[float(x) for x in ln[5:]] for ln in lines]).reshape(len(lines), k, dims)
        norm = want.copy()
        norm[..., 0] = np.clip(norm[..., 0] / im["width"], 0, 1)
        norm[..., 1] = np.clip(norm[..., 1] / im["height"], 0, 1)
        norm[norm[..., 2] == 0] = 0
        if not same_points(got, norm[..., :dims], atol=1e-5):
            out.append(f"{im['file_name']}: YOLO points differ from index/annotations.parquet")
    extra = [p for p in yolo.rglob("*") if p.is_file() and p.parent != yolo and p not in used]
    out += [f"{p.relative_to(release)} belongs to no delivered image" for p in sorted(extra)[:10]]
    return out


def same_points(a: np.ndarray, b: np.ndarray, *, atol: float) -> bool:
    """The same instances in any order."""
    if a.shape != b.shape or not len(a):
        return a.shape == b.shape
    order = [np.lexsort(np.round(x.reshape(len(x), -1), 3).T[::-1]) for x in (a, b)]
    return bool(np.allclose(a[order[0]], b[order[1]], atol=atol, rtol=0))


def coco_problems(rel: dict, per_image: dict[int, np.ndarray], names: dict[int, str]) -> list[str]:
    out = []
    seen = 0
    for split, doc in rel["coco"].items():
        ids = {im["id"]: im["file_name"] for im in doc["images"]}
        by_name: dict[str, list] = {}
        for a in doc["annotations"]:
            by_name.setdefault(ids.get(a["image_id"], "?"), []).append(a["keypoints"])
        seen += len(doc["annotations"])
        for image_id, want in per_image.items():
            name = names[image_id]
            if name in ids.values():
                got = np.asarray(by_name.get(name, []), float).reshape(-1, *want.shape[1:])
                if not same_points(got, want, atol=1e-3):
                    out.append(
                        f"coco/{split}.json: {name} holds other instances than index/annotations.parquet"
                    )
    if seen != len(rel["annotations"]):
        out.append(f"COCO holds {seen} annotations, index/annotations.parquet {len(rel['annotations'])}")
    return out


def finding_problems(findings: list[dict], two: bool, unnamed: bool, undeclared: set[int]) -> list[str]:
    """Error findings the export does not deserve (an image size is unknown only where it names no image;
    a category is unknown only where the export's own annotation names a category its file does not
    declare: mmpose's AnimalKingdom test file declares 1 and 2 and uses 4); with two identical
    annotators, any disagreement."""
    words = [w for w in UNDESERVED_WORDS if not (unnamed and w == "image size unknown")]
    deserved = {f"category_id {c} is not a declared category" for c in undeclared}
    bad = [
        f
        for f in findings
        if f["severity"] == "error"
        and not any(d in (f["message"] or "") for d in deserved)
        and (f["check"] in UNDESERVED_CHECKS or any(w in (f["message"] or "") for w in words))
    ]
    if two:
        bad += [f for f in findings if f["check"] == "qa.low_agreement"]
    return [f"undeserved {f['check']} ({f['severity']}): {f['message']}" for f in bad[:10]] + (
        [f"... and {len(bad) - 10} more"] if len(bad) > 10 else []
    )


def invariant_problems(summary: dict, decoded: Decoded, annotators: tuple[str, ...]) -> list[str]:
    """Every rule of the module docstring this delivery of `decoded` breaks, in words."""
    ds = decoded.dataset
    k, two = ds.schema.num_keypoints, len(annotators) > 1
    expected_in = (len(ds.instances) + decoded.rejected.num_rows) * len(annotators)  # what `convert` reads
    release = Path(summary.release)
    rel = read_release(release)
    delivered = [im for im in rel["images"] if im["status"] in ("delivered", "unlabeled")]
    per_image: dict[int, list] = {im["image_id"]: [] for im in delivered}
    for a in rel["annotations"]:
        per_image.setdefault(a["image_id"], []).append(a["keypoints"])
    points = {i: np.asarray(v, float).reshape(len(v), k, 3) for i, v in per_image.items()}
    names = {im["image_id"]: im["file_name"] for im in rel["images"]}
    out = count_problems(summary.counts, expected_in)
    if len(delivered) != summary.counts["images_delivered"]:
        out.append(
            f"{len(delivered)} images delivered in the index, {summary['counts']['images_delivered']} counted"
        )
    return (
        out
        + yolo_problems(release, delivered, points)
        + coco_problems(rel, points, names)
        + finding_problems(
            rel["findings"],
            two,
            unnamed="" in ds.images.file_name.tolist(),
            undeclared=set(ds.instances.category_id.tolist()) - {c.id for c in ds.categories},
        )
    )


@pytest.mark.parametrize("annotators", [("ann_a",), TWO], ids=["one-annotator", "two-annotators"])
@pytest.mark.parametrize(("target", "category", "decoded"), EXPORTS)
def test_a_real_export_is_delivered_whole(target, category, decoded, annotators, tmp_path, prefect_harness):
    from flows.delivery import delivery_run

    config = write_batch(tmp_path, target, decoded.dataset, category, annotators)
    summary = delivery_run(load_config(config))
    problems = invariant_problems(summary, decoded, annotators)
    assert not problems, (
        f"{target.name}{'#' + category if category else ''} as {len(annotators)} annotator(s): "
        + "; ".join(problems)
    )


def test_the_shared_exports_are_among_those_delivered(external):
    assert any(p.values[0].is_relative_to(external) for p in EXPORTS), f"no export found under {external}"
