"""A complete demo client batch on disk: drawn JPEG scenes, three annotators' COCO exports with
a handful of realistic mistakes, gold labels, the client config, and the list of mistakes
(the images are drawn by kpdeliver.synth.scenes).

    root/client.yaml                          the client config (source ./batch, releases ./releases)
    root/batch/images/scene_NNN.jpg           the client's images
    root/batch/checksums.sha256               sha256 of every image, taken when the batch was made
    root/batch/annotations/<ann>/person_keypoints.json   each annotator's export
    root/batch/gold/person_keypoints.json     trusted labels of the gold images
    root/releases/                            empty; deliveries publish here
    root/truth.json                           every injected mistake and the check that should catch it
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import yaml

from kpdeliver.codecs.coco.encoder import encode
from kpdeliver.config import Assignment
from kpdeliver.model import Dataset, Images, Instances
from kpdeliver.schema import COCO17
from kpdeliver.synth.annotators import simulate_annotator, swap_oks
from kpdeliver.synth.datasets import instance_area
from kpdeliver.synth.poses import sample_poses
from kpdeliver.synth.scenes import write_images

SIZES = np.array([[640, 480], [480, 640], [800, 600]])
EXPORT_NAME = "person_keypoints.json"


def _truth(n_images: int, rng: np.random.Generator) -> Dataset:
    sizes = SIZES[rng.choice(len(SIZES), n_images, p=[0.6, 0.2, 0.2])]
    per_image = rng.choice([1, 2, 3], n_images, p=[0.5, 0.35, 0.15])
    img_of = np.repeat(np.arange(n_images), per_image)
    w, h = sizes[img_of, 0], sizes[img_of, 1]
    kps, bbox = sample_poses(len(img_of), rng=rng, width=w, height=h, size=(0.45, 0.9), truncated=0.12)
    images = Images.build(
        id=np.arange(1, n_images + 1),
        file_name=[f"scene_{i:03d}.jpg" for i in range(n_images)],
        width=sizes[:, 0],
        height=sizes[:, 1],
    )
    instances = Instances.build(
        id=np.arange(1, len(img_of) + 1),
        image_id=img_of + 1,
        keypoints=kps,
        bbox=bbox,
        area=instance_area(bbox),
        num_keypoints=(kps[..., 2] > 0).sum(axis=1),
        num_kpts=17,
    )
    return Dataset(COCO17, images, instances)


def _export(ds: Dataset, id_base: int) -> dict:
    """The annotator's file as their tool would write it: its own image ids (1..m) and
    annotation ids, no annotator field."""
    local = {i: n + 1 for n, i in enumerate(ds.images.id.tolist())}
    ins = ds.instances
    images = ds.images.take(np.arange(len(ds.images)))
    images.id = np.arange(1, len(images) + 1, dtype=np.int64)
    out = Instances(
        **{
            **{
                f: getattr(ins, f)
                for f in (
                    "category_id",
                    "bbox",
                    "area",
                    "iscrowd",
                    "track_id",
                    "frame",
                    "num_keypoints",
                    "keypoints",
                )
            },
            "id": id_base + np.arange(1, len(ins) + 1),
            "annotator": np.full(len(ins), "", dtype=object),
            "image_id": np.array([local[i] for i in ins.image_id.tolist()], dtype=np.int64),
        }
    )
    return orjson.loads(encode(ds.replace(images=images, instances=out)))


def _candidates(k: np.ndarray, w: np.ndarray, h: np.ndarray, area: np.ndarray, kind: str) -> np.ndarray:
    """[n, 17] points of each instance (as the annotator labeled it) where a mistake of this
    kind is possible and shows in the data; instance-level kinds mark every labeled point."""
    v = k[..., 2]
    inside = (
        (k[..., 0] >= 0) & (k[..., 0] <= w[:, None]) & (k[..., 1] >= 0) & (k[..., 1] <= h[:, None])
    )  # edges in
    enough = ((v == 2).sum(axis=1) >= 6)[:, None]
    if kind == "left_right_swap":
        return (v > 0) & (swap_oks(k, COCO17.sigma_array, COCO17.flip_idx, area) < 0.3)[:, None]
    if kind == "to_visible":
        return (v == 1) & inside
    if kind == "visible_outside":
        return (v == 1) & ~inside
    if kind in ("to_occluded", "outside_image", "unlabeled_with_coords"):
        return (v == 2) & enough
    return (v > 0) & ((v > 0).sum(axis=1) >= 3)[:, None]


# (kind, where, the check that should catch it); gold images are labeled by every annotator
MISTAKES = (
    ("left_right_swap", "gold", "qa.left_right_swap"),
    ("to_visible", "gold", "qa.gold_mismatch"),
    ("to_occluded", "gold", "qa.gold_mismatch"),
    ("visible_outside", "primary", "bounds.visible_outside_image"),
    ("outside_image", "primary", "bounds.visible_outside_image"),
    ("unlabeled_with_coords", "primary", "visibility.unlabeled_with_coords"),
    ("keypoint_count", "primary", "schema.keypoint_count"),
    ("unknown_image", "primary", "schema.unknown_image"),
)


# The sign-off rules of the demo client, written out in full (they are the defaults) so that its
# client.yaml shows what a client can set; docs/release.md's sign-off section quotes them.
DEMO_SIGNOFF_RULES = {
    "min_mean_oks": 0.75,
    "min_agreement_oks": 0.75,
    "min_gold_oks": 0.75,
    "max_error_findings": 0,
    "max_quarantined_fraction": 0.1,
    "max_rate": {
        "qa.left_right_swap": 0.0,
        "bounds.visible_outside_image": 0.01,
        "bounds.occluded_far_outside": 0.01,
        "qa.temporal_jitter": 0.02,
    },
    "max_coverage_bins_short": 0,
    "severity": {
        "max_error_findings": "fail",
        "max_quarantined_fraction": "fail",
        "min_mean_oks": "fail",
        "min_agreement_oks": "conditional",
        "min_gold_oks": "conditional",
        "max_rate": "conditional",
        "max_coverage_bins_short": "conditional",
    },
}


def _pick_gold(truth: Dataset, n_gold: int, rng: np.random.Generator) -> list[str]:
    """Gold file names; the first holds a person whose left/right swap would show and who has
    an occluded point in the frame, so the gold mistakes of MISTAKES have somewhere to go."""
    ins, images = truth.instances, truth.images
    row_img = truth.image_index()
    w, h = images.width[row_img].astype(float), images.height[row_img].astype(float)
    good = _candidates(ins.keypoints, w, h, ins.area, "left_right_swap").any(axis=1) & _candidates(
        ins.keypoints, w, h, ins.area, "to_visible"
    ).any(axis=1)
    names = images.file_name.tolist()
    best = sorted({names[r] for r in row_img[good].tolist()})
    first = [str(rng.choice(best))] if best and n_gold else []
    rest = [n for n in names if n not in first]
    more = (
        rng.choice(rest, min(n_gold - len(first), len(rest)), replace=False).tolist()
        if n_gold > len(first)
        else []
    )
    return sorted(first + more)


def _apply(k: np.ndarray, kind: str, col: int, w: float, h: float, rng: np.random.Generator) -> None:
    """Make one mistake in one instance's [17, 3] keypoints, in place."""
    if kind == "left_right_swap":
        k[:] = k[COCO17.flip_idx]
    elif kind in ("to_visible", "visible_outside"):
        k[col, 2] = 2.0
    elif kind == "to_occluded":
        k[col, 2] = 1.0
    elif kind == "unlabeled_with_coords":
        k[col, 2] = 0.0
    elif kind == "outside_image":  # past the nearest edge by 5-12 % of the image side
        x, y = k[col, :2]
        edge = int(np.argmin([x, w - x, y, h - y]))
        past = rng.uniform(0.05, 0.12) * (w if edge < 2 else h)
        k[col, :2] = [(-past, w + past, x, x)[edge], (y, y, -past, h + past)[edge]]
        k[col, :2] = np.round(k[col, :2], 2)


