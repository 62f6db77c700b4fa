"""Correlations between a client's metrics, with a lag search and honest significance, and
what the data says of each relationship the consultant declared.

Every pair of metrics is tested (a client has a handful, so all pairs are cheap) at their
common grain: two daily metrics day by day, a daily metric against a monthly one on monthly
values (the day's figures summed or recomputed for the month in kpi_values), two weekly ones
week by week; a weekly and a monthly metric have no common grain and are not compared. Pairs
that the registry's drivers or formulas link (revenue and orders, cac and marketing_spend)
are flagged `connected`, with the formula that links them.

Raw levels share the calendar's cycle and the trend, which makes almost any two sales metrics
look correlated. So each daily series is first replaced by its day-over-week difference,
x(t) - x(t-7), and a weekly or monthly one by its change from the period before, x(t) -
x(t-1); what is left is whether the two move together beyond their calendar. Only the periods
on which both metrics have a value count (inner join on date): a shop's closed days drop out
rather than counting as zeros; so do periods not yet complete.

For each lag from -max_lag to +max_lag periods (7 days, 4 weeks, 3 months by default),
x(t) is correlated with y(t + lag): a positive lag means x moves first. The lag with the
largest absolute Spearman correlation is kept, and the Pearson and Spearman correlations at
that lag are reported with:
- a p-value from Student's t with the effective number of periods (Bartlett's correction for
  the autocorrelation of both series, which differencing does not remove), so that runs of
  similar days are not counted as independent evidence;
- multiplied by the number of lags tried (Bonferroni), since the best of 15 lags is tested;
- then q-values over the whole table (Benjamini-Hochberg), since dozens of pairs are tested.
`significant` means both q-values are under `alpha` (default 0.05).

A declared relationship (`relationships:` in the client's YAML, from -> to) is tested as the
hypothesis it is: x = from, y = to, at the expected lag only (one test, so no correction for
lags or pairs), by Spearman's rho and its Bartlett p-value. `verdict`: supported (p under
alpha, in the expected direction), contradicted (p under alpha, the other way), not supported
(no significant correlation at that lag), or too little data (fewer than the minimum periods
with both values).

Settings (extension_settings.correlations): window_days (365: the last year of days),
window_weeks (104), window_months (36), max_lag (7 days), max_lag_weeks (4), max_lag_months
(3), min_days (56 pairs of days at least), min_weeks (20), min_months (12), dimensions ([]:
the total only; [location] adds each shop, at the cost of more tests and so a stricter
correction), alpha.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from goalpost.core.metrics import formulas
from goalpost.extensions._kpi_tools import (
    GRAIN_FREQUENCY,
    KPI_VALUES_SQL,
    benjamini_hochberg,
    groups,
    last_complete_day,
    period_end,
    settings_of,
    values_frame,
)
from goalpost.extensions.api import Column, Extension, Inputs, JobContext

DEFAULTS = {"window_days": 365, "window_weeks": 104, "window_months": 36, "max_lag": 7,
            "max_lag_weeks": 4, "max_lag_months": 3, "min_days": 56, "min_weeks": 20,
            "min_months": 12, "dimensions": [], "alpha": 0.05}
# Per grain: its settings (window, max lag, minimum periods), the transform, its calendar.
GRAIN_SETTINGS = {"day": ("window_days", "max_lag", "min_days"),
                  "week": ("window_weeks", "max_lag_weeks", "min_weeks"),
                  "month": ("window_months", "max_lag_months", "min_months")}
TRANSFORMS = {"day": "week_diff", "week": "diff", "month": "diff"}


def week_differences(daily: pd.DataFrame) -> pd.DataFrame:
    """x(t) - x(t-7): no weekly cycle, no trend (NaN where either day is missing)."""
    return daily - daily.shift(7)


def _autocorrelations(values: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocorrelation at lags 1..max_lag over the pairs of days both present (NaN: absent)."""
    present = np.isfinite(values)
    z = np.where(present, (values - np.nanmean(values)) / (np.nanstd(values) or 1.0), np.nan)
    result = np.zeros(max_lag)
    for k in range(1, max_lag + 1):
        products = z[k:] * z[:-k]
        valid = np.isfinite(products)
        result[k - 1] = products[valid].mean() if valid.sum() > 2 else 0.0
    return result


