"""Cards drawn without Metabase: a query result and a card's display settings to inline SVG/HTML.

`goalpost report` needs a page that opens anywhere (a browser without network, an email
attachment), so every chart is hand-written SVG with no script, font or stylesheet to fetch.
The settings are Metabase's own (`graph.dimensions`, `graph.metrics`, `graph.goal_value`, ...)
so one dashboard template drives both the provisioned dashboards and this preview. A
forecast band (lower/upper columns), which Metabase has no setting for, is drawn as a polygon
under the series.

The colours are fixed (Metabase's default palette, a goal colour, bands as solid tints) so that
a test can find each series on a screenshot.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from html import escape
from typing import Any

from goalpost.core import formatting

PALETTE = ("#509EE3", "#88BF4D", "#A989C5", "#EF8C8C", "#F9D45C", "#F2A86F", "#98D9D9",
           "#7172AD")
GOAL_COLOUR = "#D6336C"
TEXT_COLOUR = "#4C5773"
GRID_COLOUR = "#E6E9EE"
TRACK_COLOUR = "#EDF2F5"
FONT = "font-family=\"Helvetica, Arial, sans-serif\""

# Column-name words that say a number is money or a share, for cards whose template does not.
MONEY_WORDS = ("revenue", "ticket", "price", "amount", "cost", "spend", "margin", "sales_value")
FRACTION_WORDS = ("rate",)  # 0.35 reads 35.0% (driver shares are already x100)
PERCENT_WORDS = ("pct", "percent", "smape")  # already in percent: 35.0 reads 35.0%
MAX_PIE_SLICES = 7
MAX_TABLE_ROWS = 50
# Pixel heights of a table's header and rows (fixed in page.py's style) to fit a card.
TABLE_HEAD_HEIGHT = 20
TABLE_ROW_HEIGHT = 18
MAX_CATEGORIES = 40


def tint(colour: str, amount: float = 0.3) -> str:
    """`colour` mixed with white: a solid band colour a screenshot can find exactly."""
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - (255 - c) * amount):02X}" for c in rgb)


@dataclass(frozen=True)
class Result:
    """A query result: column names and rows, as Postgres (or a DataFrame) gave them."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    @classmethod
    def from_frame(cls, frame: Any) -> Result:
        """A pandas DataFrame (NaN/NaT become None)."""
        clean = frame.astype(object).where(frame.notna(), None)
        return cls([str(c) for c in frame.columns], [tuple(r) for r in clean.itertuples(False)])

    def column(self, name: str) -> list[Any]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]


@dataclass(frozen=True)
class Formats:
    """How a card's numbers read: the client's currency and which columns are money or %."""

    currency: str = "EUR"
    styles: Mapping[str, str] = field(default_factory=dict)
    locale: str = formatting.DEFAULT_LOCALE

    def style(self, column: str) -> str:
        """'currency', 'percent' (a fraction), 'pct' (already x100) or 'number', from the
        card's settings else the column name."""
        if column in self.styles:
            return self.styles[column]
        words = column.lower()
        if any(word in words for word in PERCENT_WORDS):
            return "pct"
        if any(word in words for word in FRACTION_WORDS):
            return "percent"
        if any(word in words for word in MONEY_WORDS):
            return "currency"
        return "number"

    def number(self, value: Any, column: str, *, compact: bool = False) -> str:
        """One value as shown on a card: '€1,234.50', '12.5%', '1.2k' on an axis."""
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            return text(value)
        number = float(value)
        if math.isnan(number):
            return ""
        style = self.style(column)
        locale = self.locale
        if style in ("percent", "pct"):
            fraction = number if style == "percent" else number / 100
            return formatting.percent(fraction, locale, decimals=0 if compact else 1)
        if compact and abs(number) >= 1000:
            if style == "currency":
                return formatting.compact_money(number, self.currency, locale)
            return formatting.compact(number, locale)
        if style == "currency":
            return formatting.money(value, self.currency, locale, whole=compact)
        if isinstance(value, int):
            return formatting.number(value, locale)
        if isinstance(value, Decimal) and value.is_finite():
            # As many decimals as the column's scale (1.0 next to 0.4), at most two.
            places = min(max(-int(value.as_tuple().exponent), 0), 2)
            return formatting.number(value, locale, decimals=places)
        return formatting.number(number, locale)



