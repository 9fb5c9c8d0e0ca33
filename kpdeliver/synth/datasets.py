"""Clean synthetic datasets: still images (`synthetic_dataset`, `synthetic_coco`) and video
tracks with smooth motion (`sample_tracks`, `video_dataset`), all seeded and deterministic."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kpdeliver.model import Dataset, Images, Instances
from kpdeliver.schema import COCO17
from kpdeliver.synth.poses import (
    apply_frame,
    bbox_around,
    forward_kinematics,
    sample_pose_params,
    sample_poses,
    static_visibility,
)

# (width, height) of typical photos and their shares
IMAGE_SIZES = np.array(
    [[640, 480], [480, 640], [640, 427], [427, 640], [640, 360], [1280, 720], [800, 600], [500, 375]]
)
IMAGE_SIZE_WEIGHTS = np.array([0.3, 0.12, 0.15, 0.08, 0.1, 0.1, 0.1, 0.05])
# COCO segmentation area is about half the box; OKS uses it as the squared scale
AREA_FRACTION = 0.53


def instance_area(bbox: np.ndarray) -> np.ndarray:
    return np.round(AREA_FRACTION * bbox[:, 2] * bbox[:, 3], 2)


def synthetic_dataset(
    n_images: int,
    n_instances: int,
    *,
    seed: int = 0,
    first_image_id: int = 1,
    first_instance_id: int = 1,
    families=None,
) -> Dataset:
    """A clean COCO-17 dataset: `n_instances` people spread at random over `n_images` images
    of typical sizes (some images hold nobody, as in real batches). Same seed, same data.
    `families` limits the pose mix (names from `FAMILIES`), e.g. to leave out an edge case."""
    rng = np.random.default_rng(seed)
    sizes = IMAGE_SIZES[rng.choice(len(IMAGE_SIZES), n_images, p=IMAGE_SIZE_WEIGHTS)]
    img_of = np.sort(rng.integers(0, n_images, n_instances))
    w, h = sizes[img_of, 0], sizes[img_of, 1]
    kps, bbox = sample_poses(n_instances, rng=rng, width=w, height=h, families=families)
    image_ids = np.arange(first_image_id, first_image_id + n_images, dtype=np.int64)
    images = Images.build(
        id=image_ids,
        file_name=[f"{i:012d}.jpg" for i in image_ids.tolist()],
        width=sizes[:, 0],
        height=sizes[:, 1],
    )
    instances = Instances.build(
        id=np.arange(first_instance_id, first_instance_id + n_instances),
        image_id=image_ids[img_of],
        keypoints=kps,
        bbox=bbox,
        area=instance_area(bbox),
        num_keypoints=(kps[..., 2] > 0).sum(axis=1),
        num_kpts=17,
    )
    return Dataset(COCO17, images, instances)


def synthetic_coco(n_images: int, n_instances: int, *, seed: int = 0) -> bytes:
    """COCO keypoints JSON (orjson) of `synthetic_dataset`: loads in pycocotools, integer flags,
    `num_keypoints` = count(v > 0), bbox and area on every annotation, v=0 points at 0, 0.
    100,000 instances over 20,000 images take about two seconds."""
    from kpdeliver.codecs.coco.encoder import encode

    return encode(synthetic_dataset(n_images, n_instances, seed=seed))


@dataclass
class Tracks:
    """People moving through one video, one row per (track, frame), track-major."""

    keypoints: np.ndarray  # [n, 17, 3]
    bbox: np.ndarray  # [n, 4]
    area: np.ndarray  # [n]
    track_id: np.ndarray  # [n] int64, 0..n_tracks-1
    frame: np.ndarray  # [n] int64, 0..n_frames-1


def _smooth(
    rng, shape: tuple[int, int], t: np.ndarray, *, amp, freq=(0.05, 0.4), terms: int = 3
) -> np.ndarray:
    """[n_tracks, n_frames] sums of slow sinusoids: smooth, bounded wandering of a parameter."""
    n = shape[0]
    f = rng.uniform(*freq, (n, terms, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, terms, 1))
    a = rng.uniform(0.3, 1.0, (n, terms, 1)) / terms
    return np.asarray(amp)[..., None] * (a * np.sin(2 * np.pi * f * t + phase)).sum(axis=1)


def sample_tracks(
    n_tracks: int,
    n_frames: int,
    *,
    rng: np.random.Generator,
    width: int = 1280,
    height: int = 720,
    fps: float = 25.0,
    size: tuple[float, float] = (0.25, 0.7),
) -> Tracks:
    """People moving smoothly through one video of `n_frames` frames.

    Walkers cross the frame with a gait cycle (legs and arms swing in opposition); the others
    stand, squat, bend or raise their arms, swaying and gesturing slowly. Every joint angle and
    the position change smoothly from frame to frame; visibility is fixed per track (no
    flicker), and each track stays inside the frame, so clean tracks carry no jitter."""
    t = np.arange(n_frames) / fps
    shape = (n_tracks, n_frames)
    base = sample_pose_params(
        n_tracks, rng=rng, families=("standing", "walking", "arms_overhead", "squatting", "bending")
    )
    walking = base["family"] == 1
    p = {
        k: np.repeat(v[:, None], n_frames, axis=1).astype(np.float64)
        for k, v in base.items()
        if k != "family"
    }
    for k in ("lean", "tilt", "arm_l", "arm_r", "elbow_l", "elbow_r"):
        p[k] += _smooth(rng, shape, t, amp=np.deg2rad(12))
    p["yaw"] += _smooth(rng, shape, t, amp=np.deg2rad(10))
    _swing_walkers(p, base, walking, t, rng)
    body = forward_kinematics(p)  # [T, F, 17, 2] in height units
    # walkers move the way they face at ~1 height per second; others drift slightly
    heading = np.where(np.sin(base["yaw"]) >= 0, 1.0, -1.0)[:, None]
    speed = np.where(walking[:, None], rng.uniform(0.6, 1.1, (n_tracks, 1)), 0.0)
    x = heading * speed * t + _smooth(rng, shape, t, amp=np.full(n_tracks, 0.15))
    y = _smooth(rng, shape, t, amp=np.full(n_tracks, 0.05))
    scale = 1.0 + _smooth(rng, shape, t, amp=np.full(n_tracks, 0.15))
    px0 = height * np.exp(rng.uniform(np.log(size[0]), np.log(size[1]), n_tracks))
    xy = body * scale[..., None, None] + np.stack([x, y], axis=-1)[:, :, None, :]
    xy *= px0[:, None, None, None]
    xy, fit = _fit_in_frame(xy, rng, width, height)
    v = static_visibility(base, rng=rng)
    n = n_tracks * n_frames
    kps = apply_frame(xy.reshape(n, 17, 2), np.repeat(v, n_frames, axis=0), width, height)
    px = (px0[:, None] * scale * fit[:, None]).reshape(n)
    bbox = bbox_around(kps, px, width, height)
    return Tracks(
        keypoints=kps,
        bbox=bbox,
        area=instance_area(bbox),
        track_id=np.repeat(np.arange(n_tracks, dtype=np.int64), n_frames),
        frame=np.tile(np.arange(n_frames, dtype=np.int64), n_tracks),
    )


def _swing_walkers(
    p: dict[str, np.ndarray],
    base: dict[str, np.ndarray],
    walking: np.ndarray,
    t: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Give the walkers in `p` (angles [tracks, frames]) a gait: legs and arms swing in opposition."""
    n_tracks = len(walking)
    # gait: swing amplitude from the sampled stride, cadence around one cycle per second
    cadence = rng.uniform(0.7, 1.1, (n_tracks, 1))
    phase = 2 * np.pi * cadence * t + rng.uniform(0, 2 * np.pi, (n_tracks, 1))
    stride = np.abs(base["leg_l"])[:, None]
    gait = {
        "leg_l": stride * np.sin(phase),
        "leg_r": -stride * np.sin(phase),
        "arm_l": -0.7 * stride * np.sin(phase),
        "arm_r": 0.7 * stride * np.sin(phase),
        "knee_l": np.deg2rad(5) + np.deg2rad(25) * np.clip(np.sin(phase + 1.2), 0, None),
        "knee_r": np.deg2rad(5) + np.deg2rad(25) * np.clip(-np.sin(phase + 1.2), 0, None),
    }
    for k, g in gait.items():
        p[k] = np.where(walking[:, None], g, p[k])


