"""The sign-off rules a client sets in `qa:`: each rule at its boundary (met / conditional / fail),
the verdict as the worst outcome, the config's validation, and the demo batch's verdict naming the
annotator who fell below the gold threshold."""

from __future__ import annotations

import warnings

import pyarrow as pa
import pytest

from kpdeliver.config import ConfigError, DeprecatedConfigKey, QAThresholds, config_from_dict
from kpdeliver.findings import concat_findings, empty_findings, findings_for
from kpdeliver.release.signoff import Counts, signoff


def counts(*, delivered: int = 100, quarantined: int = 0, instances_in: int = 100, errors: int = 0) -> Counts:
    return Counts(
        images_listed=10,
        images_delivered=10,
        images_quarantined=0,
        images_rejected_at_ingest=0,
        instances_in=instances_in,
        instances_delivered=delivered,
        instances_quarantined=quarantined,
        instances_review_only=0,
        splits={"train": 10},
        delivered_error_findings=errors,
        findings=0,
    )


def scorecards(**columns) -> pa.Table:
    return pa.table({"annotator": ["ann_a", "ann_b"], **columns})


# Rules that judge nothing in a test unless it sets them: only the rule under test speaks.
QUIET = {
    "max_rate": {},
    "max_coverage_bins_short": None,
    "min_agreement_oks": None,
    "min_gold_oks": None,
    "min_instances_delivered": None,
    "max_unreadable_exports": None,
    "min_labels_per_annotator": None,
    "min_labeled_images_fraction": None,
}


def rules(**kw) -> QAThresholds:
    return QAThresholds.model_validate({**QUIET, **kw})


def judged(verdict, rule: str, subject=None):
    [r] = [r for r in verdict.rules if r.rule == rule and r.subject == subject]
    return r


@pytest.mark.parametrize(
    ("errors", "severity", "outcome"),
    [(2, None, "pass"), (3, None, "fail"), (3, "conditional", "conditional")],
)
def test_delivered_error_findings_at_the_boundary(errors, severity, outcome):
    r = rules(max_error_findings=2, **({"severity": {"max_error_findings": severity}} if severity else {}))
    v = signoff(r, counts(errors=errors), empty_findings(), None)
    got = judged(v, "max_error_findings")
    assert (got.threshold, got.measured, got.outcome) == (2, errors, outcome)
    assert v.verdict == outcome


@pytest.mark.parametrize(("quarantined", "outcome"), [(10, "pass"), (11, "fail")])
def test_quarantined_fraction_at_the_boundary(quarantined, outcome):
    v = signoff(rules(max_quarantined_fraction=0.1), counts(quarantined=quarantined), empty_findings(), None)
    got = judged(v, "max_quarantined_fraction")
    assert (got.measured, got.outcome, v.verdict) == (quarantined / 100, outcome, outcome)
    assert f"{quarantined}.0% of instances quarantined (max 10.0%)" == got.message


@pytest.mark.parametrize(("agreement", "outcome"), [([0.5, 1.0], "pass"), ([0.5, 0.99], "fail")])
def test_mean_agreement_at_the_boundary(agreement, outcome):
    v = signoff(rules(min_mean_oks=0.75), counts(), empty_findings(), scorecards(agreement_oks=agreement))
    assert (judged(v, "min_mean_oks").outcome, v.verdict) == (outcome, outcome)


def test_mean_agreement_without_overlap_is_not_measured_and_does_not_decide():
    v = signoff(rules(), counts(), empty_findings(), scorecards(agreement_oks=[None, None]))
    got = judged(v, "min_mean_oks")
    assert (got.measured, got.outcome, v.verdict) == (None, "not_measured", "pass")


def test_gold_oks_is_judged_per_annotator_and_names_the_one_below():
    cards = scorecards(gold_oks=[0.75, 0.686], n_gold=[4, 3])
    v = signoff(rules(min_gold_oks=0.75), counts(), empty_findings(), cards, {"ann_a": 30, "ann_b": 12})
    assert judged(v, "min_gold_oks", "ann_a").outcome == "pass"  # exactly at the threshold
    low = judged(v, "min_gold_oks", "ann_b")
    assert (low.threshold, low.measured, low.outcome) == (0.75, 0.686, "conditional")
    assert v.verdict == "conditional"
    assert v.reasons == (low.message,)
    assert low.message.startswith("annotator ann_b: gold OKS 0.686 on 3 gold instances, below 0.75")
    assert "their 12 instances delivered" in low.message


