"""`kpdeliver` command line.

Each group of commands is a typer sub-app in its own module (`app = typer.Typer()`). The root
group knows only which module holds which command (`COMMANDS`) and imports a module when one of
its commands runs, so `convert` never pays for `validate`'s Great Expectations worker nor
`deliver`'s Prefect. `kpdeliver --help` imports every command module; their top levels stay
light (typer, rich) and reach the heavy libraries inside the commands.
"""

from __future__ import annotations

import importlib
import os
import sys
from functools import cache
from typing import TYPE_CHECKING

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:  # typer ≥ 0.29 carries its own click; its types are only needed for annotations
    from typer._click import Command, Context

# command -> the module whose sub-app defines it, in the order `--help` lists them
COMMANDS = {
    "deliver": "kpdeliver.cli.delivery",
    "assign": "kpdeliver.cli.delivery",
    "demo": "kpdeliver.cli.sample",
    "check": "kpdeliver.cli.check",
    "convert": "kpdeliver.cli.formats",
    "inspect": "kpdeliver.cli.formats",
    "schemas": "kpdeliver.cli.formats",
    "validate": "kpdeliver.cli.validate",
    "verify": "kpdeliver.cli.release",
    "share": "kpdeliver.cli.release",
    "sign": "kpdeliver.cli.keys",
    "keys": "kpdeliver.cli.keys",
    "releases": "kpdeliver.cli.catalog",
    "clean": "kpdeliver.cli.clean",
    "deploy": "kpdeliver.cli.deploy",
    "iam": "kpdeliver.cli.iam",
    "sample": "kpdeliver.cli.sample",
    "push": "kpdeliver.cli.tool",
    "pull": "kpdeliver.cli.tool",
    "guide": "kpdeliver.cli.guide",
    "schema": "kpdeliver.cli.guide",
    "rework": "kpdeliver.cli.rework",
}


@cache
def sub_app_commands(module: str) -> dict[str, Command]:
    """The click commands of the sub-app `module.app`, by name (imports the module). Help text is
    shown as written: rich markup would eat square brackets such as `{name: [w, h]}`."""
    commands = dict(typer.main.get_group(importlib.import_module(module).app).commands)
    for command in commands.values():
        command.rich_markup_mode = None  # type: ignore[attr-defined]
    return commands


class LazyGroup(TyperGroup):
    """A root group that imports a command's module only when that command is asked for."""

    def list_commands(self, ctx: Context) -> list[str]:
        return [*super().list_commands(ctx), *COMMANDS]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name in COMMANDS:
            return sub_app_commands(COMMANDS[cmd_name])[cmd_name]
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: Context):
        from kpdeliver.cli.runtime import failures_said  # every command: a KpdeliverError is one sentence

        with failures_said():
            return super().invoke(ctx)


app = typer.Typer(
    name="kpdeliver",
    cls=LazyGroup,
    help="Keypoint annotation delivery: validated COCO Keypoints + YOLO Pose releases.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    # typer builds a group only for an app with a callback or several registered commands;
    # the commands themselves come from LazyGroup
    pass


DEBUG_ENV = "KPDELIVER_DEBUG"  # set (tests set it): an unexpected exception keeps its traceback
# Commands that start no servers, threads that outlive them or temporary state: once their output
# is flushed they leave by os._exit, skipping the interpreter's teardown of every object they
# built (0.15 s after converting 100,000 instances, a tenth of the command).
QUICK_EXIT = frozenset({"convert", "inspect", "validate", "verify"})


def main() -> None:
    """The `kpdeliver` entry point. Every expected problem is already a finding or a one-sentence
    refusal; anything else is a bug, said in one sentence with exit 2 rather than a traceback."""
    if sys.argv[1:2] == ["validate"] and not {"--help", "-h"} & set(sys.argv):
        from expectations.worker import prestart

        prestart()  # Great Expectations takes about 2 s to import: its worker starts first
    try:
        app()
    except SystemExit as e:
        if sys.argv[1:2] and sys.argv[1] in QUICK_EXIT and (e.code is None or isinstance(e.code, int)):
            quick_exit(e.code or 0)
        raise
    except Exception as e:  # the last resort: click has already handled usage errors and exits
        if os.environ.get(DEBUG_ENV):
            raise
        what = str(e).splitlines()[0][:300] if str(e) else ""
        sys.stderr.write(
            f"internal error: {type(e).__name__}{': ' + what if what else ''} "
            f"(in `kpdeliver {' '.join(sys.argv[1:])[:300]}`); please report it with the input file "
            f"and this command ({DEBUG_ENV}=1 shows the traceback)\n"
        )
        sys.exit(2)


def quick_exit(code: int) -> None:
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (`| head`), or a closed stream
            pass
    os._exit(code)
