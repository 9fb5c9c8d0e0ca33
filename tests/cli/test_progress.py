"""Progress: the domain tells stages to a listener; the CLI shows bars in a terminal and plain log
lines otherwise; text the user wrote is never eaten as markup."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from kpdeliver.progress import LogProgress, reporting, stage, tracked

ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    def __init__(self):
        self.events = []

    def started(self, stage, total):
        self.events.append(("start", stage, total))

    def advanced(self, stage, done):
        self.events.append(("advance", stage, done))

    def finished(self, stage):
        self.events.append(("finish", stage))


def test_tracked_tells_the_listener_each_item_and_nothing_without_one():
    assert list(tracked("ingest", [1, 2])) == [1, 2]  # no listener: just the items
    rec = Recorder()
    with reporting(rec):
        assert list(tracked("ingest", ["a", "b", "c"])) == ["a", "b", "c"]
        with stage("publishing") as s:
            s.advance(0)
    assert rec.events == [
        ("start", "ingest", 3),
        *[("advance", "ingest", 1)] * 3,
        ("finish", "ingest"),
        ("start", "publishing", None),
        ("finish", "publishing"),
    ]


def test_log_lines_carry_counts_rates_and_right_plurals():
    stream = io.StringIO()
    logger = logging.getLogger("test.progress")
    logger.handlers[:] = [logging.StreamHandler(stream)]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    with reporting(LogProgress(logger, every=0)):
        list(tracked("verify", ["only"]))
        list(tracked("ingest", range(2)))
    lines = stream.getvalue().splitlines()
    assert lines[0] == "verify: started (1 item)"
    assert lines[2].startswith("verify: done, 1/1 item (100%), ") and "/s" in lines[2]
    assert "ingest: started (2 items)" in lines and any(
        line.startswith("ingest: done, 2/2 items") for line in lines
    )


def test_bars_render_counts_on_a_terminal():
    from kpdeliver.cli.output import BarProgress

    buf = io.StringIO()
    shown = BarProgress(Console(file=buf, force_terminal=True, width=100))
    with shown.bars, reporting(shown):
        list(tracked("staging [v0001]", range(5)))
    assert "5/5" in buf.getvalue() and "staging [v0001]" in buf.getvalue()


COUNTS = (
    "images_listed",
    "images_delivered",
    "images_quarantined",
    "images_rejected_at_ingest",
    "instances_in",
    "instances_delivered",
    "instances_quarantined",
    "instances_review_only",
)  # what verify cross-checks


def test_verify_prints_plain_progress_lines_when_not_a_terminal_and_keeps_brackets(tmp_path):
    release = tmp_path / "[acme] v0001"
    (release / "coco").mkdir(parents=True)
    data = b"{}"
    (release / "coco" / "train.json").write_bytes(data)
    (release / "manifest.json").write_text(
        json.dumps(
            {
                "files": {"coco/train.json": {"sha256": hashlib.sha256(data).hexdigest(), "size": 2}},
                "counts": dict.fromkeys(COUNTS, 0) | {"splits": {}},
            }
        )
    )
    out = subprocess.run(
        [sys.executable, "-c", "from kpdeliver.cli import main; main()", "verify", str(release)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "40"},
    )
    assert out.returncode == 0, out.stderr
    assert "verify: started (1 item)" in out.stderr and "verify: done, 1/1 item" in out.stderr
    assert f"OK {release}" in out.stdout.replace("\n", "")  # brackets survive
    assert str(release) in out.stdout  # one unwrapped line, even at 40 columns
    (release / "coco" / "train.json").write_bytes(b"[]")
    bad = subprocess.run(
        [sys.executable, "-c", "from kpdeliver.cli import main; main()", "verify", str(release)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert bad.returncode == 1 and "1 problem in" in bad.stderr and "1 problems" not in bad.stderr
