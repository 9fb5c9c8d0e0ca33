"""`kpdeliver deploy CLIENTS_DIR`: one Prefect deployment per client config, on the server in
PREFECT_API_URL (flows.deployments). (`kpdeliver iam` is in cli/iam.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from kpdeliver.cli.output import fail, plural, warn

app = typer.Typer()
console = Console(highlight=False)


@app.command()
def deploy(
    clients_dir: Path = typer.Argument(..., help="folder of client YAML files"),
    pool: str = typer.Option("kpdeliver-process", "--pool", help="process work pool (created when missing)"),
    root: Path | None = typer.Option(
        None,
        help="folder the worker runs flows/deployments.py from "
        "(default: this installation's repository root)",
    ),
    check: bool = typer.Option(
        True,
        "--check/--no-check",
        "--check-source/--no-check-source",
        help="run each config's full `kpdeliver check` first (source and releases "
        "reachable); --no-check checks its fields and isolation only",
    ),
) -> None:
    """Create or update one deployment per client config (named <client>-<dataset>, scheduled by the
    config's schedule: section). Each config first passes `kpdeliver check` (fields, isolation, and
    the pre-flight: schema file, source and exports read, releases location written); a config that
    fails it is skipped with its reason, never registered. Exit 2 if one was skipped."""
    from kpdeliver.clients.check import check_config

    if not os.environ.get("PREFECT_API_URL"):
        fail(
            "PREFECT_API_URL is not set: point it at the Prefect server to register with "
            "(e.g. http://127.0.0.1:4200/api)"
        )
    if not clients_dir.is_dir():
        fail(f"clients folder {clients_dir} does not exist")
    from flows.deployments import REPO_ROOT, client_configs, register

    good, skipped = [], 0
    for path in client_configs(clients_dir):
        checked = check_config(path, source=check)
        for w in checked.warnings:
            warn(w)
        try:
            good.append((path, checked.config_or_raise()))
        except ValueError as e:
            skipped += 1
            warn(f"skipped, not deployed: {e}")
    if not good:
        fail(f"no client config in {clients_dir} passed the check; nothing deployed")
    registered, created = register(good, pool=pool, root=root or REPO_ROOT)
    if created:
        console.print(Text(f"created work pool {pool} (type process)"))
    console.print(Text(f"{plural(len(registered), 'deployment')} on work pool {pool}:", style="bold"))
    for r in registered:  # one unwrapped line each: a path never breaks mid-word
        console.print(
            Text(f"  {r.name}  schedule: {r.schedule or 'none (run on demand)'}  config: {r.config}"),
            soft_wrap=True,
        )
    console.print(Text(f"start a worker: prefect worker start --pool {pool}"))
    if skipped:
        console.print(Text(f"{plural(skipped, 'config')} skipped (see the warnings above)"))
        raise typer.Exit(2)
