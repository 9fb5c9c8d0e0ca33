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
    cols["drift_start"] = pa.array([drift.starts.get(a) for a in names], pa.int64())
    return with_finding_counts(pa.table(cols), findings)


def with_finding_counts(scorecards: pa.Table, findings: pa.Table) -> pa.Table:
    """The scorecards with their finding columns (`n_error`, `n_warning`, `n_<check>`) counted from
    `findings`, after `drift_start`. Given a run's whole findings table (ingest, collection, row rules
    and deep QA), this is the one count the table, the report's cards and the flow's artifacts show."""
    names = scorecards["annotator"].to_pylist()
    counted = {}
    for key, values in (("severity", ("error", "warning")), ("check", tuple(f"qa.{c}" for c in _COUNTED))):
        grouped = findings.group_by(["annotator", key]).aggregate([([], "count_all")]).to_pylist()
        per = {(g["annotator"], g[key]): g["count_all"] for g in grouped}
        for v in values:
            counted[f"n_{v.removeprefix('qa.')}"] = pa.array([per.get((a, v), 0) for a in names], pa.int64())
    table = scorecards.drop_columns([c for c in counted if c in scorecards.column_names])
    at = table.column_names.index("drift_start") if "drift_start" in table.column_names else table.num_columns
    for offset, (name, column) in enumerate(counted.items()):
        table = table.add_column(at + offset, name, column)
    return table


def keypoint_table(ctx: Context, gold: GoldResult, overlap: OverlapResult) -> pa.Table:
    stats = overlap.keypoints
    a, k = stats.agreement.shape
    return pa.table(
        {
            "annotator": pa.array(np.repeat(ctx.annotator_names, k).tolist(), pa.string()),
            "keypoint": pa.array(list(ctx.schema.keypoints) * a, pa.string()),
            "agreement": _nullable(stats.agreement),
            "visibility_kappa": _nullable(cohen_kappa(overlap.visibility)),
            "gold_visibility_kappa": _nullable(cohen_kappa(gold.visibility)),
            "offset_x": _nullable(stats.offset[..., 0]),
            "offset_y": _nullable(stats.offset[..., 1]),
            "n_offset": pa.array(stats.offset_n.ravel().astype(np.int64)),
        }
    )


def _nullable(values: np.ndarray) -> pa.Array:
    """Float column, null where not finite (no measurement)."""
    values = np.asarray(values, np.float64).ravel()
    return pa.array(values, pa.float64(), mask=~np.isfinite(values))
