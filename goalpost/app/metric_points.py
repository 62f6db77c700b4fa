"""Metric values entered by hand: `goalpost metrics record` (one point) and `goalpost metrics
import` (a file of them), into goalpost.metric_points.

A point is (metric, period start, dimension value): the day, or the Monday or first of the
month at the metric's rhythm, in total or for one value of a dimension the metric is computed
per (`location=LYO-01`). Every value given is kept with who gave it, when and from where; the
latest one for a point is its value, which the next `goalpost run` reads
(staging.stg_manual__metric_values). Only input metrics take values: a metric computed from
receipts, a formula or a query is never overwritten by hand.

An import file (CSV or XLSX) has a header with `metric` (or `--metric` for a file of one
metric), `date` (or `period_start`), `value`, and optionally `dimension` and
`dimension_value`. It is checked whole before anything is written: an unknown metric, a date
that does not read or is not the start of the metric's period, a value that is not a number,
a dimension the metric is not computed per, or the same point twice in the file: each
problem is named with its row, and nothing is written.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import psycopg

from goalpost.core.errors import ConfigError
from goalpost.core.metrics import Metric
from goalpost.core.metrics.grains import is_period_start, period_start
from goalpost.core.registry.models import Client
from goalpost.pipelines.files.dialect import ISO, detect_date_format, detect_decimal, parses
from goalpost.pipelines.files.readers import FileProblem, open_table

DATE_COLUMNS = ("date", "period_start")
TABLE = "goalpost.metric_points"  # as the transform names what a model reads
MAX_PROBLEMS = 20


@dataclass(frozen=True)
class Point:
    metric: str
    period_start: date
    dimension: str
    dimension_value: str
    value: Decimal

    @property
    def key(self) -> tuple[str, date, str, str]:
        return self.metric, self.period_start, self.dimension, self.dimension_value

    def describe(self) -> str:
        where = f" ({self.dimension}={self.dimension_value})" if self.dimension else ""
        return f"{self.metric} {self.period_start}{where}"


def who() -> str:
    """Who is entering values: the login and the machine, for the points' history."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def input_metric(client: Client, name: str) -> Metric:
    """The client's input metric `name`; ConfigError saying why another one takes no values."""
    registry = client.metric_registry()
    if name not in registry:
        inputs = sorted(n for n, m in registry.items() if m.kind == "input")
        raise ConfigError(f"unknown metric {name!r}",
                          hint=f"the client's input metrics are {', '.join(inputs) or 'none'}: "
                               "declare one in its YAML (`metrics: {name: {label, unit, "
                               "aggregation, rhythm}}`)")
    metric = registry[name]
    if metric.kind != "input":
        how = {"orders": "from the sales receipts", "formula": f"by its formula "
               f"{metric.formula}", "sql": "by its SQL query"}[str(metric.kind)]
        raise ConfigError(f"{name} is computed {how}; only input metrics take values",
                          hint="record the metrics it is computed from")
    return metric


def parse_period(metric: Metric, text: str) -> date:
    """A point's period start: an ISO date (or YYYY-MM for a monthly metric) that starts the
    metric's period; ValueError saying which day would."""
    text = text.strip()
    try:
        day = (datetime.strptime(text, "%Y-%m").date() if metric.rhythm == "month"
               and len(text) == 7 else date.fromisoformat(text))
    except ValueError:
        raise ValueError(f"{text!r} is not a date (write it YYYY-MM-DD"
                         f"{' or YYYY-MM' if metric.rhythm == 'month' else ''})") from None
    return _starting(metric, day)


def _starting(metric: Metric, day: date) -> date:
    if not is_period_start(day, metric.rhythm):
        first = period_start(day, metric.rhythm)
        what = "a Monday" if metric.rhythm == "week" else "the first of a month"
        raise ValueError(f"{day} is not {what}: {metric.name} is {metric.rhythm}ly, its "
                         f"values are dated by their period's first day ({first})")
    return day


