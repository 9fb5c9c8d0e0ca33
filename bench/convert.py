"""COCO keypoints -> YOLO Pose conversion speed, as whole processes, in one run.

Generates synthetic COCO-17 files (100,000 instances over 20,000 images by default; `--instances
1000000 --images 200000` for the 1M case) in two shapes: `lean` (only the fields kpdeliver reads)
and `coco` (shaped like COCO's own person_keypoints_train2017: segmentation polygons, crowds with
RLE, licences, image URLs and capture dates; `kpdeliver.synth.coco_shaped`). For each shape and
each output folder, times, alternating, `kpdeliver convert --to yolo`, the floor (one process:
orjson parse of the file plus writing as many label files of the same sizes) and Ultralytics'
`convert_coco(use_keypoints=True)` on the same file, when an Ultralytics interpreter is available
(the venv KPDELIVER_ULTRA_VENV, default .work/ultra-venv; `make bench-deps`). `--writers 1 2 8`
adds a kpdeliver run per count of file-writing threads (KPDELIVER_WRITERS). Prints, per tool, the
median wall time, CPU time (user + system) and peak RSS, the ratios, whether the folder is tmpfs
or disk, and the machine's load (1-minute average) before and after each table.

Outputs go to `--out-dir` (several allowed), by default a folder in /dev/shm (tmpfs); a folder on
the disk measures the disk too, which on this VM swings 10x from minute to minute: ratios are only
meaningful between runs of the same table.

    python bench/convert.py [--instances 100000] [--images 20000] [--repeat 5] [--shape lean coco]
                            [--out-dir /dev/shm .work] [--writers 1 2 8] [--no-ultralytics]
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
_ULTRALYTICS = (
    "import sys; from ultralytics.data.converter import convert_coco;"
    "convert_coco(labels_dir=sys.argv[1], save_dir=sys.argv[2], use_keypoints=True)"
)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def fs_kind(path: Path) -> str:
    """'tmpfs' or 'disk': the file system of the mount holding `path`."""
    best, kind = "", "disk"
    for line in Path("/proc/mounts").read_text().splitlines():
        _, mount, fstype, *_ = line.split()
        if str(path.resolve()).startswith(mount.rstrip("/") + "/") and len(mount) > len(best):
            best, kind = mount, ("tmpfs" if fstype in ("tmpfs", "ramfs") else "disk")
    return kind


def measure(cmd: list[str], env: dict | None = None) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of a whole process."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, env=env, check=False
    )
    wall = time.perf_counter() - t0
    code, rss, cpu = out.stdout.split()
    if int(code) != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{out.stderr}")
    return wall, float(cpu), int(rss) / 1024


def default_out_dir() -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


def make_input(ann_dir: Path, shape: str, images: int, instances: int) -> Path:
    from kpdeliver.synth import synthetic_coco
    from kpdeliver.synth.coco_shaped import coco_shaped

    src = ann_dir / f"person_keypoints_{shape}.json"
    t0 = time.perf_counter()
    src.write_bytes(
        coco_shaped(images, instances, seed=0)
        if shape == "coco"
        else synthetic_coco(images, instances, seed=0)
    )
    print(
        f"\n{shape} COCO-17: {instances:,} instances, {images:,} images, {src.stat().st_size / 1e6:.1f} MB "
        f"(built in {time.perf_counter() - t0:.1f} s)"
    )
    return src


def tools_for(src: Path, work: Path, outs: Path, writers: list[int], ultra_py: str | None) -> dict:
    kp_bin = str(Path(sys.executable).with_name("kpdeliver"))
    kp = [kp_bin, "convert", str(src), "--to", "yolo", "--schema", "coco17", "--out"]
    first = outs / "kp-first"  # one kpdeliver run first: the floor writes label files of its line length
    measure([*kp, str(first)])
    line = (
        len(
            next(p for p in (first / "labels").rglob("*.txt") if p.stat().st_size)
            .read_bytes()
            .split(b"\n")[0]
        )
        + 1
    )
    shutil.rmtree(first)
    tools = {
        KP: lambda o: ([*kp, str(o)], None),
        FLOOR: lambda o: ([sys.executable, "-c", _FLOOR, str(src), str(o), str(line)], None),
    }
    for w in writers:
        tools[f"kpdeliver, {w} writers"] = lambda o, w=w: (
            [*kp, str(o)],
            {**os.environ, "KPDELIVER_WRITERS": str(w)},
        )
    if ultra_py:
        env = {**os.environ, "YOLO_CONFIG_DIR": str(work / "ul_cfg"), "YOLO_OFFLINE": "1"}
        tools[ULTRA] = lambda o: ([ultra_py, "-c", _ULTRALYTICS, str(src.parent), str(o)], env)
    return tools


KP, FLOOR, ULTRA = "kpdeliver convert --to yolo", "floor (orjson parse + write)", "ultralytics convert_coco"


def table(src: Path, work: Path, outs: Path, args, ultra_py: str | None) -> None:
    tools = tools_for(src, work, outs, args.writers, ultra_py)
    print(f"outputs in {outs} ({fs_kind(outs)}); {load()}")
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in tools}
    for _ in range(args.repeat):  # alternating: a slow minute hits every tool alike
        for name, cmd_of in tools.items():
            out = outs / f"{len(runs[name])}-{name.split()[0]}"
            cmd, cmd_env = cmd_of(out)
            runs[name].append(measure(cmd, cmd_env))
            shutil.rmtree(out, ignore_errors=True)
            os.sync()  # the removal's deferred disk work is not charged to the next tool's run
    med = {name: tuple(statistics.median(r[j] for r in rs) for j in range(3)) for name, rs in runs.items()}
    print(f"medians of {args.repeat} alternating runs (whole processes), {fs_kind(outs)}:")
    print(f"  {'':30}{'wall s':>8}{'CPU s':>8}{'peak RSS MB':>13}")
    for name, (wall, cpu, rss) in med.items():
        print(f"  {name:30}{wall:8.2f}{cpu:8.2f}{rss:13.0f}")
    kp, fl = med[KP], med[FLOOR]
    print(f"kpdeliver / floor: {kp[0] / fl[0]:.2f}x wall, {kp[1] / fl[1]:.2f}x CPU (target <= 1.2)")
    if ULTRA in med:
        ul = med[ULTRA]
        target = 5 if fs_kind(outs) == "tmpfs" else 2
        print(
            f"Ultralytics / kpdeliver: {ul[0] / kp[0]:.1f}x wall, {ul[1] / kp[1]:.1f}x CPU "
            f"(target >= {target}x on {fs_kind(outs)})"
        )
    print(f"kpdeliver peak RSS: {kp[2]:.0f} MB (target at 1M instances <= 2048 MB); {load()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=100_000)
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--shape", nargs="+", choices=["lean", "coco"], default=["lean", "coco"])
    ap.add_argument("--out-dir", type=Path, nargs="+", default=None, help="where outputs go (default: tmpfs)")
    ap.add_argument(
        "--writers", type=int, nargs="*", default=[], help="also run kpdeliver with these writer counts"
    )
    ap.add_argument(
        "--no-ultralytics", action="store_true", help="skip Ultralytics (it takes ~80 s per run at 1M)"
    )
    args = ap.parse_args()

    ultra_py = str(
        Path(os.environ.get("KPDELIVER_ULTRA_VENV") or ROOT / ".work/ultra-venv") / "bin" / "python"
    )
    ultra = ultra_py if Path(ultra_py).exists() and not args.no_ultralytics else None
    work = Path(tempfile.mkdtemp(prefix="kp-bench-convert-"))
    out_dirs = args.out_dir or [default_out_dir()]
    outs = [Path(tempfile.mkdtemp(prefix="kp-bench-convert-out-", dir=d)) for d in out_dirs]
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores; {load()}")
    try:
        for shape in args.shape:
            ann_dir = work / shape / "annotations"  # convert_coco reads every file of its folder
            ann_dir.mkdir(parents=True)
            src = make_input(ann_dir, shape, args.images, args.instances)
            for out in outs:
                table(src, work, out, args, ultra)
            src.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for out in outs:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
