"""Inline SVG charts for the evaluation report, drawn by hand: no JavaScript, no fonts, no network.

Two shapes cover every plot: `histogram_svg` (grouped vertical bars over ordered bins, for score and length
distributions before and after) and `bar_svg` (grouped horizontal bars over named categories, for languages
and dedup/rejection counts). Every label is escaped here, because category names come from the data. Bins
are built by `score_bins` (ten one-point bins on the 0–10 scale) and `length_bins` (ten equal bins of a
"nice" width up to the 99th percentile of both sides together, the last one open-ended, so one outlier does
not squash the rest and before and after share their bins).

The legend has its own row(s) under the title, items laid left to right and wrapped to the chart's width, so
it never covers the plot, the title or another item. Without fonts to measure, an item's width is estimated
from its label at `LEGEND_CHAR_WIDTH` of the font size per character, wider than the average letter of the
common sans-serif fonts; the charts ask for a sans-serif font.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

#: Colours of the before and after series (colour-blind-safe pair) and the single-series colour.
BEFORE_COLOR = "#9aa5b1"
AFTER_COLOR = "#2f6fdf"
SINGLE_COLOR = "#d9822b"
LENGTH_BIN_COUNT = 10
#: Lengths above this percentile of both sides fall in the last, open-ended bin.
LENGTH_CLIP_PERCENTILE = 99

#: Estimated width of a legend label's character, as a share of the font size (see the module doc).
LEGEND_CHAR_WIDTH = 0.62

_WIDTH = 560
_BAR_HEIGHT = 14
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 12, 28, 40
_LEGEND_TOP, _LEGEND_ROW, _LEGEND_SIZE, _LEGEND_GAP = 24, 16, 10, 18
_TITLE_CHARS = 66


@dataclass(frozen=True, slots=True)
class Series:
    """One coloured series of a chart: a value per bin or category."""

    name: str
    values: Sequence[float]
    color: str


@dataclass(frozen=True, slots=True)
class Bins:
    """Ordered bins: a label for each and the index a value falls into."""

    labels: tuple[str, ...]
    edges: tuple[float, ...]

    def counts(self, values: Sequence[float]) -> list[int]:
        counts = [0] * len(self.labels)
        for value in values:
            index = sum(value >= edge for edge in self.edges[1:])
            counts[min(index, len(counts) - 1)] += 1
        return counts


def score_bins() -> Bins:
    """Ten one-point bins over the 0–10 score scale (a 10 falls in the last)."""
    return Bins(tuple(f"{i}–{i + 1}" for i in range(10)), tuple(float(i) for i in range(11)))


def length_bins(*samples: Sequence[int]) -> Bins:
    """`LENGTH_BIN_COUNT` bins of a nice width shared by all samples (see the module doc)."""
    values = sorted(v for sample in samples for v in sample)
    top = values[min(len(values) - 1, len(values) * LENGTH_CLIP_PERCENTILE // 100)] if values else 0
    width = nice_step(max(top, 1) / LENGTH_BIN_COUNT)
    edges = tuple(float(width * i) for i in range(LENGTH_BIN_COUNT + 1))
    labels = [f"{_num(edges[i])}–{_num(edges[i + 1])}" for i in range(LENGTH_BIN_COUNT - 1)]
    labels.append(f"≥{_num(edges[LENGTH_BIN_COUNT - 1])}")
    return Bins(tuple(labels), edges)


def nice_step(raw: float) -> int:
    """The smallest 1, 2 or 5 × 10^k at least ``raw`` (at least 1)."""
    if raw <= 1:
        return 1
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return int(factor * power)
    return int(10 * power)  # pragma: no cover - the loop always returns


def histogram_svg(title: str, bins: Bins, series: Sequence[Series], *, x_label: str) -> str:
    """Grouped vertical bars, one group per bin, one bar per series, with a legend under the title."""
    legend, legend_h = _legend(series, _LEFT, _WIDTH - _LEFT - _RIGHT)
    plot_top = _LEGEND_TOP + legend_h + 8
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, 220 - _TOP - _BOTTOM
    height = plot_top + plot_h + _BOTTOM
    top = max([1.0, *(v for s in series for v in s.values)])
    group_w = plot_w / max(1, len(bins.labels))
    bar_w = max(1.0, (group_w - 4) / max(1, len(series)))
    parts = [_open(title, _WIDTH, height), _title(title), *legend, '<g class="plot">']
    parts.extend(_y_axis(top, plot_top, plot_h))
    for i, label in enumerate(bins.labels):
        x0 = _LEFT + i * group_w
        for j, s in enumerate(series):
            value = s.values[i]
            h = plot_h * value / top
            x, y = x0 + 2 + j * bar_w, plot_top + plot_h - h
            parts.append(_rect(x, y, bar_w - 1, h, s.color, f"{s.name}, {label}: {_num(value)}"))
        parts.append(_text(x0 + group_w / 2, plot_top + plot_h + 14, label, anchor="middle", size=9))
    parts.append(_text(_LEFT + plot_w / 2, height - 6, x_label, anchor="middle", size=10))
    parts.append("</g></svg>")
    return "".join(parts)


def bar_svg(title: str, categories: Sequence[str], series: Sequence[Series]) -> str:
    """Grouped horizontal bars, one group per category (labels on the left), with a legend under the title."""
    left = 150
    legend, legend_h = _legend(series, _LEFT, _WIDTH - _LEFT - _RIGHT) if len(series) > 1 else ([], 0.0)
    plot_top = _LEGEND_TOP + legend_h + 6 if legend else _TOP
    row_h = _BAR_HEIGHT * max(1, len(series)) + 6
    height = plot_top + row_h * max(1, len(categories)) + 12
    plot_w = _WIDTH - left - 60
    top = max([1.0, *(v for s in series for v in s.values)])
    parts = [_open(title, _WIDTH, height), _title(title), *legend, '<g class="plot">']
    for i, category in enumerate(categories):
        y0 = plot_top + i * row_h
        parts.append(_text(left - 6, y0 + row_h / 2 + 3, _clip(category), anchor="end", size=10))
        for j, s in enumerate(series):
            value = s.values[i]
            w = plot_w * value / top
            y = y0 + 3 + j * _BAR_HEIGHT
            parts.append(_rect(left, y, w, _BAR_HEIGHT - 2, s.color, f"{s.name}, {category}: {_num(value)}"))
            parts.append(_text(left + w + 4, y + _BAR_HEIGHT - 4, _num(value), size=9))
    parts.append("</g></svg>")
    return "".join(parts)


def _open(title: str, width: int, height: float) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'width="{width}" height="{height:.0f}" viewBox="0 0 {width} {height:.0f}" class="chart" '
        'font-family="sans-serif">'
    )


def _title(title: str) -> str:
    """The title, clipped to the chart's width (the full title is the chart's accessible name)."""
    return _text(_LEFT, 16, _clip(title, _TITLE_CHARS), size=12, bold=True, css="chart-title")


def _y_axis(top: float, plot_top: float, plot_h: float) -> list[str]:
    base = plot_top + plot_h
    line = f'<line x1="{_LEFT}" y1="{plot_top}" x2="{_LEFT}" y2="{base}" stroke="#888" stroke-width="1"/>'
    axis = (
        f'<line x1="{_LEFT}" y1="{base}" x2="{_WIDTH - _RIGHT}" y2="{base}" stroke="#888" stroke-width="1"/>'
    )
    return [
        line,
        axis,
        _text(_LEFT - 4, plot_top + 4, _num(top), anchor="end", size=9),
        _text(_LEFT - 4, base, "0", anchor="end", size=9),
    ]


def _legend(series: Sequence[Series], left: float, width: float) -> tuple[list[str], float]:
    """The legend from (left, `_LEGEND_TOP`), wrapped at ``width``: its parts and the height it takes."""
    parts = ['<g class="legend">']
    x, y = left, float(_LEGEND_TOP)
    for s in series:
        item_w = 14 + legend_text_width(s.name)
        if x > left and x + item_w > left + width:
            x, y = left, y + _LEGEND_ROW
        parts.append(
            f'<g class="legend-item"><rect x="{x:.1f}" y="{y:.1f}" width="10" height="10" fill="{s.color}"/>'
        )
        parts.append(_text(x + 14, y + 9, s.name, size=_LEGEND_SIZE) + "</g>")
        x += item_w + _LEGEND_GAP
    parts.append("</g>")
    return parts, y + _LEGEND_ROW - _LEGEND_TOP


def legend_text_width(label: str) -> float:
    """The width a legend label is given (see the module doc)."""
    return len(label) * _LEGEND_SIZE * LEGEND_CHAR_WIDTH


def _rect(x: float, y: float, w: float, h: float, color: str, tip: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" fill="{color}">'
        f"<title>{escape(tip)}</title></rect>"
    )


def _text(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    size: int = 10,
    bold: bool = False,
    css: str | None = None,
) -> str:
    weight = ' font-weight="bold"' if bold else ""
    where = f'x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"'
    kind = f' class="{css}"' if css else ""
    return f"<text {where}{weight}{kind}>{escape(text)}</text>"


def _clip(label: str, limit: int = 24) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"
