"""`kpdeliver validate`: run the validation suites (and, on request, deep QA) on one annotation file.

Writes `findings.parquet`, `report.html`, `sigmas.json` (with deep QA) and the row rules' GX results
(`validation/**/validation_results.json`, shown in the report) under --out.
Exit code: 0 no error-severity finding, 1 errors found, 2 input unusable. Great Expectations
is imported only by the command's worker process (expectations.worker), so the rest of the CLI
starts fast and the import overlaps with reading the input.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.text import Text

from kpdeliver.cli.output import fail, plural, progress_shown, show_table
from kpdeliver.errors import DecodeError

if TYPE_CHECKING:
    import pyarrow as pa

    from kpdeliver.codecs import Decoded
    from kpdeliver.model import Dataset

app = typer.Typer()
console = Console(
    soft_wrap=True, highlight=False, markup=False
)  # user text printed as written, paths never wrap

FROM_FILE = "file"  # --schema file: the input's own COCO category defines the keypoints


class InputError(DecodeError, ValueError):
    """The input cannot be used at all; the message is one sentence."""


def read_input(
    path: Path, *, schema_name: str, images_dir: Path | None, annotator: str = "", category: str | None = None
) -> Decoded:
    """Decode any supported annotation format into the canonical model."""
    from kpdeliver.codecs import CodecError
    from kpdeliver.codecs.resolve import resolve_schema
    from kpdeliver.collect.files import read_annotations
    from kpdeliver.collect.non_finite import hold_non_finite
    from kpdeliver.schema import SchemaError

    if not path.exists():
        raise InputError(f"input {path} does not exist")
    try:
        schema = None if schema_name == FROM_FILE else resolve_schema(schema_name)
        decoded = read_annotations(
            path, schema=schema, images_dir=images_dir, annotator=annotator, category=category
        )
    except (CodecError, SchemaError) as e:
        raise InputError(str(e)) from None
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
    # a NaN/infinite number is held back with its finding (schema.non_finite) like any item that
    # cannot be modelled, so neither the rules nor the report's drawings meet it
    decoded = hold_non_finite(decoded)
    if annotator:  # the name given on the command line wins over names inside the file
        decoded.dataset.instances.annotator[:] = annotator
    return decoded


def read_sizes(path: Path) -> dict[str, tuple[int, int]]:
    """`file_name -> (width, height)` from a sizes file (`kpdeliver.collect.local.read_size_table`)."""
    from kpdeliver.collect.local import read_size_table

    try:
        return read_size_table(path)
    except ValueError as e:
        raise InputError(str(e)) from None


def fill_sizes(dataset: Dataset, sizes: dict[str, tuple[int, int]]) -> None:
    """Set width/height of the images whose size is unknown (0) from `sizes`, in place."""
    import numpy as np

    im = dataset.images
    for i in np.flatnonzero((im.width <= 0) | (im.height <= 0)).tolist():
        wh = sizes.get(im.file_name[i])
        if wh:
            im.width[i], im.height[i] = wh


def _parse_annotations(items: list[str]) -> list[tuple[str, Path]]:
    out = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--annotation {item!r} must look like NAME=PATH")
        out.append((name, Path(path)))
    return out


def _print_summary(findings: pa.Table, *, title: str, out: Path, seconds: float) -> None:
    from rich.table import Table

    from kpdeliver.findings import summary_by

    t = Table(title=title)
    for col, just in (("check", "left"), ("severity", "left"), ("count", "right")):
        t.add_column(col, justify="right" if just == "right" else "left")
    for row in summary_by(findings, "check", "severity").to_pylist():
        style = {"error": "red", "warning": "yellow"}.get(row["severity"], "")
        t.add_row(row["check"], Text(row["severity"], style=style or ""), f"{row['count']:,}")
    if findings.num_rows == 0:
        t.add_row("(none)", "", "0")
    show_table(console, t)
    console.print(
        f"findings: {out / 'findings.parquet'}\nreport:   {out / 'report.html'}\nrules:    {out / 'validation'}"
    )
    console.print(f"done in {seconds:.1f} s")


@app.command("validate")
def validate_command(
    input: Path = typer.Argument(
        ..., help="annotation file (COCO, CVAT XML, Label Studio JSON, YOLO data.yaml)"
    ),
    schema: str = typer.Option(
        ...,
        "--schema",
        help=f"built-in schema name, a schema .yaml, or '{FROM_FILE}' (the file's own category)",
    ),
    images: Path | None = typer.Option(
        None, "--images", help="folder of the images (sizes read from their headers)"
    ),
    sizes: Path | None = typer.Option(
        None, "--sizes", help="CSV file_name,width,height or JSON {name: [w, h]}"
    ),
    out: Path = typer.Option(..., "--out", help="output folder"),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="client YAML whose validation settings to use"
    ),
    annotation: list[str] = typer.Option(
        [], "--annotation", help="another annotator's export, NAME=PATH (repeatable; enables deep QA)"
    ),
    gold: Path | None = typer.Option(None, "--gold", help="trusted reference labels (enables deep QA)"),
    category: str | None = typer.Option(
        None,
        "--category",
        help="COCO input with several keypoint categories: "
        "the one to validate (default: the client config's `category`)",
    ),
) -> None:
    """Validate annotations: schema conformance, visibility, bounds (Great Expectations), plus deep QA on request."""
    start = time.perf_counter()
    findings, n_err = _validate(
        input,
        out,
        schema=schema,
        images=images,
        sizes=sizes,
        config=config,
        annotation=annotation,
        gold=gold,
        category=category,
    )
    _print_summary(
        findings,
        title=f"{input.name}: {'FAIL' if n_err else 'PASS'} ({plural(findings.num_rows, 'finding')})",
        out=out,
        seconds=time.perf_counter() - start,
    )
    raise typer.Exit(1 if n_err else 0)


def _validate(
    input: Path,
    out: Path,
    *,
    schema: str,
    images: Path | None,
    sizes: Path | None,
    config: Path | None,
    annotation: list[str],
    gold: Path | None,
    category: str | None,
) -> tuple[pa.Table, int]:
    """Read the inputs, run the suites and write every output under `out`; (findings, number of errors).

    An unusable input or config ends the command with its one-sentence error."""
    from expectations.worker import GXWorker
    from kpdeliver.config import ConfigError

    with GXWorker() as worker:  # imports Great Expectations in a second process while this one reads
        try:
            cfg, decoded, gold_ds = _read_inputs(
                input,
                schema=schema,
                images=images,
                sizes=sizes,
                config=config,
                annotation=annotation,
                gold=gold,
                category=category,
            )
        except (InputError, ConfigError) as e:
            fail(str(e))
        out.mkdir(parents=True, exist_ok=True)
        result = _run_suites(worker, cfg, decoded, gold_ds)
        summary = _write_findings(result, out, input, decoded)
    rules = _write_rule_results(out / "validation", [name for name, _, _ in decoded], result.rules)
    _write_report(
        out, input, images=images, cfg=cfg, result=result, summary=summary, decoded=decoded, rules=rules
    )
    return result.findings, result.n_errors


def _run_suites(worker, cfg, decoded: list, gold_ds):
    """The validation result of every decoded input (deep QA with several annotators, gold or video tracks)."""
    from kpdeliver.collect.files import merge_decoded
    from kpdeliver.config import ValidationSettings
    from kpdeliver.progress import stage
    from kpdeliver.validation import AnnotationSet, validate_annotations

    sets = [AnnotationSet(d.dataset, d.findings, source=str(path)) for _, path, d in decoded]
    has_tracks = any((d.dataset.instances.track_id >= 0).any() for _, _, d in decoded)
    deep = (
        len(decoded) > 1 or gold_ds is not None or has_tracks
    )  # video alone: jitter, flicker, swaps in time
    # every annotator's instances in one dataset; QA pairs overlap images by file name
    n = sum(len(s.dataset.instances) for s in sets)
    with progress_shown(), stage("validation", n) as validating:
        result = validate_annotations(
            sets,
            rules=worker,
            settings=cfg.validation if cfg else ValidationSettings(),
            deep_qa_on=merge_decoded([d for _, _, d in decoded]).dataset if deep else None,
            gold=gold_ds,
            deep_qa=cfg.deep_qa if cfg else None,
        )
        validating.advance(n)
    return result


def _write_findings(result, out: Path, input: Path, decoded: list) -> dict:
    """Write findings.parquet (annotators.parquet, sigmas.json with deep QA); the report's summary."""
    import pyarrow.parquet as pq

    findings = result.findings
    if result.annotators is not None:
        pq.write_table(result.annotators, out / "annotators.parquet")
    pq.write_table(findings, out / "findings.parquet", compression="zstd")
    ds = decoded[0][2].dataset
    summary = {
        "input": str(input),
        "schema": ds.schema.name,
        "images": f"{len(ds.images):,}",
        "instances": f"{sum(len(d.dataset.instances) for _, _, d in decoded):,}",
        "held back at decode": f"{sum(d.rejected.num_rows for _, _, d in decoded):,}",
    }
    _write_sigmas(result, out, summary)
    return summary


