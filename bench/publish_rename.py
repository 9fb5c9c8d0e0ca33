"""Benchmark: publishing by renaming the staged folder against copying it file by file (issue 27).

Stages N images and N label files the way `stage-shard` does (LocalStore, no fsync, one sync, a
STAGED marker listing them), then times `publish` + `clean_staging` as a delivery runs them after
staging, in this process (wall and CPU): on a LocalStore, which renames the claimed staging
folder into `v0001/`, and, as the reference in the same run, on a LocalStore that cannot rename
(`move_folder` answers False, as on S3 or across file systems), which hard-links every staged
file into `v0001/` (link to a temporary name, rename) and then removes the staging folder file by
file. Twice each, alternating. The folder is on the file system of `--work` (this machine's disk
unless it is a tmpfs).

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

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(label: str, fn) -> tuple[float, float]:
    os.sync()
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"  {label:<58}{wall:8.2f} s wall {cpu:8.2f} s CPU  (load {os.getloadavg()[0]:.2f})")
    return wall, cpu


def main() -> None:
    from kpdeliver.release.layout import STAGED, sha256_hex
    from kpdeliver.release.publish import clean_staging, publish, staging_prefix
    from kpdeliver.storage import LocalStore, join_key

    class CopyingStore(LocalStore):
        def move_folder(self, src_prefix: str, dst_prefix: str) -> bool:
            return False

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=Path, required=True, help="a bench/delivery.py batch folder (batch-N)")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    images = sorted(p for p in (args.batch / "batch" / "images").rglob("*") if p.is_file())
    print(f"{len(images)} images, {2 * len(images)} files")

    def stage(store: LocalStore, fp: str) -> str:
        prefix, listing = staging_prefix("c", "d", fp), {}
        with store.holding_folders():
            for p in images:
                for path, data in (
                    (f"yolo/images/train/{p.name}", p.read_bytes()),
                    (f"yolo/labels/train/{p.stem}.txt", b"0 0.5 0.5 0.1 0.1\n"),
                ):
                    store.put(join_key(prefix, path), data, durable=False)
                    listing[path] = {"size": len(data), "sha256": sha256_hex(data)}
        store.sync()
        marker = {
            "files": listing,
            "counts": {},
            "verdict": "pass",
            "qa": {},
            "staged_at": "2026-12-06T00:00:00",
        }
        store.put(join_key(prefix, STAGED), orjson.dumps(marker))
        return prefix

    def publish_and_clean(store: LocalStore, fp: str, prefix: str) -> None:
        publish(
            store=store, client="c", dataset="d", fingerprint=fp, staged_prefix=prefix, manifest_fields={}
        )
        clean_staging(store, "c", "d", fp)

    totals: dict[str, list[tuple[float, float]]] = {"rename": [], "copy": []}
    for rep in range(2):
        for kind, cls in (("rename", LocalStore), ("copy", CopyingStore)):
            work = Path(tempfile.mkdtemp(prefix="kpdeliver-bench-rename-", dir=args.work))
            try:
                store, fp = cls(work), f"{rep}{kind}".ljust(64, "0")
                prefix = stage(store, fp)
                totals[kind].append(
                    timed(
                        f"{kind}: publish + clean-staging, run {rep + 1}",
                        lambda s=store, f=fp, p=prefix: publish_and_clean(s, f, p),
                    )
                )
            finally:
                shutil.rmtree(work, ignore_errors=True)
    (rw, rc), (cw, cc) = ([sum(x) / 2 for x in zip(*totals[k])] for k in ("rename", "copy"))
    print(
        f"mean of 2: rename {rw:.2f} s wall, {rc:.2f} s CPU; copy (reference) {cw:.2f} s wall, {cc:.2f} s CPU; "
        f"saved {cw - rw:.2f} s wall, {cc - rc:.2f} s CPU"
    )


if __name__ == "__main__":
    main()
