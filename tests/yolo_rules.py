"""Ultralytics' own acceptance rules for a YOLO Pose tree (ultralytics.data.utils
verify_image_label and check_det_dataset), restated so CI can apply them without installing
Ultralytics (AGPL, and a torch download). A label file that breaks any rule makes Ultralytics
drop the whole image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from PIL import Image

IMG_FORMATS = {"bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm", "heic"}


def check_yolo_pose_tree(root: Path) -> list[str]:
    """Problems Ultralytics would report for the tree at `root` (empty list: all accepted)."""
    problems = []
    cfg = yaml.safe_load((root / "data.yaml").read_text())
    # check_det_dataset: the dataset root is `path` (relative to the current directory when that
    # exists) or else the YAML's folder
    base = Path(cfg.get("path") or root)
    if base.resolve() != root.resolve():
        problems.append(
            f"data.yaml path {cfg.get('path')!r} resolves to {base.resolve()}, not the tree at {root}"
        )
    nkpt, ndim = cfg["kpt_shape"]
    if ndim not in (2, 3):
        problems.append(f"kpt_shape dim {ndim} not in (2, 3)")
    flip = cfg.get("flip_idx")
    if flip is not None and (len(flip) != nkpt or sorted(flip) != list(range(nkpt))):
        problems.append(f"flip_idx {flip} is not a permutation of {nkpt} keypoints")
    names = cfg["names"]
    nc = len(names)
    for split in ("train", "val", "test"):
        if split not in cfg:
            continue
        img_dir = root / cfg[split]
        for img in sorted(img_dir.rglob("*")):
            if not img.is_file():
                continue
            if img.suffix[1:].lower() not in IMG_FORMATS:
                problems.append(f"{img}: invalid image format")
                continue
            with Image.open(img) as im:
                im.verify()
                if min(im.size) < 10:
                    problems.append(f"{img}: image size {im.size} < 10 pixels")
            rel = img.relative_to(root / "images")
            label = root / "labels" / rel.with_suffix(".txt")
            if not label.is_file():
                problems.append(f"{img}: no label file {label}")
                continue
            text = label.read_text().strip()
            if not text:
                continue
            lb = np.array([ln.split() for ln in text.splitlines()], dtype=np.float32)
            if lb.shape[1] != 5 + nkpt * ndim:
                problems.append(
                    f"{label}: labels require {5 + nkpt * ndim} columns each, {lb.shape[1]} found"
                )
                continue
            points = lb[:, 5:].reshape(-1, ndim)[:, :2]
            if points.max() > 1:
                problems.append(f"{label}: non-normalized or out of bounds coordinates")
            if lb.min() < 0:
                problems.append(f"{label}: negative label values")
            if lb[:, 0].max() >= nc:
                problems.append(f"{label}: class {int(lb[:, 0].max())} exceeds dataset class count {nc}")
            if len(np.unique(lb, axis=0)) != len(lb):
                problems.append(f"{label}: duplicate labels removed")
    return problems
