"""The HTML QA report: self-contained, verdict first, grouped counts, capped list."""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from kpdeliver.findings import concat_findings, empty_findings, findings_for
from kpdeliver.report.html import MAX_LISTED, render_report


def _findings(n_err: int, n_warn: int) -> pa.Table:
    return concat_findings([
        findings_for("bounds.visible_outside_image", message=[f"point <{i}> out" for i in range(n_err)],
                     annotation_id=np.arange(n_err), keypoint="nose", annotator="ann_a", value=np.full(n_err, 3.5), n=n_err),
        findings_for("visibility.num_keypoints_mismatch", message=["count & flags disagree"] * n_warn,
                     annotation_id=np.arange(n_warn), annotator="ann_b", n=n_warn),
    ])


def test_pass_page_is_self_contained():
    html = render_report(empty_findings(), title="Batch <7>", summary={"images": 3})
    assert html.startswith("<!DOCTYPE html>") and "PASS" in html and "Batch &lt;7&gt;" in html
    assert not re.search(r"<script|<link|src=|https?://", html)


def test_fail_page_groups_and_caps():
    t = _findings(MAX_LISTED + 20, 5)
    html = render_report(t, title="t", summary={}, annotators=pa.table({"annotator": ["ann_a"], "n_error": [520]}))
    assert f"FAIL: {MAX_LISTED + 20:,} error-severity findings (5 warnings)" in html
    assert "point &lt;0&gt; out" in html and "count &amp; flags disagree" not in html  # errors listed first
    assert "25 more findings not listed here" in html
    for section in ("Findings by check", "By annotator", "By keypoint", "Annotators"):
        assert section in html
    assert html.count("<td>nose</td>") >= 1 and "ann_b" in html


def test_a_delivery_report_shows_the_sign_off_verdict_not_the_raw_error_count():
    import pyarrow as pa

    from kpdeliver.findings import findings_for
    from kpdeliver.report.html import render_report

    f = findings_for("bounds.visible_outside_image", message="quarantined item", annotation_id=[1], n=1)
    ok = render_report(f, title="t", summary={"verdict": "pass", "reasons": []})
    assert "PASS: sign-off thresholds met; 1 error findings" in ok
    bad = render_report(pa.concat_tables([f]), title="t", summary={"verdict": "fail", "reasons": ["too many quarantined"]})
    assert "FAIL: too many quarantined" in bad
