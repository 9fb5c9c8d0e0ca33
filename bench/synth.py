"""Speed of the synthetic COCO generator (`synthetic_coco`), against a reference measured in
the same run: orjson serialising the very document the generator produced. The ratio says how
much the generation (poses, visibility, boxes, encoding) costs beyond writing its JSON, so it
reads the same on a fast or a busy machine.

    python bench/synth.py [--instances 100000] [--images 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kpdeliver.synth import synthetic_coco


def best_of(repeat: int, fn) -> tuple[float, object]:
    """(fastest wall seconds, last result) over `repeat` calls."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=100_000)
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    generate, data = best_of(args.repeat, lambda: synthetic_coco(args.images, args.instances, seed=0))
    doc = orjson.loads(data)
    serialise, _ = best_of(args.repeat, lambda: orjson.dumps(doc))
    print(
        f"synthetic_coco: {args.instances:,} instances over {args.images:,} images, {len(data) / 1e6:.1f} MB"
    )
    print(f"  generate + encode   {generate:7.2f} s")
    print(f"  orjson.dumps (ref)  {serialise:7.2f} s")
    print(f"  ratio               {generate / serialise:7.1f}x the reference")


if __name__ == "__main__":
    main()
