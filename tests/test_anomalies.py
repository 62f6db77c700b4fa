"""The anomalies extension: planted events found and named, each day judged on its past only,
and PanPan's planted anomalies found end to end against the generator's ground truth."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest

from goalpost.app.orchestrator import run_client
from goalpost.core.errors import GoalpostError
from goalpost.core.registry.models import Client
from goalpost.core.warehouse import tenants
from goalpost.extensions.anomalies import (
    EXTENSION,
    Settings,
    _standard_metrics,
    detect,
    detect_periodic,
    last_complete_day,
    periodic_detections,
)
from goalpost.extensions.anomalies import run as run_anomalies
from goalpost.extensions.api import JobContext
from goalpost.extensions.runner import run_extension
from goalpost.sandbox.demo import run as demo_run
from goalpost.sandbox.demo.apis import demo_apis
from goalpost.sandbox.demo.generator import GroundTruth, generate_panpan
from goalpost.sandbox.demo.scoring import score

SHOPS = {"A": 120.0, "B": 80.0, "C": 50.0}
CHANNELS = {"store": 0.8, "delivery": 0.2}
WEEKLY = np.array([0.85, 0.95, 0.95, 1.0, 1.1, 1.4, 0.8])


def shop_data(days: int = 210, *, events: dict[tuple[int, str], float] | None = None,
              seed: int = 1) -> pd.DataFrame:
    """Orders and revenue of three shops with two channels, as SLICES_SQL returns them:
    kpi_daily's total, locations and channels, and daily_sales' location x channel rows.
    `events` multiplies one shop's traffic on one day: {(day, shop): factor}."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2025-01-06", periods=days, freq="D")
    weather = np.exp(rng.normal(0, 0.04, days))
    cells = []
    for shop, size in SHOPS.items():
        factor = np.ones(days)
        for (day, target), value in (events or {}).items():
            if target == shop:
                factor[day] = value
        for channel, share in CHANNELS.items():
            orders = rng.poisson(size * share * WEEKLY[dates.dayofweek] * weather * factor)
            revenue = np.round(orders * rng.normal(9.0, 0.4, days), 2)
            cells.append(pd.DataFrame({"date": dates.date, "location": shop,
                                       "channel": channel, "orders": orders.astype(float),
                                       "revenue": revenue}))
    cells_frame = pd.concat(cells, ignore_index=True)
    parts = []
    for source, keys in (("kpi", []), ("kpi", ["location"]), ("kpi", ["channel"]),
                         ("sales", ["location", "channel"])):
        summed = cells_frame.groupby(["date", *keys], as_index=False)[["orders", "revenue"]].sum()
        for metric in ("orders", "revenue"):
            parts.append(pd.DataFrame({
                "source": source, "metric": metric, "date": summed["date"],
                "location": summed["location"] if "location" in keys else None,
                "channel": summed["channel"] if "channel" in keys else None,
                "product": None, "value": summed[metric]}))
    return pd.concat(parts, ignore_index=True)


def serious(anomalies: pd.DataFrame) -> pd.DataFrame:
    return anomalies[anomalies["severity"].isin(["medium", "high"])]


def test_a_shop_event_is_found_on_its_day_and_named() -> None:
    day = 150
    found = detect(shop_data(events={(day, "B"): 2.2, (day + 30, "A"): 0.4}))
    when = {str(pd.Timestamp("2025-01-06") + pd.Timedelta(days=d))[:10]: shop
            for d, shop in ((day, "B"), (day + 30, "A"))}
    rows = serious(found).assign(date=lambda f: f["date"].astype(str))
    assert set(rows["date"]) == set(when), rows[["date", "metric", "dimension_value"]]
    for row in rows.to_dict("records"):
        shop = when[row["date"]]
        assert row["direction"] == ("spike" if shop == "B" else "drop")
        if row["dimension"] == "location":
            assert row["dimension_value"] == shop
        else:  # the total and the channels name the shop that moved them
            top = next(c for c in row["contributors"] if c["dimension"] == "location")
            assert top["value"] == shop and top["share"] > 0.5
        assert row["lower"] < row["expected"] < row["upper"]
        assert not row["lower"] <= row["value"] <= row["upper"]
    shop_rows = rows[rows["dimension"] == "location"]
    assert set(zip(shop_rows["date"], shop_rows["dimension_value"], strict=True)) == set(
        when.items())


