"""The HTML QA report: self-contained, verdict first in plain words, counts that agree, capped list,
release notes."""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kpdeliver.findings import concat_findings, empty_findings, findings_for
from kpdeliver.report.changes import ReleaseTables, change_counts, release_changes
from kpdeliver.report.context import FindingCounts
from kpdeliver.report.html import MAX_LISTED, ReportInputs, render_report


def _findings(n_err: int, n_warn: int) -> pa.Table:
    return concat_findings([
        findings_for("bounds.visible_outside_image", message=[f"point <{i}> out" for i in range(n_err)],
                     annotation_id=np.arange(n_err), keypoint="nose", annotator="ann_a", value=np.full(n_err, 3.5), n=n_err),
        findings_for("visibility.num_keypoints_mismatch", message=["count & flags disagree"] * n_warn,
                     annotation_id=np.arange(n_warn), annotator="ann_b", n=n_warn),
    ])


def test_pass_page_is_self_contained():
    html = render_report(ReportInputs(empty_findings(), title="Batch <7>", summary={"images": 3}))
    assert html.startswith("<!DOCTYPE html>") and "PASS" in html and "Batch &lt;7&gt;" in html
    assert not re.search(r"<script|<link|src=|https?://", html)


def test_fail_page_groups_and_caps():
    t = _findings(MAX_LISTED + 20, 5)
    html = render_report(ReportInputs(t, title="t", summary={}, annotators=pa.table({"annotator": ["ann_a"], "n_error": [520]})))
    assert f"<span class=\"word\">FAIL</span> — {MAX_LISTED + 20:,} error-severity findings (5 warnings)" in html
    assert "point &lt;0&gt; out" in html and "count &amp; flags disagree" not in html  # errors listed first
    assert "25 more findings not listed here" in html
    for section in ("Findings by check", "Findings by annotator", "Annotators", "visible point outside the image"):
        assert section in html
    assert 'data-keypoint="nose"' in html and "ann_b" in html


def test_a_delivery_report_shows_the_sign_off_verdict_in_plain_words():
    f = findings_for("bounds.visible_outside_image", message="quarantined item", annotation_id=[1], n=1)
    ok = render_report(ReportInputs(f, title="t", summary={"verdict": "pass", "reasons": [], "instances_delivered": 1200,
                                              "splits": {"train": 9, "val": 3}}))
    assert "Every sign-off threshold is met. 1 error finding; the labels they name are not delivered." in ok
    held = render_report(ReportInputs(f, title="t", summary={"verdict": "pass", "reasons": [], "instances_quarantined": 4}))
    assert "4 labels with errors were held back in quarantine and are not in this delivery." in held
    assert "people (instances) delivered" in ok and "1,200" in ok and "train 9, val 3" in ok
    assert "instances_delivered" not in ok and "{" not in re.sub(r"<style>.*?</style>", "", ok, flags=re.S)
    bad = render_report(ReportInputs(f, title="t", summary={"verdict": "fail", "reasons": ["too many quarantined"]}))
    assert '<section class="verdict fail"' in bad and "<li>too many quarantined</li>" in bad


def test_an_annotator_below_the_gold_threshold_is_named_up_front():
    cards = pa.table({"annotator": ["ann_a", "ann_b"], "n_instances": [10, 10], "gold_oks": [0.686, 0.95],
                      "n_gold": [3, 3], "agreement_oks": [0.88, None]})
    f = findings_for("qa.left_right_swap", message="swapped", annotation_id=[4], annotator="ann_a", n=1)
    html = render_report(ReportInputs(f, title="t", summary={"verdict": "pass", "reasons": []}, annotators=cards, min_gold_oks=0.75))
    verdict = html[html.index('id="verdict"'):html.index("</section>")]
    assert "ann_a scored 0.686 OKS against the gold labels, below the 0.75" in verdict
    assert "ann_a made 1 left/right swap" in verdict and "ann_b" not in verdict


def _data_counts(html: str, tag: str) -> dict[str, tuple[int, int]]:
    return {a: (int(e), int(w)) for a, e, w in
            re.findall(rf'<{tag}[^>]*data-annotator="([^"]+)" data-errors="(\d+)" data-warnings="(\d+)"', html)}