def test_gold_oks_below_fails_when_the_client_says_so_and_the_mean_alone_would_pass():
    cards = scorecards(gold_oks=[0.99, 0.70], n_gold=[4, 3])
    r = rules(min_gold_oks=0.75, severity={"min_gold_oks": "fail"})
    v = signoff(r, counts(), empty_findings(), cards)
    assert v.verdict == "fail" and judged(v, "min_gold_oks", "ann_b").outcome == "fail"


def test_an_annotator_without_gold_is_listed_as_not_measured():
    v = signoff(
        rules(min_gold_oks=0.75), counts(), empty_findings(), scorecards(gold_oks=[0.9, None], n_gold=[3, 0])
    )
    got = judged(v, "min_gold_oks", "ann_b")
    assert (got.measured, got.outcome, v.verdict) == (None, "not_measured", "pass")
    assert got.message == "annotator ann_b: no gold instances, gold OKS not measured"


@pytest.mark.parametrize(("value", "outcome"), [(0.6, "pass"), (0.5999, "conditional")])
def test_agreement_per_annotator_at_the_boundary(value, outcome):
    cards = scorecards(agreement_oks=[0.9, value], n_overlap=[5, 5])
    v = signoff(rules(min_agreement_oks=0.6, min_mean_oks=0.0), counts(), empty_findings(), cards)
    assert judged(v, "min_agreement_oks", "ann_b").outcome == outcome and v.verdict == outcome


def swaps(n: int) -> pa.Table:
    return findings_for("qa.left_right_swap", message="swapped", annotator="ann_b", n=n)


@pytest.mark.parametrize(
    ("n", "severity", "outcome"), [(1, None, "pass"), (2, None, "conditional"), (2, "fail", "fail")]
)
def test_a_checks_rate_per_delivered_instance_at_the_boundary(n, severity, outcome):
    r = rules(
        max_rate={"qa.left_right_swap": 0.01}, **({"severity": {"max_rate": severity}} if severity else {})
    )
    v = signoff(r, counts(delivered=100), swaps(n), None)
    got = judged(v, "max_rate", "qa.left_right_swap")
    assert (got.threshold, got.measured, got.outcome, v.verdict) == (0.01, n / 100, outcome, outcome)
    assert f"({'ann_b'} {n})" in got.message


def test_a_zero_rate_accepts_no_finding_of_that_check_and_ignores_other_checks():
    r = rules(max_rate={"qa.left_right_swap": 0.0})
    other = findings_for("qa.gold_mismatch", message="off", annotator="ann_a", n=5)
    assert signoff(r, counts(), other, None).verdict == "pass"
    assert signoff(r, counts(), concat_findings([other, swaps(1)]), None).verdict == "conditional"


@pytest.mark.parametrize(
    ("short", "most", "outcome"), [(0, 0, "pass"), (1, 0, "conditional"), (1, 1, "pass")]
)
def test_coverage_targets_at_the_boundary(short, most, outcome):
    f = findings_for("qa.pose_coverage", message=[f"no pose {i}" for i in range(short)], n=short)
    v = signoff(rules(max_coverage_bins_short=most), counts(), f, None)
    got = judged(v, "max_coverage_bins_short")
    assert (got.measured, got.outcome, v.verdict) == (short, outcome, outcome)
    if outcome == "conditional":
        assert "no pose 0" in got.message


def test_a_rule_set_to_null_is_not_judged():
    v = signoff(
        rules(),
        counts(),
        findings_for("qa.pose_coverage", message="none", n=3),
        scorecards(gold_oks=[0.1, 0.1]),
    )
    assert {r.rule for r in v.rules} == {"max_error_findings", "max_quarantined_fraction", "min_mean_oks"}
    assert v.verdict == "pass"


def test_the_verdict_is_the_worst_outcome_and_reasons_list_failures_first():
    cards = scorecards(gold_oks=[0.5, 0.9], n_gold=[2, 2])
    v = signoff(rules(min_gold_oks=0.75), counts(quarantined=50), empty_findings(), cards)
    assert v.verdict == "fail"
    assert v.reasons[0].startswith("50.0% of instances quarantined") and v.reasons[1].startswith(
        "annotator ann_a"
    )


