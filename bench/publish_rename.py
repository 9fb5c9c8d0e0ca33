"""Benchmark: what publishing by renaming a staged folder would save on a local store (issue 27).

Stages N images and N label files the way `stage-shard` does (LocalStore, no fsync, one sync),
then times, in this process (wall and CPU), what a delivery does today after staging — `publish`
hard-links every staged file into `v0001/` (LocalStore.copy: link to a temporary name, rename) and
`clean-staging` removes the staging folder file by file — against one rename of the staged folder.
The folder is on the same filesystem as `--work` (this machine's disk unless it is a tmpfs).

    python bench/publish_rename.py --batch DIR/batch-20000 [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(label: str, fn) -> tuple[float, float]:
    os.sync()
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"  {label:<52}{wall:8.2f} s wall {cpu:8.2f} s CPU")
    return wall, cpu


def main() -> None:
    from kpdeliver.storage import LocalStore, join_key

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=Path, required=True, help="a bench/delivery.py batch folder (batch-N)")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kpdeliver-bench-rename-", dir=args.work))
    images = sorted(p for p in (args.batch / "batch" / "images").rglob("*") if p.is_file())
    store, staging, version = LocalStore(work), ".staging/c/d/fp/run", "c/d/v0001"
    files = [f"yolo/images/train/{p.name}" for p in images] + [
        f"yolo/labels/train/{p.stem}.txt" for p in images
    ]
    print(f"{len(images)} images, {len(files)} files, under {work}")

    def stage() -> None:
        with store.holding_folders():
            for p in images:
                store.put(join_key(staging, f"yolo/images/train/{p.name}"), p.read_bytes(), durable=False)
                store.put(
                    join_key(staging, f"yolo/labels/train/{p.stem}.txt"),
                    b"0 0.5 0.5 0.1 0.1\n",
                    durable=False,
                )
        store.sync()

    def publish_links() -> None:
        with store.holding_folders():
            for f in files:
                store.copy(join_key(staging, f), join_key(version, f))

    def clean() -> None:
        store.delete_prefix(".staging/c/d/fp/")

    def publish_rename() -> None:
        (work / "c" / "d").mkdir(parents=True, exist_ok=True)
        os.rename(work / staging, work / version)
        os.sync()

    try:
        timed("stage (for reference)", stage)
        link = timed("today: publish (hard link + rename per file)", publish_links)
        drop = timed("today: clean-staging (unlink per file)", clean)
        shutil.rmtree(work / "c")
        timed("stage again", stage)
        ren = timed("rename: publish (one rename of the staged folder)", publish_rename)
        print(
            f"saved by a rename: {link[0] + drop[0] - ren[0]:.2f} s wall, {link[1] + drop[1] - ren[1]:.2f} s CPU "
            f"of {link[0] + drop[0]:.2f} s / {link[1] + drop[1]:.2f} s"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
