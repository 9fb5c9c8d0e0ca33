"""The HTML QA report: self-contained, verdict first in plain words, counts that agree, capped list,
release notes."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from kpdeliver.findings import concat_findings, empty_findings, findings_for
from kpdeliver.report.changes import ReleaseTables, change_counts, release_changes
from kpdeliver.report.context import FindingCounts
from kpdeliver.report.html import MAX_LISTED, ReportHeader, ReportInputs, render_report


def _findings(n_err: int, n_warn: int) -> pa.Table:
    return concat_findings(
        [
            findings_for(
                "bounds.visible_outside_image",
                message=[f"point <{i}> out" for i in range(n_err)],
                annotation_id=np.arange(n_err),
                keypoint="nose",
                annotator="ann_a",
                value=np.full(n_err, 3.5),
                n=n_err,
            ),
            findings_for(
                "visibility.num_keypoints_mismatch",
                message=["count & flags disagree"] * n_warn,
                annotation_id=np.arange(n_warn),
                annotator="ann_b",
                n=n_warn,
            ),
        ]
    )


def test_pass_page_is_self_contained():
    html = render_report(ReportInputs(empty_findings(), title="Batch <7>", summary={"images": 3}))
    assert html.startswith("<!DOCTYPE html>") and "PASS" in html and "Batch &lt;7&gt;" in html
    assert not re.search(r"<script|<link|src=|https?://", html)


def test_fail_page_groups_and_caps():
    t = _findings(MAX_LISTED + 20, 5)
    html = render_report(
        ReportInputs(
            t, title="t", summary={}, annotators=pa.table({"annotator": ["ann_a"], "n_error": [520]})
        )
    )
    assert (
        f'<span class="word">FAIL</span> — {MAX_LISTED + 20:,} error-severity findings (5 warnings)' in html
    )
    assert "point &lt;0&gt; out" in html and "count &amp; flags disagree" not in html  # errors listed first
    assert "25 more findings not listed here" in html
    for section in (
        "Findings by check",
        "Findings by annotator",
        "Annotators",
        "visible point outside the image",
    ):
        assert section in html
    assert 'data-keypoint="nose"' in html and "ann_b" in html


def test_a_delivery_report_shows_the_sign_off_verdict_in_plain_words():
    f = findings_for("bounds.visible_outside_image", message="quarantined item", annotation_id=[1], n=1)
    ok = render_report(
        ReportInputs(
            f,
            title="t",
            summary={
                "verdict": "pass",
                "reasons": [],
                "instances_delivered": 1200,
                "splits": {"train": 9, "val": 3},
            },
        )
    )
    assert "Every sign-off threshold is met. 1 error finding; the labels they name are not delivered." in ok
    held = render_report(
        ReportInputs(f, title="t", summary={"verdict": "pass", "reasons": [], "instances_quarantined": 4})
    )
    assert "4 labels with errors were held back in quarantine and are not in this delivery." in held
    assert "people (instances) delivered" in ok and "1,200" in ok and "train 9, val 3" in ok
    assert "instances_delivered" not in ok and "{" not in re.sub(r"<style>.*?</style>", "", ok, flags=re.S)
    bad = render_report(
        ReportInputs(f, title="t", summary={"verdict": "fail", "reasons": ["too many quarantined"]})
    )
    assert '<section class="verdict fail"' in bad and "<li>too many quarantined</li>" in bad


def test_an_annotator_below_the_gold_threshold_is_named_up_front():
    cards = pa.table(
        {
            "annotator": ["ann_a", "ann_b"],
            "n_instances": [10, 10],
            "gold_oks": [0.686, 0.95],
            "n_gold": [3, 3],
            "agreement_oks": [0.88, None],
        }
    )
    f = findings_for("qa.left_right_swap", message="swapped", annotation_id=[4], annotator="ann_a", n=1)
    html = render_report(
        ReportInputs(
            f, title="t", summary={"verdict": "pass", "reasons": []}, annotators=cards, min_gold_oks=0.75
        )
    )
    verdict = html[html.index('id="verdict"') : html.index("</section>")]
    assert "ann_a scored 0.686 OKS against the gold labels, below the 0.75" in verdict
    assert "ann_a made 1 left/right swap" in verdict and "ann_b" not in verdict


def _data_counts(html: str, tag: str) -> dict[str, tuple[int, int]]:
    return {
        a: (int(e), int(w))
        for a, e, w in re.findall(
            rf'<{tag}[^>]*data-annotator="([^"]+)" data-errors="(\d+)" data-warnings="(\d+)"', html
        )
    }


def test_scorecards_and_the_findings_table_count_the_same_errors(demo_release):
    """Per-annotator error counts: scorecards == findings-by-annotator table == the findings."""
    html, findings = demo_release.html, demo_release.findings
    cards, table = _data_counts(html, "div"), _data_counts(html, "tr")
    assert set(cards) == set(demo_release.config.annotators)
    ann, sev = (
        np.array(findings["annotator"].to_pylist(), object),
        np.array(findings["severity"].to_pylist(), object),
    )
    for a, (errors, warnings) in cards.items():
        assert (errors, warnings) == (
            int(((ann == a) & (sev == "error")).sum()),
            int(((ann == a) & (sev == "warning")).sum()),
        )
        assert table.get(a, (0, 0)) == (errors, warnings)
    assert sum(e for e, _ in cards.values()) > 0  # the demo's mistakes are counted somewhere
    counts = FindingCounts.of(findings)
    assert sum(sum(c.values()) for c in counts.by_check.values()) == findings.num_rows == counts.total


def test_the_demo_report_shows_verdict_pictures_scorecards_keypoints_and_notes(demo_release):
    html = demo_release.html
    order = [
        html.index(f'id="{s}"') for s in ("verdict", "annotators", "worst", "sample", "keypoints", "changes")
    ]
    assert order == sorted(order)
    assert "The first release of this dataset" in html
    assert "'" + "verdict" + "'" not in html and "{'" not in html  # no Python dict repr anywhere
    changes = pq.read_table(pa.BufferReader(demo_release.plan.files["qa/changes.parquet"]))
    images = pq.read_table(pa.BufferReader(demo_release.plan.files["index/images.parquet"]))
    n_delivered = (
        images.filter(pa.compute.equal(images["status"], "delivered")).num_rows
        + images.filter(pa.compute.equal(images["status"], "unlabeled")).num_rows
    )
    assert change_counts(changes)["image"]["added"] == n_delivered
    assert change_counts(changes)["instance"]["added"] == demo_release.plan.counts.instances_delivered


def test_release_changes_between_two_versions():
    images = pa.table(
        {
            "image_id": [1, 2, 3],
            "file_name": ["a.jpg", "b.jpg", "c.jpg"],
            "sha256": ["x", "y", "z"],
            "status": ["delivered"] * 3,
        }
    )
    kps = np.zeros((3, 2, 3))
    ann = pa.table(
        {
            "annotation_id": [10, 11, 12],
            "image_id": [1, 2, 3],
            "annotator": ["a", "a", "b"],
            "bbox": [[0.0, 0, 5, 5]] * 3,
            "keypoints": kps.tolist(),
        }
    )
    kps2 = kps.copy()
    kps2[0, 1] = [4, 4, 2]
    images2 = pa.table(
        {
            "image_id": [1, 3, 4],
            "file_name": ["a.jpg", "c.jpg", "d.jpg"],
            "sha256": ["x", "zz", "w"],
            "status": ["delivered", "delivered", "delivered"],
        }
    )
    ann2 = pa.table(
        {
            "annotation_id": [10, 12, 13],
            "image_id": [1, 3, 4],
            "annotator": ["a", "b", "c"],
            "bbox": [[0.0, 0, 5, 5]] * 3,
            "keypoints": [kps2[0].tolist(), kps[2].tolist(), kps[1].tolist()],
        }
    )
    changes = release_changes(ReleaseTables(images2, ann2), ReleaseTables(images, ann))
    assert change_counts(changes) == {
        "image": {"added": 1, "removed": 1, "changed": 1},
        "instance": {"added": 1, "removed": 1, "changed": 1},
    }
    rows = {(r["item"], r["change"]): r for r in changes.to_pylist()}
    assert (
        rows[("instance", "changed")]["annotation_id"] == 10
        and rows[("instance", "changed")]["detail"] == "keypoints changed"
    )
    assert (
        rows[("image", "removed")]["file_name"] == "b.jpg"
        and rows[("instance", "removed")]["annotation_id"] == 11
    )
    html = render_report(
        ReportInputs(empty_findings(), title="t", summary={}, changes=changes, previous_version=3)
    )
    assert (
        "Compared with v0003" in html
        and '<tr data-changes="instance"><td>instances</td><td class="n">1</td>' in html
    )


def _signoff(verdict: str) -> dict:
    rules = [
        {
            "rule": "max_error_findings",
            "subject": None,
            "threshold": 0,
            "measured": 0,
            "outcome": "pass",
            "message": "0 error findings on delivered items (max 0)",
        },
        {
            "rule": "min_gold_oks",
            "subject": "ann_a",
            "threshold": 0.75,
            "measured": 0.686,
            "outcome": verdict,
            "message": "annotator ann_a: gold OKS 0.686 on 3 gold instances, below 0.75",
        },
        {
            "rule": "min_agreement_oks",
            "subject": "ann_b",
            "threshold": 0.75,
            "measured": None,
            "outcome": "not_measured",
            "message": "annotator ann_b: no overlap images",
        },
    ]
    return {"verdict": verdict, "reasons": [rules[1]["message"]], "rules": rules}


def test_the_verdict_box_says_what_the_verdict_means_and_fail_looks_unlike_conditional():
    f = findings_for("qa.left_right_swap", message="ann_a swapped", annotation_id=[4], annotator="ann_a", n=1)
    header = ReportHeader(
        "acme", "pose", version=3, published="2026-12-06", code_version="0.1.0", signed=False
    )
    pages = {
        v: render_report(ReportInputs(f, title="t", header=header, signoff=_signoff(v)))
        for v in ("conditional", "fail")
    }
    for v, html in pages.items():
        box = html[html.index('id="verdict"') : html.index("</section>")]
        assert (
            f'class="verdict {v}"' in html and "What this means:" in box and "Recommended next step:" in box
        )
        assert "rules acme set" in box
    assert "not fit to be used as delivered" in pages["fail"] and "not fit" not in pages["conditional"]
    css = pages["fail"][pages["fail"].index("<style>") : pages["fail"].index("</style>")]
    assert ".verdict.fail .headline{" in css and ".verdict.conditional .headline" not in css
    head = pages["fail"][pages["fail"].index('id="header"') : pages["fail"].index('id="verdict"')]
    for shown in ("acme", "pose", "v0003", "2026-12-06", "kpdeliver 0.1.0", "unsigned"):
        assert shown in head, shown


def test_every_sign_off_rule_is_listed_met_ones_too():
    html = render_report(ReportInputs(empty_findings(), title="t", signoff=_signoff("conditional")))
    rows = re.findall(r'<tr class="o-\w+" data-rule="(\w+)" data-outcome="(\w+)">', html)
    assert sorted(rows) == [
        ("max_error_findings", "pass"),
        ("min_agreement_oks", "not_measured"),
        ("min_gold_oks", "conditional"),
    ]
    assert rows[0] == ("min_gold_oks", "conditional")  # what is not met comes first
    assert '<td class="n">0.750</td><td class="n">0.686</td>' in html


def test_annotators_are_anonymised_everywhere_when_asked():
    f = findings_for(
        "qa.left_right_swap",
        message="ann_b labeled this mirrored against ann_a",
        annotation_id=[4],
        annotator="ann_b",
        n=1,
    )
    cards = pa.table(
        {
            "annotator": ["ann_a", "ann_b"],
            "n_instances": [10, 10],
            "gold_oks": [0.686, 0.95],
            "n_gold": [3, 3],
        }
    )
    inputs = ReportInputs(
        f,
        title="t",
        signoff=_signoff("conditional"),
        annotators=cards,
        min_gold_oks=0.75,
        annotator_names="anonymous",
        known_annotators=("ann_a", "ann_b", "ann_c"),
    )
    html = render_report(inputs)
    assert "ann_a" not in html and "ann_b" not in html and "ann_c" not in html
    assert (
        'data-annotator="Annotator 1"' in html
        and "Annotator 2 labeled this mirrored against Annotator 1" in html
    )
    assert "annotator Annotator 1: gold OKS 0.686" in html
    assert "ann_a" in render_report(replace(inputs, annotator_names="named"))


def test_row_rules_are_listed_once_with_warnings_counted_as_warnings():
    rule = {
        "expectation": "expect_visible_points_inside_image",
        "check": "bounds.visible_outside_image",
        "element_count": 100,
        "unexpected_count": 1,
        "success": False,
    }
    results = [
        {
            "suite": "coco17.bounds.points",
            "expectations": [
                rule,
                {**rule, "column": "visible_max"},
                {
                    "expectation": "expect_labeled_points_inside_box",
                    "check": "bounds.keypoint_outside_bbox",
                    "element_count": 100,
                    "unexpected_count": 2,
                    "success": False,
                },
                {
                    "expectation": "expect_occluded_points_near_image",
                    "check": "bounds.occluded_far_outside",
                    "element_count": 100,
                    "unexpected_count": 0,
                    "success": True,
                },
            ],
        }
    ]
    html = render_report(ReportInputs(empty_findings(), title="t", validation_results=results))
    row = html[html.index('data-suite="coco17.bounds.points"') :]
    row = row[: row.index("</tr>")]
    assert re.findall(r'<td class="n">(\d+)</td>', row) == [
        "3",
        "1",
        "1",
        "1",
    ]  # rules, passed, warnings, failed
    assert row.count("visible point outside the image") == 1 and "2 of 100 rows (warning)" in row


def test_the_demo_report_counts_images_held_back_whole_and_background_images(demo_release):
    html, counts = demo_release.html, demo_release.plan.counts
    facts = {
        label: value for value, label in re.findall(r'<div class="fact"><b>([^<]+)</b>([^<]+)</div>', html)
    }
    assert facts["images held back whole"] == str(counts.images_quarantined) and counts.images_quarantined > 0
    images = pq.read_table(pa.BufferReader(demo_release.plan.files["index/images.parquet"]))
    background = images.filter(pa.compute.equal(images["status"], "unlabeled")).num_rows
    assert facts["background images (delivered without a label)"] == str(background)
    signoff = orjson.loads(demo_release.plan.files["qa/signoff.json"])
    assert len(re.findall(r'<tr class="o-\w+" data-rule=', html)) == len(signoff["rules"])
    assert re.search(r"<dt>version</dt><dd>v0001</dd>", html) and "unsigned" in html


def test_visible_occluded_and_unlabeled_points_differ_filled_hollow_absent():
    from kpdeliver.report.overlays import THUMB_SIDE, Crop, draw_overlay
    from kpdeliver.schema import COCO17

    grey = (90, 140, 60)
    image = Image.new("RGB", (200, 200), grey)
    kps = np.zeros((17, 3))
    kps[0] = [50, 50, 2]
    kps[15] = [150, 150, 1]  # nose and left ankle: no skeleton edge joins them
    kps[10] = [100, 100, 0]
    out = np.asarray(draw_overlay(image, kps, COCO17, Crop(0, 0, 200, 200)), dtype=int)
    s = THUMB_SIDE / 200

    def at(x, y):
        return out[int(y * s), int(x * s)]

    assert (at(50, 50) > 240).all()  # filled white
    assert np.abs(at(150, 150) - grey).max() < 25  # hollow: the picture shows in the middle
    ring = out[int(150 * s) - 12 : int(150 * s) + 13, int(150 * s) - 12 : int(150 * s) + 13]
    assert (ring > 240).all(axis=-1).any() and (ring < 40).all(axis=-1).any()  # a white ring with a dark edge
    assert np.abs(at(100, 100) - grey).max() < 25  # unlabeled: nothing drawn