def effective_days(x: np.ndarray, y: np.ndarray, n: int) -> float:
    """Bartlett's effective sample size of a correlation between two autocorrelated series
    (aligned, NaN where a day does not count): n / (1 + 2 * sum_k rho_x(k) rho_y(k))."""
    lags = max(1, min(28, n // 4))
    inflation = 1 + 2 * float(np.dot(_autocorrelations(x, lags), _autocorrelations(y, lags)))
    return float(min(n, max(3.0, n / inflation))) if inflation > 0 else float(n)


def correlation_p_value(r: float, n_effective: float) -> float:
    """Two-sided p-value of a correlation coefficient with n_effective observations."""
    if not math.isfinite(r) or n_effective <= 2:
        return math.nan
    if abs(r) >= 1:
        return 0.0
    t = r * math.sqrt((n_effective - 2) / (1 - r * r))
    return float(2 * stats.t.sf(abs(t), n_effective - 2))


def _aligned(x: np.ndarray, y: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """x(t) and y(t + lag) over the days t where both exist, NaN where either is missing."""
    if lag >= 0:
        a, b = x[:len(x) - lag], y[lag:]
    else:
        a, b = x[-lag:], y[:len(y) + lag]
    both = np.isfinite(a) & np.isfinite(b)
    return np.where(both, a, np.nan), np.where(both, b, np.nan)


def _ranks(values: np.ndarray) -> np.ndarray:
    ranked = np.full(values.shape, np.nan)
    present = np.isfinite(values)
    ranked[present] = stats.rankdata(values[present])
    return ranked


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    present = np.isfinite(a)
    return float(np.corrcoef(a[present], b[present])[0, 1])


def lagged_correlation(x: pd.Series, y: pd.Series, max_lag: int, min_days: int
                       ) -> dict[str, float] | None:
    """The best lag of x(t) against y(t + lag) and its correlations, or None when no lag
    has min_days days with both values (or a series is constant)."""
    xs, ys = x.to_numpy(dtype=float), y.to_numpy(dtype=float)
    best: tuple[float, int] | None = None
    tried = 0
    for lag in range(-max_lag, max_lag + 1):
        a, b = _aligned(xs, ys, lag)
        present = np.isfinite(a)
        if present.sum() < min_days or np.ptp(a[present]) == 0 or np.ptp(b[present]) == 0:
            continue
        tried += 1
        rho = _pearson(_ranks(a), _ranks(b))
        if math.isfinite(rho) and (best is None or abs(rho) > abs(best[0])):
            best = (rho, lag)
    if best is None:
        return None
    rho, lag = best
    a, b = _aligned(xs, ys, lag)
    n = int(np.isfinite(a).sum())
    r = _pearson(a, b)
    n_pearson = effective_days(a, b, n)
    n_spearman = effective_days(_ranks(a), _ranks(b), n)
    return {
        "lag": lag, "n": n, "n_effective": n_pearson,
        "pearson_r": r, "pearson_p": min(1.0, correlation_p_value(r, n_pearson) * tried),
        "spearman_rho": rho,
        "spearman_p": min(1.0, correlation_p_value(rho, n_spearman) * tried),
    }


def links(registry: dict) -> dict[frozenset[str], str]:
    """Pairs of metrics the registry's drivers or formulas connect, with the formula."""
    found = {}
    for name, metric in registry.items():
        for part in (metric.drivers.parts if metric.drivers else ()):
            found[frozenset((name, part))] = f"{name} = {metric.drivers.formula}"
        if metric.formula:
            for part in formulas.parse(metric.formula).names:
                found.setdefault(frozenset((name, part)), f"{name} = {metric.formula}")
    return found


def changes(values: pd.DataFrame, grain: str) -> pd.DataFrame:
    """The series without their calendar: day over week for days, period over period else."""
    return week_differences(values) if grain == "day" else values - values.shift(1)


def correlation_at(x: pd.Series, y: pd.Series, lag: int, min_n: int) -> dict[str, float]:
    """Spearman's rho of x(t) against y(t + lag) with its p-value (Bartlett's effective n),
    NaN when fewer than min_n periods have both values or a series is constant there."""
    a, b = _aligned(x.to_numpy(dtype=float), y.to_numpy(dtype=float), lag)
    present = np.isfinite(a)
    n = int(present.sum())
    if n < min_n or np.ptp(a[present]) == 0 or np.ptp(b[present]) == 0:
        return {"n": n, "rho": math.nan, "p": math.nan}
    rho = _pearson(_ranks(a), _ranks(b))
    return {"n": n, "rho": rho,
            "p": correlation_p_value(rho, effective_days(_ranks(a), _ranks(b), n))}


def verdict(found: dict[str, float], direction: str, alpha: float) -> str:
    if not math.isfinite(found["rho"]) or not math.isfinite(found["p"]):
        return "too little data"
    if found["p"] >= alpha:
        return "not supported"
    expected = 1 if direction == "positive" else -1
    return "supported" if np.sign(found["rho"]) == expected else "contradicted"


def grain_of(registry: dict, x: str, y: str) -> str | None:
    """The finest grain both metrics are known at."""
    if x not in registry or y not in registry:
        return "day"
    shared = [g for g in registry[x].grains() if g in registry[y].grains()]
    return min(shared, key=("day", "week", "month").index) if shared else None


def wide_at(group: pd.DataFrame, grain: str, end: pd.Timestamp, periods: int
            ) -> pd.DataFrame:
    """One column per metric of the grain's complete periods ending by `end`, the last
    `periods` of them on a regular calendar (NaN where no value)."""
    rows = group[(group["grain"] == grain) & group["complete"]]
    if grain != "day":
        rows = rows.loc[np.array([period_end(d, grain) <= end for d in rows["date"]],
                                 dtype=bool)]
    last = period_start_of(end, grain) if grain != "day" else end
    if grain != "day" and period_end(last, grain) > end:
        last = last - (pd.Timedelta(days=7) if grain == "week" else pd.DateOffset(months=1))
    index = pd.date_range(end=last, periods=periods, freq=GRAIN_FREQUENCY[grain])
    table = rows.pivot_table(index="date", columns="metric", values="value", aggfunc="sum")
    return table.reindex(index)


def period_start_of(day: pd.Timestamp, grain: str) -> pd.Timestamp:
    if grain == "week":
        return day - pd.Timedelta(days=day.dayofweek)
    return day.replace(day=1) if grain == "month" else day


def run(job: JobContext) -> pd.DataFrame:
    settings = settings_of("correlations", job.settings, DEFAULTS, job.client)
    columns = [c.name for c in EXTENSION.columns]
    frame = values_frame(job.data)
    end = last_complete_day(frame.loc[frame["grain"] == "day", "date"], job.now,
                            job.client.timezone, job.last_complete)
    if end is None and job.last_complete is not None:
        end = pd.Timestamp(job.last_complete)
    if end is None:
        return pd.DataFrame(columns=columns)
    registry = job.client.metric_registry()
    connected = links(registry)
    declared = {(r.source, r.target): r for r in job.client.relationships}
    order = {name: i for i, name in enumerate(registry)}
    rows = []
    for dimension, value, group in groups(frame, settings["dimensions"]):
        tables = {}
        for grain, (window, _, _) in GRAIN_SETTINGS.items():
            wide = wide_at(group, grain, end, int(settings[window]))
            tables[grain] = (wide, changes(wide, grain))
        metrics = sorted(set(group["metric"]), key=lambda m: (order.get(m, len(order)), m))
        pairs = [pair for pair in itertools.combinations(metrics, 2)]
        for x, y in pairs:
            edge = declared.get((x, y)) or declared.get((y, x))
            if edge is not None:
                x, y = edge.source, edge.target
            grain = grain_of(registry, x, y)
            if grain is None:
                continue
            wide, change = tables[grain]
            _, lag_key, min_key = GRAIN_SETTINGS[grain]
            if x not in change or y not in change:
                if edge is None:
                    continue
                found = None
            else:
                found = lagged_correlation(change[x], change[y], int(settings[lag_key]),
                                           int(settings[min_key]))
            if found is None and edge is None:
                continue
            link = connected.get(frozenset((x, y)))
            row = {"metric_x": x, "metric_y": y, "dimension": dimension,
                   "dimension_value": value, "grain": grain, "connected": link is not None,
                   "link": link, **(found or {}), "window_start": wide.index[0].date(),
                   "window_end": period_end(wide.index[-1], grain).date(),
                   "transform": TRANSFORMS[grain]}
            if edge is not None:
                expected = edge.lag_periods(registry) if x in registry and y in registry else 0
                at = (correlation_at(change[x], change[y], expected, int(settings[min_key]))
                      if x in change and y in change else {"n": 0, "rho": math.nan,
                                                          "p": math.nan})
                row.update(relationship=edge.key, expected_direction=edge.direction,
                           expected_lag=expected, expected_rho=at["rho"], expected_p=at["p"],
                           expected_n=at["n"],
                           verdict=verdict(at, edge.direction, settings["alpha"]))
            rows.append(row)
    result = pd.DataFrame(rows, columns=[c for c in columns if not c.endswith("_q")
                                         and c != "significant"])
    result["pearson_q"] = benjamini_hochberg(result["pearson_p"])
    result["spearman_q"] = benjamini_hochberg(result["spearman_p"])
    result["significant"] = ((result["pearson_q"] < settings["alpha"])
                             & (result["spearman_q"] < settings["alpha"]))
    # Rows without a measure (a declared edge with too little data) leave integers empty.
    for column in (c.name for c in EXTENSION.columns if c.type == "integer"):
        result[column] = result[column].astype("Int64")
    return result[columns]


EXTENSION = Extension(
    name="correlations",
    description="correlations between the client's metrics at their common grain, with the "
                "best lag and significance corrected for the lags and pairs tested, and the "
                "verdict of the data on each declared relationship",
    version="2",
    table="correlations",
    columns=(
        Column("metric_x", "text"), Column("metric_y", "text"),
        Column("dimension", "text", "all, or the dimension of dimension_value"),
        Column("dimension_value", "text"),
        Column("connected", "boolean", "the registry's drivers link the two metrics"),
        Column("link", "text", "the drivers formula that links them"),
        Column("grain", "text", "day, week or month: the two metrics' common grain"),
        Column("lag", "integer", "periods by which x leads y (negative: y leads x)"),
        Column("n", "integer", "periods with both values at that lag"),
        Column("n_effective", "number", "n discounted for autocorrelation (Bartlett)"),
        Column("pearson_r", "number"),
        Column("pearson_p", "number", "at the best lag, times the number of lags tried"),
        Column("spearman_rho", "number"),
        Column("spearman_p", "number", "at the best lag, times the number of lags tried"),
        Column("window_start", "date"), Column("window_end", "date"),
        Column("transform", "text", "week_diff: x(t) - x(t-7) of daily series; diff: x(t) - "
                                    "x(t-1) of weekly and monthly ones"),
        Column("relationship", "text", "the declared relationship tested (from -> to: x -> y)"),
        Column("expected_direction", "text", "positive or negative, as declared"),
        Column("expected_lag", "integer", "the declared lag, in periods of the grain"),
        Column("expected_rho", "number", "Spearman's rho at the declared lag"),
        Column("expected_p", "number", "its p-value (one declared test: not corrected)"),
        Column("expected_n", "integer", "periods with both values at the declared lag"),
        Column("verdict", "text", "supported, contradicted, not supported or too little data"),
        Column("pearson_q", "number", "Benjamini-Hochberg over the table"),
        Column("spearman_q", "number", "Benjamini-Hochberg over the table"),
        Column("significant", "boolean", "both q-values under alpha"),
    ),
    inputs=Inputs(sql=KPI_VALUES_SQL),
    key=("metric_x", "metric_y", "dimension", "dimension_value"),
    run=run,
    builtin=True,
)
