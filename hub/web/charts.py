"""Charts drawn on the server as inline SVG: no script, nothing fetched from elsewhere."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

__all__ = ["PALETTE", "Series", "stacked_bars"]

PALETTE = (
    "#3b6fd4",
    "#e07b39",
    "#3a9d5d",
    "#c2453d",
    "#8a5cc2",
    "#2aa4a9",
    "#b8912f",
    "#d15b9c",
    "#7a8699",
)


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float]
    colour: str


def _nice_top(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 or 10 times a power of ten that is at least `value`."""
    if value <= 0:
        return 1.0
    base = 10.0 ** math.floor(math.log10(value))
    return next(step * base for step in (1, 2, 2.5, 5, 10) if step * base >= value)


def stacked_bars(
    labels: Sequence[str], series: Sequence[Series], *, title: str, unit: str = ""
) -> Markup:
    """A bar per label, stacked by series, with a y axis and a legend."""
    width, height, left, bottom, top = 960, 240, 70, 40, 12
    plot_w, plot_h = width - left - 10, height - bottom - top
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    y_max = _nice_top(max(totals, default=0.0))
    slot = plot_w / max(len(labels), 1)
    bar_w = max(slot * 0.7, 1.0)
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg" font-size="11" '
        f'font-family="system-ui, sans-serif"><title>{escape(title)}</title>'
    ]
    for tick in range(5):
        value = y_max * tick / 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6ea"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#667">'
            f"{escape(unit)}{value:,.6g}</text>"
        )
    every = max(1, len(labels) // 12)
    for i, label in enumerate(labels):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / y_max
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{s.colour}"><title>{escape(label)} · {escape(s.name)}: '
                f"{escape(unit)}{value:,.6g}</title></rect>"
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                f'fill="#667">{escape(label)}</text>'
            )
    parts.append("</svg>")
    legend = "".join(
        f'<span class="legend"><span class="swatch" style="background:{s.colour}"></span>'
        f"{escape(s.name)}</span>"
        for s in series
    )
    return Markup("".join(parts) + f'<div class="legend-row">{legend}</div>')
