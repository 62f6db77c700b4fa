"""Every number a review states, read from the client's marts, insights and control schema.

Nothing here is worded: these are the facts (goalpost.alerts.review.writing turns them into
sentences in the owner's language), so that a test can recompute each one from the marts.

- Metrics come from kpi_daily's totals (dimension `all`). A metric that adds up (revenue,
  orders, returns) is summed over the period; a ratio that is part of a driver formula
  (average ticket, items per order, average item price) takes its period value from the
  parts that add up, as goalpost.core.decomposition defines it (average ticket = revenue /
  orders of the period); other metrics are read as their daily mean (known customers: a day's
  distinct customers do not add up to a week's) or their last value.
- A period the data has not reached to its end is compared day for day: the days with data,
  against the same days of the periods it is compared with, and the figures say so.
- Targets (`metrics.<name>.target`) are daily values for the whole business: a metric that
  adds up has target x days for the period; another has the target itself.
- The change split comes from goalpost.core.decomposition over the period and its baseline.
- Movers are the dimension values (every dimension of kpi_daily: locations, channels, any the
  client declares) and products whose headline metric moved the most against the period
  before.
- Anomalies are those of the period's days. Goals and stock are the extensions' and the
  inventory marts' latest, as of their date: they are told in the review of the period that
  date belongs to (or ended up to a week before), not in older ones.
- Data-quality notes come from the control schema: freshness now, rows quarantined and steps
  failed since the period began.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg
from psycopg import sql

from goalpost.alerts.review.period import Period
from goalpost.alerts.tables import ClientTables
from goalpost.core import decomposition
from goalpost.core.freshness import SourceFreshness, source_freshness
from goalpost.core.metrics import Metric
from goalpost.core.registry.models import Client

Reading = Literal["total", "period", "daily_average", "last"]
# A dimension value (or product) is a mover when its headline metric changed by at least this
# share of itself and this share of the whole business's previous total.
MOVER_PCT = 5.0
MOVER_SHARE_OF_TOTAL = 0.005
MOVERS_PER_DIMENSION = 3
ANOMALY_SEVERITIES = ("medium", "high")
STOCK_ROWS = 10
# Goals and stock (as of the latest data) belong to the review of a period that ended at most
# this many days before that data.
CURRENT_AFTER = 7
# Where an anomaly is: the most specific level at which it was flagged.
LEVELS = ("location", "channel", "all")


@dataclass(frozen=True)
class Span:
    """The days of a period the figures cover: all of them, or those the data has reached."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass
class MetricFigures:
    metric: Metric
    reading: Reading
    current: float | None
    previous: float | None
    last_year: float | None
    target: float | None = None

    @property
    def name(self) -> str:
        return self.metric.name


@dataclass
class DriverPart:
    metric: Metric
    level: int
    parent: str | None
    baseline: float
    current: float
    contribution: float


@dataclass
class Split:
    """A root metric's change against a baseline period, split among its drivers."""

    metric: Metric
    baseline_span: Span
    baseline: float
    current: float
    parts: list[DriverPart]

    @property
    def change(self) -> float:
        return self.current - self.baseline

    def children(self, parent: str) -> list[DriverPart]:
        return [part for part in self.parts if part.parent == parent]


@dataclass
class Mover:
    dimension: str  # location, channel, product or a declared dimension
    value: str
    label: str
    current: float
    previous: float

    @property
    def change(self) -> float:
        return self.current - self.previous


@dataclass
class Contributor:
    dimension: str
    label: str
    share: float


@dataclass
class AnomalyEvent:
    """What the anomalies extension flagged on one day in one direction, where it was most
    specific (a location, else a channel, else the whole business)."""

    day: date
    direction: str  # spike or drop
    severity: str  # the highest of the day's rows at that level
    dimension: str
    value: str
    label: str
    metric: Metric
    actual: float
    expected: float
    also: list[Metric] = field(default_factory=list)
    behind: list[Contributor] = field(default_factory=list)


