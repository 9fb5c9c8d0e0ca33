"""`kpdeliver check CONFIG` (or `--config/-c CONFIG`): every problem of a client config, found before
any run starts, and the pre-flight of what a run needs (kpdeliver.preflight); `deliver` runs the
same check first. `--json` prints the verdict, problems and warnings as JSON (same exit codes)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from kpdeliver.cli.output import CONFIG_FILE, config_path, load_checked_config

app = typer.Typer()
console = Console(soft_wrap=True, highlight=False)


def _json(path: Path, source: bool) -> None:
    import orjson

    from kpdeliver.clients.check import check_config

    checked = check_config(path, source=source)
    cfg = checked.config if not checked.problems else None
    typer.echo(
        orjson.dumps(
            {
                "config": str(path),
                "usable": cfg is not None,
                "problems": checked.problems,
                "warnings": checked.warnings,
                "client": cfg.client if cfg else None,
                "dataset": cfg.dataset if cfg else None,
                "schema": cfg.schema_name if cfg else None,
            },
            option=orjson.OPT_INDENT_2,
        ).decode()
    )
    if cfg is None:
        raise typer.Exit(2)


@app.command()
def check(
    config: Path | None = typer.Argument(None, help="client YAML (or --config)"),
    config_option: Path | None = CONFIG_FILE,
    source: bool = typer.Option(
        True,
        help="also run the pre-flight: schema file, source images, gold names, "
        "annotators' exports, a probe write to the releases location",
    ),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Check a client config completely: fields, thresholds, schema, isolation from the clients
    configured beside it and (unless --no-source) the pre-flight: the schema file and source read,
    every annotator's exports open, and a probe object is written to the client's staging folder
    under `releases:` and removed again (on S3 this also proves the credentials). Exit 0 when
    usable, 2 if not."""
    path = config_path(config, config_option)
    if as_json:
        _json(path, source)
        return
    cfg = load_checked_config(path, source=source)
    console.print(f"{path}: usable ({cfg.client}/{cfg.dataset}, schema {cfg.schema_name})", markup=False)
