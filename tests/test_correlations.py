"""Correlations (lag search, significance after correction) and Mann-Kendall trend tests, on
synthetic metrics whose relationships and trends are planted."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import psycopg
import pytest

from goalpost.core.errors import ConfigError
from goalpost.core.registry.models import Client
from goalpost.core.warehouse import tenants
from goalpost.extensions import correlations, trends
from goalpost.extensions.api import JobContext
from goalpost.extensions.runner import run_extension

CLIENT = Client.model_validate({"name": "Shop", "timezone": "Europe/Paris"})
END = pd.Timestamp("2025-03-31")
NOW = datetime(2025, 4, 1, 6, tzinfo=UTC)
WEEKLY = np.array([0.8, 0.9, 0.95, 1.0, 1.1, 1.35, 0.9])  # Monday first


def long_form(series: dict[str, np.ndarray], dates: pd.DatetimeIndex,
              dimension: str = "all", value: str = "all") -> pd.DataFrame:
    frames = [pd.DataFrame({"metric": name, "date": dates.date, "dimension": dimension,
                            "dimension_value": value, "value": values})
              for name, values in series.items()]
    return pd.concat(frames, ignore_index=True)


def planted(days: int = 365, seed: int = 11) -> pd.DataFrame:
    """customers lead orders by 3 days; items and returns trend up with the same weekly
    cycle as everything else but are otherwise unrelated noise."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end=END, periods=days, freq="D")
    week = WEEKLY[dates.dayofweek]
    t = np.arange(days)
    customers = 40 * week + rng.normal(0, 4, days) + 0.03 * t
    earlier = np.concatenate([rng.normal(40, 4, 3), customers[:-3]])
    orders = 30 * week + 1.5 * earlier + rng.normal(0, 6, days)
    items = (200 + 0.3 * t) * week + rng.normal(0, 12, days)
    returns = (20 + 0.05 * t) * week + rng.normal(0, 3, days)
    return long_form({"orders": orders, "customers": customers, "items": items,
                      "returns": returns}, dates)


def correlate(kpi: pd.DataFrame, **settings: object) -> pd.DataFrame:
    return correlations.run(JobContext("shop", CLIENT, kpi, NOW, dict(settings)))


def test_a_planted_lag_is_found_and_significant():
    table = correlate(planted()).set_index(["metric_x", "metric_y"])
    assert len(table) == 6  # every pair of the four metrics
    found = table.loc[("orders", "customers")]
    # orders(t) against customers(t + lag): customers three days earlier.
    assert found["lag"] == -3
    assert found["pearson_r"] > 0.5 and found["spearman_rho"] > 0.5
    assert found["pearson_q"] < 1e-6 and found["spearman_q"] < 1e-6 and found["significant"]
    assert 300 < found["n"] <= 365 - 7 and found["n_effective"] <= found["n"]
    assert (found["window_end"], found["transform"]) == (END.date(), "week_diff")


def test_unrelated_metrics_with_shared_trend_and_cycle_are_not_significant():
    kpi = planted()
    levels = kpi.pivot_table(index="date", columns="metric", values="value")
    # Their levels look strongly related: the calendar and the trend do that.
    assert levels["items"].corr(levels["returns"]) > 0.8
    table = correlate(kpi).set_index(["metric_x", "metric_y"])
    unrelated = table.drop(index=[("orders", "customers")])
    assert not unrelated["significant"].any(), unrelated
    assert (unrelated["pearson_q"] > 0.05).all()


def test_false_positives_stay_rare_over_many_noise_series():
    """Twelve independent noise metrics (66 pairs) over three seeds: after the lag and
    pair corrections, no pair comes out significant."""
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        dates = pd.date_range(end=END, periods=365, freq="D")
        noise = {f"m{i:02d}": 50 * WEEKLY[dates.dayofweek] + rng.normal(0, 5, 365)
                 for i in range(12)}
        table = correlate(long_form(noise, dates))
        assert len(table) == 66
        assert table["significant"].sum() == 0
        # Uncorrected, at the best of 15 lags, some pairs look significant.
        assert (table["spearman_p"] / 15 < 0.05).any()


def test_shops_are_correlated_only_when_asked_and_short_series_are_skipped():
    kpi = pd.concat([planted(), planted(seed=12).assign(dimension="location",
                                                        dimension_value="LYO-01"),
                     planted(days=40, seed=13).assign(dimension="location",
                                                      dimension_value="VIL-01")])
    assert set(correlate(kpi)["dimension_value"]) == {"all"}
    table = correlate(kpi, dimensions=["location"])
    assert set(table["dimension_value"]) == {"all", "LYO-01"}  # VIL-01: 40 days < 56
    assert table.set_index(["dimension_value", "metric_x", "metric_y"]).loc[
        ("LYO-01", "orders", "customers"), "lag"] == -3