@dataclass
class GoalFigures:
    name: str
    metric: Metric
    dimension_value: str
    label: str | None  # the location's name for a goal on one location
    period_start: date
    deadline: date
    as_of: date
    status: str
    target: float | None
    actual: float | None
    forecast: float | None
    lower_80: float | None
    upper_80: float | None


@dataclass
class StockFigures:
    location: str
    product: str
    on_hand: float
    reorder_point: float
    days_of_cover: float | None


@dataclass
class StockOut:
    location: str
    product: str
    started_on: date
    ended_on: date | None  # None: still out of stock
    days: int
    units_lost: float | None


@dataclass
class QuarantineCount:
    source: str
    stream: str
    rows: int


@dataclass
class FailedStep:
    step: str
    failures: int
    last_at: datetime
    error: str


@dataclass
class Quality:
    data_as_of: date | None
    missing_days: int
    stale: list[SourceFreshness] = field(default_factory=list)
    quarantined: list[QuarantineCount] = field(default_factory=list)
    failed: list[FailedStep] = field(default_factory=list)
    since: date | None = None  # quarantine and failures are counted from this day


@dataclass
class Figures:
    """Everything one review says, for one client and one period."""

    slug: str
    client: Client
    period: Period
    now: datetime
    span: Span | None  # None: no data in the period
    first_day: date | None  # of the client's data
    metrics: list[MetricFigures] = field(default_factory=list)
    splits: dict[str, list[Split]] = field(default_factory=dict)  # previous / last_year
    movers: dict[str, list[Mover]] = field(default_factory=dict)
    daily: list[tuple[date, float | None, float | None]] = field(default_factory=list)
    anomalies: list[AnomalyEvent] = field(default_factory=list)
    goals: list[GoalFigures] = field(default_factory=list)
    stock_as_of: date | None = None
    stock: list[StockFigures] = field(default_factory=list)
    stock_at_risk: int = 0
    stockouts: list[StockOut] = field(default_factory=list)
    quality: Quality = field(default_factory=lambda: Quality(None, 0))

    @property
    def headline(self) -> MetricFigures | None:
        """The north-star metric (the first with category north_star and data)."""
        return next((m for m in self.metrics if m.metric.category == "north_star"
                     and m.current is not None), None)

    def metric(self, name: str) -> MetricFigures | None:
        return next((m for m in self.metrics if m.name == name), None)

    def spans(self) -> dict[str, Span]:
        """The covered days of the period and, day for day, of the periods it is compared
        with: those the data covers whole (a week before that starts before the client's
        first day is not compared with, rather than compared in part)."""
        assert self.span is not None
        offset = (self.span.end - self.span.start).days
        out = {"current": self.span}
        for which, other in (("previous", self.period.previous()),
                             ("last_year", self.period.last_year())):
            if self.first_day is not None and other.start >= self.first_day:
                out[which] = Span(other.start, other.start + timedelta(days=offset))
        return out


class _Reader(ClientTables):
    """The client's tables; a table not there yet leaves its section out (an extension that
    never ran), it does not fail the review."""

    def __init__(self, conn: psycopg.Connection, slug: str) -> None:
        self.conn, self.slug = conn, slug


