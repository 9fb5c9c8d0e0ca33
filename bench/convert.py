"""COCO keypoints -> YOLO Pose conversion speed, as whole processes, in one run.

Generates a synthetic COCO-17 file (100,000 instances over 20,000 images by default; `--instances
1000000 --images 200000` for the 1M case), then times, alternating, `kpdeliver convert --to yolo`,
the floor (one process: orjson parse of the file plus writing as many label files of the same
sizes) and Ultralytics' `convert_coco(use_keypoints=True)` on the same file, when an Ultralytics
interpreter is available (the venv KPDELIVER_ULTRA_VENV, default .work/ultra-venv; `make bench-deps`).
Prints, per tool, the median wall time, CPU time (user + system) and peak RSS, then the ratios
and the machine's load.

Outputs go to `--out-dir`, by default a folder in /dev/shm (tmpfs): on this VM's ext4 disk,
creating a file costs 30-400 us of kernel time and swings 10x from minute to minute, which would
measure the disk rather than the converters. `--out-dir /tmp` measures on the disk.

    python bench/convert.py [--instances 100000] [--images 20000] [--repeat 5] [--out-dir DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Runs a command; prints its exit code, peak RSS (kB) and CPU seconds (the wrapper has one child).
_MEASURE = (
    "import resource, subprocess, sys;"
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE);"
    "sys.stderr.write(r.stderr.decode()[-2000:]) if r.returncode else None;"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN);"
    "print(r.returncode, u.ru_maxrss, u.ru_utime + u.ru_stime)"
)
# The floor: parse the file into Python objects, then write one file per image with the bytes of
# its label lines (sizes taken from kpdeliver's output, so both write the same amount).
_FLOOR = """
import collections, os, sys, orjson
doc = orjson.loads(open(sys.argv[1], "rb").read())
per = collections.Counter(a["image_id"] for a in doc["annotations"])
line, out = int(sys.argv[3]), sys.argv[2]
os.makedirs(out)
for im in doc["images"]:
    fd = os.open(f"{out}/{im['id']}.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"0" * (line * per[im["id"]]))
    os.close(fd)
"""
_ULTRALYTICS = ("import sys; from ultralytics.data.converter import convert_coco;"
                "convert_coco(labels_dir=sys.argv[1], save_dir=sys.argv[2], use_keypoints=True)")


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"


def measure(cmd: list[str], env: dict | None = None) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of a whole process."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    code, rss, cpu = out.stdout.split()
    if int(code) != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{out.stderr}")
    return wall, float(cpu), int(rss) / 1024


def default_out_dir() -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=100_000)
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out-dir", type=Path, default=None, help="where the outputs go (default: tmpfs)")
    ap.add_argument("--no-ultralytics", action="store_true", help="skip Ultralytics (it takes ~80 s per run at 1M)")
    args = ap.parse_args()

    from kpdeliver.synth import synthetic_coco

    work = Path(tempfile.mkdtemp(prefix="kp-bench-convert-"))
    outs = Path(tempfile.mkdtemp(prefix="kp-bench-convert-out-", dir=args.out_dir or default_out_dir()))
    try:
        ann_dir = work / "annotations"
        ann_dir.mkdir()
        src = ann_dir / "person_keypoints_bench.json"
        t0 = time.perf_counter()
        src.write_bytes(synthetic_coco(args.images, args.instances, seed=0))
        print(f"synthetic COCO-17: {args.instances:,} instances, {args.images:,} images, "
              f"{src.stat().st_size / 1e6:.1f} MB (built in {time.perf_counter() - t0:.1f} s); outputs in {outs}")
        print(f"load before: {load()}")

        kp_bin = str(Path(sys.executable).with_name("kpdeliver"))
        # one kpdeliver run first: the floor writes label files of its line length
        first = outs / "kp-first"
        measure([kp_bin, "convert", str(src), "--to", "yolo", "--schema", "coco17", "--out", str(first)])
        line = len(next(p for p in (first / "labels").rglob("*.txt") if p.stat().st_size).read_bytes().split(b"\n")[0]) + 1
        shutil.rmtree(first)

        ultra_py = str(Path(os.environ.get("KPDELIVER_ULTRA_VENV") or ROOT / ".work/ultra-venv") / "bin" / "python")
        ultra = bool(ultra_py) and Path(ultra_py).exists() and not args.no_ultralytics
        env = {**os.environ, "YOLO_CONFIG_DIR": str(work / "ul_cfg"), "YOLO_OFFLINE": "1"}
        tools = {
            "kpdeliver convert --to yolo": lambda o: ([kp_bin, "convert", str(src), "--to", "yolo", "--schema", "coco17",
                                                       "--out", str(o)], None),
            "floor (orjson parse + write)": lambda o: ([sys.executable, "-c", _FLOOR, str(src), str(o), str(line)], None),
        }
        if ultra:
            tools["ultralytics convert_coco"] = lambda o: ([ultra_py, "-c", _ULTRALYTICS, str(ann_dir), str(o)], env)
        runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in tools}
        for i in range(args.repeat):  # alternating: a slow minute hits every tool alike
            for name, cmd_of in tools.items():
                out = outs / f"{len(runs[name])}-{name.split()[0]}"
                cmd, cmd_env = cmd_of(out)
                runs[name].append(measure(cmd, cmd_env))
                shutil.rmtree(out, ignore_errors=True)

        med = {name: tuple(statistics.median(r[j] for r in rs) for j in range(3)) for name, rs in runs.items()}
        print(f"\nmedians of {args.repeat} alternating runs (whole processes):")
        print(f"  {'':30}{'wall s':>8}{'CPU s':>8}{'peak RSS MB':>13}")
        for name, (wall, cpu, rss) in med.items():
            print(f"  {name:30}{wall:8.2f}{cpu:8.2f}{rss:13.0f}")
        kp, fl = med["kpdeliver convert --to yolo"], med["floor (orjson parse + write)"]
        print(f"\nkpdeliver / floor: {kp[0] / fl[0]:.2f}x wall, {kp[1] / fl[1]:.2f}x CPU (target <= 1.2)")
        if ultra:
            ul = med["ultralytics convert_coco"]
            print(f"Ultralytics / kpdeliver: {ul[0] / kp[0]:.1f}x wall, {ul[1] / kp[1]:.1f}x CPU (target >= 5)")
        print(f"kpdeliver peak RSS: {kp[2]:.0f} MB (target at 1M instances <= 2048 MB)")
        print(f"load after: {load()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(outs, ignore_errors=True)


if __name__ == "__main__":
    main()
