"""Goal tracking: for each goal of the client's YAML (`goals:`), where the metric stands in
the goal's period, where it is heading by the deadline, and whether that meets the target.

A goal is about the total of a metric that adds up over days (revenue, orders) over a period,
for the client or one location or channel; its target is a value, or a change in % against a
baseline period (see goalpost.registry.models.Goal). A standing goal (every month or quarter)
is tracked for the period that contains the last complete day. Each day:

- actual to date: the metric summed from the period's start to the last complete day;
- forecast at the deadline: actual to date plus the forecast of each remaining day, read from
  the forecast extension's table (`{insights}.forecasts`, daily rows). Days it does not cover
  (no forecasts table yet, or a horizon shorter than the deadline) are projected from the run
  rate: the mean of the same weekday over the last 28 days. `method` says which was used;
- bounds: the forecast's daily 80% and 95% bounds summed over the remaining days, as if the
  days' errors moved together; that is the cautious reading for a total, whose errors come
  mostly from the level being off, not from independent daily noise. For run-rate days the
  bounds come from the run rate's own record here: the quantiles of actual over projected
  totals of the same number of days from every origin of the past year;
- status: on-track when the forecast at the deadline meets the target, at-risk when only the
  optimistic 80% bound does (the upper one; the lower one for a metric whose direction is
  down, such as returns), off-track otherwise; after the deadline, achieved or missed; unknown
  when the data cannot say (no rows for the metric, a baseline period not in the data).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from goalpost.core.metrics.grains import period_start
from goalpost.core.registry.models import Goal
from goalpost.extensions._kpi_tools import (
    KPI_VALUES_ROWS,
    last_complete_day,
    period_end,
    values_frame,
)
from goalpost.extensions.api import Column, Extension, Inputs, JobContext

RUN_RATE_DAYS = 28
BACKTEST_DAYS = 365
MIN_ORIGINS = 8
BOUNDS = {"80": (0.10, 0.90), "95": (0.025, 0.975)}
FORECAST_FIELDS = ("yhat", "yhat_lower_80", "yhat_upper_80", "yhat_lower_95", "yhat_upper_95")

# kpi_daily, plus the forecasts' daily rows when the forecast extension has written any
# (goalpost.rows_if_exists reads nothing when the table does not exist), and a marker row
# saying whether the table exists. The goals themselves come from the client's YAML (part of
# the fingerprint the runner compares, so an edited goal is recomputed).
SQL = """
SELECT 'actual' AS source, metric, grain, dimension, dimension_value, date, value, complete,
       NULL::jsonb AS row
FROM (""" + KPI_VALUES_ROWS + """) AS v
UNION ALL
SELECT 'forecast', j->>'metric', coalesce(j->>'frequency', 'day'), j->>'dimension',
       j->>'dimension_value', (j->>'date')::date, NULL, NULL, j - 'run_id' - 'computed_at'
FROM goalpost.rows_if_exists('{insights}.forecasts') AS j
UNION ALL
SELECT 'forecasts_table', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
WHERE to_regclass('{insights}.forecasts') IS NOT NULL
ORDER BY 1, 2, 3, 4, 5, 6
"""


def forecast_frame(data: pd.DataFrame, grain: str = "day") -> pd.DataFrame:
    """The forecasts' rows of one frequency (day, week, month): metric, dimension,
    dimension_value, date and the fields."""
    rows = data.loc[(data["source"] == "forecast") & (data["grain"] == grain), "row"]
    table = pd.DataFrame([dict(row) for row in rows],
                         columns=["metric", "dimension", "dimension_value", "date",
                                  *FORECAST_FIELDS])
    table["date"] = pd.to_datetime(table["date"])
    for name in FORECAST_FIELDS:
        table[name] = pd.to_numeric(table[name], errors="coerce")
    return table


def daily_series(frame: pd.DataFrame, metric: str, dimension: str, value: str
                 ) -> pd.Series:
    """The metric's daily values for one dimension value, by date."""
    rows = frame[(frame["metric"] == metric) & (frame["dimension"] == dimension)
                 & (frame["dimension_value"] == value)]
    return rows.groupby("date")["value"].sum().sort_index()