def _place_mistakes(labels: dict[str, Dataset], roles: dict[str, dict[int, str]], rng) -> list[dict]:
    """Choose an instance (and point) for each mistake of MISTAKES, rotating over annotators,
    apply it to that annotator's labels and return what was done."""
    names = list(labels)
    done, used = [], set()
    for m, (kind, where, check) in enumerate(MISTAKES):
        for a in names[m % len(names) :] + names[: m % len(names)]:
            ds = labels[a]
            ins = ds.instances
            row_img = ds.image_index()
            w = ds.images.width[row_img].astype(float)
            h = ds.images.height[row_img].astype(float)
            pts = _candidates(ins.keypoints, w, h, ins.area, kind)
            role_ok = np.array([roles[a].get(i) == where for i in ins.image_id.tolist()], bool)
            fresh = np.array([(a, i) not in used and (None, i) not in used for i in ins.id.tolist()], bool)
            rows = np.flatnonzero(pts.any(axis=1) & role_ok & fresh)
            if not len(rows):
                continue
            r = int(rng.choice(rows))
            col = int(rng.choice(np.flatnonzero(pts[r])))
            _apply(ins.keypoints[r], kind, col, w[r], h[r], rng)
            used.add((a, int(ins.id[r])) if where == "gold" else (None, int(ins.id[r])))
            whole = kind in ("left_right_swap", "keypoint_count", "unknown_image")
            done.append(
                {
                    "kind": kind,
                    "annotator": a,
                    "instance": int(ins.id[r]),
                    "file_name": str(ds.images.file_name[row_img[r]]),
                    "keypoint": None if whole else COCO17.keypoints[col],
                    "expected_check": check,
                    "role": where,
                }
            )
            break
    return done


