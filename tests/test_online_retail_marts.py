"""Online Retail II (a real year of a UK shop's invoice lines) with the country as a dimension:
what a receipt is, figures that agree across marts, revenue per country, and dashboards that
fit a one-shop client whose data ends in 2010, each against figures computed independently
with pandas from the file.

The file holds invoices of three kinds (see ../shared/data/README.md): sales, cancellations
("C..." invoices: money and goods going back) and adjustments that move no goods for money:
stock write-offs at price 0 with negative quantities ("damages", "missing"), zero-value
corrections and bad-debt entries ("A..." invoices: money written off, no goods). One client,
built once for the module (the build and its extensions take a few minutes).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import chromium
import pandas as pd
import psycopg
import pytest
from test_online_retail import CLIENT as RETAIL
from test_online_retail import DATA
from test_report_page import load, pixels

from goalpost.app.orchestrator import run_client
from goalpost.core.identifiers import reader_role
from goalpost.core.warehouse import connection
from goalpost.core.warehouse.migrations import migrate
from goalpost.core.warehouse.tenants import reader_password
from goalpost.metabase import report
from goalpost.metabase.charts import PALETTE

pytestmark = pytest.mark.e2e

# The client of test_online_retail, with the country of each order as a dimension.
CLIENT = RETAIL + """dimensions:
  country: {entity: orders}
