"""No tracked file names a document or an absolute path outside the repository: a newcomer's clone
has neither, so every reference must resolve inside it (the shared fixtures are reached through
`../shared/fixtures/external`, relative to the repository)."""

from __future__ import annotations

import re
import subprocess

from tests.docs.docs_helpers import ROOT

# Spelled so that this file does not match itself.
OUTSIDE = re.compile(
    "|".join(
        [
            r"\b(?:DESIGN|STACK)\.md\b",  # design and stack notes that live beside the repository, not in it
            r"(?<![\w.~$)-])/wor" + r"k/",  # an absolute path on the machine the code was written on
        ]
    )
)


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name]


def outside_references(names: list[str]) -> list[str]:
    """`path:line: text` of every line of the text files `names` that names something outside."""
    hits = []
    for name in names:
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary fixtures; files deleted in the working tree
        hits += [
            f"{name}:{i}: {line.strip()}"
            for i, line in enumerate(text.splitlines(), 1)
            if OUTSIDE.search(line)
        ]
    return hits


def test_the_pattern_finds_outside_references():
    assert OUTSIDE.search("see DESIGN" + ".md") and OUTSIDE.search("(../shared/STACK" + ".md)")
    assert OUTSIDE.search('Path("/wor' + 'k/main/.work/venv")')
    assert not OUTSIDE.search(
        "$(WORK)/ultra-venv and .work/demo and ~/work/x and ../shared/fixtures/external"
    )


def test_no_tracked_file_names_a_document_or_path_outside_the_repository():
    assert outside_references(tracked_files()) == []