def make_demo_batch(
    root: Path,
    *,
    seed: int = 0,
    n_images: int = 36,
    annotators: tuple[str, ...] = ("ann_a", "ann_b", "ann_c"),
    overlap: float = 0.15,
    n_gold: int = 2,
    workers: int | None = None,
) -> Path:
    """Write a realistic synthetic client batch under `root` and return its `client.yaml`.

    Images are dealt to annotators by `kpdeliver.assign.assignments.assign_annotators` with the config's
    own assignment settings (so the delivery flow sees the same split), a fraction `overlap`
    going to two annotators and `n_gold` gold images to all. Each annotator labels their images
    with careful placement noise; then a handful of mistakes (MISTAKES: a left/right swap and
    visibility flips on gold images, a visible point outside the frame, a point moved off the
    image, an unlabeled point with coordinates, a wrong keypoint count, an unknown image id)
    are made and listed in `root/truth.json` with the check that should catch each.

    The images are drawn by `kpdeliver.synth.scenes.write_images`, each from its own generator
    (seed, image row), in `workers` processes (default: one for small batches, os.cpu_count()
    from 2,000 images); every file written is the same whatever `workers` is."""
    from kpdeliver.assign.assignments import assign_annotators

    root = Path(root)
    batch = root / "batch"
    rng = np.random.default_rng(seed)
    truth = _truth(n_images, rng)
    gold = _pick_gold(truth, n_gold, rng)
    settings = Assignment(seed=seed, overlap=overlap, gold=gold)
    table = assign_annotators(truth.images, list(annotators), settings).to_pylist()
    write_images(batch, truth, seed=seed, workers=workers)

    labels, roles = {}, {}
    for n, a in enumerate(annotators):
        roles[a] = {r["image_id"]: r["role"] for r in table if r["annotator"] == a}
        mine = np.isin(truth.images.id, list(roles[a]))
        labels[a], _ = simulate_annotator(
            truth.subset_images(mine), annotator=a, rng=np.random.default_rng([seed, 2, n])
        )
    mistakes = _place_mistakes(labels, roles, rng)
    _write_exports(batch, labels, mistakes)
    if gold:
        gold_ds = truth.subset_images(np.isin(truth.images.file_name, gold))
        (batch / "gold").mkdir(exist_ok=True)
        (batch / "gold" / EXPORT_NAME).write_bytes(
            orjson.dumps(_export(gold_ds, id_base=0), option=orjson.OPT_INDENT_2)
        )
    (root / "releases").mkdir(parents=True, exist_ok=True)
    _write_config(root, annotators, seed=seed, overlap=overlap, gold=gold)
    _write_truth(root, seed=seed, n_images=n_images, truth=truth, gold=gold, mistakes=mistakes)
    return root / "client.yaml"


def _write_config(
    root: Path, annotators: tuple[str, ...], *, seed: int, overlap: float, gold: list[str]
) -> None:
    """The demo client's `client.yaml` under `root`."""
    config = {
        "client": "demo",
        "dataset": "people-demo",
        "schema": "coco17",
        "source": "./batch",
        "releases": "./releases",
        "annotators": list(annotators),
        "splits": {"train": 0.75, "val": 0.25, "test": 0.0, "seed": seed},
        "assignment": {"seed": seed, "overlap": overlap, "gold": gold},
        "qa": DEMO_SIGNOFF_RULES,
        "deep_qa": {"low_agreement_oks": 0.75},
    }
    (root / "client.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def _write_truth(
    root: Path, *, seed: int, n_images: int, truth: Dataset, gold: list[str], mistakes: list[dict]
) -> None:
    """`root/truth.json`: the batch's size, its gold images and the mistakes made (instance ids dropped)."""
    for m in mistakes:
        del m["instance"]
    report = {
        "seed": seed,
        "images": n_images,
        "instances": len(truth.instances),
        "gold": gold,
        "mistakes": mistakes,
    }
    (root / "truth.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))


def _write_exports(batch: Path, labels: dict[str, Dataset], mistakes: list[dict]) -> None:
    """Each annotator's COCO export, with the file-level mistakes (a keypoint short, an unknown image)
    made in the written document; each mistake gets the annotation id it carries in the export."""
    for n, a in enumerate(labels):
        doc = _export(labels[a], id_base=(n + 1) * 1_000_000)
        pos = {i: j for j, i in enumerate(labels[a].instances.id.tolist())}
        for m in (m for m in mistakes if m["annotator"] == a):
            ann = doc["annotations"][pos[m["instance"]]]
            m["annotation_id"] = ann["id"]
            if m["kind"] == "keypoint_count":
                ann["keypoints"] = ann["keypoints"][:-3]
            elif m["kind"] == "unknown_image":
                ann["image_id"] = len(doc["images"]) + 100
        out = batch / "annotations" / a / EXPORT_NAME
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
