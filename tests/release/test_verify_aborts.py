"""`kpdeliver verify` never aborts at exit. It read the catalogue with Arrow's thread pools, whose
native threads could still be alive when the interpreter tore down: `terminate called without an
active exception`, exit 134, in about one run out of fifteen on a busy two-core machine."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kpdeliver.release.catalog import append_release
from kpdeliver.storage import LocalStore
from tests.release_helpers import publish_small_release

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from kpdeliver.cli import main; main()"]
RUNS, LOOPS = 200, 2


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("aborts")
    store = LocalStore(root / "releases")
    publish_small_release(store, LocalStore(root / "source"))
    append_release(
        store, "acme", "pose", 1
    )  # verify reads the catalogue: the Parquet read is the one at stake
    return root / "releases" / "acme" / "pose" / "v0001"


def _verify_loop(release: Path, runs: int) -> list[tuple[int, str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    failures = []
    for _ in range(runs):
        done = subprocess.run(
            [*CLI, "verify", str(release)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            failures.append((done.returncode, done.stderr[-300:]))
    return failures


def test_verify_exits_0_every_time_with_the_machine_busy(release):
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # loads the core the loops leave
    try:
        with ThreadPoolExecutor(LOOPS) as pool:
            failures = [
                f for loop in pool.map(_verify_loop, [release] * LOOPS, [RUNS // LOOPS] * LOOPS) for f in loop
            ]
    finally:
        busy.kill()
        busy.wait()
    assert failures == [], f"{len(failures)} of {RUNS} runs failed, first: {failures[:3]}"


def test_reading_the_catalogue_starts_no_native_thread(release):
    """The cause, in one process: the catalogue read leaves the thread count where it was."""
    probe = (
        "import os, sys\n"
        "from kpdeliver.release.catalog import read_catalog\n"
        "from kpdeliver.storage import LocalStore\n"
        "store = LocalStore(sys.argv[1])\n"
        "before = len(os.listdir('/proc/self/task'))\n"
        "read_catalog(store, 'acme')\n"
        "print(before, len(os.listdir('/proc/self/task')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(release.parents[2])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    before, after = map(int, out.stdout.split())
    assert after == before
