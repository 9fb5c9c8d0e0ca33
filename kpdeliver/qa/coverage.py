"""Pose coverage: joint-angle distributions against the poses a client wants represented.

Measures (degrees, per instance; NaN where the points are not labeled):
- elbow_flexion, knee_flexion: 180 minus the angle shoulder-elbow-wrist / hip-knee-ankle (0 = straight),
  both sides pooled;
- arm_elevation: angle between the upper arm and the trunk side (shoulder->hip); 0 = hanging, 180 = overhead;
- trunk_lean: angle of mid-hip -> mid-shoulder from image-up;
- angle:<keypoint>: flexion at every keypoint with exactly two skeleton edges, for any schema.
The named measures exist for any schema that has the COCO names they need.
`coverage_findings` reports each bin short of its target; it needs nothing from the other checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pyarrow as pa

from kpdeliver.config import CoverageBin, DeepQASettings
from kpdeliver.findings import empty_findings, findings_for
from kpdeliver.qa.context import Context
from kpdeliver.schema import KeypointSchema

_LIMBS = {
    "elbow_flexion": [
        ("left_shoulder", "left_elbow", "left_wrist"),
        ("right_shoulder", "right_elbow", "right_wrist"),
    ],
    "knee_flexion": [("left_hip", "left_knee", "left_ankle"), ("right_hip", "right_knee", "right_ankle")],
    "arm_elevation": [
        ("left_hip", "left_shoulder", "left_elbow"),
        ("right_hip", "right_shoulder", "right_elbow"),
    ],
}


def _angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Angle a-b-c in degrees at b; inputs [n, m, 3] with visibility last (NaN if any is unlabeled)."""
    u, w = a[..., :2] - b[..., :2], c[..., :2] - b[..., :2]
    ok = (a[..., 2] > 0) & (b[..., 2] > 0) & (c[..., 2] > 0)
    with np.errstate(invalid="ignore", divide="ignore"):  # coincident points: no angle (NaN)
        cos = (u * w).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(w, axis=-1))
        return np.where(ok, np.degrees(np.arccos(np.clip(cos, -1, 1))), np.nan)


def pose_measures(kps: np.ndarray, schema: KeypointSchema) -> dict[str, np.ndarray]:
    """Every measure the schema allows: name -> [n, m] degrees (m = sides or 1)."""
    names = set(schema.keypoints)
    out: dict[str, np.ndarray] = {}
    for measure, triples in _LIMBS.items():
        if all(set(t) <= names for t in triples):
            idx = np.array([[schema.index(p) for p in t] for t in triples])  # [m, 3]
            ang = _angle(kps[:, idx[:, 0]], kps[:, idx[:, 1]], kps[:, idx[:, 2]])
            out[measure] = ang if measure == "arm_elevation" else 180.0 - ang
    torso = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
    if set(torso) <= names:
        ls, rs, lh, rh = (kps[:, schema.index(p)] for p in torso)
        up = (ls[:, :2] + rs[:, :2] - lh[:, :2] - rh[:, :2]) / 2
        ok = (ls[:, 2] > 0) & (rs[:, 2] > 0) & (lh[:, 2] > 0) & (rh[:, 2] > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            lean = np.degrees(np.arccos(np.clip(-up[:, 1] / np.linalg.norm(up, axis=1), -1, 1)))
        out["trunk_lean"] = np.where(ok, lean, np.nan)[:, None]
    for joint, (a, c) in _two_edge_joints(schema).items():
        j = schema.index(joint)
        out[f"angle:{joint}"] = 180.0 - _angle(kps[:, [a]], kps[:, [j]], kps[:, [c]])
    return out


def _two_edge_joints(schema: KeypointSchema) -> dict[str, tuple[int, int]]:
    nbrs: dict[int, list[int]] = {}
    for a, b in schema.skeleton:
        nbrs.setdefault(a, []).append(b)
        nbrs.setdefault(b, []).append(a)
    return {schema.keypoints[j]: (n[0], n[1]) for j, n in sorted(nbrs.items()) if len(n) == 2}


@dataclass(frozen=True)
class BinCount:
    target: CoverageBin
    count: int  # instances with the measure in [low, high]
    measured: int  # instances where the measure could be taken


def coverage(
    kps: np.ndarray,
    schema: KeypointSchema,
    *,
    targets: tuple[CoverageBin, ...],
    generic_bins: tuple[float, ...],
) -> list[BinCount]:
    """Count instances per coverage bin; the schema's own angle bins when no target applies to it."""
    measures = pose_measures(kps, schema)
    usable = [t for t in targets if t.measure in measures]
    if not usable:
        usable = [
            CoverageBin(name=f"{m[6:]} bent {lo:g}-{hi:g} degrees", measure=m, low=lo, high=hi)
            for m in measures
            if m.startswith("angle:")
            for lo, hi in pairwise(generic_bins)
        ]
    out = []
    for t in usable:
        vals = measures[t.measure]
        inside = ((vals >= t.low) & (vals <= t.high)).any(axis=1)
        out.append(BinCount(t, int(inside.sum()), int(np.isfinite(vals).any(axis=1).sum())))
    return out


def coverage_findings(ctx: Context, s: DeepQASettings) -> pa.Table:
    if ctx.n == 0:  # nothing delivered, nothing to cover
        return empty_findings()
    bins = coverage(ctx.kps, ctx.schema, targets=s.coverage_targets, generic_bins=s.generic_bins)
    short = [b for b in bins if b.count < b.target.min_count]
    msgs = [
        f"{'no' if b.count == 0 else f'only {b.count}'} {b.target.name} ({b.target.measure} "
        f"{b.target.low:g}-{b.target.high:g} degrees) among {b.measured} measured instances "
        f"(target {b.target.min_count})"
        for b in short
    ]
    return findings_for("qa.pose_coverage", value=[float(b.count) for b in short], message=msgs, n=len(short))
