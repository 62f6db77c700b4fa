"""Trend tests: is each metric going up or down, beyond noise? (Mann-Kendall, pymannkendall)

The test runs on weekly values, never daily ones: a week holds one of each weekday, so the
weekly cycle is gone. Sum metrics are summed over the week, others (ratios, distinct
customers) averaged over its days. Only complete weeks (Monday to Sunday) inside the
series' data count.

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
    benjamini_hochberg,
    groups,
    kpi_frame,
    last_complete_day,
    settings_of,
)
from goalpost.extensions.api import Column, Extension, JobContext

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


def trend_test(values: pd.Series, weeks: int) -> dict[str, object]:
    """Mann-Kendall on weekly values: seasonal with two years or more, else Hamed-Rao."""
    if len(values) >= 2 * SEASON:
        values = values.iloc[-3 * SEASON:]
        result = mk.seasonal_test(values.to_numpy(), period=SEASON)
        test, slope = "seasonal", float(result.slope) / SEASON
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
    return {
        "test": test, "start": values.index[0].date(),
        "end": (values.index[-1] + pd.Timedelta(days=6)).date(), "n": len(values),
        "p_value": float(result.p), "tau": float(result.Tau), "z": float(result.z),
        "slope_per_week": slope,
        "slope_pct_per_year": slope * SEASON / abs(level) * 100 if level else math.nan,
    }


def reading(trend: str, direction: str) -> str:
    if trend == "no trend":
        return "stable"
    if direction == "neutral":
        return "changing"
    return "improving" if (trend == "increasing") == (direction == "up") else "worsening"


def run(job: JobContext) -> pd.DataFrame:
    settings = settings_of("trends", job.settings, DEFAULTS, job.client)
    columns = [c.name for c in EXTENSION.columns]
    frame = kpi_frame(job.data)
    end = last_complete_day(frame["date"], job.now, job.client.timezone,
                            job.last_complete)
    if end is None:
        return pd.DataFrame(columns=columns)
    registry = job.client.metric_registry()
    rows = []
    for dimension, value, group in groups(frame[frame["date"] <= end], settings["dimensions"]):
        for metric, series in group.groupby("metric"):
            spec = registry.get(metric)
            summed = spec is not None and spec.aggregation in SUMMED
            values = weekly(series.set_index("date")["value"], summed, end)
            if len(values) < settings["min_weeks"] or values.nunique() < 2:
                continue
            rows.append({"metric": metric, "dimension": dimension, "dimension_value": value,
                         "frequency": "week", "aggregation": "sum" if summed else "mean",
                         **trend_test(values, settings["weeks"]),
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
    description="Mann-Kendall trend tests of each metric's weekly values, for the total and "
                "each location",
    version="1",
    table="trends",
    columns=(
        Column("metric", "text"),
        Column("dimension", "text", "all, or the dimension of dimension_value"),
        Column("dimension_value", "text"),
        Column("frequency", "text", "week: the test runs on complete weeks"),
        Column("aggregation", "text", "sum or mean of the week's days"),
        Column("test", "text", "seasonal (two years or more, period 52) or hamed_rao"),
        Column("start", "date", "first day of the first week tested"),
        Column("end", "date", "last day of the last week tested"),
        Column("n", "integer", "weeks tested"),
        Column("p_value", "number"), Column("tau", "number", "Kendall's tau"),
        Column("z", "number"),
        Column("slope_per_week", "number", "Sen's slope, in the metric's unit per week"),
        Column("slope_pct_per_year", "number", "the slope over a year, in % of the median "
                                               "weekly value"),
        Column("q_value", "number", "Benjamini-Hochberg over the table"),
        Column("trend", "text", "increasing, decreasing (q under alpha) or no trend"),
        Column("reading", "text", "improving, worsening, stable, or changing for a metric "
                                  "with no good direction"),
    ),
    key=("metric", "dimension", "dimension_value"),
    run=run,
    builtin=True,
)
