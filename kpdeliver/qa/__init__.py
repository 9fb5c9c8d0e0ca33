"""Deep QA: agreement, gold, left/right swaps, temporal jitter, annotator drift and pose coverage.

One entry point, `run_deep_qa`, returns the findings (stable `qa.*` check ids, located to image,
annotation, keypoint and annotator) and a scorecard per annotator. Pure numpy/scipy.

The dataset holds every annotator's instances (`Instances.annotator`). Overlap items are images
(grouped by file name) labeled by two or more annotators; gold is a separate dataset of trusted labels
matched by file name; video is every instance with track_id >= 0 and frame >= 0. Where an instance
has a gold match, gold is its reference and the consensus-based swap, visibility and agreement
findings are not repeated for it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from kpdeliver.config import DeepQASettings
from kpdeliver.findings import concat_findings
from kpdeliver.model import Dataset
from kpdeliver.qa.agreement import cohen_kappa
from kpdeliver.qa.checks import (
    Context,
    RefStore,
    coverage_findings,
    drift_findings,
    gold_findings,
    overlap_findings,
    video_findings,
)

__all__ = ["DeepQAResult", "run_deep_qa"]


@dataclass(frozen=True)
class DeepQAResult:
    findings: pa.Table  # FINDINGS_SCHEMA rows
    annotators: pa.Table  # one scorecard row per annotator (written to qa/annotators.parquet)
    keypoints: pa.Table  # per annotator and keypoint: agreement, visibility kappa, convention offset


def run_deep_qa(
    dataset: Dataset, *, gold: Dataset | None = None, settings: DeepQASettings | None = None
) -> DeepQAResult:
    """Run every deep-QA check on a dataset holding all annotators' instances.

    gold: trusted labels for some images, matched by file name. settings: thresholds (strict defaults).
    """
    s = settings or DeepQASettings()
    ctx = Context.of(dataset)
    refs = RefStore.empty(ctx)
    parts = []
    if gold is not None and len(gold.instances):
        parts.append(gold_findings(ctx, gold, s, refs))
    parts.append(overlap_findings(ctx, s, refs))
    parts.append(video_findings(ctx, s))
    drift_tab, drift_start = drift_findings(ctx, s, refs)
    parts.append(drift_tab)
    parts.append(coverage_findings(ctx, s))
    findings = concat_findings(parts)
    return DeepQAResult(findings, _scorecards(ctx, refs, findings, drift_start), refs.keypoint_table(ctx))


_COUNTED = ("low_agreement", "gold_mismatch", "left_right_swap", "temporal_jitter", "annotator_drift")


def _scorecards(ctx: Context, refs: RefStore, findings: pa.Table, drift_start: dict[str, int]) -> pa.Table:
    names = ctx.annotator_names
    code = ctx.ann_code

    def per_annotator_mean(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = np.isfinite(values)
        n = np.bincount(code[ok], minlength=len(names))
        total = np.bincount(code[ok], weights=values[ok], minlength=len(names))
        with np.errstate(invalid="ignore", divide="ignore"):
            return n, np.where(n > 0, total / n, np.nan)

    n_overlap, agree = per_annotator_mean(refs.agree_oks)
    n_gold, gold = per_annotator_mean(refs.gold_oks)
    cols = {
        "annotator": pa.array(list(names), pa.string()),
        "n_instances": pa.array(np.bincount(code, minlength=len(names)).astype(np.int64)),
        "n_overlap": pa.array(n_overlap.astype(np.int64)),
        "agreement_oks": _nullable(agree),
        "visibility_kappa": _nullable(cohen_kappa(refs.consensus_conf.sum(axis=1))),
        "n_gold": pa.array(n_gold.astype(np.int64)),
        "gold_oks": _nullable(gold),
        "gold_visibility_kappa": _nullable(cohen_kappa(refs.gold_conf.sum(axis=1))),
    }
    ann = np.asarray(findings["annotator"].to_pylist(), dtype=object)
    check = np.asarray(findings["check"].to_pylist(), dtype=object)
    sev = np.asarray(findings["severity"].to_pylist(), dtype=object)
    for severity in ("error", "warning"):
        cols[f"n_{severity}"] = pa.array([int(np.sum((ann == a) & (sev == severity))) for a in names], pa.int64())
    for c in _COUNTED:
        cols[f"n_{c}"] = pa.array([int(np.sum((ann == a) & (check == f"qa.{c}"))) for a in names], pa.int64())
    cols["drift_start"] = pa.array([drift_start.get(a) for a in names], pa.int64())
    return pa.table(cols)


def _nullable(values: np.ndarray) -> pa.Array:
    values = np.asarray(values, np.float64)
    return pa.array(values, pa.float64(), mask=~np.isfinite(values))
