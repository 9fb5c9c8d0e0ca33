"""The report's rule tables and what a verdict means: every sign-off rule with its threshold,
measured value and outcome (qa/signoff.json's `rules`, met ones too), the row rules' results with
each rule once and a warning-only rule counted as a warning, and the plain words of the verdict box."""

from __future__ import annotations

from kpdeliver.findings import CHECKS
from kpdeliver.report.titles import check_title

RULE_TITLES = {
    "min_mean_oks": "mean agreement between annotators (OKS)",
    "min_agreement_oks": "each annotator's agreement with the others (OKS)",
    "min_gold_oks": "each annotator's OKS against the gold labels",
    "max_error_findings": "error findings left on delivered items",
    "max_quarantined_fraction": "share of labels held back",
    "max_rate": "findings of a check per delivered label",
    "max_coverage_bins_short": "pose coverage targets not met",
    "min_instances_delivered": "labels delivered",
    "max_unreadable_exports": "export files not read",
    "min_labels_per_annotator": "labels collected from each annotator",
    "min_labeled_images_fraction": "share of delivered images with a label",
}
OUTCOME_WORDS = {
    "pass": "met",
    "conditional": "not met: conditional",
    "fail": "not met: fail",
    "not_measured": "not measured",
}

# What each verdict means for the client and what happens next ({client}: the client's name).
MEANINGS = {
    "pass": (
        "Every sign-off rule {client} set is met: the release can be used as delivered.",
        "Verify the release (kpdeliver verify, or the manifest's sha256 and signature) and use it. "
        "Nothing is owed on either side for this batch.",
    ),
    "conditional": (
        "The release is delivered, but some of the rules {client} set as conditional are not met "
        "(listed below). Everything delivered passed the row rules; the exceptions say which labels "
        "or annotators fall short and where they are.",
        "Review the exceptions. Accept the release as it is, or ask for the named items to be "
        "relabelled: they come back as the next version of this dataset, with release notes.",
    ),
    "fail": (
        "The release does NOT meet the rules {client} set as failing (listed below). It is published so "
        "that every item can be inspected, but it is not fit to be used as delivered.",
        "Do not train on this release. We relabel what the failed rules name and deliver a new version; "
        "the release notes of that version list every change.",
    ),
}


def _fmt(rule: str, value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and ("fraction" in rule or rule == "max_rate") and value <= 1:
        return f"{value:.1%}" if "fraction" in rule else f"{value:.3f}"
    if isinstance(value, float):
        return f"{value:.3f}" if value != int(value) else f"{int(value)}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def signoff_rows(signoff: dict | None) -> list[dict]:
    """One row per rule and subject: plain title, subject, threshold, measured value, outcome, message.
    Not met first (fail, then conditional), then met, then not measured; else in the sign-off's order."""
    if not signoff:
        return []
    order = {"fail": 0, "conditional": 1, "pass": 2, "not_measured": 3}
    rows = []
    for r in signoff.get("rules") or []:
        rule, subject = r.get("rule", ""), r.get("subject")
        title = RULE_TITLES.get(rule, rule.replace("_", " "))
        if rule == "max_rate" and subject:
            subject = f"{check_title(subject)} ({subject})"
        rows.append(
            {
                "rule": rule,
                "title": title,
                "subject": subject or "the delivery",
                "threshold": _fmt(rule, r.get("threshold")),
                "measured": _fmt(rule, r.get("measured")),
                "outcome": r.get("outcome", ""),
                "outcome_words": OUTCOME_WORDS.get(r.get("outcome"), r.get("outcome")),
                "message": r.get("message", ""),
            }
        )
    return sorted(rows, key=lambda row: order.get(row["outcome"], 4))


def row_rule_suites(results: list[dict] | None) -> list[dict]:
    """The row rules per suite, each rule once (a rule run on two columns of one table is one rule,
    with its most failing rows), split into passed, warnings (failing rows of a check that is a
    warning or note: delivered and reported) and failed (error rows: held back)."""
    if not results:
        return []
    suites = []
    for s in results:
        rules: dict[tuple, dict] = {}
        for e in s.get("expectations") or []:
            key = (e.get("expectation"), e.get("check"))
            if key not in rules or (e.get("unexpected_count") or 0) > (
                rules[key].get("unexpected_count") or 0
            ):
                rules[key] = e
        rows = []
        for e in rules.values():
            n = e.get("unexpected_count") or 0
            severity = CHECKS[e["check"]].value if e.get("check") in CHECKS else "error"
            state = "passed" if n == 0 else "failed" if severity == "error" else "warning"
            rows.append(
                {
                    "title": check_title(e["check"]) if e.get("check") else e.get("expectation"),
                    "check": e.get("check") or e.get("expectation"),
                    "state": state,
                    "failing": n,
                    "rows": e.get("element_count") or 0,
                    "severity": severity,
                }
            )
        suites.append(
            {
                "suite": s.get("suite", ""),
                "rules": rows,
                "passed": sum(r["state"] == "passed" for r in rows),
                "warnings": sum(r["state"] == "warning" for r in rows),
                "failed": sum(r["state"] == "failed" for r in rows),
            }
        )
    return suites
