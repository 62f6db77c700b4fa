"""Anomalies: the days on which a metric did something its past did not lead to expect, judged
as they would have been on the day, with the shops, channels, products and other dimension
values behind them.

Each series of kpi_daily (a metric in total, or per value of one dimension: location,
channel, or any dimension the client's marts carry) is judged by the univariate causal
detector (extensions/detector.py): its seasonal periods are found from the data, each day is
judged on the days before it, and a day is reported when an anomaly starts or clearly
worsens there, with a severity calibrated on false-alarm rates (detector.SEVERITIES;
bench/anomaly_nab.py measures them). On top of the detector:

- public holidays of the client's country and the year-end `festive` season are judged with
  a band twice as wide (they swing for reasons a few weeks of history cannot know);
- a day after the data's last complete day (`<client>_marts.data_as_of.last_complete_date`
  when that mart exists, else the day before the client's today) is not judged: a day still
  selling is not a drop;
- a series at 0 on more than a tenth of its past `zero_window` days (refunds, a channel
  barely used) has no daily baseline to speak of and is not judged;
- a metric whose rhythm is the week or the month (marketing spend from a monthly sheet, a
  formula over it such as cac) is judged at its rhythm, on its complete periods from
  kpi_values (the shared loader of _kpi_tools), never spread over days: a period is judged
  once the series has `min_periods_week` weeks or `min_periods_month` months before it;
- for each anomaly of a daily series, the contributors are the slices one level down, each
  against what the detector expected of it: the locations, channels, products and other
  dimension values of a total; the channels and products of a location; the locations of a
  channel (from daily_sales and product_sales_daily). They are ranked by their deviation in the
  anomaly's direction; share = the slice's part of its dimension's deviations in that
  direction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from goalpost.core.errors import GoalpostError
from goalpost.extensions._kpi_tools import KPI_VALUES_ROWS, periodic, values_frame
from goalpost.extensions.api import DISTINCT_SERIES, Column, Extension, Inputs, JobContext
from goalpost.extensions.detector import Detection, detect_series
from goalpost.extensions.detector import Settings as DetectorSettings

SLICES = ("location", "channel", "product")  # the marts' own slices, in drill-down order
TOP_CONTRIBUTORS = 3
CHOICE_DAYS = 364  # days over which a series' candidate expected values compete
MAX_ZERO_SHARE = 0.1
SEVERITY_ORDER = ("low", "medium", "high")
PERIOD_FREQUENCY = {"week": "W", "month": "MS"}  # the detector's calendar for each rhythm

# kpi_daily in total and per dimension value (a dimension with a single value is the total
# again and is left out: DISTINCT_SERIES); the marts' own figures per location x channel and
# per product for the metrics whose standard definition they share (a client overriding a
# metric keeps kpi_daily's slices only); and every metric's complete weeks and months from
# kpi_values, with the grain as their source and their own dimension and dimension value (run
# keeps those of the metrics whose rhythm the grain is).
SLICES_SQL = """
SELECT 'kpi' AS source, metric, date,
       CASE WHEN dimension = 'location' THEN dimension_value END AS location,
       CASE WHEN dimension = 'channel' THEN dimension_value END AS channel,
       CAST(NULL AS text) AS product,
       CASE WHEN dimension NOT IN ('all', 'location', 'channel') THEN dimension END
           AS dimension,
       CASE WHEN dimension NOT IN ('all', 'location', 'channel') THEN dimension_value END
           AS dimension_value,
       CAST(value AS double precision) AS value
FROM {marts}.kpi_daily
WHERE """ + DISTINCT_SERIES + """
UNION ALL
SELECT 'sales', m.metric, s.sales_date, COALESCE(s.location_id, '(none)'), s.channel, NULL,
       NULL, NULL, m.value
