"""`kpdeliver` command line.

Each group of commands is a typer sub-app in its own module (`app = typer.Typer()`). The root
group knows only which module holds which command (`COMMANDS`) and imports a module when one of
its commands runs, so `convert` never pays for `validate`'s Great Expectations worker nor
`deliver`'s Prefect. `kpdeliver --help` imports every command module; their top levels stay
light (typer, rich) and reach the heavy libraries inside the commands.
"""
from __future__ import annotations

import importlib
from functools import cache

import click
import typer
from typer.core import TyperGroup

# command -> the module whose sub-app defines it, in the order `--help` lists them
COMMANDS = {
    "deliver": "kpdeliver.cli.delivery",
    "assign": "kpdeliver.cli.delivery",
    "demo": "kpdeliver.cli.delivery",
    "convert": "kpdeliver.cli.formats",
    "inspect": "kpdeliver.cli.formats",
    "schemas": "kpdeliver.cli.formats",
    "validate": "kpdeliver.cli.validate",
    "verify": "kpdeliver.cli.release",
    "share": "kpdeliver.cli.release",
    "sample": "kpdeliver.cli.sample",
    "push": "kpdeliver.cli.tool",
    "pull": "kpdeliver.cli.tool",
}


@cache
def sub_app_commands(module: str) -> dict[str, click.Command]:
    """The click commands of the sub-app `module.app`, by name (imports the module)."""
    return dict(typer.main.get_group(importlib.import_module(module).app).commands)


class LazyGroup(TyperGroup):
    """A root group that imports a command's module only when that command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            return sub_app_commands(COMMANDS[cmd_name])[cmd_name]
        return super().get_command(ctx, cmd_name)


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


def main() -> None:
    app()
