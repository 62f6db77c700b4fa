"""Goals: their YAML is validated naming the field; each goal's actual to date, forecast at
the deadline and status, from the forecasts when there are any, else from the run rate."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import psycopg
import pytest

from goalpost.app import clients
from goalpost.core import registry
from goalpost.core.errors import ConfigError
from goalpost.core.registry.models import Client
from goalpost.core.warehouse import tenants
from goalpost.extensions import goals
from goalpost.extensions.runner import run_extension

NOW = datetime(2025, 3, 16, 5, tzinfo=UTC)  # 06:00 in Paris: the 15th is the last full day
AS_OF = pd.Timestamp("2025-03-15")
WEEKLY = np.array([0.8, 0.9, 0.95, 1.0, 1.1, 1.35, 0.9])

VALID = """\
name: Shop
timezone: Europe/Paris
goals:
  - name: spring
    metric: revenue
    change_pct: 15
    baseline: previous_year
    period: quarter
    deadline: 2025-06-30
    dimension: location
    value: LYO-01
"""


@pytest.mark.parametrize(("old", "new", "line", "field", "words"), [
    ("metric: revenue", "metric: revenu", 5, "goals[0].metric", "unknown metric 'revenu'"),
    ("metric: revenue", "metric: average_ticket", 6, "goals[0].change_pct",
     "average_ticket is a ratio metric; a target or change_pct is a total over the period"),
    ("period: quarter", "period: week", 8, "goals[0].period", "one of 'month' or 'quarter'"),
    ("deadline: 2025-06-30", "deadline: 2025-05-31", 9, "goals[0].deadline",
     "2025-05-31 is not the last day of a quarter"),
    ("deadline: 2025-06-30", "deadline: 30/06/2025", 9, "goals[0].deadline", "valid date"),
    ("    baseline: previous_year\n", "", 4, "goals[0].baseline", "required with change_pct"),
    ("change_pct: 15", "target: 90000\n    change_pct: 15", 7, "goals[0].change_pct",
     "give one of target, change_pct, max and min"),
    ("change_pct: 15", "target: 90000", 7, "goals[0].baseline", "goes with change_pct only"),
    ("    change_pct: 15\n    baseline: previous_year\n", "", 4, "goals[0].change_pct",
     "give a `target`"),
    ("change_pct: 15", "change_pct: -120", 6, "goals[0].change_pct", "above -100"),
    ("baseline: previous_year", "baseline: {start: 2024-04-01, end: 2024-03-01}", 7,
     "goals[0].baseline.end", "is before start"),
    ("baseline: previous_year", "baseline: last_year", 7, "goals[0].baseline",
     "'previous_period' or 'previous_year'"),
    ("period: quarter\n    deadline: 2025-06-30",
     "period: {start: 2025-04-01, end: 2025-06-29}\n    deadline: 2025-06-30", 9,
     "goals[0].deadline", "differs from period.end (2025-06-29)"),
    ("period: quarter\n    deadline: 2025-06-30", "period: {start: 2025-04-01}", 4,
     "goals[0].deadline", "required: the last day of the period"),
    ("    value: LYO-01\n", "", 4, "goals[0].value", "required with dimension location"),
    ("dimension: location", "dimension: shop", 10, "goals[0].dimension",
     "metric revenue is not computed per shop"),
    ("change_pct: 15", "change_pct: 15\n    max: 3", 6, "goals[0].change_pct",
     "give one of target, change_pct, max and min"),
    ("    dimension: location\n", "", 10, "goals[0].value", "needs a `dimension`"),
    ("name: spring", "nam: spring", 4, "goals[0].nam", "unknown key"),
])
def test_invalid_goals_name_the_file_line_and_field(project, old, new, line, field, words):
    assert old in VALID
    (project / "clients" / "shop.yaml").write_text(VALID.replace(old, new))
    with pytest.raises(ConfigError) as raised:
        registry.load_client("shop")
    message = str(raised.value)
    assert f"clients/shop.yaml:{line}: {field}: " in message, message
    assert words in message, message


def test_goals_name_the_clients_own_metrics_and_their_dimensions(project):
    own = VALID.replace("name: Shop\n", "name: Shop\nmetrics:\n  deliveries: {label: D, "
                        "unit: count, aggregation: sum, value: COUNT(*), "
                        "dimensions: [channel]}\n")
    (project / "clients" / "shop.yaml").write_text(
        own.replace("metric: revenue", "metric: deliveries"))
    with pytest.raises(ConfigError, match=r"goals\[0\].dimension: metric deliveries is not "
                                          "computed per location"):
        registry.load_client("shop")
    (project / "clients" / "shop.yaml").write_text(
        own.replace("metric: revenue", "metric: deliveries").replace("location", "channel"))
    assert registry.load_client("shop").goals[0].metric == "deliveries"
    twice = VALID + VALID.split("goals:\n")[1]
    (project / "clients" / "shop.yaml").write_text(twice)
    with pytest.raises(ConfigError, match="two goals are both spring: give each a distinct"):
        registry.load_client("shop")


def goal(**fields: object):
    return Client.model_validate({"name": "Shop", "goals": [fields]}).goals[0]


def test_periods_and_baselines():
    quarter = goal(metric="orders", change_pct=10, baseline="previous_period",
                   period="quarter", deadline="2025-03-31")
    assert quarter.window() == (date(2025, 1, 1), date(2025, 3, 31))
    assert quarter.baseline_window() == (date(2024, 10, 1), date(2024, 12, 31))
    month = goal(metric="orders", change_pct=10, baseline="previous_year", period="month",
                 deadline="2025-02-28")
    assert month.baseline_window() == (date(2024, 2, 1), date(2024, 2, 29))
    dates = goal(metric="orders", change_pct=10, baseline="previous_period",
                 period={"start": "2025-03-10", "end": "2025-03-16"})
    assert dates.deadline == date(2025, 3, 16)
    assert dates.baseline_window() == (date(2025, 3, 3), date(2025, 3, 9))
    assert dates.key() == "orders all 2025-03-10..2025-03-16"
    fixed = goal(metric="orders", change_pct=10, period={"start": "2025-01-01"},
                 deadline="2025-06-30", baseline={"start": "2024-01-01", "end": "2024-06-30"})
    assert fixed.baseline_window() == (date(2024, 1, 1), date(2024, 6, 30))


def test_a_goal_without_deadline_stands_for_every_month_or_quarter():
    monthly = goal(metric="revenue", change_pct=15, baseline="previous_year", period="month")
    assert monthly.standing and monthly.key() == "revenue all every month"
    assert monthly.window(date(2024, 2, 10)) == (date(2024, 2, 1), date(2024, 2, 29))
    assert monthly.baseline_window(date(2024, 2, 10)) == (date(2023, 2, 1), date(2023, 2, 28))
    assert monthly.window(date(2025, 12, 31)) == (date(2025, 12, 1), date(2025, 12, 31))
    quarterly = goal(metric="orders", change_pct=5, baseline="previous_period",
                     period="quarter", dimension="location", value="LYO-01")
    assert quarterly.key() == "orders LYO-01 every quarter"
    for day in (date(2025, 4, 1), date(2025, 5, 15), date(2025, 6, 30)):
        assert quarterly.window(day) == (date(2025, 4, 1), date(2025, 6, 30))
    assert quarterly.baseline_window(date(2025, 11, 2)) == (date(2025, 7, 1),
                                                             date(2025, 9, 30))
    with pytest.raises(ValueError, match="applies every month: say which day"):
        monthly.window()


def synthetic_kpi() -> pd.DataFrame:
    """Revenue, orders and returns per day from 2024-01-01 to the 15th of March 2025, for
    the total and two shops: a weekly cycle, noise, and revenue growing 20% a year."""
    rng = np.random.default_rng(3)
    dates = pd.date_range("2024-01-01", AS_OF, freq="D")
    week = WEEKLY[dates.dayofweek]
    growth = 1 + 0.2 * np.arange(len(dates)) / 365
    frames = []
    for shop, size in (("LYO-01", 600.0), ("LYO-02", 400.0)):
        revenue = size * week * growth * rng.normal(1, 0.08, len(dates))
        orders = np.round(revenue / 12)
        returns = np.abs(rng.normal(0.01, 0.005, len(dates))) * revenue
        for metric, values in (("revenue", revenue), ("orders", orders),
                               ("returns", returns)):
            frames.append(pd.DataFrame({"metric": metric, "date": dates.date,
                                        "dimension": "location", "dimension_value": shop,
                                        "value": np.round(values, 2)}))
    shops = pd.concat(frames)
    total = shops.groupby(["metric", "date"], as_index=False)["value"].sum().assign(
        dimension="all", dimension_value="all")
    return pd.concat([shops, total])[["metric", "date", "dimension", "dimension_value",
                                      "value"]]


@pytest.fixture
def shop(conn: psycopg.Connection) -> tuple[psycopg.Connection, pd.DataFrame]:
    tenants.provision(conn, "shop")
    conn.execute("CREATE TABLE shop_marts.kpi_daily (metric text, date date, dimension text, "
                 "dimension_value text, value numeric)")
    kpi = synthetic_kpi()
    buffer = io.StringIO()
    kpi.to_csv(buffer, index=False, header=False)
    with conn.cursor().copy("COPY shop_marts.kpi_daily FROM STDIN (FORMAT csv)") as copy:
        copy.write(buffer.getvalue())
    return conn, kpi


def client(*goal_list: dict) -> Client:
    return Client.model_validate({"name": "Shop", "timezone": "Europe/Paris",
                                  "goals": list(goal_list)})


def progress(conn: psycopg.Connection, who: Client, run_id: int = 1) -> pd.DataFrame:
    """Run the goals as `goalpost run` does: the registry entry synced first."""
    clients.sync(conn, "shop", who)
    job = run_extension(conn, "shop", who, goals.EXTENSION, run_id=run_id, now=NOW)
    assert job.status == "written"
    cursor = conn.execute("SELECT * FROM shop_insights.goal_progress")
    return pd.DataFrame(cursor.fetchall(), columns=[d.name for d in cursor.description]
                        ).set_index("goal")


MARCH = {"metric": "revenue", "period": "month", "deadline": "2025-03-31"}


def march_total(kpi: pd.DataFrame, shop: str = "all", metric: str = "revenue") -> float:
    rows = kpi[(kpi["metric"] == metric) & (kpi["dimension_value"] == shop)]
    return float(rows.loc[pd.to_datetime(rows["date"]) >= "2025-03-01", "value"].sum())


def weekday_run_rate(kpi: pd.DataFrame, shop: str = "all") -> float:
    """What the run rate should project for 16-31 March, computed the plain way."""
    rows = kpi[(kpi["metric"] == "revenue") & (kpi["dimension_value"] == shop)]
    daily = rows.assign(date=pd.to_datetime(rows["date"])).set_index("date")["value"]
    last = daily[AS_OF - pd.Timedelta(days=27):AS_OF]
    by_weekday = last.groupby(last.index.dayofweek).mean()
    remaining = pd.date_range("2025-03-16", "2025-03-31", freq="D")
    return float(sum(by_weekday[d] for d in remaining.dayofweek))


def test_without_forecasts_the_run_rate_projects_and_the_status_follows(shop):
    conn, kpi = shop
    first = progress(conn, client({**MARCH, "name": "probe", "target": 1.0}))
    probe = first.loc["probe"]
    actual = march_total(kpi)
    assert probe["actual_to_date"] == pytest.approx(actual)
    assert probe["forecast_remaining"] == pytest.approx(weekday_run_rate(kpi))
    assert probe["forecast_at_deadline"] == pytest.approx(actual + weekday_run_rate(kpi))
    assert probe["method"] == "run_rate"
    assert probe["note"] == ("no forecasts table yet: projected from the weekday run rate of "
                             "the last 28 days")
    assert (probe["as_of"], probe["days_elapsed"], probe["days_total"]) == (
        date(2025, 3, 15), 15, 31)
    point, upper = probe["forecast_at_deadline"], probe["forecast_upper_80"]
    assert (probe["forecast_lower_95"] < probe["forecast_lower_80"] < point < upper
            < probe["forecast_upper_95"])

    # Edited goals with the same data: recomputed (the synced goals are among the inputs).
    table = progress(conn, client(
        {**MARCH, "name": "easy", "target": point * 0.98},
        {**MARCH, "name": "stretch", "target": (point + upper) / 2},
        {**MARCH, "name": "far", "target": upper * 1.02},
        {"metric": "returns", "name": "fewer_returns", "period": "month",
         "deadline": "2025-03-31", "target": point}), run_id=2)
    assert table.loc["easy", "status"] == "on-track"
    assert table.loc["stretch", "status"] == "at-risk"
    assert table.loc["far", "status"] == "off-track"
    # Returns go down: staying under the target is on track.
    assert table.loc["fewer_returns", "status"] == "on-track"
    assert table.loc["far", "needed_per_day"] == pytest.approx((upper * 1.02 - actual) / 16)


def test_a_standing_goal_is_tracked_for_the_month_the_data_has_reached(shop):
    conn, kpi = shop
    table = progress(conn, client({"metric": "revenue", "period": "month", "target": 1.0},
                                  {**MARCH, "name": "dated", "target": 1.0}))
    standing, dated = table.loc["revenue all every month"], table.loc["dated"]
    assert (standing["period_start"], standing["deadline"]) == (date(2025, 3, 1),
                                                                date(2025, 3, 31))
    assert standing["actual_to_date"] == pytest.approx(march_total(kpi))
    assert standing["forecast_at_deadline"] == pytest.approx(dated["forecast_at_deadline"])
    assert standing["status"] == "on-track"


def test_change_against_a_baseline_a_shop_and_a_finished_period(shop):
    conn, kpi = shop
    table = progress(conn, client(
        {**MARCH, "name": "yoy", "change_pct": 15, "baseline": "previous_year",
         "dimension": "location", "value": "LYO-02"},
        {**MARCH, "name": "too_early", "change_pct": 15, "baseline": {
            "start": "2023-03-01", "end": "2023-03-31"}},
        {"metric": "orders", "name": "february", "period": "month", "deadline": "2025-02-28",
         "target": 1.0},
        {"metric": "orders", "name": "february_stretch", "period": "month",
         "deadline": "2025-02-28", "target": 1e9},
        {**MARCH, "name": "nowhere", "target": 1.0, "dimension": "location",
         "value": "VIL-01"}))
    rows = kpi[(kpi["metric"] == "revenue") & (kpi["dimension_value"] == "LYO-02")]
    march_2024 = rows.loc[pd.to_datetime(rows["date"]).between("2024-03-01", "2024-03-31"),
                          "value"].sum()
    yoy = table.loc["yoy"]
    assert (yoy["baseline_start"], yoy["baseline_end"]) == (date(2024, 3, 1),
                                                            date(2024, 3, 31))
    assert yoy["baseline_value"] == pytest.approx(march_2024)
    assert yoy["target"] == pytest.approx(march_2024 * 1.15)
    assert yoy["actual_to_date"] == pytest.approx(march_total(kpi, "LYO-02"))
    assert yoy["forecast_remaining"] == pytest.approx(weekday_run_rate(kpi, "LYO-02"))
    assert yoy["status"] in ("on-track", "at-risk", "off-track")
    assert table.loc["too_early", "status"] == "unknown"
    assert "baseline period (2023-03-01 to 2023-03-31) is not all in the data" in table.loc[
        "too_early", "note"]
    assert (table.loc["february", "status"], table.loc["february", "method"]) == (
        "achieved", "final")
    assert table.loc["february_stretch", "status"] == "missed"
    assert table.loc["nowhere", "status"] == "unknown"
    assert table.loc["nowhere", "note"] == "no data for revenue at VIL-01"


def write_forecasts(conn: psycopg.Connection, days: pd.DatetimeIndex, yhat: float,
                    shop: str = "all") -> None:
    """A forecasts table as the forecast extension writes it (runner columns included)."""
    conn.execute("CREATE TABLE IF NOT EXISTS shop_insights.forecasts (metric text, dimension "
                 "text, dimension_value text, frequency text, date date, yhat double "
                 "precision, yhat_lower_80 double precision, yhat_upper_80 double precision, "
                 "yhat_lower_95 double precision, yhat_upper_95 double precision, model text, "
                 "run_id bigint, model_version text, computed_at timestamptz DEFAULT now())")
    dimension = "all" if shop == "all" else "location"
    with conn.cursor() as cur:
        for day in days:
            cur.execute("INSERT INTO shop_insights.forecasts VALUES ('revenue', %s, %s, 'day', "
                        "%s, %s, %s, %s, %s, %s, 'ets', 1, '1')",
                        (dimension, shop, day.date(), yhat, yhat * 0.9, yhat * 1.1,
                         yhat * 0.8, yhat * 1.2))
        # Monthly rows are not daily forecasts.
        cur.execute("INSERT INTO shop_insights.forecasts VALUES ('revenue', %s, %s, 'month', "
                    "'2025-03-01', 1e9, 0, 2e9, 0, 3e9, 'ets', 1, '1')", (dimension, shop))


def test_with_forecasts_the_forecast_gives_the_deadline_and_its_bounds(shop):
    conn, kpi = shop
    write_forecasts(conn, pd.date_range("2025-03-16", "2025-04-10", freq="D"), 1000.0)
    write_forecasts(conn, pd.date_range("2025-03-16", "2025-04-10", freq="D"), 5.0, "LYO-01")
    who = client({**MARCH, "name": "march", "target": 1.0},
                 {"metric": "revenue", "name": "april", "period": "month",
                  "deadline": "2025-04-30", "target": 1.0},
                 {**MARCH, "name": "orders", "metric": "orders", "target": 1.0})
    table = progress(conn, who)
    actual = march_total(kpi)
    march = table.loc["march"]
    assert (march["method"], march["note"]) == ("forecast", "")
    assert march["forecast_remaining"] == pytest.approx(16 * 1000)
    assert march["forecast_at_deadline"] == pytest.approx(actual + 16_000)
    assert march["forecast_lower_80"] == pytest.approx(actual + 16 * 900)
    assert march["forecast_upper_95"] == pytest.approx(actual + 16 * 1200)
    april = table.loc["april"]
    assert april["method"] == "forecast+run_rate"
    assert april["note"] == ("starts on 2025-04-01; the forecast ends on 2025-04-10: later "
                             "days from the weekday run rate of the last 28 days")
    assert april["actual_to_date"] == 0 and april["days_elapsed"] == 0
    assert april["forecast_remaining"] > 10 * 1000
    orders = table.loc["orders"]
    assert orders["method"] == "run_rate"
    assert orders["note"].startswith("no forecast for this metric and dimension")
    # Nothing new: nothing recomputed; the forecasts rewritten: goals follow.
    assert run_extension(conn, "shop", who, goals.EXTENSION, run_id=2,
                         now=NOW).status == "unchanged"
    conn.execute("UPDATE shop_insights.forecasts SET yhat = 2000 WHERE dimension = 'all'")
    table = progress(conn, who, run_id=3)
    assert table.loc["march", "forecast_remaining"] == pytest.approx(32_000)


def test_no_goals_write_an_empty_table(shop):
    conn, _ = shop
    job = run_extension(conn, "shop", client(), goals.EXTENSION, run_id=1, now=NOW)
    assert (job.status, job.rows) == ("written", 0)
