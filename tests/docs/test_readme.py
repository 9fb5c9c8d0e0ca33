"""The README is a front page a newcomer reads whole: short, it leads to every docs/ page, and
its minimal config is one kpdeliver accepts."""

from __future__ import annotations

import re

import yaml

from kpdeliver.config import config_from_dict
from tests.docs.docs_helpers import DOCS, ROOT


def test_readme_is_at_most_200_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_readme_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if f"(docs/{p.name})" not in readme]
    assert missing == []


def test_readme_minimal_config_is_a_valid_config():
    block = re.search(r"## A minimal config\n.*?```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    config = config_from_dict(yaml.safe_load(block.group(1)), origin="README.md")
    assert config.client == "acme"