def run_rate(history: pd.Series, as_of: pd.Timestamp, dates: pd.DatetimeIndex
             ) -> dict[str, float]:
    """Projection of the days `dates` from the same weekdays of the last 28 days, with
    bounds from how such projections fared over the past year (NaN when too short)."""
    days = pd.date_range(history.index.min(), as_of, freq="D")
    y = history.reindex(days, fill_value=0.0).to_numpy(dtype=float)
    weekday = days.dayofweek.to_numpy()
    if len(y) < RUN_RATE_DAYS:
        return dict.fromkeys(("point", *(f"{s}_{b}" for b in BOUNDS for s in ("lower",
                                                                            "upper"))),
                             math.nan)
    # means[i, w]: mean of weekday w over the 28 days ending at day i (4 of each weekday).
    means = np.full((len(y), 7), np.nan)
    for w in range(7):
        on_w = np.where(weekday == w, y, 0.0)
        window = np.convolve(on_w, np.ones(RUN_RATE_DAYS), mode="full")[:len(y)]
        means[RUN_RATE_DAYS - 1:, w] = window[RUN_RATE_DAYS - 1:] / 4
    horizon = len(dates)
    counts = np.bincount(dates.dayofweek, minlength=7)
    point = float(means[-1] @ counts)
    result = {"point": point}
    # Past origins i (with 28 days behind and `horizon` days ahead): actual over projected.
    cumulative = np.concatenate([[0.0], np.cumsum(y)])
    origins = np.arange(max(RUN_RATE_DAYS - 1, len(y) - 1 - horizon - BACKTEST_DAYS),
                        len(y) - horizon)
    ratios = []
    for i in origins:
        ahead = (weekday[i] + 1 + np.arange(horizon)) % 7
        projected = float(means[i] @ np.bincount(ahead, minlength=7))
        if projected > 0:
            ratios.append((cumulative[i + 1 + horizon] - cumulative[i + 1]) / projected)
    for name, (low, high) in BOUNDS.items():
        if len(ratios) >= MIN_ORIGINS:
            result[f"lower_{name}"] = point * float(np.quantile(ratios, low))
            result[f"upper_{name}"] = point * float(np.quantile(ratios, high))
        else:
            result[f"lower_{name}"] = result[f"upper_{name}"] = math.nan
    return result


def projection(series: pd.Series, forecasts: pd.DataFrame, as_of: pd.Timestamp,
               dates: pd.DatetimeIndex, has_table: bool) -> tuple[dict[str, float], str, str]:
    """The remaining days' total with bounds, the method and a note saying where from."""
    covered = forecasts.set_index("date").reindex(dates)
    known = covered["yhat"].notna()
    missing = dates[~known.to_numpy()]
    total = {"point": float(covered.loc[known, "yhat"].sum())}
    for name in BOUNDS:
        total[f"lower_{name}"] = float(covered.loc[known, f"yhat_lower_{name}"].sum(
            min_count=int(known.sum())))
        total[f"upper_{name}"] = float(covered.loc[known, f"yhat_upper_{name}"].sum(
            min_count=int(known.sum())))
    if len(missing) == 0:
        return total, "forecast", ""
    rate = run_rate(series, as_of, missing)
    total = {key: total[key] + rate[key] for key in total}
    rate_note = f"weekday run rate of the last {RUN_RATE_DAYS} days"
    if not known.any():
        why = ("no forecasts table yet" if not has_table else
               "no forecast for this metric and dimension")
        return total, "run_rate", f"{why}: projected from the {rate_note}"
    last = covered.index[known.to_numpy()].max().date()
    return total, "forecast+run_rate", (f"the forecast ends on {last}: later days from the "
                                        f"{rate_note}")


