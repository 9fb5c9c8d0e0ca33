"""What every command prints the same way: errors and warnings as plain text (rich markup never
eats a user's square brackets), one unwrapped line per sentence so paths never break mid-word."""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Iterator, NoReturn, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
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
    return f"{n:,} {noun if n == 1 else plural_form or noun + 's'}"


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
        self.bars = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                             _Rate(), TimeElapsedColumn(), console=console, transient=False)
        self.ids: dict[str, object] = {}

    def started(self, stage: str, total: int | None) -> None:
        self.ids[stage] = self.bars.add_task(stage, total=total)

    def advanced(self, stage: str, done: int) -> None:
        if stage in self.ids:
            self.bars.advance(self.ids[stage], done)

    def finished(self, stage: str) -> None:
        task_id = self.ids.pop(stage, None)
        task = next((t for t in self.bars.tasks if t.id == task_id), None)
        if task is not None and task.total is None:  # an open-ended stage ends full
            self.bars.update(task_id, total=task.completed)


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
