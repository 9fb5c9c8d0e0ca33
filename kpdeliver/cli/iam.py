"""`kpdeliver iam CONFIG` (or `--config/-c CONFIG`): the client's least-privilege S3 policy."""

from __future__ import annotations

from pathlib import Path

import typer

from kpdeliver.cli.output import CONFIG_FILE, config_path, fail

app = typer.Typer()


@app.command()
def iam(
    config: Path | None = typer.Argument(
        None, help="client YAML whose source and releases are on S3 (or --config)"
    ),
    config_option: Path | None = CONFIG_FILE,
) -> None:
    """Print the client's least-privilege S3 policy (IAM JSON): its own prefixes only."""
    import json

    from kpdeliver.clients.iam import iam_policy
    from kpdeliver.config import ConfigError, load_config

    try:
        policy = iam_policy(load_config(config_path(config, config_option)))
    except ConfigError as e:
        fail(str(e))
    typer.echo(json.dumps(policy, indent=2))