def _write_report(
    out: Path,
    input: Path,
    *,
    images: Path | None,
    cfg,
    result,
    summary: dict,
    decoded: list,
    rules: list[dict],
) -> None:
    """Write report.html for the validation `result`."""
    from kpdeliver.collect.files import merge_decoded
    from kpdeliver.report.html import ReportInputs, render_report

    (out / "report.html").write_text(
        render_report(
            ReportInputs(
                result.findings,
                title=f"Validation of {input.name}",
                summary=summary,
                annotators=result.annotators,
                keypoints=result.keypoints,
                reviewed=merge_decoded([d for _, _, d in decoded]).dataset,
                image_bytes=(lambda name: (images / name).read_bytes()) if images else None,
                validation_results=rules,
                min_gold_oks=cfg.qa.min_gold_oks if cfg else None,
                annotator_names=cfg.report.annotators if cfg else "named",
                known_annotators=tuple(cfg.annotators) if cfg else (),
                sigmas=result.sigmas.table if result.sigmas else None,
            )
        )
    )


def _write_rule_results(folder: Path, names: list[str], rules: tuple[list[dict], ...]) -> list[dict]:
    """Each input's row-rule results as `<folder>/<annotator>/validation_results.json` (the main
    input's in `<folder>` itself); all of them, in the order of those paths."""
    from expectations.results import RESULTS_FILE, results_json

    by_path = {
        folder / (name or "") / RESULTS_FILE: summary for name, summary in zip(names, rules, strict=True)
    }
    for path, summary in by_path.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(results_json(summary))
    return [suite for path in sorted(by_path) for suite in by_path[path]]