FROM {marts}.daily_sales AS s
CROSS JOIN LATERAL (VALUES
    ('revenue', CAST(s.revenue AS double precision)),
    ('orders', CAST(s.orders AS double precision)),
    ('items', CAST(s.items AS double precision)),
    ('customers', CAST(s.customers AS double precision)),
    ('average_ticket', CAST(s.average_ticket AS double precision))) AS m(metric, value)
WHERE m.value IS NOT NULL
UNION ALL
SELECT 'product', m.metric, p.sales_date, COALESCE(p.location_id, '(none)'), NULL,
       p.product_id, NULL, NULL, m.value
FROM {marts}.product_sales_daily AS p
CROSS JOIN LATERAL (VALUES
    ('revenue', CAST(p.revenue AS double precision)),
    ('items', CAST(p.units_sold AS double precision))) AS m(metric, value)
UNION ALL
SELECT v.grain, v.metric, v.date, NULL, NULL, NULL, v.dimension, v.dimension_value,
       CAST(v.value AS double precision)
FROM (""" + KPI_VALUES_ROWS + """) AS v
WHERE v.grain <> 'day' AND v.complete AND """ + DISTINCT_SERIES.replace(
    "dimension", "v.dimension", 2) + """
ORDER BY 1, 2, 4, 5, 6, 7, 8, 3
"""
ZERO_WHEN_ABSENT = {"revenue", "orders", "items", "customers"}
SLICE_METRICS = {"sales": ("revenue", "orders", "items", "customers", "average_ticket"),
                 "product": ("revenue", "items")}

COLUMNS = (
    Column("metric", "text"),
    Column("dimension", "text", "'all', 'location', 'channel' or another dimension"),
    Column("dimension_value", "text", "'all' for the total"),
    Column("date", "date", "the day, or the first day of a weekly or monthly metric's period"),
    Column("value", "number", "what the day (or period) was"),
    Column("expected", "number", "what its past said it would be"),
    Column("lower", "number", "the usual range's low end (99% of prediction errors)"),
    Column("upper", "number", "the usual range's high end"),
    Column("score", "number", "0 to 1: the evidence that the day is an anomaly"),
    Column("severity", "text", "low, medium or high (calibrated false-alarm rates)"),
    Column("direction", "text", "spike or drop"),
    Column("contributors", "jsonb", "the slices one level down that moved the most: "
           "[{dimension, value, deviation, share}]"),
    Column("method", "text", "extreme (an unusual move to an extreme of the series' "
           "history) or error (a move its regular pattern cannot explain)"),
)

Key = tuple[str, tuple[tuple[str, str], ...]]  # metric, ((dimension, value), ...)


@dataclass(frozen=True)
class Settings:
    """`extension_settings: {anomalies: {...}}` in the client's YAML."""

    min_history: int = 28  # observed days a series needs before its days are judged
    cycles: int = 6  # past cycles (weeks for daily sales) a seasonal baseline is the median of
    gap: int = 7  # days over which a baseline's level gap is followed
    min_severity: str = "low"  # the lowest severity reported
    zero_window: int = 91  # days over which the share of zero days is measured
    # Periods a weekly or monthly metric needs before its periods are judged: the detector
    # measures its band on at least 20 past errors and finds a yearly season in two years.
    min_periods_week: int = 26
    min_periods_month: int = 24
    festive: str = "12-20/01-03"  # MM-DD/MM-DD judged with a wider band; "" for none

    def festive_days(self) -> tuple[int, int] | None:
        """The festive season as (first, last) month * 100 + day, None when there is none."""
        if not self.festive:
            return None
        try:
            first, last = (date(2000, *map(int, day.split("-")))
                           for day in self.festive.split("/"))
        except (TypeError, ValueError):
            raise GoalpostError(f"anomalies: festive must be MM-DD/MM-DD, not "
                                f"{self.festive!r}", hint='e.g. festive: "12-20/01-03", '
                                'or "" for no festive season') from None
        return first.month * 100 + first.day, last.month * 100 + last.day

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Settings:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise GoalpostError(f"anomalies: unknown setting(s) {', '.join(unknown)}",
                                hint=f"extension_settings.anomalies takes "
                                     f"{', '.join(known)}")
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if known[name].type == "str":
                values[name] = "" if value is None else str(value)
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise GoalpostError(f"anomalies: setting {name} must be a whole number above "
                                    f"0, not {value!r}", hint=f"e.g. {name}: "
                                                              f"{getattr(cls, name)}")
            values[name] = value
        settings = cls(**values)
        settings.festive_days()
        if settings.min_severity not in SEVERITY_ORDER:
            raise GoalpostError(f"anomalies: min_severity must be one of "
                                f"{', '.join(SEVERITY_ORDER)}, not {settings.min_severity!r}")
        return settings


