"""The QA report a person reads: one self-contained HTML page (inline CSS and SVG, pictures as
data URIs; no script, font or file from the network).

A header says whose release it is (client, dataset, version, publication date, code version,
signature and key fingerprint); the verdict box says what the verdict means for the client and
what happens next; then every sign-off rule with its threshold, measured value and outcome, the
annotators' scorecards (named or anonymised, `report.annotators`), pictures of the worst findings
(next to the gold or another annotator's label where QA compared them) and of a seeded random
sample of delivered people (click to enlarge, CSS only), the per-keypoint view and pose coverage,
the release notes, the findings grouped by check and annotator, the row rules' results and the
capped list of findings (`findings.parquet` holds them all). The content is computed in
`context.py` from typed `ReportInputs` (`inputs.py`); the page is the Jinja2 template
`templates/report.html.j2`.
"""

from __future__ import annotations

from kpdeliver.report.context import MAX_LISTED, build_context
from kpdeliver.report.inputs import ReportHeader, ReportInputs, anonymised
from kpdeliver.report.templating import environment

__all__ = ["MAX_LISTED", "ReportHeader", "ReportInputs", "environment", "render_report"]


def render_report(inputs: ReportInputs) -> str:
    """The page for these inputs (annotators anonymised first when `inputs.annotator_names` says so)."""
    if inputs.annotator_names == "anonymous":
        inputs = anonymised(inputs)
    return environment().get_template("report.html.j2").render(c=build_context(inputs), rework=inputs.rework)
