"""The documented Label Studio steps, run as written with the batch outside the repository:
`make ls-start LS_ROOT=… LS_PORT=…` (refused when a configured batch is not under LS_ROOT),
`kpdeliver push` (refused, creating nothing, for a batch the server cannot serve), `make ls-stop`."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from kpdeliver.synth import make_demo_batch

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _make(target: str, tmp: Path, **variables: str) -> list[str]:
    """`make <target> VAR=…` in the repository, with this machine's already-built tools."""
    tools = {
        "LS_VENV": os.environ.get("KPDELIVER_LS_VENV", str(REPO / ".work" / "ls-venv")),
        "LS_TEMPLATE": os.environ.get("KPDELIVER_LS_TEMPLATE", str(REPO / ".work" / "ls-template")),
        "VENV": str(Path(sys.executable).parent.parent),
        "PYTHON": sys.executable,
        "LS_DATA": str(tmp / "ls-data"),
    }
    return [
        "make",
        "--no-print-directory",
        "-s",
        target,
        *(f"{k}={v}" for k, v in {**tools, **variables}.items()),
    ]


def _client(folder: Path, name: str, port: int) -> Path:
    make_demo_batch(folder, seed=3, n_images=3, annotators=("ann_e",), overlap=0.0, n_gold=0)
    cfg = yaml.safe_load((folder / "client.yaml").read_text())
    cfg.update(dataset=name)
    cfg["tool"] = {"url": f"http://127.0.0.1:{port}", "users": {"eve@example.com": "ann_e"}}
    (folder / "client.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return folder / "client.yaml"


def _kpdeliver(*args: str, token: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from kpdeliver.cli import main; main()", *args],
        text=True,
        capture_output=True,
        env={**os.environ, "LABEL_STUDIO_TOKEN": token, "COLUMNS": "500"},
        timeout=300,
        check=False,
    )


def _lines(proc: subprocess.Popen) -> queue.Queue:
    out: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [out.put(line) for line in proc.stdout], daemon=True).start()
    return out


def test_ls_start_push_ls_stop_as_documented(tmp_path):
    from tests.s3_server import free_port

    port = free_port()
    batches = tmp_path / "batches"  # outside the repository
    config = _client(batches / "acme", "people-docs", port)
    stray = _client(tmp_path / "elsewhere" / "acme", "people-stray", port)

    refused = subprocess.run(
        _make(
            "ls-start",
            tmp_path,
            LS_ROOT=str(tmp_path / "elsewhere"),
            LS_PORT=str(port),
            LS_CONFIGS=str(config),
        ),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode != 0
    assert f"the batch folder {batches / 'acme' / 'batch'} is not under LS_ROOT" in refused.stderr
    assert not (tmp_path / "ls-data" / "ls.pid").exists(), "nothing was started"

    start, token = _start(tmp_path, batches, port, config)
    try:
        pid = int((tmp_path / "ls-data" / "ls.pid").read_text())

        pushed = _kpdeliver("push", "--config", str(config), token=token)
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        assert "created" in pushed.stdout
        projects = httpx.get(
            f"http://127.0.0.1:{port}/api/projects/", headers={"Authorization": f"Token {token}"}
        )
        before = projects.json()["count"]

        stopped = _kpdeliver("push", "--config", str(stray), token=token)
        assert stopped.returncode == 2
        said = " ".join((stopped.stdout + stopped.stderr).split())
        assert f"does not hold the batch folder {tmp_path / 'elsewhere' / 'acme' / 'batch'}" in said
        assert "Traceback" not in stopped.stdout + stopped.stderr
        projects = httpx.get(
            f"http://127.0.0.1:{port}/api/projects/", headers={"Authorization": f"Token {token}"}
        )
        assert projects.json()["count"] == before, "the refused push created no project"

        stop = subprocess.run(
            _make("ls-stop", tmp_path), cwd=REPO, capture_output=True, text=True, timeout=120, check=False
        )
        assert stop.returncode == 0, stop.stderr
        assert start.wait(timeout=60) == 0
        assert not Path(f"/proc/{pid}").exists(), "Label Studio is gone"

        start, _ = _start(tmp_path, batches, port, config)  # killing `make ls-start` stops it too
        pid = int((tmp_path / "ls-data" / "ls.pid").read_text())
        start.terminate()
        start.wait(timeout=60)
        deadline = time.monotonic() + 60
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not Path(f"/proc/{pid}").exists(), "Label Studio did not outlive make ls-start"
    finally:
        if start.poll() is None:
            start.terminate()
            start.wait(timeout=60)


def _start(tmp: Path, batches: Path, port: int, config: Path) -> tuple[subprocess.Popen, str]:
    """`make ls-start` running, and the token it printed."""
    start = subprocess.Popen(
        _make("ls-start", tmp, LS_ROOT=str(batches), LS_PORT=str(port), LS_CONFIGS=str(config)),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = _lines(start)
    said: list[str] = []
    deadline = time.monotonic() + 600  # a first start may migrate the template database
    try:
        while True:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert start.poll() is None, f"make ls-start ended: {''.join(said)}"
                assert time.monotonic() < deadline, f"make ls-start printed no token: {''.join(said)}"
                continue
            said.append(line)
            if line.startswith("export LABEL_STUDIO_TOKEN="):
                return start, line.split("=", 1)[1].strip()
    except BaseException:
        start.terminate()  # Label Studio goes with it
        start.wait(timeout=60)
        raise