def _fit_in_frame(
    xy: np.ndarray, rng: np.random.Generator, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Tracks' points [T, F, 17, 2] shrunk to fit the frame where needed and placed at random; and the shrink."""
    n_tracks = xy.shape[0]
    # fit each track's whole path inside the frame, then place it at random in the room left
    lo, hi = xy.min(axis=(1, 2)), xy.max(axis=(1, 2))
    fit = np.minimum(1.0, np.minimum(0.96 * width / (hi - lo)[:, 0], 0.96 * height / (hi - lo)[:, 1]))
    xy = (xy - lo[:, None, None, :]) * fit[:, None, None, None]
    room = np.array([width, height]) - (hi - lo) * fit[:, None]
    xy += (rng.random((n_tracks, 2)) * room)[:, None, None, :]
    return xy, fit


def video_dataset(
    n_videos: int,
    *,
    tracks_per_video: tuple[int, int] = (1, 3),
    n_frames: int = 40,
    seed: int = 0,
    size: tuple[int, int] = (1280, 720),
    fps: float = 25.0,
    first_image_id: int = 1,
    first_instance_id: int = 1,
    first_track_id: int = 1,
) -> Dataset:
    """Clean COCO-17 video annotations, PoseTrack style: one image per frame named
    `video_<v>/frame_<f>.jpg`, instances carrying `track_id` (unique across videos) and `frame`."""
    rng = np.random.default_rng(seed)
    w, h = size
    img_ids, names, parts = [], [], []
    next_img, next_track = first_image_id, first_track_id
    for vid in range(n_videos):
        tr = sample_tracks(
            int(rng.integers(tracks_per_video[0], tracks_per_video[1] + 1)),
            n_frames,
            rng=rng,
            width=w,
            height=h,
            fps=fps,
        )
        frame_ids = np.arange(next_img, next_img + n_frames)
        img_ids.append(frame_ids)
        names += [f"video_{vid:03d}/frame_{f:05d}.jpg" for f in range(n_frames)]
        parts.append((tr, frame_ids[tr.frame], tr.track_id + next_track))
        next_img += n_frames
        next_track += int(tr.track_id.max()) + 1
    ids = np.concatenate(img_ids) if img_ids else np.zeros(0, np.int64)
    images = Images.build(id=ids, file_name=names, width=np.full(len(ids), w), height=np.full(len(ids), h))
    kps = np.concatenate([p[0].keypoints for p in parts]) if parts else np.zeros((0, 17, 3))
    n = len(kps)
    instances = Instances.build(
        id=np.arange(first_instance_id, first_instance_id + n),
        image_id=np.concatenate([p[1] for p in parts]) if parts else [],
        keypoints=kps,
        bbox=np.concatenate([p[0].bbox for p in parts]) if parts else np.zeros((0, 4)),
        area=np.concatenate([p[0].area for p in parts]) if parts else [],
        track_id=np.concatenate([p[2] for p in parts]) if parts else [],
        frame=np.concatenate([p[0].frame for p in parts]) if parts else [],
        num_keypoints=(kps[..., 2] > 0).sum(axis=1),
        num_kpts=17,
    )
    return Dataset(COCO17, images, instances)
