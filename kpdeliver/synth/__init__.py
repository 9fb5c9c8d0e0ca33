"""Synthetic keypoint data for demos, tests and benchmarks: plausible COCO-17 poses, clean
COCO files and video tracks, simulated annotators with known injected mistakes, and a complete
demo client batch on disk. Pure numpy + Pillow, seeded and deterministic."""

from kpdeliver.synth.annotators import INJECTIONS_SCHEMA, Drift, ErrorRates, simulate_annotator, swap_oks
from kpdeliver.synth.datasets import Tracks, sample_tracks, synthetic_coco, synthetic_dataset, video_dataset
from kpdeliver.synth.demo import MISTAKES, make_demo_batch
from kpdeliver.synth.poses import FAMILIES, sample_poses
from kpdeliver.synth.team import TeamLabels, simulate_team

__all__ = [
    "FAMILIES",
    "INJECTIONS_SCHEMA",
    "MISTAKES",
    "Drift",
    "ErrorRates",
    "TeamLabels",
    "Tracks",
    "make_demo_batch",
    "sample_poses",
    "sample_tracks",
    "simulate_annotator",
    "simulate_team",
    "swap_oks",
    "synthetic_coco",
    "synthetic_dataset",
    "video_dataset",
]
