"""The QA report a person reads: one self-contained HTML page (inline CSS and SVG, pictures as
data URIs; no script, font or file from the network).

The verdict and its reasons come first, then the annotators' scorecards, pictures of the worst
findings (next to the gold or another annotator's label where QA compared them) and of a seeded
random sample of delivered people, the per-keypoint view and pose coverage, the release notes,
the findings grouped by check and annotator, the row rules' results and the capped list of
findings (`findings.parquet` holds them all). The content is computed in `context.py`; the page is
the Jinja2 template `templates/report.html.j2`.
"""
from __future__ import annotations

from functools import lru_cache

import pyarrow as pa
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from kpdeliver.report.context import MAX_LISTED, build_context

__all__ = ["MAX_LISTED", "render_report"]


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(loader=PackageLoader("kpdeliver.report", "templates"), autoescape=select_autoescape(["j2", "html"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_report(findings: pa.Table, *, title: str, summary: dict, annotators: pa.Table | None = None, **more) -> str:
    """The page for these findings. `summary`: the release's counts (and, for a delivery, its
    `verdict` and `reasons`); `more`: the optional inputs of `context.build_context` (keypoint
    table, reviewed and delivered datasets, `image_bytes`, changes, validation results, thresholds)."""
    rework = more.pop("rework", None)  # the rework section (kpdeliver.rework.status), a partial of its own
    context = build_context(findings, title=title, summary=summary, annotators=annotators, **more)
    return _environment().get_template("report.html.j2").render(c=context, rework=rework)
