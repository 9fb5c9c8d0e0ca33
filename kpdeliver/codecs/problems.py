"""One problem with one item at decode, and the log a decoder keeps of what it met.

An item that cannot be modelled (wrong keypoint count, a region with no image size, a free
points shape with no names) is held back: the same `ItemProblem` value gives the finding that
says why and the quarantine ("rejected") row that keeps the item as it came in, so nothing is
lost and the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from kpdeliver.findings import FINDINGS_SCHEMA, concat_findings, findings_for
from kpdeliver.model import NONE

REJECTED_SCHEMA = pa.schema(
    [
        ("annotation_id", pa.int64()),
        ("image_id", pa.int64()),
        ("annotator", pa.string()),
        ("source", pa.string()),
        ("check", pa.string()),
        ("reason", pa.string()),
        ("raw", pa.string()),  # the item as it came in (JSON, XML or a text line), so nothing is lost
    ]
)


def no_rows(schema: pa.Schema) -> pa.Table:
    """An empty table from typed null arrays. pyarrow's Schema.empty_table() and pa.array()
    import pandas (a quarter second), which `kpdeliver convert` on a clean file never needs."""
    return pa.Table.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema)


@dataclass(frozen=True)
class ItemProblem:
    """An item held back at decode. `message` is the full sentence (file, item, field, what is
    wrong); `field` names the offending field; `raw` is the item as written."""

    check: str
    source: str
    message: str
    field: str = ""
    image_id: int = NONE
    annotation_id: int = NONE
    file_name: str | None = None
    annotator: str = ""
    value: float | None = None
    raw: str = ""

    def finding(self) -> pa.Table:
        """The one-row finding (an absent id is null, as in every findings table)."""
        return findings_for(
            self.check,
            message=self.message,
            image_id=_id_or_none(self.image_id),
            annotation_id=_id_or_none(self.annotation_id),
            file_name=self.file_name,
            annotator=self.annotator or None,
            value=self.value,
            source=self.source,
            n=1,
        )

    def rejected_row(self) -> dict:
        """The quarantine row (REJECTED_SCHEMA)."""
        return {
            "annotation_id": self.annotation_id,
            "image_id": self.image_id,
            "annotator": self.annotator,
            "source": self.source,
            "check": self.check,
            "reason": self.message,
            "raw": self.raw,
        }


def _id_or_none(value: int) -> int | None:
    return value if value >= 0 else None


def rejected_table(problems: list[ItemProblem]) -> pa.Table:
    if not problems:
        return no_rows(REJECTED_SCHEMA)
    return pa.Table.from_pylist([p.rejected_row() for p in problems], schema=REJECTED_SCHEMA)


class DecodeLog:
    """Findings and held-back items of one decode, kept in the order they were met."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.findings: list[pa.Table] = []
        self.problems: list[ItemProblem] = []

    def hold(self, problem: ItemProblem) -> None:
        self.findings.append(problem.finding())
        self.problems.append(problem)

    def note(self, finding: pa.Table) -> None:
        self.findings.append(finding)

    def quirk(self, message: str, *, value: float | None = None) -> None:
        """An info finding for a file-level oddity that decoding works around."""
        self.note(
            findings_for(
                "decode.quirk", message=f"{self.source}: {message}", value=value, source=self.source, n=1
            )
        )

    def findings_table(self) -> pa.Table:
        return concat_findings(self.findings) if self.findings else no_rows(FINDINGS_SCHEMA)

    def rejected_table(self) -> pa.Table:
        return rejected_table(self.problems)
