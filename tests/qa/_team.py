"""A small simulated team (kpdeliver.synth) with every kind of mistake the deep QA looks for, and
its QA result written out as plain rows, to hold the checks' output steady across refactors."""

from __future__ import annotations

import math

import numpy as np

from kpdeliver.model import Dataset, concat_images, concat_instances
from kpdeliver.schema import COCO17
from kpdeliver.synth import Drift, ErrorRates, simulate_team, synthetic_dataset, video_dataset

ANNOTATORS = ("ann_a", "ann_b", "ann_c")


def team_batch(seed: int = 7) -> tuple[Dataset, Dataset]:
    """(every annotator's labels, gold): stills with swaps, visibility flips, a convention offset
    (ann_b) and a drift (ann_c), and video with jumps and flicker; each annotator's video first."""
    stills = synthetic_dataset(260, 420, seed=seed)
    video = video_dataset(
        4, n_frames=30, seed=seed + 1, first_image_id=10**6, first_instance_id=10**6, first_track_id=1
    )
    still_rates = {
        a: ErrorRates(
            swap=0.03,
            to_visible=0.03,
            to_occluded=0.03,
            convention={"left_shoulder": (0.0, -0.05)} if a == "ann_b" else {},
            drift=Drift(start=0.5) if a == "ann_c" else None,
        )
        for a in ANNOTATORS
    }
    video_rates = {a: ErrorRates(swap=0.02, to_visible=0.01, jump=0.03, flicker=0.02) for a in ANNOTATORS}
    v = simulate_team(video, annotators=ANNOTATORS, rates=video_rates, overlap=0.3, noise=0.15, seed=seed + 2)
    s = simulate_team(
        stills, annotators=ANNOTATORS, rates=still_rates, overlap=0.4, gold=0.1, noise=0.5, seed=seed + 3
    )
    parts = [
        team.dataset.instances.take(np.flatnonzero(team.dataset.instances.annotator == a))
        for a in ANNOTATORS
        for team in (v, s)
    ]
    dataset = Dataset(
        COCO17, concat_images([video.images, stills.images]), concat_instances(parts, COCO17.num_keypoints)
    )
    return dataset, s.gold


def plain_rows(table) -> list[dict]:
    """Rows with NaN as None (JSON has no NaN), so a stored copy compares equal."""
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in table.to_pylist()
    ]
