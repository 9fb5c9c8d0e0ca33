"""COCO keypoints -> YOLO Pose conversion speed, as whole processes, in one run.

Generates a synthetic COCO-17 file (100,000 instances over 20,000 images by default), then
times `kpdeliver convert --to yolo` beside the floor (one process: orjson parse of the file plus
writing as many label files of the same sizes) and Ultralytics' `convert_coco(use_keypoints=True)`
on the same file when an Ultralytics interpreter is available (ULTRALYTICS_PYTHON, default
.work/ultra-venv/bin/python, then the main checkout's; see `make bench-deps`), else beside
`pycocotools.COCO(path)`'s bare load. Prints wall time, peak RSS and the ratios.

    python bench/convert.py [--instances 100000] [--images 20000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Runs a command and prints its own peak RSS (kB): the wrapper has exactly one child.
_MEASURE = (
    "import resource, subprocess, sys;"
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE);"
    "sys.stderr.write(r.stderr.decode()[-2000:]) if r.returncode else None;"
    "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
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


def measure(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of a whole process."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    code, rss = out.stdout.split()
    if int(code) != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{out.stderr}")
    return wall, int(rss) / 1024


def best(cmd: list[str], repeat: int, env: dict | None = None, before=None) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        if before:
            before()
        runs.append(measure(cmd, env))
    return min(r[0] for r in runs), max(r[1] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=100_000)
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from kpdeliver.synth import synthetic_coco

    work = Path(tempfile.mkdtemp(prefix="kp-bench-convert-"))
    try:
        ann_dir = work / "annotations"
        ann_dir.mkdir()
        src = ann_dir / "person_keypoints_bench.json"
        t0 = time.perf_counter()
        src.write_bytes(synthetic_coco(args.images, args.instances, seed=0))
        print(f"synthetic COCO-17: {args.instances:,} instances, {args.images:,} images, "
              f"{src.stat().st_size / 1e6:.1f} MB (built in {time.perf_counter() - t0:.1f} s)")

        out = work / "kp_yolo"
        kp_cmd = [str(Path(sys.executable).with_name("kpdeliver")), "convert", str(src), "--to", "yolo",
                  "--schema", "coco17", "--out", str(out)]
        kp_wall, kp_rss = best(kp_cmd, args.repeat, before=lambda: shutil.rmtree(out, ignore_errors=True))
        n_labels = sum(1 for _ in (out / "labels").rglob("*.txt"))
        print(f"kpdeliver convert --to yolo : {kp_wall:6.2f} s  peak RSS {kp_rss:7.0f} MB  ({n_labels:,} label files)")
        line = len(next(p for p in (out / "labels").rglob("*.txt") if p.stat().st_size).read_bytes().split(b"\n")[0]) + 1
        fl_out = work / "floor"
        fl_wall, fl_rss = best([sys.executable, "-c", _FLOOR, str(src), str(fl_out), str(line)], args.repeat,
                               before=lambda: shutil.rmtree(fl_out, ignore_errors=True))
        print(f"floor (orjson parse + write): {fl_wall:6.2f} s  peak RSS {fl_rss:7.0f} MB")
        print(f"ratio: kpdeliver takes {kp_wall / fl_wall:.2f}x the floor (target <= 1.2)")

        ultra_py = os.environ.get("ULTRALYTICS_PYTHON") or next(
            (str(p) for p in (ROOT / ".work/ultra-venv/bin/python", Path("/work/main/.work/ultra-venv/bin/python"))
             if p.exists()), "")
        if ultra_py and Path(ultra_py).exists():
            ul_out = work / "ul_yolo"
            code = ("import sys; from ultralytics.data.converter import convert_coco;"
                    "convert_coco(labels_dir=sys.argv[1], save_dir=sys.argv[2], use_keypoints=True)")
            env = {**os.environ, "YOLO_CONFIG_DIR": str(work / "ul_cfg"), "YOLO_OFFLINE": "1"}
            ul_wall, ul_rss = best([ultra_py, "-c", code, str(ann_dir), str(ul_out)], args.repeat, env,
                                   before=lambda: shutil.rmtree(ul_out, ignore_errors=True))
            print(f"ultralytics convert_coco    : {ul_wall:6.2f} s  peak RSS {ul_rss:7.0f} MB")
            print(f"ratio: kpdeliver is {ul_wall / kp_wall:.1f}x faster than Ultralytics (target >= 5x), "
                  f"peak memory {kp_rss / ul_rss:.2f}x of Ultralytics'")
        else:
            code = "import sys; from pycocotools.coco import COCO; COCO(sys.argv[1])"
            ref_wall, ref_rss = best([sys.executable, "-c", code, str(src)], args.repeat)
            print(f"pycocotools COCO(path) load : {ref_wall:6.2f} s  peak RSS {ref_rss:7.0f} MB")
            print(f"ratio: kpdeliver convert takes {kp_wall / ref_wall:.2f}x pycocotools' bare load "
                  "(Ultralytics not installed: `make bench-deps`)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
