"""What every command prints the same way: errors and warnings as plain text (rich markup never
eats a user's square brackets), one unwrapped line per sentence so paths never break mid-word."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from kpdeliver.words import plural  # noqa: F401 (every command says counts with the one helper)

err = Console(stderr=True, soft_wrap=True, highlight=False)

ENDPOINT = typer.Option(
    None, "--endpoint-url", envvar="AWS_ENDPOINT_URL", help="S3 endpoint (MinIO, moto...); default: AWS"
)
REGION = typer.Option(None, "--region", envvar="AWS_REGION", help="S3 region")
PROFILE = typer.Option(None, "--profile", envvar="AWS_PROFILE", help="AWS profile for credentials")


def s3_options(endpoint_url: str | None, region: str | None, profile: str | None) -> dict:
    return {k: v for k, v in (("endpoint_url", endpoint_url), ("region", region), ("profile", profile)) if v}


CONFIG_FILE = typer.Option(None, "--config", "-c", help="client YAML")
CONFIG = typer.Option(
    None,
    "--config",
    "-c",
    help="client YAML: its storage: settings (endpoint_url, region, profile) open the store",
)


def store_options(config, endpoint_url: str | None, region: str | None, profile: str | None) -> dict:
    """The S3 settings of a command that reads a store: the client config's `storage:` section (with
    --config), then the options given (or AWS_ENDPOINT_URL, AWS_REGION, AWS_PROFILE) over it."""
    options: dict = {}
    if config is not None:
        from kpdeliver.config import ConfigError, load_config

        try:
            options = load_config(config).storage.model_dump(exclude_none=True)
        except ConfigError as e:
            fail(str(e))
    return options | s3_options(endpoint_url, region, profile)


def unreachable_hint(options: dict) -> str:
    """What to try when a store cannot be reached, given the settings that were used."""
    if options.get("endpoint_url"):
        return f"is the endpoint {options['endpoint_url']} up and right?"
    return (
        "no endpoint was given, so AWS S3 itself was tried: for MinIO or another S3 API pass --endpoint-url, "
        "set AWS_ENDPOINT_URL, or give --config with the client's storage.endpoint_url"
    )


def _line(label: str, style: str, message: str) -> Text:
    return Text.assemble((label, style), " ", message)


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(_line("error:", "bold red", message))
    raise typer.Exit(code)


def warn(message: str) -> None:
    err.print(_line("warning:", "yellow", message))


def load_checked_config(path, *, source: bool = True):
    """The client config at `path`, checked completely before anything runs (kpdeliver.clients.check
    `check_config`); every problem at once and exit 2 when there is any, warnings printed."""
    from kpdeliver.clients.check import check_config

    check = check_config(path, source=source)
    for w in check.warnings:
        warn(w)
    return check.config_or_raise()  # a ConfigError: said by the one mapping (cli/runtime.py)


class _Rate(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed:,.1f}/s" if task.speed else "", style="cyan")


class BarProgress:
    """kpdeliver.progress listener drawing one rich bar per stage (count, rate, elapsed)."""

    def __init__(self, console: Console) -> None:
        self.bars = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            _Rate(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.ids: dict[str, TaskID] = {}

    def started(self, stage: str, total: int | None) -> None:
        self.ids[stage] = self.bars.add_task(stage, total=total)

    def advanced(self, stage: str, done: int) -> None:
        if stage in self.ids:
            self.bars.advance(self.ids[stage], done)

    def finished(self, stage: str) -> None:
        task_id = self.ids.pop(stage, None)
        task = next((t for t in self.bars.tasks if t.id == task_id), None)
        if task is not None and task.total is None:  # an open-ended stage ends full
            self.bars.update(task.id, total=task.completed)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is now: a command run twice in one process (tests, a
    caller's redirect) never writes to the stream of an earlier run."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _) -> None:
        pass


@contextmanager
def progress_shown(every: float = 10.0) -> Iterator[None]:
    """Show the progress of the stages run inside: bars on a terminal (stderr), else a plain log
    line per stage start and end and at most every `every` seconds."""
    from kpdeliver.progress import LogProgress, reporting

    if err.is_terminal:
        shown = BarProgress(err)
        with shown.bars, reporting(shown):
            yield
        return
    logger = logging.getLogger("kpdeliver.progress")
    if not logger.handlers:
        handler = _StderrHandler()  # stderr: stdout stays the command's result
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    with reporting(LogProgress(logger, every=every)):
        yield


def _plain(cell) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def plain_table(table) -> str:
    """A rich Table as plain aligned columns, unwrapped and without box characters (for pipes and files)."""
    columns = [[_plain(c.header), *(_plain(cell) for cell in c.cells)] for c in table.columns]
    widths = [max(map(len, col)) for col in columns]
    lines = [_plain(table.title)] if table.title else []
    for r in range(len(columns[0]) if columns else 0):
        cells = [
            col[r].rjust(w) if c.justify == "right" else col[r].ljust(w)
            for col, w, c in zip(columns, widths, table.columns, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def show_table(console: Console, table) -> None:
    """Drawn as a table on a terminal; plain columns when piped or redirected, so nothing folds."""
    if console.is_terminal:
        console.print(table)
    else:
        console.file.write(plain_table(table) + "\n")


def config_path(positional, option, *, required: bool = True):
    """The client config given positionally (where a command always took it so) or as --config/-c."""
    if positional is not None and option is not None and positional != option:
        fail(f"two configs given ({positional} and --config {option}): give one")
    path = positional if positional is not None else option
    if path is None and required:
        fail("give the client config: --config CLIENT.yaml (or as the argument)")
    return path
