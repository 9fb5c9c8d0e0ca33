"""Detection power of the deep QA, measured on synthetic data with known injected mistakes.

    .venv/bin/python bench/qa_detection.py [--seed 3] [--stills 1200] [--tracks 80] [--frames 50]

A clean synthetic coco17 dataset (stick-figure poses; still images labeled by one annotator, overlap
images labeled by three, gold images labeled by all four and carrying trusted labels; video tracks
labeled by one annotator each) is labeled by four simulated annotators. Known mistakes are injected
into known items: left/right swaps, visibility flips, convention offsets, per-frame jumps, a drift
that starts midway for one annotator, and visible points out of the frame. The QA runs once on the
clean data and once on the corrupted data; the script prints precision and recall per check and
the drift detection delay.

Ground truth notes: a swap is only injected on a pair whose true points lie more than 1.5
kappa * s apart (exchanging two points that nearly coincide changes nothing a model would learn);
a video visibility flip only where the true flag is steady for the flicker window on both sides
(else it just moves a real change). The drift delay is measured online: the smallest number of the
drifting annotator's submitted items (the others' work complete) at which the QA reports the drift.
The poses here are this benchmark's own stick figures; a second section runs the same checks on data
from kpdeliver.synth (written independently of the detectors), scored on what a reference can decide.
Runs in about 15 s.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kpdeliver.config import DeepQASettings  # noqa: E402
from kpdeliver.model import Dataset, Images, Instances  # noqa: E402
from kpdeliver.qa import run_deep_qa  # noqa: E402
from kpdeliver.schema import COCO17  # noqa: E402

W, H = 1280, 720
ANNOTATORS = ("A", "B", "C", "D")
NOISE_STILL = 0.5  # per-axis label noise, in sigma_k * s (COCO's sigmas describe human spread)
NOISE_VIDEO = 0.1  # video tools interpolate, so per-frame noise is much smaller
SIG = COCO17.sigma_array
LIMB_PAIRS = [p for p in COCO17.flip_pairs if COCO17.keypoints[p[0]].split("_")[1]
              in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")]
K = {n: i for i, n in enumerate(COCO17.keypoints)}


# ---------------------------------------------------------------- poses

def sample_params(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    face = rng.uniform(0.15, 1.0, n) * rng.choice([-1, 1], n, p=[0.25, 0.75])
    return {
        "cx": rng.uniform(0, 1, n), "cy": rng.uniform(0, 1, n), "h": rng.uniform(200, 330, n), "face": face,
        "lean": rng.normal(0, 15, n) + rng.choice([0, 40], n, p=[0.85, 0.15]) * rng.choice([-1, 1], n),
        "elev_l": rng.uniform(0, 180, n), "elev_r": rng.uniform(0, 180, n),
        "elbow_l": rng.uniform(0, 150, n), "elbow_r": rng.uniform(0, 150, n),
        "hip_l": rng.uniform(-20, 100, n), "hip_r": rng.uniform(-20, 100, n),
        "knee_l": rng.uniform(0, 140, n), "knee_r": rng.uniform(0, 140, n),
    }


def _rot(v, deg):
    a = np.radians(deg)[:, None]
    c, s = np.cos(a), np.sin(a)
    return np.concatenate([c * v[:, :1] - s * v[:, 1:], s * v[:, :1] + c * v[:, 1:]], 1)


def render(p: dict[str, np.ndarray], *, slot_x0: np.ndarray, slot_w: float) -> np.ndarray:
    """17 keypoints [n, 17, 2] of stick figures standing in horizontal slots of the frame."""
    n = len(p["h"])
    h = p["h"][:, None]
    lean = np.radians(p["lean"])
    up = np.stack([np.sin(lean), -np.cos(lean)], 1)
    lat = np.stack([np.cos(lean), np.sin(lean)], 1)
    side = np.sign(p["face"])[:, None]  # facing the camera: the subject's left is at image right
    w = np.abs(p["face"])[:, None]
    hip = np.stack([slot_x0 + slot_w * (0.35 + 0.3 * p["cx"]), 330 + 120 * p["cy"]], 1)
    sh = hip + 0.30 * h * up
    out = np.zeros((n, 17, 2))
    nose = sh + 0.13 * h * up
    out[:, K["nose"]] = nose
    for s_name, sgn in (("left", 1), ("right", -1)):
        sd = side * sgn
        out[:, K[f"{s_name}_eye"]] = nose + 0.025 * h * up + sd * 0.03 * h * w * lat
        out[:, K[f"{s_name}_ear"]] = nose + 0.01 * h * up + sd * 0.06 * h * w * lat
        shoulder = sh + sd * 0.11 * h * w * lat
        e = p[f"elev_{s_name[0]}"]
        arm = np.cos(np.radians(e))[:, None] * -up + np.sin(np.radians(e))[:, None] * sd * lat
        elbow = shoulder + 0.17 * h * arm
        wrist = elbow + 0.15 * h * _rot(arm, -sd[:, 0] * p[f"elbow_{s_name[0]}"])
        hp = hip + sd * 0.08 * h * w * lat
        thigh = _rot(-up, -sd[:, 0] * p[f"hip_{s_name[0]}"] * 0.3)
        knee = hp + 0.24 * h * thigh
        ankle = knee + 0.24 * h * _rot(thigh, sd[:, 0] * p[f"knee_{s_name[0]}"])
        for name, pt in (("shoulder", shoulder), ("elbow", elbow), ("wrist", wrist), ("hip", hp),
                         ("knee", knee), ("ankle", ankle)):
            out[:, K[f"{s_name}_{name}"]] = pt
    return out


def true_visibility(face: np.ndarray, rng, n: int) -> np.ndarray:
    v = np.where(rng.random((n, 17)) < 0.12, 1.0, 2.0)
    away = face < 0
    v[away, :3] = 1.0  # face points of a subject seen from behind are estimated
    return v


def scale_of(xy: np.ndarray) -> np.ndarray:
    span = xy.max(axis=1) - xy.min(axis=1)
    return np.sqrt(span[:, 0] * span[:, 1] * 1.16 * 0.53)  # padded box, as the labels get it


# ---------------------------------------------------------------- the clean data set

def build_clean(rng: np.random.Generator, *, n_stills: int, n_tracks: int, n_frames: int):
    """Truth per item, and which annotator labels what, in submission order."""
    img_names, img_ids = [], []
    items = []  # (image_id, truth xy [m,17,2], v [m,17], kind)
    for i in range(n_stills):
        m = rng.integers(1, 3)
        p = sample_params(m, rng)
        xy = render(p, slot_x0=np.arange(m) * W / m, slot_w=W / m)
        items.append((i + 1, xy, true_visibility(p["face"], rng, m)))
        img_names.append(f"still_{i:05d}.jpg")
        img_ids.append(i + 1)
    kind = rng.choice(["single", "overlap", "gold"], n_stills, p=[0.6, 0.3, 0.1])
    labelers = [
        list(ANNOTATORS) if k == "gold" else list(rng.choice(ANNOTATORS, 3, replace=False)) if k == "overlap"
        else [ANNOTATORS[rng.integers(0, 4)]] for k in kind
    ]
    queues = {a: [] for a in ANNOTATORS}
    for i, labs in enumerate(labelers):
        for a in labs:
            queues[a].append(i)
    # video: smooth parameter paths; some tracks stand still, some move fast but smoothly
    videos = []
    next_id = n_stills + 1
    for t in range(n_tracks):
        base = sample_params(1, rng)
        walk = {k: np.cumsum(rng.normal(0, 1, n_frames)) for k in base}
        kernel = np.ones(9) / 9
        p = {}
        for k, v in base.items():
            smooth = np.convolve(np.pad(walk[k], 4, mode="edge"), kernel, mode="valid")
            amp = {"cx": 0.0, "cy": 0.0, "h": 0.5, "face": 0.0, "lean": 0.5}.get(k, 2.0)
            p[k] = np.repeat(v, n_frames) + amp * smooth
        p["face"] = np.repeat(base["face"], n_frames)
        speed = rng.choice([0.0, 4.0, 15.0], p=[0.4, 0.3, 0.3])  # px per frame
        x0 = rng.uniform(250, 350) + speed * np.arange(n_frames) * (W - 700) / max(speed * n_frames, 1)
        xy = render(p, slot_x0=x0 - 0.35 * 400, slot_w=400)
        v = np.where(rng.random(17) < 0.12, 1.0, 2.0)[None].repeat(n_frames, 0)
        if base["face"][0] < 0:
            v[:, :3] = 1.0
        for kk in rng.choice(17, 2, replace=False):  # a real occlusion that starts mid-track
            v[rng.integers(10, n_frames - 10):, kk] = 3.0 - v[0, kk]
        ids = np.arange(next_id, next_id + n_frames)
        next_id += n_frames
        img_names += [f"video_{t:03d}/frame_{f:04d}.jpg" for f in range(n_frames)]
        img_ids += ids.tolist()
        videos.append((ANNOTATORS[t % 4], t, ids, xy, v))
    return img_ids, img_names, items, labelers, queues, videos, kind


def label(rng, xy, v, noise):
    s = scale_of(xy)
    lab = xy + rng.normal(0, 1, xy.shape) * (noise * SIG[None, :, None] * s[:, None, None])
    return lab, v.copy(), s


def to_dataset(img_ids, img_names, inst) -> Dataset:
    kps = np.concatenate([inst["xy"], inst["v"][..., None]], -1)
    kps[kps[..., 2] == 0] = 0.0
    lo, hi = kps[..., :2].min(axis=1), kps[..., :2].max(axis=1)
    pad = 0.04 * (hi - lo)
    bbox = np.concatenate([lo - pad, hi - lo + 2 * pad], 1)
    images = Images.build(id=img_ids, file_name=img_names, width=[W] * len(img_ids), height=[H] * len(img_ids))
    n = len(kps)
    instances = Instances.build(id=np.arange(1, n + 1), image_id=inst["image_id"], keypoints=kps, bbox=bbox,
                                annotator=inst["annotator"], track_id=inst["track_id"], frame=inst["frame"])
    return Dataset(COCO17, images, instances)


# ---------------------------------------------------------------- corruption

@dataclass
class Truth:
    swaps: set
    vis: set
    jumps: set
    offsets: set
    drift_annotator: str
    drift_onset: int
    outside: set


def make_datasets(seed: int, n_stills: int, n_tracks: int, n_frames: int):
    rng = np.random.default_rng(seed)
    img_ids, img_names, items, labelers, queues, videos, kind = build_clean(
        rng, n_stills=n_stills, n_tracks=n_tracks, n_frames=n_frames)
    cols = {k: [] for k in ("image_id", "annotator", "track_id", "frame", "xy", "v", "txy", "tv", "s", "ref")}
    drift_onset = {}
    for a in ANNOTATORS:  # submission order: each annotator's video first, then their still queue
        first_row = len(cols["xy"])
        for ann, t, ids, xy, v in videos:
            if ann != a:
                continue
            lab, vv, s = label(rng, xy, v, NOISE_VIDEO)
            for f in range(len(ids)):
                for k2, val in (("image_id", ids[f]), ("annotator", a), ("track_id", t), ("frame", f),
                                ("xy", lab[f]), ("v", vv[f]), ("txy", xy[f]), ("tv", v[f]), ("s", s[f]),
                                ("ref", False)):
                    cols[k2].append(val)
        order = rng.permutation(queues[a])
        # item index, in this annotator's submission order, where a drift would start: mid-stills
        drift_onset[a] = len(cols["xy"]) - first_row + sum(len(items[i][1]) for i in order[: len(order) // 2])
        for i in order:
            img, xy, v = items[i]
            lab, vv, s = label(rng, xy, v, NOISE_STILL)
            for m in range(len(xy)):
                for k2, val in (("image_id", img), ("annotator", a), ("track_id", -1), ("frame", -1),
                                ("xy", lab[m]), ("v", vv[m]), ("txy", xy[m]), ("tv", v[m]), ("s", s[m]),
                                ("ref", kind[i] != "single")):
                    cols[k2].append(val)
    inst = {k: np.asarray(v, dtype=object if k == "annotator" else None) for k, v in cols.items()}
    clean = to_dataset(img_ids, img_names, inst)
    gold = _gold(items, kind, img_names)
    truth, dirty = _inject(rng, inst, drift_onset)
    return clean, to_dataset(img_ids, img_names, dirty), gold, truth


def _gold(items, kind, img_names) -> Dataset:
    sel = [i for i in range(len(items)) if kind[i] == "gold"]
    xy = np.concatenate([items[i][1] for i in sel])
    v = np.concatenate([items[i][2] for i in sel])
    img = np.concatenate([[90000 + i] * len(items[i][1]) for i in sel])  # its own image ids: matched by name
    inst = {"xy": xy, "v": v, "image_id": img, "annotator": np.array(["gold"] * len(xy), dtype=object),
            "track_id": np.full(len(xy), -1), "frame": np.full(len(xy), -1)}
    return to_dataset([90000 + i for i in sel], [img_names[i] for i in sel], inst)


def _inject(rng, inst, drift_onset) -> tuple[Truth, dict]:
    d = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in inst.items()}
    n = len(d["xy"])
    ids = np.arange(1, n + 1)
    video = d["track_id"] >= 0
    ref = d["ref"].astype(bool)
    used = np.zeros(n, bool)
    swaps, vis, jumps, outside = set(), set(), set(), set()
    txy, s = d["txy"], d["s"].astype(float)

    def separated(r, a, b):
        return np.hypot(*(txy[r, a] - txy[r, b])) > 1.5 * 2 * SIG[a] * s[r]

    # 1. swaps on reference stills (a limb pair, or the whole instance mirrored)
    for r in rng.choice(np.flatnonzero(ref & ~video), int(0.04 * (ref & ~video).sum()), replace=False):
        if rng.random() < 0.25:
            pairs = [p for p in COCO17.flip_pairs if separated(r, *p)]
            if len(pairs) < 4:
                continue
            d["xy"][r] = d["xy"][r][COCO17.flip_idx]
            d["v"][r] = d["v"][r][COCO17.flip_idx]
        else:
            a, b = LIMB_PAIRS[rng.integers(len(LIMB_PAIRS))]
            if not separated(r, a, b) or d["v"][r][a] == 0 or d["v"][r][b] == 0:
                continue
            d["xy"][r][[a, b]] = d["xy"][r][[b, a]]
            d["v"][r][[a, b]] = d["v"][r][[b, a]]
        swaps.add(ids[r])
        used[r] = True
    # 2. visibility flips on reference stills
    for r in rng.choice(np.flatnonzero(ref & ~video & ~used), int(0.03 * (ref & ~video).sum()), replace=False):
        kk = rng.integers(17)
        d["v"][r][kk] = 3.0 - d["v"][r][kk]
        vis.add((ids[r], COCO17.keypoints[kk]))
        used[r] = True
    # 3. video: swaps (runs of 1-3 frames), single-frame visibility flips, single-frame jumps
    tracks = d["track_id"]
    vrows = np.flatnonzero(video)
    busy = np.zeros(n, bool)
    for r in rng.permutation(vrows):
        f, t = d["frame"][r], tracks[r]
        if f < 3 or not ((tracks[min(r + 4, n - 1)] == t) and r + 4 < n) or busy[r - 3:r + 4].any():
            continue
        u = rng.random()
        if u < 0.02:
            a, b = LIMB_PAIRS[rng.integers(len(LIMB_PAIRS))]
            run = int(rng.integers(1, 4))
            if not all(separated(q, a, b) for q in range(r, r + run)):
                continue
            for q in range(r, r + run):
                d["xy"][q][[a, b]] = d["xy"][q][[b, a]]
                d["v"][q][[a, b]] = d["v"][q][[b, a]]
                swaps.add(ids[q])
        elif u < 0.04:
            kk = rng.integers(17)
            if len({d["v"][q][kk] for q in range(r - 2, r + 3)}) != 1:
                continue
            d["v"][r][kk] = 3.0 - d["v"][r][kk]
            vis.add((ids[r], COCO17.keypoints[kk]))
        elif u < 0.07:
            kk = rng.integers(17)
            ang = rng.uniform(0, 2 * np.pi)
            d["xy"][r][kk] += rng.uniform(0.08, 0.15) * s[r] * np.array([np.cos(ang), np.sin(ang)])
            jumps.add((ids[r], COCO17.keypoints[kk]))
        else:
            continue
        busy[r - 3:r + 4] = True
    # 4. convention: annotator B places both shoulders 0.05 scale units higher, everywhere
    b = d["annotator"] == "B"
    for name in ("left_shoulder", "right_shoulder"):
        d["xy"][b, K[name], 1] -= 0.05 * s[b]
    # 5. drift: from the middle of C's stills on, C places both hips 0.08 scale units lower
    c_rows = np.flatnonzero(d["annotator"] == "C")
    onset = drift_onset["C"]
    late = c_rows[onset:]
    late = late[~video[late]]
    for name in ("left_hip", "right_hip"):
        d["xy"][late, K[name], 1] += 0.08 * s[late]
    # 6. visible points out of the frame (the bounds rule checks catch these, not the deep QA)
    for r in rng.choice(np.flatnonzero(~video & ~used), int(0.01 * (~video).sum()), replace=False):
        seen = np.flatnonzero(d["v"][r] == 2)
        if len(seen) == 0:
            continue
        kk = rng.choice(seen)
        d["xy"][r][kk, 0] = -25.0
        outside.add((ids[r], COCO17.keypoints[kk]))
    truth = Truth(swaps, vis, jumps, {("B", "left_shoulder"), ("B", "right_shoulder")}, "C", onset, outside)
    return truth, d


# ---------------------------------------------------------------- scoring

def pr(found: set, truth: set) -> tuple[float, float, int, int]:
    hit = len(found & truth)
    return (hit / len(found) if found else float("nan"), hit / len(truth) if truth else float("nan"),
            len(found), len(truth))


def score(result, truth: Truth, dataset: Dataset) -> dict:
    f = result.findings.to_pydict()
    rows = list(zip(f["check"], f["annotation_id"], f["keypoint"], f["annotator"], f["message"], f["value"]))
    swaps = {a for c, a, *_ in rows if c == "qa.left_right_swap"}
    vis = {(a, k) for c, a, k, _, m, _ in rows if m.startswith("visibility") and a is not None}
    jit = {(a, k) for c, a, k, _, m, _ in rows if c == "qa.temporal_jitter" and not m.startswith("visibility")}
    # C's drifted hips also show as an overall offset (half of C's items): counted as found, not false
    offsets = {(w, k) for c, a, k, w, m, _ in rows if c == "qa.low_agreement" and a is None and k is not None}
    offsets -= {("C", "left_hip"), ("C", "right_hip")}
    drift = {w: int(v) for c, a, k, w, m, v in rows if c == "qa.annotator_drift"}
    return {"swaps": pr(swaps, truth.swaps), "visibility": pr(vis, truth.vis), "jitter": pr(jit, truth.jumps),
            "offsets": pr(offsets, truth.offsets), "drift": drift}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--stills", type=int, default=1200)
    ap.add_argument("--tracks", type=int, default=80)
    ap.add_argument("--frames", type=int, default=50)
    args = ap.parse_args()
    t0 = time.perf_counter()
    clean, dirty, gold, truth = make_datasets(args.seed, args.stills, args.tracks, args.frames)
    t_make = time.perf_counter() - t0
    settings = DeepQASettings()
    t0 = time.perf_counter()
    res_clean = run_deep_qa(clean, gold=gold, settings=settings)
    t_clean = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = run_deep_qa(dirty, gold=gold, settings=settings)
    t_dirty = time.perf_counter() - t0
    sc = score(res, truth, dirty)
    print(f"data: {len(dirty.instances)} instances ({int((dirty.instances.track_id >= 0).sum())} video frames), "
          f"{len(gold.instances)} gold instances; made in {t_make:.1f} s; QA {t_clean:.1f} s clean, {t_dirty:.1f} s dirty")
    print(f"\n{'check':<28}{'precision':>10}{'recall':>8}{'found':>7}{'true':>6}   target")
    for name, key, target in (("left/right swaps", "swaps", "R>=0.95 at P>=0.90"),
                              ("visibility errors", "visibility", "R>=0.95 at P>=0.90"),
                              ("temporal jitter (jumps)", "jitter", "R>=0.95 at P>=0.90"),
                              ("convention offsets", "offsets", "found")):
        p, r, nf, nt = sc[key]
        print(f"{name:<28}{p:>10.3f}{r:>8.3f}{nf:>7}{nt:>6}   {target}")
    c_rows = np.flatnonzero(dirty.instances.annotator == "C")
    start = sc["drift"].get("C")
    others = sorted(a for a in sc["drift"] if a != "C")
    t0 = time.perf_counter()
    seen_at = _first_detection(dirty, gold, settings, truth)
    print(f"\ndrift: injected for C at item {truth.drift_onset} of {len(c_rows)}; on the full data the reported "
          f"start is item {start} ({'-' if start is None else f'{start - truth.drift_onset:+d}'} items); "
          f"false drift alarms on {others or 'nobody'}")
    print(f"drift detection delay: first found once C had submitted {seen_at} items, "
          f"{'-' if seen_at is None else seen_at - truth.drift_onset} items after onset (target within 50; "
          f"{time.perf_counter() - t0:.1f} s)")
    errors = res_clean.findings.filter(np.asarray(res_clean.findings["severity"].to_pylist()) == "error")
    checks, counts = np.unique(res_clean.findings["check"].to_pylist(), return_counts=True)
    print(f"clean data: {errors.num_rows} error findings (target 0); all findings by check: "
          f"{ {str(c): int(n) for c, n in zip(checks, counts)} }")
    _bounds(dirty, truth)
    _synth_crosscheck(args.seed)
    print("\nscorecards (dirty):")
    print(res.annotators.select(["annotator", "n_instances", "agreement_oks", "visibility_kappa", "gold_oks",
                                 "n_error", "n_warning", "drift_start"]).to_pandas().to_string(index=False))
    return 0


def _first_detection(dirty: Dataset, gold: Dataset, settings: DeepQASettings, truth: Truth) -> int | None:
    """Smallest number of C's submitted items at which the QA reports C's drift (binary search over
    prefixes of C's submission order, the other annotators' work complete)."""
    ann = dirty.instances.annotator
    pos = np.zeros(len(ann), np.int64)
    c = ann == truth.drift_annotator
    pos[c] = np.arange(c.sum())

    def found(n_items: int) -> bool:
        part = dirty.subset_instances(~c | (pos < n_items))
        f = run_deep_qa(part, gold=gold, settings=settings).findings.to_pydict()
        return any(ch == "qa.annotator_drift" and a == truth.drift_annotator
                   for ch, a in zip(f["check"], f["annotator"]))

    lo, hi = truth.drift_onset, int(c.sum())
    if not found(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if found(mid) else (mid + 1, hi)
    return lo


def _synth_crosscheck(seed: int) -> None:
    """The same checks on data made by kpdeliver.synth (another pose model and annotator simulator,
    written independently of these detectors): three annotators, overlap items labeled by two,
    gold items by all, videos dealt whole. Scored on the injections a reference can decide: swaps
    and visibility flips on gold items and in video, jumps and flicker in video, the drift of ann_c."""
    from kpdeliver.model import concat_images, concat_instances
    from kpdeliver.synth import Drift, ErrorRates, simulate_team, synthetic_dataset, video_dataset

    stills = synthetic_dataset(1500, 2500, seed=seed)
    vids = video_dataset(40, n_frames=50, seed=seed + 1, first_image_id=10**6, first_instance_id=10**6)
    truth = Dataset(COCO17, concat_images([stills.images, vids.images]),
                    concat_instances([stills.instances, vids.instances], 17))
    base = dict(swap=0.02, to_visible=0.02, to_occluded=0.02, jump=0.02, flicker=0.02)
    rates = {"ann_a": ErrorRates(**base), "ann_b": ErrorRates(**base, convention={"left_shoulder": (0.0, -0.05)}),
             "ann_c": ErrorRates(**base, drift=Drift())}
    t0 = time.perf_counter()
    team = simulate_team(truth, rates=rates, overlap=0.3, gold=0.1, seed=seed)
    res = run_deep_qa(team.dataset, gold=team.gold)
    ins = team.dataset.instances
    decidable = set(ins.id[(ins.track_id >= 0) | np.isin(team.dataset.image_index(), np.flatnonzero(
        np.isin(team.dataset.images.file_name, team.gold.images.file_name)))].tolist())
    inj = team.injections.to_pylist()
    swaps = {i["annotation_id"] for i in inj if i["kind"] == "left_right_swap" and i["annotation_id"] in decidable}
    vis = {(i["annotation_id"], i["keypoint"]) for i in inj
           if i["kind"] in ("to_visible", "to_occluded", "flicker") and i["annotation_id"] in decidable}
    jumps = {(i["annotation_id"], i["keypoint"]) for i in inj if i["kind"] == "jump"}
    f = res.findings.to_pylist()
    found_swaps = {x["annotation_id"] for x in f if x["check"] == "qa.left_right_swap" and x["severity"] == "error"}
    found_vis = {(x["annotation_id"], x["keypoint"]) for x in f if x["message"].startswith("visibility")}
    found_jumps = {(x["annotation_id"], x["keypoint"]) for x in f
                   if x["check"] == "qa.temporal_jitter" and not x["message"].startswith("visibility")}
    print(f"\ncross-check on kpdeliver.synth data ({len(ins)} instances, {int((ins.track_id >= 0).sum())} video "
          f"frames; {time.perf_counter() - t0:.1f} s):")
    for name, found, true in (("left/right swaps (errors)", found_swaps, swaps), ("visibility errors", found_vis, vis),
                              ("temporal jitter (jumps)", found_jumps, jumps)):
        p, r, nf, nt = pr(found, true)
        print(f"{name:<28}{p:>10.3f}{r:>8.3f}{nf:>7}{nt:>6}")
    onset = min(i["order"] for i in inj if i["kind"] == "drift")
    c_rows = np.flatnonzero(ins.annotator == "ann_c")
    labelers = {}
    for img, who in zip(ins.image_id.tolist(), ins.annotator.tolist()):
        labelers.setdefault(img, set()).add(who)
    shared = np.array([len(labelers[i]) > 1 for i in ins.image_id[c_rows].tolist()])
    first_ref = int(np.flatnonzero(shared & (np.arange(len(c_rows)) >= onset))[0])
    drift = {x["annotator"]: int(x["value"]) for x in f if x["check"] == "qa.annotator_drift"}
    print(f"drift: ann_c from item {onset} (first item after it with a reference: {first_ref}); "
          f"reported {drift or 'nothing'}")


def _bounds(dataset: Dataset, truth: Truth) -> None:
    """Out-of-frame points are the rule checks' job (expectations/): report their recall here too."""
    try:
        from expectations.validate import validate_dataset
        from kpdeliver.config import ValidationSettings
    except ImportError as e:  # the rule checks are optional for this benchmark
        print(f"out-of-frame points: rule checks not importable ({e})")
        return
    t0 = time.perf_counter()
    f = validate_dataset(dataset, ValidationSettings()).findings.to_pydict()
    found = {(a, k) for c, a, k in zip(f["check"], f["annotation_id"], f["keypoint"])
             if c == "bounds.visible_outside_image"}
    p, r, nf, nt = pr(found, truth.outside)
    print(f"out-of-frame points (rule check bounds.visible_outside_image): precision {p:.3f} recall {r:.3f} "
          f"({nf} found, {nt} injected; {time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    raise SystemExit(main())
