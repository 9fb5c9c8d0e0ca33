"""The demo batch's drawn images: each from its own generator, the same bytes whatever the order
they are drawn in or the number of worker processes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from kpdeliver.synth import make_demo_batch, scenes, synthetic_dataset
from kpdeliver.synth.scenes import NOISE_SD, _jpeg, _room, draw_scene, write_images


def _files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_each_image_depends_only_on_the_seed_and_its_row(tmp_path):
    ds = synthetic_dataset(9, 14, seed=2)
    shuffled = ds.replace(instances=ds.instances.take(np.random.default_rng(0).permutation(14)))
    write_images(tmp_path, shuffled, seed=4, workers=1)
    names = ds.images.file_name.tolist()
    lines = (tmp_path / "checksums.sha256").read_text().splitlines()
    assert [line.split("  ")[1] for line in lines] == [f"images/{n}" for n in names]
    drawn = {}
    for row in reversed(range(len(names))):  # drawn alone, last first
        kps = ds.instances.keypoints[ds.instances.image_id == ds.images.id[row]]
        w, h = int(ds.images.width[row]), int(ds.images.height[row])
        drawn[names[row]] = _jpeg(draw_scene(kps, w, h, np.random.default_rng([4, 1, row])))
    for name, line in zip(names, lines, strict=True):
        data = (tmp_path / "images" / name).read_bytes()
        assert data == drawn[name] and line.split("  ")[0] == hashlib.sha256(data).hexdigest()
    assert len(set(drawn.values())) == len(names)


def test_the_worker_count_changes_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(scenes, "CHUNK", 4)  # 14 images: four chunks over two processes
    make_demo_batch(tmp_path / "one", seed=3, n_images=14, workers=1)
    make_demo_batch(tmp_path / "two", seed=3, n_images=14, workers=2)
    one = _files(tmp_path / "one")
    assert len([f for f in one if f.endswith(".jpg")]) == 14
    assert one == _files(tmp_path / "two")
    names = [
        line.split("  ")[1] for line in (tmp_path / "two/batch/checksums.sha256").read_text().splitlines()
    ]
    assert names == [f"images/scene_{i:03d}.jpg" for i in range(14)]


def test_the_wall_noise_is_gaussian_and_never_wraps():
    im = np.asarray(_room(640, 480, np.random.default_rng(7))).astype(float)
    floor = im[int(480 * 0.7) :]  # the floor starts at 55-70 % of the height: one colour plus noise
    noise = floor - np.median(floor, axis=(0, 1))
    assert abs(noise.mean()) < 0.1
    assert np.allclose(noise.std(axis=(0, 1)), NOISE_SD, atol=0.3)
    assert np.abs(noise).max() <= 14
    share = [np.mean(np.abs(noise) <= k * NOISE_SD) for k in (1, 2)]
    assert 0.64 < share[0] < 0.74 and 0.93 < share[1] < 0.97
