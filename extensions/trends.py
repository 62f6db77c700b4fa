"""Trend tests: is each metric going up or down, beyond noise? (Mann-Kendall, pymannkendall)

The test runs on weekly values, never daily ones: a week holds one of each weekday, so the
weekly cycle is gone. A daily metric's weeks are its kpi_values at the week's grain (a week's
ratio from the week's parts, its distinct customers over the week); where the marts have only
kpi_daily, sum metrics are summed over the week, others averaged over its days. A weekly
metric is tested on its weeks, a monthly one on its months (the yearly cycle then 12 months).
Only complete periods inside the series' data count.

With two years of weeks or more, the seasonal Mann-Kendall test (period 52) compares each
week of the year with the same week in other years, so the yearly cycle (a bakery's summer
holidays, Christmas) cannot pass for a trend; its Sen slope is per year and is reported per
week. With less, the last `weeks` weeks (default 52) go through the Hamed-Rao modified test,
which widens the variance for autocorrelated weeks (never narrowing it below that of
independent weeks: with negative autocorrelations the correction can even turn negative); a
yearly cycle can still tilt it, which the `test` column says. q-values (Benjamini-Hochberg)
are over the whole table, and `trend` is increasing or decreasing only when the q-value is
under `alpha`; `reading` turns it into improving or worsening with the metric's direction.

Settings (extension_settings.trends): weeks (52), min_weeks (12), dimensions ([location]),
alpha (0.05).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pymannkendall as mk

from goalpost.extensions._kpi_tools import (
    KPI_VALUES_SQL,
    benjamini_hochberg,
    groups,
    last_complete_day,
    periodic,
    settings_of,
    values_frame,
)
from goalpost.extensions.api import Column, Extension, Inputs, JobContext

DEFAULTS = {"weeks": 52, "min_weeks": 12, "dimensions": ["location"], "alpha": 0.05}
SEASON = 52  # weeks in a yearly cycle
SUMMED = ("sum",)


def weekly(daily: pd.Series, summed: bool, end: pd.Timestamp) -> pd.Series:
    """Complete Monday-to-Sunday weeks of a daily series, from its first date to `end`
    (days without a row count as zero for sums and are skipped for averages)."""
    daily = daily.dropna()
    if daily.empty:
        return pd.Series(dtype=float)
    days = pd.date_range(daily.index.min(), end, freq="D")
    daily = daily.reindex(days, fill_value=0.0) if summed else daily.reindex(days)
    weeks = daily.resample("W-SUN")
    values = weeks.sum(min_count=1) if summed else weeks.mean()
    complete = weeks.size() == 7
    values.index = values.index - pd.Timedelta(days=6)  # labelled by their Monday
    return values[complete.to_numpy()].dropna()


def trend_test(values: pd.Series, weeks: int, season: int = SEASON,
               period_days: int = 7) -> dict[str, object]:
    """Mann-Kendall on weekly (or monthly: season 12) values: seasonal with two years or
    more, else Hamed-Rao on the last `weeks` periods."""
    if len(values) >= 2 * season:
        values = values.iloc[-3 * season:]
        result = mk.seasonal_test(values.to_numpy(), period=season)
        test, slope = "seasonal", float(result.slope) / season
    else:
        values = values.iloc[-weeks:]
        with np.errstate(invalid="ignore"):
            result = mk.hamed_rao_modification_test(values.to_numpy())
        plain = mk.original_test(values.to_numpy())
        # The correction may only widen the variance: with negative autocorrelations it
        # can shrink it, even below zero (NaN p-value); independent weeks are the floor.
        if not (np.isfinite(result.var_s) and result.var_s >= plain.var_s):
            result = plain
        test, slope = "hamed_rao", float(result.slope)
    level = float(np.median(values))
    last = (values.index[-1] + pd.Timedelta(days=6) if period_days == 7
            else values.index[-1] + pd.offsets.MonthEnd(0))
    return {
        "test": test, "start": values.index[0].date(), "end": last.date(), "n": len(values),
        "p_value": float(result.p), "tau": float(result.Tau), "z": float(result.z),
        "slope_per_week": slope,
        "slope_pct_per_year": slope * season / abs(level) * 100 if level else math.nan,
    }


def reading(trend: str, direction: str) -> str:
    if trend == "no trend":
        return "stable"
    if direction == "neutral":
        return "changing"
    return "improving" if (trend == "increasing") == (direction == "up") else "worsening"


def weeks_of(rows: pd.DataFrame, end: pd.Timestamp) -> pd.Series:
    """A daily metric's complete weeks from kpi_values (week grain), by their Monday."""
    weeks = rows[(rows["grain"] == "week") & rows["complete"]
                 & (rows["date"] + pd.Timedelta(days=6) <= end)]
    return weeks.set_index("date")["value"].sort_index().dropna()


