"""A plain `kpdeliver convert` is called with exactly the values typer would pass; any other words
are left to typer, which parses them and says what is wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer

from kpdeliver.cli import formats
from kpdeliver.cli.plain import plain_call

ROOT = Path(__file__).resolve().parents[2]

PLAIN_WORDS = [
    ["a.json", "--to", "yolo", "--out", "o"],
    ["a.json", "--to=coco", "--out", "o", "--schema", "coco17", "--from", "cvat"],
    ["--to", "cvat", "in/a.xml", "--out=o", "--cvat-mode", "video", "--outside", "zero"],
    ["a.json", "--to", "label-studio", "--out", "o", "--images", "imgs", "--sizes", "s.csv", "--category", "fly"],
]


@pytest.mark.parametrize("words", PLAIN_WORDS)
def test_plain_words_give_the_values_typer_gives(words):
    command = typer.main.get_group(formats.app).commands["convert"]
    parsed = command.make_context("convert", list(words)).params
    plain = plain_call(["convert", *words])
    assert plain is not None
    fn, kwargs = plain
    assert fn is formats.convert
    assert kwargs == parsed


@pytest.mark.parametrize(
    "words",
    [
        ["--help"],
        ["a.json", "--to", "yolo"],  # --out missing
        ["a.json", "--to", "nope", "--out", "o"],  # not a format
        ["a.json", "--to", "yolo", "--out"],  # an option without its value
        ["a.json", "b.json", "--to", "yolo", "--out", "o"],  # two inputs
        ["a.json", "--to", "yolo", "--to", "coco", "--out", "o"],  # an option twice
        ["a.json", "--to", "yolo", "--out", "o", "--verbose"],  # an unknown option
        ["a.json", "--to", "yolo", "--out", "-o"],  # a value that looks like an option
        ["", "--to", "yolo", "--out", "o"],  # an empty word
    ],
)
def test_other_words_are_left_to_typer(words):
    assert plain_call(["convert", *words]) is None


def test_other_commands_are_left_to_typer():
    assert plain_call(["inspect", "a.json"]) is None
    assert plain_call([]) is None


def run(*words: str) -> subprocess.CompletedProcess:
    probe = "import sys; from kpdeliver.cli import main; sys.argv = ['kpdeliver', *sys.argv[1:]]; main()"
    return subprocess.run(
        [sys.executable, "-c", probe, *words], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_a_plain_convert_refusal_is_one_sentence_and_its_exit_code(tmp_path):
    done = run("convert", str(tmp_path / "missing.json"), "--to", "yolo", "--out", str(tmp_path / "o"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "missing.json" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_wrong_choice_is_said_by_typer(tmp_path):
    done = run("convert", str(tmp_path / "a.json"), "--to", "nope", "--out", str(tmp_path / "o"))
    assert done.returncode == 2
    assert "nope" in done.stderr and "Traceback" not in done.stderr
