"""Instances that hold NaN or infinite numbers, which no consumer of a written file accepts: found,
and held back with a `schema.non_finite` finding naming file, item and field."""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa

from kpdeliver.codecs import REJECTED_SCHEMA, Decoded
from kpdeliver.codecs.problems import DecodeLog, ItemProblem
from kpdeliver.findings import non_finite_keypoint_findings
from kpdeliver.model import Dataset


def non_finite_rows(dataset: Dataset) -> np.ndarray:
    """Instances no consumer accepts: a NaN/infinite keypoint number, an infinite or partly
    absent bbox (all-NaN means absent and is derived from the points), an infinite area, or a
    bbox whose area overflows."""
    ins = dataset.instances
    bbox = ins.bbox
    nan_box = np.isnan(bbox)
    with np.errstate(over="ignore", invalid="ignore"):
        box_area = np.where(nan_box.all(axis=1), 0.0, bbox[:, 2] * bbox[:, 3])
    return (
        (~np.isfinite(ins.keypoints)).any(axis=(1, 2))
        | np.isinf(bbox).any(axis=1)
        | (nan_box.any(axis=1) & ~nan_box.all(axis=1))
        | np.isinf(ins.area)
        | ~np.isfinite(box_area)
    )


def hold_non_finite(decoded: Decoded) -> Decoded:
    """`decoded` with the instances that hold non-finite numbers moved to `rejected`, so no writer meets
    them, with `schema.non_finite` findings naming file, item and field: one per bad keypoint, naming it,
    or one for the instance's bbox or area."""
    bad = non_finite_rows(decoded.dataset)
    if not bad.any():
        return decoded
    ds = decoded.dataset
    names = dict(zip(ds.images.id.tolist(), ds.images.file_name.tolist(), strict=True))
    log = DecodeLog("")
    for i in np.flatnonzero(bad).tolist():
        _hold_instance(log, ds, names, i)
    kept = Decoded(ds.subset_instances(~bad), decoded.findings, decoded.rejected)
    kept.merge_findings(log.findings_table())
    kept.rejected = pa.concat_tables([decoded.rejected.cast(REJECTED_SCHEMA), log.rejected_table()])
    return kept


def _hold_instance(log: DecodeLog, ds: Dataset, names: dict, i: int) -> None:
    """Record instance `i` (which holds non-finite numbers) in `log`: held back whole as one problem,
    with a finding per bad keypoint, or one for its bbox or area."""
    ins = ds.instances
    field = (
        "keypoints"
        if not np.isfinite(ins.keypoints[i]).all()
        else ("area" if np.isinf(ins.area[i]) else "bbox")
    )
    source = str(ins.extra["source"][i]) if "source" in ins.extra else _image_source(ds, int(ins.image_id[i]))
    values = (
        ins.keypoints[i].reshape(-1)
        if field == "keypoints"
        else (ins.bbox[i] if field == "bbox" else ins.area[i : i + 1])
    )
    problem = ItemProblem(
        "schema.non_finite",
        source,
        f"{source}: annotation id={int(ins.id[i])}, field {field!r}: holds NaN or "
        "infinite numbers, which no consumer of a written file accepts; held back",
        field=field,
        image_id=int(ins.image_id[i]),
        annotation_id=int(ins.id[i]),
        file_name=names.get(int(ins.image_id[i])),
        annotator=str(ins.annotator[i] or ""),
        raw=orjson.dumps(
            {
                "id": int(ins.id[i]),
                field: [None if not np.isfinite(x) else float(x) for x in values],
                "nonfinite": [repr(float(x)) for x in values if not np.isfinite(x)],
            }
        ).decode(),
    )
    log.problems.append(problem)  # the instance is held back whole; each bad keypoint is named
    log.note(
        problem.finding()
        if field != "keypoints"
        else non_finite_keypoint_findings(
            ins.keypoints[i],
            ds.schema.keypoints,
            where=f"{source}: annotation id={int(ins.id[i])}, field 'keypoints'",
            held="is not finite, which no consumer of a written file accepts; the instance is held back",
            image_id=problem.image_id,
            file_name=problem.file_name,
            annotation_id=problem.annotation_id,
            annotator=problem.annotator or None,
            source=source,
        )
    )


def _image_source(ds: Dataset, image_id: int) -> str:
    rows = np.flatnonzero(ds.images.id == image_id)
    return str(ds.images.source[rows[0]]) if len(rows) else ""
