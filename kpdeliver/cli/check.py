"""`kpdeliver check CONFIG`: every problem of a client config, found before any run starts."""
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
    source: bool = typer.Option(True, help="also read the source: schema file, images, gold names"),
) -> None:
    """Check a client config completely: fields, thresholds, schema, isolation from the clients
    configured beside it and (unless --no-source) its source batch. Exit 0 when usable, 2 if not."""
    cfg = load_checked_config(config, source=source)
    console.print(f"{config}: usable ({cfg.client}/{cfg.dataset}, schema {cfg.schema_name})", markup=False)
