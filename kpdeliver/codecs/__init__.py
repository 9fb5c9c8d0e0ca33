"""Codecs: bytes in a keypoint format <-> the canonical model. No network, no Prefect,
no file system beyond the bytes they are handed."""
from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from kpdeliver.findings import concat_findings, empty_findings
from kpdeliver.model import Dataset

REJECTED_SCHEMA = pa.schema(
    [
        ("annotation_id", pa.int64()),
        ("image_id", pa.int64()),
        ("annotator", pa.string()),
        ("source", pa.string()),
        ("check", pa.string()),
        ("reason", pa.string()),
        ("raw", pa.string()),  # the item as it came in (JSON), so nothing is lost
    ]
)


class CodecError(ValueError):
    """Input that cannot be decoded at all; the message names the file, item and field."""


@dataclass
class Decoded:
    """What a decoder returns: the items it could model, findings about the input, and the
    items it had to hold back (quarantine candidates), each with its raw form."""

    dataset: Dataset
    findings: pa.Table = field(default_factory=empty_findings)
    rejected: pa.Table = field(default_factory=REJECTED_SCHEMA.empty_table)

    def merge_findings(self, *tables: pa.Table) -> None:
        self.findings = concat_findings([self.findings, *tables])


def rejected_rows(rows: list[dict]) -> pa.Table:
    if not rows:
        return REJECTED_SCHEMA.empty_table()
    return pa.Table.from_pylist(rows, schema=REJECTED_SCHEMA)