@dataclass
class _Series:
    """The series as a (days x series) matrix, with each series' key and its children."""

    dates: pd.DatetimeIndex
    keys: list[Key]
    values: np.ndarray  # NaN when the slice had no row that day
    children: dict[int, list[tuple[str, int]]]  # series -> [(dimension, child series)]
    reported: list[int]  # kpi_daily's series, the ones anomalies are reported on


def run(job: JobContext) -> pd.DataFrame:
    settings = Settings.from_dict(job.settings)
    registry = job.client.metric_registry()
    data = job.data
    by_period = data["source"].isin(list(PERIOD_FREQUENCY)) if not data.empty else \
        pd.Series(dtype=bool)
    daily = detect(data[~by_period] if not data.empty else data, country=job.client.country,
                   standard=_standard_metrics(registry), settings=settings,
                   last_complete=last_complete_day(job.last_complete, job.now,
                                                   job.client.timezone))
    periods = detect_periodic(data[by_period] if not data.empty else data, registry, settings)
    if periods.empty:
        return daily
    if daily.empty:
        return periods
    return pd.concat([daily, periods], ignore_index=True).sort_values(
        ["metric", "dimension", "dimension_value", "date"], ignore_index=True)


def periodic_detections(data: pd.DataFrame, registry: dict[str, Any], settings: Settings
                        ) -> Iterator[tuple[str, str, str, pd.Series, Detection]]:
    """(metric, dimension, value, series, detection) of each metric whose rhythm is the week
    or the month, judged at that rhythm on its complete periods (SLICES_SQL's rows whose
    source is the grain)."""
    if data.empty:
        return
    frame = values_frame(data.rename(columns={"source": "grain"}).assign(complete=True))
    for metric, grain, dimension, value, series in periodic(frame, registry, None):
        warmup = settings.min_periods_week if grain == "week" else settings.min_periods_month
        if series.notna().sum() <= warmup:
            continue
        yield metric, dimension, value, series, detect_series(
            series.to_numpy(float), frequency=PERIOD_FREQUENCY[grain],
            settings=DetectorSettings(warmup=warmup, relative=True))


def detect_periodic(data: pd.DataFrame, registry: dict[str, Any],
                    settings: Settings) -> pd.DataFrame:
    """Anomalies of the weekly and monthly metrics (periodic_detections), one row per period
    reported at `min_severity` or above."""
    columns = [c.name for c in COLUMNS]
    wanted = SEVERITY_ORDER[SEVERITY_ORDER.index(settings.min_severity):]
    rows = []
    for metric, dimension, value, series, found in periodic_detections(data, registry,
                                                                       settings):
        report = found.alert & np.isin(found.severity, wanted)
        for t in np.flatnonzero(report):
            rows.append({
                "metric": metric, "dimension": dimension, "dimension_value": value,
                "date": series.index[t].date(), "value": float(series.iloc[t]),
                "expected": round(float(found.expected[t]), 4),
                "lower": round(float(found.lower[t]), 4),
                "upper": round(float(found.upper[t]), 4),
                "score": round(float(found.score[t]), 4), "severity": found.severity[t],
                "direction": "spike" if found.direction[t] > 0 else "drop",
                "contributors": [], "method": "extreme" if found.extreme[t] else "error"})
    return pd.DataFrame(rows, columns=columns)


