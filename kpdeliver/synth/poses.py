"""Plausible COCO-17 human poses from a small articulated 2-D model.

A pose is a handful of angles per person (facing, trunk lean, head tilt, arm abduction and elbow
flexion, hip angle and knee flexion, a global rotation) drawn from ranges per pose family
(standing, walking, arms overhead, squatting, bending, lying). Forward kinematics turns them
into 17 points in units of standing height; `place_in_image` scales and positions them; the
visibility model adds self-occlusion (back and profile views), occluders and truncation at
the frame edge. Everything works on whole arrays: no loop per person or keypoint.

Body frame: origin at the mid-hip, y points down (image convention), an angle of 0 points
down and +90 degrees points to +x. A person facing the camera has their left side at +x.
"""

from __future__ import annotations

import numpy as np

from kpdeliver.schema import COCO17

# segment lengths in units of standing height (anthropometric averages)
TORSO, SHOULDER_HALF, HIP_HALF, NECK_TO_NOSE = 0.30, 0.11, 0.075, 0.13
UPPER_ARM, FOREARM, THIGH, SHIN = 0.17, 0.15, 0.245, 0.245

FAMILIES = ("standing", "walking", "arms_overhead", "squatting", "bending", "lying")
FAMILY_WEIGHTS = np.array([0.32, 0.24, 0.10, 0.12, 0.12, 0.10])

# (low, high) per family, degrees; order follows FAMILIES
_D = np.deg2rad
_RANGES = {
    "lean": [(-6, 6), (-4, 10), (-8, 8), (5, 35), (55, 100), (-10, 10)],
    "tilt": [(-12, 12), (-10, 10), (-20, 10), (-15, 25), (-40, -5), (-20, 20)],
    "arm": [(4, 30), (-25, 25), (135, 178), (10, 80), (-15, 15), (5, 120)],
    "elbow": [(0, 35), (5, 45), (0, 40), (20, 100), (0, 30), (0, 90)],
    "leg": [(1, 10), (10, 28), (1, 12), (45, 80), (2, 12), (0, 25)],
    "knee": [(0, 10), (5, 45), (0, 10), (95, 140), (0, 15), (0, 60)],
}


def _uniform(rng, fam: np.ndarray, name: str) -> np.ndarray:
    lo, hi = np.asarray(_RANGES[name], dtype=np.float64).T
    return _D(lo[fam] + (hi[fam] - lo[fam]) * rng.random(len(fam)))


def sample_pose_params(n: int, *, rng: np.random.Generator, families=None) -> dict[str, np.ndarray]:
    """Joint angles (radians) for n people; `families` restricts the mix (names from FAMILIES)."""
    weights = FAMILY_WEIGHTS.copy()
    if families is not None:
        weights = np.where(np.isin(np.array(FAMILIES), list(families)), weights, 0.0)
    fam = rng.choice(len(FAMILIES), n, p=weights / weights.sum())
    walking, bending, lying = fam == 1, fam == 4, fam == 5
    # facing: front 55 %, back 20 %, profile 25 % (walkers are mostly seen in profile)
    view = rng.choice(3, n, p=[0.55, 0.2, 0.25])
    view = np.where(walking & (rng.random(n) < 0.6), 2, view)
    yaw = np.select(
        [view == 0, view == 1],
        [rng.uniform(-35, 35, n), 180 + rng.uniform(-35, 35, n)],
        rng.choice([-1.0, 1.0], n) * rng.uniform(55, 125, n),
    )
    sign = rng.choice([-1.0, 1.0], n)
    p = {
        "family": fam,
        "yaw": _D(yaw),
        "rot": np.where(lying, sign * _D(rng.uniform(78, 102, n)), _D(rng.normal(0, 2.5, n))),
        "lean": _uniform(rng, fam, "lean") * np.where(bending, sign, 1.0),
        "tilt": _uniform(rng, fam, "tilt"),
        "limb": rng.normal(1.0, 0.04, n),  # per-person limb length factor
    }
    # which image side is "outward" for the left limbs; kept fixed so a person turning through
    # profile in a video does not flip their limbs
    p["outward"] = _outward_sign(p["yaw"])
    for side in ("l", "r"):
        for joint in ("arm", "elbow", "leg", "knee"):
            p[f"{joint}_{side}"] = _uniform(rng, fam, joint)
    # a walker's legs and arms swing in opposition
    swing = p["leg_l"][walking]
    p["leg_r"][walking] = -swing
    p["arm_l"][walking] = -0.7 * swing
    p["arm_r"][walking] = 0.7 * swing
    # a bending person's arms hang towards the ground, whatever the trunk does
    for side, s in (("l", 1.0), ("r", -1.0)):
        hang = -p["lean"][bending] + _D(rng.normal(0, 8, bending.sum()))
        p[f"arm_{side}"][bending] = hang * s * p["outward"][bending]
    return p


def _outward_sign(yaw: np.ndarray) -> np.ndarray:
    """+1 when the person's left side shows at +x (facing the camera), -1 from behind."""
    return np.where(np.cos(yaw) >= 0, 1.0, -1.0)


