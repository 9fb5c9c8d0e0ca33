"""`kpdeliver deploy CLIENTS_DIR`: one Prefect deployment per client config, on the server in
PREFECT_API_URL (flows.deployments). `kpdeliver iam CLIENT_CONFIG`: that client's S3 policy."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

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
    root: Optional[Path] = typer.Option(None, help="folder the worker runs flows/deployments.py from "
                                                   "(default: this installation's repository root)"),
    check_source: bool = typer.Option(False, help="also read each client's source before registering"),
) -> None:
    """Create or update one deployment per client config (named <client>-<dataset>, scheduled by the
    config's schedule: section). Broken configs are reported and skipped; exit 2 if there was one."""
    from kpdeliver.clients.check import check_config

    if not os.environ.get("PREFECT_API_URL"):
        fail("PREFECT_API_URL is not set: point it at the Prefect server to register with "
             "(e.g. http://127.0.0.1:4200/api)")
    if not clients_dir.is_dir():
        fail(f"clients folder {clients_dir} does not exist")
    from flows.deployments import REPO_ROOT, client_configs, register

    good, broken = [], 0
    for path in client_configs(clients_dir):
        check = check_config(path, source=check_source)
        if check.problems:
            broken += 1
            try:
                check.config_or_raise()
            except ValueError as e:
                warn(f"not deployed: {e}")
        else:
            good.append((path, check.config))
    if not good:
        fail(f"no usable client config in {clients_dir}")
    registered, created = register(good, pool=pool, root=root or REPO_ROOT)
    if created:
        console.print(Text(f"created work pool {pool} (type process)"))
    console.print(Text(f"{plural(len(registered), 'deployment')} on work pool {pool}:", style="bold"))
    for r in registered:  # one unwrapped line each: a path never breaks mid-word
        console.print(Text(f"  {r.name}  schedule: {r.schedule or 'none (run on demand)'}  config: {r.config}"),
                      soft_wrap=True)
    console.print(Text(f"start a worker: prefect worker start --pool {pool}"))
    if broken:
        raise typer.Exit(2)


@app.command()
def iam(config: Path = typer.Argument(..., help="client YAML whose source and releases are on S3")) -> None:
    """Print the client's least-privilege S3 policy (IAM JSON): its own prefixes only."""
    import json

    from kpdeliver.clients.iam import iam_policy
    from kpdeliver.config import load_config

    policy = iam_policy(load_config(config))  # a ConfigError: said by the one mapping (cli/runtime.py)
    typer.echo(json.dumps(policy, indent=2))
