"""Deep QA: agreement, gold, left/right swaps, temporal jitter, annotator drift and pose coverage.

One entry point, `run_deep_qa`, returns the findings (stable `qa.*` check ids, located to image,
annotation, keypoint and annotator) and a scorecard per annotator. Pure numpy/scipy.

The dataset holds every annotator's instances (`Instances.annotator`). Overlap items are images
(grouped by file name) labeled by two or more annotators; gold is a separate dataset of trusted labels
matched by file name; video is every instance with track_id >= 0 and frame >= 0. Where an instance
has a gold match, gold is its reference and the consensus-based swap, visibility and agreement
findings are not repeated for it.

One module per check family, each a function from the run's Context (and the results it needs from
earlier checks) to its findings and a frozen result for the later ones:
  gold.gold_findings        -> GoldResult (matched instances, gold OKS, visibility, drift samples)
  overlap.overlap_findings  (gold's matched instances) -> OverlapResult (agreement, visibility,
                               per-keypoint stats, drift samples)
  temporal.video_findings   -> findings
  drift.drift_findings      (gold's and overlap's drift samples) -> DriftResult (findings, starts)
  coverage.coverage_findings -> findings
  scorecards                (gold, overlap, drift and all findings) -> the two tables
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from kpdeliver.config import DeepQASettings
from kpdeliver.findings import concat_findings
from kpdeliver.model import Dataset
from kpdeliver.qa.context import Context
from kpdeliver.qa.coverage import coverage_findings
from kpdeliver.qa.drift import drift_findings
from kpdeliver.qa.gold import GoldResult, gold_findings
from kpdeliver.qa.overlap import overlap_findings
from kpdeliver.qa.scorecards import annotator_scorecards, keypoint_table
from kpdeliver.qa.sigmas import MeasuredSigmas, measure_sigmas
from kpdeliver.qa.temporal import video_findings

__all__ = ["DeepQAResult", "run_deep_qa"]


@dataclass(frozen=True)
class DeepQAResult:
    findings: pa.Table  # FINDINGS_SCHEMA rows
    annotators: pa.Table  # one scorecard row per annotator (written to qa/annotators.parquet)
    keypoints: pa.Table  # per annotator and keypoint: agreement, visibility kappa, convention offset
    sigmas: MeasuredSigmas | None = None  # per keypoint, from the gold and overlap pairs (qa/sigmas.json)


def run_deep_qa(
    dataset: Dataset, *, gold: Dataset | None = None, settings: DeepQASettings | None = None
) -> DeepQAResult:
    """Run every deep-QA check on a dataset holding all annotators' instances.

    gold: trusted labels for some images, matched by file name. settings: thresholds (strict defaults).
    """
    s = settings or DeepQASettings()
    ctx = Context.of(dataset)
    gold_result = (
        gold_findings(ctx, gold, s) if gold is not None and len(gold.instances) else GoldResult.none(ctx)
    )
    overlap = overlap_findings(ctx, s, gold_matched=gold_result.matched)
    video = video_findings(ctx, s)
    drift = drift_findings(ctx, s, samples=(gold_result.drift_samples, overlap.drift_samples))
    coverage = coverage_findings(ctx, s)
    findings = concat_findings([gold_result.findings, overlap.findings, video, drift.findings, coverage])
    sigmas = measure_sigmas((gold_result.drift_samples, overlap.drift_samples), ctx.n_annotators, ctx.schema)
    return DeepQAResult(
        findings,
        annotator_scorecards(ctx, gold_result, overlap, drift, findings),
        keypoint_table(ctx, gold_result, overlap),
        sigmas,
    )
