"""Images into a YOLO tree, so that what `convert --to yolo` writes can be trained on.

Each image goes where Ultralytics looks for it beside its label file (`images/<split>/<stem><ext>`),
hard-linked when the output is on the same file system, copied otherwise. Images are found under
the given folder by relative path, file name or stem, after mapping Label Studio server and
storage references back to the path they denote."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kpdeliver.codecs import yolo_pose
from kpdeliver.codecs.label_studio.paths import image_path
from kpdeliver.collect.files import image_index
from kpdeliver.model import Dataset


def _find(name: str, index: dict[str, Path]) -> Path | None:
    path = image_path(str(name)).replace("\\", "/")
    base = path.rsplit("/", 1)[-1]
    return (
        index.get(path)
        or index.get(path.removeprefix("images/"))
        or index.get(base)
        or index.get(base.rsplit(".", 1)[0])
    )


def place_images(
    dataset: Dataset, out: Path, images_dir: Path, split_of=None
) -> tuple[list[Path], list[str]]:
    """Link or copy every image of `dataset` into the YOLO tree at `out`: (paths written, names not found)."""
    index = image_index(images_dir)
    written, missing = [], []
    for name, rel in zip(dataset.images.file_name.tolist(), yolo_pose.image_paths(dataset, split_of)):
        src = _find(name, index)
        if src is None:
            missing.append(str(name))
            continue
        dest = out / f"{rel}{src.suffix}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() or dest.is_symlink():
            dest.unlink()
        try:
            os.link(src, dest)
        except OSError:  # another file system, or links not allowed: a copy
            shutil.copy2(src, dest)
        written.append(dest)
    return written, missing
