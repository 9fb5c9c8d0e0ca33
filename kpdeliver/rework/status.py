"""What came back: in a delivery, each item of the rework ledger is `fixed` (its reworked labels
pass and are delivered), `still failing` (they came back and are held back again, with their new
findings) or `still out` (nothing came back yet). Written as `qa/rework.parquet`, added to
`qa/changes.parquet`, counted in the report and the scorecards, and judged by `qa.max_rework_rate`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from kpdeliver.model import Dataset
from kpdeliver.rework.ledger import Ledger, is_out, returned_rounds

STATUS_SCHEMA = pa.schema(
    [
        ("round", pa.string()),
        ("sent_for", pa.int64()),  # the release whose findings (or feedback) sent it
        ("annotator", pa.string()),
        ("file_name", pa.string()),
        ("origin", pa.string()),  # finding | quarantine | feedback (comma-separated when several)
        ("checks", pa.string()),  # the checks it was sent back for
        ("feedback", pa.string()),  # the client's feedback file it answers, '' when none
        ("status", pa.string()),  # fixed | still failing | still out
        ("new_findings", pa.string()),  # for still failing: the checks and messages of this release
    ]
)
STATUSES = ("fixed", "still failing", "still out")


def _failing(quarantine: pa.Table, findings: pa.Table) -> dict[tuple[str, str], list[str]]:
    """(annotator, file name) -> this release's reasons to hold its labels back."""
    out: dict[tuple[str, str], list[str]] = {}
    errs = findings.filter(pc.equal(findings["severity"], "error"))
    for who, name, check, msg in zip(
        errs["annotator"].to_pylist(),
        errs["file_name"].to_pylist(),
        errs["check"].to_pylist(),
        errs["message"].to_pylist(),
        strict=True,
    ):
        out.setdefault((who, name), []).append(f"[{check}] {msg}")
    for who, name, checks, reasons in zip(
        quarantine["annotator"].to_pylist(),
        quarantine["file_name"].to_pylist(),
        quarantine["checks"].to_pylist(),
        quarantine["reasons"].to_pylist(),
        strict=True,
    ):
        if (who, name) not in out:
            out.setdefault((who, name), []).append(f"[{checks}] {reasons}")
    return out


def rework_status(ledger: Ledger, reviewed: Dataset, quarantine: pa.Table, findings: pa.Table) -> pa.Table:
    """One row per (annotator, image) of the ledger, for its newest round (STATUS_SCHEMA)."""
    returned = returned_rounds(reviewed)
    failing = _failing(quarantine, findings)
    rows = []
    for (who, name), e in sorted(ledger.latest().items()):
        items = e.get("items", [])
        if is_out(e, returned):
            status, new = "still out", ""
        elif (who, name) in failing:
            status, new = "still failing", " | ".join(failing[(who, name)])
        else:
            status, new = "fixed", ""
        rows.append(
            {
                "round": e["round"],
                "sent_for": e["release"],
                "annotator": who,
                "file_name": name,
                "origin": ",".join(sorted({i["origin"] for i in items})),
                "checks": ",".join(sorted({str(i["check"]) for i in items})),
                "feedback": e.get("feedback") or "",
                "status": status,
                "new_findings": new,
            }
        )
    return pa.Table.from_pylist(rows, schema=STATUS_SCHEMA)


def rework_counts(status: pa.Table) -> dict:
    """{total: {status: n}, annotators: {name: {status: n}}, checks: {check: {status: n}}}."""
    total: Counter = Counter()
    by_who: dict[str, Counter] = {}
    by_check: dict[str, Counter] = {}
    for r in status.to_pylist():
        total[r["status"]] += 1
        by_who.setdefault(r["annotator"], Counter())[r["status"]] += 1
        for check in r["checks"].split(","):
            by_check.setdefault(check, Counter())[r["status"]] += 1

    def full(c: Counter) -> dict[str, int]:
        returned = c["fixed"] + c["still failing"]
        return {"sent": returned + c["still out"], "returned": returned, **{s: c[s] for s in STATUSES}}

    return {
        "total": full(total),
        "annotators": {k: full(v) for k, v in sorted(by_who.items())},
        "checks": {k: full(v) for k, v in sorted(by_check.items())},
    }


def rework_rate(ledger: Ledger, reviewed: Dataset) -> float | None:
    """Images sent back for rework (any round) / images with an annotator's label; None when none."""
    ins = reviewed.instances
    labeled = set(ins.image_id[(ins.annotator != "gold") & (ins.image_id >= 0)].tolist())
    if not labeled:
        return None
    sent = {e["file_name"] for e in ledger.entries}
    return len(sent) / len(labeled)


def status_changes(status: pa.Table, images: Dataset) -> pa.Table:
    """Rows for `qa/changes.parquet` (item `rework`, change = the status)."""
    ids = dict(zip(images.images.file_name.tolist(), images.images.id.tolist(), strict=True))
    detail = [
        f"{who} ({r}, sent for v{v:04d}: {c})" + (f"; new findings: {n}" if n else "")
        for who, r, v, c, n in zip(
            status["annotator"].to_pylist(),
            status["round"].to_pylist(),
            status["sent_for"].to_pylist(),
            status["checks"].to_pylist(),
            status["new_findings"].to_pylist(),
            strict=True,
        )
    ]
    n = status.num_rows
    return pa.table(
        {
            "item": pa.array(["rework"] * n, pa.string()),
            "change": status["status"],
            "image_id": pa.array([ids.get(f) for f in status["file_name"].to_pylist()], pa.int64()),
            "annotation_id": pa.nulls(n, pa.int64()),
            "file_name": status["file_name"],
            "detail": pa.array(detail, pa.string()),
        }
    )


def with_rework_counts(annotators: pa.Table | None, status: pa.Table) -> pa.Table | None:
    """The scorecards with n_rework_returned, n_rework_fixed, n_rework_failing, n_rework_out per annotator."""
    if annotators is None or not status.num_rows:
        return annotators
    counts = rework_counts(status)["annotators"]
    names = annotators["annotator"].to_pylist()
    for col, key in (
        ("n_rework_returned", "returned"),
        ("n_rework_fixed", "fixed"),
        ("n_rework_failing", "still failing"),
        ("n_rework_out", "still out"),
    ):
        values = [counts.get(a, {}).get(key, 0) for a in names]
        annotators = annotators.append_column(col, pa.array(values, pa.int64()))
    return annotators


@dataclass(frozen=True)
class ReleaseRework:
    """What a delivery says about rework: its status rows, counts, rate and report section."""

    status: pa.Table  # qa/rework.parquet
    rate: float | None
    changes: pa.Table  # rows for qa/changes.parquet

    @property
    def report(self) -> dict:
        """The report's rework section (templates/rework.html.j2)."""
        rows = self.status.to_pylist()
        return {
            "counts": rework_counts(self.status),
            "rate": self.rate,
            "rows": rows,
            "feedback": [r for r in rows if r["feedback"]],
        }


def release_rework(
    ledger: Ledger, reviewed: Dataset, quarantine: pa.Table, findings: pa.Table
) -> ReleaseRework:
    status = rework_status(ledger, reviewed, quarantine, findings)
    return ReleaseRework(status, rework_rate(ledger, reviewed), status_changes(status, reviewed))
