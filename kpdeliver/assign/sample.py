"""The free sample a prospect receives: `n` images chosen to show the range of a batch, not its
first `n` — deterministic for a seed.

How the choice works:
1. Each image gets the labels of one source (gold where the batch has it, else the first annotator
   by name), so a person labeled twice counts once.
2. Every person's pose is normalised (centred on the mean of its labeled points, turned upright
   and mirrored to a common side, scaled by their RMS spread, unlabeled points at the centre; the
   body's direction kept as two more features) and the poses are clustered with k-means
   (`scipy.cluster.vq.kmeans2`, k = n/3 up to 20, k-means++ seeding from `seed`, the tightest of 8 runs).
3. Each image carries tags: the pose clusters of its people; `occluded` (a v=1 point inside the
   frame); `out_of_frame` (a labeled point outside the image); its crowd level (1, 2-3, 4+ people);
   its size class (orientation and pixel-count tercile); `small_person` (a person under a tenth
   of the image's side).
4. Images are picked one at a time, each time the one with the largest gain: for every tag it
   carries, weight / (1 + images already chosen with that tag), plus its novelty: how far its
   most unusual person lies from every person chosen so far (farthest-point sampling, in typical
   distances between two people, capped). An uncovered tag counts fully, so every tag is covered
   before any is repeated (as far as `n` allows) and repeats spread evenly; novelty brings in the
   rare poses a cluster may have lumped in with common ones. Pose clusters weigh twice the other
   tags. Ties go to the harder image (occluded and out-of-frame points, crowd, small people, an
   unusual pose), then to a seeded random order.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

import numpy as np

from kpdeliver.model import Dataset
from kpdeliver.schema import KeypointSchema

POSE_WEIGHT = 2.0
ORIENTATION_WEIGHT = 2.0
RESTARTS = 8
NOVELTY_WEIGHT = 1.5  # a person as far from every chosen one as two typical people are: worth 1.5 tags
NOVELTY_CAP = 2.0  # k-means runs; the tightest clustering is kept


@dataclass(frozen=True)
class SampleChoice:
    image_ids: np.ndarray  # chosen batch image ids, in pick order
    file_names: list[str]
    n_clusters: int
    tags: dict[str, int]  # tag -> chosen images carrying it (every tag of the batch, zeros included)
    batch_tags: dict[str, int]  # tag -> images of the batch carrying it

    @property
    def digest(self) -> str:
        """12 hex digits naming this choice of images (whatever their order): each sample gets a batch
        folder of its own."""
        return hashlib.sha256("\n".join(sorted(self.file_names)).encode()).hexdigest()[:12]


def normalised_poses(kps: np.ndarray, schema: KeypointSchema | None = None) -> tuple[np.ndarray, np.ndarray]:
    """([n, 2K + 2] centred, scaled, upright coordinates and the body axis; [n] bool: 3+ labeled points).

    Upright: the body axis (mid-hips to mid-shoulders where the schema has them, else the main
    axis of the labeled points) is turned to point up, and the pose mirrored so its left side lies
    left, so that people differ by their pose and not by how they stand in the picture."""
    lab: np.ndarray = kps[..., 2] > 0
    n_lab = lab.sum(axis=1)
    ok = n_lab >= 3
    safe = np.maximum(n_lab, 1)[:, None]
    xy = np.where(lab[..., None], kps[..., :2], 0.0)
    centre = xy.sum(axis=1) / safe
    d = np.where(lab[..., None], xy - centre[:, None, :], 0.0)
    # main axis of the labeled points (2x2 covariance, sign: towards the first labeled half)
    cov = np.einsum("nki,nkj->nij", d, d)
    _, vecs = np.linalg.eigh(cov)
    axis = vecs[..., :, 1]
    if schema is not None and {"left_shoulder", "right_shoulder", "left_hip", "right_hip"} <= set(
        schema.keypoints
    ):
        s_idx = [schema.index("left_shoulder"), schema.index("right_shoulder")]
        h_idx = [schema.index("left_hip"), schema.index("right_hip")]
        torso = lab[:, s_idx].all(axis=1) & lab[:, h_idx].all(axis=1)
        up = xy[:, s_idx].mean(axis=1) - xy[:, h_idx].mean(axis=1)
        axis = np.where(np.asarray(torso)[:, None], up, axis)
    first = np.arange(kps.shape[1]) < kps.shape[1] // 2
    towards = np.where((lab & first).any(axis=1)[:, None], (d * (lab & first)[..., None]).sum(axis=1), axis)
    sign = np.where((axis * towards).sum(axis=1) < 0, -1.0, 1.0)
    axis = axis * sign[:, None] / np.maximum(np.linalg.norm(axis, axis=1), 1e-9)[:, None]
    # rotate so that `axis` points up (0, -1): new y = -(d . axis), new x = d . perp(axis)
    perp = np.stack([-axis[:, 1], axis[:, 0]], axis=1)
    turned = np.stack([(d * perp[:, None, :]).sum(-1), -(d * axis[:, None, :]).sum(-1)], axis=-1)
    if schema is not None and schema.flip_idx is not None:
        flip = np.asarray(schema.flip_idx)
        left = flip > np.arange(len(flip))  # one side of each pair
        both = lab[:, left] & lab[:, flip[left]]
        lean = np.where(both, turned[:, left, 0] - turned[:, flip[left], 0], 0.0).sum(axis=1)
        turned[..., 0] *= np.where(lean > 0, -1.0, 1.0)[:, None]
    turned = np.where(lab[..., None], turned, 0.0)
    spread = np.sqrt((turned**2).sum(axis=(1, 2)) / np.maximum(n_lab, 1))
    feats = turned / np.where(spread > 0, spread, 1.0)[:, None, None]
    # how the body is turned still matters (lying is not standing): the axis joins the features,
    # weighted like a few keypoints
    return np.concatenate([feats.reshape(len(kps), -1), ORIENTATION_WEIGHT * axis], axis=1), ok


def cluster_poses(
    kps: np.ndarray, k: int, *, seed: int, schema: KeypointSchema | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(cluster label per person, -1 where too few points; distance to its cluster centre)."""
    feats, ok = normalised_poses(kps, schema)
    labels = np.full(len(kps), -1, np.int64)
    dist = np.zeros(len(kps))
    if ok.sum() == 0:
        return labels, dist
    from scipy.cluster.vq import kmeans2

    k = max(1, min(k, int(ok.sum())))
    x = feats[ok]
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():  # an empty cluster is fine: it just covers nothing
        warnings.simplefilter("ignore")
        for _ in range(RESTARTS):  # k-means++ now and then lumps a rare pose in with a common one
            centres, lab = kmeans2(x, k, seed=rng, minit="++")
            inertia = float(((x - centres[lab]) ** 2).sum())
            if best is None or inertia < best[0]:
                best = (inertia, centres, lab)
    assert best is not None  # RESTARTS ≥ 1
    _, centres, lab = best
    labels[ok] = lab
    dist[ok] = np.linalg.norm(feats[ok] - centres[lab], axis=1)
    return labels, dist