def text(value: Any) -> str:
    """A non-numeric value as a label: dates as ISO days, None as an empty string."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round axis values covering low..high (1, 2, 2.5 or 5 times a power of ten apart)."""
    if high == low:
        high, low = (high + 1, low - 1) if high == 0 else (high + abs(high) * 0.1, low * 0.9)
        low = min(low, 0.0) if low >= 0 else low
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


# --- series -------------------------------------------------------------------------------


@dataclass
class Series:
    name: str
    column: str
    points: list[tuple[Any, float]]
    colour: str
    band: list[tuple[Any, float, float]] = field(default_factory=list)


def _settings_list(settings: Mapping[str, Any], key: str) -> list[str]:
    value = settings.get(key) or []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _numeric_columns(result: Result) -> list[str]:
    found = []
    for index, name in enumerate(result.columns):
        values = [row[index] for row in result.rows if row[index] is not None]
        if values and all(as_float(v) is not None and not isinstance(v, str) for v in values):
            found.append(name)
    return found


def dimensions_and_metrics(result: Result, settings: Mapping[str, Any]) -> tuple[list[str],
                                                                                 list[str]]:
    """The card's graph.dimensions and graph.metrics, else the first column and the numbers."""
    band = settings.get("band") or {}
    band_columns = {band.get("lower"), band.get("upper")}
    dims = [d for d in _settings_list(settings, "graph.dimensions") if d in result.columns]
    metrics = [m for m in _settings_list(settings, "graph.metrics")
               if m in result.columns and m not in band_columns]
    if not dims:
        dims = result.columns[:1]
    if not metrics:
        metrics = [c for c in _numeric_columns(result)
                   if c not in dims and c not in band_columns][:4]
    return dims, metrics


def build_series(result: Result, settings: Mapping[str, Any]) -> tuple[str, list[Series]]:
    """Series to draw: one per metric, or one per value of a second dimension (a breakout).

    A `band: {lower, upper, series?}` setting draws the range of the rows where both bounds
    are present, under the named series, else the one that shares most of its dates (the
    forecast beside the actuals). Its bound columns are not series of their own.
    """
    dims, metrics = dimensions_and_metrics(result, settings)
    x = dims[0]
    xi = result.columns.index(x)
    band = settings.get("band") or {}
    series: list[Series] = []
    if len(dims) > 1 and metrics:
        bi, mi = result.columns.index(dims[1]), result.columns.index(metrics[0])
        groups: dict[str, list[tuple[Any, float]]] = {}
        for row in result.rows:
            value = as_float(row[mi])
            if row[xi] is not None and value is not None:
                groups.setdefault(text(row[bi]), []).append((row[xi], value))
        for name, points in groups.items():
            series.append(Series(name, metrics[0], points, ""))
    else:
        titles = settings.get("series_titles") or {}
        for metric in metrics:
            mi = result.columns.index(metric)
            points = [(row[xi], as_float(row[mi])) for row in result.rows
                      if row[xi] is not None and as_float(row[mi]) is not None]
            series.append(Series(str(titles.get(metric, metric)), metric, points, ""))
    for number, one in enumerate(series):
        one.colour = PALETTE[number % len(PALETTE)]
    if band.get("lower") in result.columns and band.get("upper") in result.columns and series:
        lo, hi = result.columns.index(band["lower"]), result.columns.index(band["upper"])
        ranges = [(row[xi], as_float(row[lo]), as_float(row[hi])) for row in result.rows
                  if row[xi] is not None and as_float(row[lo]) is not None
                  and as_float(row[hi]) is not None]
        covered = {x for x, _, _ in ranges}
        named = [s for s in series if s.column == band.get("series")]
        target = named[0] if named else max(
            series, key=lambda s: sum(1 for x, _ in s.points if x in covered))
        target.band = ranges
    return x, series


# --- axes ---------------------------------------------------------------------------------


def _is_time(values: Iterable[Any]) -> bool:
    values = list(values)
    return bool(values) and all(isinstance(v, (date, datetime)) for v in values)


