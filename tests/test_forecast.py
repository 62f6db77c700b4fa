"""The forecaster on series of known structure, and the forecast extension end to end."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest

from goalpost.core.errors import ConfigError
from goalpost.core.registry.models import Client
from goalpost.core.warehouse import tenants
from goalpost.extensions.api import JobContext
from goalpost.extensions.forecast import (
    EXTENSION,
    build_jobs,
    estimated_seconds,
    periodic_jobs,
    settings,
    workers_for,
)
from goalpost.extensions.forecast import run as run_forecast
from goalpost.extensions.forecasting import forecast_series, mase, smape
from goalpost.extensions.runner import run_extension

WEEK = np.array([0.8, 0.9, 1.0, 1.0, 1.1, 1.4, 0.8])


def weekly_series(days: int, seed: int, closed_monday: bool = False) -> np.ndarray:
    """Level 100 growing 0.1 a day, a weekly pattern, 4% noise (day 0 is a Monday)."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    values = (100 + 0.1 * t) * WEEK[t % 7] * (1 + rng.normal(0, 0.04, days))
    if closed_monday:
        values[t % 7 == 0] = 0.0
    return values


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_beats_seasonal_naive_and_the_95_interval_covers_the_held_out_weeks(seed) -> None:
    series = weekly_series(364 + 28, seed)
    history, actual = series[:364], series[364:]
    result = forecast_series(history, period=7, horizon=28, origins=2)

    naive = history[-7:][np.arange(28) % 7]
    assert np.mean(np.abs(actual - result.mean)) < np.mean(np.abs(actual - naive))
    lower95, upper95 = result.bounds[95]
    lower80, upper80 = result.bounds[80]
    assert np.mean((actual >= lower95) & (actual <= upper95)) >= 0.85
    assert np.all(lower95 <= lower80) and np.all(upper80 <= upper95)
    assert np.all(lower80 <= result.mean) and np.all(result.mean <= upper80)
    assert result.history_points == 364 and result.backtest_mase is not None
    assert 0 < result.backtest_smape < 20


def test_closing_days_are_forecast_as_zero() -> None:
    series = weekly_series(140, seed=4, closed_monday=True)
    result = forecast_series(series, period=7, horizon=14)  # day 140 is a Monday
    assert result.mean[0] == result.mean[7] == 0
    assert np.all(result.mean[[1, 2, 3, 4, 5, 6]] > 50)
    assert result.bounds[95][1][0] == 0


@pytest.mark.parametrize("values, model", [
    ([7.0] * 60, "naive"),
    ([0.0] * 60, "naive"),
    ([3.0, 5.0], "naive"),
    ([4.0], "naive"),
])
def test_constant_and_very_short_series_get_their_last_value(values, model) -> None:
    result = forecast_series(values, period=7, horizon=10)
    assert result.model == model
    assert np.all(result.mean == values[-1])
    assert result.backtest_smape is None and result.history_points == len(values)
    lower, upper = result.bounds[95]
    if len(set(values)) == 1:  # nothing ever moved: no uncertainty to show
        assert np.all(lower == values[-1]) and np.all(upper == values[-1])
    else:
        assert np.all(lower < result.mean) and np.all(result.mean < upper)


@pytest.mark.parametrize("length", [5, 9, 16])
def test_short_series_fall_back_gracefully(length) -> None:
    values = weekly_series(length, seed=5)
    result = forecast_series(values, period=7, horizon=30, origins=3)
    assert result.mean.shape == (30,) and np.all(np.isfinite(result.mean))
    for lower, upper in result.bounds.values():
        assert np.all(lower <= upper) and np.all(lower >= 0)


def test_mostly_zero_series_and_forecasts_never_go_negative() -> None:
    rng = np.random.default_rng(6)
    values = np.where(rng.random(200) < 0.9, 0.0, rng.integers(1, 50, 200))
    result = forecast_series(values, period=7, horizon=20)
    assert np.all(result.mean >= 0) and np.all(result.bounds[95][0] >= 0)


