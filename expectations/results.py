"""What a run of the row rules hands back, typed and without Great Expectations: the findings and
GX's validation results summarised as plain JSON (`expectations.validate.results_summary`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:  # light: the validation worker's module imports this before anything heavy
    import pyarrow as pa

RESULTS_FILE = "validation_results.json"


@dataclass(frozen=True)
class RuleResults:
    """The row rules' findings (FINDINGS_SCHEMA) on one dataset, and GX's validation results
    summarised as plain JSON (per suite, each expectation's rule, outcome and counts)."""

    findings: pa.Table
    summary: list[dict] = field(default_factory=list)


def results_json(summary: list[dict]) -> bytes:
    """A results summary as the bytes of `validation_results.json` (a release's
    `qa/validation_results.json`, `kpdeliver validate`'s `validation/**/validation_results.json`)."""
    return orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
