"""The entry point: findings in the shared schema, scorecards, no crash on odd input, the stored result
of a simulated team, and what each check is handed by the earlier ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kpdeliver.config import DeepQASettings
from kpdeliver.findings import CHECKS, FINDINGS_SCHEMA
from kpdeliver.model import Dataset
from kpdeliver.qa import run_deep_qa
from kpdeliver.qa.context import Context
from kpdeliver.qa.drift import drift_findings
from kpdeliver.qa.gold import gold_findings
from kpdeliver.qa.overlap import overlap_findings
from kpdeliver.schema import COCO17
from tests.qa._poses import make_dataset, noisy, pose, swapped
from tests.qa._team import plain_rows, team_batch

SCORECARD = [
    "annotator",
    "n_instances",
    "n_overlap",
    "agreement_oks",
    "visibility_kappa",
    "n_gold",
    "gold_oks",
    "gold_visibility_kappa",
    "n_error",
    "n_warning",
    "n_low_agreement",
    "n_gold_mismatch",
    "n_left_right_swap",
    "n_temporal_jitter",
    "n_annotator_drift",
    "drift_start",
]


def test_result_tables_have_the_contract_columns():
    rng = np.random.default_rng(0)
    labels = [
        {
            "file": f"{i}.jpg",
            "annotator": a,
            "kps": noisy(swapped(pose(), "wrist") if (a, i) == ("B", 1) else pose(), rng, 1.5),
        }
        for i in range(4)
        for a in "ABC"
    ]
    result = run_deep_qa(make_dataset(labels))
    assert result.findings.schema == FINDINGS_SCHEMA
    assert set(result.findings["check"].to_pylist()) <= set(CHECKS)
    assert result.annotators.column_names == SCORECARD
    row = {r["annotator"]: r for r in result.annotators.to_pylist()}
    assert row["B"]["n_left_right_swap"] == 1 and row["B"]["n_error"] == 1 and row["A"]["n_error"] == 0
    assert result.keypoints.num_rows == 3 * 17


def test_empty_and_odd_input_does_not_crash():
    assert run_deep_qa(Dataset.empty(COCO17)).findings.num_rows == 0
    kps = pose()
    kps[3:, :] = 0  # mostly unlabeled
    odd = [
        {"file": "a.jpg", "kps": kps, "annotator": ""},
        {"file": "a.jpg", "kps": pose(), "annotator": "B"},
        {"file": "b.jpg", "kps": pose() * np.array([1, 1, 1.5]), "annotator": "B"},
    ]  # flag 3: invalid
    result = run_deep_qa(make_dataset(odd), gold=Dataset.empty(COCO17))
    assert result.findings.schema == FINDINGS_SCHEMA
    assert "(unnamed)" in result.annotators["annotator"].to_pylist()


@pytest.fixture(scope="module")
def team() -> tuple[Dataset, Dataset]:
    return team_batch(seed=7)


def test_checks_give_the_stored_result_on_a_simulated_team(team):
    """tests/qa/data/team_seed7.json holds the findings and both tables as the deep QA gave them before
    the checks were split by family: same rows, same order, same numbers."""
    dataset, gold = team
    result = run_deep_qa(dataset, gold=gold)
    stored = json.loads((Path(__file__).parent / "data" / "team_seed7.json").read_text())
    checks = {r["check"] for r in stored["findings"]}
    assert {
        "qa.left_right_swap",
        "qa.gold_mismatch",
        "qa.low_agreement",
        "qa.temporal_jitter",
        "qa.annotator_drift",
        "qa.pose_coverage",
    } <= checks  # every family has a say
    for name in ("findings", "annotators", "keypoints"):
        assert plain_rows(getattr(result, name)) == stored[name], name  # JSON keeps a float exactly


def test_each_check_takes_what_it_needs_from_the_earlier_ones(team):
    dataset, gold = team
    settings = DeepQASettings()
    ctx = Context.of(dataset)
    judged = gold_findings(ctx, gold, settings)
    alone = overlap_findings(ctx, settings, gold_matched=np.zeros(ctx.n, bool))
    after_gold = overlap_findings(ctx, settings, gold_matched=judged.matched)
    # instances gold judged are still measured against the others, but not reported a second time
    np.testing.assert_array_equal(alone.agreement_oks, after_gold.agreement_oks)
    judged_ids = set(ctx.ann_id[judged.matched].tolist())
    assert set(alone.findings["annotation_id"].drop_null().to_pylist()) & judged_ids
    assert not set(after_gold.findings["annotation_id"].drop_null().to_pylist()) & judged_ids
    # drift is judged against exactly the references it is handed
    for samples, against in (
        ((judged.drift_samples, after_gold.drift_samples), "against gold and 2 other"),
        ((after_gold.drift_samples,), "against 2 other annotators"),
        ((judged.drift_samples,), "against gold;"),
    ):
        drift = drift_findings(ctx, settings, samples)
        assert list(drift.starts) == ["ann_c"] and against in drift.findings["message"][0].as_py()
    assert not drift_findings(ctx, settings, ()).starts