"""


@dataclass
class Expected:
    """The figures, from the file alone."""

    kinds: Counter
    returned_units: Decimal
    refunded: Decimal
    orders_per_day: dict[date, int]
    items_per_day: dict[date, Decimal]
    orders_per_month: dict[date, int]
    known_orders_per_month: dict[date, int]
    revenue_per_country: dict[str, Decimal]


@pytest.fixture(scope="module")
def expected() -> Expected:
    if not DATA.exists():
        pytest.skip(f"the Online Retail II file is not on this machine (looked for {DATA})")
    lines = pd.read_csv(DATA, dtype=str, keep_default_na=False)
    lines["amount"] = [Decimal(q) * Decimal(p) for q, p in zip(lines["Quantity"], lines["Price"],
                                                               strict=True)]
    lines["units"] = lines["Quantity"].map(Decimal)
    invoices = lines.groupby("Invoice").agg(
        total=("amount", "sum"), units=("units", "sum"), first=("InvoiceDate", "min"),
        goods_back=("units", lambda u: bool((u < 0).any())),
        country=("Country", lambda c: c.str.strip().iloc[0]),
        customer=("Customer ID", lambda c: c.str.strip().max()))
    invoices["kind"] = [
        "sale" if total > 0 else "return" if total < 0 and back else "adjustment"
        for total, back in zip(invoices["total"], invoices["goods_back"], strict=True)]
    invoices["day"] = pd.to_datetime(invoices["first"]).dt.date
    invoices["month"] = [d.replace(day=1) for d in invoices["day"]]
    sales = invoices[invoices["kind"] == "sale"]
    returns = invoices[invoices["kind"] == "return"]
    traded = invoices[invoices["kind"] != "adjustment"]
    per_country: dict[str, Decimal] = defaultdict(Decimal)
    for country, total in zip(traded["country"], traded["total"], strict=True):
        per_country[country] += total
    return Expected(
        kinds=Counter(invoices["kind"]),
        returned_units=-sum(returns["units"], Decimal(0)),
        refunded=-sum(returns["total"], Decimal(0)),
        orders_per_day=sales.groupby("day").size().to_dict(),
        items_per_day={d: sum(u, Decimal(0)) for d, u in sales.groupby("day")["units"]},
        orders_per_month=sales.groupby("month").size().to_dict(),
        known_orders_per_month=sales[sales["customer"] != ""].groupby("month").size().to_dict(),
        revenue_per_country=dict(per_country))


@pytest.fixture(scope="module")
def built(expected: Expected, pg_server: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[str]:
    """The client `retail`, built with its extensions, in a database and project of its own
    that stay the current ones (GOALPOST_HOME, _STATE_DIR, _DATABASE_URL) for the module's
    tests; its URL."""
    root = tmp_path_factory.mktemp("retail-marts") / "project"
    (root / "clients").mkdir(parents=True)
    (root / "clients" / "retail.yaml").write_text(CLIENT)
    name = f"retail_marts_{os.getpid()}"
    url = f"{pg_server.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOALPOST_HOME", str(root))
        patch.setenv("GOALPOST_STATE_DIR", str(root / ".goalpost"))
        patch.setenv("GOALPOST_DATABASE_URL", url)
        patch.setattr(connection, "_cached_url", None)
        run = run_client("retail")
        assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]
        yield url
    from goalpost.transform import build

    build.forget_contexts("retail")
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute('DROP ROLE IF EXISTS "retail_reader"')


@pytest.fixture
def db(built: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(built, autocommit=True) as conn:
        yield conn


def test_adjustments_are_neither_orders_nor_returns(db: psycopg.Connection,
                                                    expected: Expected) -> None:
    kinds = dict(db.execute("SELECT kind, count(*) FROM retail_staging.orders GROUP BY kind"))
    assert kinds == dict(expected.kinds)
    assert kinds["adjustment"] == 3273  # 3,270 zero-value invoices and 3 bad-debt entries
    orders, returned_units, refunded = db.execute(
        "SELECT (SELECT sum(orders) FROM retail_marts.daily_sales), "
        "(SELECT sum(items_returned) FROM retail_marts.daily_sales), "
        "(SELECT sum(value) FROM retail_marts.kpi_daily "
        " WHERE metric = 'returns' AND dimension = 'all')").fetchone()
    assert orders == expected.kinds["sale"]
    assert returned_units == expected.returned_units == 213_419
    assert refunded == expected.refunded
    assert db.execute("SELECT count(*), sum(items) FROM retail_staging.refunds").fetchone() == (
        expected.kinds["return"], expected.returned_units)
    # No write-off is a product's sale or return either.
    assert db.execute("SELECT sum(units_returned) FROM retail_marts.product_sales_daily"
                      ).fetchone()[0] == expected.returned_units


def test_no_day_has_negative_items_sold(db: psycopg.Connection, expected: Expected) -> None:
    items = dict(db.execute("SELECT date, value FROM retail_marts.kpi_daily "
                            "WHERE metric = 'items' AND dimension = 'all'"))
    assert min(items.values()) >= 0
    assert {d: v for d, v in items.items() if v} == expected.items_per_day
    assert dict(db.execute("SELECT sales_date, sum(items) FROM retail_marts.daily_sales "
                           "GROUP BY 1")) == items
    assert dict(db.execute("SELECT sales_date, sum(units_sold) FROM "
                           "retail_marts.product_sales_daily GROUP BY 1")) == items


def test_orders_agree_across_marts(db: psycopg.Connection, expected: Expected) -> None:
    def per(query: str) -> dict:
        return {k: int(v) for k, v in db.execute(query) if v}

    daily = per("SELECT sales_date, sum(orders) FROM retail_marts.daily_sales GROUP BY 1")
    assert daily == expected.orders_per_day
    assert per("SELECT date, value FROM retail_marts.kpi_daily WHERE metric = 'orders' "
               "AND dimension = 'all'") == daily
    # Country is the order's: every order has one, so the countries add up to the total.
    assert per("SELECT date, sum(value) FROM retail_marts.kpi_daily WHERE metric = 'orders' "
               "AND dimension = 'country' GROUP BY 1") == daily
    assert per("SELECT sales_month, sum(orders) FROM retail_marts.monthly_sales GROUP BY 1"
               ) == expected.orders_per_month
    assert per("SELECT month, sum(orders) FROM retail_marts.customers_monthly GROUP BY 1"
               ) == expected.known_orders_per_month


def test_revenue_per_country_equals_pandas_to_the_cent(built: str, db: psycopg.Connection,
                                                       expected: Expected) -> None:
    found = dict(db.execute("SELECT dimension_value, sum(value) FROM retail_marts.kpi_daily "
                            "WHERE metric = 'revenue' AND dimension = 'country' GROUP BY 1"))
    assert len(found) == len(expected.revenue_per_country) == 40
    assert found == expected.revenue_per_country
    assert dict(db.execute("SELECT country, sum(revenue) FROM retail_marts.product_sales_daily "
                           "GROUP BY 1")) == expected.revenue_per_country
    assert dict(db.execute("SELECT country, sum(revenue) FROM retail_marts.daily_sales "
                           "GROUP BY 1")) == expected.revenue_per_country
    # The reader role (Metabase's login) reads it.
    with psycopg.connect(built, user=reader_role("retail"),
                         password=reader_password("retail")) as reader:
        uk = reader.execute("SELECT sum(value) FROM retail_marts.kpi_daily WHERE metric = "
                            "'revenue' AND dimension_value = 'United Kingdom'").fetchone()[0]
    assert uk == expected.revenue_per_country["United Kingdom"]


def test_data_as_of_and_partial_month(db: psycopg.Connection) -> None:
    # The file ends on 9 December 2010 (its last sale at 20:01, later than the day's usual
    # close): that day is complete, December is not.
    assert db.execute("SELECT as_of_date, last_complete_date, partial_day, last_complete_month "
                      "FROM retail_marts.data_as_of").fetchall() == [
        (date(2010, 12, 9), date(2010, 12, 9), False, date(2010, 11, 1))]
    assert dict(db.execute("SELECT sales_month, bool_and(complete_month) FROM "
                           "retail_marts.monthly_sales GROUP BY 1 ORDER BY 1 DESC LIMIT 2")) == {
        date(2010, 12, 1): False, date(2010, 11, 1): True}


def test_one_shop_insights_hold_no_repeated_series(db: psycopg.Connection) -> None:
    """One shop, one channel: per location and per channel is the total again."""
    for table, key in (("forecasts", "metric, dimension, dimension_value, frequency, date"),
                       ("anomalies", "metric, dimension, dimension_value, date"),
                       ("trends", "metric, dimension, dimension_value"),
                       ("correlations", "metric_x, metric_y, dimension, dimension_value"),
                       ("driver_attribution", "metric, period, dimension, dimension_value, "
                                              "driver")):
        dimensions = {r[0] for r in db.execute(
            f"SELECT DISTINCT dimension FROM retail_insights.{table}")}
        assert dimensions & {"location", "channel"} == set(), table
        assert db.execute(f"SELECT count(*) FROM (SELECT {key} FROM retail_insights.{table} "
                          f"GROUP BY {key} HAVING count(*) > 1) AS twice").fetchone()[0] == 0
    # The country is judged and drills the total down.
    assert db.execute("SELECT count(*) FROM retail_insights.anomalies "
                      "WHERE dimension = 'country'").fetchone()[0] > 0
    assert db.execute(
        "SELECT count(*) FROM retail_insights.anomalies, jsonb_array_elements(contributors) c "
        "WHERE dimension = 'all' AND c ->> 'dimension' = 'country'").fetchone()[0] > 0
    assert db.execute("SELECT count(DISTINCT dimension_value) FROM retail_insights.forecasts "
                      "WHERE dimension = 'country'").fetchone()[0] > 1


@pytest.fixture(scope="module")
def page(built: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[report.Report, str]:
    """`goalpost report retail` today: its data ended in 2010."""
    out = tmp_path_factory.mktemp("retail-report") / "retail.html"
    made = report.build_report("retail", out=out, url=built)
    return made, out.read_text(encoding="utf-8")


def test_report_fits_the_client_and_its_data(page: tuple[report.Report, str]) -> None:
    made, html = page
    assert made.errors == []
    # Every card has data but the goals ones: the client declares no goal.
    assert made.empty == ["Goals and KPIs / Goals", "Weekly review / Goals and their forecast"]
    assert made.data_as_of == made.dates_counted_from == date(2010, 12, 9)
    assert "past90days (2010-09-11 to 2010-12-09, counted back from 2010-12-09" in html
    # No stock counts: no Inventory dashboard, no stock card in the review; one shop: no
    # per-shop cards; a card per dimension, and a filter for it.
    assert made.dashboards == 6 and "Inventory" not in html
    assert "Stock under its reorder point" not in html
    assert "Revenue per shop" not in html and "Revenue forecast, next 30 days per shop" not in html
    assert 'data-title="Revenue by country"' in html
    assert "Country: <b>All</b>" in html


@chromium.needed
def test_report_screenshot_draws_revenue_by_country(page: tuple[report.Report, str],
                                                    tmp_path: Path) -> None:
    _, html = page
    path = tmp_path / "retail.html"
    path.write_text(html, encoding="utf-8")
    layout = chromium.layout(path)
    image = load(chromium.screenshot(path, tmp_path / "retail.png", layout.height))
    boxes = {title: box.body for title, box in layout.cards.items()}
    assert pixels(image, boxes["Revenue by country"], PALETTE[0]) > 1000
    assert pixels(image, boxes["Revenue per day"], PALETTE[0]) > 500
    # The partial month (December 2010) is its own series beside the complete ones.
    assert pixels(image, boxes["Revenue per month, actual and forecast"], PALETTE[1]) > 50
