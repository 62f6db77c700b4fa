"""Built-in extension: forecasts of every metric per dimension value, at its grain.

Reads every metric at its grain (kpi_values, through _kpi_tools' shared loader) and writes
`<slug>_insights.forecasts`: per metric, dimension and dimension value, the next `horizon_days`
days and `horizon_months` months, with 80% and 95% intervals, the model chosen by a rolling-
origin backtest (goalpost.forecasting) and its backtest sMAPE and MASE. Series are forecast in
parallel, one process per core, when there is enough work.

- Daily series run from the series' first day to the last day in kpi_daily. A day missing
  from kpi_daily had no orders: it counts as 0 for additive metrics (sum, count_distinct)
  and is interpolated for the others (a ratio of nothing is undefined), so a ratio's
  forecast is its value on a trading day. Seasonal periods 7 and 365.25 (the forecasting
  core keeps those the data shows: the year needs two of them).
- Monthly series are built from the days, complete months only (a month's row is the
  whole month's forecast, the current month included when it is not over): sum metrics
  summed, `last` metrics their month-end value, and a ratio metric that some sum metric's
  drivers define as a product (revenue = orders * average_ticket) recomputed from those
  parts, average_ticket = revenue / orders, since a month's ratio is not the mean of its
  days'. Other ratios, averages and distinct counts are forecast daily only. Period 12.
- A metric whose rhythm is the week or the month (marketing spend from a monthly sheet, staff
  hours entered each week, a formula over them such as cac) is forecast from its own
  complete periods only, never spread over days: period 12 for months, 52.18 for weeks; a
  period without a value is interpolated. Horizons horizon_months and horizon_weeks.
- Whatever the grain, a forecast is published only if it backtests at least as well as
  seasonal naive (naive without a cycle); otherwise seasonal naive is, and the row's `note`
  says why. With fewer than two seasons of history (a year of months) no trend is
  extrapolated: one autumn's peak is not growth. Every row carries the benchmark's backtest
  beside the published one's.
- Prophet costs about as much as all the other models together, and only beats them by
  modelling the yearly season and holidays, which takes two years of history: it is a
  candidate only for daily series with at least `prophet_min_days` days (default 730) and
  dimensions in `prophet_dimensions` (default: the totals, `all`), and only when `models`
  includes it (it does by default).

Settings (`extension_settings: {forecast: {...}}` in the client's YAML): horizon_days,
horizon_months, horizon_weeks, models, backtest_origins, prophet_min_days, prophet_dimensions,
dimensions (which of all/location/channel to forecast; default every one), workers (default:
one process per core when the work is long enough to pay for starting them, see
workers_for), and per_metric ({revenue: {horizon_days: 120, horizon_months: 18}}).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from goalpost.core.errors import ConfigError
from goalpost.extensions._kpi_tools import (
    GRAIN_FREQUENCY,
    KPI_VALUES_SQL,
    daily_rows,
    periodic,
    values_frame,
)
from goalpost.extensions.api import Column, Extension, Inputs, JobContext
from goalpost.extensions.forecasting import (
    GUARD_ORIGINS,
    MODELS,
    Forecast,
    ProphetInput,
    forecast_series,
    map_parallel,
)

LEVELS = (80, 95)
DEFAULTS: dict[str, Any] = {
    "horizon_days": 90,
    "horizon_months": 12,
    "horizon_weeks": 26,
    "models": list(MODELS),
    "backtest_origins": 2,
    "prophet_min_days": 730,
    "prophet_dimensions": ["all"],
    "dimensions": None,
    "workers": None,
    "per_metric": {},
}
ADDITIVE = {"sum", "count_distinct"}  # a missing day is a zero
DAILY_PERIODS = (7.0, 365.25)  # the week and the year, in days
MONTHLY_PERIODS = (12.0,)
PERIODS = {"week": (52.18,), "month": MONTHLY_PERIODS}  # a periodic metric's cycle, in periods
HORIZON_KEY = {"day": "horizon_days", "week": "horizon_weeks", "month": "horizon_months"}


@dataclass(frozen=True)
class Settings:
    horizon_days: int
    horizon_months: int
    horizon_weeks: int
    models: tuple[str, ...]
    backtest_origins: int
    prophet_min_days: int
    prophet_dimensions: tuple[str, ...]
    dimensions: tuple[str, ...] | None
    workers: int | None
    per_metric: dict[str, dict[str, int]]

    def horizon(self, metric: str, frequency: str) -> int:
        key = HORIZON_KEY[frequency]
        return int(self.per_metric.get(metric, {}).get(key, getattr(self, key)))


def settings(raw: dict[str, Any]) -> Settings:
    """The extension's settings with defaults; a clear error for a wrong one."""
    where = "extension_settings.forecast"
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}",
                          hint=f"the settings are {', '.join(DEFAULTS)}")
    merged = {**DEFAULTS, **raw}

    def count(key: str, value: Any, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{where}.{key} must be a whole number of at least {minimum} "
                              f"(got {value!r})")
        return value

    def names(key: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}.{key} must be a list of names (got {value!r})")
        return tuple(value)

    models = names("models", merged["models"])
    bad = sorted(set(models) - set(MODELS))
    if bad or not models:
        raise ConfigError(f"{where}.models: unknown or no model(s) {', '.join(bad)}",
                          hint=f"choose among {', '.join(MODELS)}")
    per_metric = merged["per_metric"]
    if not isinstance(per_metric, dict):
        raise ConfigError(f"{where}.per_metric must map metrics to their horizons, e.g. "
                          "{revenue: {horizon_days: 120}}")
    for metric, values in per_metric.items():
        if not isinstance(values, dict) or set(values) - set(HORIZON_KEY.values()):
            raise ConfigError(f"{where}.per_metric.{metric} may only set horizon_days, "
                              f"horizon_weeks and horizon_months (got {values!r})")
        for key, value in values.items():
            count(f"per_metric.{metric}.{key}", value)
    return Settings(
        horizon_days=count("horizon_days", merged["horizon_days"]),
        horizon_months=count("horizon_months", merged["horizon_months"]),
        horizon_weeks=count("horizon_weeks", merged["horizon_weeks"]),
        models=models,
        backtest_origins=count("backtest_origins", merged["backtest_origins"], 0),
        prophet_min_days=count("prophet_min_days", merged["prophet_min_days"]),
        prophet_dimensions=names("prophet_dimensions", merged["prophet_dimensions"]),
        dimensions=None if merged["dimensions"] is None
        else names("dimensions", merged["dimensions"]),
        workers=None if merged["workers"] is None else count("workers", merged["workers"]),
        per_metric=per_metric,
    )


