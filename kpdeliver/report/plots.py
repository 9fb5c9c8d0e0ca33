"""Inline SVG charts for the report: no script, no font or file from elsewhere, so they render the
same offline and in print."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from markupsafe import Markup

_BAR = "#4a78c2"
_SHORT = "#c62828"
_TARGET = "#1d2330"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # None: not measured (drawn as an empty row)
    text: str  # the number as the reader sees it
    target: float | None = None  # a marker line (a threshold or a count to reach)
    short: bool = False  # the value misses its target: drawn red


def bar_chart(
    bars: list[Bar],
    *,
    vmax: float,
    label_width: int = 170,
    width: int = 540,
    row: int = 18,
    text_width: int = 100,
) -> Markup:
    """Horizontal bars, one row each, with the value written after the bar and a target tick."""
    vmax = vmax if vmax > 0 else 1.0
    plot = width - label_width - text_width
    height = row * len(bars) + 6
    parts = [f'<svg class=chart width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for i, b in enumerate(bars):
        y = 3 + i * row
        parts.append(
            f'<text x="{label_width - 6}" y="{y + row * 0.7:.1f}" text-anchor="end">{escape(b.label)}</text>'
        )
        parts.append(
            f'<rect x="{label_width}" y="{y + 2}" width="{plot}" height="{row - 5}" fill="#eef1f6"/>'
        )
        if b.value is not None:
            w = plot * min(max(b.value, 0.0) / vmax, 1.0)
            parts.append(
                f'<rect x="{label_width}" y="{y + 2}" width="{w:.1f}" height="{row - 5}" '
                f'fill="{_SHORT if b.short else _BAR}"/>'
            )
        if b.target is not None:
            x = label_width + plot * min(max(b.target, 0.0) / vmax, 1.0)
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + row - 1}" stroke="{_TARGET}" stroke-width="2"/>'
            )
        colour = f' style="fill:{_SHORT}"' if b.short else ""  # a style: the page's CSS sets text fill
        parts.append(
            f'<text x="{label_width + plot + 6}" y="{y + row * 0.7:.1f}"{colour}>{escape(b.text)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def meter(
    value: float | None,
    *,
    vmax: float = 1.0,
    target: float | None = None,
    short: bool = False,
    width: int = 90,
) -> Markup:
    """A one-line bar for a table cell or a card (value against an optional threshold tick)."""
    parts = [
        f'<svg class=meter width="{width}" height="10" viewBox="0 0 {width} 10">',
        f'<rect width="{width}" height="10" fill="#eef1f6"/>',
    ]
    if value is not None:
        w = width * min(max(value, 0.0) / vmax, 1.0)
        parts.append(f'<rect width="{w:.1f}" height="10" fill="{_SHORT if short else _BAR}"/>')
    if target is not None:
        x = width * min(max(target, 0.0) / vmax, 1.0)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="10" stroke="{_TARGET}" stroke-width="2"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def heat_colour(value: float | None, *, low: float = 0.5, high: float = 1.0) -> str:
    """Background for a cell holding a score in [low, high]: red (low) to green (high); grey if none."""
    if value is None:
        return "#f1f2f5"
    t = min(max((value - low) / (high - low), 0.0), 1.0)
    r, g = int(235 - 120 * t), int(150 + 70 * t)
    return f"rgb({r},{g},{int(150 - 20 * t)})"