def _read_inputs(
    input: Path,
    *,
    schema: str,
    images: Path | None,
    sizes: Path | None,
    config: Path | None,
    annotation: list[str],
    gold: Path | None,
    category: str | None = None,
):
    """(client config or None, [(annotator, path, Decoded)], gold dataset or None)."""
    from kpdeliver.config import load_config

    if images and sizes:
        raise InputError("give --images or --sizes, not both")
    cfg = load_config(config) if config else None
    category = category or (cfg.category if cfg else None)
    inputs = [("", input), *_parse_annotations(annotation)]
    decoded = [
        (
            name,
            path,
            read_input(path, schema_name=schema, images_dir=images, annotator=name, category=category),
        )
        for name, path in inputs
    ]
    if sizes:  # --images is handled by the reader, which reads sizes from the image headers
        size_map = read_sizes(sizes)
        for _, _, d in decoded:
            fill_sizes(d.dataset, size_map)
    gold_ds = (
        read_input(gold, schema_name=schema, images_dir=images, category=category).dataset if gold else None
    )
    return cfg, decoded, gold_ds


def _write_sigmas(result, out: Path, summary: dict) -> None:
    """With deep QA: sigmas.json (the sigmas measured from gold and overlap pairs) and which sigmas OKS used."""
    if result.sigmas is not None:
        from kpdeliver.qa.sigmas import sigmas_files

        (out / "sigmas.json").write_bytes(sigmas_files(result.sigmas)["qa/sigmas.json"])
        summary["OKS sigmas"] = result.sigmas.oks_sigmas_source