def test_signoff_dict_lists_every_rule_with_threshold_measured_and_outcome():
    v = signoff(QAThresholds(), counts(), swaps(1), scorecards(agreement_oks=[0.9, 0.8], gold_oks=[0.9, 0.6]))
    d = v.to_dict()
    assert list(d) == ["verdict", "reasons", "thresholds", "rules", "findings_by_check"]
    assert d["verdict"] == "conditional" and d["thresholds"] == QAThresholds().model_dump(mode="json")
    assert all(
        set(r) == {"rule", "subject", "threshold", "measured", "outcome", "message"} for r in d["rules"]
    )
    assert {(r["rule"], r["subject"]) for r in d["rules"] if r["outcome"] == "conditional"} == {
        ("min_gold_oks", "ann_b"),
        ("max_rate", "qa.left_right_swap"),
    }
    assert d["findings_by_check"] == {"qa.left_right_swap": {"error": 1, "warning": 0, "info": 0}}


# --- the config ---------------------------------------------------------------------------------


def config(qa: dict):
    return config_from_dict(
        {"client": "c", "dataset": "d", "source": "s", "releases": "r", "annotators": ["a"], "qa": qa},
        origin="client.yaml",
    )


def test_the_defaults_are_a_demanding_clients():
    d = QAThresholds()
    assert (d.min_mean_oks, d.min_agreement_oks, d.min_gold_oks, d.max_error_findings) == (
        0.75,
        0.75,
        0.75,
        0,
    )
    assert d.max_rate["qa.left_right_swap"] == 0.0 and d.max_coverage_bins_short == 0
    assert d.severity.min_gold_oks.value == "conditional" and d.severity.max_error_findings.value == "fail"


def test_old_keys_keep_working():
    with pytest.warns(DeprecatedConfigKey, match="qa.min_oks is deprecated"):
        cfg = config({"min_oks": 0.6, "max_error_findings": 3, "max_quarantined_fraction": 0.2})
    assert (cfg.qa.min_mean_oks, cfg.qa.max_error_findings, cfg.qa.max_quarantined_fraction) == (0.6, 3, 0.2)
    assert cfg.qa.min_gold_oks == 0.75  # new rules keep their defaults


def test_a_partial_severity_map_keeps_the_other_defaults():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = config({"severity": {"min_gold_oks": "fail"}})
    assert cfg.qa.severity.min_gold_oks.value == "fail" and cfg.qa.severity.max_rate.value == "conditional"


@pytest.mark.parametrize(
    ("qa", "says"),
    [
        ({"max_rate": {"qa.left_rigth_swap": 0.0}}, "unknown check id 'qa.left_rigth_swap'"),
        ({"max_rate": {"qa.left_right_swap": -0.1}}, "qa.left_right_swap must be 0 or more"),
        ({"severity": {"min_gold_oks": "maybe"}}, "qa.severity.min_gold_oks"),
        ({"severity": {"min_gold": "fail"}}, "qa.severity.min_gold"),
        ({"min_gold_oks": 1.5}, "qa.min_gold_oks"),
    ],
)
def test_bad_rules_are_refused_with_the_field_named(qa, says):
    with pytest.raises(ConfigError, match=says.replace(".", r"\.")):
        config(qa)


# --- the demo batch ---------------------------------------------------------------------------


@pytest.mark.slow
def test_the_demo_batch_is_conditional_naming_the_annotator_below_gold(tmp_path):
    """The flow's own tasks on the demo batch (seed 0, the CLI's): the annotator whose planted
    left/right swap sinks their gold OKS is named in the verdict's reasons."""
    import orjson

    from kpdeliver.config import load_config
    from kpdeliver.synth import make_demo_batch
    from tests.release_helpers import package_demo

    config = load_config(make_demo_batch(tmp_path, seed=0))
    truth = orjson.loads((tmp_path / "truth.json").read_bytes())
    [swapper] = [m["annotator"] for m in truth["mistakes"] if m["kind"] == "left_right_swap"]
    plan, _ = package_demo(config)

    assert plan.verdict.verdict in ("conditional", "fail")
    gold = judged(plan.verdict, "min_gold_oks", swapper)
    assert gold.outcome == "conditional" and gold.measured < 0.75
    assert any(r.startswith(f"annotator {swapper}: gold OKS") for r in plan.verdict.reasons)
    written = orjson.loads(plan.files["qa/signoff.json"])
    assert written["verdict"] == plan.verdict.verdict and gold.message in written["reasons"]
    assert f"annotator {swapper}: gold OKS" in plan.files["qa/report.html"].decode()
