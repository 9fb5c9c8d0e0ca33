"""Deterministic, seeded work splitting: which annotator labels which image, and which split
(train/val/test) each delivered image goes to.

Both use a keyed hash of the image's identity, not a random generator's call order, so adding
an image to a batch never moves the others to another annotator or split. Frames of one video
(images in the same folder that carry tracks) stay together in one split.
"""

from __future__ import annotations

import hashlib
from posixpath import dirname

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kpdeliver.config import Assignment, Splits
from kpdeliver.model import Dataset, Images, parquet_bytes


def unit_hash(keys: list[str], seed: int) -> np.ndarray:
    """A stable number in [0, 1) per key (sha256 of seed and key)."""
    out = np.empty(len(keys))
    for i, key in enumerate(keys):
        digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
        out[i] = int.from_bytes(digest[:8], "big") / 2**64
    return out


def assign_annotators(images: Images, annotators: list[str], settings: Assignment) -> pa.Table:
    """One row per (image, annotator): role `primary`, `overlap` (second opinion) or `gold`.

    Rendezvous hashing: each image goes to the annotator with the highest keyed hash of
    (image, annotator), so adding images never moves work already handed out, and adding an
    annotator moves only the share that becomes theirs. The `overlap` fraction of images (those
    with the lowest keyed hash) also goes to the runner-up; gold images go to every annotator.
    """
    names = images.file_name.tolist()
    n_ann = len(annotators)
    weights = (
        np.stack([unit_hash([f"{n}\x00{a}" for n in names], settings.seed) for a in annotators], axis=1)
        if names
        else np.zeros((0, n_ann))
    )
    ranked = np.argsort(-weights, axis=1, kind="stable")
    overlap = (
        (unit_hash(names, settings.seed) < settings.overlap) if n_ann > 1 else np.zeros(len(names), bool)
    )
    gold = set(settings.gold)
    rows_img, rows_ann, rows_role = [], [], []
    for i, name in enumerate(names):
        if name in gold:
            roles = [(a, "gold") for a in annotators]
        else:
            roles = [(annotators[ranked[i, 0]], "primary")]
            if overlap[i]:
                roles.append((annotators[ranked[i, 1]], "overlap"))
        for a, role in roles:
            rows_img.append(i)
            rows_ann.append(a)
            rows_role.append(role)
    idx = np.asarray(rows_img, dtype=np.int64)
    return pa.table(
        {
            "image_id": images.id[idx] if len(idx) else np.zeros(0, np.int64),
            "file_name": pa.array([names[i] for i in rows_img], pa.string()),
            "annotator": pa.array(rows_ann, pa.string()),
            "role": pa.array(rows_role, pa.string()),
        }
    )


def split_images(file_names: list[str], has_track: np.ndarray, splits: Splits) -> np.ndarray:
    """Split name per image. Images whose instances carry tracks are grouped by folder (one
    video per folder) so frames of a video never straddle train and val."""
    groups = [dirname(f) if t else f for f, t in zip(file_names, has_track.tolist())]
    u = unit_hash(groups, splits.seed)
    names, edges = [], []
    acc = 0.0
    for name, ratio in splits.ratios().items():
        acc += ratio
        names.append(name)
        edges.append(acc)
    edges[-1] = 1.0 + 1e-12
    return np.asarray(names, dtype=object)[np.searchsorted(np.asarray(edges), u, side="right")]


def task_packages(
    batch: Dataset, assignments: pa.Table, *, prelabels: Dataset | None = None
) -> dict[str, bytes]:
    """What each annotator imports into their tool: `tasks/<annotator>/annotations.xml` (CVAT
    1.1, with the schema's skeleton), `tasks/<annotator>/tasks.json` + `label_config.xml`
    (Label Studio) and `tasks/<annotator>/supervisely/` (a project: meta.json with the schema as a
    keypoint class, one annotation file per image), over the images assigned to them, pre-labeled
    where `prelabels` has instances for them."""
    from kpdeliver.codecs import cvat, label_studio, supervisely

    files: dict[str, bytes] = {"tasks/assignments.parquet": parquet_bytes(assignments)}
    source = prelabels if prelabels is not None else batch
    config = label_studio.label_config(batch.schema).encode()
    for annotator in sorted(set(assignments["annotator"].to_pylist())):
        mine = assignments.filter(pc.equal(assignments["annotator"], annotator))["image_id"].to_numpy()
        part = source.subset_images(np.isin(source.images.id, mine))
        files[f"tasks/{annotator}/annotations.xml"] = cvat.encode(part)
        files[f"tasks/{annotator}/tasks.json"] = label_studio.encode(part)
        files[f"tasks/{annotator}/label_config.xml"] = config
        files.update(
            {f"tasks/{annotator}/supervisely/{rel}": data for rel, data in supervisely.encode(part).items()}
        )
    return files