def test_connected_pairs_name_the_formula():
    dates = pd.date_range(end=END, periods=200, freq="D")
    rng = np.random.default_rng(5)
    orders = 100 * WEEKLY[dates.dayofweek] + rng.normal(0, 8, 200)
    ticket = 12 + rng.normal(0, 0.5, 200)
    kpi = long_form({"revenue": orders * ticket, "orders": orders, "average_ticket": ticket},
                    dates)
    table = correlate(kpi).set_index(["metric_x", "metric_y"])
    assert table.loc[("revenue", "orders"), "connected"]
    assert table.loc[("revenue", "orders"), "link"] == "revenue = orders * average_ticket"
    assert not table.loc[("orders", "average_ticket"), "connected"]
    assert table.loc[("revenue", "orders"), "lag"] == 0


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="extension_settings.correlations.max_lag"):
        correlate(planted(), max_lag="seven")


def weekly_trend_kpi(days: int, slope: float, yearly: float, seed: int,
                     metric: str = "revenue") -> pd.DataFrame:
    """A daily metric: level 1000 growing by `slope` per day, a yearly cycle of amplitude
    `yearly`, the weekly cycle and noise."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end=END, periods=days, freq="D")
    t = np.arange(days)
    level = 1000 + slope * t + yearly * np.sin(2 * np.pi * dates.dayofyear / 365.25)
    return long_form({metric: level * WEEKLY[dates.dayofweek] * rng.normal(1, 0.08, days)},
                     dates)


def test_mann_kendall_finds_a_planted_trend_and_no_trend_in_noise():
    kpi = pd.concat([
        weekly_trend_kpi(300, 1.5, 0, seed=1),
        weekly_trend_kpi(300, 0.0, 0, seed=2, metric="orders"),
        weekly_trend_kpi(300, -1.0, 0, seed=3, metric="returns"),
    ])
    table = trends.run(JobContext("shop", CLIENT, kpi, NOW, {})).set_index("metric")
    assert table.loc["revenue", "trend"] == "increasing"
    assert table.loc["revenue", "reading"] == "improving"
    assert table.loc["revenue", "test"] == "hamed_rao" and table.loc["revenue", "n"] == 42
    # 1.5 a day is 10.5 a day-of-week-average week, times the week's 7 days summed.
    assert table.loc["revenue", "slope_per_week"] == pytest.approx(1.5 * 7 * WEEKLY.sum(),
                                                                   rel=0.25)
    assert table.loc["orders", "trend"] == "no trend"
    assert table.loc["orders", "reading"] == "stable"
    # Returns going down is good news.
    assert (table.loc["returns", "trend"], table.loc["returns", "reading"]) == (
        "decreasing", "improving")


def test_with_three_years_the_yearly_cycle_is_not_a_trend():
    cycle_only = weekly_trend_kpi(3 * 365, 0.0, 300, seed=4)
    growing = weekly_trend_kpi(3 * 365, 0.4, 300, seed=5, metric="orders")
    table = trends.run(JobContext("shop", CLIENT, pd.concat([cycle_only, growing]), NOW,
                                  {})).set_index("metric")
    assert (table["test"] == "seasonal").all()
    assert table.loc["revenue", "trend"] == "no trend"
    assert table.loc["orders", "trend"] == "increasing"
    assert table.loc["orders", "slope_per_week"] == pytest.approx(0.4 * 7 * WEEKLY.sum(),
                                                                  rel=0.25)


def test_the_runner_writes_both_tables(conn: psycopg.Connection):
    tenants.provision(conn, "shop")
    conn.execute("CREATE TABLE shop_marts.kpi_daily (metric text, date date, dimension text, "
                 "dimension_value text, value numeric)")
    buffer = io.StringIO()
    planted().to_csv(buffer, index=False, header=False)
    with conn.cursor().copy("COPY shop_marts.kpi_daily FROM STDIN (FORMAT csv)") as copy:
        copy.write(buffer.getvalue())
    for extension, table, rows in ((correlations.EXTENSION, "correlations", 6),
                                   (trends.EXTENSION, "trends", 4)):
        job = run_extension(conn, "shop", CLIENT, extension, run_id=1, now=NOW)
        assert (job.status, job.rows, job.table) == ("written", rows, table)
        assert run_extension(conn, "shop", CLIENT, extension, run_id=2,
                             now=NOW).status == "unchanged"
    assert conn.execute("SELECT lag, significant FROM shop_insights.correlations WHERE "
                        "metric_x = 'orders' AND metric_y = 'customers'").fetchone() == (-3, True)