def _day_number(value: date | datetime) -> float:
    if isinstance(value, datetime):
        return value.timestamp() / 86400
    return float(value.toordinal())


def _time_label(value: date | datetime, monthly: bool) -> str:
    return value.strftime("%b %Y") if monthly else value.strftime("%-d %b")


@dataclass
class Frame:
    """The plot area and its scales: x is time (linear in days) or categories (bands)."""

    width: float
    height: float
    left: float
    top: float
    right: float
    bottom: float
    y_low: float
    y_high: float
    categories: list[Any] = field(default_factory=list)
    x_low: float = 0.0
    x_high: float = 1.0

    def y(self, value: float) -> float:
        span = (self.y_high - self.y_low) or 1.0
        return self.top + (self.y_high - value) / span * (self.height - self.top - self.bottom)

    def x(self, value: Any) -> float:
        inner = self.width - self.left - self.right
        if self.categories:
            step = inner / len(self.categories)
            return self.left + step * (self.categories.index(value) + 0.5)
        span = (self.x_high - self.x_low) or 1.0
        return self.left + (_day_number(value) - self.x_low) / span * inner

    def band_width(self) -> float:
        inner = self.width - self.left - self.right
        return inner / max(len(self.categories), 1)


def _value_range(series: list[Series], goal: float | None, stacked: bool) -> tuple[float, float]:
    values = [v for s in series for _, v in s.points]
    values += [b for s in series for _, lo, hi in s.band for b in (lo, hi)]
    if stacked:
        totals: dict[Any, float] = {}
        for s in series:
            for x, v in s.points:
                totals[x] = totals.get(x, 0.0) + v
        values += list(totals.values())
    if goal is not None:
        values.append(goal)
    low, high = min(values), max(values)
    return min(low, 0.0), max(high, 0.0)


def _svg_open(width: float, height: float, kind: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" width="{width:.0f}" '
            f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" {FONT} '
            f'font-size="11" role="img">')


def _legend(series: list[Series], width: float) -> tuple[str, float]:
    if len(series) < 2:
        return "", 0.0
    parts, x, y = [], 6.0, 12.0
    for one in series:
        label = one.name[:24]
        size = 18 + len(label) * 6.2
        if x + size > width and x > 6:
            x, y = 6.0, y + 16
        parts.append(f'<rect x="{x:.1f}" y="{y - 8:.1f}" width="10" height="10" rx="2" '
                     f'fill="{one.colour}"/><text x="{x + 14:.1f}" y="{y + 1:.1f}" '
                     f'fill="{TEXT_COLOUR}">{escape(label)}</text>')
        x += size + 10
    return "".join(parts), y + 8


def _y_axis(frame: Frame, ticks: list[float], formats: Formats, column: str) -> str:
    parts = []
    for tick in ticks:
        y = frame.y(tick)
        parts.append(f'<line class="grid" data-value="{tick:g}" x1="{frame.left:.1f}" '
                     f'y1="{y:.2f}" x2="{frame.width - frame.right:.1f}" y2="{y:.2f}" '
                     f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
                     f'<text x="{frame.left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" '
                     f'fill="{TEXT_COLOUR}">{escape(formats.number(tick, column, compact=True))}'
                     f'</text>')
    return "".join(parts)


