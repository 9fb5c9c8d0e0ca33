"""Run the suites on a dataset with Great Expectations and turn every failing row into a finding."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import great_expectations as gx
import numpy as np
import pyarrow as pa
from great_expectations.execution_engine import pandas_execution_engine

from expectations.frames import iter_frames
from expectations.located import Failing, locate
from expectations.results import RESULTS_FILE, results_json
from expectations.suites import SUPERSEDES, Rule, build_rules, build_suites
from kpdeliver.config import ValidationSettings
from kpdeliver.errors import ValidationError
from kpdeliver.findings import CHECKS, Severity
from kpdeliver.model import Dataset

# Every failing row's index (COMPLETE), as one compact list per expectation rather than one dict per
# row with its value: the values are re-read from the model when findings are located.
RESULT_FORMAT = {"result_format": "COMPLETE", "exclude_unexpected_values": True}
# GX fingerprints every in-memory frame under this size with an md5 of all its values (about a
# third of a 100,000-instance run). Our frames are built for one run and never compared: skip it.
pandas_execution_engine.HASH_THRESHOLD = 0


class SuiteError(ValidationError, RuntimeError):
    """An expectation could not run (a bug in a suite, not a problem in the data)."""


@dataclass
class ValidationReport:
    """Outcome of one validation run.

    `findings` holds every failing item (FINDINGS_SCHEMA columns, no truncation); `results_path`
    the JSON summary of the GX validation results when a results folder was given; `results` the
    GX validation results keyed by (suite, table) (each `.success` is GX's verdict, with `mostly`
    applied).
    """

    findings: pa.Table
    results_path: Path | None = None
    results: dict = field(default_factory=dict)

    @property
    def n_errors(self) -> int:
        return int(np.sum(self.findings["severity"].to_numpy(zero_copy_only=False) == Severity.error.value))


def validate_dataset(
    dataset: Dataset,
    settings: ValidationSettings,
    *,
    docs_dir: Path | None = None,
    source: str = "",
) -> ValidationReport:
    """Run the schema, visibility and bounds suites on `dataset`.

    Every unexpected row becomes a finding with its stable check id. A check whose expectation
    still passes thanks to `settings.mostly` < 1 reports its rows as warnings, not errors.
    With `docs_dir`, the run's validation results are written there as `validation_results.json`
    (what the QA report renders; GX's own Data Docs are not built: they load their styles and
    scripts from CDNs and show nothing offline).
    """
    runner = SuiteRunner(
        make_context(),
        category_ids=[c.id for c in dataset.categories],
        settings=settings,
        schema_name=dataset.schema.name,
    )
    for key, rows in iter_frames(dataset):
        runner.run(key, rows)
    results, failing = runner.finish()
    findings = locate(dataset, failing, source=source)
    return ValidationReport(findings=findings, results_path=write_results(results, docs_dir), results=results)


class SuiteRunner:
    """The suites of one dataset, run on each table's rows as they arrive: a points table comes
    in pieces (its rules are all per row), and their results are merged in `finish`. The
    `validate` worker drops each piece once validated. `Batch.validate` returns the results
    without adding them to the context's results store: storing serialises every failing row
    once more, a third of the run, for an ephemeral context nobody reads."""

    def __init__(
        self, ctx, *, category_ids: list[int], settings: ValidationSettings, schema_name: str
    ) -> None:
        self.rules = build_rules(category_ids=category_ids, settings=settings)
        self.suites = build_suites(self.rules, schema_name=schema_name)
        self.source = ctx.data_sources.add_pandas("kpdeliver")
        self.assets: dict = {}
        self.parts: dict = {}

    def run(self, key: tuple[str, str], rows) -> None:
        if key not in self.assets:
            self.assets[key] = self.source.add_dataframe_asset(
                ".".join(key)
            ).add_batch_definition_whole_dataframe("all")
        self.parts.setdefault(key, []).append(
            self.assets[key]
            .get_batch(batch_parameters={"dataframe": rows})
            .validate(self.suites[key], result_format=RESULT_FORMAT)
        )
        # the engine keeps every batch it loaded, and the rows with it
        batches = self.source.get_execution_engine().batch_manager
        batches.reset_batch_cache()
        batches.batch_data_cache.clear()

    def finish(self) -> tuple[dict, list[Failing]]:
        """The results in suite order, and every check's failing rows in report order."""
        missing = [".".join(key) for key in self.suites if key not in self.parts]
        if missing:
            raise SuiteError(f"no rows were given for the suites {missing}")
        results = {key: _merged(self.parts[key]) for key in self.suites}
        return results, _failing(self.rules, results)


_SUMMED = ("element_count", "unexpected_count", "missing_count")
_PARTIAL = 20  # GX's default partial_unexpected_count