@dataclass(frozen=True)
class Job:
    """One series to forecast (picklable: it goes to a worker process)."""

    metric: str
    dimension: str
    dimension_value: str
    frequency: str  # day, week or month
    start: pd.Timestamp  # the first forecast date (a period's first day for weeks, months)
    values: np.ndarray
    periods: tuple[float, ...]
    horizon: int
    models: tuple[str, ...]
    origins: int
    prophet: ProphetInput | None


def _run_job(job: Job) -> Forecast:
    return forecast_series(job.values, period=job.periods, horizon=job.horizon,
                           models=job.models, levels=LEVELS, origins=job.origins,
                           prophet=job.prophet)


def _ratio_parts(registry: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Ratio metrics that a sum metric's drivers define as a product with another sum
    metric: ratio -> (numerator, denominator), e.g. average_ticket -> (revenue, orders)."""
    found: dict[str, tuple[str, str]] = {}
    for name, metric in registry.items():
        drivers = metric.drivers
        if metric.aggregation != "sum" or drivers is None or len(drivers.parts) != 2:
            continue
        a, b = drivers.parts
        if drivers.formula.replace(" ", "") not in (f"{a}*{b}", f"{b}*{a}"):
            continue
        for ratio, other in ((a, b), (b, a)):
            if (ratio in registry and other in registry
                    and registry[ratio].aggregation == "ratio"
                    and registry[other].aggregation == "sum"):
                found.setdefault(ratio, (name, other))
    return found


def _daily(frame: pd.DataFrame, end: pd.Timestamp, additive: bool) -> pd.Series:
    """One series' days from its first to `end`, gaps filled (see the module docstring)."""
    series = frame.set_index("date")["value"]
    days = pd.date_range(series.index.min(), end, freq="D")
    series = series.reindex(days)
    if additive:
        return series.fillna(0.0)
    return series.interpolate(limit_direction="both")


def _complete_months(daily: pd.Series, how: str) -> pd.Series:
    """Monthly totals (or month-end values) of the months the days cover entirely."""
    grouped = daily.resample("MS")
    months = grouped.sum() if how == "sum" else grouped.last()
    counts = grouped.size()
    full = counts == months.index.days_in_month
    return months[full.to_numpy()]


def build_jobs(data: pd.DataFrame, registry: dict[str, Any], options: Settings,
               country: str | None) -> list[Job]:
    """Every series to forecast, daily then monthly, in a stable order."""
    if data.empty:
        return []
    data = data.assign(date=pd.to_datetime(data["date"]),
                       value=pd.to_numeric(data["value"], errors="coerce").astype(float))
    data = data.dropna(subset=["value"])
    if options.dimensions is not None:
        data = data[data["dimension"].isin(options.dimensions)]
    if data.empty:
        return []
    end = data["date"].max()
    parts = _ratio_parts(registry)
    daily: dict[tuple[str, str, str], pd.Series] = {}
    jobs: list[Job] = []
    for (metric, dimension, value), frame in data.groupby(
            ["metric", "dimension", "dimension_value"], sort=True):
        spec = registry.get(metric)
        aggregation = spec.aggregation if spec is not None else "ratio"
        series = _daily(frame, end, aggregation in ADDITIVE)
        daily[(metric, dimension, value)] = series
        prophet = None
        if ("prophet" in options.models and dimension in options.prophet_dimensions
                and len(series) >= options.prophet_min_days):
            prophet = ProphetInput(series.index, country)
        jobs.append(Job(metric, dimension, value, "day", end + pd.Timedelta(days=1),
                        series.to_numpy(float), DAILY_PERIODS, options.horizon(metric, "day"),
                        options.models, options.backtest_origins, prophet))
    monthly_models = tuple(m for m in options.models if m != "prophet") or ("seasonal_naive",)
    for (metric, dimension, value), series in daily.items():
        spec = registry.get(metric)
        aggregation = spec.aggregation if spec is not None else None
        if aggregation in ("sum", "last"):
            months = _complete_months(series, "sum" if aggregation == "sum" else "last")
        elif metric in parts:
            numerator = daily.get((parts[metric][0], dimension, value))
            denominator = daily.get((parts[metric][1], dimension, value))
            if numerator is None or denominator is None:
                continue
            top, bottom = (_complete_months(s, "sum") for s in (numerator, denominator))
            ratio = (top / bottom.where(bottom != 0)).dropna()
            months = ratio
        else:
            continue
        if months.empty:
            continue
        first = months.index.max() + pd.offsets.MonthBegin(1)
        jobs.append(Job(metric, dimension, value, "month", first, months.to_numpy(float),
                        MONTHLY_PERIODS,
                        options.horizon(metric, "month"), monthly_models,
                        options.backtest_origins, None))
    return jobs


def periodic_jobs(frame: pd.DataFrame, registry: dict[str, Any],
                  options: Settings) -> list[Job]:
    """The series of the metrics whose rhythm is the week or the month, at their rhythm (a
    values_frame's complete periods), in a stable order."""
    monthly_models = tuple(m for m in options.models if m != "prophet") or ("seasonal_naive",)
    jobs = []
    for metric, grain, dimension, value, series in periodic(frame, registry, None):
        if options.dimensions is not None and dimension not in options.dimensions:
            continue
        filled = series.interpolate(limit_direction="both")
        if filled.isna().all():
            continue
        first = filled.index.max() + pd.tseries.frequencies.to_offset(GRAIN_FREQUENCY[grain])
        jobs.append(Job(metric, dimension, value, grain, first, filled.to_numpy(float),
                        PERIODS[grain], options.horizon(metric, grain), monthly_models,
                        options.backtest_origins, None))
    return jobs


def _rows(job: Job, result: Forecast) -> pd.DataFrame:
    dates = pd.date_range(job.start, periods=job.horizon,
                          freq=GRAIN_FREQUENCY.get(job.frequency, "D"))
    columns: dict[str, Any] = {
        "metric": job.metric, "dimension": job.dimension,
        "dimension_value": job.dimension_value, "frequency": job.frequency,
        "date": dates.date, "yhat": result.mean,
    }
    for level in LEVELS:
        columns[f"yhat_lower_{level}"], columns[f"yhat_upper_{level}"] = result.bounds[level]
    missing = float("nan")  # no backtest (a short or constant series): NULL in the table
    def number(value: float | None) -> float:
        return missing if value is None else value

    columns.update(model=result.model, backtest_smape=number(result.backtest_smape),
                   backtest_mase=number(result.backtest_mase),
                   benchmark=result.benchmark,
                   benchmark_smape=number(result.benchmark_smape),
                   benchmark_mase=number(result.benchmark_mase), note=result.note,
                   history_points=result.history_points)
    return pd.DataFrame(columns)


# Measured here (2 cores): a backtest round of the statsmodels candidates on a two-year daily
# series costs about 0.07 s, a Prophet fit about 0.3 s, and starting a worker process (which
# imports pandas and statsmodels afresh) about 5 s.
ROUND_SECONDS, PROPHET_SECONDS, WORKER_START_SECONDS = 0.07, 0.3, 5.0


def estimated_seconds(jobs: list[Job]) -> float:
    """Roughly how long the jobs take in one process."""
    total = 0.0
    for job in jobs:
        rounds = max(job.origins, GUARD_ORIGINS) + 1
        total += rounds * ROUND_SECONDS * (0.3 + len(job.values) / 730)
        if job.prophet is not None:
            total += rounds * PROPHET_SECONDS
    return total


def workers_for(jobs: list[Job], setting: int | None) -> int:
    """The `workers` setting, else one process per core when that pays for starting them."""
    if setting is not None:
        return setting
    cores = os.cpu_count() or 1
    seconds = estimated_seconds(jobs)
    return cores if cores > 1 and seconds / cores + WORKER_START_SECONDS < seconds else 1


def run(job: JobContext) -> pd.DataFrame:
    options = settings(job.settings)
    frame = values_frame(job.data)
    registry = job.client.metric_registry()
    jobs = (build_jobs(daily_rows(frame), registry, options, job.client.country)
            + periodic_jobs(frame, registry, options))
    names = [c.name for c in COLUMNS]
    if not jobs:
        return pd.DataFrame(columns=names)
    # The slowest series (Prophet's, the longest) first, so no worker is left with them last;
    # results come back in the jobs' order whatever the number of workers.
    order = sorted(range(len(jobs)), key=lambda i: (jobs[i].prophet is None,
                                                    -len(jobs[i].values), i))
    results = map_parallel(_run_job, [jobs[i] for i in order],
                           workers_for(jobs, options.workers))
    by_job = dict(zip(order, results, strict=True))
    frames = [_rows(jobs[i], by_job[i]) for i in range(len(jobs))]
    return pd.concat(frames, ignore_index=True)[names]


COLUMNS = (
    Column("metric", "text"),
    Column("dimension", "text", "all, location or channel"),
    Column("dimension_value", "text"),
    Column("frequency", "text", "day, week or month"),
    Column("date", "date", "the day, or the week's or month's first day"),
    Column("yhat", "number", "the forecast (a month's total for summed metrics)"),
    Column("yhat_lower_80", "number"),
    Column("yhat_upper_80", "number"),
    Column("yhat_lower_95", "number"),
    Column("yhat_upper_95", "number"),
    Column("model", "text", "the published model: the backtest's choice, combination(members), "
           "or the benchmark when the choice backtested worse"),
    Column("backtest_smape", "number", "the published model's sMAPE on the backtest"),
    Column("backtest_mase", "number", "the published model's MASE on the backtest"),
    Column("benchmark", "text", "seasonal_naive (naive for a series without a cycle)"),
    Column("benchmark_smape", "number", "the benchmark's sMAPE on the same backtest"),
    Column("benchmark_mase", "number", "the benchmark's MASE on the same backtest"),
    Column("note", "text", "why the benchmark was published instead of the best model"),
    Column("history_points", "integer", "days, weeks or months forecast from"),
)

EXTENSION = Extension(
    name="forecast",
    description="Forecasts of every metric per dimension value at its grain (daily metrics "
                "also by month), with 80% and 95% intervals, the backtest error of the "
                "published model and of the seasonal-naive benchmark it must beat",
    version="3",
    table="forecasts",
    columns=COLUMNS,
    inputs=Inputs(sql=KPI_VALUES_SQL),
    key=("metric", "dimension", "dimension_value", "frequency", "date"),
    run=run,
    builtin=True,
)
