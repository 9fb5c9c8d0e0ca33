"""Benchmark: `kpdeliver validate` beside `pycocotools.COCO(path)`, both as whole processes.

Generates a synthetic COCO-17 file (100,000 instances over 20,000 images, realistic visibility
mix, a sprinkle of real mistakes so findings get written; `--instances 1000000 --images 200000`
for the 1M case), then prints both wall times, their ratio and the peak RSS of the validate
process with its worker. Each is timed --runs times, alternating, and the medians are compared
(the machine is shared; its load is printed). Targets: ratio <= 2 at 100k and <= 1.3 at 1M;
peak RSS at 1M <= 2.5 GB.

    python bench/validate.py [--images 20000] [--instances 100000] [--runs 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def synthetic_file(n_images: int, n_instances: int, *, seed: int = 0) -> bytes:
    """The shared synthetic COCO-17 set with realistic mistakes on 0.3 % of instances (v=0 points
    with coordinates, visible points above the frame, wrong num_keypoints), so findings get written."""
    from kpdeliver.codecs.coco import encode
    from kpdeliver.synth.datasets import synthetic_dataset

    ds = synthetic_dataset(n_images, n_instances, seed=seed)
    ins, rng = ds.instances, np.random.default_rng(seed + 1)
    bad = rng.choice(len(ins), max(3, len(ins) * 3 // 1000), replace=False)
    a, b, c = np.array_split(bad, 3)
    ins.keypoints[a, 0] = (12.5, 7.0, 0)
    ins.keypoints[b, 1] = (40.0, -15.0, 2)
    ins.num_keypoints[:] = (ins.v > 0).sum(axis=1)
    ins.num_keypoints[c] += 1
    return encode(ds)


def _time_subprocess(cmd: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) of that child and its own children together (sampled every
    10 ms: `kpdeliver validate` runs Great Expectations in a worker process), and its exit code."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mb(proc.pid))
        time.sleep(0.01)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.read().decode()[-2000:]}")
    return wall, peak, proc.returncode


def _tree_rss_mb(pid: int) -> float:
    total, todo = 0, [str(pid)]
    while todo:
        p = todo.pop()
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            todo += Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass  # ended between two reads
    return total / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--instances", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="folder to keep the file and outputs in")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="kpdeliver-bench-validate-"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / "synthetic_coco17.json"
    t0 = time.perf_counter()
    path.write_bytes(synthetic_file(args.images, args.instances, seed=0))
    print(
        f"synthetic file: {path} ({path.stat().st_size / 1e6:.1f} MB, {args.instances:,} instances, "
        f"{args.images:,} images) in {time.perf_counter() - t0:.1f} s"
    )

    py = sys.executable
    load_cmd = [py, "-c", f"import pycocotools.coco as c; c.COCO({str(path)!r})"]
    cmd = [
        str(Path(py).parent / "kpdeliver"),
        "validate",
        str(path),
        "--schema",
        "coco17",
        "--out",
        str(work / "validate"),
    ]
    print(f"load before: {_load()}")
    loads, vals = [], []
    for _ in range(args.runs):  # alternating: a slow minute hits both alike
        loads.append(_time_subprocess(load_cmd))
        vals.append(_time_subprocess(cmd))
    gx_wall, _, _ = _time_subprocess([py, "-c", "import great_expectations"])
    coco_load, val_wall = statistics.median(r[0] for r in loads), statistics.median(v[0] for v in vals)
    val_rss, code = max(v[1] for v in vals), vals[-1][2]
    n_findings = _count_findings(work / "validate" / "findings.parquet")
    big = args.instances >= 1_000_000

    print(
        f"pycocotools COCO(path) (a process): {coco_load:6.2f} s  median of {_runs(r[0] for r in loads)}; "
        f"peak RSS {max(r[1] for r in loads):.0f} MB"
    )
    print(
        f"kpdeliver validate (a process)    : {val_wall:6.2f} s  median of {_runs(v[0] for v in vals)}; exit {code}, "
        f"{n_findings:,} findings"
    )
    print(
        f"ratio validate / COCO(path)       : {val_wall / coco_load:6.2f}x  (target <= {1.3 if big else 2})"
    )
    print(f"peak RSS of validate + its worker : {val_rss:6.0f} MB (target at 1M <= 2560 MB)")
    print(
        f"`import great_expectations` alone (a process): {gx_wall:.2f} s = {gx_wall / coco_load:.2f}x the COCO load; "
        f"validate's worker imports a lean GX while the file is read"
    )
    print(f"load after: {_load()}")


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"


def _runs(seconds) -> str:
    return ", ".join(f"{s:.2f}" for s in seconds)


def _count_findings(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.read_metadata(path).num_rows


if __name__ == "__main__":
    main()
