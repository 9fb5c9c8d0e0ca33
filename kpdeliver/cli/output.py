"""What every command prints the same way: errors and warnings as plain text (rich markup never
eats a user's square brackets), one unwrapped line per sentence so paths never break mid-word."""
from __future__ import annotations

from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.text import Text

err = Console(stderr=True, soft_wrap=True, highlight=False)

ENDPOINT = typer.Option(None, "--endpoint-url", envvar="AWS_ENDPOINT_URL",
                        help="S3 endpoint (MinIO, moto...); default: AWS")
REGION = typer.Option(None, "--region", envvar="AWS_REGION", help="S3 region")
PROFILE = typer.Option(None, "--profile", envvar="AWS_PROFILE", help="AWS profile for credentials")


def s3_options(endpoint_url: Optional[str], region: Optional[str], profile: Optional[str]) -> dict:
    return {k: v for k, v in (("endpoint_url", endpoint_url), ("region", region), ("profile", profile)) if v}


def plural(n: int, noun: str, plural_form: str | None = None) -> str:
    """'1 problem', '2 problems' (the CLI's copy: kpdeliver.config is not loaded by light commands)."""
    return f"{n} {noun if n == 1 else plural_form or noun + 's'}"


def _line(label: str, style: str, message: str) -> Text:
    return Text.assemble((label, style), " ", message)


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(_line("error:", "bold red", message))
    raise typer.Exit(code)


def warn(message: str) -> None:
    err.print(_line("warning:", "yellow", message))


def load_checked_config(path, *, source: bool = True):
    """The client config at `path`, checked completely before anything runs (kpdeliver.isolation
    `check_config`); every problem at once and exit 2 when there is any, warnings printed."""
    from kpdeliver.config import ConfigError
    from kpdeliver.isolation import check_config

    check = check_config(path, source=source)
    for w in check.warnings:
        warn(w)
    try:
        return check.config_or_raise()
    except ConfigError as e:
        fail(str(e))