def _float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def collect(conn: psycopg.Connection, slug: str, client: Client, period: Period,
            now: datetime) -> Figures:
    """The figures of `period` for client `slug` (conn: an autocommit owner connection)."""
    reader = _Reader(conn, slug)
    figures = Figures(slug, client, period, now, None, None)
    registry = client.metric_registry()
    data_as_of = None
    if reader.exists("marts", "kpi_daily"):
        first, data_as_of = reader.rows(sql.SQL("SELECT min(date), max(date) FROM {}").format(
            reader.table("marts", "kpi_daily")))[0]
        figures.first_day = first
        covered = reader.rows(sql.SQL(
            "SELECT min(date), max(date) FROM {} WHERE date BETWEEN %s AND %s").format(
            reader.table("marts", "kpi_daily")), (period.start, period.end))[0]
        if covered[0] is not None:
            figures.span = Span(period.start, min(period.end, covered[1]))
    figures.quality = _quality(reader, client, period, now, data_as_of)
    if figures.span is not None:
        kpi = _kpi(reader, figures)
        figures.metrics = _metrics(kpi, figures, registry)
        figures.splits = _splits(kpi, figures, registry)
        figures.daily = _daily(kpi, figures)
        figures.movers = _movers(reader, figures)
    figures.anomalies = _anomalies(reader, period, registry)
    # Goals and stock are as the extensions and marts see them now: told in the review of
    # the period they are about (up to CURRENT_AFTER days after it), not in an older one's.
    figures.goals = [g for g in _goals(reader, registry) if _current(period, g.as_of)]
    _stock(reader, figures)
    if not _current(period, figures.stock_as_of):
        figures.stock, figures.stock_at_risk, figures.stock_as_of = [], 0, None
    return figures


def _current(period: Period, day: date | None) -> bool:
    return day is not None and period.start <= day <= period.end + timedelta(
        days=CURRENT_AFTER)


def _kpi(reader: _Reader, figures: Figures) -> pd.DataFrame:
    """kpi_daily's totals over the period and those it is compared with: metric, date, value."""
    spans = figures.spans()
    rows = reader.rows(sql.SQL(
        "SELECT metric, date, value FROM {} WHERE dimension = 'all' AND ("
        + " OR ".join(["date BETWEEN %s AND %s"] * len(spans)) + ") ORDER BY metric, date"
        ).format(
        reader.table("marts", "kpi_daily")),
        [d for span in spans.values() for d in (span.start, span.end)])
    frame = pd.DataFrame(rows, columns=["metric", "date", "value"])
    frame["date"] = pd.to_datetime(frame["date"])
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
    return frame


def _window(kpi: pd.DataFrame, span: Span) -> pd.DataFrame:
    """One column per metric, one row per day of the span (NaN where no row)."""
    rows = kpi[(kpi["date"] >= pd.Timestamp(span.start)) & (kpi["date"] <= pd.Timestamp(span.end))]
    return decomposition.wide(rows, pd.Timestamp(span.start), pd.Timestamp(span.end))


def _reading(metric: Metric, in_tree: bool) -> Reading:
    if metric.aggregation == "sum":
        return "total"
    if in_tree and metric.aggregation == "ratio":
        return "period"
    return "last" if metric.aggregation == "last" else "daily_average"


def _metrics(kpi: pd.DataFrame, figures: Figures, registry: dict[str, Metric]
             ) -> list[MetricFigures]:
    trees = [decomposition.tree(name, registry) for name in decomposition.roots(registry)]
    in_trees = {node.metric for root in trees for node in root.walk()}
    values: dict[str, dict[str, float | None]] = {}
    for which, span in figures.spans().items():
        daily = _window(kpi, span)
        found: dict[str, float | None] = {}
        for root in trees:
            if root.metric in daily and daily[root.metric].notna().any():
                found.update(decomposition.period_values(root, daily, registry))
        for name, metric in registry.items():
            column = daily[name].dropna() if name in daily else pd.Series(dtype=float)
            if column.empty:
                found[name] = None
                continue
            reading = _reading(metric, name in in_trees)
            if reading == "total":
                found[name] = float(column.sum())
            elif reading == "daily_average":
                found[name] = float(column.mean())
            elif reading == "last":
                found[name] = float(column.iloc[-1])
            else:
                found[name] = _float(found.get(name))
        values[which] = found
    days = figures.span.days if figures.span else 0
    out = []
    for name, metric in registry.items():
        if values["current"].get(name) is None:
            continue  # a metric with no rows in the period is not reported
        reading = _reading(metric, name in in_trees)
        target = None
        if metric.target is not None:
            target = metric.target * days if reading == "total" else metric.target
        out.append(MetricFigures(metric, reading, values["current"][name],
                                 values.get("previous", {}).get(name),
                                 values.get("last_year", {}).get(name), target))
    return out


