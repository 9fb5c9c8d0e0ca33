"""The one Jinja2 environment of every page kpdeliver renders (the QA report, the free sample's page,
the labeling guide, the sigmas section): templates from `kpdeliver/report/templates/`, escaped,
strict about undefined names."""

from __future__ import annotations

from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("kpdeliver.report", "templates"),
        autoescape=select_autoescape(["j2", "html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