def run(job: JobContext) -> pd.DataFrame:
    settings = settings_of("trends", job.settings, DEFAULTS, job.client)
    columns = [c.name for c in EXTENSION.columns]
    frame = values_frame(job.data)
    end = last_complete_day(frame.loc[frame["grain"] == "day", "date"], job.now,
                            job.client.timezone, job.last_complete)
    if end is None:
        return pd.DataFrame(columns=columns)
    registry = job.client.metric_registry()
    rows = []
    for dimension, value, group in groups(frame[frame["date"] <= end], settings["dimensions"]):
        for metric, series in group.groupby("metric"):
            spec = registry.get(metric)
            rhythm = spec.rhythm if spec is not None else "day"
            summed = spec is not None and spec.aggregation in SUMMED
            frequency, season, days, how = "week", SEASON, 7, "sum" if summed else "mean"
            if rhythm == "day":
                values = weeks_of(series, end)
                if values.empty:  # kpi_daily only: the weeks from the days
                    days_only = series[series["grain"] == "day"]
                    values = weekly(days_only.set_index("date")["value"], summed, end)
                else:
                    how = "period"
            else:
                found = [s for m, g, _, _, s in periodic(series, registry, end) if m == metric]
                if not found:
                    continue
                values = found[0].dropna()
                frequency, how = rhythm, "period"
                if rhythm == "month":
                    season, days = 12, 31
            if len(values) < settings["min_weeks"] or values.nunique() < 2:
                continue
            rows.append({"metric": metric, "dimension": dimension, "dimension_value": value,
                         "frequency": frequency, "aggregation": how,
                         **trend_test(values, settings["weeks"], season,
                                      7 if frequency == "week" else days),
                         "direction": spec.direction if spec else "neutral"})
    result = pd.DataFrame(rows, columns=[c for c in columns
                                         if c not in ("q_value", "trend", "reading")]
                          + ["direction"])
    result["q_value"] = benjamini_hochberg(result["p_value"])
    significant = result["q_value"] < settings["alpha"]
    result["trend"] = np.where(~significant, "no trend",
                               np.where(result["z"] > 0, "increasing", "decreasing"))
    result["reading"] = [reading(t, d) for t, d in zip(result["trend"], result["direction"],
                                                       strict=True)]
    return result[columns]


EXTENSION = Extension(
    name="trends",
    description="Mann-Kendall trend tests of each metric's weekly (or monthly) values, for "
                "the total and each location",
    version="2",
    table="trends",
    columns=(
        Column("metric", "text"),
        Column("dimension", "text", "all, or the dimension of dimension_value"),
        Column("dimension_value", "text"),
        Column("frequency", "text", "week (daily and weekly metrics) or month: the test runs "
                                    "on complete periods"),
        Column("aggregation", "text", "period: the metric's value over the period "
                                      "(kpi_values); sum or mean of the week's days where "
                                      "the marts have only kpi_daily"),
        Column("test", "text", "seasonal (two years or more, period 52) or hamed_rao"),
        Column("start", "date", "first day of the first week tested"),
        Column("end", "date", "last day of the last week tested"),
        Column("n", "integer", "weeks tested"),
        Column("p_value", "number"), Column("tau", "number", "Kendall's tau"),
        Column("z", "number"),
        Column("slope_per_week", "number", "Sen's slope, in the metric's unit per period (week "
                                           "or month)"),
        Column("slope_pct_per_year", "number", "the slope over a year, in % of the median "
                                               "weekly value"),
        Column("q_value", "number", "Benjamini-Hochberg over the table"),
        Column("trend", "text", "increasing, decreasing (q under alpha) or no trend"),
        Column("reading", "text", "improving, worsening, stable, or changing for a metric "
                                  "with no good direction"),
    ),
    inputs=Inputs(sql=KPI_VALUES_SQL),
    key=("metric", "dimension", "dimension_value"),
    run=run,
    builtin=True,
)
