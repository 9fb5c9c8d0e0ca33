"""`kpdeliver` command line.

Commands that only read or convert files (`convert`, `inspect`, `validate`, `verify`,
`schemas`) never import Prefect; only `deliver` and `demo` run a flow. Each group of
commands lives in its own module with a `register(app)` function.
"""
from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="kpdeliver",
    help="Keypoint annotation delivery: validated COCO Keypoints + YOLO Pose releases.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules that add commands; each defines register(app: typer.Typer) -> None.
COMMAND_MODULES = (
    "kpdeliver.cli.delivery",  # demo, deliver
    "kpdeliver.cli.formats",  # convert, inspect, schemas
    "kpdeliver.cli.validate",  # validate
    "kpdeliver.cli.release",  # verify, share
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    app()