def test_each_day_is_judged_on_its_past_only() -> None:
    data = shop_data(events={(120, "C"): 0.3, (170, "A"): 1.9})
    full = detect(data)
    cut = date(2025, 1, 6) + pd.Timedelta(days=175).to_pytimedelta()
    truncated = detect(data[data["date"] <= cut])
    before = full[full["date"] <= cut].reset_index(drop=True)
    assert len(before) > 2
    pd.testing.assert_frame_equal(before, truncated.reset_index(drop=True))


def test_short_or_sparse_series_are_not_judged() -> None:
    data = shop_data(days=40)
    assert detect(data, settings=Settings(min_history=45)).empty
    # A series at zero on most days (refunds) has no daily baseline: a day of 30 is not news.
    dates = pd.date_range("2025-01-06", periods=120).date
    refunds = np.where(np.arange(120) % 3 == 0, 5.0, 0.0)
    refunds[100] = 30.0
    sparse = pd.DataFrame({"source": "kpi", "metric": "returns", "date": dates,
                           "location": None, "channel": None, "product": None,
                           "value": refunds})
    assert detect(sparse).empty


def test_a_monthly_metric_is_judged_on_its_months() -> None:
    client = Client.model_validate({"name": "Shop", "extensions": [], "metrics": {
        "marketing_spend": {"label": "Marketing spend", "unit": "currency",
                            "aggregation": "sum", "rhythm": "month", "dimensions": []}}})
    registry = client.metric_registry()
    rng = np.random.default_rng(3)
    months = pd.date_range("2020-01-01", periods=60, freq="MS")
    spend = 1000 * np.array([1.3, 1, 1, 1, 1, 1, 0.6, 0.5, 1.4, 1, 1, 1.5])[months.month - 1]
    spend = spend * np.exp(rng.normal(0, 0.03, 60))
    spend[54] *= 3  # July 2024: a campaign three times the usual
    monthly = pd.DataFrame({"source": "month", "metric": "marketing_spend", "date": months.date,
                            "location": None, "channel": None, "product": None,
                            "dimension": "all", "dimension_value": "all", "value": spend})
    # Its weeks are not its rhythm: not judged.
    weekly = monthly.assign(source="week", value=1.0)
    periods = pd.concat([monthly, weekly], ignore_index=True)
    [(metric, dimension, value, series, found)] = periodic_detections(periods, registry,
                                                                     Settings())
    assert (metric, dimension, value, len(series)) == ("marketing_spend", "all", "all", 60)
    # Judged month by month from the 25th on, on the months before each; the campaign's
    # month has the strongest evidence of them all, and the yearly season is found.
    assert np.flatnonzero(found.judged).tolist() == list(range(24, 60))
    assert int(np.argmax(found.score)) == 54 and found.direction[54] == 1
    assert (12.0,) in [p for _, p in found.periods]
    reported = detect_periodic(periods, registry, Settings())
    assert set(reported["severity"]) <= {"low", "medium", "high"}
    # run: the daily series as before, beside the months; none of them spread over days.
    data = pd.concat([shop_data(days=120), periods], ignore_index=True)
    every = run_anomalies(JobContext(slug="shop", client=client, data=data,
                                     now=datetime(2025, 6, 1, tzinfo=UTC)))
    daily = detect(shop_data(days=120), last_complete=date(2025, 5, 5))
    assert len(every[every["metric"] != "marketing_spend"]) == len(daily)
    assert (every["metric"] == "marketing_spend").sum() == len(reported)
    # Too few months to judge: nothing said.
    assert list(periodic_detections(monthly.iloc[:24], registry, Settings())) == []


def test_settings_are_checked() -> None:
    assert Settings.from_dict({"min_history": 35, "min_severity": "medium",
                               "festive": ""}) == Settings(min_history=35,
                                                           min_severity="medium", festive="")
    assert Settings.from_dict({}).festive_days() == (1220, 103)
    for raw, message in (({"treshold": 3}, "unknown setting.s. treshold"),
                         ({"cycles": 0}, "cycles must be a whole number above 0"),
                         ({"min_history": 2.5}, "min_history must be a whole number"),
                         ({"gap": True}, "gap must be a whole number"),
                         ({"festive": "Christmas"}, "festive must be MM-DD/MM-DD"),
                         ({"min_severity": "urgent"}, "min_severity must be one of")):
        with pytest.raises(GoalpostError, match=message):
            Settings.from_dict(raw)
    lacks = "input lacks column.s. channel, location, product, source"
    with pytest.raises(GoalpostError, match=lacks):
        detect(pd.DataFrame({"metric": [], "date": [], "value": []}))