def parse_dimension(metric: Metric, text: str | None) -> tuple[str, str]:
    """`location=LYO-01` as (dimension, value); ("", "") for the total."""
    if not text:
        return "", ""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise ValueError(f"{text!r} is not DIMENSION=VALUE (e.g. location=LYO-01)")
    if name not in (metric.dimensions or ()):
        raise ValueError(f"{metric.name} is not computed per {name} (its dimensions: "
                         f"{', '.join(metric.dimensions or ()) or 'none'})")
    return name, value


def parse_value(text: str, decimal: str = ".", thousands: str = "") -> Decimal:
    cleaned = text.strip().replace(thousands, "") if thousands else text.strip()
    try:
        value = Decimal(cleaned.replace(decimal, ".") if decimal != "." else cleaned)
    except InvalidOperation:
        raise ValueError(f"{text.strip()!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{text.strip()!r} is not a number")
    return value


def record(conn: psycopg.Connection, slug: str, client: Client, metric: str, day: str,
           value: str, *, dimension: str | None = None, by: str | None = None,
           note: str | None = None) -> Point:
    """Record one point (a later value for the same point replaces it; both are kept)."""
    spec = input_metric(client, metric)
    try:
        point = Point(metric, parse_period(spec, day), *parse_dimension(spec, dimension),
                      parse_value(value))
    except ValueError as exc:
        raise ConfigError(f"{metric}: {exc}") from None
    _write(conn, slug, [point], by or who(), "record", note)
    return point


