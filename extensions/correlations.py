"""Correlations between a client's metrics, with a lag search and honest significance.

Every pair of metrics is tested (a client has a handful, so all pairs are cheap); pairs that
the registry's drivers link (revenue and orders, average_ticket and items_per_order) are
flagged `connected`, with the formula that links them.

Raw daily levels share the weekly cycle and the trend, which makes almost any two sales
metrics look correlated. So each series is first replaced by its day-over-week difference,
x(t) - x(t-7), which removes both; what is left is whether the two move together beyond
their calendar. Only the days on which both metrics have a value count (inner join on date):
a shop's closed days drop out rather than counting as zeros.

For each lag from -max_lag to +max_lag days, x(t) is correlated with y(t + lag): a positive
lag means x moves first. The lag with the largest absolute Spearman correlation is kept, and
the Pearson and Spearman correlations at that lag are reported with:
- a p-value from Student's t with the effective number of days (Bartlett's correction for
  the autocorrelation of both series, which differencing does not remove), so that runs of
  similar days are not counted as independent evidence;
- multiplied by the number of lags tried (Bonferroni), since the best of 15 lags is tested;
- then q-values over the whole table (Benjamini-Hochberg), since dozens of pairs are tested.
`significant` means both q-values are under `alpha` (default 0.05).

Settings (extension_settings.correlations): window_days (365: the last year), max_lag (7),
min_days (56 pairs of days at least), dimensions ([]: the total only; [location] adds each
shop, at the cost of more tests and so a stricter correction), alpha.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from goalpost.core.decomposition import wide
from goalpost.extensions._kpi_tools import (
    benjamini_hochberg,
    groups,
    kpi_frame,
    last_complete_day,
    settings_of,
)
from goalpost.extensions.api import Column, Extension, JobContext

DEFAULTS = {"window_days": 365, "max_lag": 7, "min_days": 56, "dimensions": [],
            "alpha": 0.05}
TRANSFORM = "week_diff"


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
    """Pairs of metrics the registry's drivers connect, with the formula connecting them."""
    found = {}
    for name, metric in registry.items():
        for part in (metric.drivers.parts if metric.drivers else ()):
            found[frozenset((name, part))] = f"{name} = {metric.drivers.formula}"
    return found


def run(job: JobContext) -> pd.DataFrame:
    settings = settings_of("correlations", job.settings, DEFAULTS, job.client)
    columns = [c.name for c in EXTENSION.columns]
    frame = kpi_frame(job.data)
    end = last_complete_day(frame["date"], job.now, job.client.timezone,
                            job.last_complete)
    if end is None:
        return pd.DataFrame(columns=columns)
    start = end - pd.Timedelta(days=settings["window_days"] - 1)
    registry = job.client.metric_registry()
    connected = links(registry)
    order = {name: i for i, name in enumerate(registry)}
    rows = []
    for dimension, value, group in groups(frame[frame["date"] >= start],
                                          settings["dimensions"]):
        changes = week_differences(wide(group, start, end))
        metrics = sorted(changes.columns, key=lambda m: (order.get(m, len(order)), m))
        for x, y in itertools.combinations(metrics, 2):
            found = lagged_correlation(changes[x], changes[y], settings["max_lag"],
                                       settings["min_days"])
            if found is None:
                continue
            link = connected.get(frozenset((x, y)))
            rows.append({"metric_x": x, "metric_y": y, "dimension": dimension,
                         "dimension_value": value, "connected": link is not None,
                         "link": link, **found, "window_start": start.date(),
                         "window_end": end.date(), "transform": TRANSFORM})
    result = pd.DataFrame(rows, columns=[c for c in columns if not c.endswith("_q")
                                         and c != "significant"])
    result["pearson_q"] = benjamini_hochberg(result["pearson_p"])
    result["spearman_q"] = benjamini_hochberg(result["spearman_p"])
    result["significant"] = ((result["pearson_q"] < settings["alpha"])
                             & (result["spearman_q"] < settings["alpha"]))
    return result[columns]


EXTENSION = Extension(
    name="correlations",
    description="correlations between the client's metrics (day-over-week changes), with "
                "the best lag and significance corrected for the lags and pairs tested",
    version="1",
    table="correlations",
    columns=(
        Column("metric_x", "text"), Column("metric_y", "text"),
        Column("dimension", "text", "all, or the dimension of dimension_value"),
        Column("dimension_value", "text"),
        Column("connected", "boolean", "the registry's drivers link the two metrics"),
        Column("link", "text", "the drivers formula that links them"),
        Column("lag", "integer", "days by which x leads y (negative: y leads x)"),
        Column("n", "integer", "days with both values at that lag"),
        Column("n_effective", "number", "n discounted for autocorrelation (Bartlett)"),
        Column("pearson_r", "number"),
        Column("pearson_p", "number", "at the best lag, times the number of lags tried"),
        Column("spearman_rho", "number"),
        Column("spearman_p", "number", "at the best lag, times the number of lags tried"),
        Column("window_start", "date"), Column("window_end", "date"),
        Column("transform", "text", "week_diff: x(t) - x(t-7) of each series"),
        Column("pearson_q", "number", "Benjamini-Hochberg over the table"),
        Column("spearman_q", "number", "Benjamini-Hochberg over the table"),
        Column("significant", "boolean", "both q-values under alpha"),
    ),
    key=("metric_x", "metric_y", "dimension", "dimension_value"),
    run=run,
    builtin=True,
)
