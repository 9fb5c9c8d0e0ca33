"""`kpdeliver check CONFIG`: every problem of a client config, found before any run starts, and the
pre-flight of what a run needs (kpdeliver.preflight); `deliver` runs the same check first."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from kpdeliver.cli.output import load_checked_config

app = typer.Typer()
console = Console(soft_wrap=True, highlight=False)


@app.command()
def check(
    config: Path = typer.Argument(..., help="client YAML"),
    source: bool = typer.Option(True, help="also run the pre-flight: schema file, source images, gold names, "
                                           "annotators' exports, a probe write to the releases location"),
) -> None:
    """Check a client config completely: fields, thresholds, schema, isolation from the clients
    configured beside it and (unless --no-source) the pre-flight: the schema file and source read,
    every annotator's exports open, and a probe object is written to the client's staging folder
    under `releases:` and removed again (on S3 this also proves the credentials). Exit 0 when
    usable, 2 if not."""
    cfg = load_checked_config(config, source=source)
    console.print(f"{config}: usable ({cfg.client}/{cfg.dataset}, schema {cfg.schema_name})", markup=False)