def one_label_per_image(dataset: Dataset, gold: Dataset | None = None) -> Dataset:
    """Every image's people once: the gold labels where there are any, else the labels of the
    first annotator (by name) who labeled the image."""
    ins = dataset.instances
    chosen = np.zeros(len(ins), bool)
    if len(ins):
        order = np.lexsort((ins.annotator.astype(str), ins.image_id))
        first: dict[int, str] = {}
        for r in order.tolist():
            first.setdefault(int(ins.image_id[r]), ins.annotator[r])
        chosen = np.fromiter(
            (first.get(int(i)) == a for i, a in zip(ins.image_id, ins.annotator)), bool, len(ins)
        )
    if gold is None or not len(gold.instances):
        return dataset.subset_instances(chosen)
    gold_images = np.unique(gold.instances.image_id)
    from kpdeliver.model import concat_instances

    keep = ins.take(np.flatnonzero(chosen & ~np.isin(ins.image_id, gold_images)))
    gold_ins = gold.instances.take(np.flatnonzero(np.isin(gold.instances.image_id, dataset.images.id)))
    return dataset.replace(instances=concat_instances([keep, gold_ins], dataset.schema.num_keypoints))


@dataclass(frozen=True)
class BatchTags:
    names: list[str]
    matrix: np.ndarray  # [n_images, n_tags] bool
    hardness: np.ndarray  # per image
    n_clusters: int
    poses: np.ndarray  # [n_people, F] normalised poses (people with 3+ labeled points)
    pose_image: np.ndarray  # [n_people] image row of each


