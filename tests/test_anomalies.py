"""The anomalies extension: planted events found and named, each day judged on its past only,
and PanPan's planted anomalies found end to end against the generator's ground truth."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest

from goalpost.app.orchestrator import run_client
from goalpost.core.errors import GoalpostError
from goalpost.core.registry.models import Client
from goalpost.extensions.anomalies import EXTENSION, Settings, _standard_metrics, detect
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


def test_settings_are_checked() -> None:
    assert Settings.from_dict({"threshold": 3.5, "weeks": 8, "festive": ""}) == Settings(
        threshold=3.5, weeks=8, festive="")
    assert Settings.from_dict({}).festive_days() == (1220, 103)
    for raw, message in (({"treshold": 3}, "unknown setting.s. treshold"),
                         ({"weeks": 0}, "weeks must be a whole number above 0"),
                         ({"weeks": 2.5}, "weeks must be a whole number"),
                         ({"threshold": True}, "threshold must be a number"),
                         ({"festive": "Christmas"}, "festive must be MM-DD/MM-DD"),
                         ({"weeks": 8, "min_history": 6}, "min_history must be at least")):
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
    assert result.overall.precision >= 0.7, [
        (r["date"], r["metric"], r["dimension_value"]) for r in result.false_alarms]
    assert not result.misnamed
    assert set(table["severity"]) <= {"low", "medium", "high"}
    assert set(table["direction"]) <= {"spike", "drop"}
    assert set(table["model_version"]) == {EXTENSION.version}

    second = run_client("panpan")
    assert second.status == "succeeded"
    assert anomalies_table(conn).equals(table)  # nothing new: the job was not run again