def test_scorecards_and_the_findings_table_count_the_same_errors(demo_release):
    """Per-annotator error counts: scorecards == findings-by-annotator table == the findings."""
    html, findings = demo_release.html, demo_release.findings
    cards, table = _data_counts(html, "div"), _data_counts(html, "tr")
    assert set(cards) == set(demo_release.config.annotators)
    ann, sev = np.array(findings["annotator"].to_pylist(), object), np.array(findings["severity"].to_pylist(), object)
    for a, (errors, warnings) in cards.items():
        assert (errors, warnings) == (int(((ann == a) & (sev == "error")).sum()), int(((ann == a) & (sev == "warning")).sum()))
        assert table.get(a, (0, 0)) == (errors, warnings)
    assert sum(e for e, _ in cards.values()) > 0  # the demo's mistakes are counted somewhere
    counts = FindingCounts.of(findings)
    assert sum(sum(c.values()) for c in counts.by_check.values()) == findings.num_rows == counts.total


def test_the_demo_report_shows_verdict_pictures_scorecards_keypoints_and_notes(demo_release):
    html = demo_release.html
    order = [html.index(f'id="{s}"') for s in ("verdict", "annotators", "worst", "sample", "keypoints", "changes")]
    assert order == sorted(order)
    assert "The first release of this dataset" in html
    assert "'" + "verdict" + "'" not in html and "{'" not in html  # no Python dict repr anywhere
    changes = pq.read_table(pa.BufferReader(demo_release.plan.files["qa/changes.parquet"]))
    images = pq.read_table(pa.BufferReader(demo_release.plan.files["index/images.parquet"]))
    n_delivered = images.filter(pa.compute.equal(images["status"], "delivered")).num_rows + \
        images.filter(pa.compute.equal(images["status"], "unlabeled")).num_rows
    assert change_counts(changes)["image"]["added"] == n_delivered
    assert change_counts(changes)["instance"]["added"] == demo_release.plan.counts.instances_delivered


def test_release_changes_between_two_versions():
    images = pa.table({"image_id": [1, 2, 3], "file_name": ["a.jpg", "b.jpg", "c.jpg"], "sha256": ["x", "y", "z"],
                       "status": ["delivered"] * 3})
    kps = np.zeros((3, 2, 3))
    ann = pa.table({"annotation_id": [10, 11, 12], "image_id": [1, 2, 3], "annotator": ["a", "a", "b"],
                    "bbox": [[0.0, 0, 5, 5]] * 3, "keypoints": kps.tolist()})
    kps2 = kps.copy()
    kps2[0, 1] = [4, 4, 2]
    images2 = pa.table({"image_id": [1, 3, 4], "file_name": ["a.jpg", "c.jpg", "d.jpg"], "sha256": ["x", "zz", "w"],
                        "status": ["delivered", "delivered", "delivered"]})
    ann2 = pa.table({"annotation_id": [10, 12, 13], "image_id": [1, 3, 4], "annotator": ["a", "b", "c"],
                     "bbox": [[0.0, 0, 5, 5]] * 3, "keypoints": [kps2[0].tolist(), kps[2].tolist(), kps[1].tolist()]})
    changes = release_changes(ReleaseTables(images2, ann2), ReleaseTables(images, ann))
    assert change_counts(changes) == {"image": {"added": 1, "removed": 1, "changed": 1},
                                      "instance": {"added": 1, "removed": 1, "changed": 1}}
    rows = {(r["item"], r["change"]): r for r in changes.to_pylist()}
    assert rows[("instance", "changed")]["annotation_id"] == 10 and rows[("instance", "changed")]["detail"] == "keypoints changed"
    assert rows[("image", "removed")]["file_name"] == "b.jpg" and rows[("instance", "removed")]["annotation_id"] == 11
    html = render_report(ReportInputs(empty_findings(), title="t", summary={}, changes=changes, previous_version=3))
    assert "Compared with v0003" in html and '<tr data-changes="instance"><td>instances</td><td class="n">1</td>' in html