def image_tags(dataset: Dataset, *, k: int, seed: int) -> BatchTags:
    """Every image's tags, hardness, and the normalised poses of its people."""
    im, ins = dataset.images, dataset.instances
    n_img = len(im)
    row = dataset.image_index()
    placed = row >= 0
    row_p, kps = row[placed], ins.keypoints[placed]
    clusters, dist = cluster_poses(kps, k, seed=seed, schema=dataset.schema)
    n_clusters = int(clusters.max()) + 1 if len(clusters) else 0
    w, h = im.width[row_p].astype(float), im.height[row_p].astype(float)
    v = kps[..., 2]
    inside = (kps[..., 0] >= 0) & (kps[..., 0] < w[:, None]) & (kps[..., 1] >= 0) & (kps[..., 1] < h[:, None])
    occluded = ((v == 1) & inside).any(axis=1)
    outside = ((v > 0) & ~inside).any(axis=1)
    side = np.sqrt(np.maximum(w * h, 1))
    box = ins.bbox[placed, 2] * ins.bbox[placed, 3]
    small = np.sqrt(np.where(np.isfinite(box), box, np.inf)) < 0.1 * side

    def per_image(mask: np.ndarray) -> np.ndarray:
        return np.bincount(row_p[mask], minlength=n_img) > 0

    columns = {f"pose cluster {c + 1}": per_image(clusters == c) for c in range(n_clusters)}
    columns["occluded"] = per_image(occluded)
    columns["out_of_frame"] = per_image(outside)
    columns["small_person"] = per_image(small)
    crowd = np.bincount(row_p, minlength=n_img)
    for name, lo, hi in (("1 person", 1, 1), ("2-3 people", 2, 3), ("4+ people", 4, 10**9)):
        columns[f"crowd: {name}"] = (crowd >= lo) & (crowd <= hi)
    pixels = im.width.astype(float) * im.height
    edges = np.quantile(pixels, [1 / 3, 2 / 3]) if n_img else np.zeros(2)
    size_class = (
        np.searchsorted(edges, pixels, side="right")
        if len(np.unique(pixels)) > 2
        else np.unique(pixels, return_inverse=True)[1]
    )
    orient = np.where(im.width > im.height, "landscape", np.where(im.width < im.height, "portrait", "square"))
    for o in sorted(set(orient.tolist())):
        for s in sorted(set(size_class.tolist())):
            mask = (orient == o) & (size_class == s)
            if mask.any():
                columns[f"size: {o} {('small', 'medium', 'large')[min(int(s), 2)]}"] = mask
    names = list(columns)
    matrix = np.stack([columns[n] for n in names], axis=1) if names else np.zeros((n_img, 0), bool)
    unusual = np.zeros(n_img)
    np.maximum.at(unusual, row_p, dist / (dist.max() if len(dist) and dist.max() > 0 else 1.0))
    hardness = (
        columns["occluded"].astype(float)
        + columns["out_of_frame"]
        + columns["small_person"]
        + np.minimum(crowd, 4) / 4
        + unusual
    )
    feats, ok = normalised_poses(kps, dataset.schema)
    return BatchTags(names, matrix, hardness, n_clusters, feats[ok], row_p[ok])


def _typical_distance(poses: np.ndarray, seed: int) -> float:
    """Median distance between two people of the batch (from a seeded subset of pairs)."""
    if len(poses) < 2:
        return 1.0
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(poses), (2, min(2000, len(poses) * 4)))
    d = np.sqrt(((poses[a] - poses[b]) ** 2).sum(-1))
    d = d[a != b]
    return float(np.median(d)) if len(d) and np.median(d) > 0 else 1.0


def choose_sample(
    dataset: Dataset, n: int, *, seed: int = 0, gold: Dataset | None = None, clusters: int | None = None
) -> SampleChoice:
    """The `n` images (at most the batch) that together show the batch's range; see the module notes."""
    labels = one_label_per_image(dataset, gold)
    k = clusters or max(2, min(20, n // 3))
    tags = image_tags(labels, k=k, seed=seed)
    names, matrix = tags.names, tags.matrix
    n_img = len(labels.images)
    n = min(n, n_img)
    weight = np.array([POSE_WEIGHT if t.startswith("pose") else 1.0 for t in names])
    tie = np.random.default_rng(seed).random(n_img) * 1e-6 + tags.hardness * 1e-3
    count = np.zeros(len(names))
    taken = np.zeros(n_img, bool)
    # novelty: how far an image's most unusual person lies from every person chosen so far
    # (farthest-point sampling), in units of a typical distance between two people
    poses = tags.poses
    nearest = np.full(len(poses), np.inf)
    typical = _typical_distance(poses, seed)
    picks = []
    m = matrix.astype(float)
    for _ in range(n):
        novelty = np.zeros(n_img)
        if len(poses):
            np.maximum.at(novelty, tags.pose_image, np.minimum(nearest / typical, NOVELTY_CAP))
        gain = m @ (weight / (1.0 + count)) + NOVELTY_WEIGHT * novelty + tie
        gain[taken] = -np.inf
        best = int(np.argmax(gain))
        picks.append(best)
        taken[best] = True
        count += m[best]
        mine = poses[tags.pose_image == best]
        if len(mine):
            d = np.sqrt(((poses[:, None, :] - mine[None, :, :]) ** 2).sum(-1)).min(axis=1)
            nearest = np.minimum(nearest, d)
    idx = np.asarray(picks, np.int64)
    return SampleChoice(
        image_ids=labels.images.id[idx],
        file_names=[labels.images.file_name[i] for i in idx.tolist()],
        n_clusters=tags.n_clusters,
        tags={t: int(c) for t, c in zip(names, count)},
        batch_tags={t: int(c) for t, c in zip(names, matrix.sum(axis=0))},
    )
