"""A batch whose images/ holds nothing (only an export arrived): the flow does not crash, it
publishes an empty release whose sign-off fails in plain words, with every instance accounted for."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from kpdeliver.config import load_config
from tests.collect.batch_helpers import REAL

pytestmark = pytest.mark.slow


def test_a_batch_without_images_publishes_an_empty_release_that_fails(tmp_path, prefect_harness):
    from flows.delivery import delivery_run

    doc = json.loads((REAL / "super-gradients" / "person_keypoints_val2017.json").read_bytes())
    (tmp_path / "batch/annotations/ann_a").mkdir(parents=True)
    (tmp_path / "batch/annotations/ann_a/export.json").write_text(json.dumps(doc))
    (tmp_path / "client.yaml").write_text(
        yaml.safe_dump(
            {
                "client": "empty",
                "dataset": "pose",
                "schema": "coco17",
                "source": "./batch",
                "releases": "./releases",
                "annotators": ["ann_a"],
            }
        )
    )
    summary = delivery_run(load_config(tmp_path / "client.yaml"))
    counts = summary.counts
    assert summary.verdict == "fail"
    assert counts["images_delivered"] == counts["instances_delivered"] == 0
    assert counts["instances_in"] == counts["instances_quarantined"] + counts["instances_review_only"]
    signoff = json.loads((Path(summary.release) / "qa/signoff.json").read_bytes())
    assert any("nothing delivered" in r for r in signoff["reasons"]), signoff["reasons"]
    held = pq.read_table(Path(summary.release) / "qa/quarantine.parquet")
    assert held.num_rows == counts["instances_quarantined"]
