"""Gold items: mismatches located to the keypoint; gold matched by file name."""

from __future__ import annotations

import numpy as np

from kpdeliver.qa import run_deep_qa
from tests.qa._poses import K, make_dataset, noisy, pose, rows_of


def _case(edit):
    rng = np.random.default_rng(0)
    truth = [pose(cx=200 + 60 * i) for i in range(6)]
    labels = [
        {"file": f"g{i}.jpg", "annotator": "A", "kps": edit(i, noisy(t, rng, 1.0))}
        for i, t in enumerate(truth)
    ]
    gold = make_dataset([{"file": f"g{i}.jpg", "kps": t} for i, t in enumerate(truth)], id_offset=7000)
    return run_deep_qa(make_dataset(labels), gold=gold)


def test_far_point_and_visibility_mismatch_name_keypoint_and_instance():
    def edit(i, kps):
        if i == 2:
            kps[K["right_elbow"], :2] += [45, 0]  # about 2 kappa * s: beyond the 1.5 tolerance
        if i == 4:
            kps[K["left_ankle"], 2] = 1.0  # gold says visible
        return kps

    result = _case(edit)
    found = rows_of(result.findings, "qa.gold_mismatch")
    got = {(f["annotation_id"], f["keypoint"], f["file_name"]) for f in found}
    assert got == {(3, "right_elbow", "g2.jpg"), (5, "left_ankle", "g4.jpg")}
    msg = {f["keypoint"]: f["message"] for f in found}
    assert "kappa units" in msg["right_elbow"] and "from gold" in msg["right_elbow"]
    assert msg["left_ankle"] == "visibility: annotator A marks left_ankle occluded; gold has it visible"
    card = result.annotators.to_pylist()[0]
    assert card["n_gold"] == 6 and 0.8 < card["gold_oks"] < 1.0 and card["n_gold_mismatch"] == 2


def test_clean_labels_match_gold_without_findings():
    result = _case(lambda i, k: k)
    assert rows_of(result.findings, "qa.gold_mismatch") == []
    assert result.annotators.to_pylist()[0]["gold_visibility_kappa"] is None  # every flag is 2: undefined


def test_missed_gold_instance_is_reported():
    rng = np.random.default_rng(1)
    ds = make_dataset([{"file": "a.jpg", "kps": noisy(pose(cx=200), rng, 1.0)}])
    gold = make_dataset(
        [{"file": "a.jpg", "kps": pose(cx=200)}, {"file": "a.jpg", "kps": pose(cx=900)}], id_offset=50
    )
    found = rows_of(run_deep_qa(ds, gold=gold).findings, "qa.gold_mismatch")
    assert len(found) == 1 and found[0]["annotation_id"] is None and found[0]["image_id"] == 1
    assert "did not label gold instance" in found[0]["message"]
