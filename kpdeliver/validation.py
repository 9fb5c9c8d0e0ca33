"""Validation, one routine for `kpdeliver validate` and the delivery flow: the row rules (Great
Expectations suites, run by a `RuleRunner`) on each annotation set, then deep QA across
annotators, gold and frames -> one findings table and a scorecard per annotator.

Great Expectations is never imported here at import time: the CLI hands in a `GXWorker` (GX in a
second process, imported while the input is read); flows use `InProcessRules`, which imports GX
on first use, once per process, and then validates many datasets. The rules' own results (GX's
validation results, summarised as JSON) come back in the typed `Validation`, never through a file.

Validation has three rooms, each named for what it holds: this module (the one routine), the row
rules as Great Expectations suites (`expectations/`, beside the domain so the domain never imports
GX) and the deep QA checks across annotators, gold and frames (`kpdeliver/qa/`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pyarrow as pa

from expectations.results import RuleResults, results_json
from kpdeliver.config import DeepQASettings, ValidationSettings
from kpdeliver.findings import Severity, concat_findings, empty_findings
from kpdeliver.model import Dataset

if TYPE_CHECKING:
    from kpdeliver.collect.exports import CollectResult
    from kpdeliver.qa.sigmas import MeasuredSigmas

__all__ = [
    "AnnotationSet",
    "InProcessRules",
    "RuleResults",
    "RuleRunner",
    "Validation",
    "validate_annotations",
    "validate_delivery",
]


class RuleRunner(Protocol):
    """Runs the row rules on one dataset."""

    def validate(self, dataset: Dataset, settings: ValidationSettings, *, source: str) -> RuleResults: ...


class InProcessRules:
    """The row rules in this process (`expectations.validate_dataset`)."""

    def validate(self, dataset: Dataset, settings: ValidationSettings, *, source: str) -> RuleResults:
        from expectations import validate_dataset
        from expectations.validate import results_summary

        report = validate_dataset(dataset, settings, source=source)
        return RuleResults(report.findings, results_summary(report.results))


@dataclass(frozen=True)
class AnnotationSet:
    """One dataset for the row rules, with what was already found about it (at ingest or
    decode); those findings are listed before the rules' own."""

    dataset: Dataset
    findings: pa.Table = field(default_factory=empty_findings)
    source: str = ""  # the file the rules' findings point back to ("" when the items carry theirs)


@dataclass(frozen=True)
class Validation:
    """Every finding (each set's own then its rules', in order, then deep QA's) and, when deep QA
    ran, its per-annotator scorecards (their finding counts over every finding) and per-keypoint table;
    `rules`: each set's row-rule results summary (RuleResults.summary), in the order of the sets."""

    findings: pa.Table
    annotators: pa.Table | None = None
    keypoints: pa.Table | None = None
    sigmas: MeasuredSigmas | None = None  # measured from the gold and overlap pairs
    rules: tuple[list[dict], ...] = ()

    @property
    def results_json(self) -> bytes:
        """Every set's row-rule results as one `validation_results.json` (a release's `qa/` file)."""
        return results_json([suite for summary in self.rules for suite in summary])

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
    tables, summaries = [], []
    for s in sets:
        ran = rules.validate(s.dataset, settings, source=s.source)
        tables += [s.findings, ran.findings]
        summaries.append(ran.summary)
    if deep_qa_on is None:
        return Validation(concat_findings(tables), rules=tuple(summaries))
    from kpdeliver.qa import run_deep_qa  # scipy: only when deep QA runs
    from kpdeliver.qa.scorecards import with_finding_counts

    qa = run_deep_qa(deep_qa_on, gold=gold, settings=deep_qa)
    findings = concat_findings([*tables, qa.findings])
    return Validation(
        findings, with_finding_counts(qa.annotators, findings), qa.keypoints, qa.sigmas, tuple(summaries)
    )


def validate_delivery(
    collected: CollectResult,
    ingest_findings: pa.Table,
    assignments: pa.Table,
    settings: ValidationSettings,
    deep_qa: DeepQASettings,
    *,
    tool_url: str | None = None,
) -> Validation:
    """A delivery's validation: row rules on every collected instance (gold included), deep QA
    across annotators; the findings of ingest, collection and assignment come first in the table.
    With a live annotation tool (`tool_url`), each finding on an item pulled from it links to that
    item's task."""
    from kpdeliver.collect.exports import assignment_findings
    from kpdeliver.progress import stage

    known = concat_findings(
        [ingest_findings, collected.findings, assignment_findings(collected.dataset, assignments)]
    )
    everything = collected.everything
    n = len(everything.instances)
    with stage("validation", n) as validating:
        validation = validate_annotations(
            [AnnotationSet(everything, known)],
            rules=InProcessRules(),
            settings=settings,
            deep_qa_on=collected.dataset,
            gold=collected.gold,
            deep_qa=deep_qa,
        )
        validating.advance(n)
    if tool_url:
        from kpdeliver.tools.label_studio import with_task_links

        validation = replace(validation, findings=with_task_links(validation.findings, everything, tool_url))
    return validation
