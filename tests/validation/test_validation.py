"""The one validation routine: the same findings whichever runner runs the row rules (the CLI's
worker process or the flow's in-process GX), each set's earlier findings first, deep QA last."""

from __future__ import annotations

import orjson
import pytest

from expectations.worker import GXWorker
from kpdeliver.config import ValidationSettings
from kpdeliver.findings import findings_for
from kpdeliver.validation import AnnotationSet, InProcessRules, validate_annotations
from tests.expectations.expectation_helpers import clean_dataset

pytestmark = pytest.mark.slow  # both run Great Expectations (a worker process, or in this one)


def _broken():
    ds = clean_dataset()
    ds.instances.keypoints[0, 0, :2] = (-50.0, -50.0)  # a visible nose far outside the image
    ds.instances.annotator[:] = "ann_a"
    return ds


def test_worker_and_in_process_rules_give_the_same_findings(tmp_path):
    earlier = findings_for("collect.unreadable_file", message="earlier", source="x.json", n=1)
    second = clean_dataset()
    second.instances.annotator[:] = "ann_b"
    sets = [AnnotationSet(_broken(), earlier, source="a.json"), AnnotationSet(second)]
    with GXWorker() as worker:
        by_worker = validate_annotations(sets, rules=worker, settings=ValidationSettings())
    in_process = validate_annotations(sets, rules=InProcessRules(), settings=ValidationSettings())
    assert by_worker.findings.equals(in_process.findings)
    assert by_worker.annotators is None and by_worker.keypoints is None  # no deep QA asked for
    rows = by_worker.findings.to_pylist()
    assert rows[0]["check"] == "collect.unreadable_file"
    assert (
        rows[1]["check"].startswith("bounds.")
        and rows[1]["source"] == "a.json"
        and rows[1]["annotation_id"] == 10
    )
    assert by_worker.n_errors >= 1
    # the row rules' results come back typed, one summary per set (not online-only Data Docs, nor a file)
    assert len(by_worker.rules) == 2 and by_worker.rules == in_process.rules
    assert by_worker.rules[0][0]["expectations"] and orjson.loads(by_worker.results_json)


def test_deep_qa_runs_on_the_given_dataset_and_comes_last():
    from kpdeliver.codecs import Decoded
    from kpdeliver.collect.files import merge_decoded

    a, b = _broken(), clean_dataset()
    b.instances.annotator[:] = "ann_b"
    sets = [AnnotationSet(a), AnnotationSet(b)]
    rules_only = validate_annotations(sets, rules=InProcessRules(), settings=ValidationSettings())
    both = merge_decoded([Decoded(a), Decoded(b)]).dataset
    result = validate_annotations(
        sets, rules=InProcessRules(), settings=ValidationSettings(), deep_qa_on=both
    )
    n = rules_only.findings.num_rows
    assert result.findings.slice(0, n).equals(rules_only.findings)
    assert all(c.startswith("qa.") for c in result.findings["check"].to_pylist()[n:])
    assert set(result.annotators["annotator"].to_pylist()) == {"ann_a", "ann_b"}
    assert result.keypoints is not None