def meets(value: float, target: float, direction: str) -> bool:
    return value <= target if direction == "down" else value >= target


def track(goal: Goal, series: pd.Series, forecasts: pd.DataFrame, as_of: pd.Timestamp,
          direction: str, has_table: bool) -> dict[str, object]:
    """One goal's row as of the last complete day: a total over the period (a target, a
    change against a baseline, or a bound on the total of a metric that adds up: `max` reads
    as a direction down, `min` up)."""
    start, deadline = (pd.Timestamp(d) for d in goal.window(as_of.date()))
    days_total = (deadline - start).days + 1
    row: dict[str, object] = {
        "goal": goal.key(), "metric": goal.metric, "dimension": goal.dimension or "all",
        "dimension_value": goal.value or "all", "period_start": start.date(),
        "deadline": deadline.date(), "as_of": as_of.date(), "days_total": days_total,
        "days_elapsed": int(min(max((as_of - start).days + 1, 0), days_total)),
        "change_pct": goal.change_pct, "status": "unknown", "method": None, "note": "",
        "target": goal.bound[1] if goal.bound else goal.target, "grain": "day",
        "bound": goal.bound[0] if goal.bound else None}
    if series.empty:
        row["note"] = f"no data for {goal.metric} at {row['dimension_value']}"
        return row
    first = series.index.min()
    baseline = goal.baseline_window(as_of.date())
    if baseline is not None:
        base_start, base_end = (pd.Timestamp(d) for d in baseline)
        row.update(baseline_start=base_start.date(), baseline_end=base_end.date())
        if base_start < first or base_end > as_of:
            row["note"] = (f"the baseline period ({base_start.date()} to {base_end.date()}) "
                           f"is not all in the data ({first.date()} to {as_of.date()})")
            return row
        row["baseline_value"] = float(series[base_start:base_end].sum())
        row["target"] = row["baseline_value"] * (1 + goal.change_pct / 100)
    target = float(row["target"])
    actual = float(series[start:min(as_of, deadline)].sum())
    row["actual_to_date"] = actual
    row["progress_pct"] = actual / target * 100 if target else math.nan
    if as_of >= deadline:
        row.update(forecast_remaining=0.0, forecast_at_deadline=actual, method="final",
                   status="achieved" if meets(actual, target, direction) else "missed",
                   **{f"forecast_{side}_{b}": actual for b in BOUNDS
                      for side in ("lower", "upper")})
        return row
    remaining = pd.date_range(max(start, as_of + pd.Timedelta(days=1)), deadline, freq="D")
    total, method, note = projection(series, forecasts, as_of, remaining, has_table)
    row.update(method=method, note=note, forecast_remaining=total["point"],
               forecast_at_deadline=actual + total["point"],
               needed_per_day=(target - actual) / len(remaining),
               **{f"forecast_{side}_{b}": actual + total[f"{side}_{b}"] for b in BOUNDS
                  for side in ("lower", "upper")})
    if as_of < start:
        row["note"] = (f"starts on {start.date()}; " + note).rstrip("; ")
    point = actual + total["point"]
    if not math.isfinite(point):
        row["note"] = (note + "; " if note else "") + "too little history to project"
        return row
    hopeful = row["forecast_lower_80" if direction == "down" else "forecast_upper_80"]
    if meets(point, target, direction):
        row["status"] = "on-track"
    elif math.isfinite(hopeful) and meets(hopeful, target, direction):
        row["status"] = "at-risk"
    else:
        row["status"] = "off-track"
    return row


def period_series(actuals: pd.DataFrame, metric: str, grain: str, dimension: str,
                  value: str, as_of: pd.Timestamp) -> pd.Series:
    """The metric's complete periods of `grain` ended by `as_of`, by their first day."""
    rows = actuals[(actuals["metric"] == metric) & (actuals["grain"] == grain)
                   & (actuals["dimension"] == dimension) & (actuals["dimension_value"] == value)
                   & actuals["complete"]]
    ends = np.array([period_end(d, grain) <= as_of for d in rows["date"]], dtype=bool)
    return rows.loc[ends].set_index("date")["value"].sort_index()


