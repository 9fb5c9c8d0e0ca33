"""Checks that judge a pair: when only two labels meet (the default overlap: one second annotator),
neither can be told right, so a disagreement warns both annotators, naming the keypoint; with gold,
only the one who differs from gold is told."""

from __future__ import annotations

import numpy as np

from kpdeliver.qa import run_deep_qa
from tests.qa._poses import K, make_dataset, noisy, pose, rows_of


def _labels(flags: dict[str, float], *, file: str = "x.jpg", seed: int = 0) -> list[dict]:
    """One person per annotator on one image; each annotator's left_wrist flag as given."""
    rng = np.random.default_rng(seed)
    out = []
    for a, v in flags.items():
        kps = noisy(pose(), rng, 1.0)
        kps[K["left_wrist"], 2] = v
        out.append({"file": file, "annotator": a, "kps": kps})
    return out


def _visibility(findings, check: str = "qa.low_agreement") -> list[tuple]:
    return sorted(
        (f["annotator"], f["keypoint"], f["annotation_id"])
        for f in rows_of(findings, check)
        if f["message"].startswith("visibility")
    )


def test_two_labels_that_disagree_on_a_flag_warn_both_annotators_naming_the_keypoint():
    ds = make_dataset(_labels({"A": 2.0, "B": 1.0}))
    findings = run_deep_qa(ds).findings
    found = rows_of(findings, "qa.low_agreement")
    assert _visibility(findings) == [("A", "left_wrist", 1), ("B", "left_wrist", 2)]
    by = {f["annotator"]: f for f in found}
    assert by["A"]["message"] == (
        "visibility: annotator A marks left_wrist visible; the other annotator of this "
        "image marks it occluded; with two labels only, either one may be wrong"
    )
    assert by["B"]["message"].startswith(
        "visibility: annotator B marks left_wrist occluded; the other annotator"
    )
    assert {f["severity"] for f in found} == {"warning"} and (by["A"]["value"], by["B"]["value"]) == (
        2.0,
        1.0,
    )
    assert all(f["file_name"] == "x.jpg" and f["image_id"] == 1 for f in found)


def test_not_labeled_against_labeled_is_a_disagreement_too():
    ds = make_dataset(_labels({"A": 0.0, "B": 2.0}))
    assert _visibility(run_deep_qa(ds).findings) == [("A", "left_wrist", 1), ("B", "left_wrist", 2)]


def test_with_gold_only_the_annotator_who_differs_from_gold_is_told():
    labels = _labels({"A": 2.0, "B": 1.0})
    gold = make_dataset([{"file": "x.jpg", "kps": _labels({"G": 1.0}, seed=5)[0]["kps"]}], id_offset=100)
    result = run_deep_qa(make_dataset(labels), gold=gold)
    assert _visibility(result.findings) == []  # gold judges them, the pair does not
    assert _visibility(result.findings, "qa.gold_mismatch") == [("A", "left_wrist", 1)]


def test_a_majority_tells_the_odd_one_and_a_tie_tells_everyone():
    odd = run_deep_qa(make_dataset(_labels({"A": 2.0, "B": 2.0, "C": 1.0, "D": 2.0, "E": 0.0}))).findings
    assert _visibility(odd) == [("C", "left_wrist", 3), ("E", "left_wrist", 5)]
    msg = {f["annotator"]: f["message"] for f in rows_of(odd, "qa.low_agreement")}
    assert msg["C"].endswith("the 4 other annotators of this image mark it visible (3), not labeled (1)")
    tie = run_deep_qa(make_dataset(_labels({"A": 2.0, "B": 1.0, "C": 0.0}))).findings
    assert _visibility(tie) == [("A", "left_wrist", 1), ("B", "left_wrist", 2), ("C", "left_wrist", 3)]
    assert all(
        f["message"].endswith("no flag has a majority, so each of them is told")
        for f in rows_of(tie, "qa.low_agreement")
    )


def test_two_labels_far_apart_warn_both_annotators():
    rng = np.random.default_rng(3)
    a = noisy(pose(), rng, 1.0)
    b = a.copy()
    b[:, :2] += rng.normal(0, 14, (17, 2))
    found = rows_of(
        run_deep_qa(
            make_dataset(
                [{"file": "x.jpg", "annotator": "A", "kps": a}, {"file": "x.jpg", "annotator": "B", "kps": b}]
            )
        ).findings,
        "qa.low_agreement",
    )
    assert sorted(f["annotator"] for f in found) == ["A", "B"]


def _people(who: dict[str, list[int]]) -> list[dict]:
    """Annotators labeling some of three people standing apart on one image."""
    rng = np.random.default_rng(7)
    return [
        {"file": "x.jpg", "annotator": a, "kps": noisy(pose(cx=200 + 400 * p), rng, 1.0)}
        for a, persons in who.items()
        for p in persons
    ]


def _missed(findings) -> list[tuple]:
    return sorted(
        (f["annotator"], f["annotation_id"], f["message"]) for f in rows_of(findings, "qa.low_agreement")
    )


def test_a_person_only_one_of_two_annotators_labeled_warns_both():
    found = _missed(run_deep_qa(make_dataset(_people({"A": [0, 1], "B": [0]}))).findings)
    assert found == [
        ("A", 2, "annotator A labeled an instance no other annotator of this image labeled"),
        (
            "B",
            None,
            "annotator B labeled nothing on this image matching A's instance 2; "
            "with two labels only, either one may be wrong",
        ),
    ]


def test_a_person_most_annotators_labeled_tells_the_one_who_did_not():
    found = _missed(run_deep_qa(make_dataset(_people({"A": [0, 1], "B": [0, 1], "C": [0]}))).findings)
    assert found == [
        ("C", None, "annotator C labeled nothing on this image matching A's instance 2, B's instance 4")
    ]
    lone = _missed(run_deep_qa(make_dataset(_people({"A": [0, 1], "B": [0], "C": [0]}))).findings)
    assert [(a, i) for a, i, _ in lone] == [("A", 2)]  # the majority did not label it: only A is told


def test_a_person_gold_judged_is_left_to_gold():
    gold = make_dataset([{"file": "x.jpg", "kps": pose(cx=200 + 400 * p)} for p in (0, 1)], id_offset=100)
    findings = run_deep_qa(make_dataset(_people({"A": [0, 1], "B": [0]})), gold=gold).findings
    assert _missed(findings) == []
    assert [(f["annotator"], f["annotation_id"]) for f in rows_of(findings, "qa.gold_mismatch")] == [
        ("B", None)
    ]