def test_slices_are_used_only_for_metrics_computed_the_standard_way() -> None:
    client = Client.model_validate({"name": "Shop", "metrics": {
        "revenue": {"value": "SUM(total) FILTER (WHERE NOT is_return)"},
        "orders": {"label": "Receipts"}}})
    standard = _standard_metrics(client.metric_registry())
    assert "orders" in standard and "revenue" not in standard
    data = shop_data(events={(150, "B"): 2.2})
    rows = serious(detect(data, standard=standard))
    total = rows[(rows["dimension"] == "channel") & (rows["metric"] == "revenue")]
    # Without daily_sales' slices a channel's revenue has no locations to name.
    assert all(not c for c in total["contributors"])
    assert EXTENSION.key == ("metric", "dimension", "dimension_value", "date")


def test_another_dimension_is_judged_and_named_in_the_totals_drill_down() -> None:
    data = shop_data(events={(150, "B"): 3.0})
    # A mart dimension beside location and channel: shop B is the only one in Belgium.
    kpi = data[(data["source"] == "kpi") & data["location"].notna()].copy()
    kpi["dimension"], kpi["dimension_value"] = "country", kpi["location"].map(
        {"A": "FR", "B": "BE", "C": "FR"})
    kpi = kpi.groupby(["source", "metric", "date", "dimension", "dimension_value"],
                      as_index=False)["value"].sum().assign(location=None, channel=None,
                                                            product=None)
    found = serious(detect(pd.concat([data.assign(dimension=None, dimension_value=None),
                                      kpi], ignore_index=True)))
    day = (pd.Timestamp("2025-01-06") + pd.Timedelta(days=150)).date()
    country = found[(found["dimension"] == "country") & (found["date"] == day)]
    assert set(country["dimension_value"]) == {"BE"}
    total = found[(found["dimension"] == "all") & (found["date"] == day)]
    assert len(total)
    for contributors in total["contributors"]:
        first = next(c for c in contributors if c["dimension"] == "country")
        assert first["value"] == "BE" and first["share"] > 0.5


def collapsed_last_day() -> pd.DataFrame:
    """Three shops whose last day's export was cut at noon: every figure at 30%."""
    data = shop_data(days=120)
    last = data["date"].max()
    data.loc[data["date"] == last, "value"] *= 0.3
    return data


def test_a_partial_last_day_is_not_judged() -> None:
    data = collapsed_last_day()
    last = data["date"].max()
    judged = serious(detect(data))
    assert (judged["date"] == last).sum() >= 3  # judged as complete: a collapse everywhere
    assert set(judged[judged["date"] == last]["direction"]) == {"drop"}
    kept = serious(detect(data, last_complete=last - pd.Timedelta(days=1).to_pytimedelta()))
    assert not (kept["date"] == last).any()
    before = judged[judged["date"] < last].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept[kept["date"] < last].reset_index(drop=True), before)
    # The last complete day: data_as_of's when the mart says, else the day before today.
    now = datetime(2025, 5, 5, 22, 30, tzinfo=UTC)  # already the 6th in Paris and Auckland
    assert last_complete_day(date(2025, 5, 4), now, "Europe/Paris") == date(2025, 5, 4)
    assert last_complete_day(None, now, "Europe/Paris") == date(2025, 5, 5)
    assert last_complete_day(None, now, "UTC") == date(2025, 5, 4)
    assert last_complete_day(None, now, "Pacific/Auckland") == date(2025, 5, 5)


