"""Everything the report template shows, computed once: every count on the page comes from the one
`FindingCounts` pass over the findings, so the check table, the annotator table, the scorecards and
the keypoint view cannot disagree."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kpdeliver.config import DeepQASettings
from kpdeliver.model import Dataset
from kpdeliver.report import plots
from kpdeliver.report.changes import change_counts
from kpdeliver.report.gallery import Gallery, Picture, random_delivered, worst_findings
from kpdeliver.report.inputs import ReportHeader, ReportInputs
from kpdeliver.report.rules import MEANINGS, row_rule_suites, signoff_rows
from kpdeliver.report.titles import FACT_LABELS, check_title

MAX_LISTED = 500
MAX_CHANGES_LISTED = 40
SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class FindingCounts:
    """Counts of findings by check, by annotator and by keypoint, each split by severity."""

    total: int
    by_severity: dict[str, int]
    by_check: dict[str, Counter]
    by_annotator: dict[str, Counter]
    by_keypoint: dict[str, Counter]
    annotator_check: Counter  # (annotator, check) -> findings of any severity

    @classmethod
    def of(cls, findings: pa.Table) -> FindingCounts:
        sev = findings["severity"].to_pylist()
        groups: dict[str, dict[str, Counter]] = {"check": {}, "annotator": {}, "keypoint": {}}
        for key, table in groups.items():
            for k, s in zip(findings[key].to_pylist(), sev):
                if k is not None:
                    table.setdefault(k, Counter())[s] += 1
        pairs = Counter(zip(findings["annotator"].to_pylist(), findings["check"].to_pylist()))
        return cls(
            len(sev), dict(Counter(sev)), groups["check"], groups["annotator"], groups["keypoint"], pairs
        )


@dataclass(frozen=True)
class Verdict:
    word: str  # PASS | CONDITIONAL | FAIL
    css: str
    headline: str
    reasons: list[str]
    notes: list[str]  # what a reader should know even when the verdict passes
    meaning: str = ""  # what the verdict means for the client (a delivery only)
    next_step: str = ""


@dataclass(frozen=True)
class Scorecard:
    name: str
    instances: int | None
    errors: int
    warnings: int
    gold_n: int | None
    gold_oks: float | None
    below_gold: bool
    agreement_n: int | None
    agreement: float | None
    kappa: float | None
    gold_kappa: float | None
    swaps: int
    drift_start: int | None
    gold_meter: str = ""
    agreement_meter: str = ""


@dataclass
class ReportContext:
    title: str
    header: ReportHeader | None
    verdict: Verdict
    rules: list[dict]  # every sign-off rule and subject, met ones too
    facts: list[tuple[str, str]]
    counts: FindingCounts
    checks: list[dict]
    annotators: list[dict]
    scorecards: list[Scorecard]
    min_gold_oks: float | None
    keypoint_annotators: list[str]
    keypoint_rows: list[dict]
    coverage_chart: str
    worst: list[Picture]
    sample: list[Picture]
    changes: dict | None
    validation: list[dict]
    listed: list[dict]
    not_listed: int
    sigmas: list[dict] | None = None  # measured OKS sigmas per keypoint (the sigmas.html.j2 partial)


def _fmt_fact(value) -> str:
    if isinstance(value, bool) or value is None:
        return "yes" if value else "no" if value is not None else "—"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt_fact(v)}" for k, v in value.items()) or "—"
    return str(value)


def _verdict(
    summary: dict, counts: FindingCounts, scorecards: list[Scorecard], min_gold_oks: float | None
) -> Verdict:
    n_err, n_warn = counts.by_severity.get("error", 0), counts.by_severity.get("warning", 0)
    reasons = [str(r) for r in summary.get("reasons") or []]
    notes = [
        f"{s.name} scored {s.gold_oks:.3f} OKS against the gold labels, below the {min_gold_oks:g} "
        f"the client asked for"
        for s in scorecards
        if s.below_gold
    ]
    notes += [
        f"{s.name} made {s.swaps} left/right swap{'s' if s.swaps != 1 else ''}" for s in scorecards if s.swaps
    ]
    if "verdict" in summary:  # a delivery: error items were held back in quarantine, not delivered
        word = str(summary["verdict"]).upper()
        headline = (
            "Every sign-off threshold is met." if not reasons else "The sign-off thresholds are not met."
        )
        held = summary.get("instances_quarantined")
        if held:  # not the error count: one label can have several errors, review-only labels none delivered
            headline += (
                f" {held:,} label{'s' if held != 1 else ''} with errors {'were' if held != 1 else 'was'} held "
                "back in quarantine and {} not in this delivery.".format("are" if held != 1 else "is")
            )
        elif n_err and held is None:
            headline += f" {n_err:,} error finding{'s' if n_err != 1 else ''}; the labels they name are not delivered."
        return Verdict(word, word.lower(), headline, reasons, notes)
    if n_err == 0:
        return Verdict("PASS", "pass", f"No error-severity findings ({n_warn:,} warnings).", reasons, notes)
    return Verdict(
        "FAIL", "fail", f"{n_err:,} error-severity findings ({n_warn:,} warnings).", reasons, notes
    )


def _value(row: dict, key: str):
    v = row.get(key)
    return None if v is None or (isinstance(v, float) and not np.isfinite(v)) else v


def _scorecards(
    annotators: pa.Table | None, counts: FindingCounts, min_gold_oks: float | None
) -> list[Scorecard]:
    if annotators is None or annotators.num_rows == 0:
        return []
    out = []
    for row in annotators.to_pylist():
        name = row["annotator"]
        c = counts.by_annotator.get(name, Counter())
        gold = _value(row, "gold_oks")
        below = gold is not None and min_gold_oks is not None and gold < min_gold_oks
        agreement = _value(row, "agreement_oks")
        # the table's own counts (qa/annotators.parquet, the flow's artifact) when it has them: one count
        out.append(
            Scorecard(
                name=name,
                instances=_value(row, "n_instances"),
                errors=row.get("n_error", c["error"]),
                warnings=row.get("n_warning", c["warning"]),
                gold_n=_value(row, "n_gold"),
                gold_oks=gold,
                below_gold=below,
                agreement_n=_value(row, "n_overlap"),
                agreement=agreement,
                kappa=_value(row, "visibility_kappa"),
                gold_kappa=_value(row, "gold_visibility_kappa"),
                swaps=row.get("n_left_right_swap", counts.annotator_check[(name, "qa.left_right_swap")]),
                drift_start=_value(row, "drift_start"),
                gold_meter=plots.meter(gold, target=min_gold_oks, short=below),
                agreement_meter=plots.meter(agreement, target=min_gold_oks),
            )
        )
    return out


def _keypoint_view(
    keypoints: pa.Table | None, counts: FindingCounts, schema_names: list[str], n_instances: int | None
) -> tuple[list[str], list[dict]]:
    annotators: list[str] = []
    by_kp: dict[str, dict[str, float | None]] = {}
    kappa: dict[str, list[float]] = {}
    if keypoints is not None and keypoints.num_rows:
        annotators = list(dict.fromkeys(keypoints["annotator"].to_pylist()))
        for r in keypoints.to_pylist():
            by_kp.setdefault(r["keypoint"], {})[r["annotator"]] = _value(r, "agreement")
            if _value(r, "visibility_kappa") is not None:
                kappa.setdefault(r["keypoint"], []).append(r["visibility_kappa"])
    names = schema_names or sorted(set(by_kp) | set(counts.by_keypoint))
    rows = []
    for k in names:
        cells = [
            {
                "annotator": a,
                "value": by_kp.get(k, {}).get(a),
                "colour": plots.heat_colour(by_kp.get(k, {}).get(a)),
            }
            for a in annotators
        ]
        c = counts.by_keypoint.get(k, Counter())
        n = c["error"] + c["warning"]
        rows.append(
            {
                "name": k,
                "cells": cells,
                "kappa": float(np.mean(kappa[k])) if kappa.get(k) else None,
                "errors": c["error"],
                "warnings": c["warning"],
                "per100": 100.0 * n / n_instances if n_instances else None,
            }
        )
    return annotators, rows


def _coverage_chart(delivered: Dataset | None, deep_qa: DeepQASettings | None) -> str:
    if delivered is None or not len(delivered.instances):
        return ""
    from kpdeliver.qa.coverage import coverage  # scipy-free, but only needed here

    s = deep_qa or DeepQASettings()
    bins = coverage(
        delivered.instances.keypoints,
        delivered.schema,
        targets=s.coverage_targets,
        generic_bins=s.generic_bins,
    )
    if not bins:
        return ""
    vmax = max(*(b.count for b in bins), *(b.target.min_count for b in bins), 1)
    return plots.bar_chart(
        [
            plots.Bar(
                b.target.name,
                b.count,
                f"{b.count} (want {b.target.min_count}+)",
                target=b.target.min_count,
                short=b.count < b.target.min_count,
            )
            for b in bins
        ],
        vmax=vmax * 1.05,
        label_width=220,
        width=560,
        text_width=110,
    )


def _listed(findings: pa.Table) -> tuple[list[dict], int]:
    if findings.num_rows == 0:
        return [], 0
    rank = pc.index_in(findings["severity"], pa.array(list(SEVERITIES)))
    order = pc.sort_indices(
        pa.table({"r": rank, "c": findings["check"]}), sort_keys=[("r", "ascending"), ("c", "ascending")]
    )
    shown = findings.take(order.slice(0, MAX_LISTED)).to_pylist()
    for f in shown:
        f["title"] = check_title(f["check"])
    return shown, findings.num_rows - len(shown)


def _facts(inputs: ReportInputs, counts: FindingCounts) -> list[tuple[str, str]]:
    facts_in = {k: v for k, v in inputs.summary.items() if k not in ("verdict", "reasons")}
    delivered = inputs.delivered
    if delivered is not None and "images_delivered" in facts_in:  # background: delivered without a label
        facts_in["images_background"] = int(
            (~np.isin(delivered.images.id, delivered.instances.image_id)).sum()
        )
    facts_in["findings"] = counts.total
    return [(FACT_LABELS.get(k, k.replace("_", " ")), _fmt_fact(v)) for k, v in facts_in.items()]


def _with_meaning(verdict: Verdict, header: ReportHeader | None) -> Verdict:
    meaning, step = MEANINGS.get(verdict.css, ("", ""))
    client = header.client if header is not None else "the client"
    return replace(verdict, meaning=meaning.format(client=client), next_step=step)


def build_context(inputs: ReportInputs) -> ReportContext:
    """The report's content (see `ReportInputs`; annotators are anonymised before this when asked)."""
    findings, reviewed, delivered = inputs.findings, inputs.reviewed, inputs.delivered
    counts = FindingCounts.of(findings)
    cards = _scorecards(inputs.annotators, counts, inputs.min_gold_oks)
    shown = reviewed or delivered
    schema_names = list(shown.schema.keypoints) if shown is not None else []
    n_reviewed = len(reviewed.instances) if reviewed is not None else None
    kp_annotators, kp_rows = _keypoint_view(inputs.keypoints, counts, schema_names, n_reviewed)
    worst, sample = _pictures(inputs)
    listed, not_listed = _listed(findings)
    verdict_in = inputs.summary
    if inputs.signoff is not None:
        verdict_in = {
            **inputs.summary,
            "verdict": inputs.signoff["verdict"],
            "reasons": inputs.signoff.get("reasons", []),
        }
    verdict = _verdict(verdict_in, counts, cards, inputs.min_gold_oks)
    return ReportContext(
        title=inputs.title,
        header=inputs.header,
        verdict=_with_meaning(verdict, inputs.header) if "verdict" in verdict_in else verdict,
        rules=signoff_rows(inputs.signoff),
        facts=_facts(inputs, counts),
        counts=counts,
        checks=_check_rows(counts),
        annotators=_annotator_rows(counts),
        scorecards=cards,
        min_gold_oks=inputs.min_gold_oks,
        keypoint_annotators=kp_annotators,
        keypoint_rows=kp_rows,
        coverage_chart=_coverage_chart(delivered, inputs.deep_qa),
        worst=worst,
        sample=sample,
        changes=_release_notes(inputs),
        validation=row_rule_suites(inputs.validation_results),
        listed=listed,
        not_listed=not_listed,
        sigmas=inputs.sigmas.to_pylist() if inputs.sigmas is not None and inputs.sigmas.num_rows else None,
    )