def test_metrics_follow_the_standard_definitions() -> None:
    assert smape(np.array([100.0, 0.0]), np.array([50.0, 0.0])) == pytest.approx(200 / 3 / 2)
    history = np.array([1.0, 3.0, 2.0, 4.0])  # naive MAE (period 1) = 5/3
    assert mase(history, np.array([5.0]), np.array([4.0]), 1) == pytest.approx(0.6)
    # With period 2 the seasonal naive MAE is (1 + 1) / 2.
    assert mase(history, np.array([5.0]), np.array([4.0]), 2) == pytest.approx(1.0)


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ConfigError, match="unknown forecast model"):
        forecast_series([1.0, 2.0, 3.0], period=1, horizon=2, models=["lstm"])
    with pytest.raises(ConfigError, match="no missing"):
        forecast_series([1.0, np.nan, 3.0], period=1, horizon=2)
    with pytest.raises(ConfigError, match="at least 1"):
        forecast_series([1.0, 2.0], period=1, horizon=0)


def test_prophet_runs_quietly_with_the_countrys_holidays(capfd) -> None:
    dates = pd.date_range("2024-01-01", periods=120, freq="D")
    from goalpost.extensions.forecasting import ProphetInput

    result = forecast_series(weekly_series(120, seed=7), period=7, horizon=14, origins=1,
                             models=["prophet"], prophet=ProphetInput(dates, "FR"))
    assert result.model == "prophet" and np.all(np.isfinite(result.mean))
    lower, upper = result.bounds[95]
    assert np.all(lower < result.mean) and np.all(result.mean < upper)
    captured = capfd.readouterr()
    assert "cmdstanpy" not in captured.err + captured.out
    assert "plotly" not in captured.err + captured.out


def test_settings_are_checked() -> None:
    assert settings({}).horizon("revenue", "day") == 90
    options = settings({"horizon_days": 30, "per_metric": {"revenue": {"horizon_months": 3}}})
    assert (options.horizon("revenue", "day"), options.horizon("revenue", "month"),
            options.horizon("orders", "month")) == (30, 3, 12)
    for bad, message in (({"horizon": 3}, "unknown setting"),
                         ({"horizon_days": 0}, "horizon_days must be a whole number"),
                         ({"models": ["ets", "lstm"]}, "unknown or no model"),
                         ({"per_metric": {"revenue": {"days": 3}}}, "per_metric.revenue")):
        with pytest.raises(ConfigError, match=message):
            settings(bad)


