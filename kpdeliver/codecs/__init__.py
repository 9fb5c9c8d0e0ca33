"""Codecs: bytes in a keypoint format <-> the canonical model. No network, no Prefect,
no file system beyond the bytes they are handed.

One folder per format (`coco/`, `cvat/`, `label_studio/`, `yolo_pose/`), each exposing a
`Codec` (protocol.py) as `CODEC`; `registry.py` finds the right one. Format folders are
imported only when used, so `kpdeliver convert` loads one format, not four.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from kpdeliver.codecs.problems import REJECTED_SCHEMA, DecodeLog, ItemProblem
from kpdeliver.errors import DecodeError
from kpdeliver.findings import concat_findings, empty_findings
from kpdeliver.model import Dataset

__all__ = ["REJECTED_SCHEMA", "CodecError", "DecodeLog", "Decoded", "ItemProblem"]


class CodecError(DecodeError, ValueError):
    """Input that cannot be decoded at all; the message names the file, item and field."""


@dataclass
class Decoded:
    """What a decoder returns: the items it could model, findings about the input, and the
    items it had to hold back (quarantine candidates), each with its raw form."""

    dataset: Dataset
    findings: pa.Table = field(default_factory=empty_findings)
    rejected: pa.Table = field(default_factory=REJECTED_SCHEMA.empty_table)

    @classmethod
    def logged(cls, dataset: Dataset, log: DecodeLog) -> Decoded:
        """The dataset with the findings and held-back items a decode logged."""
        return cls(dataset, log.findings_table(), log.rejected_table())

    def merge_findings(self, *tables: pa.Table) -> None:
        self.findings = concat_findings([self.findings, *tables])
