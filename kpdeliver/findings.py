"""The findings table: one row per problem found, with a stable check id (docs/qa-checks.md).

Findings are built a whole column at a time (`findings_for`) so a check that fails on
100,000 rows costs one vectorised call, not 100,000 Python objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import numpy as np
import pyarrow as pa


class Severity(str, Enum):
    error = "error"
    warning = "warning"
    info = "info"


# Stable check ids -> default severity. Add new ones; never rename.
CHECKS: dict[str, Severity] = {
    "schema.keypoint_count": Severity.error,
    "schema.unknown_category": Severity.error,
    "schema.unknown_image": Severity.error,
    "schema.duplicate_id": Severity.error,
    "schema.non_finite": Severity.error,
    "schema.missing_field": Severity.error,
    "schema.bad_type": Severity.error,
    "visibility.invalid_flag": Severity.error,
    # warning, not error: packaging writes v=0 points as 0,0,0, and CVAT-style exports keep the
    # coordinates of "outside" points, so the item is still deliverable; the report shows it.
    "visibility.unlabeled_with_coords": Severity.warning,
    "visibility.num_keypoints_mismatch": Severity.warning,
    "visibility.labeled_at_origin": Severity.warning,
    "bounds.visible_outside_image": Severity.error,
    "bounds.occluded_far_outside": Severity.error,
    "bounds.occluded_outside_image": Severity.info,  # v=1 estimated off-frame within the margin (YOLO clips it)
    "bounds.bbox_outside_image": Severity.warning,
    "bounds.keypoint_outside_bbox": Severity.warning,
    "qa.low_agreement": Severity.warning,
    "qa.gold_mismatch": Severity.warning,
    "qa.left_right_swap": Severity.error,
    "qa.temporal_jitter": Severity.warning,
    "qa.annotator_drift": Severity.warning,
    "qa.pose_coverage": Severity.info,
    # ingest / storage level
    "ingest.duplicate_image": Severity.info,
    "ingest.unreadable_image": Severity.error,
    "ingest.checksum_mismatch": Severity.error,
    "ingest.unsafe_key": Severity.error,
    "ingest.symlink": Severity.error,  # a symbolic link in a batch: never followed, never read
    "ingest.corrupt_image": Severity.error,  # the image's bytes do not decode (truncated, damaged)
    "ingest.extension_mismatch": Severity.info,  # e.g. a .jpg holding a PNG; delivered as it is
    "ingest.image_too_large": Severity.error,  # the header declares more pixels than is safe to decode
    "ingest.unsupported_format": Severity.error,  # a file under images/ in no format the release delivers
    "collect.unreadable_file": Severity.error,
    "collect.unassigned_image": Severity.warning,
    "decode.quirk": Severity.info,
    "decode.other_label": Severity.warning,  # a shape of a label that is not the schema's keypoints (CVAT free points)
}

FINDINGS_SCHEMA = pa.schema(
    [
        ("check", pa.string()),
        ("severity", pa.string()),
        ("image_id", pa.int64()),
        ("file_name", pa.string()),
        ("annotation_id", pa.int64()),
        ("keypoint", pa.string()),
        ("annotator", pa.string()),
        ("value", pa.float64()),
        ("message", pa.string()),
        ("source", pa.string()),  # the file the item came from (the "file" of file/item/field)
        (
            "link",
            pa.string(),
        ),  # where a person opens the item in the annotation tool (pulled items), else null
    ]
)


def empty_findings() -> pa.Table:
    return FINDINGS_SCHEMA.empty_table()


def _column(value, n: int, typ: pa.DataType) -> pa.Array:
    if value is None:
        return pa.nulls(n, typ)
    if isinstance(value, (str, int, float, np.integer, np.floating)):
        return pa.array([value] * n, typ)
    arr = np.asarray(value) if not isinstance(value, pa.Array) else value
    if isinstance(arr, np.ndarray):
        if typ == pa.int64():
            return pa.array(arr.astype(np.int64), typ, mask=arr.astype(np.int64) < 0)
        if typ == pa.float64():
            arr = arr.astype(np.float64)
            return pa.array(arr, typ, mask=np.isnan(arr))
        return pa.array(arr.tolist(), typ)
    return arr.cast(typ)


def findings_for(
    check: str,
    *,
    message,
    image_id=None,
    file_name=None,
    annotation_id=None,
    keypoint=None,
    annotator=None,
    value=None,
    source=None,
    link=None,
    severity: Severity | str | None = None,
    n: int | None = None,
) -> pa.Table:
    """Findings of one check for many items at once.

    Every argument is a scalar (repeated) or a column of length n. Negative ids mean "none".
    """
    if check not in CHECKS:
        raise KeyError(f"unknown check id {check!r}; register it in kpdeliver.findings.CHECKS")
    if n is None:
        lengths = [
            len(v)
            for v in (message, image_id, file_name, annotation_id, keypoint, annotator, value, source)
            if v is not None and not isinstance(v, (str, int, float, np.integer, np.floating))
        ]
        n = lengths[0] if lengths else 1
    sev = Severity(severity or CHECKS[check]).value
    return pa.table(
        [
            pa.array([check] * n, pa.string()),
            pa.array([sev] * n, pa.string()),
            _column(image_id, n, pa.int64()),
            _column(file_name, n, pa.string()),
            _column(annotation_id, n, pa.int64()),
            _column(keypoint, n, pa.string()),
            _column(annotator, n, pa.string()),
            _column(value, n, pa.float64()),
            _column(message, n, pa.string()),
            _column(source, n, pa.string()),
            _column(link, n, pa.string()),
        ],
        schema=FINDINGS_SCHEMA,
    )


def concat_findings(tables: Sequence[pa.Table]) -> pa.Table:
    tables = [t for t in tables if t is not None and t.num_rows]
    if not tables:
        return empty_findings()
    return pa.concat_tables([t.select(FINDINGS_SCHEMA.names).cast(FINDINGS_SCHEMA) for t in tables])


def error_annotation_ids(findings: pa.Table) -> np.ndarray:
    """Annotation ids that carry at least one error-severity finding."""
    import pyarrow.compute as pc  # 30 ms: not for the commands that never reach here

    mask = pc.and_(pc.equal(findings["severity"], "error"), pc.is_valid(findings["annotation_id"]))
    ids = findings.filter(mask)["annotation_id"].to_numpy(zero_copy_only=False)
    return np.unique(ids.astype(np.int64))


def summary_by(findings: pa.Table, *keys: str) -> pa.Table:
    """Counts of findings grouped by the given columns (e.g. "check", "severity")."""
    if findings.num_rows == 0:
        return pa.table({**{k: pa.array([], pa.string()) for k in keys}, "count": pa.array([], pa.int64())})
    out = findings.group_by(list(keys)).aggregate([([], "count_all")])
    out = out.select([*keys, "count_all"]).rename_columns([*keys, "count"])
    return out.sort_by([("count", "descending"), *[(k, "ascending") for k in keys]])


def non_finite_keypoint_findings(
    keypoints: np.ndarray, names: Sequence[str], *, where: str, held: str, **locate
) -> pa.Table:
    """One `schema.non_finite` finding per keypoint of one instance (`keypoints` [K, 3]) holding a NaN or
    infinite number, naming the keypoint: "{where}, keypoint 'nose': x, y, v = nan, 120, 2 {held}".
    `locate`: the instance's image_id, file_name, annotation_id, annotator and source."""
    bad = np.flatnonzero(~np.isfinite(keypoints).all(axis=1)).tolist()
    return findings_for(
        "schema.non_finite",
        keypoint=[names[j] for j in bad],
        n=len(bad),
        **locate,
        message=[
            f"{where}, keypoint '{names[j]}': x, y, v = {', '.join(f'{x:g}' for x in keypoints[j])} {held}"
            for j in bad
        ],
    )
