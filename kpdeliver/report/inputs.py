"""What the QA report is built from, typed: `ReportInputs` (the findings and every optional table),
`ReportHeader` (who and what the report is about: client, dataset, version, publication date, code
version, signature) and the anonymisation of annotator names (`report.annotators: anonymous`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kpdeliver.config import DeepQASettings
from kpdeliver.model import Dataset
from kpdeliver.report.overlays import ImageBytes

GOLD = "gold"  # the annotator name collected gold labels carry: never anonymised (it is no person)


@dataclass(frozen=True)
class ReportHeader:
    """The report's identity. `version`: the release number publication takes (the next after the
    newest published when the report is written); `signed`: whether the release is signed
    (None: not a release, e.g. `kpdeliver validate`); `key_fingerprint`: sha256 of the public key."""

    client: str
    dataset: str
    version: int | None = None
    published: str | None = None  # ISO date (UTC)
    code_version: str | None = None
    signed: bool | None = None
    key_fingerprint: str | None = None


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows. `summary`: the release's counts (a delivery's `Counts.to_dict()`,
    or any labelled facts); `signoff`: qa/signoff.json's content (verdict, reasons, every rule);
    `reviewed`: every label QA saw (annotators' and gold), for the pictures; `delivered`: what the
    release delivers; `image_bytes(file_name)`: an image's bytes; `sigmas`: per-keypoint measured OKS
    sigmas (shown by the `sigmas.html.j2` partial when present)."""

    findings: pa.Table
    title: str
    summary: dict = field(default_factory=dict)
    header: ReportHeader | None = None
    signoff: dict | None = None
    annotators: pa.Table | None = None
    keypoints: pa.Table | None = None
    reviewed: Dataset | None = None
    delivered: Dataset | None = None
    image_bytes: ImageBytes | None = None
    changes: pa.Table | None = None
    previous_version: int | None = None
    validation_results: list[dict] | None = None
    min_gold_oks: float | None = None
    deep_qa: DeepQASettings | None = None
    annotator_names: Literal["named", "anonymous"] = "named"
    known_annotators: tuple[str, ...] = ()  # the configured names: replaced in text too when anonymous
    sigmas: pa.Table | None = None
    rework: dict | None = None  # the rework section (kpdeliver.rework.status.ReleaseRework.report)
    n_pictures: int = 6
    seed: int = 0


def aliases(names: list[str]) -> dict[str, str]:
    """Annotator name -> `Annotator 1`, `Annotator 2`, … in sorted name order (gold stays gold)."""
    people = sorted({n for n in names if n and n != GOLD})
    return {n: f"Annotator {i}" for i, n in enumerate(people, 1)}


def _text_replacer(alias: dict[str, str]):
    if not alias:
        return lambda s: s
    pattern = re.compile(
        r"(?<![\w-])(" + "|".join(re.escape(n) for n in sorted(alias, key=len, reverse=True)) + r")(?![\w-])"
    )
    return lambda s: pattern.sub(lambda m: alias[m.group(1)], s) if isinstance(s, str) else s


def _table(t: pa.Table | None, columns: tuple[str, ...], fix) -> pa.Table | None:
    if t is None:
        return None
    for name in columns:
        if name in t.column_names:
            i = t.column_names.index(name)
            t = t.set_column(
                i, name, pa.array([fix(v) for v in t[name].to_pylist()], t.schema.field(name).type)
            )
    return t


def _dataset(ds: Dataset | None, alias: dict[str, str]) -> Dataset | None:
    if ds is None:
        return None
    names = np.asarray([alias.get(a, a) for a in ds.instances.annotator.tolist()], dtype=object)
    return ds.replace(instances=replace(ds.instances, annotator=names))


def _rework(rework: dict | None, alias: dict[str, str], fix) -> dict | None:
    """The rework section with annotator names replaced (counts, items, feedback answered)."""
    if not rework:
        return rework

    def row(r: dict) -> dict:
        return {
            **r,
            "annotator": alias.get(str(r.get("annotator")), r.get("annotator")),
            "new_findings": fix(r.get("new_findings")),
        }

    counts = {
        **rework["counts"],
        "annotators": {alias.get(k, k): v for k, v in rework["counts"].get("annotators", {}).items()},
    }
    return {
        **rework,
        "counts": counts,
        "rows": [row(r) for r in rework.get("rows", [])],
        "feedback": [row(r) for r in rework.get("feedback", [])],
    }


def anonymised(inputs: ReportInputs) -> ReportInputs:
    """The inputs with every annotator name (in tables, messages, reasons and rules) replaced by
    its alias (`known_annotators` too, so one without a finding is replaced in text as well)."""
    found = list(inputs.known_annotators)
    for t in (inputs.findings, inputs.annotators, inputs.keypoints):
        if t is not None and "annotator" in t.column_names:
            found += [a for a in pc.unique(t["annotator"]).to_pylist() if a]
    for ds in (inputs.reviewed, inputs.delivered):
        if ds is not None:
            found += [str(a) for a in np.unique(ds.instances.annotator.astype(str))]
    alias = aliases(found)
    fix = _text_replacer(alias)
    signoff = None
    if inputs.signoff is not None:
        signoff = {
            **inputs.signoff,
            "reasons": [fix(r) for r in inputs.signoff.get("reasons", [])],
            "rules": [
                {**r, "subject": fix(r.get("subject")), "message": fix(r.get("message"))}
                for r in inputs.signoff.get("rules", [])
            ],
        }
    return replace(
        inputs,
        findings=_table(inputs.findings, ("annotator", "message", "source"), fix),
        signoff=signoff,
        annotators=_table(inputs.annotators, ("annotator",), fix),
        keypoints=_table(inputs.keypoints, ("annotator",), fix),
        reviewed=_dataset(inputs.reviewed, alias),
        delivered=_dataset(inputs.delivered, alias),
        changes=_table(inputs.changes, ("detail",), fix),
        summary={k: fix(v) for k, v in inputs.summary.items()},
        rework=_rework(inputs.rework, alias, fix),
        image_bytes=inputs.image_bytes,
    )