def last_complete_day(marts_say: date | None, now: datetime, timezone: str) -> date:
    """The last day whose figures are final: data_as_of's last_complete_date when the marts
    say (JobContext.last_complete), else the day before the client's today (today is still
    selling)."""
    if marts_say is not None:
        return marts_say
    aware = now if now.tzinfo else now.replace(tzinfo=ZoneInfo("UTC"))
    return (pd.Timestamp(aware.astimezone(ZoneInfo(timezone)).date())
            - pd.Timedelta(days=1)).date()


def _standard_metrics(registry: dict[str, Any]) -> set[str]:
    """Metrics still computed as the standard ones: the marts' slices hold the same figures."""
    from goalpost.core.metrics import standard_metrics

    shipped = standard_metrics()
    return {name for name, metric in registry.items()
            if name in shipped and metric.value == shipped[name].value}


def detect(data: pd.DataFrame, *, country: str | None = None,
           standard: set[str] | None = None, settings: Settings | None = None,
           last_complete: date | None = None) -> pd.DataFrame:
    """Anomalies of every kpi_daily series in `data` (the rows of SLICES_SQL: source, metric,
    date, location, channel, product, value, and optionally dimension and dimension_value),
    one row per anomaly. `standard` names the metrics whose daily_sales and
    product_sales_daily slices may explain a kpi anomaly (all of them when None); days after
    `last_complete` are not judged."""
    settings = settings or Settings()
    columns = [c.name for c in COLUMNS]
    missing = {"source", "metric", "date", "location", "channel", "product", "value"} - set(
        data.columns)
    if missing:
        raise GoalpostError(f"anomalies: input lacks column(s) {', '.join(sorted(missing))}",
                            hint="the extension reads SLICES_SQL over the client's marts")
    series = _matrix(data, standard)
    if series is None:
        return pd.DataFrame(columns=columns)
    unusual = _holidays(country, series.dates) | _within(series.dates,
                                                         settings.festive_days())
    complete = None
    if last_complete is not None:
        complete = int((pd.Timestamp(last_complete) - series.dates[0]).days)
        if complete < 0:
            return pd.DataFrame(columns=columns)
    detector = DetectorSettings(warmup=settings.min_history, cycles=settings.cycles,
                                gap=settings.gap, relative=True, choice=CHOICE_DAYS)
    judged: dict[int, Detection] = {}

    def judge(j: int) -> Detection:
        if j not in judged:
            judged[j] = detect_series(series.values[:, j], frequency="D", settings=detector,
                                      unusual=unusual, last_complete=complete,
                                      predictions=_sum_of_parts(series, j, judge))
        return judged[j]

    wanted = SEVERITY_ORDER[SEVERITY_ORDER.index(settings.min_severity):]
    rows = []
    for j in series.reported:
        found = judge(j)
        sparse = _mostly_zero(series.values[:, j], settings.zero_window)
        report = found.alert & np.isin(found.severity, wanted) & ~sparse
        if not report.any():
            continue
        metric, slices = series.keys[j]
        dimension, value = slices[0] if slices else ("all", "all")
        for t in np.flatnonzero(report):
            direction = "spike" if found.direction[t] > 0 else "drop"
            rows.append({
                "metric": metric, "dimension": dimension, "dimension_value": value,
                "date": series.dates[t].date(), "value": float(series.values[t, j]),
                "expected": round(float(found.expected[t]), 4),
                "lower": round(float(found.lower[t]), 4),
                "upper": round(float(found.upper[t]), 4),
                "score": round(float(found.score[t]), 4),
                "severity": found.severity[t], "direction": direction,
                "contributors": _contributors(series, judge, t, j, direction),
                "method": "extreme" if found.extreme[t] else "error",
            })
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(rows, columns=columns).sort_values(
        ["metric", "dimension", "dimension_value", "date"], ignore_index=True)


