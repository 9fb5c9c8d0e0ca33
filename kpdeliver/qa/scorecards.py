"""The two tables the deep QA writes besides its findings: one scorecard row per annotator
(qa/annotators.parquet) and one row per annotator and keypoint (qa/keypoints.parquet), from what
the gold, overlap and drift checks handed on."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from kpdeliver.qa.agreement import cohen_kappa
from kpdeliver.qa.context import Context
from kpdeliver.qa.drift import DriftResult
from kpdeliver.qa.gold import GoldResult
from kpdeliver.qa.overlap import OverlapResult
from kpdeliver.qa.robust import group_mean

_COUNTED = ("low_agreement", "gold_mismatch", "left_right_swap", "temporal_jitter", "annotator_drift")


def annotator_scorecards(
    ctx: Context, gold: GoldResult, overlap: OverlapResult, drift: DriftResult, findings: pa.Table
) -> pa.Table:
    names = ctx.annotator_names
    code = ctx.ann_code
    n_overlap, agree = group_mean(overlap.agreement_oks, code, len(names))
    n_gold, gold_oks = group_mean(gold.oks, code, len(names))
    cols = {
        "annotator": pa.array(list(names), pa.string()),
        "n_instances": pa.array(np.bincount(code, minlength=len(names)).astype(np.int64)),
        "n_overlap": pa.array(n_overlap.astype(np.int64)),
        "agreement_oks": _nullable(agree),
        "visibility_kappa": _nullable(cohen_kappa(overlap.visibility.sum(axis=1))),
        "n_gold": pa.array(n_gold.astype(np.int64)),
        "gold_oks": _nullable(gold_oks),
        "gold_visibility_kappa": _nullable(cohen_kappa(gold.visibility.sum(axis=1))),
    }
    ann = np.asarray(findings["annotator"].to_pylist(), dtype=object)
    check = np.asarray(findings["check"].to_pylist(), dtype=object)
    sev = np.asarray(findings["severity"].to_pylist(), dtype=object)
    for severity in ("error", "warning"):
        cols[f"n_{severity}"] = pa.array([int(np.sum((ann == a) & (sev == severity))) for a in names], pa.int64())
    for c in _COUNTED:
        cols[f"n_{c}"] = pa.array([int(np.sum((ann == a) & (check == f"qa.{c}"))) for a in names], pa.int64())
    cols["drift_start"] = pa.array([drift.starts.get(a) for a in names], pa.int64())
    return pa.table(cols)


def keypoint_table(ctx: Context, gold: GoldResult, overlap: OverlapResult) -> pa.Table:
    stats = overlap.keypoints
    a, k = stats.agreement.shape
    return pa.table({
        "annotator": pa.array(np.repeat(ctx.annotator_names, k).tolist(), pa.string()),
        "keypoint": pa.array(list(ctx.schema.keypoints) * a, pa.string()),
        "agreement": _nullable(stats.agreement),
        "visibility_kappa": _nullable(cohen_kappa(overlap.visibility)),
        "gold_visibility_kappa": _nullable(cohen_kappa(gold.visibility)),
        "offset_x": _nullable(stats.offset[..., 0]),
        "offset_y": _nullable(stats.offset[..., 1]),
        "n_offset": pa.array(stats.offset_n.ravel().astype(np.int64)),
    })


def _nullable(values: np.ndarray) -> pa.Array:
    """Float column, null where not finite (no measurement)."""
    values = np.asarray(values, np.float64).ravel()
    return pa.array(values, pa.float64(), mask=~np.isfinite(values))
