"""The sign-off: a release's counts judged against the client's QA thresholds."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa

from kpdeliver.config import QAThresholds


@dataclass(frozen=True)
class Counts:
    """What a release accounts for; written as `counts` in the manifest, in this field order."""

    images_listed: int
    images_delivered: int
    images_quarantined: int
    images_rejected_at_ingest: int
    instances_in: int
    instances_delivered: int
    instances_quarantined: int
    instances_review_only: int
    splits: dict[str, int]  # train/val/test -> delivered images
    delivered_error_findings: int
    findings: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """`qa/signoff.json` without its content digest, in this field order."""

    verdict: Literal["pass", "fail"]
    reasons: tuple[str, ...] = ()
    thresholds: dict = field(default_factory=dict)  # the client's QA thresholds, as configured
    measured: dict = field(default_factory=dict)  # every measured value that a threshold judged
    findings_by_check: dict[str, dict[str, int]] = field(default_factory=dict)  # check -> severity -> n

    def to_dict(self) -> dict:
        return {**asdict(self), "reasons": list(self.reasons)}


def signoff(thresholds: QAThresholds, counts: Counts, findings: pa.Table, annotators: pa.Table | None) -> Verdict:
    """Verdict against the client's thresholds, with every measured value that decided it."""
    delivered_errors = counts.delivered_error_findings
    q_frac = counts.instances_quarantined / max(counts.instances_in, 1)
    measured = {"delivered_error_findings": delivered_errors, "quarantined_fraction": round(q_frac, 6)}
    reasons = []
    if delivered_errors > thresholds.max_error_findings:
        reasons.append(f"{delivered_errors} error findings on delivered items (max {thresholds.max_error_findings})")
    if q_frac > thresholds.max_quarantined_fraction:
        reasons.append(f"{q_frac:.1%} of instances quarantined (max {thresholds.max_quarantined_fraction:.1%})")
    if annotators is not None and annotators.num_rows and "agreement_oks" in annotators.column_names:
        vals = [v for v in annotators["agreement_oks"].to_pylist() if v is not None]
        if vals:
            mean_oks = float(np.mean(vals))
            measured["mean_agreement_oks"] = round(mean_oks, 6)
            if mean_oks < thresholds.min_mean_oks:
                reasons.append(f"mean agreement OKS {mean_oks:.3f} below {thresholds.min_mean_oks}")
    by_check = {}
    for c, s in zip(findings["check"].to_pylist(), findings["severity"].to_pylist()):
        by_check.setdefault(c, {"error": 0, "warning": 0, "info": 0})[s] += 1
    return Verdict(
        verdict="pass" if not reasons else "fail",
        reasons=tuple(reasons),
        thresholds=thresholds.model_dump(mode="json"),
        measured=measured,
        findings_by_check=dict(sorted(by_check.items())),
    )
