"""One count per annotator: qa/annotators.parquet (which the flow's scorecard artifact shows), the
report's scorecards and its findings-by-annotator table all give the errors and warnings that
qa/findings.parquet holds. Before, the table counted deep-QA findings only (ann_b: 0 errors,
1 warning) while the report counted every finding (3 errors, 3 warnings)."""

from __future__ import annotations

import io
import re
from collections import Counter

import pyarrow.parquet as pq
import pytest

from kpdeliver.config import load_config
from kpdeliver.synth import make_demo_batch
from tests.release_helpers import package_demo

pytestmark = pytest.mark.slow


def test_table_report_cards_and_findings_agree_per_annotator(tmp_path):
    make_demo_batch(tmp_path, seed=3)
    plan, _ = package_demo(load_config(tmp_path / "client.yaml"))
    findings = pq.read_table(io.BytesIO(plan.files["qa/findings.parquet"])).to_pylist()
    truth = Counter((f["annotator"], f["severity"]) for f in findings)
    swaps = Counter(f["annotator"] for f in findings if f["check"] == "qa.left_right_swap")
    table = pq.read_table(io.BytesIO(plan.files["qa/annotators.parquet"])).to_pylist()
    html = plan.files["qa/report.html"].decode()
    cards = {
        m[0]: (int(m[1]), int(m[2]))
        for m in re.findall(
            r'<div class="card[^"]*" data-annotator="([^"]+)" data-errors="(\d+)" data-warnings="(\d+)"', html
        )
    }
    rows = {
        m[0]: (int(m[1]), int(m[2]))
        for m in re.findall(r'<tr data-annotator="([^"]+)" data-errors="(\d+)" data-warnings="(\d+)"', html)
    }
    assert {r["annotator"] for r in table} == set(cards) and len(table) >= 3
    assert any(truth[(r["annotator"], "error")] for r in table)  # the demo's annotators have error findings
    for r in table:
        name = r["annotator"]
        want = (truth[(name, "error")], truth[(name, "warning")])
        assert (r["n_error"], r["n_warning"]) == want == cards[name], name
        assert rows.get(name, (0, 0)) == want and r["n_left_right_swap"] == swaps[name], name
