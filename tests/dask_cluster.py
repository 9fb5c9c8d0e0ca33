"""An external Dask cluster whose workers share nothing with the process that starts it.

A `dask scheduler` on loopback and N `dask worker` processes (no nanny: each worker is the process
started here, so its pid is known). Every worker runs in a folder of its own, with its own HOME,
TMPDIR and PREFECT_HOME and an environment built from nothing but PATH, PYTHONPATH (the code) and
what the caller passes (the Prefect API's URL, the S3 endpoint and credentials). Where unprivileged
user namespaces are allowed (`unshare -rm`), each worker also runs in a mount namespace of its own
in which the `hide` folders (the flow host's temporary folders) are replaced by empty tmpfs mounts:
the files of the flow host do not exist for it, and its own folder lives in that tmpfs too.

Used by tests/flows/test_dask_shared_nothing.py and bench/delivery.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# in the worker's mount namespace: empty tmpfs over each hidden folder, then its own folders
_WORKER_SH = """set -e
own="$1"; shift
if [ "$KPDELIVER_HIDE" = 1 ]; then
  for d in "$@"; do mount -t tmpfs kpdeliver-hidden "$d"; done
fi
mkdir -p "$own/home" "$own/tmp" "$own/prefect"
cd "$own"
exec "$PYTHON" -m distributed.cli.dask_worker "$SCHEDULER" --no-nanny --nthreads 1 --no-dashboard \
  --local-directory "$own/dask" --name "$WORKER_NAME"
"""


def namespaces_work() -> bool:
    """True when this machine lets an unprivileged process make a user and mount namespace."""
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-rm", "true"], check=False, capture_output=True).returncode == 0


def outermost(paths: Sequence[Path]) -> list[Path]:
    """The folders of `paths` not inside another one of them (a mount over the outer hides both)."""
    resolved = sorted({p.resolve() for p in paths if p.exists()}, key=lambda p: len(p.parts))
    out: list[Path] = []
    for p in resolved:
        if not any(p.is_relative_to(o) for o in out):
            out.append(p)
    return out


@dataclass
class Cluster:
    address: str
    workers: list[subprocess.Popen]
    namespaced: bool
    folders: list[Path] = field(default_factory=list)

    @property
    def worker_pids(self) -> set[int]:
        return {w.pid for w in self.workers}

    def run(self, fn, *args) -> dict:
        """`fn(*args)` in every worker: {worker address: result}."""
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            return client.run(fn, *args)


def _wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the dask scheduler exited with code {proc.returncode}")
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            time.sleep(0.1)
    raise RuntimeError(f"the dask scheduler wrote no {path.name} within {timeout:.0f} s")


def _worker(
    address: str, own: Path, name: str, hide: list[Path], env: Mapping[str, str], namespaced: bool
) -> subprocess.Popen:
    wenv = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "PYTHON": sys.executable,
        "SCHEDULER": address,
        "WORKER_NAME": name,
        "KPDELIVER_HIDE": "1" if namespaced else "0",
        "HOME": str(own / "home"),
        "TMPDIR": str(own / "tmp"),
        "PREFECT_HOME": str(own / "prefect"),
        "DASK_TEMPORARY_DIRECTORY": str(own / "tmp"),
        **env,
    }
    cmd = ["sh", "-c", _WORKER_SH, "sh", str(own), *map(str, hide)]
    if namespaced:
        cmd = ["unshare", "-rm", *cmd]
    else:
        own.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(cmd, env=wenv, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextmanager
def shared_nothing_cluster(
    work: Path, n_workers: int, *, hide: Sequence[Path], env: Mapping[str, str]
) -> Iterator[Cluster]:
    """A scheduler (its files in `work`) and `n_workers` workers in `work/worker-<i>` as above."""
    from distributed import Client

    work.mkdir(parents=True, exist_ok=True)
    namespaced, hidden = namespaces_work(), outermost(hide)
    sched_file = work / "scheduler.json"
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(sched_file),
        ],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs: list[subprocess.Popen] = []
    try:
        address = _wait_for_file(sched_file, scheduler)["address"]
        folders = [work / f"worker-{i}" for i in range(n_workers)]
        procs = [_worker(address, own, f"w{i}", hidden, env, namespaced) for i, own in enumerate(folders)]
        with Client(address, timeout=30) as client:
            client.wait_for_workers(n_workers, timeout=120)
        yield Cluster(address, procs, namespaced, folders)
    finally:
        for p in (*procs, scheduler):
            p.terminate()
        for p in (*procs, scheduler):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