def track_level(goal: Goal, values: pd.Series, forecasts: pd.DataFrame, as_of: pd.Timestamp,
                grain: str, has_table: bool) -> dict[str, object]:
    """A bound on a metric that does not add up (a ratio, an average: CAC under 12): its
    value in the period of its rhythm that contains the deadline, against `max` or `min`.
    Before that period is over: the latest complete period's value (actual_to_date) and the
    forecast of the deadline's period with its 80% and 95% bounds."""
    kind, limit = goal.bound  # type: ignore[misc]
    start, deadline = (pd.Timestamp(d) for d in goal.window(as_of.date()))
    last = pd.Timestamp(period_start(deadline.date(), grain))
    direction = "down" if kind == "max" else "up"
    row: dict[str, object] = {
        "goal": goal.key(), "metric": goal.metric, "dimension": goal.dimension or "all",
        "dimension_value": goal.value or "all", "period_start": start.date(),
        "deadline": deadline.date(), "as_of": as_of.date(),
        "days_total": (deadline - start).days + 1,
        "days_elapsed": int(min(max((as_of - start).days + 1, 0), (deadline - start).days + 1)),
        "target": limit, "bound": kind, "grain": grain, "status": "unknown", "method": None,
        "note": ""}
    values = values.dropna()
    if values.empty:
        row["note"] = f"no complete {grain} of {goal.metric} at {row['dimension_value']}"
        return row
    row["actual_to_date"] = float(values.iloc[-1])
    row["progress_pct"] = float(values.iloc[-1]) / limit * 100 if limit else math.nan
    if period_end(last, grain) <= as_of:
        if last not in values.index:
            row["note"] = f"no value of {goal.metric} for the {grain} of {last.date()}"
            return row
        final = float(values[last])
        row.update(forecast_at_deadline=final, method="final",
                   status="achieved" if meets(final, limit, direction) else "missed",
                   note=f"its value for the {grain} of {last.date()}",
                   **{f"forecast_{side}_{b}": final for b in BOUNDS
                      for side in ("lower", "upper")})
        return row
    found = forecasts[forecasts["date"] == last]
    if found.empty or not math.isfinite(float(found["yhat"].iloc[0])):
        why = "no forecasts table yet" if not has_table else (
            f"no forecast of {goal.metric} by {grain} for {last.date()}")
        point = float(values.iloc[-1])
        row.update(method="last_value", forecast_at_deadline=point,
                   note=f"{why}: its latest value ({values.index[-1].date()}) stands for the "
                        "deadline's",
                   status="on-track" if meets(point, limit, direction) else "off-track")
        return row
    forecast = found.iloc[0]
    row.update(method="forecast", forecast_at_deadline=float(forecast["yhat"]),
               note=f"the forecast of the {grain} of {last.date()}",
               **{f"forecast_{side}_{b}": float(forecast[f"yhat_{side}_{b}"])
                  for b in BOUNDS for side in ("lower", "upper")})
    hopeful = float(forecast["yhat_lower_80" if direction == "down" else "yhat_upper_80"])
    if meets(float(forecast["yhat"]), limit, direction):
        row["status"] = "on-track"
    elif math.isfinite(hopeful) and meets(hopeful, limit, direction):
        row["status"] = "at-risk"
    else:
        row["status"] = "off-track"
    return row


