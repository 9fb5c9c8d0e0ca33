"""Benchmark: a whole delivery of the synthetic demo batch, with a per-stage table, on the default
thread runner (1k, 5k and 20k images) and on Dask LocalClusters of 1 and 2 worker processes (20k).

Every run publishes a fresh release of the same batch (one Prefect server for all of them). Per
run: wall time and the CPU time of every process involved (this one, the Prefect server, Dask's
scheduler and workers); per stage, the summed run time of that task's runs, from Prefect's API.
The thread runs' CPU is fitted as fixed + per-image (targets: fixed <= 8 s, 20k <= 30 s). The
reference, measured in the same run: the floor of the I/O a delivery cannot avoid — read, hash
and copy every image once in one process. Machine load is printed first and last.

Building a 20k-image batch takes about 7 minutes; `--keep DIR` keeps the batches for the next run.

    python bench/delivery.py [--images 1000 5000 20000] [--dask 1 2] [--dask-images 20000] [--keep DIR]
                             [--shared-nothing 1000]

`--shared-nothing N` also runs the setup of tests/flows/test_dask_shared_nothing.py on N images: the
batch and the releases on a moto S3 server on loopback, delivered once on threads (the reference)
and once on an external `dask scheduler` with 2 `dask worker` processes in their own mount
namespace, folder, HOME and TMPDIR (the CPU of every process, moto's included, in both).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {one:.2f} {five:.2f} {fifteen:.2f}"


def tree_cpu() -> float:
    """CPU seconds of this process, of its ended children, and of every live descendant (the
    Prefect server, Dask's processes) with their own ended children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    tick, todo = os.sysconf("SC_CLK_TCK"), [str(os.getpid())]
    while todo:
        pid = todo.pop()
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            for child in children:
                fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
                total += sum(int(f) for f in fields[11:15]) / tick  # utime, stime, cutime, cstime
            todo += children
        except (FileNotFoundError, ProcessLookupError):
            pass  # ended between two reads: its time is in its parent's
    return total


def descendants() -> list[int]:
    """This process and every live descendant."""
    found, todo = [], [str(os.getpid())]
    while todo:
        pid = todo.pop()
        found.append(int(pid))
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for thread in Path(
                f"/proc/{pid}/task"
            ).iterdir():  # a child is listed under the thread that started it
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                    todo += (thread / "children").read_text().split()
    return found


class PeakRss:
    """Peak RSS of this process and of every descendant during a run: each process's peak is reset
    when the run starts (/proc/PID/clear_refs) and its high-water mark (VmHWM) read every 0.2 s,
    so a process that ends during the run (a Dask worker) keeps its last reading."""

    def __init__(self) -> None:
        self.peaks: dict[int, tuple[str, int]] = {}
        self._stop = False

    def _name(self, pid: int) -> str:
        if pid == os.getpid():
            return "bench (flow, threads)"
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        words = [a.decode(errors="replace") for a in argv if a and not a.startswith(b"-")]
        if any("prefect" in w or "uvicorn" in w for w in words):
            return "Prefect API server"
        return " ".join(Path(w).name for w in words[:3])[:40]

    def _read(self) -> None:
        for pid in descendants():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) * 1024  # type: ignore[union-attr]
                name = self.peaks[pid][0] if pid in self.peaks else self._name(pid)
            except (FileNotFoundError, ProcessLookupError, AttributeError):
                continue
            self.peaks[pid] = (name, max(hwm, self.peaks.get(pid, ("", 0))[1]))

    def __enter__(self) -> PeakRss:
        import threading

        for pid in descendants():
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # 5: reset the peak RSS to the current RSS

        def loop() -> None:
            while not self._stop:
                self._read()
                time.sleep(0.2)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop = True
        self._thread.join()
        self._read()

    def text(self) -> str:
        return ", ".join(
            f"{name} {rss / 2**20:.0f} MB" for name, rss in sorted(self.peaks.values(), key=lambda nr: -nr[1])
        )


