"""The rework set of a release: one row per reason an annotator's labels of an image go back.

Sources: the release's error findings on an annotator's labels (the keypoint and the message as
QA wrote them), its quarantine rows (decode rejects, labels held back with their image) and the
client's feedback. Where QA compared the label with gold or with a partner, the row names that
reference's position of the keypoint, so the annotator sees where the other label is.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kpdeliver.model import Dataset

ITEM_SCHEMA = pa.schema(
    [
        ("annotator", pa.string()),
        ("file_name", pa.string()),
        ("annotation_id", pa.int64()),  # the label (as the release numbered it), null for the whole image
        ("origin", pa.string()),  # finding | quarantine | feedback
        ("check", pa.string()),
        ("keypoint", pa.string()),
        ("reason", pa.string()),
        ("reference", pa.string()),  # e.g. "gold has left_wrist at (120.0, 88.5)"; '' when none
    ]
)
COMPARED_WITH_OTHERS = ("qa.gold_mismatch", "qa.low_agreement", "qa.left_right_swap")


def _rows(origin: str, table: pa.Table, check: list, keypoint: list, reason: list) -> pa.Table:
    n = table.num_rows
    return pa.table(
        {
            "annotator": table["annotator"],
            "file_name": table["file_name"],
            "annotation_id": table["annotation_id"].cast(pa.int64()),
            "origin": pa.array([origin] * n, pa.string()),
            "check": pa.array(check, pa.string()),
            "keypoint": pa.array(keypoint, pa.string()),
            "reason": pa.array(reason, pa.string()),
            "reference": pa.array([""] * n, pa.string()),
        },
        schema=ITEM_SCHEMA,
    )


def _labels_of_annotators(table: pa.Table) -> pa.Table:
    ok = pc.and_(
        pc.and_(pc.is_valid(table["annotator"]), pc.is_valid(table["file_name"])),
        pc.not_equal(pc.fill_null(table["annotator"], ""), "gold"),
    )
    return table.filter(pc.fill_null(ok, False))


def rework_items(
    quarantine: pa.Table,
    findings: pa.Table,
    feedback: pa.Table | None = None,
    labels: Dataset | None = None,
    gold: Dataset | None = None,
) -> pa.Table:
    """Every reason to send labels back (ITEM_SCHEMA), sorted by annotator and image.
    `labels`/`gold`: the collected labels, for the reference positions (none without them)."""
    errs = _labels_of_annotators(findings.filter(pc.equal(findings["severity"], "error")))
    parts = [
        _rows(
            "finding",
            errs,
            errs["check"].to_pylist(),
            errs["keypoint"].to_pylist(),
            errs["message"].to_pylist(),
        )
    ]
    found = set(zip(errs["annotator"].to_pylist(), errs["file_name"].to_pylist(), strict=True))
    q = _labels_of_annotators(quarantine)
    rest = np.fromiter(
        (
            (a, f) not in found
            for a, f in zip(q["annotator"].to_pylist(), q["file_name"].to_pylist(), strict=True)
        ),
        bool,
        q.num_rows,
    )
    q = q.filter(pa.array(rest, pa.bool_()))
    parts.append(
        _rows("quarantine", q, q["checks"].to_pylist(), [None] * q.num_rows, q["reasons"].to_pylist())
    )
    if feedback is not None and feedback.num_rows:
        parts.append(feedback.select(ITEM_SCHEMA.names).cast(ITEM_SCHEMA))
    items = pa.concat_tables(parts).group_by(ITEM_SCHEMA.names).aggregate([])  # one row per distinct reason
    items = items.select(ITEM_SCHEMA.names).sort_by(
        [
            ("annotator", "ascending"),
            ("file_name", "ascending"),
            ("check", "ascending"),
            ("keypoint", "ascending"),
        ]
    )
    if labels is not None:
        items = items.set_column(
            ITEM_SCHEMA.get_field_index("reference"),
            "reference",
            pa.array(_references(items, labels, gold), pa.string()),
        )
    return items


def _nearest_reference(mine: np.ndarray, others: np.ndarray) -> int:
    """Index of the reference instance closest (mean distance of points both placed) to any of `mine`."""
    best, best_d = 0, np.inf
    for j, other in enumerate(others):
        for m in mine:
            both = (m[:, 2] > 0) & (other[:, 2] > 0)
            d = np.linalg.norm(m[both, :2] - other[both, :2], axis=1).mean() if both.any() else np.inf
            if d < best_d:
                best, best_d = j, d
    return best


def _references(items: pa.Table, labels: Dataset, gold: Dataset | None) -> list[str]:
    """Per item: where gold (or, without gold on the image, the partner) has the item's keypoint."""
    ids = dict(zip(labels.images.file_name.tolist(), labels.images.id.tolist(), strict=True))
    names = list(labels.schema.keypoints)
    ins, gins = labels.instances, gold.instances if gold is not None else None
    out = []
    for who, name, check, kp in zip(
        items["annotator"].to_pylist(),
        items["file_name"].to_pylist(),
        items["check"].to_pylist(),
        items["keypoint"].to_pylist(),
        strict=True,
    ):
        image = ids.get(name)
        if image is None or kp not in names or check not in COMPARED_WITH_OTHERS:
            out.append("")
            continue
        mine = ins.keypoints[(ins.image_id == image) & (ins.annotator == who)]
        on_gold = gins.keypoints[gins.image_id == image] if gins is not None else np.zeros((0, len(names), 3))
        partner = (ins.image_id == image) & (ins.annotator != who)
        ref, whose = (on_gold, "gold") if len(on_gold) else (ins.keypoints[partner], None)
        if not len(ref) or not len(mine):
            out.append("")
            continue
        j, k = _nearest_reference(mine, ref), names.index(kp)
        whose = whose or str(ins.annotator[np.flatnonzero(partner)[j]])
        x, y, v = ref[j, k]
        out.append(f"{whose} has {kp} at ({x:.1f}, {y:.1f})" if v > 0 else f"{whose} did not place {kp}")
    return out


def item_text(rows: list[dict]) -> str:
    """The finding's words an annotator reads on a rework task: one line per reason."""
    lines = []
    for r in rows:
        what = f"instance {r['annotation_id']}" if r.get("annotation_id") is not None else ""
        what += (", " if what and r.get("keypoint") else "") + (r.get("keypoint") or "")
        what = f"{what}: " if what else ""
        ref = f" ({r['reference']})" if r.get("reference") else ""
        lines.append(f"[{r['check']}] {what}{r['reason']}{ref}")
    return "\n".join(lines)
