"""The sign-off: a release judged against the client's sign-off rules (the config's `qa:` section).

Every rule yields one outcome per subject (the delivery, an annotator or a check id) with its
threshold and measured value. A rule not met fails the delivery or makes it conditional, as the
client's `qa.severity` says; the verdict is the worst outcome: `fail`, else `conditional` (delivered,
with the exceptions named in `reasons`), else `pass`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kpdeliver.config import QAThresholds
from kpdeliver.words import plural

Outcome = Literal["pass", "conditional", "fail", "not_measured"]
VerdictName = Literal["pass", "conditional", "fail"]


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
class Collected:
    """What collection gave, beside the counts: labels collected per configured annotator (0: no usable
    export; held-back and review-only labels count), and delivered images with at least one label."""

    by_annotator: dict[str, int]
    labeled_images: int


@dataclass(frozen=True)
class RuleResult:
    """One rule judged on one subject: a line of `rules` in qa/signoff.json."""

    rule: str  # the rule's key in the config's `qa:` section
    subject: str | None  # the annotator or check id judged; None for the whole delivery
    threshold: float
    measured: float | None  # None: nothing to measure (e.g. an annotator without gold images)
    outcome: Outcome
    message: str  # plain words, naming the subject and where its items are


@dataclass(frozen=True)
class Verdict:
    """`qa/signoff.json` without its content digest, in this field order."""

    verdict: VerdictName
    reasons: tuple[str, ...] = ()  # the message of every rule not met, failures first
    thresholds: dict = field(default_factory=dict)  # the client's sign-off rules, as configured
    rules: tuple[RuleResult, ...] = ()
    findings_by_check: dict[str, dict[str, int]] = field(default_factory=dict)  # check -> severity -> n

    def to_dict(self) -> dict:
        return {**asdict(self), "reasons": list(self.reasons), "rules": [asdict(r) for r in self.rules]}


def signoff(
    rules: QAThresholds,
    counts: Counts,
    findings: pa.Table,
    annotators: pa.Table | None,
    delivered_by_annotator: dict[str, int] | None = None,
    collected: Collected | None = None,
    rework_rate: float | None = None,
) -> Verdict:
    """Judge a release against the client's rules. `annotators`: the scorecards of the deep QA
    (qa/annotators.parquet); `delivered_by_annotator`: delivered instances per annotator, named in
    the exceptions; `collected`: what the annotators' exports gave (the annotator and labeled-image
    rules are not judged without it); `rework_rate`: images sent back for rework / images labeled."""
    judge = _Judge(rules)
    _delivery_rules(judge, counts)
    _annotator_rules(judge, annotators, delivered_by_annotator or {})
    _rate_rules(judge, counts, findings)
    _coverage_rule(judge, findings)
    _collection_rules(judge, counts, findings, collected)
    _rework_rule(judge, rework_rate)
    results = judge.results
    outcomes = {r.outcome for r in results}
    verdict: VerdictName = (
        "fail" if "fail" in outcomes else "conditional" if "conditional" in outcomes else "pass"
    )
    broken = [r for r in results if r.outcome == "fail"] + [r for r in results if r.outcome == "conditional"]
    return Verdict(
        verdict=verdict,
        reasons=tuple(r.message for r in broken),
        thresholds=rules.model_dump(mode="json"),
        rules=tuple(results),
        findings_by_check=_findings_by_check(findings),
    )


class _Judge:
    def __init__(self, rules: QAThresholds):
        self.rules = rules
        self.results: list[RuleResult] = []

    def __call__(
        self,
        rule: str,
        subject: str | None,
        threshold: float,
        measured: float | None,
        met: bool,
        message: str,
    ) -> None:
        outcome: Outcome = (
            "not_measured"
            if measured is None
            else "pass"
            if met
            else getattr(self.rules.severity, rule).value
        )
        value = (
            None
            if measured is None
            else round(float(measured), 6)
            if isinstance(measured, float)
            else measured
        )
        self.results.append(RuleResult(rule, subject, threshold, value, outcome, message))


def _delivery_rules(judge: _Judge, counts: Counts) -> None:
    rules = judge.rules
    errors, most = counts.delivered_error_findings, rules.max_error_findings
    judge(
        "max_error_findings",
        None,
        most,
        errors,
        errors <= most,
        f"{plural(errors, 'error finding')} on delivered items (max {most})",
    )
    q_frac = counts.instances_quarantined / max(counts.instances_in, 1)
    judge(
        "max_quarantined_fraction",
        None,
        rules.max_quarantined_fraction,
        q_frac,
        q_frac <= rules.max_quarantined_fraction,
        f"{q_frac:.1%} of instances quarantined (max {rules.max_quarantined_fraction:.1%})",
    )


def _collection_rules(judge: _Judge, counts: Counts, findings: pa.Table, collected: Collected | None) -> None:
    """Nothing the exports held is lost from sight: an empty delivery, export files not read, annotators
    none of whose labels were collected, and deliveries of mostly unlabeled images are judged."""
    rules = judge.rules
    if rules.min_instances_delivered is not None:
        n, least = counts.instances_delivered, rules.min_instances_delivered
        what = "nothing" if n == 0 else f"only {plural(n, 'instance')}"
        judge(
            "min_instances_delivered",
            None,
            least,
            n,
            n >= least,
            f"{plural(n, 'instance')} delivered (min {least})"
            if n >= least
            else f"{what} delivered, below {least}: {counts.instances_in} came in from readable exports, "
            f"{counts.instances_quarantined} held back (qa/quarantine.parquet), "
            f"{counts.instances_review_only} review-only",
        )
    unread = findings.filter(pc.equal(findings["check"], "collect.unreadable_file"))
    if rules.max_unreadable_exports is not None:
        most, n = rules.max_unreadable_exports, unread.num_rows
        shown = "; ".join(unread["message"].to_pylist()[:5]) + ("; …" if n > 5 else "")
        judge(
            "max_unreadable_exports",
            None,
            most,
            n,
            n <= most,
            f"{plural(n, 'export file')} not read (max {most})" + (f": {shown}" if n else ""),
        )
    if collected is None:
        return
    if rules.min_labels_per_annotator is not None:
        _labels_per_annotator(judge, rules.min_labels_per_annotator, collected, unread)
    if rules.min_labeled_images_fraction is not None and counts.images_delivered:
        wanted, frac = rules.min_labeled_images_fraction, collected.labeled_images / counts.images_delivered
        judge(
            "min_labeled_images_fraction",
            None,
            wanted,
            frac,
            frac >= wanted,
            f"{frac:.1%} of delivered images have a label (min {wanted:.1%})"
            if frac >= wanted
            else f"only {collected.labeled_images} of {counts.images_delivered} delivered images have a label "
            f"({frac:.1%}, below {wanted:.1%}): the rest ship as background (status unlabeled in "
            "index/images.parquet)",
        )


def _labels_per_annotator(judge: _Judge, least: int, collected: Collected, unread: pa.Table) -> None:
    """Judge min_labels_per_annotator: each configured annotator's labels collected, with why none came."""
    unread_by = _counts(unread["annotator"])
    for name, n in sorted(collected.by_annotator.items()):
        why = (
            f"; {plural(unread_by[name], 'export file')} of theirs not read"
            if unread_by.get(name)
            else "; no export of theirs under annotations/" + name + "/"
        )
        judge(
            "min_labels_per_annotator",
            name,
            least,
            n,
            n >= least,
            f"annotator {name}: {plural(n, 'label')} collected (min {least})"
            if n >= least
            else f"annotator {name}: {plural(n, 'label')} collected, below {least}{why} — the images assigned "
            "to them have none of their labels (index/assignments.parquet)",
        )


