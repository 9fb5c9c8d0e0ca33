"""The light commands start light: each runs in a fresh process through the real entry point,
which then holds no Prefect, Great Expectations, pandas, nor another command group's module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from kpdeliver.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("prefect", "great_expectations", "pandas", "flows", "expectations")

# prints the heavy modules and the command modules this process imported, after the command ran
PROBE = """
import json, sys
import kpdeliver.cli
from kpdeliver.cli import COMMANDS, main
kpdeliver.cli.quick_exit = sys.exit  # raise SystemExit instead of os._exit: this probe reports after the command
sys.argv = ["kpdeliver", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    code = e.code or 0
loaded = [m for m in (*{heavy!r}, *set(COMMANDS.values())) if m in sys.modules or any(n.startswith(m + ".") for n in sys.modules)]
print(json.dumps({{"code": code, "loaded": loaded}}))
"""


def run_command(*args: str) -> tuple[int, set[str]]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["code"], set(result["loaded"])


def a_release(root: Path) -> Path:
    """A small unsigned release, as the release stage publishes it."""
    from kpdeliver.storage import LocalStore
    from tests.release_helpers import publish_small_release

    return Path(publish_small_release(LocalStore(root / "releases"), LocalStore(root / "batch")).location)


@pytest.mark.parametrize("command", ["convert", "inspect", "verify", "schemas"])
def test_a_light_command_imports_only_its_own_module(command, external, tmp_path):
    coco = str(external / "mmpose/coco/test_coco.json")
    args = {
        "convert": [coco, "--to", "yolo", "--schema", "coco17", "--out", str(tmp_path / "yolo")],
        "inspect": [coco, "--json"],
        "verify": [str(a_release(tmp_path))],
        "schemas": [],
    }[command]
    code, loaded = run_command(command, *args)
    assert code == 0
    # verify reads the release's Parquet indexes (the delivery invariant); pyarrow's array
    # constructors import pandas whenever it is installed, so pandas is allowed there, nothing else
    allowed = {"pandas"} if command == "verify" else set()
    assert loaded - allowed == {COMMANDS[command]}


def test_the_lazy_index_names_every_command_of_every_sub_app():
    """COMMANDS is the only place the root learns of a command: it must match the sub-apps."""
    from kpdeliver.cli import sub_app_commands

    for module in set(COMMANDS.values()):
        assert set(sub_app_commands(module)) == {c for c, m in COMMANDS.items() if m == module}, module


def test_help_lists_every_command_with_its_help():
    from typer.testing import CliRunner

    from kpdeliver.cli import app

    res = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    commands = typer.main.get_command(app)
    for name in COMMANDS:
        line = next(
            (row for row in res.output.splitlines() if row.startswith(f"│ {name} ")), ""
        )  # not a wrapped line
        summary = commands.get_command(None, name).help.split()[:3]
        assert " ".join(summary) in line, (name, line)