def _dir(theta: np.ndarray) -> np.ndarray:
    return np.stack([np.sin(theta), np.cos(theta)], axis=-1)


def _perp(d: np.ndarray) -> np.ndarray:
    return np.stack([-d[..., 1], d[..., 0]], axis=-1)


def forward_kinematics(p: dict[str, np.ndarray]) -> np.ndarray:
    """[..., 17, 2] points in units of standing height, mid-hip at the origin (COCO-17 order)."""
    yaw = p["yaw"]
    s, sy = np.cos(yaw)[..., None], np.sin(yaw)[..., None]
    out_l = p["outward"]
    limb = p["limb"][..., None]
    trunk = _dir(np.pi + p["lean"])
    perp = _perp(trunk)
    mid_sh = TORSO * trunk
    head = _dir(np.pi + p["lean"] + p["tilt"])
    hperp = _perp(head)
    nose = mid_sh + NECK_TO_NOSE * head + hperp * sy * 0.045
    eye_c = mid_sh + (NECK_TO_NOSE + 0.025) * head + hperp * sy * 0.03
    ear_c = mid_sh + (NECK_TO_NOSE + 0.01) * head - hperp * sy * 0.02
    pts = {
        "nose": nose,
        "left_eye": eye_c + hperp * s * 0.032,
        "right_eye": eye_c - hperp * s * 0.032,
        "left_ear": ear_c + hperp * s * 0.068,
        "right_ear": ear_c - hperp * s * 0.068,
    }
    hip_perp = np.stack([np.ones_like(yaw), np.zeros_like(yaw)], axis=-1)
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        c, out = side[0], sgn * out_l
        sh = mid_sh + perp * s * sgn * SHOULDER_HALF
        hip = hip_perp * s * sgn * HIP_HALF
        upper = p["lean"] + out * p[f"arm_{c}"]
        elbow = sh + UPPER_ARM * limb * _dir(upper)
        wrist = elbow + FOREARM * limb * _dir(upper - out * p[f"elbow_{c}"])
        thigh = out * p[f"leg_{c}"]
        knee = hip + THIGH * limb * _dir(thigh)
        ankle = knee + SHIN * limb * _dir(thigh - out * p[f"knee_{c}"])
        pts.update(
            {
                f"{side}_shoulder": sh,
                f"{side}_elbow": elbow,
                f"{side}_wrist": wrist,
                f"{side}_hip": hip,
                f"{side}_knee": knee,
                f"{side}_ankle": ankle,
            }
        )
    xy = np.stack([pts[name] for name in COCO17.keypoints], axis=-2)
    rot = p["rot"][..., None]
    c, sn = np.cos(rot), np.sin(rot)
    x, y = xy[..., 0], xy[..., 1]
    return np.stack([c * x - sn * y, sn * x + c * y], axis=-1)


_FACE = np.arange(5)
_LEFT = np.array([1, 3, 5, 7, 9, 11, 13, 15])
_RIGHT = _LEFT + 1
_LOWER = np.array([13, 14, 15, 16])


def static_visibility(p: dict[str, np.ndarray], *, rng: np.random.Generator) -> np.ndarray:
    """[n, 17] flags (2 visible, 1 occluded, 0 not labeled) from the view and occluders alone;
    the frame edge is applied later, once the points are placed."""
    yaw = p["yaw"]
    n = len(yaw)
    v = np.full((n, 17), 2.0)
    # profile views hide the far side: facing +x (sin yaw > 0) puts the left side away
    far = np.where((np.sin(yaw) > 0)[:, None], _LEFT[None, :], _RIGHT[None, :])
    p_hide = np.clip((np.abs(np.sin(yaw)) - 0.5) * 1.6, 0, 0.8)
    hide = rng.random((n, len(_LEFT))) < p_hide[:, None]
    face_far = np.isin(far, [1, 2, 3, 4])
    unlabeled = face_far & (rng.random(hide.shape) < 0.6)
    rows = np.repeat(np.arange(n)[:, None], len(_LEFT), axis=1)
    v[rows[hide], far[hide]] = np.where(unlabeled[hide], 0.0, 1.0)
    # seen from behind the face is occluded, often left unlabeled
    back = np.cos(yaw) < -0.3
    face = rng.random((n, 3)) < 0.7
    v[:, :3] = np.where(back[:, None], np.where(face, 0.0, 1.0), v[:, :3])
    # a table or another person in front of the legs
    legs = rng.random(n) < 0.12
    legs_flag = np.where(rng.random(n) < 0.6, 1.0, 0.0)
    v[:, _LOWER] = np.where(legs[:, None], legs_flag[:, None], v[:, _LOWER])
    # scattered occlusions and points the annotator skipped
    u = rng.random((n, 17))
    v = np.where((u < 0.04) & (v == 2), 1.0, v)
    v = np.where((u > 0.99) & (v > 0), 0.0, v)
    return v


