"""A dimension with a single value (one shop, one channel) is the total: the extensions read
the total once, a goal on the one shop follows the total's forecast; and the last complete day
of the marts (data_as_of) is the newest day they judge."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
import psycopg
import pytest
from test_goals import MARCH, client, progress, synthetic_kpi, write_forecasts

from goalpost.core.warehouse import tenants
from goalpost.extensions.api import Column, Extension
from goalpost.extensions.runner import load_inputs


@pytest.fixture
def one_shop(conn: psycopg.Connection) -> psycopg.Connection:
    """Client `shop` whose kpi_daily has one location (LYO-01: the total again) and two
    channels."""
    tenants.provision(conn, "shop")
    conn.execute("CREATE TABLE shop_marts.kpi_daily (metric text, date date, dimension text, "
                 "dimension_value text, value numeric)")
    kpi = synthetic_kpi()
    shop = kpi[kpi["dimension_value"] == "LYO-01"]
    total = shop.assign(dimension="all", dimension_value="all")
    channels = pd.concat([shop.assign(dimension="channel", dimension_value=name,
                                      value=shop["value"] * share)
                          for name, share in (("in_store", 0.75), ("delivery", 0.25))])
    buffer = io.StringIO()
    pd.concat([shop, total, channels]).to_csv(buffer, index=False, header=False)
    with conn.cursor().copy("COPY shop_marts.kpi_daily FROM STDIN (FORMAT csv)") as copy:
        copy.write(buffer.getvalue())
    return conn


def test_extensions_read_a_single_valued_dimension_as_the_total(one_shop) -> None:  # noqa: ANN001
    reader = Extension("probe", "", "1", "probe", (Column("x", "text"),), lambda job: None)
    data = load_inputs(one_shop, "shop", reader)
    assert set(data["dimension"]) == {"all", "channel"}
    assert set(data.loc[data["dimension"] == "channel", "dimension_value"]) == {"in_store",
                                                                                 "delivery"}
    # kpi_daily itself keeps the shop's rows: goals, alerts and dashboards name shops.
    assert one_shop.execute("SELECT count(*) FROM shop_marts.kpi_daily "
                            "WHERE dimension = 'location'").fetchone()[0] > 0


def test_a_goal_on_the_one_shop_follows_the_total_forecast(one_shop) -> None:  # noqa: ANN001
    write_forecasts(one_shop, pd.date_range("2025-03-16", "2025-04-10", freq="D"), 1000.0)
    table = progress(one_shop, client({**MARCH, "name": "shop", "target": 1.0,
                                       "dimension": "location", "value": "LYO-01"}))
    assert table.loc["shop", "method"] == "forecast"
    assert table.loc["shop", "forecast_remaining"] == pytest.approx(16 * 1000)


def test_the_marts_last_complete_day_is_the_last_judged(one_shop) -> None:  # noqa: ANN001
    one_shop.execute("CREATE TABLE shop_marts.data_as_of AS SELECT DATE '2025-03-15' AS "
                     "as_of_date, DATE '2025-03-10' AS last_complete_date")
    table = progress(one_shop, client({**MARCH, "name": "march", "target": 1.0}))
    assert table.loc["march", "as_of"] == date(2025, 3, 10)
