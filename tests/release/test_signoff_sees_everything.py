"""The sign-off sees what never reached the delivery: an empty delivery, export files not read, an
annotator none of whose labels were collected, a delivery of mostly unlabeled images. Before, a batch
whose exports could not be read at all signed off `pass` (max_error_findings counts only errors on
delivered items)."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from kpdeliver.config import QAThresholds, load_config
from kpdeliver.findings import concat_findings, empty_findings, findings_for
from kpdeliver.release.signoff import Collected, Counts, signoff
from kpdeliver.synth import make_demo_batch
from tests.release_helpers import package_demo

UNREAD = "annotations/ann_b/export.json: export of ann_b not used: not a keypoint export we read"


def counts(*, delivered: int, images: int = 10) -> Counts:
    return Counts(
        images_listed=images,
        images_delivered=images,
        images_quarantined=0,
        images_rejected_at_ingest=0,
        instances_in=delivered,
        instances_delivered=delivered,
        instances_quarantined=0,
        instances_review_only=0,
        splits={"train": images},
        delivered_error_findings=0,
        findings=0,
    )


def unreadable() -> object:
    return findings_for(
        "collect.unreadable_file",
        message=UNREAD,
        annotator="ann_b",
        source="annotations/ann_b/export.json",
        n=1,
    )


def judged(verdict, rule: str, subject=None):
    [r] = [r for r in verdict.rules if r.rule == rule and r.subject == subject]
    return r


def test_an_empty_delivery_fails_in_plain_words():
    v = signoff(QAThresholds(), counts(delivered=0, images=0), empty_findings(), None)
    got = judged(v, "min_instances_delivered")
    assert (got.measured, got.outcome, v.verdict) == (0, "fail", "fail")
    assert got.message == (
        "nothing delivered, below 1: 0 came in from readable exports, 0 held back "
        "(qa/quarantine.parquet), 0 review-only"
    )


def test_an_export_file_not_read_fails_naming_it_and_can_be_made_conditional():
    v = signoff(QAThresholds(), counts(delivered=50), unreadable(), None)
    got = judged(v, "max_unreadable_exports")
    assert (got.measured, got.outcome, v.verdict) == (1, "fail", "fail")
    assert got.message == f"1 export file not read (max 0): {UNREAD}"
    lenient = QAThresholds.model_validate(
        {"max_unreadable_exports": 0, "severity": {"max_unreadable_exports": "conditional"}}
    )
    assert signoff(lenient, counts(delivered=50), unreadable(), None).verdict == "conditional"


def test_an_annotator_with_no_usable_export_fails_by_name():
    collected = Collected(by_annotator={"ann_a": 40, "ann_b": 0, "ann_c": 0}, labeled_images=10)
    v = signoff(
        QAThresholds(), counts(delivered=40), concat_findings([unreadable()]), None, collected=collected
    )
    assert judged(v, "min_labels_per_annotator", "ann_a").outcome == "pass"
    b, c = judged(v, "min_labels_per_annotator", "ann_b"), judged(v, "min_labels_per_annotator", "ann_c")
    assert (b.outcome, c.outcome, v.verdict) == ("fail", "fail", "fail")
    assert b.message == (
        "annotator ann_b: 0 labels collected, below 1; 1 export file of theirs not read — the images "
        "assigned to them have none of their labels (index/assignments.parquet)"
    )
    assert "; no export of theirs under annotations/ann_c/ —" in c.message


@pytest.mark.parametrize(("labeled", "outcome"), [(5, "pass"), (4, "conditional")])
def test_a_delivery_of_mostly_unlabeled_images_is_conditional(labeled, outcome):
    collected = Collected(by_annotator={"ann_a": 40}, labeled_images=labeled)
    v = signoff(QAThresholds(), counts(delivered=40), empty_findings(), None, collected=collected)
    got = judged(v, "min_labeled_images_fraction")
    assert (got.measured, got.outcome) == (labeled / 10, outcome)
    if outcome != "pass":
        assert got.message == (
            f"only {labeled} of 10 delivered images have a label (40.0%, below 50.0%): the rest "
            "ship as background (status unlabeled in index/images.parquet)"
        )


@pytest.mark.slow
def test_a_batch_whose_exports_cannot_be_read_fails_the_signoff(tmp_path):
    make_demo_batch(tmp_path, seed=3)
    for export in [
        *(tmp_path / "batch" / "annotations").rglob("*.json"),
        *(tmp_path / "batch" / "gold").glob("*"),
    ]:
        export.write_bytes(b"this is not an export")
    plan, _ = package_demo(load_config(tmp_path / "client.yaml"))
    assert plan.counts.instances_delivered == 0 and plan.verdict.verdict == "fail"  # before: pass
    reasons = " | ".join(plan.verdict.reasons)
    assert "nothing delivered, below 1" in reasons and "4 export files not read (max 0)" in reasons
    for name in ("ann_a", "ann_b", "ann_c"):
        assert f"annotator {name}: 0 labels collected, below 1; 1 export file of theirs not read" in reasons
    assert "only 0 of 36 delivered images have a label" in reasons


@pytest.mark.slow
def test_an_annotator_given_no_image_owes_no_label(tmp_path, monkeypatch):
    """A configured annotator the assignment gave no image (a batch smaller than the team) is not
    judged for missing labels; one given images but no export still is."""
    from tasks import compute

    make_demo_batch(tmp_path, seed=3)
    config = load_config(tmp_path / "client.yaml")
    config = config.model_copy(update={"annotators": [*config.annotators, "ann_idle", "ann_absent"]})
    assign = compute.assign_work.fn

    def without_idle(images, annotators, settings):
        table = assign(images, annotators, settings)
        return table.filter(pc.not_equal(table["annotator"], "ann_idle"))

    monkeypatch.setattr(compute.assign_work, "fn", without_idle)
    plan, _ = package_demo(config)
    reasons = " | ".join(plan.verdict.reasons)
    assert "annotator ann_absent: 0 labels collected, below 1" in reasons
    assert "ann_idle" not in reasons
