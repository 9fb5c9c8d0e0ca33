"""The QA report a person reads: one self-contained HTML page (inline CSS, no scripts, no CDN).

Verdict and summary first, then findings by check, by annotator and by keypoint, then the list
of findings itself, errors first, capped so the page stays light (it says how many are left out;
`findings.parquet` holds them all).
"""
from __future__ import annotations

from html import escape

import pyarrow as pa
import pyarrow.compute as pc

from kpdeliver.findings import CHECKS, summary_by

MAX_LISTED = 500

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#1d2330;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #dde;padding-bottom:.2em}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #eef;vertical-align:top}
th{background:#f4f6fa;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.verdict{display:inline-block;padding:.35em .9em;border-radius:4px;font-weight:700;color:#fff;margin:.6em 0}
.pass{background:#2e7d32}.conditional{background:#b26a00}.fail{background:#c62828}.sev{padding:.05em .45em;border-radius:3px;font-size:.85em;color:#fff}
.error{background:#c62828}.warning{background:#b26a00}.info{background:#546e7a}.muted{color:#667}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1.2em}
code{font-size:.92em}
"""


def _counts_table(findings: pa.Table, key: str, *, label: str) -> str:
    """Rows of `key`, with error / warning / info counts and the total."""
    if findings.num_rows == 0:
        return "<p class=muted>No findings.</p>"
    counts = summary_by(findings, key, "severity")
    table: dict[str, dict[str, int]] = {}
    for k, sev, n in zip(counts[key].to_pylist(), counts["severity"].to_pylist(), counts["count"].to_pylist()):
        table.setdefault(k if k is not None else "", {})[sev] = n
    rows = sorted(table.items(), key=lambda kv: (-kv[1].get("error", 0), -sum(kv[1].values()), kv[0]))
    head = f"<tr><th>{escape(label)}</th><th>errors</th><th>warnings</th><th>info</th><th>total</th></tr>"
    body = "".join(
        f"<tr><td>{escape(k) if k else '<span class=muted>(none)</span>'}</td>"
        + "".join(f"<td class=n>{c.get(s, 0)}</td>" for s in ("error", "warning", "info"))
        + f"<td class=n>{sum(c.values())}</td></tr>"
        for k, c in rows
    )
    return f"<table>{head}{body}</table>"


def _summary_table(summary: dict) -> str:
    rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in summary.items())
    return f"<table>{rows}</table>"


def _annotators_table(annotators: pa.Table) -> str:
    cols = annotators.column_names
    head = "<tr>" + "".join(f"<th>{escape(c)}</th>" for c in cols) + "</tr>"
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if isinstance(v, (int, float)) else ''}>{escape(_fmt(v))}</td>" for v in row.values()) + "</tr>"
        for row in annotators.to_pylist()
    )
    return f"<table>{head}{body}</table>"


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _findings_list(findings: pa.Table) -> str:
    if findings.num_rows == 0:
        return "<p class=muted>No findings.</p>"
    rank = pc.index_in(findings["severity"], pa.array(["error", "warning", "info"]))
    order = pc.sort_indices(pa.table({"r": rank, "c": findings["check"]}), sort_keys=[("r", "ascending"), ("c", "ascending")])
    shown = findings.take(order.slice(0, MAX_LISTED)).to_pylist()
    head = "<tr><th>severity</th><th>check</th><th>image</th><th>annotation</th><th>keypoint</th><th>annotator</th><th>value</th><th>message</th></tr>"
    body = "".join(
        f"<tr><td><span class='sev {escape(f['severity'])}'>{escape(f['severity'])}</span></td><td><code>{escape(f['check'])}</code></td>"
        f"<td>{escape(_fmt(f['file_name'] or f['image_id']))}</td><td class=n>{escape(_fmt(f['annotation_id']))}</td>"
        f"<td>{escape(_fmt(f['keypoint']))}</td><td>{escape(_fmt(f['annotator']))}</td><td class=n>{escape(_fmt(f['value']))}</td>"
        f"<td>{escape(_fmt(f['message']))}</td></tr>"
        for f in shown
    )
    more = findings.num_rows - len(shown)
    note = f"<p class=muted>{more:,} more findings not listed here; all {findings.num_rows:,} are in findings.parquet.</p>" if more > 0 else ""
    return f"<table>{head}{body}</table>{note}"


def render_report(findings: pa.Table, *, title: str, summary: dict, annotators: pa.Table | None = None) -> str:
    """One self-contained HTML page: verdict, summary, findings by check / annotator / keypoint, and the list."""
    sev = findings["severity"].to_pylist() if findings.num_rows else []
    n_err, n_warn = sev.count("error"), sev.count("warning")
    summary = dict(summary)
    reasons = summary.pop("reasons", None) or []
    if "verdict" in summary:  # a delivery's sign-off: error items were quarantined, not delivered
        verdict = summary["verdict"]
        verdict_text = (f"{verdict.upper()}: " + "; ".join(reasons) if reasons else
                        f"{verdict.upper()}: sign-off thresholds met; {n_err:,} error findings "
                        f"(their items held back in quarantine), {n_warn:,} warnings")
    else:
        verdict = "pass" if n_err == 0 else "fail"
        verdict_text = (f"PASS: no error-severity findings ({n_warn:,} warnings)" if n_err == 0
                        else f"FAIL: {n_err:,} error-severity findings ({n_warn:,} warnings)")
    glossary = "".join(f"<tr><td><code>{escape(c)}</code></td><td>{escape(s.value)}</td></tr>"
                       for c, s in CHECKS.items() if findings.num_rows and c in set(findings["check"].to_pylist()))
    sections = [
        f"<h1>{escape(title)}</h1>",
        f"<div class='verdict {verdict}'>{escape(verdict_text)}</div>",
        "<h2>Summary</h2>", _summary_table({**summary, "findings": f"{findings.num_rows:,}"}),
        "<h2>Findings by check</h2>", _counts_table(findings, "check", label="check"),
        "<div class=grid><div><h2>By annotator</h2>", _counts_table(findings, "annotator", label="annotator"),
        "</div><div><h2>By keypoint</h2>",
        _counts_table(findings.filter(pc.is_valid(findings["keypoint"])), "keypoint", label="keypoint"), "</div></div>",
    ]
    if annotators is not None and annotators.num_rows:
        sections += ["<h2>Annotators</h2>", _annotators_table(annotators)]
    sections += ["<h2>Findings</h2>", _findings_list(findings)]
    if glossary:
        sections += ["<h2>Default severity of the checks above</h2>", f"<table><tr><th>check</th><th>default</th></tr>{glossary}</table>"]
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>" + "".join(sections) + "</body></html>"
    )