def _merged(parts: list):
    """One suite result from the results of the pieces of one table (per-row rules):
    counts summed, failing rows concatenated, percentages and each expectation's `mostly`
    verdict recomputed the way GX computes them (`_mostly_success`), the suite's statistics too."""
    merged = parts[0]
    if len(parts) == 1:
        return merged
    same = [{_expectation_key(q): q for q in p.results} for p in parts]  # GX orders results freely
    for i, r in enumerate(merged.results):
        pieces = [by_key[_expectation_key(r)] for by_key in same]
        failed_to_run = next((q for q in pieces if (q.exception_info or {}).get("raised_exception")), None)
        if failed_to_run is not None:
            merged.results[i] = failed_to_run
            continue
        res = r.result
        for name in _SUMMED:
            if name in res:
                res[name] = sum(q.result.get(name) or 0 for q in pieces)
        for name, keep in (("unexpected_index_list", None), ("partial_unexpected_index_list", _PARTIAL)):
            if name in res:
                res[name] = [row for q in pieces for row in q.result.get(name) or []][:keep]
        res.pop("unexpected_index_query", None)  # a query over one part's rows would mislead
        total, unexpected, missing = (res.get(name) or 0 for name in _SUMMED)
        considered = total - missing
        if "missing_percent" in res:
            res["missing_percent"] = missing / total * 100 if total else None
        if "unexpected_percent_total" in res:
            res["unexpected_percent_total"] = unexpected / total * 100 if total else None
        for name in ("unexpected_percent", "unexpected_percent_nonmissing"):
            if name in res:
                res[name] = unexpected / considered * 100 if considered else None
        mostly = r.expectation_config.kwargs.get("mostly", 1)
        r.success = True if considered == 0 else (considered - unexpected) / considered >= mostly
    successful = sum(bool(r.success) for r in merged.results)
    merged.success = successful == len(merged.results)
    stats = merged.statistics
    stats["successful_expectations"] = successful
    stats["unsuccessful_expectations"] = len(merged.results) - successful
    stats["success_percent"] = successful / len(merged.results) * 100 if merged.results else None
    return merged


def _expectation_key(r) -> tuple[str, str]:
    cfg = r.expectation_config
    return cfg.type, repr(sorted(cfg.kwargs.items()))


def results_summary(results: dict) -> list[dict]:
    """The GX validation results as plain JSON: per suite, each expectation's rule, outcome and
    counts (the failing rows themselves are in the findings, not repeated here)."""
    out = []
    for (family, table), result in results.items():
        rows = []
        for r in result.results:
            cfg, res = r.expectation_config, r.result or {}
            rows.append(
                {
                    "expectation": cfg.type,
                    "check": (cfg.meta or {}).get("check"),
                    "description": getattr(cfg, "description", None) or (cfg.meta or {}).get("description"),
                    "column": cfg.kwargs.get("column"),
                    "mostly": cfg.kwargs.get("mostly"),
                    "success": bool(r.success),
                    "element_count": res.get("element_count"),
                    "unexpected_count": res.get("unexpected_count"),
                    "unexpected_percent": res.get("unexpected_percent"),
                }
            )
        stats = result.statistics or {}
        out.append(
            {
                "suite": result.suite_name,
                "family": family,
                "table": table,
                "success": bool(result.success),
                "evaluated": stats.get("evaluated_expectations"),
                "successful": stats.get("successful_expectations"),
                "expectations": rows,
            }
        )
    return out


def write_results(results: dict, docs_dir: Path | None) -> Path | None:
    """Write `results_summary(results)` to `docs_dir/validation_results.json`."""
    if docs_dir is None:
        return None
    path = Path(docs_dir) / RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(results_json(results_summary(results)))
    return path


def make_context():
    """An ephemeral GX context, quiet."""
    for name in ["great_expectations", *logging.root.manager.loggerDict]:  # GX sets some of its own to INFO
        if name.split(".")[0] == "great_expectations":
            logging.getLogger(name).setLevel(logging.ERROR)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = {"globally": False}
    return ctx


def _failing(rules: list[Rule], results: dict) -> list[Failing]:
    failing: dict[tuple[str, str], np.ndarray] = {}  # (check, table) -> failing row ids
    failed: set[tuple[str, str]] = set()  # checks with an expectation that failed outright
    for (_, table), result in results.items():
        index_name = "pt" if table == "points" else "row"
        for r in result.results:
            exc = r.exception_info or {}
            if exc.get("raised_exception"):
                raise SuiteError(
                    f"expectation {r.expectation_config.type} failed to run: {exc.get('exception_message')}"
                )
            rows = r.result.get("unexpected_index_list") or []
            if not rows:
                continue
            key = (r.expectation_config.meta["check"], table)
            ids = np.concatenate([np.asarray(d[index_name], dtype=np.int64).reshape(-1) for d in rows])
            failing[key] = np.concatenate([failing.get(key, ids[:0]), ids])
            if not r.success:
                failed.add(key)
    for (check, table), ids in list(failing.items()):
        loser = SUPERSEDES.get(check)
        if loser is not None and (loser, table) in failing:
            failing[(loser, table)] = failing[(loser, table)][~np.isin(failing[(loser, table)], ids)]
    out = []
    for rule in rules:  # report order
        ids = failing.pop((rule.check, rule.table), np.empty(0, np.int64))
        if not len(ids):
            continue
        severity = CHECKS[rule.check].value
        if (rule.check, rule.table) not in failed and severity == Severity.error.value:
            severity = Severity.warning.value  # tolerated by `mostly`
        out.append((rule.check, rule.table, ids, severity))
    return out