def shop_tables(conn: psycopg.Connection, data: pd.DataFrame) -> None:
    """The marts the extension reads, from shop_data's rows."""
    tenants.provision(conn, "shop")
    conn.execute("CREATE TABLE shop_marts.kpi_daily (metric text, date date, dimension text, "
                 "dimension_value text, value numeric)")
    conn.execute("CREATE TABLE shop_marts.daily_sales (sales_date date, location_id text, "
                 "channel text, revenue numeric, orders numeric, items numeric, "
                 "customers numeric, average_ticket numeric)")
    conn.execute("CREATE TABLE shop_marts.product_sales_daily (sales_date date, "
                 "location_id text, product_id text, revenue numeric, units_sold numeric)")
    kpi = data[data["source"] == "kpi"]
    rows = [(r.metric, r.date, "location" if r.location else "channel" if r.channel
             else "all", r.location or r.channel or "all", r.value)
            for r in kpi.itertuples(index=False)]
    sales = data[data["source"] == "sales"].pivot_table(
        index=["date", "location", "channel"], columns="metric", values="value").reset_index()
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO shop_marts.kpi_daily VALUES (%s, %s, %s, %s, %s)", rows)
        cur.executemany("INSERT INTO shop_marts.daily_sales (sales_date, location_id, channel, "
                        "revenue, orders) VALUES (%s, %s, %s, %s, %s)",
                        list(sales[["date", "location", "channel", "revenue", "orders"]]
                             .itertuples(index=False, name=None)))


def test_the_extension_reads_the_last_complete_day_from_data_as_of(
        conn: psycopg.Connection) -> None:
    data = collapsed_last_day()
    last = data["date"].max()
    shop_tables(conn, data)
    client = Client.model_validate({"name": "Shop", "extensions": ["anomalies"],
                                    "timezone": "Europe/Paris"})
    later = datetime.combine(last, datetime.min.time(), UTC) + pd.Timedelta(days=7)

    def last_day_rows(run_id: int) -> int:
        result = run_extension(conn, "shop", client, EXTENSION, run_id=run_id, now=later)
        assert result.status == "written"
        return conn.execute("SELECT count(*) FROM shop_insights.anomalies WHERE date = %s",
                            (last,)).fetchone()[0]

    # Without the mart, a week later, the last day is complete: its collapse is reported.
    assert last_day_rows(1) >= 3
    conn.execute("CREATE TABLE shop_marts.data_as_of (as_of_date date, "
                 "last_complete_date date)")
    conn.execute("INSERT INTO shop_marts.data_as_of VALUES (%s, %s)",
                 (last, last - pd.Timedelta(days=1).to_pytimedelta()))
    assert last_day_rows(2) == 0  # the mart says the last day is partial


# End to end: 150 days of PanPan at full scale (two planted events: one at a shop, one on
# the delivery channel), built like `goalpost run` builds it. bench/anomaly.py gives the
# figures over longer ranges and other seeds.
END = date(2025, 7, 15)
DAYS = 150
SCALE = 1.0
SEED = 7


@pytest.fixture
def panpan(project: Path, database_url: str) -> Iterator[Path]:
    demo_run.ensure_client_file()
    folder = demo_run.demo_data_dir()
    generate_panpan(folder, end=END, days=DAYS, scale=SCALE, seed=SEED)
    with demo_apis(folder):
        yield folder


def anomalies_table(conn: psycopg.Connection) -> pd.DataFrame:
    cur = conn.execute("SELECT * FROM panpan_insights.anomalies ORDER BY metric, dimension, "
                       "dimension_value, date")
    return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description or ()])


@pytest.mark.e2e
def test_panpan_planted_anomalies_are_found_and_named(panpan: Path,
                                                      conn: psycopg.Connection) -> None:
    first = run_client("panpan")
    assert first.status == "succeeded", [s.error for s in first.steps]
    step = next(s for s in first.steps if s.name == "extension anomalies")
    assert step.status == "succeeded"
    table = anomalies_table(conn)
    truth = GroundTruth.from_json(panpan / "ground_truth.json")
    kinds = {(e.shop_id == "delivery", e.kind) for e in truth.anomalies}
    assert len(truth.anomalies) == 2 and len({d for d, _ in kinds}) == 2  # shop and delivery

    result = score(truth, table)
    assert result.overall.recall >= 0.9, result.missed
    assert result.overall.precision >= 0.8, [
        (r["date"], r["metric"], r["dimension_value"]) for r in result.false_alarms]
    assert not result.misnamed
    assert set(table["severity"]) <= {"low", "medium", "high"}
    assert set(table["direction"]) <= {"spike", "drop"}
    assert set(table["model_version"]) == {EXTENSION.version}

    second = run_client("panpan")
    assert second.status == "succeeded"
    assert anomalies_table(conn).equals(table)  # nothing new: the job was not run again