def run(job: JobContext) -> pd.DataFrame:
    columns = [c.name for c in EXTENSION.columns]
    data = job.data
    if "grain" not in data:  # kpi_daily's shape
        data = data.assign(grain=np.where(data["source"] == "actual", "day", None),
                           complete=None)
    actuals = values_frame(data[data["source"] == "actual"])
    as_of = last_complete_day(actuals.loc[actuals["grain"] == "day", "date"], job.now,
                              job.client.timezone, job.last_complete)
    if not job.client.goals or as_of is None:
        return pd.DataFrame(columns=columns)
    has_table = bool((data["source"] == "forecasts_table").any())
    registry = job.client.metric_registry()
    actuals = actuals[actuals["date"] <= as_of]
    # A dimension with one value is the total: its forecasts are the total's (DISTINCT_SERIES).
    daily = actuals[actuals["grain"] == "day"]
    values = daily[daily["dimension"] != "all"].groupby("dimension")["dimension_value"]
    single = {d: set(v) for d, v in values.unique().items() if len(v) == 1}
    rows = []
    for goal in job.client.goals:
        dimension, value = goal.dimension or "all", goal.value or "all"
        spec = registry[goal.metric]
        grain = spec.rhythm
        forecast_of = ("all", "all") if value in single.get(dimension, ()) else (dimension, value)
        table = forecast_frame(data, grain)
        mine = table[(table["metric"] == goal.metric) & (table["dimension"] == forecast_of[0])
                     & (table["dimension_value"] == forecast_of[1])]
        if goal.bound is not None and spec.aggregation != "sum":
            series = period_series(actuals, goal.metric, grain, dimension, value, as_of)
            rows.append(track_level(goal, series, mine, as_of, grain, has_table))
            continue
        if grain == "day":
            series = daily_series(daily, goal.metric, dimension, value)
        else:
            series = period_series(actuals, goal.metric, grain, dimension, value, as_of)
        direction = spec.direction if goal.bound is None else (
            "down" if goal.bound[0] == "max" else "up")
        row = track(goal, series, mine, as_of, direction, has_table)
        row["grain"] = grain
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


EXTENSION = Extension(
    name="goals",
    description="each goal of the client's YAML: actual to date, forecast at the deadline "
                "and on-track, at-risk or off-track",
    version="2",
    table="goal_progress",
    columns=(
        Column("goal", "text", "the goal's name, or its metric, value and period"),
        Column("metric", "text"),
        Column("dimension", "text", "all, location or channel"),
        Column("dimension_value", "text"),
        Column("period_start", "date"), Column("deadline", "date", "the period's last day"),
        Column("as_of", "date", "the last complete day of data"),
        Column("days_elapsed", "integer"), Column("days_total", "integer"),
        Column("baseline_start", "date"), Column("baseline_end", "date"),
        Column("baseline_value", "number", "the metric's total over the baseline period"),
        Column("change_pct", "number"),
        Column("bound", "text", "max or min for a bound; empty for a target to reach"),
        Column("grain", "text", "the metric's rhythm: day, week or month"),
        Column("target", "number", "the total to reach by the deadline, or the bound: the "
                                   "period's total for a metric that adds up, else its "
                                   "value in the deadline's period"),
        Column("actual_to_date", "number", "the total so far; for a bound on a metric that "
                                           "does not add up, its latest complete period's "
                                           "value"),
        Column("progress_pct", "number", "actual to date over target"),
        Column("needed_per_day", "number", "what each remaining day must bring on average"),
        Column("forecast_remaining", "number", "the remaining days' projected total"),
        Column("forecast_at_deadline", "number", "actual to date plus forecast_remaining"),
        Column("forecast_lower_80", "number"), Column("forecast_upper_80", "number"),
        Column("forecast_lower_95", "number"), Column("forecast_upper_95", "number"),
        Column("status", "text", "on-track, at-risk, off-track, achieved, missed or unknown"),
        Column("method", "text", "forecast, run_rate, forecast+run_rate, last_value or final"),
        Column("note", "text", "why a run rate was used, or why the status is unknown"),
    ),
    inputs=Inputs(sql=SQL),
    key=("goal",),
    run=run,
    builtin=True,
)