def apply_frame(xy: np.ndarray, v: np.ndarray, width, height, *, near: float = 0.03) -> np.ndarray:
    """[n, 17, 3] keypoints: points outside the frame become v=1 when within `near` of the image
    side (an estimate just outside), else v=0 with x=y=0. v=2 points all lie in [0,w)x[0,h)."""
    w = np.asarray(width, dtype=np.float64).reshape(-1, 1)
    h = np.asarray(height, dtype=np.float64).reshape(-1, 1)
    xy = np.round(xy, 2)
    x, y = xy[..., 0], xy[..., 1]
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    margin = near * np.maximum(w, h)
    close = (x >= -margin) & (x < w + margin) & (y >= -margin) & (y < h + margin)
    v = np.where(inside, v, np.where(close & (v > 0), 1.0, 0.0))
    x, y = np.where(v > 0, x, 0.0), np.where(v > 0, y, 0.0)
    return np.stack([x, y, v], axis=-1)


def bbox_around(kps: np.ndarray, height_px: np.ndarray, width, height) -> np.ndarray:
    """[n, 4] COCO boxes: the labeled points padded by a margin (head top, feet) clipped to the
    image, and never smaller than the labeled points themselves (so they always enclose them)."""
    lab = kps[..., 2] > 0
    x = np.where(lab, kps[..., 0], np.nan)
    y = np.where(lab, kps[..., 1], np.nan)
    x0, x1, y0, y1 = np.nanmin(x, 1), np.nanmax(x, 1), np.nanmin(y, 1), np.nanmax(y, 1)
    pad = 0.06 * height_px
    w = np.broadcast_to(np.asarray(width, np.float64), x0.shape)
    h = np.broadcast_to(np.asarray(height, np.float64), x0.shape)
    bx0 = np.minimum(x0, np.clip(x0 - pad, 0, w))
    by0 = np.minimum(y0, np.clip(y0 - 1.3 * pad, 0, h))
    bx1 = np.maximum(x1, np.clip(x1 + pad, 0, w))
    by1 = np.maximum(y1, np.clip(y1 + 0.5 * pad, 0, h))
    return np.round(np.stack([bx0, by0, bx1 - bx0, by1 - by0], axis=1), 2)


def sample_poses(
    n: int,
    *,
    rng: np.random.Generator,
    width=640,
    height=480,
    size: tuple[float, float] = (0.15, 0.85),
    truncated: float = 0.06,
    families=None,
) -> tuple[np.ndarray, np.ndarray]:
    """n plausible COCO-17 people placed in images of the given size(s).

    `width`/`height` are scalars or length-n arrays. `size` bounds a person's standing height
    as a fraction of the image height (log-uniform); a fraction `truncated` of people are
    pushed partly across an image edge. Returns keypoints [n, 17, 3] float64 (coordinates
    rounded to 0.01 px, v in {0, 1, 2}, v=0 points at 0, 0; every v=2 point inside the image)
    and bbox [n, 4] (x, y, w, h) enclosing every labeled point.
    """
    params = sample_pose_params(n, rng=rng, families=families)
    body = forward_kinematics(params)
    v = static_visibility(params, rng=rng)
    kps, box = place_in_image(body, v, rng=rng, width=width, height=height, size=size, truncated=truncated)
    return kps, box


def place_in_image(body, v, *, rng, width, height, size=(0.15, 0.85), truncated=0.06):
    """Scale and position body-frame points ([n, 17, 2]) inside images; see `sample_poses`."""
    n = len(body)
    w = np.broadcast_to(np.asarray(width, np.float64), (n,))
    h = np.broadcast_to(np.asarray(height, np.float64), (n,))
    lo, hi = body.min(axis=1), body.max(axis=1)
    ext = np.maximum(hi - lo, 1e-6)
    frac = np.exp(rng.uniform(np.log(size[0]), np.log(size[1]), n))
    # shrink anyone who would not fit (a lying person is as wide as they are tall)
    px = np.minimum(frac * h, np.minimum(0.96 * w / ext[:, 0], 0.96 * h / ext[:, 1]))
    span = ext * px[:, None]
    room = np.stack([w, h], axis=1) - span
    origin = rng.random((n, 2)) * room - lo * px[:, None]
    # truncation: push some people across one edge by a part of their extent
    cut = rng.random(n) < truncated
    axis = rng.integers(0, 2, n)
    toward = rng.choice([-1.0, 1.0], n)
    shift = rng.uniform(0.03, 0.3, n) * span[np.arange(n), axis]
    edge = np.where(
        toward < 0,
        -(origin[np.arange(n), axis] + lo[np.arange(n), axis] * px),
        room[np.arange(n), axis] - (origin[np.arange(n), axis] + lo[np.arange(n), axis] * px),
    )
    origin[np.arange(n), axis] += np.where(cut, edge + toward * shift, 0.0)
    xy = body * px[:, None, None] + origin[:, None, :]
    kps = apply_frame(xy, v, w, h)
    # a person left with fewer than 3 labeled points keeps whatever is in the frame
    few = (kps[..., 2] > 0).sum(axis=1) < 3
    if few.any():
        restored = apply_frame(xy[few], np.full((few.sum(), 17), 2.0), w[few], h[few], near=0.0)
        kps[few] = restored
    return kps, bbox_around(kps, px, w, h)
