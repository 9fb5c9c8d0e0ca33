"""The free sample's choice of images: covers the batch's range (every pose family, occluded and
out-of-frame points, crowd levels, sizes) where a random pick of the same size misses some;
deterministic for a seed."""

from __future__ import annotations

import numpy as np

from kpdeliver.assign.sample import choose_sample, normalised_poses
from kpdeliver.model import Dataset, Images, Instances
from kpdeliver.schema import COCO17
from kpdeliver.synth.datasets import instance_area
from kpdeliver.synth.poses import FAMILIES, sample_poses

RARE = ("lying", "arms_overhead", "squatting")


def _batch(seed: int = 0) -> tuple[Dataset, np.ndarray]:
    """200 images, one person each: mostly standing or walking, 4 of each rare family; a few
    crowded and portrait images. Returns the dataset and each image's pose family."""
    rng = np.random.default_rng(seed)
    families = ["standing"] * 100 + ["walking"] * 88 + [f for f in RARE for _ in range(4)]
    rng.shuffle(families)
    n = len(families)
    sizes = np.where(rng.random(n)[:, None] < 0.9, [640, 480], [480, 640])
    kps, bbox = [], []
    for i, fam in enumerate(families):
        k, b = sample_poses(
            1, rng=rng, width=int(sizes[i, 0]), height=int(sizes[i, 1]), families=[fam], truncated=0.1
        )
        kps.append(k)
        bbox.append(b)
    kps, bbox = np.concatenate(kps), np.concatenate(bbox)
    images = Images.build(
        id=np.arange(1, n + 1),
        file_name=[f"img_{i:03d}.jpg" for i in range(n)],
        width=sizes[:, 0],
        height=sizes[:, 1],
    )
    instances = Instances.build(
        id=np.arange(1, n + 1),
        image_id=np.arange(1, n + 1),
        keypoints=kps,
        bbox=bbox,
        area=instance_area(bbox),
        num_keypoints=(kps[..., 2] > 0).sum(axis=1),
        num_kpts=17,
        annotator=np.full(n, "ann_a", dtype=object),
    )
    return Dataset(COCO17, images, instances), np.asarray(families)


def test_the_choice_covers_every_pose_family_where_random_picks_miss_some():
    ds, family = _batch()
    choice = choose_sample(ds, 50, seed=1)
    assert len(choice.image_ids) == 50 == len(set(choice.image_ids.tolist()))
    picked = set(family[choice.image_ids - 1].tolist())
    assert picked == set(FAMILIES) - {"bending"}  # every family in the batch, the rare ones included
    assert all(c > 0 for t, c in choice.tags.items() if choice.batch_tags[t] > 0)  # every tag of the batch
    assert choice.tags["occluded"] > 0 and choice.tags["out_of_frame"] > 0
    portrait = [t for t in choice.batch_tags if t.startswith("size: portrait")]
    assert portrait and sum(choice.tags[t] for t in portrait) > 0  # the few portrait images too
    random_cover = [
        len(set(family[np.random.default_rng(s).choice(len(family), 50, replace=False)].tolist()))
        for s in range(20)
    ]
    assert np.mean(random_cover) < len(picked) and min(random_cover) < len(picked)
    rare_random = np.mean(
        [
            np.isin(family[np.random.default_rng(s).choice(len(family), 50, replace=False)], RARE).sum()
            for s in range(20)
        ]
    )
    assert (
        np.isin(family[choice.image_ids - 1], RARE).sum() > 2 * rare_random
    )  # hard, rare poses over-represented


def test_the_choice_is_deterministic_for_a_seed_and_never_exceeds_the_batch():
    ds, _ = _batch(seed=3)
    a, b = choose_sample(ds, 30, seed=7), choose_sample(ds, 30, seed=7)
    assert a.image_ids.tolist() == b.image_ids.tolist() and a.file_names == b.file_names
    assert len(choose_sample(ds, 500, seed=0).image_ids) == len(ds.images)


def test_normalised_poses_ignore_position_and_scale():
    ds, _ = _batch()
    k = ds.instances.keypoints[:5].copy()
    moved = k.copy()
    moved[..., :2] = moved[..., :2] * 2.5 + 100
    f1, ok1 = normalised_poses(k)
    f2, ok2 = normalised_poses(moved)
    assert ok1.all() and (ok1 == ok2).all() and np.allclose(f1, f2)
