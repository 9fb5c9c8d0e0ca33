"""Agreement on overlap items: kappa on known tables, convention offsets, visibility, low agreement."""

from __future__ import annotations

import numpy as np
import pytest

from kpdeliver.model import Dataset, concat_images, concat_instances
from kpdeliver.qa import run_deep_qa
from kpdeliver.qa.agreement import cohen_kappa
from tests.qa._poses import K, make_dataset, noisy, pose, rows_of


@pytest.mark.parametrize(
    "table, expected",
    [
        ([[20, 5], [10, 15]], 0.4),  # po = 0.7, pe = 0.5
        ([[25, 25], [25, 25]], 0.0),
        ([[7, 0], [0, 3]], 1.0),
        ([[10, 2, 0], [1, 8, 1], [0, 2, 6]], (0.8 - 308 / 900) / (1 - 308 / 900)),
        ([[0, 10], [10, 0]], -1.0),
    ],
)
def test_cohen_kappa_known_tables(table, expected):
    assert cohen_kappa(np.array(table)) == pytest.approx(expected, abs=1e-12)


def test_cohen_kappa_is_vectorised_and_undefined_for_one_category():
    tables = np.array([[[20, 5], [10, 15]], [[9, 0], [0, 0]]])
    out = cohen_kappa(tables)
    assert out[0] == pytest.approx(0.4) and np.isnan(out[1])


def _overlap(n_images=40, *, shift=None, seed=0):
    """Three annotators label the same two persons per image; `shift(annotator, kps)` alters labels."""
    rng = np.random.default_rng(seed)
    labels = []
    for i in range(n_images):
        for a in "ABC":
            for cx in (250, 800):
                kps = noisy(pose(cx=cx + 3 * (i % 5)), rng, 2.0)
                labels.append(
                    {"file": f"img{i}.jpg", "annotator": a, "kps": shift(a, kps, i) if shift else kps}
                )
    return labels


def test_convention_offset_is_reported_for_the_annotator_who_differs_only():
    def higher_shoulder(a, kps, i):
        if a == "B":
            kps[K["left_shoulder"], 1] -= 6.0  # about 0.045 scale units
        return kps

    found = [
        f
        for f in rows_of(
            run_deep_qa(make_dataset(_overlap(shift=higher_shoulder))).findings, "qa.low_agreement"
        )
        if f["annotation_id"] is None
    ]
    assert [(f["annotator"], f["keypoint"]) for f in found] == [("B", "left_shoulder")]
    assert found[0]["message"].startswith("annotator B places left_shoulder 0.0")
    assert "scale units higher than the others on 80 instances" in found[0]["message"]


def test_clean_overlap_has_no_findings_and_high_scores():
    result = run_deep_qa(make_dataset(_overlap()))
    assert result.findings.num_rows == 0 or set(result.findings["check"].to_pylist()) == {"qa.pose_coverage"}
    cards = result.annotators.to_pylist()
    assert [c["annotator"] for c in cards] == ["A", "B", "C"]
    assert all(c["agreement_oks"] > 0.9 and c["n_overlap"] == 80 for c in cards)


def test_visibility_disagreement_names_the_odd_annotator_and_keypoint():
    def occluded_knee(a, kps, i):
        if a == "C" and i == 3:
            kps[K["left_knee"], 2] = 1.0
        return kps

    result = run_deep_qa(make_dataset(_overlap(shift=occluded_knee)))
    found = [f for f in rows_of(result.findings, "qa.low_agreement") if f["message"].startswith("visibility")]
    # both persons of img3 as labeled by C
    assert [(f["annotator"], f["keypoint"], f["file_name"]) for f in found] == [
        ("C", "left_knee", "img3.jpg")
    ] * 2
    assert len({f["annotation_id"] for f in found}) == 2
    assert (
        "marks left_knee occluded; the 2 other annotators of this image mark it visible"
        in found[0]["message"]
    )
    kp = {(r["annotator"], r["keypoint"]): r for r in result.keypoints.to_pylist()}
    assert (
        kp[("C", "left_knee")]["visibility_kappa"] is None
        or kp[("C", "left_knee")]["visibility_kappa"] <= 0.0
    )


def test_low_agreement_blames_the_outlier_instance():
    def sloppy(a, kps, i):
        if a == "A" and i == 5:
            kps[:, :2] += np.random.default_rng(9).normal(0, 25, (17, 2))
        return kps

    found = [
        f
        for f in rows_of(run_deep_qa(make_dataset(_overlap(shift=sloppy))).findings, "qa.low_agreement")
        if f["annotation_id"] is not None and not f["message"].startswith("visibility")
    ]
    assert {(f["annotator"], f["file_name"]) for f in found} == {("A", "img5.jpg")}
    assert all(f["value"] < 0.75 for f in found)


def test_overlap_items_match_by_file_name_across_image_ids():
    # each annotator's export numbers images its own way: same file name, different image ids
    rng = np.random.default_rng(4)
    parts = [
        make_dataset(
            [{"file": f"{i}.jpg", "annotator": a, "kps": noisy(pose(), rng, 2.0)} for i in range(5)],
            id_offset=100 * n,
        )
        for n, a in enumerate("AB")
    ]
    merged = Dataset(
        parts[0].schema,
        concat_images([p.images for p in parts]),
        concat_instances([p.instances for p in parts], 17),
    )
    cards = run_deep_qa(merged).annotators.to_pylist()
    assert [c["n_overlap"] for c in cards] == [5, 5]
