"""`kpdeliver guide` (the labeling guide of a client's schema) and `kpdeliver schema --sigmas-from`
(a schema file adopting the sigmas measured in a release). No Prefect.

    kpdeliver guide --config client.yaml [--out DIR] [--pdf]
    kpdeliver schema --sigmas-from RELEASE [--out FILE]
"""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from kpdeliver.cli.output import fail

app = typer.Typer()


@app.command()
def guide(
    config: Path = typer.Option(..., "--config", "-c", help="client YAML"),
    out: Path = typer.Option(Path("."), "--out", help="folder the guide is written to"),
    pdf: bool = typer.Option(False, "--pdf", help="also print it to PDF with headless chromium"),
    chromium: Path | None = typer.Option(
        None,
        "--chromium",
        envvar="KPDELIVER_CHROMIUM",
        help="the chromium binary (default: chromium on PATH)",
    ),
) -> None:
    """Write the labeling guide of the client's schema: keypoint definitions, left/right, visibility
    flags and reference pictures (gold labels, else the first delivered release), as one HTML page
    named with the schema's version (and a PDF with --pdf)."""
    from kpdeliver.cli.output import load_checked_config
    from kpdeliver.cli.runtime import failures_said
    from kpdeliver.codecs.resolve import resolve_schema
    from kpdeliver.report.guide import GuideError, guide_file_name, print_pdf, render_guide
    from kpdeliver.report.guide_refs import gold_references, release_references
    from kpdeliver.storage import open_store

    cfg = load_checked_config(config)
    schema = resolve_schema(cfg.schema_name)
    options = cfg.storage.model_dump(exclude_none=True)
    with failures_said():
        refs, where = gold_references(open_store(cfg.source, options), schema), "the batch's gold labels"
        if not refs:
            refs = release_references(open_store(cfg.releases, options), cfg.client, cfg.dataset, schema)
            where = "the first delivered release (v0001)"
    html = render_guide(
        schema, client=cfg.client, dataset=cfg.dataset, references=refs, references_from=where
    )
    out.mkdir(parents=True, exist_ok=True)
    page = out / f"{guide_file_name(schema, cfg.client, cfg.dataset)}.html"
    page.write_text(html, encoding="utf-8")
    typer.echo(f"guide: {page} ({len(refs)} reference picture(s) from {where if refs else 'nowhere yet'})")
    if pdf:
        binary = chromium or Path(shutil.which("chromium") or "/usr/bin/chromium")
        try:
            print_pdf(page, page.with_suffix(".pdf"), chromium=binary)
        except GuideError as e:
            fail(str(e))
        typer.echo(f"pdf:   {page.with_suffix('.pdf')}")


@app.command()
def schema(
    sigmas_from: str = typer.Option(
        ..., "--sigmas-from", help="a published release (folder or s3:// location)"
    ),
    out: Path | None = typer.Option(
        None, "--out", help="schema YAML to write (default: <schema>-measured-vNNNN.yaml)"
    ),
) -> None:
    """Write a schema YAML file that adopts the OKS sigmas measured in a release (qa/sigmas.json):
    the release's own schema, each keypoint's sigma replaced by the measured one where enough pairs
    measured it; `sigmas_source: measured vNNNN` says where they come from. Use it as `schema:`."""
    import orjson
    import yaml

    from kpdeliver.qa.sigmas import adopt_measured
    from kpdeliver.release.layout import read_manifest
    from kpdeliver.storage import StorageError, open_store

    store = open_store(sigmas_from)
    try:
        manifest = read_manifest(store)
        measured = orjson.loads(store.get("qa/sigmas.json")) if store.exists("qa/sigmas.json") else None
    except (StorageError, orjson.JSONDecodeError) as e:
        fail(f"{sigmas_from}: {e}")
    if measured is None:
        fail(
            f"{sigmas_from} has no qa/sigmas.json: it was published before sigmas were measured, or without deep QA"
        )
    try:
        doc, kept = adopt_measured(manifest, measured)
    except ValueError as e:
        fail(f"{sigmas_from}: {e}")
    path = out or Path(f"{doc['name']}-measured-v{int(manifest['version']):04d}.yaml")
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    typer.echo(
        f"schema: {path} (measured sigmas for {len(doc['keypoints']) - len(kept)} keypoint(s)"
        f"{'; kept the schema sigma of ' + ', '.join(kept) if kept else ''})"
    )
