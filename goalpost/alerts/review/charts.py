"""The review's two small charts, as PNG images an email can carry inline: the headline
metric day by day against the period before, and its change split into its drivers.

PNG (matplotlib), not SVG: mail readers such as Gmail drop SVG images. Each is drawn for a
column 380 pixels wide (at twice the pixel density, for phones) with the locale's number
format on the axis.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date

WIDTH_PX = 380
HEIGHT_PX = 170
DPI = 200
CURRENT = "#2a5db0"
BEFORE = "#9aa5b1"
UP = "#2e7d32"
DOWN = "#c62828"


def _figure():  # noqa: ANN202 - matplotlib's Figure, imported lazily
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_PX / 100, HEIGHT_PX / 100), dpi=DPI)
    axes = figure.add_subplot()
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(labelsize=6.5, length=2)
    return figure, axes


def _png(figure) -> bytes:  # noqa: ANN001
    figure.tight_layout(pad=0.4)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def daily(days: list[tuple[date, float | None, float | None]], tick: Callable[[date], str],
          axis: Callable[[float], str], labels: tuple[str, str]) -> bytes | None:
    """Bars of each day of the period, dots of the period before's same day; None when the
    period has fewer than two days with a value."""
    if sum(1 for _, now, _ in days if now is not None) < 2:
        return None
    from matplotlib.ticker import FuncFormatter

    figure, axes = _figure()
    positions = range(len(days))
    axes.bar(positions, [now or 0 for _, now, _ in days], color=CURRENT, width=0.7,
             label=labels[0])
    before = [(i, then) for i, (_, _, then) in enumerate(days) if then is not None]
    if before:
        axes.plot([i for i, _ in before], [v for _, v in before], linestyle="none",
                  marker="o", markersize=3, color=BEFORE, label=labels[1])
    step = 1 if len(days) <= 10 else 5
    axes.set_xticks(list(positions)[::step], [tick(day) for day, _, _ in days][::step])
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: axis(value)))
    axes.legend(fontsize=6, frameon=False, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2)
    return _png(figure)


def split(start: tuple[str, float], parts: list[tuple[str, float]], end: tuple[str, float],
          axis: Callable[[float], str]) -> bytes:
    """A waterfall: the baseline total, each driver's contribution, the period's total."""
    from matplotlib.ticker import FuncFormatter

    figure, axes = _figure()
    names = [start[0], *(name for name, _ in parts), end[0]]
    level = start[1]
    bottoms, heights, colours = [0.0], [start[1]], [BEFORE]
    for _, contribution in parts:
        bottoms.append(level if contribution >= 0 else level + contribution)
        heights.append(abs(contribution))
        colours.append(UP if contribution >= 0 else DOWN)
        level += contribution
    bottoms.append(0.0)
    heights.append(end[1])
    colours.append(CURRENT)
    axes.bar(range(len(names)), heights, bottom=bottoms, color=colours, width=0.6)
    low = min(b for b in bottoms[1:-1]) if parts else 0.0
    top = max(start[1], end[1], *(b + h for b, h in zip(bottoms, heights, strict=True)))
    floor = max(0.0, low - (top - low) * 0.6)
    axes.set_ylim(floor, top + (top - floor) * 0.08)
    axes.set_xticks(range(len(names)), names)
    for text in axes.get_xticklabels():
        text.set_wrap(True)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: axis(value)))
    return _png(figure)
