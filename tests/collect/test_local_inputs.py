"""Inputs named on the command line are read from regular files only: a named pipe given as the
input, or lying beside it where a format's metadata is looked for, is refused or passed over in one
sentence, never opened and waited on (which would hang the command)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LS_EXPORT = ROOT / "tests" / "fixtures" / "real" / "sleap-io"


def kpdeliver(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from kpdeliver.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KPDELIVER_DEBUG": ""},
    )


def _ls_export() -> Path:
    found = sorted(
        p
        for p in LS_EXPORT.rglob("*.json")
        if b'"annotations"' in p.read_bytes()[:200000] and b'"original_width"' in p.read_bytes()
    )
    assert found, f"no Label Studio export under {LS_EXPORT}"
    return found[0]


@pytest.mark.parametrize("command", ["inspect", "convert", "validate"])
def test_a_named_pipe_as_the_input_is_refused_in_one_sentence(tmp_path, command):
    fifo = tmp_path / "export.json"
    os.mkfifo(fifo)
    args = {
        "inspect": [str(fifo)],
        "convert": [str(fifo), "--to", "yolo", "--schema", "coco17", "--out", str(tmp_path / "out")],
        "validate": [str(fifo), "--schema", "coco17", "--out", str(tmp_path / "out")],
    }[command]
    out = kpdeliver(command, *args)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert "named pipe" in out.stdout + out.stderr, out.stdout + out.stderr


def test_a_named_pipe_beside_an_export_is_passed_over(tmp_path):
    export = tmp_path / "tasks.json"
    shutil.copy(_ls_export(), export)
    os.mkfifo(tmp_path / "label_config.xml")
    out = kpdeliver("inspect", "--json", str(export))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "label-studio" in out.stdout and "mabp" in out.stdout, out.stdout