def _sum_of_parts(series: _Series, j: int, judge: Any) -> list[np.ndarray]:
    """For a total over locations (the client's, a channel's) of a metric that adds up: the
    sum of what its open locations were expected to sell, a candidate beside the total's
    own expected value (a shop shut for its day off, a holiday or the summer is not the
    total's anomaly). NaN where an open location has no expected value yet."""
    metric, slices = series.keys[j]
    parts = [c for d, c in series.children.get(j, []) if d == "location"]
    if metric not in ZERO_WHEN_ABSENT or any(d == "location" for d, _ in slices) or not parts:
        return []
    open_ = ~np.isnan(series.values[:, parts])
    expected = np.column_stack([judge(c).expected for c in parts])
    known = (open_ <= ~np.isnan(expected)).all(axis=1) & open_.any(axis=1)
    return [np.where(known, np.where(open_, expected, 0.0).sum(axis=1), np.nan)]


def _mostly_zero(values: np.ndarray, window: int) -> np.ndarray:
    """Days whose past `window` days were at 0 more than MAX_ZERO_SHARE of the time."""
    zeros = pd.Series(np.where(np.isnan(values), np.nan, values == 0)).shift(1).rolling(
        window, min_periods=1).mean().to_numpy()
    return np.nan_to_num(zeros) > MAX_ZERO_SHARE


def _order(dimension: str) -> tuple[int, str]:
    return (SLICES.index(dimension), "") if dimension in SLICES else (len(SLICES), dimension)


def _matrix(data: pd.DataFrame, standard: set[str] | None) -> _Series | None:
    """One column per series: kpi_daily's, the location x channel slices of daily_sales and
    the products per location and in total, zeros where a slice sold nothing on a day its
    parent was open."""
    frame = data.copy()
    for column in ("dimension", "dimension_value"):
        if column not in frame.columns:
            frame[column] = None
    frame = frame[frame["value"].notna()]
    if standard is not None:
        frame = frame[(frame["source"] == "kpi") | frame["metric"].isin(standard)]
    for source, metrics in SLICE_METRICS.items():
        frame = frame[(frame["source"] != source) | frame["metric"].isin(metrics)]
    if frame.empty:
        return None
    frame["date"] = pd.to_datetime(frame["date"])
    frame["value"] = frame["value"].astype(float)
    products = frame[frame["source"] == "product"]
    totals = (products.groupby(["metric", "date", "product"], as_index=False)["value"].sum()
              .assign(source="product", location=None, channel=None, dimension=None,
                      dimension_value=None))
    frame = pd.concat([frame, totals[frame.columns]], ignore_index=True)

    def key(row: tuple) -> Key:
        metric, location, channel, product, dimension, value = row
        slices = [(d, str(v)) for d, v in zip(SLICES, (location, channel, product),
                                               strict=True) if v is not None and pd.notna(v)]
        if dimension is not None and pd.notna(dimension):
            slices.append((str(dimension), str(value)))
        return metric, tuple(sorted(slices, key=lambda s: _order(s[0])))

    cells = frame[["metric", "location", "channel", "product", "dimension",
                   "dimension_value"]].astype(object)
    keys_per_row = [key(row) for row in cells.itertuples(index=False, name=None)]
    codes, uniques = pd.factorize(pd.Series(keys_per_row, dtype=object))
    dates = pd.date_range(frame["date"].min(), frame["date"].max(), freq="D")
    values = np.full((len(dates), len(uniques)), np.nan)
    values[(frame["date"] - dates[0]).dt.days.to_numpy(), codes] = frame["value"].to_numpy()
    keys: list[Key] = [tuple(k) for k in uniques]
    index = {k: i for i, k in enumerate(keys)}
    kpi_keys = {keys_per_row[i] for i in np.flatnonzero(frame["source"].to_numpy() == "kpi")}
    reported = sorted(index[k] for k in kpi_keys if len(k[1]) <= 1)

    children: dict[int, list[tuple[str, int]]] = {}
    for i, (metric, slices) in enumerate(keys):
        for d, (dimension, _) in enumerate(slices):
            parent = (metric, slices[:d] + slices[d + 1:])
            if parent in index:
                children.setdefault(index[parent], []).append((dimension, i))
    # A shop's channel or product that sold nothing on a day the shop was open sold 0 (the
    # marts have no row for it); before its first sale it did not exist.
    for i, (metric, slices) in enumerate(keys):
        shop = index.get((metric, tuple(s for s in slices if s[0] == "location")))
        if metric not in ZERO_WHEN_ABSENT or keys[i] in kpi_keys or shop is None or shop == i:
            continue
        column = values[:, i]
        seen = np.flatnonzero(~np.isnan(column))
        gap = np.isnan(column) & ~np.isnan(values[:, shop])
        gap[: seen[0]] = False
        column[gap] = 0.0
    return _Series(dates, keys, values, children, reported)


