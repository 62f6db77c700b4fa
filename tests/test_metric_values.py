"""Metrics from everywhere, at their grain, on the test client of tests/metric_client.py:
monthly marketing spend from a spreadsheet, daily footfall per shop from a CSV, weekly staff
hours entered with `goalpost metrics record` (one corrected), and the POS sales. CAC,
conversion and sales per labour hour equal the figures computed by hand below."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import psycopg
import pytest
from metric_client import STAFF_CORRECTION, STAFF_HOURS, write_client

from goalpost.app.orchestrator import run_client

pytestmark = pytest.mark.e2e


@pytest.fixture
def shop(project, database_url, run_cli) -> str:
    write_client(project)
    for day, hours in STAFF_HOURS:
        assert run_cli("metrics", "record", "metrics_shop", "staff_hours", day, hours,
                       "--by", "Sam").exit_code == 0
    assert run_cli("metrics", "record", "metrics_shop", "staff_hours", *STAFF_CORRECTION,
                   "--by", "Alex", "--note", "payroll corrected").exit_code == 0
    run = run_client("metrics_shop")
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]
    return "metrics_shop"


def value(conn: psycopg.Connection, metric: str, grain: str, start: str,
          dimension: str = "all", of: str = "all") -> Decimal | None:
    found = conn.execute(
        "SELECT value FROM metrics_shop_marts.kpi_values WHERE metric = %s AND grain = %s "
        "AND period_start = %s AND dimension = %s AND dimension_value = %s",
        (metric, grain, date.fromisoformat(start), dimension, of)).fetchall()
    assert len(found) <= 1
    return found[0][0] if found else None


def test_metrics_at_their_grain_equal_the_hand_computed_figures(shop, conn):
    # March 2025: 102 new customers (spend of February, 1000, / 10, plus 2).
    assert value(conn, "new_customers", "month", "2025-03-01") == 102
    assert value(conn, "marketing_spend", "month", "2025-03-01") == 1200
    assert round(value(conn, "cac", "month", "2025-03-01"), 4) == Decimal("11.7647")
    # A monthly metric is not spread over days or weeks.
    assert value(conn, "marketing_spend", "day", "2025-03-01") is None
    assert value(conn, "cac", "week", "2025-03-03") is None


def test_formulas_over_inputs_of_every_source(shop, conn, run_cli):
    # Conversion = orders / footfall, per day, per shop and per month.
    # 31 March: 12 and 8 anonymous sales, no first purchase (those are on days 1-28);
    # footfall 20 at S1 and 40 at S2.
    assert value(conn, "conversion", "day", "2025-03-31", "location", "S1") == Decimal("0.6")
    assert value(conn, "conversion", "day", "2025-03-31", "location", "S2") == Decimal("0.2")
    assert round(value(conn, "conversion", "day", "2025-03-31"), 4) == Decimal("0.3333")
    # March: 31 * 20 anonymous sales + 102 first purchases = 722 orders over footfall
    # 31 * 20 + 30 * 16 + 40 = 1140 visitors.
    assert value(conn, "footfall", "month", "2025-03-01") == 1140
    assert round(value(conn, "conversion", "month", "2025-03-01"), 5) == Decimal("0.63333")
    # Footfall starts in 2025: no conversion before, rather than a made-up one.
    assert value(conn, "conversion", "day", "2024-12-31") is None
    # Sales per labour hour, weekly: the week of 10 March (days 10-16, each with 4 first
    # purchases) made 7 * 20 * 8.00 + 28 * 12.00 = 1456.00 over 105 hours (the corrected
    # value; 110 was entered first).
    assert value(conn, "staff_hours", "week", "2025-03-10") == 105
    assert round(value(conn, "sales_per_labour_hour", "week", "2025-03-10"), 4) == \
        Decimal("13.8667")
    assert value(conn, "sales_per_labour_hour", "month", "2025-03-01") is None
    # kpi_daily holds the daily metrics only.
    found = {r[0] for r in conn.execute("SELECT DISTINCT metric FROM metrics_shop_marts.kpi_daily")}
    assert {"conversion", "footfall", "revenue"} <= found
    assert not found & {"cac", "marketing_spend", "staff_hours", "sales_per_labour_hour"}
    # Every value entered by hand is kept with who and when.
    history = run_cli("metrics", "history", "metrics_shop", "staff_hours")
    lines = [line for line in history.output.splitlines() if "2025-03-10" in line]
    assert len(lines) == 2 and lines[0].startswith("* ") and "= 105" in lines[0]
    assert "by Alex" in lines[0] and "payroll corrected" in lines[0] and "by Sam" in lines[1]


def test_a_value_entered_after_a_run_counts_from_the_next_run(shop, conn, run_cli):
    assert run_cli("metrics", "record", "metrics_shop", "footfall", "2025-03-31", "30",
                   "--dimension", "location=S2").exit_code == 0
    run = run_client("metrics_shop")
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]
    # The value by hand corrects the file's 40: 8 sales over 30 visitors.
    assert round(value(conn, "conversion", "day", "2025-03-31", "location", "S2"), 4) == \
        Decimal("0.2667")
    assert value(conn, "footfall", "day", "2025-03-31") == 50


def test_the_cac_goals_are_tracked_at_the_metrics_grain(shop, conn):
    rows = {r[0]: r[1:] for r in conn.execute(
        "SELECT goal, bound, grain, target, actual_to_date, forecast_at_deadline, method, "
        "status FROM metrics_shop_insights.goal_progress ORDER BY goal")}
    # Q1 2025 is over: CAC of March (its rhythm is its formula's coarsest part: the month),
    # 1200 / 102 = 11.76, under 12.
    bound, grain, target, actual, final, method, status = rows["cac_q1"]
    assert (bound, grain, target, method, status) == ("max", "month", 12, "final", "achieved")
    assert round(final, 4) == 11.7647 and round(actual, 4) == 11.7647
    # Q2 has not begun its last month: no forecasts table, so the latest month stands for June.
    bound, grain, target, actual, forecast, method, status = rows["cac_q2"]
    assert (bound, grain, method, status) == ("max", "month", "last_value", "on-track")
    assert round(forecast, 4) == 11.7647


def test_declared_relationships_are_measured_and_judged(shop, conn):
    found = {r[0]: r[1:] for r in conn.execute(
        "SELECT relationship, grain, expected_lag, expected_rho, expected_n, verdict "
        "FROM metrics_shop_insights.correlations WHERE relationship IS NOT NULL "
        "AND dimension = 'all'")}
    # new_customers(m) = spend(m - 1) / 10 plus a little noise: their month-over-month
    # changes at lag one month agree in rank almost perfectly, on 25 months (27 months of
    # both, one lost to the change, one to the lag).
    grain, lag, rho, n, verdict = found["marketing_spend -> new_customers"]
    assert (grain, lag, n, verdict) == ("month", 1, 25, "supported")
    assert rho > 0.9
    # Customers who buy are those new customers: declared negative, the data says otherwise.
    grain, lag, rho, n, verdict = found["marketing_spend -> customers"]
    assert (grain, lag, verdict) == ("month", 1, "contradicted") and rho > 0.9


def test_the_conversion_alert_fires_once(shop, conn):
    def fired() -> list[tuple[str, str]]:
        return conn.execute("SELECT rule, key FROM goalpost.alert_events WHERE client = "
                            "'metrics_shop' AND event = 'fired'").fetchall()

    # 31 March at S2: 8 sales over 40 visitors, 0.2, under the warning level 0.5; S1's 0.6
    # and S2's usual 8 / 16 = 0.5 are not.
    (event,) = fired()
    assert event[0] == "low_conversion" and "S2" in event[1]
    run = run_client("metrics_shop")
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]
    assert len(fired()) == 1