def _splits(kpi: pd.DataFrame, figures: Figures, registry: dict[str, Metric]
            ) -> dict[str, list[Split]]:
    spans = figures.spans()
    current = _window(kpi, spans["current"])
    out: dict[str, list[Split]] = {}
    for which in ("previous", "last_year"):
        if which not in spans:
            out[which] = []
            continue
        baseline = _window(kpi, spans[which])
        both = pd.concat([baseline, current]).sort_index()
        found = []
        for name in decomposition.roots(registry):
            root = decomposition.tree(name, registry)
            if name not in baseline or baseline[name].isna().all():
                continue
            rows = decomposition.attribute(
                both, root, registry,
                (pd.Timestamp(spans["current"].start), pd.Timestamp(spans["current"].end)),
                (pd.Timestamp(spans[which].start), pd.Timestamp(spans[which].end)))
            if rows is None:
                continue  # a factor not positive in one period: no split
            top = rows[0]
            found.append(Split(registry[name], spans[which], top["baseline_value"],
                               top["current_value"],
                               [DriverPart(registry[r["driver"]], r["level"], r["parent"],
                                           r["baseline_value"], r["current_value"],
                                           r["contribution"]) for r in rows[1:]]))
        out[which] = found
    return out


def _daily(kpi: pd.DataFrame, figures: Figures) -> list[tuple[date, float | None,
                                                              float | None]]:
    """The headline metric day by day over the whole period, beside the period before's
    same weekday (for the chart)."""
    headline = figures.headline
    if headline is None or headline.reading != "total":
        return []
    period, previous = figures.period, figures.period.previous()
    compared = "previous" in figures.spans()
    by_day = kpi[kpi["metric"] == headline.name].set_index("date")["value"]
    out = []
    for offset in range(period.days):
        day = period.start + timedelta(days=offset)
        before = previous.start + timedelta(days=offset)
        now_value = by_day.get(pd.Timestamp(day)) if figures.span and day <= figures.span.end \
            else None
        then_value = by_day.get(pd.Timestamp(before)) if compared and before <= previous.end \
            else None
        out.append((day, _float(now_value), _float(then_value)))
    return out


def _names(reader: _Reader) -> dict[str, dict[str, str]]:
    """Current names of locations and products, as the marts carry them."""
    names: dict[str, dict[str, str]] = {"location": {}, "product": {}}
    if reader.exists("marts", "daily_sales"):
        names["location"] = {k: v for k, v in reader.rows(sql.SQL(
            "SELECT location_id, max(location_name) FROM {} GROUP BY 1").format(
            reader.table("marts", "daily_sales"))) if v}
    if reader.exists("marts", "product_sales_daily"):
        names["product"] = {k: v for k, v in reader.rows(sql.SQL(
            "SELECT product_id, max(product_name) FROM {} GROUP BY 1").format(
            reader.table("marts", "product_sales_daily"))) if v}
    return names


