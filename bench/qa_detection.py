"""Detection power of the deep QA, measured on kpdeliver.synth data with known injected mistakes.

    .venv/bin/python bench/qa_detection.py [--seeds 1 2 3 4 5] [--video-noise 0.15]

Data (all from kpdeliver.synth): still images (`synthetic_dataset`) and video tracks
(`video_dataset`) dealt to three simulated annotators by `simulate_team` (a share of the work
also labeled by a second annotator, gold images by everyone and carrying trusted labels, each
video kept whole). `simulate_annotator` injects each failure mode at a known rate into known
items and records every injection: left/right swaps, visibility flips (visible <-> occluded),
visibility flicker and jumps in video (excursions of 1, 2 or 3 frames that come back: each at least
10 times the placement noise, with clean frames around it, see kpdeliver.synth.annotators), a convention offset (ann_b places
left_shoulder higher on every item), a drift that starts half-way through ann_c's stills (hips
placed higher), and visible points moved out of the frame. The QA (`run_deep_qa`, and the rule
checks for the out-of-frame points) runs once on the corrupted labels and once on clean labels
of the same items; the script prints precision and recall per check, the drift detection delay
and the error findings on clean data, per seed and over all seeds; the jumps also per excursion
length (precision of the findings naming that many frames). A second clean video set checks that fast
motion raises nothing: the same motions at 8 frames a second, each track's travel reversed at once,
and one keypoint per track that steps to a new place and stays (see `fast_motion`).

Label noise: stills get placement noise 0.5 (a careful annotator: half COCO's measured spread).
Video frames get `--video-noise` (default 0.15) per frame: annotation tools for video interpolate
and propagate points between key frames, so the frame-to-frame noise of delivered video labels is
well below a still's (the labels' offset from the true point is mostly shared by neighbouring
frames). Independent still-level noise on every frame would itself be the 5-10 px jitter the
QA is meant to report; `--video-noise 0.5` measures the detectors on it anyway.

Scoring: a reference decides only where there is one. Swaps and visibility flips count on gold
items and in video (an item labeled by two annotators only cannot tell which one erred; those
findings are warnings and left out); jumps and flicker count in video. The drift delay is measured
online: the smallest number of ann_c's submitted items (the others' work complete) at which the
QA reports ann_c's drift, minus the onset. Runs in about 10 s per seed.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kpdeliver.config import DeepQASettings
from kpdeliver.model import Dataset, concat_images, concat_instances
from kpdeliver.qa import run_deep_qa
from kpdeliver.schema import COCO17
from kpdeliver.synth import (
    Drift,
    ErrorRates,
    simulate_team,
    synthetic_dataset,
    video_dataset,
)

ANNOTATORS = ("ann_a", "ann_b", "ann_c")
DRIFTER = "ann_c"
DRIFT = Drift(start=0.5, keypoints=("left_hip", "right_hip"), offset=(0.0, -0.08))
CONVENTION = {"left_shoulder": (0.0, -0.05)}  # ann_b, on every item
STILL_ERRORS = {"swap": 0.03, "to_visible": 0.03, "to_occluded": 0.03, "outside": 0.01}
VIDEO_ERRORS = {
    "swap": 0.01,
    "to_visible": 0.01,
    "to_occluded": 0.01,
    "jump": 0.02,
    "jump_frames": (1, 2, 3),
    "flicker": 0.01,
}
EXCURSION_FRAMES = (1, 2, 3)
FAST_FPS = 8.0  # the clean fast-motion videos: the same motions sampled at 8 frames a second, not 25
VISIBILITY_KINDS = ("to_visible", "to_occluded", "flicker")
TARGETS = {
    "swaps": "R>=0.95 at P>=0.90",
    "visibility": "R>=0.95 at P>=0.90",
    "jitter": "R>=0.95 at P>=0.90",
    "offsets": "found",
}


@dataclass
class Batch:
    dataset: Dataset  # every annotator's labels: per annotator their video first, then their stills
    gold: Dataset
    injections: pa.Table  # INJECTIONS_SCHEMA rows of both parts, annotation ids into `dataset`
    drift_onset: int  # position in the drifter's submission order where the drift starts


def make_batch(
    seed: int,
    *,
    stills: int,
    images: int,
    videos: int,
    frames: int,
    video_noise: float,
    overlap: float = 0.3,
    gold: float = 0.1,
    clean: bool = False,
) -> Batch:
    """The same truth labeled by the same team, with (or, clean=True, without) injected mistakes."""
    truth_stills = synthetic_dataset(images, stills, seed=seed)
    truth_video = video_dataset(
        videos,
        n_frames=frames,
        seed=seed + 1,
        first_image_id=10**6,
        first_instance_id=10**6,
        first_track_id=1,
    )

    def rates(errors: dict, **extra) -> dict[str, ErrorRates]:
        if clean:
            return {}
        return {
            a: ErrorRates(
                **errors, convention=CONVENTION if a == "ann_b" else {}, **(extra if a == DRIFTER else {})
            )
            for a in ANNOTATORS
        }

    video = simulate_team(
        truth_video,
        annotators=ANNOTATORS,
        rates=rates(VIDEO_ERRORS),
        overlap=overlap,
        noise=video_noise,
        seed=seed + 2,
    )
    still = simulate_team(
        truth_stills,
        annotators=ANNOTATORS,
        rates=rates(STILL_ERRORS, drift=DRIFT),
        overlap=overlap,
        gold=gold,
        noise=0.5,
        seed=seed + 3,
    )
    parts = []
    for a in ANNOTATORS:  # submission order: each annotator's video, then their stills
        for team in (video, still):
            ins = team.dataset.instances
            parts.append(ins.take(np.flatnonzero(ins.annotator == a)))
    dataset = Dataset(
        COCO17,
        concat_images([truth_video.images, truth_stills.images]),
        concat_instances(parts, COCO17.num_keypoints),
    )
    inj = pa.concat_tables([video.injections, still.injections])
    n_video = int(np.sum(video.dataset.instances.annotator == DRIFTER))
    drift = still.injections.filter(pc.equal(still.injections["kind"], "drift"))
    onset = n_video + (int(pc.min(drift["order"]).as_py()) if drift.num_rows else 0)
    return Batch(dataset, still.gold, inj, onset)


def fast_motion(seed: int, *, videos: int, frames: int) -> Dataset:
    """Clean but fast motion: `video_dataset`'s motions sampled at FAST_FPS (limbs swing and walkers
    cross three times as far per frame), each track's travel reversed at once from a frame in its second
    half on (a sudden, sustained change of direction back over ground it covered), and on each track one
    visible keypoint that steps 0.2-0.4 scale units to a new place at some frame and stays there."""
    truth = video_dataset(
        videos,
        n_frames=frames,
        seed=seed + 5,
        fps=FAST_FPS,
        first_image_id=2 * 10**6,
        first_instance_id=2 * 10**6,
        first_track_id=10**4,
    )
    ins, rng = truth.instances, np.random.default_rng(seed + 6)
    kps = ins.keypoints.copy()
    lab, vis = kps[..., 2] > 0, kps[..., 2] == 2
    _, first, track = np.unique(ins.track_id, return_index=True, return_inverse=True)  # rows: track, frame
    centre = np.nanmean(np.where(lab[..., None], kps[..., :2], np.nan), axis=1)
    turn = first + rng.integers(frames // 2, frames - 4, len(first))
    back = ins.frame > ins.frame[turn][track]
    kps[back, :, :2] -= 2 * (centre[back] - centre[turn[track][back]])[:, None, :]
    point = np.where(vis[first], rng.random((len(first), kps.shape[1])), -1).argmax(axis=1)
    angle = rng.uniform(0, 2 * np.pi, len(first))
    size = rng.uniform(0.2, 0.4, len(first)) * np.sqrt(ins.area[first])
    moved = np.flatnonzero(ins.frame >= rng.integers(4, frames - 4, len(first))[track])
    kps[moved, point[track[moved]], :2] += (size[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1))[
        track[moved]
    ]
    w, h = truth.images.width[truth.image_index()], truth.images.height[truth.image_index()]
    for axis, side in ((0, w), (1, h)):  # visible points stay in the frame
        kps[..., axis] = np.where(vis, np.clip(kps[..., axis], 0, side[:, None] - 0.01), kps[..., axis])
    kps[..., :2] = np.where(lab[..., None], kps[..., :2], 0.0)
    return truth.replace(instances=replace(ins, keypoints=kps))


def truth_sets(batch: Batch) -> dict[str, set]:
    ins = batch.dataset.instances
    image_name = dict(zip(batch.dataset.images.id.tolist(), batch.dataset.images.file_name.tolist()))
    gold_names = set(batch.gold.images.file_name.tolist())
    decidable = {
        a
        for a, img, t in zip(ins.id.tolist(), ins.image_id.tolist(), ins.track_id.tolist())
        if t >= 0 or image_name[img] in gold_names
    }
    inj = batch.injections.to_pylist()
    return {
        "swaps": {
            i["annotation_id"]
            for i in inj
            if i["kind"] == "left_right_swap" and i["annotation_id"] in decidable
        },
        "visibility": {
            (i["annotation_id"], i["keypoint"])
            for i in inj
            if i["kind"] in VISIBILITY_KINDS and i["annotation_id"] in decidable
        },
        "jitter": set(excursions(batch)),
        "offsets": {("ann_b", k) for k in CONVENTION},
        "outside": {(i["annotation_id"], i["keypoint"]) for i in inj if i["kind"] == "outside_image"},
    }


def found_sets(findings: pa.Table) -> dict[str, set]:
    f = findings.to_pylist()
    offsets = {
        (x["annotator"], x["keypoint"])
        for x in f
        if x["check"] == "qa.low_agreement" and x["annotation_id"] is None and x["keypoint"] is not None
    }
    # the drifter's drifted points also show as an overall offset (half of its items): not a false alarm
    offsets -= {(DRIFTER, k) for k in DRIFT.keypoints}
    return {
        "swaps": {
            x["annotation_id"] for x in f if x["check"] == "qa.left_right_swap" and x["severity"] == "error"
        },
        "visibility": {
            (x["annotation_id"], x["keypoint"])
            for x in f
            if x["message"].startswith("visibility") and x["annotation_id"] is not None
        },
        "jitter": set(jitter_found(findings)),
        "offsets": offsets,
    }


def excursions(batch: Batch) -> dict[tuple[int, str], int]:
    """The injected excursions: (annotation id of the first frame, keypoint) -> number of frames. An
    excursion is one `jump` record per frame, on consecutive frames of one track (consecutive ids)."""
    ins = batch.dataset.instances
    track = dict(zip(ins.id.tolist(), ins.track_id.tolist()))
    jumps = sorted(
        (i["keypoint"], i["annotation_id"]) for i in batch.injections.to_pylist() if i["kind"] == "jump"
    )
    out: dict[tuple[int, str], int] = {}
    prev = start = None
    for kp, a in jumps:
        if prev is not None and prev[0] == kp and prev[1] == a - 1 and track[a] == track[a - 1]:
            out[start] += 1
        else:
            start = (a, kp)
            out[start] = 1
        prev = (kp, a)
    return out


def jitter_found(findings: pa.Table) -> dict[tuple[int, str], int]:
    """The reported jumps: (annotation id of the first frame, keypoint) -> number of frames named."""
    return {
        (x["annotation_id"], x["keypoint"]): int(m.group(1))
        if (m := re.search(r"for (\d+) frames", x["message"]))
        else 1
        for x in findings.to_pylist()
        if x["check"] == "qa.temporal_jitter" and not x["message"].startswith("visibility")
    }


def per_length(found: dict, truth: dict) -> dict[int, tuple[float, float, int, int]]:
    """Per number of frames m: precision of the findings naming m frames (a hit starts where an excursion
    starts), recall of the excursions m frames long."""
    out = {}
    for m in EXCURSION_FRAMES:
        claimed = [k for k, v in found.items() if v == m]
        true = [k for k, v in truth.items() if v == m]
        out[m] = (
            sum(k in truth for k in claimed) / len(claimed) if claimed else float("nan"),
            sum(k in found for k in true) / len(true) if true else float("nan"),
            len(claimed),
            len(true),
        )
    return out


def pr(found: set, truth: set) -> tuple[float, float, int, int]:
    hit = len(found & truth)
    return (
        hit / len(found) if found else float("nan"),
        hit / len(truth) if truth else float("nan"),
        len(found),
        len(truth),
    )


def first_detection(batch: Batch, settings: DeepQASettings) -> int | None:
    """Smallest number of the drifter's submitted items at which the QA reports its drift (binary search
    over prefixes of its submission order, the others' work complete)."""
    ann = batch.dataset.instances.annotator
    mine = ann == DRIFTER
    pos = np.zeros(len(ann), np.int64)
    pos[mine] = np.arange(mine.sum())

    def found(n_items: int) -> bool:
        part = batch.dataset.subset_instances(~mine | (pos < n_items))
        f = run_deep_qa(part, gold=batch.gold, settings=settings).findings
        return any(
            c == "qa.annotator_drift" and a == DRIFTER
            for c, a in zip(f["check"].to_pylist(), f["annotator"].to_pylist())
        )

    lo, hi = batch.drift_onset, int(mine.sum())
    if not found(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if found(mid) else (mid + 1, hi)
    return lo


def out_of_frame(batch: Batch, truth: set) -> tuple[float, float, int, int] | None:
    """Out-of-frame points are the rule checks' job (expectations/)."""
    try:
        from expectations.validate import validate_dataset
        from kpdeliver.config import ValidationSettings
    except ImportError:  # the rule checks are optional for this benchmark
        return None
    f = validate_dataset(batch.dataset, ValidationSettings()).findings.to_pydict()
    found = {
        (a, k)
        for c, a, k in zip(f["check"], f["annotation_id"], f["keypoint"])
        if c == "bounds.visible_outside_image"
    }
    return pr(found, truth)


def run_seed(seed: int, args, settings: DeepQASettings) -> dict:
    t0 = time.perf_counter()
    sizes = {
        "stills": args.stills,
        "images": args.images,
        "videos": args.videos,
        "frames": args.frames,
        "video_noise": args.video_noise,
        "overlap": args.overlap,
        "gold": args.gold,
    }
    batch = make_batch(seed, **sizes)
    clean = make_batch(seed, **sizes, clean=True)
    res = run_deep_qa(batch.dataset, gold=batch.gold, settings=settings)
    res_clean = run_deep_qa(clean.dataset, gold=clean.gold, settings=settings)
    truth, found = truth_sets(batch), found_sets(res.findings)
    out = {k: pr(found[k], truth[k]) for k in TARGETS}
    out["excursions"] = per_length(jitter_found(res.findings), excursions(batch))
    fast = simulate_team(
        fast_motion(seed, videos=args.videos, frames=args.frames),
        annotators=ANNOTATORS,
        overlap=args.overlap,
        noise=args.video_noise,
        seed=seed + 7,
    ).dataset
    f_fast = run_deep_qa(fast).findings
    out["fast"] = (
        len(jitter_found(f_fast)),
        int(pc.sum(pc.equal(f_fast["check"], "qa.left_right_swap")).as_py() or 0),
        f"{len(fast.instances)} frames in {len(np.unique(fast.instances.track_id))} tracks",
    )
    out["outside"] = out_of_frame(batch, truth["outside"])
    drift = {
        x["annotator"]: int(x["value"])
        for x in res.findings.to_pylist()
        if x["check"] == "qa.annotator_drift"
    }
    seen_at = first_detection(batch, settings)
    sev = np.asarray(res_clean.findings["severity"].to_pylist(), dtype=object)
    checks = np.asarray(res_clean.findings["check"].to_pylist(), dtype=object)
    ins = batch.dataset.instances
    out.update(
        onset=batch.drift_onset,
        reported=drift.get(DRIFTER),
        false_drift=sorted(set(drift) - {DRIFTER}),
        delay=None if seen_at is None else seen_at - batch.drift_onset,
        clean_errors={str(c): int(n) for c, n in zip(*np.unique(checks[sev == "error"], return_counts=True))},
        clean_all={str(c): int(n) for c, n in zip(*np.unique(checks, return_counts=True))},
        size=f"{len(ins)} instances ({int((ins.track_id >= 0).sum())} video frames), {len(batch.gold.instances)} gold",
        seconds=time.perf_counter() - t0,
    )
    return out


def print_seed(seed: int, r: dict) -> None:
    print(f"\nseed {seed}: {r['size']}; {r['seconds']:.1f} s")
    print(f"  {'check':<26}{'precision':>10}{'recall':>8}{'found':>7}{'true':>6}   target")
    for name, key in (
        ("left/right swaps", "swaps"),
        ("visibility errors", "visibility"),
        ("temporal jitter (jumps)", "jitter"),
        ("convention offsets", "offsets"),
    ):
        p, rec, nf, nt = r[key]
        print(f"  {name:<26}{p:>10.3f}{rec:>8.3f}{nf:>7}{nt:>6}   {TARGETS[key]}")
    for m, (p, rec, nf, nt) in r["excursions"].items():
        print(f"  {f'  excursions of {m} frame' + 's' * (m > 1):<26}{p:>10.3f}{rec:>8.3f}{nf:>7}{nt:>6}")
    if r["outside"] is not None:
        p, rec, nf, nt = r["outside"]
        print(f"  {'out of frame (rule check)':<26}{p:>10.3f}{rec:>8.3f}{nf:>7}{nt:>6}")
    print(
        f"  drift of {DRIFTER}: onset item {r['onset']}, reported start {r['reported']}, detection delay "
        f"{r['delay']} items (target <= 50); false drift alarms: {r['false_drift'] or 'none'}"
    )
    print(
        f"  clean data: error findings {r['clean_errors'] or 'none'} (target none); all findings {r['clean_all']}"
    )
    print(
        f"  clean fast motion ({r['fast'][2]}, {FAST_FPS:g} fps, direction reversals, steps that stay): "
        f"jumps reported {r['fast'][0]}, swaps reported {r['fast'][1]} (target 0)"
    )


def print_summary(results: dict[int, dict]) -> None:
    print(f"\nover {len(results)} seeds (min / mean / max):")
    for name, key in (
        ("left/right swaps", "swaps"),
        ("visibility errors", "visibility"),
        ("temporal jitter (jumps)", "jitter"),
    ):
        p = np.array([r[key][0] for r in results.values()])
        rec = np.array([r[key][1] for r in results.values()])
        print(
            f"  {name:<26} precision {p.min():.3f} / {p.mean():.3f} / {p.max():.3f}   "
            f"recall {rec.min():.3f} / {rec.mean():.3f} / {rec.max():.3f}"
        )
    for m in EXCURSION_FRAMES:
        p = np.array([r["excursions"][m][0] for r in results.values()])
        rec = np.array([r["excursions"][m][1] for r in results.values()])
        print(
            f"  {f'  excursions of {m} frame' + 's' * (m > 1):<26} precision {p.min():.3f} / {p.mean():.3f} / "
            f"{p.max():.3f}   recall {rec.min():.3f} / {rec.mean():.3f} / {rec.max():.3f}"
        )
    print(f"  clean fast motion, jumps reported: {[r['fast'][0] for r in results.values()]}")
    delays = [r["delay"] for r in results.values()]
    print(f"  drift detection delay (items): {delays}")
    print(
        f"  convention offset found (recall 1): {[r['offsets'][1] == 1.0 for r in results.values()]}; "
        f"false offsets: {sum(r['offsets'][2] - round(r['offsets'][1] * r['offsets'][3]) for r in results.values())}"
    )
    print(f"  clean-data error findings: {[sum(r['clean_errors'].values()) for r in results.values()]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--stills", type=int, default=2500, help="people in still images")
    ap.add_argument("--images", type=int, default=1500, help="still images")
    ap.add_argument("--videos", type=int, default=40)
    ap.add_argument("--frames", type=int, default=50, help="frames per video")
    ap.add_argument("--video-noise", type=float, default=0.15, help="per-frame placement noise in video")
    ap.add_argument("--overlap", type=float, default=0.3, help="share of work units labeled twice")
    ap.add_argument("--gold", type=float, default=0.1, help="share of still images that are gold")
    args = ap.parse_args()
    settings = DeepQASettings()
    t0 = time.perf_counter()
    results = {}
    for seed in args.seeds:
        results[seed] = run_seed(seed, args, settings)
        print_seed(seed, results[seed])
    print_summary(results)
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