def _holidays(country: str | None, dates: pd.DatetimeIndex) -> np.ndarray:
    """The client's public holidays among the dates (none for a country the calendar lacks)."""
    if not country:
        return np.zeros(len(dates), dtype=bool)
    import holidays

    try:
        days = holidays.country_holidays(country, years=range(dates[0].year,
                                                              dates[-1].year + 1))
    except NotImplementedError:
        return np.zeros(len(dates), dtype=bool)
    return np.isin(dates.date, np.array(list(days), dtype=object))


def _within(dates: pd.DatetimeIndex, season: tuple[int, int] | None) -> np.ndarray:
    """Whether each date falls in the season, (first, last) as month * 100 + day, inclusive;
    a season whose last day comes before its first runs across the new year."""
    if season is None:
        return np.zeros(len(dates), dtype=bool)
    first, last = season
    key = np.asarray(dates.month * 100 + dates.day)
    return (key >= first) & (key <= last) if first <= last else (key >= first) | (key <= last)


def _contributors(series: _Series, judge: Any, t: int, j: int,
                  direction: str) -> list[dict[str, Any]]:
    """The slices one level down that moved the most in the anomaly's direction, per
    dimension: their deviation from what the detector expected of them and its share of the
    dimension's deviations in that direction."""
    sign = 1.0 if direction == "spike" else -1.0
    by_dimension: dict[str, list[tuple[str, float]]] = {}
    for dimension, child in series.children.get(j, []):
        expected = judge(child).expected[t]
        if np.isnan(expected):
            continue
        actual = series.values[t, child]
        deviation = (0.0 if np.isnan(actual) else actual) - expected
        if deviation * sign > 0:
            name = dict(series.keys[child][1])[dimension]
            by_dimension.setdefault(dimension, []).append((name, float(deviation)))
    found = []
    for dimension in sorted(by_dimension, key=_order):
        moved = sorted(by_dimension[dimension], key=lambda item: -abs(item[1]))
        total = sum(deviation for _, deviation in moved)
        found += [{"dimension": dimension, "value": name, "deviation": round(deviation, 2),
                   "share": round(deviation / total, 3)}
                  for name, deviation in moved[:TOP_CONTRIBUTORS]]
    return found


EXTENSION = Extension(
    name="anomalies",
    description="Days on which a metric left what its past led to expect, in total and per "
                "dimension value, judged on their past only by a causal detector (seasons "
                "found from the data, calibrated severities), with the locations, channels, "
                "products and dimension values that moved it",
    version="4",
    table="anomalies",
    columns=COLUMNS,
    inputs=Inputs(sql=SLICES_SQL),
    key=("metric", "dimension", "dimension_value", "date"),
    run=run,
    builtin=True,
)
