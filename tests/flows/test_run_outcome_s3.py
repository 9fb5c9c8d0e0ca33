"""A delivery published on S3 (moto on loopback), run by `kpdeliver deliver` as a person runs it: the
flow run's final state is named by the outcome, and its markdown artifact links the report through
a presigned URL that serves the report (the words of a run delivering known inputs again:
tests/flows/test_outcome.py)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from kpdeliver.synth import make_demo_batch

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
KPDELIVER = [sys.executable, "-c", "from kpdeliver.cli import main; main()"]


def _deliver(config: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(config.parent / "prefect")}
    out = subprocess.run(
        [*KPDELIVER, "deliver", "-c", str(config), "--work", str(config.parent / "work")],
        env=env,
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _last_run(config: Path) -> tuple[str, str, str, str]:
    """State type, name and message of the last delivery-run, and its markdown artifact."""
    with sqlite3.connect(config.parent / "prefect" / "prefect.db") as db:
        ((run_id, kind, name, message),) = db.execute(
            "SELECT f.id, s.type, s.name, s.message FROM flow_run f JOIN flow_run_state s ON s.id = f.state_id "
            "WHERE f.flow_id IN (SELECT id FROM flow WHERE name = 'delivery-run') ORDER BY f.created DESC LIMIT 1"
        )
        ((data,),) = db.execute(
            "SELECT data FROM artifact WHERE flow_run_id = ? AND type = 'markdown'", (run_id,)
        )
    return kind, name, message, json.loads(data)


def test_a_run_on_s3_names_its_outcome_and_links_its_report_presigned(tmp_path, s3_bucket):
    config = make_demo_batch(tmp_path, seed=5, n_images=6)
    doc = yaml.safe_load(config.read_text()) | {"releases": f"s3://{s3_bucket}/releases"}
    config.write_text(yaml.safe_dump(doc))
    _deliver(config)
    kind, name, message, markdown = _last_run(config)
    release = f"s3://{s3_bucket}/releases/demo/people-demo/v0001"
    verdict = re.search(r"\| verdict \| \*\*(\w+)\*\* \|", markdown).group(1)
    assert (kind, name) == ("COMPLETED", f"Published v0001 · {verdict}")
    assert message.startswith(f"verdict {verdict}: release {release};")
    assert f"| release | `{release}` |" in markdown
    link = re.search(r"\| report \| \[report\.html\]\((http[^)]+)\) \|", markdown).group(1)
    assert f"report {link}" in message
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    with opener.open(link, timeout=30) as response:
        assert b"<html" in response.read(4096).lower()