def _column(table: pa.Table | None, name: str) -> list:
    return table[name].to_pylist() if table is not None and name in table.column_names else []


def _annotator_rules(judge: _Judge, annotators: pa.Table | None, delivered: dict[str, int]) -> None:
    rules = judge.rules
    names = _column(annotators, "annotator")
    agreement = _column(annotators, "agreement_oks")
    mean = (
        float(np.mean([v for v in agreement if v is not None]))
        if any(v is not None for v in agreement)
        else None
    )
    judge(
        "min_mean_oks",
        None,
        rules.min_mean_oks,
        mean,
        mean is not None and mean >= rules.min_mean_oks,
        "no overlap images: mean agreement OKS not measured"
        if mean is None
        else f"mean agreement OKS {mean:.3f} below {rules.min_mean_oks:g}"
        if mean < rules.min_mean_oks
        else f"mean agreement OKS {mean:.3f} (min {rules.min_mean_oks:g})",
    )
    per_annotator = (
        (
            "min_agreement_oks",
            rules.min_agreement_oks,
            "agreement_oks",
            "n_overlap",
            "agreement OKS with the others",
            "overlap",
        ),
        ("min_gold_oks", rules.min_gold_oks, "gold_oks", "n_gold", "gold OKS", "gold"),
    )
    for rule, least, column, n_column, what, kind in per_annotator:
        if least is None:
            continue
        n_measured = _column(annotators, n_column) or [None] * len(names)
        for name, value, n in zip(names, _column(annotators, column) or [None] * len(names), n_measured):
            on = f" on {n} {kind} instances" if n is not None else ""
            if value is None:
                message = f"annotator {name}: no {kind} instances, {what} not measured"
            elif value >= least:
                message = f"annotator {name}: {what} {value:.3f}{on} (min {least:g})"
            else:
                message = (
                    f"annotator {name}: {what} {value:.3f}{on}, below {least:g} — their "
                    f"{plural(delivered.get(name, 0), 'instance')} delivered (annotator {name} in "
                    f"index/annotations.parquet), their findings in qa/findings.parquet"
                )
            judge(rule, name, least, value, value is not None and value >= least, message)


