"""The report's sigmas section: per keypoint, the OKS sigma measured from the batch's gold and
overlap pairs (`kpdeliver.qa.sigmas`: the rows of qa/sigmas.parquet, or of qa/sigmas.json's
`keypoints`) beside the one OKS used, and which sigmas those were. The page part is the template
`templates/sigmas.html.j2`: it reads those rows from the variable `sigmas` (or the report context's
`c.sigmas`) and shows nothing when no keypoint has a measured sigma."""

from __future__ import annotations

from kpdeliver.report.templating import environment


def sigmas_view(measured: dict | None) -> list[dict] | None:
    """The rows the section shows, from qa/sigmas.json's content (`MeasuredSigmas.to_json()`); None
    when nothing was measured (no deep QA, or no keypoint with enough pairs)."""
    rows = [r for r in (measured or {}).get("keypoints") or [] if isinstance(r, dict)]
    return rows if any(isinstance(r.get("sigma"), (int, float)) for r in rows) else None


def render_sigmas(rows: list[dict] | None) -> str:
    """The section alone (an HTML fragment; empty when no keypoint has a measured sigma)."""
    return environment().get_template("sigmas.html.j2").render(sigmas=rows)
