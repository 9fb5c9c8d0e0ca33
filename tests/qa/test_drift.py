"""Annotator drift: found near its onset; stationary series and constant conventions are not drift."""

from __future__ import annotations

import numpy as np

from kpdeliver.qa import run_deep_qa
from kpdeliver.qa.drift import change_point, pool_references
from tests.qa._poses import K, make_dataset, noisy, pose, rows_of


def test_change_point_finds_the_start_of_a_sustained_shift():
    errors = []
    for seed in range(6):
        x = np.random.default_rng(seed).normal(0, 1, (600, 35))
        x[300:, 7] += 1.0  # one standard deviation, in one channel of 35
        alarm = change_point(x, min_segment=20, threshold=5.0)
        assert alarm is not None and alarm.channel == 7 and 0.8 < alarm.shift < 1.2
        errors.append(abs(alarm.start - 300))
    assert np.median(errors) <= 5 and max(errors) <= 40


def test_no_drift_in_noise_or_in_a_constant_offset():
    rng = np.random.default_rng(1)
    for seed in range(5):
        x = np.random.default_rng(seed).normal(0, 1, (800, 35)) + 3.0  # offset from day one
        x[rng.random(x.shape) < 0.3] = np.nan  # channels not always measured
        assert change_point(x, min_segment=20, threshold=5.0) is None


def team(n_items: int, annotators: str, seed: int, edit) -> tuple[list[dict], list[dict]]:
    """Every annotator labels every item (noise 3 px); edit(annotator, item, kps) changes a label in
    place. Returns the labels and the gold (the truth) of every item."""
    rng = np.random.default_rng(seed)
    labels, gold = [], []
    for i in range(n_items):
        truth = pose(cx=200 + i % 7 * 100)
        for a in annotators:
            kps = noisy(truth, rng, 3.0)
            edit(a, i, kps)
            labels.append({"file": f"{i}.jpg", "annotator": a, "kps": kps})
        gold.append({"file": f"{i}.jpg", "kps": truth})
    return labels, gold


def drift_of(labels: list[dict], gold: list[dict] | None = None):
    result = run_deep_qa(make_dataset(labels), gold=make_dataset(gold, id_offset=1000) if gold else None)
    return rows_of(result.findings, "qa.annotator_drift"), {
        r["annotator"]: r for r in result.annotators.to_pylist()
    }


def test_drift_against_gold_is_reported_with_its_start():
    def edit(a, i, kps):
        if a == "B" and i >= 150:  # from item 150 on, B's hips sit lower
            kps[[K["left_hip"], K["right_hip"]], 1] += 12.0

    found, cards = drift_of(*team(240, "AB", 2, edit))
    assert [f["annotator"] for f in found] == ["B"]
    assert (
        abs(found[0]["value"] - 150) <= 10 and "hip" in found[0]["message"] and "lower" in found[0]["message"]
    )
    assert cards["A"]["drift_start"] is None and abs(cards["B"]["drift_start"] - 150) <= 10


def test_without_gold_the_annotator_all_partners_disagree_with_is_the_one_drifting():
    # from item 120 on C's knees sit lower. Against C, A and B change too, but each of them still
    # agrees with the other: only C drifts.
    def edit(a, i, kps):
        if a == "C" and i >= 120:
            kps[[K["left_knee"], K["right_knee"]], 1] += 12.0

    found, _ = drift_of(team(240, "ABC", 3, edit)[0])
    assert [f["annotator"] for f in found] == ["C"]
    assert abs(found[0]["value"] - 120) <= 10 and "against 2 other annotators" in found[0]["message"]


def test_with_two_annotators_and_no_gold_both_are_told_either_may_have_changed():
    def edit(a, i, kps):
        if a == "B" and i >= 100:
            kps[K["left_elbow"], 0] += 15.0

    found, _ = drift_of(team(200, "AB", 4, edit)[0])
    assert sorted(f["annotator"] for f in found) == ["A", "B"]
    for f in found:
        assert abs(f["value"] - 100) <= 10 and "either of them may have changed" in f["message"]
        assert "left_elbow" in f["message"]


def test_a_partners_constant_convention_is_neither_drift_nor_blamed_on_others():
    # B places the nose 20 px higher on every item: against B, A and C see a constant offset, no change
    def edit(a, i, kps):
        if a == "B":
            kps[K["nose"], 1] -= 20.0

    assert drift_of(team(240, "ABC", 5, edit)[0])[0] == []


def test_a_shift_shared_by_a_left_right_pair_is_named_as_the_pair():
    # from item 150 on both shoulders sit 4 px higher: each alone is a weak change, together a clear one
    def edit(a, i, kps):
        if i >= 150:
            kps[[K["left_shoulder"], K["right_shoulder"]], 1] -= 4.0

    found, _ = drift_of(*team(300, "B", 6, edit))
    assert len(found) == 1 and abs(found[0]["value"] - 150) <= 15
    assert (
        "left_shoulder and right_shoulder now placed" in found[0]["message"]
        and "higher" in found[0]["message"]
    )


def test_pooled_evidence_counts_each_instance_once_and_prefers_gold():
    rng = np.random.default_rng(7)
    n = 60
    rows = np.concatenate(
        [np.arange(n), np.arange(n), np.arange(n // 2)]
    )  # vs partner 0, partner 1, gold (3)
    ref = np.concatenate([np.zeros(n, int), np.ones(n, int), np.full(n // 2, 3)])
    x = rng.normal(0, 1, (len(rows), 2))
    x[ref == 1] += 5.0  # partner 1's constant convention: centred away
    x[ref == 3, 1] = 100.0 + rng.normal(0, 1, n // 2)  # gold says something else on channel 1
    ev = pool_references(rows, ref, x, gold_ref=3, min_group=10)
    assert ev.rows.tolist() == list(range(n))
    assert np.all(np.abs(ev.raw[:, 0]) < 5)  # no partner offset left
    gold_rows = np.arange(n // 2)
    expect = x[ref == 3, 1] - np.median(x[ref == 3, 1])
    assert np.allclose(ev.raw[gold_rows, 1], expect)  # gold alone, not averaged with the partners