def _rate_rules(judge: _Judge, counts: Counts, findings: pa.Table) -> None:
    per = max(counts.instances_delivered, 1)
    for check, most in judge.rules.max_rate.items():
        of_check = findings.filter(pc.equal(findings["check"], check))
        n = of_check.num_rows
        rate = n / per
        by_annotator = ", ".join(f"{a} {k}" for a, k in sorted(_counts(of_check["annotator"]).items()))
        who = f" ({by_annotator})" if by_annotator else ""
        message = f"{check}: {plural(n, 'finding')}{who}, {rate:.3f} per delivered instance" + (
            f" (max {most:g})" if rate <= most else f", above {most:g} — listed in qa/findings.parquet"
        )
        judge("max_rate", check, most, rate, rate <= most, message)


def _coverage_rule(judge: _Judge, findings: pa.Table) -> None:
    most = judge.rules.max_coverage_bins_short
    if most is None:
        return
    short = findings.filter(pc.equal(findings["check"], "qa.pose_coverage"))["message"].to_pylist()
    detail = ": " + "; ".join(short) if short else ""
    judge(
        "max_coverage_bins_short",
        None,
        most,
        len(short),
        len(short) <= most,
        f"{plural(len(short), 'pose coverage target')} not met (max {most}){detail}",
    )


def _rework_rule(judge: _Judge, rate: float | None) -> None:
    most = judge.rules.max_rework_rate
    if most is not None:
        said = f"{rate:.1%}" if rate is not None else "an unknown share"
        judge(
            "max_rework_rate",
            None,
            most,
            rate,
            rate is not None and rate <= most,
            f"{said} of the labeled images were sent back for rework (max {most:.1%}; tasks/rework/ledger.json)",
        )


def _counts(column: pa.ChunkedArray) -> dict[str, int]:
    counted = pc.value_counts(column.drop_null())
    return dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()))


def _findings_by_check(findings: pa.Table) -> dict[str, dict[str, int]]:
    if not findings.num_rows:
        return {}
    grouped = findings.group_by(["check", "severity"]).aggregate([([], "count_all")]).to_pylist()
    by_check: dict[str, dict[str, int]] = {}
    for row in grouped:
        by_check.setdefault(row["check"], {"error": 0, "warning": 0, "info": 0})[row["severity"]] = row[
            "count_all"
        ]
    return dict(sorted(by_check.items()))
