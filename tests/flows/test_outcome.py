"""What a delivery run's final state, artifact and last log line say (flows.outcome), from a run's
summary: the words and the report link, without a server (the end-to-end run through Prefect's
API is tests/test_deploy.py)."""

from __future__ import annotations

import logging
import sys
from urllib.parse import urlsplit

from flows.outcome import (
    RefusedConfigLogs,
    Subject,
    failure_markdown,
    report_link,
    state_message,
    state_name,
    success_markdown,
)
from kpdeliver.config import ConfigError

SUMMARY = {
    "release": "/srv/releases/acme/pose/v0003",
    "version": 3,
    "duplicate_of_published": False,
    "verdict": "conditional",
    "report": "/srv/releases/acme/pose/v0003/qa/report.html",
    "findings": "/srv/releases/acme/pose/v0003/qa/findings.parquet",
    "counts": {
        "images_delivered": 1200,
        "images_quarantined": 3,
        "images_rejected_at_ingest": 1,
        "instances_delivered": 4100,
        "instances_quarantined": 7,
        "instances_review_only": 90,
        "findings": 41,
    },
    "qa": {
        "reasons": [
            "annotator ann_b: gold OKS 0.71 on 12 gold instances, below 0.75 | see qa/annotators.parquet"
        ]
    },
}


def test_the_state_is_named_by_version_and_verdict():
    assert state_name(SUMMARY) == "Published v0003 · conditional"
    assert state_name({**SUMMARY, "duplicate_of_published": True}) == "Already published v0003 · conditional"


def test_the_message_says_verdict_place_counts_and_report_on_one_line():
    message = state_message(SUMMARY)
    assert message == (
        "verdict conditional: release /srv/releases/acme/pose/v0003; 1,200 images and 4,100 "
        "instances delivered, 3 images quarantined, 41 findings, 1 sign-off reason; "
        "report /srv/releases/acme/pose/v0003/qa/report.html"
    )
    assert "no new version" in state_message({**SUMMARY, "duplicate_of_published": True})


def test_the_artifact_holds_release_verdict_counts_reasons_and_report():
    md = success_markdown(Subject("acme", "pose"), SUMMARY)
    assert md.startswith("# acme/pose: Published v0003 · conditional\n")
    assert "| release | `/srv/releases/acme/pose/v0003` |" in md and "| verdict | **conditional** |" in md
    assert "| report | `/srv/releases/acme/pose/v0003/qa/report.html` |" in md
    assert "| images | 1,200 | 3 | 1 refused at ingest |" in md
    assert (
        "- annotator ann_b: gold OKS 0.71 on 12 gold instances, below 0.75 \\| see qa/annotators.parquet"
        in md
    )
    clean = success_markdown(Subject("acme", "pose"), {**SUMMARY, "qa": {"reasons": []}})
    assert "none: every sign-off rule passed" in clean


def test_a_failed_run_says_its_sentence_and_that_nothing_was_published():
    md = failure_markdown(Subject("acme", "pose"), "cannot write /r/x: the disk is full")
    assert "Nothing was published" in md and "cannot write /r/x: the disk is full" in md


def test_artifact_keys_are_what_prefect_accepts():
    assert Subject("Acme_Corp", "Pose.2026").artifact_key == "acme-corp-pose-2026-delivery"


def test_the_report_link_is_presigned_on_s3_and_the_path_locally(monkeypatch):
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    assert report_link(SUMMARY, {}) == SUMMARY["report"]
    on_s3 = {
        **SUMMARY,
        "release": "s3://kp-rel/releases/acme/pose/v0003",
        "report": "s3://kp-rel/releases/acme/pose/v0003/qa/report.html",
    }
    link = urlsplit(report_link(on_s3, {"endpoint_url": "http://127.0.0.1:9"}))
    assert (link.scheme, link.netloc, link.path) == (
        "http",
        "127.0.0.1:9",
        "/kp-rel/releases/acme/pose/v0003/qa/report.html",
    )
    assert "X-Amz-Signature=" in link.query and "X-Amz-Expires=604800" in link.query
    assert report_link(on_s3, None) == on_s3["report"]  # a parent run without the store's settings


def _record(exc: BaseException | None, level: int = logging.ERROR) -> logging.LogRecord:
    try:
        if exc is not None:
            raise exc
    except BaseException:
        info = sys.exc_info()
    else:
        info = None
    return logging.LogRecord(
        "prefect.flow_runs", level, __file__, 1, "Engine execution exited with unexpected exception", (), info
    )


def test_prefects_traceback_of_a_refused_config_is_left_out_and_a_bug_keeps_its_own():
    keep = RefusedConfigLogs()
    assert not keep.filter(_record(ConfigError("c.yaml: field 'source': source folder /b does not exist")))
    assert keep.filter(_record(KeyError("a bug")))
    assert keep.filter(_record(None, logging.INFO))