def _movers(reader: _Reader, figures: Figures) -> dict[str, list[Mover]]:
    headline = figures.headline
    if headline is None or headline.reading != "total" or not headline.previous:
        return {}
    spans = figures.spans()
    now, before = spans["current"], spans["previous"]
    per_value = reader.rows(sql.SQL(
        "SELECT dimension, dimension_value, "
        "coalesce(sum(value) FILTER (WHERE date BETWEEN %(a)s AND %(b)s), 0), "
        "coalesce(sum(value) FILTER (WHERE date BETWEEN %(c)s AND %(d)s), 0) FROM {} "
        "WHERE metric = %(metric)s AND dimension <> 'all' AND (date BETWEEN %(a)s AND %(b)s "
        "OR date BETWEEN %(c)s AND %(d)s) GROUP BY 1, 2 ORDER BY 1, 2").format(
        reader.table("marts", "kpi_daily")),
        {"a": now.start, "b": now.end, "c": before.start, "d": before.end,
         "metric": headline.name})
    if headline.name == "revenue" and reader.exists("marts", "product_sales_daily"):
        per_value += [("product", *row) for row in reader.rows(sql.SQL(
            "SELECT product_id, "
            "coalesce(sum(revenue) FILTER (WHERE sales_date BETWEEN %(a)s AND %(b)s), 0), "
            "coalesce(sum(revenue) FILTER (WHERE sales_date BETWEEN %(c)s AND %(d)s), 0) "
            "FROM {} WHERE sales_date BETWEEN %(a)s AND %(b)s OR sales_date BETWEEN %(c)s "
            "AND %(d)s GROUP BY 1 ORDER BY 1").format(reader.table("marts", "product_sales_daily")),
            {"a": now.start, "b": now.end, "c": before.start, "d": before.end})]
    names = _names(reader)
    floor = abs(headline.previous) * MOVER_SHARE_OF_TOTAL
    found: dict[str, list[Mover]] = {}
    for dimension, value, current, previous in per_value:
        mover = Mover(dimension, value, names.get(dimension, {}).get(value, value),
                      float(current), float(previous))
        pct = 100 * mover.change / abs(mover.previous) if mover.previous else math.inf
        if abs(mover.change) >= floor and abs(pct) >= MOVER_PCT and mover.change:
            found.setdefault(dimension, []).append(mover)
    return {dimension: sorted(items, key=lambda m: -abs(m.change))[:MOVERS_PER_DIMENSION]
            for dimension, items in found.items()}


def _anomalies(reader: _Reader, period: Period, registry: dict[str, Metric]
               ) -> list[AnomalyEvent]:
    if not reader.exists("insights", "anomalies"):
        return []
    rows = reader.rows(sql.SQL(
        "SELECT date, direction, dimension, dimension_value, metric, value, expected, "
        "severity, score, contributors FROM {} WHERE date BETWEEN %s AND %s AND "
        "severity = ANY(%s) ORDER BY date, direction, score DESC").format(
        reader.table("insights", "anomalies")),
        (period.start, period.end, list(ANOMALY_SEVERITIES)))
    names = _names(reader)
    days: dict[tuple[date, str], list[tuple[Any, ...]]] = {}
    for row in rows:
        if row[4] in registry:
            days.setdefault((row[0], row[1]), []).append(row)
    events = []
    for (day, direction), found in days.items():
        level = next(lv for lv in LEVELS if any(r[2] == lv for r in found))
        at_level = [r for r in found if r[2] == level]
        # The place most flagged there (a shop with four metrics beats one with one).
        counts: dict[str, int] = {}
        for r in at_level:
            counts[r[3]] = counts.get(r[3], 0) + 1
        where = max(counts, key=lambda v: (counts[v], max(r[8] for r in at_level
                                                          if r[3] == v)))
        mine = [r for r in at_level if r[3] == where]
        lead = next((r for r in mine if registry[r[4]].category == "north_star"), mine[0])
        behind = [Contributor(c["dimension"], names.get(c["dimension"], {}).get(
                      c["value"], c["value"]), float(c["share"]))
                  for c in (lead[9] or []) if c.get("share")]
        events.append(AnomalyEvent(
            day, direction, max((r[7] for r in mine), key=ANOMALY_SEVERITIES.index), level,
            where, names.get(level, {}).get(where, where), registry[lead[4]],
            float(lead[5]), float(lead[6]),
            also=[registry[r[4]] for r in mine if r[4] != lead[4]], behind=behind))
    return events