def read_file(path: Path, client: Client, metric: str | None = None) -> list[Point]:
    """Every point of an import file, checked whole; ConfigError naming each bad row."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        opened = open_table(path)
    except FileProblem as exc:
        raise ConfigError(f"{path}: {exc}") from None
    with opened:
        header = [h.strip().lower() for h in opened.header]
        rows = list(opened.rows)
        where = [opened.line_number(i + 1) or i + 2 for i in range(len(rows))]
    columns = {name: header.index(name) for name in header if name}
    date_column = next((c for c in DATE_COLUMNS if c in columns), None)
    missing = [name for name, present in (("metric", "metric" in columns or metric),
                                          ("date", date_column), ("value", "value" in columns))
               if not present]
    if missing:
        raise ConfigError(f"{path}: no column {', '.join(missing)} (its columns: "
                          f"{', '.join(opened.header)})",
                          hint="an import file has metric, date, value and optionally "
                               "dimension and dimension_value columns (or --metric for a file "
                               "of one metric)")
    if not rows:
        raise ConfigError(f"{path}: no rows under the header")

    def cell(row: list[str], name: str) -> str:
        index = columns.get(name)
        return row[index].strip() if index is not None and index < len(row) else ""

    dates = [cell(row, date_column) for row in rows]
    date_format = detect_date_format(dates, client.country)
    decimal, thousands = detect_decimal([cell(row, "value") for row in rows],
                                        opened.dialect.delimiter)
    registry = client.metric_registry()
    problems: list[str] = []
    points: list[Point] = []
    first_row: dict[tuple[str, date, str, str], int] = {}
    for row, line in zip(rows, where, strict=True):
        name = metric or cell(row, "metric")
        try:
            spec = _checked_metric(registry, name)
            day = _read_date(cell(row, date_column), date_format, spec)
            dimension = cell(row, "dimension")
            value_of = cell(row, "dimension_value")
            if bool(dimension) != bool(value_of):
                raise ValueError("give both dimension and dimension_value, or neither (the "
                                 "total)")
            dims = parse_dimension(spec, f"{dimension}={value_of}" if dimension else None)
            point = Point(name, day, *dims, parse_value(cell(row, "value"), decimal, thousands))
        except ValueError as exc:
            problems.append(f"row {line}: {exc}")
            continue
        if point.key in first_row:
            problems.append(f"row {line}: {point.describe()} is already on row "
                            f"{first_row[point.key]} of this file: keep one value per point")
            continue
        first_row[point.key] = line
        points.append(point)
    if problems:
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        raise ConfigError(f"{path}: {len(problems)} row(s) cannot be imported; nothing was "
                          "written:\n  " + "\n  ".join(shown)
                          + (f"\n  ... and {more} more" if more else ""),
                          hint="fix the rows above and import the file again")
    return points


def _checked_metric(registry: dict[str, Metric], name: str) -> Metric:
    if not name:
        raise ValueError("no metric")
    if name not in registry:
        raise ValueError(f"unknown metric {name!r}")
    if registry[name].kind != "input":
        raise ValueError(f"{name} is computed by Goalpost ({registry[name].kind}); only input "
                         "metrics take values")
    return registry[name]


def _read_date(text: str, date_format: str | None, metric: Metric) -> date:
    if not text:
        raise ValueError("no date")
    if metric.rhythm == "month" and len(text) == 7 and text[4] == "-":
        return parse_period(metric, text)
    if date_format is None or not parses(text, date_format):
        raise ValueError(f"{text!r} is not a date like the file's others")
    read = datetime.fromisoformat(text) if date_format == ISO else datetime.strptime(
        text, date_format)
    if read.time() != datetime.min.time():
        raise ValueError(f"{text!r} has a time of day: a point is dated by its day")
    return _starting(metric, read.date())


def import_file(conn: psycopg.Connection, slug: str, client: Client, path: Path, *,
                metric: str | None = None, by: str | None = None,
                note: str | None = None) -> list[Point]:
    """Record every point of the file, in one transaction, or none (see read_file)."""
    points = read_file(path, client, metric)
    _write(conn, slug, points, by or who(), f"import {path.name}", note)
    return points


def _write(conn: psycopg.Connection, slug: str, points: list[Point], by: str, origin: str,
           note: str | None) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO goalpost.metric_points (client, metric, period_start, dimension, "
            "dimension_value, value, recorded_by, origin, note) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(slug, p.metric, p.period_start, p.dimension, p.dimension_value, p.value, by,
              origin, note) for p in points])


def history(conn: psycopg.Connection, slug: str, metric: str | None = None
            ) -> list[dict[str, object]]:
    """Every value entered by hand, newest first per point, with `current` on the point's
    value (the latest)."""
    rows = conn.execute(
        "SELECT metric, period_start, dimension, dimension_value, value, recorded_by, "
        "recorded_at, origin, note, ROW_NUMBER() OVER (PARTITION BY metric, period_start, "
        "dimension, dimension_value ORDER BY recorded_at DESC, id DESC) = 1 AS current "
        "FROM goalpost.metric_points WHERE client = %s AND (%s::text IS NULL OR metric = %s) "
        "ORDER BY metric, period_start, dimension, dimension_value, recorded_at DESC, id DESC",
        (slug, metric, metric)).fetchall()
    names = ("metric", "period_start", "dimension", "dimension_value", "value", "recorded_by",
             "recorded_at", "origin", "note", "current")
    return [dict(zip(names, row, strict=True)) for row in rows]


def newest(conn: psycopg.Connection, slug: str) -> int | None:
    """The id of the client's newest point, if it has any."""
    return conn.execute("SELECT max(id) FROM goalpost.metric_points WHERE client = %s",
                        (slug,)).fetchone()[0]


def unbuilt(conn: psycopg.Connection, slug: str) -> bool:
    """Whether points were entered since the client's last successful build read them."""
    last = newest(conn, slug)
    built = conn.execute("SELECT through FROM goalpost.metric_points_built WHERE client = %s",
                         (slug,)).fetchone()
    return last is not None and (built is None or built[0] < last)


def mark_built(conn: psycopg.Connection, slug: str, through: int | None) -> None:
    """A successful build has read the points up to `through`."""
    if through is None:
        return
    conn.execute("INSERT INTO goalpost.metric_points_built (client, through) VALUES (%s, %s) "
                 "ON CONFLICT (client) DO UPDATE SET through = GREATEST("
                 "goalpost.metric_points_built.through, excluded.through)", (slug, through))