def _x_labels(frame: Frame, xs: list[Any]) -> str:
    if not xs:
        return ""
    monthly = _is_time(xs) and all(getattr(v, "day", 1) == 1 for v in xs) and len(xs) > 1
    inner = frame.width - frame.left - frame.right
    fits = max(int(inner // 70), 2)
    if frame.categories:
        step = max(math.ceil(len(frame.categories) / fits), 1)
        chosen = frame.categories[::step]
    else:
        ordered = sorted(set(xs))
        step = max(math.ceil(len(ordered) / fits), 1)
        chosen = ordered[::step]
    parts = []
    y = frame.height - frame.bottom + 15
    for value in chosen:
        label = (_time_label(value, monthly) if isinstance(value, (date, datetime))
                 else text(value)[:14])
        x = frame.x(value)
        half = len(label) * 3.1
        anchor, x = (("start", 2.0) if x - half < 2 else
                     ("end", frame.width - 2) if x + half > frame.width - 2 else ("middle", x))
        parts.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" '
                     f'fill="{TEXT_COLOUR}">{escape(label)}</text>')
    return "".join(parts)


def _goal(settings: Mapping[str, Any]) -> float | None:
    if settings.get("graph.show_goal") is False:
        return None
    return as_float(settings.get("graph.goal_value"))


# --- charts -------------------------------------------------------------------------------


def xy_chart(result: Result, display: str, settings: Mapping[str, Any], formats: Formats,
             width: float, height: float) -> str:
    """line, area and bar: series over a time or category axis, with goal line and band."""
    x_column, series = build_series(result, settings)
    series = [s for s in series if s.points]
    if not series:
        return no_data()
    goal = _goal(settings)
    stacked = display == "bar" and settings.get("stackable.stack_type") == "stacked"
    legend, legend_height = _legend(series, width)
    low, high = _value_range(series, goal, stacked)
    ticks = nice_ticks(low, high)
    column = series[0].column
    label_width = max(len(formats.number(t, column, compact=True)) for t in ticks) * 6.5
    xs = [x for s in series for x, _ in s.points] + [x for s in series for x, _, _ in s.band]
    frame = Frame(width, height, left=label_width + 10, top=legend_height + 8, right=12,
                  bottom=22, y_low=ticks[0], y_high=ticks[-1])
    if display == "bar" or not _is_time(xs):
        seen = dict.fromkeys(xs)
        frame.categories = sorted(seen) if _is_time(xs) else list(seen)
        frame.categories = frame.categories[-MAX_CATEGORIES * 4:]
    else:
        days = [_day_number(v) for v in xs]
        frame.x_low, frame.x_high = min(days), max(days)
    parts = [_svg_open(width, height, display), legend, _y_axis(frame, ticks, formats, column)]
    for one in series:
        if one.band:
            parts.append(_band(frame, one))
    if display == "bar":
        parts.append(_bars(frame, series, stacked))
    else:
        for one in series:
            parts.append(_line(frame, one, area=display == "area"))
    if goal is not None:
        y = frame.y(goal)
        label = settings.get("graph.goal_label") or "Goal"
        parts.append(f'<line class="goal" data-value="{goal:g}" x1="{frame.left:.1f}" '
                     f'y1="{y:.2f}" x2="{width - frame.right:.1f}" y2="{y:.2f}" '
                     f'stroke="{GOAL_COLOUR}" stroke-width="2" stroke-dasharray="6 3"/>'
                     f'<text x="{width - frame.right:.1f}" y="{y - 4:.1f}" text-anchor="end" '
                     f'fill="{GOAL_COLOUR}">{escape(str(label))}</text>')
    parts.append(_x_labels(frame, xs))
    parts.append(f"<desc>{escape(x_column)}</desc></svg>")
    return "".join(parts)


def _ordered(frame: Frame, points: list[tuple[Any, float]]) -> list[tuple[Any, float]]:
    if frame.categories:
        keep = set(frame.categories)
        return sorted((p for p in points if p[0] in keep),
                      key=lambda p: frame.categories.index(p[0]))
    return sorted(points, key=lambda p: _day_number(p[0]))


def _line(frame: Frame, one: Series, *, area: bool) -> str:
    points = _ordered(frame, one.points)
    coords = " ".join(f"{frame.x(x):.1f},{frame.y(v):.1f}" for x, v in points)
    parts = []
    if area and len(points) > 1:
        base = frame.y(max(frame.y_low, 0.0))
        first, last = frame.x(points[0][0]), frame.x(points[-1][0])
        parts.append(f'<polygon class="area" points="{first:.1f},{base:.1f} {coords} '
                     f'{last:.1f},{base:.1f}" fill="{tint(one.colour, 0.45)}"/>')
    if len(points) == 1:
        x, v = points[0]
        parts.append(f'<circle class="series" data-series="{escape(one.name)}" '
                     f'cx="{frame.x(x):.1f}" cy="{frame.y(v):.1f}" r="4" fill="{one.colour}"/>')
    else:
        parts.append(f'<polyline class="series" data-series="{escape(one.name)}" '
                     f'points="{coords}" fill="none" stroke="{one.colour}" stroke-width="2.5" '
                     f'stroke-linejoin="round"/>')
    return "".join(parts)


def _band(frame: Frame, one: Series) -> str:
    band = sorted(one.band, key=lambda b: _day_number(b[0]) if not frame.categories
                  else frame.categories.index(b[0]))
    upper = [f"{frame.x(x):.1f},{frame.y(hi):.1f}" for x, _, hi in band]
    lower = [f"{frame.x(x):.1f},{frame.y(lo):.1f}" for x, lo, _ in reversed(band)]
    return (f'<polygon class="band" data-series="{escape(one.name)}" '
            f'points="{" ".join(upper + lower)}" fill="{tint(one.colour)}"/>')


def _bars(frame: Frame, series: list[Series], stacked: bool) -> str:
    band = frame.band_width()
    # Series that never share an x (actuals, then forecasts) need no side-by-side slots.
    counts: dict[Any, int] = {}
    for one in series:
        for x, _ in one.points:
            counts[x] = counts.get(x, 0) + 1
    side_by_side = not stacked and max(counts.values(), default=1) > 1
    groups = len(series) if side_by_side else 1
    bar = max(band * 0.8 / groups, 1.0)
    base: dict[Any, float] = {}
    parts = []
    for number, one in enumerate(series):
        for x, value in _ordered(frame, one.points):
            start = base.get(x, 0.0) if stacked else 0.0
            end = start + value
            if stacked:
                base[x] = end
            left = frame.x(x) - band * 0.4 + (number * bar if side_by_side else 0)
            top, bottom = sorted((frame.y(start), frame.y(end)))
            parts.append(f'<rect class="series" data-series="{escape(one.name)}" '
                         f'x="{left:.1f}" y="{top:.1f}" width="{max(bar - 1, 1):.1f}" '
                         f'height="{max(bottom - top, 1):.1f}" fill="{one.colour}"/>')
    return "".join(parts)


def row_chart(result: Result, settings: Mapping[str, Any], formats: Formats, width: float,
              height: float) -> str:
    """Horizontal bars, one per category, longest first as the query ordered them."""
    dims, metrics = dimensions_and_metrics(result, settings)
    if not metrics or not result.rows:
        return no_data()
    di, mi = result.columns.index(dims[0]), result.columns.index(metrics[0])
    rows = [(text(r[di]), as_float(r[mi])) for r in result.rows if as_float(r[mi]) is not None]
    rows = rows[:max(int((height - 10) // 18), 1)]
    if not rows:
        return no_data()
    high = max(max(v for _, v in rows), 0.0)
    low = min(min(v for _, v in rows), 0.0)
    label_width = min(max(len(name) for name, _ in rows) * 6.2 + 8, width * 0.4)
    value_width = max(len(formats.number(v, metrics[0])) for _, v in rows) * 6.5 + 8
    inner = width - label_width - value_width - 8
    scale = inner / ((high - low) or 1.0)
    zero = label_width + (0 - low) * scale
    step = (height - 8) / len(rows)
    parts = [_svg_open(width, height, "row")]
    for index, (name, value) in enumerate(rows):
        y = 4 + index * step
        left, right = sorted((zero, zero + value * scale))
        parts.append(f'<text x="{label_width - 6:.1f}" y="{y + step / 2 + 4:.1f}" '
                     f'text-anchor="end" fill="{TEXT_COLOUR}">{escape(name[:30])}</text>'
                     f'<rect class="series" data-series="{escape(metrics[0])}" '
                     f'x="{left:.1f}" y="{y + step * 0.15:.1f}" '
                     f'width="{max(right - left, 1):.1f}" height="{step * 0.7:.1f}" '
                     f'fill="{PALETTE[0]}"/>'
                     f'<text x="{right + 4:.1f}" y="{y + step / 2 + 4:.1f}" '
                     f'fill="{TEXT_COLOUR}">{escape(formats.number(value, metrics[0]))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def pie_chart(result: Result, settings: Mapping[str, Any], formats: Formats, width: float,
              height: float) -> str:
    """A donut of the first metric per dimension value; small slices merge into 'Other'."""
    dimension = settings.get("pie.dimension") or None
    metric = settings.get("pie.metric") or None
    dims, metrics = dimensions_and_metrics(result, settings)
    dimension = dimension if dimension in result.columns else dims[0]
    metric = metric if metric in result.columns else (metrics[0] if metrics else None)
    if metric is None:
        return no_data()
    di, mi = result.columns.index(dimension), result.columns.index(metric)
    slices = [(text(r[di]), as_float(r[mi]) or 0.0) for r in result.rows]
    slices = sorted((s for s in slices if s[1] > 0), key=lambda s: -s[1])
    if not slices:
        return no_data()
    if len(slices) > MAX_PIE_SLICES:
        rest = sum(v for _, v in slices[MAX_PIE_SLICES - 1:])
        slices = slices[:MAX_PIE_SLICES - 1] + [("Other", rest)]
    total = sum(v for _, v in slices)
    radius = min(height - 12, width * 0.5) / 2
    cx, cy = radius + 8, height / 2
    parts = [_svg_open(width, height, "pie")]
    angle = -math.pi / 2
    for index, (name, value) in enumerate(slices):
        colour = PALETTE[index % len(PALETTE)]
        sweep = value / total * 2 * math.pi
        if sweep >= 2 * math.pi - 1e-9:
            parts.append(f'<circle class="series" data-series="{escape(name)}" cx="{cx:.1f}" '
                         f'cy="{cy:.1f}" r="{radius:.1f}" fill="{colour}"/>')
        else:
            x1, y1 = cx + radius * math.cos(angle), cy + radius * math.sin(angle)
            x2 = cx + radius * math.cos(angle + sweep)
            y2 = cy + radius * math.sin(angle + sweep)
            large = 1 if sweep > math.pi else 0
            parts.append(f'<path class="series" data-series="{escape(name)}" '
                         f'd="M{cx:.1f},{cy:.1f} L{x1:.1f},{y1:.1f} A{radius:.1f},{radius:.1f} '
                         f'0 {large} 1 {x2:.1f},{y2:.1f} Z" fill="{colour}"/>')
        angle += sweep
        ly = 14 + index * 18
        share = value / total * 100
        parts.append(f'<rect x="{cx + radius + 16:.1f}" y="{ly - 9:.1f}" width="10" height="10" '
                     f'rx="2" fill="{colour}"/><text x="{cx + radius + 30:.1f}" y="{ly:.1f}" '
                     f'fill="{TEXT_COLOUR}">{escape(name[:22])} · {share:.0f}%</text>')
    parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius * 0.55:.1f}" fill="#FFFFFF"/>'
                 f'<text x="{cx:.1f}" y="{cy + 5:.1f}" text-anchor="middle" font-size="13" '
                 f'font-weight="bold" fill="{TEXT_COLOUR}">'
                 f'{escape(formats.number(total, metric, compact=True))}</text></svg>')
    return "".join(parts)


def _single_metric(result: Result, settings: Mapping[str, Any]) -> str | None:
    """The number a scalar or progress card shows: scalar.field, the first graph.metric, else
    the first numeric column (no column is a dimension here)."""
    for name in [settings.get("scalar.field"), *_settings_list(settings, "graph.metrics")]:
        if name in result.columns:
            return name
    numeric = _numeric_columns(result)
    return numeric[0] if numeric else None


def progress_chart(result: Result, settings: Mapping[str, Any], formats: Formats, width: float,
                   height: float) -> str:
    """A value against `progress.goal` (a number, or a column of the first row)."""
    metric = _single_metric(result, settings)
    if not result.rows or metric not in result.columns:
        return no_data()
    row = result.rows[0]
    value = as_float(row[result.columns.index(metric)])
    goal_setting = settings.get("progress.goal")
    goal = (as_float(row[result.columns.index(goal_setting)])
            if isinstance(goal_setting, str) and goal_setting in result.columns
            else as_float(goal_setting))
    if value is None or not goal:
        return no_data()
    share = max(min(value / goal, 1.0), 0.0)
    bar_top, bar_height = height / 2 - 12, 24.0
    inner = width - 16
    colour = PALETTE[1] if value >= goal else PALETTE[0]
    return (f'{_svg_open(width, height, "progress")}'
            f'<text x="8" y="{bar_top - 10:.1f}" font-size="20" font-weight="bold" '
            f'fill="{TEXT_COLOUR}">{escape(formats.number(value, metric))}</text>'
            f'<rect x="8" y="{bar_top:.1f}" width="{inner:.1f}" height="{bar_height:.0f}" rx="4" '
            f'fill="{TRACK_COLOUR}"/>'
            f'<rect class="series" data-series="{escape(metric)}" x="8" y="{bar_top:.1f}" '
            f'width="{max(inner * share, 1):.1f}" height="{bar_height:.0f}" rx="4" '
            f'fill="{colour}"/>'
            f'<line class="goal" data-value="{goal:g}" x1="{8 + inner:.1f}" '
            f'y1="{bar_top - 4:.1f}" x2="{8 + inner:.1f}" y2="{bar_top + bar_height + 4:.1f}" '
            f'stroke="{GOAL_COLOUR}" stroke-width="3"/>'
            f'<text x="{8 + inner:.1f}" y="{bar_top + bar_height + 18:.1f}" text-anchor="end" '
            f'fill="{TEXT_COLOUR}">Goal {escape(formats.number(goal, metric))} · '
            f'{value / goal * 100:.0f}%</text></svg>')


def scalar(result: Result, display: str, settings: Mapping[str, Any], formats: Formats,
           width: float, height: float) -> str:
    """A big number; smartscalar adds the change from the previous row (the previous period).

    Metabase's smartscalar compares the last two periods of a time series: the query gives
    rows in date order, the last is the current value.
    """
    metric = _single_metric(result, settings)
    if not result.rows or metric not in result.columns:
        return no_data()
    index = result.columns.index(metric)
    rows = result.rows if display == "smartscalar" else result.rows[:1]
    value = rows[-1][index]
    if value is None:
        return no_data()
    parts = [f'<div class="scalar"><div class="big">{escape(formats.number(value, metric))}'
             "</div>"]
    if display == "smartscalar" and len(rows) > 1:
        previous = as_float(rows[-2][index])
        current = as_float(value)
        if previous and current is not None:
            change = (current - previous) / abs(previous) * 100
            arrow, kind = ("▲", "up") if change >= 0 else ("▼", "down")
            parts.append(f'<div class="change {kind}">{arrow} {abs(change):.1f}% vs previous '
                         f'({escape(formats.number(previous, metric))})</div>')
    parts.append("</div>")
    return "".join(parts)


def table_rows_fitting(height: float | None) -> int:
    """How many rows a table body of `height` pixels shows under its header (page.py fixes
    the heights of header and rows), leaving a line for the "showing N of M" note."""
    if height is None:
        return MAX_TABLE_ROWS
    return max(1, min(MAX_TABLE_ROWS, int((height - TABLE_HEAD_HEIGHT) // TABLE_ROW_HEIGHT)))


def table(result: Result, formats: Formats, settings: Mapping[str, Any],
          height: float | None = None) -> str:
    """An HTML table of the rows that fit the card (`height`), numbers right-aligned in the
    card's formats; "Showing N of M rows" when some do not fit."""
    if not result.rows:
        return '<div class="empty">No data</div>'
    columns = [c for c in _settings_list(settings, "table.columns") if c in result.columns]
    columns = columns or result.columns
    indexes = [result.columns.index(c) for c in columns]
    titles = settings.get("column_titles") or {}
    numeric = set(_numeric_columns(result))
    head = "".join(f'<th class="{"num" if c in numeric else ""}">'
                   f"{escape(str(titles.get(c, c.replace('_', ' '))))}</th>" for c in columns)
    shown = table_rows_fitting(height)
    if len(result.rows) > shown:
        shown = max(1, shown - 1)  # the note takes a row's height
    body = []
    for row in result.rows[:shown]:
        cells = []
        for column, index in zip(columns, indexes, strict=True):
            value = row[index]
            numeric = isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)
            cells.append(f'<td class="{"num" if numeric else ""}">'
                         f"{escape(formats.number(value, column))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (f'<div class="more">Showing {shown} of {len(result.rows)} rows</div>'
            if len(result.rows) > shown else "")
    return (f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>'
            f'{"".join(body)}</tbody></table>{more}</div>')


def pivot(result: Result, settings: Mapping[str, Any], formats: Formats,
          height: float | None = None) -> str:
    """A cross table (Metabase `pivot_table.column_split`: rows, columns, values), each cell
    shaded by its value, as a cohort retention grid reads best."""
    split = settings.get("pivot_table.column_split") or {}
    rows = [c for c in split.get("rows") or [] if c in result.columns]
    columns = [c for c in split.get("columns") or [] if c in result.columns][:1]
    values = [c for c in split.get("values") or [] if c in result.columns][:1]
    if not (rows and columns and values):
        return table(result, formats, settings, height)
    ri = [result.columns.index(c) for c in rows]
    ci, vi = result.columns.index(columns[0]), result.columns.index(values[0])
    grid: dict[tuple[Any, ...], dict[Any, Any]] = {}
    for row in result.rows:
        grid.setdefault(tuple(row[i] for i in ri), {})[row[ci]] = row[vi]
    heads = sorted({row[ci] for row in result.rows if row[ci] is not None}, key=_sort_key)
    numbers = [as_float(v) for cells in grid.values() for v in cells.values()]
    high = max((n for n in numbers if n is not None), default=0.0) or 1.0
    head = "".join(f"<th>{escape(c.replace('_', ' '))}</th>" for c in rows)
    head += "".join(f'<th class="num">{escape(text(h))}</th>' for h in heads)
    body = []
    shown = table_rows_fitting(height)
    if len(grid) > shown:
        shown = max(1, shown - 1)  # the note takes a row's height
    for key, cells in list(grid.items())[:shown]:
        parts = [f"<td>{escape(formats.number(v, c))}</td>" for c, v in zip(rows, key,
                                                                              strict=True)]
        for h in heads:
            value = cells.get(h)
            number = as_float(value)
            shade = (f' style="background:{tint(PALETTE[0], max(number, 0.0) / high * 0.85)}"'
                     if number is not None else "")
            parts.append(f'<td class="num"{shade}>{escape(formats.number(value, values[0]))}'
                         "</td>")
        body.append("<tr>" + "".join(parts) + "</tr>")
    more = (f'<div class="more">Showing {shown} of {len(grid)} rows</div>'
            if len(grid) > shown else "")
    return (f'<div class="table-wrap"><table class="pivot"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>{more}</div>')


def _sort_key(value: Any) -> tuple[int, Any]:
    number = as_float(value)
    return (0, number) if number is not None else (1, text(value))


def no_data() -> str:
    return '<div class="empty">No data</div>'


DISPLAYS = ("line", "area", "bar", "combo", "row", "pie", "progress", "scalar", "smartscalar",
            "table", "pivot")


def render(result: Result, display: str, settings: Mapping[str, Any] | None, formats: Formats,
           width: float, height: float) -> str:
    """A card's body: SVG for charts, HTML for numbers and tables; 'No data' when empty.

    Displays the preview does not draw (gauge, funnel) show their rows as a table.
    """
    settings = settings or {}
    if not result.rows and display != "table":
        return no_data()
    if display in ("line", "area", "bar", "combo"):
        return xy_chart(result, "line" if display == "combo" else display, settings, formats,
                        width, height)
    if display == "row":
        return row_chart(result, settings, formats, width, height)
    if display == "pie":
        return pie_chart(result, settings, formats, width, height)
    if display == "progress":
        return progress_chart(result, settings, formats, width, height)
    if display in ("scalar", "smartscalar"):
        return scalar(result, display, settings, formats, width, height)
    if display == "pivot":
        return pivot(result, settings, formats, height)
    return table(result, formats, settings, height)


def column_styles(settings: Mapping[str, Any]) -> dict[str, str]:
    """Metabase `column_settings` ({'["name","revenue"]': {'number_style': 'currency'}}) as
    column -> style."""
    styles: dict[str, str] = {}
    for key, value in (settings.get("column_settings") or {}).items():
        name = key.split('"name","', 1)[-1].split('"', 1)[0] if '"name"' in key else key
        style = (value or {}).get("number_style")
        if style in ("currency", "percent"):
            styles[name] = style
        elif style == "decimal":
            styles[name] = "number"
    return styles