def _goals(reader: _Reader, registry: dict[str, Metric]) -> list[GoalFigures]:
    if not reader.exists("insights", "goal_progress"):
        return []
    names = _names(reader)["location"]
    rows = reader.rows(sql.SQL(
        "SELECT DISTINCT ON (goal) goal, metric, dimension, dimension_value, period_start, "
        "deadline, as_of, status, target, actual_to_date, forecast_at_deadline, "
        "forecast_lower_80, forecast_upper_80 FROM {} ORDER BY goal, as_of DESC").format(
        reader.table("insights", "goal_progress")))
    out = []
    for (goal, metric, dimension, value, start, deadline, as_of, status, target, actual,
         forecast, lower, upper) in rows:
        if metric not in registry:
            continue
        label = names.get(value, value) if dimension == "location" else (
            None if value == "all" else value)
        out.append(GoalFigures(goal, registry[metric], value, label, start, deadline, as_of,
                               status, _float(target), _float(actual), _float(forecast),
                               _float(lower), _float(upper)))
    return sorted(out, key=lambda g: (g.deadline, g.name))


def _stock(reader: _Reader, figures: Figures) -> None:
    period = figures.period
    if reader.exists("marts", "inventory_status"):
        rows = reader.rows(sql.SQL(
            "SELECT as_of, coalesce(location_name, location_id), "
            "coalesce(product_name, product_id), on_hand, reorder_point, days_of_cover FROM {} "
            "WHERE below_reorder ORDER BY days_of_cover NULLS LAST, on_hand, location_id, "
            "product_id").format(reader.table("marts", "inventory_status")))
        figures.stock_at_risk = len(rows)
        figures.stock = [StockFigures(loc, prod, float(on_hand), float(point), _float(cover))
                         for _, loc, prod, on_hand, point, cover in rows[:STOCK_ROWS]]
        if rows:
            figures.stock_as_of = rows[0][0]
    if reader.exists("marts", "stockouts"):
        figures.stockouts = [
            StockOut(loc, prod, start, None if ongoing else end, int(days), _float(lost))
            for loc, prod, start, end, ongoing, days, lost in reader.rows(sql.SQL(
                "SELECT coalesce(location_name, location_id), coalesce(product_name, "
                "product_id), started_on, ended_on, ongoing, days, estimated_units_lost FROM {} "
                "WHERE started_on <= %s AND (ongoing OR ended_on >= %s) "
                "ORDER BY started_on, location_id, product_id").format(
                reader.table("marts", "stockouts")), (period.end, period.start))]


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def _quality(reader: _Reader, client: Client, period: Period, now: datetime,
             data_as_of: date | None) -> Quality:
    zone = ZoneInfo(client.timezone)
    since = datetime.combine(period.start, time(), tzinfo=zone)
    missing = period.days if data_as_of is None else max(0, (period.end - data_as_of).days)
    missing = min(missing, period.days)
    quality = Quality(data_as_of, missing, since=period.start)
    quality.stale = [f for f in source_freshness(reader.conn, reader.slug, client, now)
                     if f.stale]
    quality.quarantined = [QuarantineCount(source, stream, int(n)) for source, stream, n in
                           reader.rows(
        "SELECT source, stream, count(*) FROM goalpost.quarantine WHERE client = %s AND "
        "created_at >= %s AND created_at <= %s GROUP BY 1, 2 ORDER BY 1, 2",
        (reader.slug, since, now))]
    quality.failed = [FailedStep(step, int(n), at, _first_line(error))
                      for step, n, at, error in reader.rows(
        "SELECT s.name, count(*), max(s.finished_at), (array_agg(s.error ORDER BY s.id DESC))[1] "
        "FROM goalpost.run_steps AS s JOIN goalpost.runs AS r ON r.id = s.run_id "
        "WHERE r.client = %s AND s.status = 'failed' AND s.started_at >= %s AND "
        "s.started_at <= %s GROUP BY 1 ORDER BY 1", (reader.slug, since, now))]
    return quality