def floor_seconds(batch: Path, out: Path) -> float:
    """Read, hash and write every image once, then one sync, as staging does (no Prefect, no
    validation): the I/O floor. Prints its CPU, user and system: the kernel's share of writing
    the copies swings with the disk from one minute to the next, in the delivery as here."""
    t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    for p in sorted((batch / "images").rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            hashlib.sha256(data).hexdigest()
            (out / p.name).write_bytes(data)
    os.sync()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    user, system = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
    print(
        f"  reference (read+hash+copy once, one sync): CPU {user + system:.1f} s ({user:.1f} user, {system:.1f} system)"
    )
    return time.perf_counter() - t0


def stage_table(flow_run_id) -> dict[str, tuple[int, float]]:
    """task name -> (runs, summed run seconds) of one flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    runs, only = [], FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        while page := client.read_task_runs(
            flow_run_filter=only, limit=200, offset=len(runs)
        ):  # the API's page cap
            runs += page
    table: dict[str, list] = defaultdict(lambda: [0, 0.0])
    for tr in runs:
        name = re.sub(r"-[0-9a-f]{3}$", "", tr.name)  # a run's name is its task's plus 3 hex digits
        table[name][0] += 1
        table[name][1] += tr.total_run_time.total_seconds()
    return {k: (n, s) for k, (n, s) in table.items()}


def latest_flow_run_id():
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)[0].id


def deliver(config, releases: Path, runner) -> tuple[float, float, dict]:
    from flows.delivery import delivery_run

    cfg = config.model_copy(update={"releases": str(releases), "runner": runner})
    t0, c0, r0 = time.perf_counter(), tree_cpu(), resource.getrusage(resource.RUSAGE_SELF)
    with PeakRss() as rss:
        summary = delivery_run(cfg)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    user, system = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
    wall, cpu, own = time.perf_counter() - t0, tree_cpu() - c0, user + system
    assert not summary.duplicate_of_published
    print(f"  peak RSS per process: {rss.text()}")
    print(
        f"  CPU: this process (the flow, on threads) {own:.1f} s ({user:.1f} user, {system:.1f} system), "
        f"every other process {cpu - own:.1f} s"
    )
    return wall, cpu, stage_table(latest_flow_run_id())


def shared_nothing(work: Path, run_dir: Path, n: int, shard_size: int) -> list[tuple]:
    """Threads, then 2 shared-nothing Dask workers, on the same S3-held batch; rows as main's."""
    from prefect.settings import PREFECT_API_URL

    from kpdeliver.config import load_config
    from kpdeliver.runner_settings import RunnerSettings
    from kpdeliver.storage import LocalStore, open_store
    from kpdeliver.synth import make_demo_batch
    from tests.dask_cluster import shared_nothing_cluster
    from tests.s3_server import DUMMY_AWS_ENV, free_port, make_bucket, moto_command, wait_healthy

    root = work / f"batch-{n}"
    if not (root / "client.yaml").exists():
        make_demo_batch(root, seed=1, n_images=n)
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = {**DUMMY_AWS_ENV, "AWS_ENDPOINT_URL": endpoint}
    os.environ.update(env)
    moto = subprocess.Popen(
        moto_command(int(endpoint.rsplit(":", 1)[1])),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    rows = []
    try:
        wait_healthy(endpoint, moto)
        bucket = make_bucket(endpoint)
        src, dst = LocalStore(root / "batch"), open_store(f"s3://{bucket}/batch", {"endpoint_url": endpoint})
        for key in src.list():
            dst.put(key, src.get(key))
        config = load_config(root / "client.yaml").model_copy(update={"source": f"s3://{bucket}/batch"})
        runs = [("s3 threads", None), ("s3 dask x2", 2)]
        for label, workers in runs:
            releases = f"s3://{bucket}/releases-{label.replace(' ', '')}"
            if workers is None:
                wall, cpu, stages = deliver(config, releases, RunnerSettings(shard_size=shard_size))
            else:
                cenv = {**env, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
                with shared_nothing_cluster(
                    run_dir / "cluster", workers, hide=[work, Path(tempfile.gettempdir())], env=cenv
                ) as cluster:
                    wall, cpu, stages = deliver(
                        config,
                        releases,
                        RunnerSettings(kind="dask", address=cluster.address, shard_size=shard_size),
                    )
            rows.append((n, label, wall, cpu, float("nan"), stages))
            print(
                f"\n{n} images, {label} (batch and releases on moto S3 on loopback): wall {wall:.1f} s, "
                f"CPU of all processes {cpu:.1f} s"
            )
    finally:
        moto.terminate()
        moto.wait()
    return rows


def print_summary(rows: list[tuple]) -> None:
    print("\nsummary: images, runner, wall s, CPU s (all processes), task run s (sum), reference s")
    for n, label, wall, cpu, floor, stages in rows:
        print(
            f"  {n:>6} {label:<9} {wall:7.1f} {cpu:7.1f} {sum(s for _, s in stages.values()):7.1f} {floor:7.2f}"
        )
    threads = [(n, cpu) for n, label, _, cpu, _, _ in rows if label == "threads"]
    if len(threads) >= 2:
        import numpy as np

        per_image, fixed = np.polyfit([n for n, _ in threads], [c for _, c in threads], 1)
        print(
            f"thread runner, CPU = {fixed:.1f} s fixed + {per_image * 1000:.2f} ms per image "
            f"(targets: fixed <= 8 s; 20,000 images <= 30 s, here {fixed + per_image * 20000:.1f} s)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, nargs="*", default=[1000, 5000, 20000])
    ap.add_argument("--dask", type=int, nargs="*", default=[1, 2], help="LocalCluster worker counts")
    ap.add_argument("--dask-images", type=int, default=20000)
    ap.add_argument("--shard-size", type=int, default=500)
    ap.add_argument("--keep", type=Path)
    ap.add_argument(
        "--shared-nothing", type=int, default=0, metavar="N", help="images for the S3 + external Dask run"
    )
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="kpdeliver-bench-delivery-"))
    work.mkdir(parents=True, exist_ok=True)

    from kpdeliver.cli.runtime import configure_prefect

    configure_prefect(work)
    from flows.runner import one_prefect_api
    from kpdeliver.config import load_config
    from kpdeliver.runner_settings import RunnerSettings
    from kpdeliver.synth import make_demo_batch

    # every run publishes into a folder of its own, and the last bench's are removed before any
    # timing: on this VM's ext4, deleting 50,000 files slows the file creations of the next minute
    run_dir = work / "runs"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    os.sync()
    print(f"load before: {load()}")
    rows = []
    with one_prefect_api(RunnerSettings(kind="dask")):  # one server for every run and worker
        sizes = sorted(set(args.images) | ({args.dask_images} if args.dask else set()))
        for n in sizes:
            root = work / f"batch-{n}"
            if not (root / "client.yaml").exists():
                make_demo_batch(root, seed=1, n_images=n)
            config = load_config(root / "client.yaml")
            floor_out = run_dir / f"floor-{n}"
            floor_out.mkdir()
            floor = floor_seconds(Path(config.source), floor_out)
            runners = (
                [("threads", RunnerSettings(shard_size=args.shard_size))] if n in args.images else []
            ) + [
                (f"dask x{w}", RunnerSettings(kind="dask", workers=w, shard_size=args.shard_size))
                for w in (args.dask if n == args.dask_images else [])
            ]
            for label, runner in runners:
                releases = run_dir / f"{n}-{label.replace(' ', '')}"
                wall, cpu, stages = deliver(config, releases, runner)
                rows.append((n, label, wall, cpu, floor, stages))
                print(
                    f"\n{n} images, {label}: wall {wall:.1f} s, CPU of all processes {cpu:.1f} s; "
                    f"reference (read+hash+copy every image once, one process) {floor:.2f} s"
                )
                print(f"  {'task':<18}{'runs':>6}{'run s':>9}")
                for name, (runs, secs) in sorted(stages.items(), key=lambda kv: -kv[1][1]):
                    print(f"  {name:<18}{runs:>6}{secs:>9.2f}")
        if args.shared_nothing:
            rows += shared_nothing(work, run_dir, args.shared_nothing, args.shard_size)
    print_summary(rows)
    print(f"load after: {load()}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":  # LocalCluster workers re-import this module
    main()
