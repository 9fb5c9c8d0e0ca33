"""Every repository path the README and docs/ name exists, so a file that moves takes its docs
with it (placeholders such as `kpdeliver/codecs/<fmt>/` are patterns, not paths)."""

from __future__ import annotations

import re

from tests.docs.docs_helpers import DOCS, ROOT

PATH = re.compile(r"`((?:kpdeliver|tests|expectations|flows|tasks|infra|bench|docs|clients|\.ci)/[^`\s]*)`")


def named_paths(text: str) -> list[str]:
    return [p for p in PATH.findall(text) if not any(c in p for c in "<*{…")]


def test_named_paths_are_found():
    assert named_paths("see `kpdeliver/qa/gold.py` and `tests/qa/`, not `kpdeliver/qa/<family>.py`") == [
        "kpdeliver/qa/gold.py",
        "tests/qa/",
    ]


def test_every_path_the_docs_name_exists():
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    missing = [
        f"{page.relative_to(ROOT)}: {path}"
        for page in pages
        for path in named_paths(page.read_text())
        if not (ROOT / path).exists()
    ]
    assert missing == []
