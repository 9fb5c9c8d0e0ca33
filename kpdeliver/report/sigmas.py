"""The report's sigmas section: per keypoint, the OKS sigma measured from the batch's gold and
overlap pairs (`kpdeliver.qa.sigmas`, the release's qa/sigmas.json) beside the one OKS used, and
which sigmas those were. The page part is the template `templates/sigmas.html.j2`; it reads the
variable `sigmas` (this module's `sigmas_view`), and shows nothing when it is None."""
from __future__ import annotations

from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


def _num(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) else None


def sigmas_view(measured: dict | None) -> dict | None:
    """What the section shows, from qa/sigmas.json's content (`MeasuredSigmas.to_json()`); None when
    nothing was measured (no deep QA, or no keypoint with enough pairs)."""
    if not measured or not measured.get("keypoints"):
        return None
    rows = []
    for r in measured["keypoints"]:
        sigma, used = _num(r.get("sigma")), _num(r.get("oks_sigma"))
        rows.append({"keypoint": r.get("keypoint"), "sigma": sigma, "low": _num(r.get("low")),
                     "high": _num(r.get("high")), "n_pairs": _num(r.get("n_pairs")) or 0.0,
                     "n_gold": int(r.get("n_gold") or 0), "n_overlap": _num(r.get("n_overlap")) or 0.0,
                     "n_dropped": _num(r.get("n_dropped")) or 0.0, "used": used,
                     "ratio": sigma / used if sigma is not None and used else None})
    if all(r["sigma"] is None for r in rows):
        return None
    return {"source": measured.get("oks_sigmas_source", "schema"), "confidence": measured.get("confidence", 0.95),
            "rows": rows}


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(loader=PackageLoader("kpdeliver.report", "templates"), autoescape=select_autoescape(["j2", "html"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_sigmas(view: dict | None) -> str:
    """The section alone (an HTML fragment; empty when `view` is None)."""
    return _environment().get_template("sigmas.html.j2").render(sigmas=view)
