"""Validation, one routine for `kpdeliver validate` and the delivery flow: the row rules (Great
Expectations suites, run by a `RuleRunner`) on each annotation set, then deep QA across
annotators, gold and frames -> one findings table and a scorecard per annotator.

Great Expectations is never imported here at import time: the CLI hands in a `GXWorker` (GX in a
second process, imported while the input is read); flows use `InProcessRules`, which imports GX
on first use, once per process, and then validates many datasets.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pyarrow as pa

from kpdeliver.config import DeepQASettings, ValidationSettings
from kpdeliver.findings import Severity, concat_findings, empty_findings
from kpdeliver.model import Dataset

if TYPE_CHECKING:
    from kpdeliver.qa.sigmas import MeasuredSigmas

__all__ = ["AnnotationSet", "InProcessRules", "RuleRunner", "Validation", "validate_annotations"]


class RuleRunner(Protocol):
    """Runs the row rules on one dataset and returns its findings (FINDINGS_SCHEMA)."""

    def validate(self, dataset: Dataset, settings: ValidationSettings, *, docs_dir: Path | None,
                 source: str) -> pa.Table: ...


class InProcessRules:
    """The row rules in this process (`expectations.validate_dataset`)."""

    def validate(self, dataset: Dataset, settings: ValidationSettings, *, docs_dir: Path | None,
                 source: str) -> pa.Table:
        from expectations import validate_dataset

        return validate_dataset(dataset, settings, docs_dir=docs_dir, source=source).findings


@dataclass(frozen=True)
class AnnotationSet:
    """One dataset for the row rules, with what was already found about it (at ingest or
    decode); those findings are listed before the rules' own."""

    dataset: Dataset
    findings: pa.Table = field(default_factory=empty_findings)
    source: str = ""  # the file the rules' findings point back to ("" when the items carry theirs)
    docs_dir: Path | None = None  # where this set's GX Data Docs go, if anywhere


@dataclass(frozen=True)
class Validation:
    """Every finding (each set's own then its rules', in order, then deep QA's) and, when deep QA
    ran, its per-annotator scorecards (their finding counts over every finding) and per-keypoint table."""

    findings: pa.Table
    annotators: pa.Table | None = None
    keypoints: pa.Table | None = None
    sigmas: MeasuredSigmas | None = None  # measured from the gold and overlap pairs

    @property
    def n_errors(self) -> int:
        return int(np.sum(self.findings["severity"].to_numpy(zero_copy_only=False) == Severity.error.value))


def validate_annotations(
    sets: Sequence[AnnotationSet],
    *,
    rules: RuleRunner,
    settings: ValidationSettings,
    deep_qa_on: Dataset | None = None,
    gold: Dataset | None = None,
    deep_qa: DeepQASettings | None = None,
) -> Validation:
    """Run the row rules on each set, then deep QA on `deep_qa_on` (every annotator's instances
    in one dataset) against `gold` when given; no deep QA when `deep_qa_on` is None."""
    tables = []
    for s in sets:
        tables += [s.findings, rules.validate(s.dataset, settings, docs_dir=s.docs_dir, source=s.source)]
    if deep_qa_on is None:
        return Validation(concat_findings(tables))
    from kpdeliver.qa import run_deep_qa  # scipy: only when deep QA runs
    from kpdeliver.qa.scorecards import with_finding_counts

    qa = run_deep_qa(deep_qa_on, gold=gold, settings=deep_qa)
    findings = concat_findings([*tables, qa.findings])
    return Validation(findings, with_finding_counts(qa.annotators, findings), qa.keypoints, qa.sigmas)
