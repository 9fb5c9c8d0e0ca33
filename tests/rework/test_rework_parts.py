"""The rework loop's parts without a delivery: the feedback check, the ledger's rule that nothing
is sent twice, a rework round replacing the labels it answers, and the rework-rate sign-off rule."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from kpdeliver.codecs import REJECTED_SCHEMA
from kpdeliver.collect.superseded import latest_rounds, rework_round, supersede_reworked, supersede_rows
from kpdeliver.config import QAThresholds
from kpdeliver.findings import empty_findings, findings_for
from kpdeliver.model import Instances
from kpdeliver.release.signoff import Counts, signoff
from kpdeliver.rework.feedback import FeedbackError, feedback_items, parse_feedback
from kpdeliver.rework.ledger import Ledger, held_from_sending
from kpdeliver.rework.status import rework_counts

IMAGES = pa.table(
    {
        "image_id": [1, 2, 3],
        "file_name": ["a.jpg", "b.jpg", "c.jpg"],
        "status": ["delivered", "delivered", "quarantined"],
    }
)
ANNOTATIONS = pa.table(
    {
        "annotation_id": [10, 11],
        "image_id": [1, 2],
        "file_name": ["a.jpg", "b.jpg"],
        "annotator": ["ann_a", "ann_b"],
    }
)
QUARANTINE = pa.table(
    {
        "annotation_id": [12],
        "image_id": [3],
        "file_name": ["c.jpg"],
        "annotator": ["ann_a"],
        "checks": ["bounds.visible_outside_image"],
        "reasons": ["out"],
    }
)


def _items(name: str, text: str) -> pa.Table:
    return feedback_items(
        name,
        parse_feedback(name, text.encode()),
        images=IMAGES,
        annotations=ANNOTATIONS,
        quarantine=QUARANTINE,
    )


def test_feedback_names_every_unknown_id_and_does_nothing():
    with pytest.raises(FeedbackError) as e:
        _items("fb.csv", "file_name,annotation_id,reason\na.jpg,,elbow\nzzz.jpg,,x\n,999,y\nb.jpg,,\n")
    msg = str(e.value)
    assert (
        "unknown file name zzz.jpg" in msg
        and "unknown annotation id 999" in msg
        and "row 4 has no reason" in msg
    )
    assert msg.endswith("nothing was done")


def test_feedback_rows_become_items_of_the_labels_owner():
    items = _items(
        "fb.json", '[{"annotation_id": 11, "reason": "knee"}, {"file_name": "c.jpg", "reason": "hip"}]'
    )
    assert sorted(zip(items["annotator"].to_pylist(), items["file_name"].to_pylist(), strict=True)) == [
        ("ann_a", "c.jpg"),
        ("ann_b", "b.jpg"),
    ]
    assert all("fb.json" in r for r in items["reason"].to_pylist())
    with pytest.raises(FeedbackError, match="header"):
        _items("fb.csv", "name,why\na.jpg,x\n")


def test_an_item_out_for_rework_is_not_sent_again():
    ledger = Ledger(
        [{"round": "r0001", "release": 1, "annotator": "ann_a", "file_name": "c.jpg", "items": []}]
    )
    assert "out for rework" in held_from_sending(ledger, {}, release=1)[("ann_a", "c.jpg")]
    returned = {("ann_a", "c.jpg"): "r0001"}
    assert ("ann_a", "c.jpg") in held_from_sending(ledger, returned, release=1), "not twice for one release"
    assert held_from_sending(ledger, returned, release=2) == {}, (
        "a new release judged the fix: it may go again"
    )
    assert ledger.next_round() == "r0002"


def test_the_newest_rework_round_replaces_the_annotators_labels_of_that_image():
    sources = np.asarray(
        [
            "annotations/ann_a/x.json",
            "annotations/ann_a/rework/r0001/x.xml",
            "annotations/ann_a/rework/r0002/y.json",
            "annotations/ann_a/x.json",
            "annotations/ann_b/x.json",
        ],
        dtype=object,
    )
    ins = Instances.build(
        id=[1, 2, 3, 4, 5],
        image_id=[7, 7, 7, 8, 7],
        keypoints=np.zeros((5, 2, 3)),
        annotator=["ann_a"] * 4 + ["ann_b"],
        extra={"source": sources},
    )
    latest = latest_rounds(ins)
    assert latest == {("ann_a", 7): "r0002"} and rework_round(sources[0]) is None
    assert supersede_reworked(ins, latest).id.tolist() == [3, 4, 5]
    rejected = pa.table(
        {
            "annotation_id": [9, 9],
            "image_id": [7, 8],
            "annotator": ["ann_a", "ann_a"],
            "source": ["annotations/ann_a/x.json"] * 2,
            "check": ["c"] * 2,
            "reason": ["r"] * 2,
            "raw": ["{}"] * 2,
        },
        schema=REJECTED_SCHEMA,
    )
    assert supersede_rows(rejected, latest, {})["image_id"].to_pylist() == [8]
    found = findings_for(
        "schema.keypoint_count",
        annotator=["ann_a"],
        file_name=["p.jpg"],
        source=["annotations/ann_a/x.json"],
        message=["m"],
        n=1,
    )
    assert supersede_rows(found, latest, {"p.jpg": 7}).num_rows == 0


def test_rework_rate_rule_and_counts():
    counts = Counts(
        images_listed=10,
        images_delivered=10,
        images_quarantined=0,
        images_rejected_at_ingest=0,
        instances_in=10,
        instances_delivered=10,
        instances_quarantined=0,
        instances_review_only=0,
        splits={"train": 10},
        delivered_error_findings=0,
        findings=0,
    )
    rules = QAThresholds(
        max_rework_rate=0.1,
        min_mean_oks=0,
        min_agreement_oks=None,
        min_gold_oks=None,
        max_coverage_bins_short=None,
        min_labels_per_annotator=None,
    )
    empty = empty_findings()
    verdict = signoff(rules, counts, empty, None, rework_rate=0.25)
    rule = next(r for r in verdict.rules if r.rule == "max_rework_rate")
    assert rule.outcome == "conditional" and "25.0% of the labeled images" in rule.message
    assert (
        next(
            r
            for r in signoff(rules, counts, empty, None, rework_rate=0.05).rules
            if r.rule == "max_rework_rate"
        ).outcome
        == "pass"
    )
    status = pa.table(
        {
            "annotator": ["ann_a", "ann_a", "ann_b"],
            "checks": ["x", "x,y", "y"],
            "status": ["fixed", "still failing", "still out"],
        }
    )
    c = rework_counts(status)
    assert c["total"] == {"sent": 3, "returned": 2, "fixed": 1, "still failing": 1, "still out": 1}
    assert c["annotators"]["ann_a"]["returned"] == 2 and c["checks"]["y"]["still out"] == 1


def test_an_item_names_the_keypoint_the_reason_and_where_gold_has_it():
    from kpdeliver.model import Dataset, Images
    from kpdeliver.release.quarantine import QUARANTINE_SCHEMA
    from kpdeliver.rework.items import item_text, rework_items
    from kpdeliver.schema import COCO17

    k = COCO17.num_keypoints
    images = Images.build(id=[1], file_name=["a.jpg"], width=[100], height=[100])
    mine, gold_kps = np.zeros((1, k, 3)), np.zeros((1, k, 3))
    mine[0, :, :] = (10, 10, 2)
    gold_kps[0, :, :] = (12, 11, 2)
    gold_kps[0, 0] = (40, 30, 2)  # gold has the nose elsewhere
    labels = Dataset(
        COCO17, images, Instances.build(id=[5], image_id=[1], keypoints=mine, annotator=["ann_a"])
    )
    gold = Dataset(
        COCO17, images, Instances.build(id=[9], image_id=[1], keypoints=gold_kps, annotator=["gold"])
    )
    found = findings_for(
        "qa.gold_mismatch",
        severity="error",
        image_id=[1],
        file_name=["a.jpg"],
        annotation_id=[5],
        keypoint=["nose"],
        annotator=["ann_a"],
        message=["nose 30 px from gold"],
        n=1,
    )
    items = rework_items(QUARANTINE_SCHEMA.empty_table(), found, labels=labels, gold=gold).to_pylist()
    assert [(i["annotator"], i["file_name"], i["annotation_id"], i["keypoint"]) for i in items] == [
        ("ann_a", "a.jpg", 5, "nose")
    ]
    assert items[0]["reference"] == "gold has nose at (40.0, 30.0)"
    assert (
        item_text(items)
        == "[qa.gold_mismatch] instance 5, nose: nose 30 px from gold (gold has nose at (40.0, 30.0))"
    )
