"""A team of simulated annotators over one clean dataset: work dealt out with overlap and gold
items (video frames stay with one annotator), each annotator's labels with their own injected
mistakes, everything merged into one dataset the QA can run on and score against."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from posixpath import dirname

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kpdeliver.assign.assignments import assign_annotators
from kpdeliver.config import Assignment
from kpdeliver.model import Dataset, Images, concat_instances
from kpdeliver.synth.annotators import ErrorRates, simulate_annotator

ID_STRIDE = 10_000_000  # annotator k's instance ids are truth id + (k + 1) * ID_STRIDE


@dataclass
class TeamLabels:
    dataset: Dataset  # every annotator's instances; extra["truth_id"] is the clean instance's id
    gold: Dataset  # the clean labels of the gold images
    assignments: pa.Table  # image_id, file_name, annotator, role (primary | overlap | gold)
    injections: pa.Table  # INJECTIONS_SCHEMA rows; row and annotation_id point into `dataset`


def _work_units(truth: Dataset) -> list[str]:
    """One unit per still image, one per video folder (images whose instances carry tracks)."""
    tracked = set(truth.instances.image_id[truth.instances.track_id >= 0].tolist())
    return [
        dirname(f) if i in tracked else f
        for i, f in zip(truth.images.id.tolist(), truth.images.file_name.tolist(), strict=True)
    ]


def simulate_team(
    truth: Dataset,
    *,
    annotators: tuple[str, ...] = ("ann_a", "ann_b", "ann_c"),
    rates: Mapping[str, ErrorRates] | None = None,
    overlap: float = 0.2,
    gold: float = 0.05,
    noise: float = 0.5,
    seed: int = 0,
    sigmas: np.ndarray | None = None,
) -> TeamLabels:
    """Deal `truth` out to `annotators` and simulate each one's labelling.

    A fraction `overlap` of work units (a still image, or a whole video) also goes to the next
    annotator, a fraction `gold` of still images goes to everyone and is returned as clean gold
    labels. `rates` gives each annotator's injected mistakes (none by default); an annotator's
    submission order is their images' order in `truth`, so a drift starts part-way through it.
    `sigmas`: each keypoint's placement spread (default: the schema's; see `simulate_annotator`).
    """
    rng = np.random.default_rng(seed)
    units = _work_units(truth)
    names = sorted(set(units))
    stills = [u for u in names if u in set(truth.images.file_name.tolist())]
    gold_units = (
        sorted(rng.choice(stills, round(gold * len(stills)), replace=False).tolist()) if stills else []
    )
    img_rows = _deal(truth, units, names, annotators, gold_units, overlap=overlap, seed=seed)
    rows = np.array([r for r, _, _ in img_rows], dtype=np.int64)
    assignments = _assignments_table(truth, rows, img_rows)
    parts, injections, offset = [], [], 0
    for k, who in enumerate(annotators):
        mine = np.isin(truth.images.id, truth.images.id[rows[[a == who for _, a, _ in img_rows]]])
        sub = truth.subset_images(mine)
        labels, inj = simulate_annotator(
            sub,
            annotator=who,
            rng=np.random.default_rng([seed, k]),
            rates=(rates or {}).get(who, ErrorRates()),
            noise=noise,
            sigmas=sigmas,
        )
        ins = labels.instances
        ins.extra["truth_id"] = ins.id.copy()
        ins.id = ins.id + (k + 1) * ID_STRIDE
        parts.append(ins)
        for col, shift in (("annotation_id", (k + 1) * ID_STRIDE), ("row", offset)):
            inj = inj.set_column(inj.schema.get_field_index(col), col, pc.add(inj[col], shift))
        injections.append(inj)
        offset += len(ins)
    dataset = truth.replace(instances=concat_instances(parts, truth.schema.num_keypoints))
    gold_ds = truth.subset_images(np.isin(truth.images.file_name, gold_units))
    return TeamLabels(dataset, gold_ds, assignments, pa.concat_tables(injections))


def _deal(
    truth: Dataset,
    units: list[str],
    names: list[str],
    annotators: tuple[str, ...],
    gold_units: list[str],
    *,
    overlap: float,
    seed: int,
) -> list[tuple[int, str, str]]:
    """Assign the work units and spread them back to images: (truth image row, annotator, role)."""
    unit_images = Images.build(id=np.arange(len(names)), file_name=names)
    dealt = assign_annotators(
        unit_images, list(annotators), Assignment(seed=seed, overlap=overlap, gold=gold_units)
    )
    unit_rows: dict[str, list[int]] = {n: [] for n in names}
    for row, u in enumerate(units):
        unit_rows[u].append(row)
    return [
        (r, a, role)
        for u, a, role in zip(
            dealt["file_name"].to_pylist(),
            dealt["annotator"].to_pylist(),
            dealt["role"].to_pylist(),
            strict=True,
        )
        for r in unit_rows[u]
    ]


def _assignments_table(truth: Dataset, rows: np.ndarray, img_rows: list[tuple[int, str, str]]) -> pa.Table:
    """The assignments as a table: image_id, file_name, annotator, role."""
    return pa.table(
        {
            "image_id": truth.images.id[rows],
            "file_name": pa.array(truth.images.file_name[rows].tolist(), pa.string()),
            "annotator": pa.array([a for _, a, _ in img_rows], pa.string()),
            "role": pa.array([role for _, _, role in img_rows], pa.string()),
        }
    )
