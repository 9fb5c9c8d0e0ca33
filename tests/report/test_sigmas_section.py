"""The report's sigmas section: each keypoint's measured sigma with its interval and pairs beside the
sigma OKS used, which sigmas those were, and nothing at all when nothing was measured."""

from __future__ import annotations

import numpy as np

from kpdeliver.qa.context import DriftSamples
from kpdeliver.qa.sigmas import measure_sigmas
from kpdeliver.report.sigmas import render_sigmas, sigmas_view
from kpdeliver.schema import COCO17


def _measured(n: int = 200, spread: float = 0.04):
    """Gold pairs (reference 3 = gold for 3 annotators) with every point but the last two labeled."""
    rng = np.random.default_rng(1)
    offsets = rng.normal(scale=spread / np.sqrt(2), size=(n, 17, 2))
    offsets[:, 15:] = np.nan
    return measure_sigmas([DriftSamples(np.arange(n), np.full(n, 3), offsets, np.zeros(n))], 3, COCO17)


def test_the_section_shows_measured_beside_used():
    html = render_sigmas(sigmas_view(_measured().to_json()))
    assert "OKS in this report used the <b>COCO default</b> sigmas" in html
    assert html.count("<tr><td>") == 17 and html.count("too few pairs") == 2
    nose = html[html.index("<tr><td>nose</td>") :].split("</tr>")[0]
    cells = [c.split("<")[0] for c in nose.split('<td class="n">')[1:]]
    sigma, pairs, left_out, used = float(cells[0]), int(cells[2].split()[0]), int(cells[3]), cells[4]
    assert abs(sigma - 0.04) < 0.006 and pairs + left_out == 200 and used == "0.026"
    assert f"{pairs} ({pairs} + 0)" in nose


def test_the_report_context_s_rows_show_alike():
    """The report passes the table's rows as c.sigmas and includes the partial."""
    from jinja2 import ChoiceLoader, DictLoader, Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=ChoiceLoader(
            [
                DictLoader({"page": '{% include "sigmas.html.j2" %}'}),
                PackageLoader("kpdeliver.report", "templates"),
            ]
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=True,
    )
    rows = _measured().table.to_pylist()
    html = env.get_template("page").render(c={"sigmas": rows})
    assert html == render_sigmas(rows) and html.count("<tr><td>") == 17


def test_nothing_measured_shows_nothing():
    assert render_sigmas(None).strip() == ""
    empty = measure_sigmas([], 3, COCO17)
    assert render_sigmas(empty.table.to_pylist()).strip() == ""
    assert sigmas_view(measure_sigmas([], 3, COCO17).to_json()) is None
    assert sigmas_view(None) is None