def kpi_rows(days: int, end: date) -> list[tuple]:
    """revenue, orders, average_ticket, items_per_order and customers per day, in total and
    for two shops; LYO-01 is closed on Mondays (no rows)."""
    rows = []
    for shop, seed in (("LYO-01", 11), ("LYO-02", 12)):
        orders = np.round(weekly_series(days, seed))
        first = end - timedelta(days=days - 1)
        for i in range(days):
            day = first + timedelta(days=i)
            if shop == "LYO-01" and day.weekday() == 0:
                continue
            revenue = round(float(orders[i]) * (12 + (i % 5) * 0.1), 2)
            rows += [("orders", day, "location", shop, float(orders[i])),
                     ("revenue", day, "location", shop, revenue),
                     ("average_ticket", day, "location", shop, round(revenue / orders[i], 2)),
                     ("items_per_order", day, "location", shop, 1.5),
                     ("customers", day, "location", shop, float(orders[i] // 3))]
    frame = pd.DataFrame(rows, columns=["metric", "date", "dimension", "dimension_value",
                                        "value"])
    total = frame.groupby(["metric", "date"], as_index=False)["value"].sum()
    total = total[total["metric"].isin(["orders", "revenue", "customers"])]
    return rows + [(m, d, "all", "all", v) for m, d, v in total.itertuples(index=False)]


def test_monthly_series_are_complete_months_summed_or_recomputed_from_their_parts() -> None:
    data = pd.DataFrame(kpi_rows(120, date(2025, 4, 20)),
                        columns=["metric", "date", "dimension", "dimension_value", "value"])
    client = Client.model_validate({"name": "Shop", "extensions": []})
    jobs = build_jobs(data, client.metric_registry(), settings({}), "FR")
    monthly = {(j.metric, j.dimension_value): j for j in jobs if j.frequency == "month"}
    # 2024-12-22 .. 2025-04-20: January to March are complete; April is forecast first.
    assert set(monthly) == {(m, s) for m in ("orders", "revenue") for s in ("all", "LYO-01",
                                                                            "LYO-02")} | {
        ("average_ticket", "LYO-01"), ("average_ticket", "LYO-02")}
    orders = monthly[("orders", "LYO-02")]
    assert orders.start == pd.Timestamp("2025-04-01") and len(orders.values) == 3
    january = data[(data["metric"] == "orders") & (data["dimension_value"] == "LYO-02")
                   & (pd.to_datetime(data["date"]).dt.month == 1)]["value"].sum()
    assert orders.values[0] == pytest.approx(january)
    ticket = monthly[("average_ticket", "LYO-01")].values
    revenue, orders_01 = monthly[("revenue", "LYO-01")].values, monthly[("orders",
                                                                          "LYO-01")].values
    assert ticket == pytest.approx(revenue / orders_01)
    daily = {(j.metric, j.dimension_value): j for j in jobs if j.frequency == "day"}
    shop = daily[("orders", "LYO-01")]
    assert len(shop.values) == 120 and shop.values[np.flatnonzero(shop.values == 0)].size >= 17
    assert shop.start == pd.Timestamp("2025-04-21")


def test_a_monthly_metric_is_forecast_from_its_months_and_a_daily_one_from_its_days() -> None:
    client = Client.model_validate({"name": "Shop", "extensions": [], "metrics": {
        "marketing_spend": {"label": "Marketing spend", "unit": "currency",
                            "aggregation": "sum", "rhythm": "month", "dimensions": []}}})
    registry = client.metric_registry()
    months = pd.date_range("2023-01-01", periods=30, freq="MS")
    spend = 1000 + 300 * np.sin(np.arange(30) * 2 * np.pi / 12)
    rows = [("marketing_spend", "month", d.date(), "all", "all", v, True)
            for d, v in zip(months, spend, strict=True)]
    rows.append(("marketing_spend", "month", date(2025, 7, 1), "all", "all", 5.0, False))
    rows.pop(10)  # a month nobody entered: interpolated, not a zero
    rows += [("orders", "day", d.date(), "all", "all", 10.0 + d.dayofweek, None)
             for d in pd.date_range("2025-04-01", "2025-06-30")]
    data = pd.DataFrame(rows, columns=["metric", "grain", "date", "dimension",
                                       "dimension_value", "value", "complete"])
    chosen = {"horizon_months": 3, "horizon_days": 7, "models": ["seasonal_naive", "ses", "theta"]}
    [job] = periodic_jobs(data, registry, settings(chosen))
    # The complete months only (July 2025 is still open), from January 2023 on.
    assert (job.metric, job.frequency, job.periods) == ("marketing_spend", "month", (12.0,))
    assert len(job.values) == 30 and job.start == pd.Timestamp("2025-07-01")
    assert job.values[10] == pytest.approx((spend[9] + spend[11]) / 2)
    written = run_forecast(JobContext(slug="shop", client=client, data=data,
                                      now=datetime(2025, 7, 2, 8), settings=chosen))
    grains = written.groupby(["metric", "frequency"])["date"].agg(["min", "max", "count"])
    assert grains.loc[("marketing_spend", "month")].tolist() == [
        date(2025, 7, 1), date(2025, 9, 1), 3]
    assert ("marketing_spend", "day") not in grains.index  # not spread over days
    assert grains.loc[("orders", "day")].tolist() == [date(2025, 7, 1), date(2025, 7, 7), 7]


@pytest.fixture
def shop(conn: psycopg.Connection) -> psycopg.Connection:
    tenants.provision(conn, "shop")
    conn.execute("CREATE TABLE shop_marts.kpi_daily (metric text, date date, dimension text, "
                 "dimension_value text, value numeric)")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO shop_marts.kpi_daily VALUES (%s, %s, %s, %s, %s)",
                        kpi_rows(120, date(2025, 4, 20)))
    return conn


def test_the_extension_writes_forecasts_and_does_nothing_when_nothing_changed(shop) -> None:
    client = Client.model_validate({
        "name": "Shop", "extensions": ["forecast"],
        "extension_settings": {"forecast": {
            "horizon_days": 21, "horizon_months": 2, "workers": 2,
            "models": ["seasonal_naive", "ses", "theta", "drift", "arima"],
            "per_metric": {"revenue": {"horizon_days": 35}}}}})
    first = run_extension(shop, "shop", client, EXTENSION, run_id=1)
    assert first.status == "written"
    rows = shop.execute(
        "SELECT metric, dimension_value, frequency, count(*), min(date), max(date), "
        "bool_and(yhat_lower_95 <= yhat_lower_80 AND yhat_lower_80 <= yhat "
        "AND yhat <= yhat_upper_80 AND yhat_upper_80 <= yhat_upper_95), "
        "count(DISTINCT model), max(history_points), bool_and(backtest_mase IS NOT NULL) "
        "FROM shop_insights.forecasts GROUP BY 1, 2, 3 ORDER BY 1, 2, 3").fetchall()
    found = {(m, v, f): rest for m, v, f, *rest in rows}
    assert found[("revenue", "all", "day")] == [35, date(2025, 4, 21), date(2025, 5, 25), True,
                                                1, 120, True]
    benchmarks = shop.execute(
        "SELECT DISTINCT frequency, benchmark, benchmark_mase IS NOT NULL, "
        "model = benchmark OR note IS NULL FROM shop_insights.forecasts "
        "WHERE metric IN ('revenue', 'orders')").fetchall()  # not the constant ratio
    # Three complete months are less than a season: their benchmark is naive, and too few
    # to backtest.
    assert {(f, b) for f, b, *_ in benchmarks} == {("day", "seasonal_naive"),
                                                    ("month", "naive")}
    assert all(has_mase for frequency, _, has_mase, _ in benchmarks if frequency == "day")
    assert all(consistent for *_, consistent in benchmarks)
    assert found[("orders", "LYO-01", "day")][:3] == [21, date(2025, 4, 21), date(2025, 5, 11)]
    assert found[("orders", "all", "month")][:3] == [2, date(2025, 4, 1), date(2025, 5, 1)]
    assert found[("orders", "all", "month")][5] == 3
    assert ("items_per_order", "LYO-01", "day") in found
    assert ("items_per_order", "LYO-01", "month") not in found
    assert ("customers", "all", "month") not in found
    assert first.rows == sum(r[0] for r in found.values())
    # The shop closed on Mondays is forecast to sell nothing on Mondays.
    mondays = shop.execute(
        "SELECT max(yhat_upper_95) FROM shop_insights.forecasts WHERE metric = 'orders' AND "
        "dimension_value = 'LYO-01' AND frequency = 'day' AND extract(isodow FROM date) = 1"
    ).fetchone()[0]
    assert mondays == 0

    again = run_extension(shop, "shop", client, EXTENSION, run_id=2)
    assert again.status == "unchanged" and again.rows == first.rows


def test_worker_processes_only_when_the_work_pays_for_starting_them() -> None:
    client = Client.model_validate({"name": "Shop", "extensions": []})
    small = pd.DataFrame(kpi_rows(60, date(2025, 3, 1)),
                         columns=["metric", "date", "dimension", "dimension_value", "value"])
    jobs = build_jobs(small, client.metric_registry(), settings({}), "FR")
    assert workers_for(jobs, None) == 1 and workers_for(jobs, 3) == 3
    many = jobs * 40
    assert estimated_seconds(many) == pytest.approx(40 * estimated_seconds(jobs))
    assert workers_for(many, None) == (os.cpu_count() or 1)


def test_same_forecasts_whatever_the_number_of_workers() -> None:
    data = pd.DataFrame(kpi_rows(60, date(2025, 3, 1)),
                        columns=["metric", "date", "dimension", "dimension_value", "value"])
    data = data[data["metric"].isin(["orders", "items_per_order"])]
    client = Client.model_validate({"name": "Shop", "extensions": []})
    outputs = []
    for workers in (1, 2):
        job = JobContext("shop", client, data, datetime(2025, 3, 2),
                         {"horizon_days": 14, "workers": workers,
                          "models": ["seasonal_naive", "ses", "theta", "drift"]})
        outputs.append(EXTENSION.run(job))
    pd.testing.assert_frame_equal(outputs[0], outputs[1])
    # orders (all, LYO-01, LYO-02) daily and monthly (January and February complete);
    # items_per_order (the shops) daily only.
    assert len(outputs[0]) == 5 * 14 + 3 * 12


def test_a_year_of_months_with_one_peak_is_not_forecast_to_double() -> None:
    # A shop's year: flat, then an autumn peak and a December at the peak.
    months = np.array([100, 98, 103, 101, 99, 102, 100, 104, 130, 175, 210, 220.0])
    result = forecast_series(months, period=12, horizon=12, origins=2)
    assert result.mean.sum() < 1.2 * months.sum()
    assert result.model == "seasonal_naive"  # a full season, not two: no trend, no peak as level
    assert result.benchmark == "seasonal_naive"


def test_a_model_that_backtests_worse_than_seasonal_naive_is_not_published() -> None:
    # The weekly shape changed eight weeks ago and repeats exactly since: every model that
    # averages the cycle over the whole history is wrong, seasonal naive is right.
    old = np.tile([10, 50, 10, 50, 10, 90, 5.0], 20)
    new = np.tile([60, 10, 60, 10, 60, 5, 90.0], 8)
    result = forecast_series(np.r_[old, new], period=7, horizon=14, origins=2,
                             models=["ses", "ets", "theta", "arima", "drift"])
    assert result.model == "seasonal_naive"
    assert "backtested worse than seasonal_naive" in (result.note or "")
    assert result.backtest_mase == result.benchmark_mase == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(result.mean, np.tile(new[-7:], 2))
    # When the models do better, they are published and the benchmark is reported beside.
    series = weekly_series(364, seed=1)
    kept = forecast_series(series, period=7, horizon=28, origins=2)
    assert kept.model.startswith("combination") and kept.note is None
    assert kept.backtest_mase <= kept.benchmark_mase


def footfall(hours: int, seed: int) -> np.ndarray:
    """Hourly: a daily shape, weekends at 60%, noise (hour 0 is a Monday at midnight)."""
    rng = np.random.default_rng(seed)
    t = np.arange(hours)
    day = np.exp(-(((t % 24) - 13) / 4.0) ** 2)
    week = np.where((t // 24) % 7 >= 5, 0.6, 1.0)
    return 100 * day * week + 5 + rng.normal(0, 3, hours)


def test_several_periods_at_any_rhythm() -> None:
    series = footfall(24 * 7 * 6 + 24 * 7, seed=2)
    history, actual = series[:-24 * 7], series[-24 * 7:]
    both = forecast_series(history, period=(24, 168), horizon=24 * 7, origins=1)
    daily = forecast_series(history, period=24, horizon=24 * 7, origins=1)
    naive = np.tile(history[-24:], 7)  # seasonal naive at the daily period

    def error(forecast: np.ndarray) -> float:
        return float(np.mean(np.abs(actual - forecast)))

    assert error(both.mean) < 0.5 * error(daily.mean)  # the weekend is known
    assert error(both.mean) < 0.5 * error(naive)
    assert "mstl" in both.model and both.benchmark == "seasonal_naive"
    # A fractional period: four years of weekly sales with a yearly cycle (52.18 weeks).
    rng = np.random.default_rng(3)
    weeks = np.arange(4 * 52 + 26)
    sales = 200 + 60 * np.sin(2 * np.pi * weeks / 52.18) + rng.normal(0, 5, len(weeks))
    yearly = forecast_series(sales[:-26], period=52.18, horizon=26, origins=1)
    assert np.mean(np.abs(sales[-26:] - yearly.mean)) < 15


def test_prophet_takes_the_seasonalities_of_an_hourly_series() -> None:
    from goalpost.extensions.forecasting import ProphetInput

    series = footfall(24 * 28, seed=4)
    dates = pd.date_range("2025-03-03", periods=len(series), freq="h")
    result = forecast_series(series[:-48], period=(24, 168), horizon=48, origins=1,
                             models=["prophet"], prophet=ProphetInput(dates[:-48], "FR"))
    assert result.model == "prophet" and result.backtest_mase < result.benchmark_mase
    shape = np.corrcoef(result.mean, series[-48:])[0, 1]
    assert shape > 0.9