def _check_rows(counts: FindingCounts) -> list[dict]:
    """Per check: its title and counts by severity, most errors first."""
    return [
        {"id": c, "title": check_title(c), **{s: n[s] for s in SEVERITIES}, "total": sum(n.values())}
        for c, n in sorted(
            counts.by_check.items(), key=lambda kv: (-kv[1]["error"], -sum(kv[1].values()), kv[0])
        )
    ]


def _annotator_rows(counts: FindingCounts) -> list[dict]:
    """Per annotator: counts by severity, by name."""
    return [
        {"name": a, **{s: n[s] for s in SEVERITIES}, "total": sum(n.values())}
        for a, n in sorted(counts.by_annotator.items())
    ]


def _pictures(inputs: ReportInputs) -> tuple[list, list]:
    """The worst findings' pictures and a random sample of delivered images (none without reviewed data)."""
    worst, sample = [], []
    reviewed, delivered = inputs.reviewed, inputs.delivered
    if reviewed is not None:
        gallery = Gallery(reviewed, inputs.image_bytes)
        worst = worst_findings(gallery, inputs.findings, inputs.n_pictures)
        if delivered is not None:
            sample = random_delivered(gallery, delivered, inputs.n_pictures, seed=inputs.seed)
    return worst, sample


def _release_notes(inputs: ReportInputs) -> dict | None:
    """What changed since the previous release, its first MAX_CHANGES_LISTED rows listed (None: no notes)."""
    if inputs.changes is None:
        return None
    shown = inputs.changes.slice(0, MAX_CHANGES_LISTED).to_pylist()
    return {
        "previous": inputs.previous_version,
        "counts": change_counts(inputs.changes),
        "rows": shown,
        "not_listed": inputs.changes.num_rows - len(shown),
    }
