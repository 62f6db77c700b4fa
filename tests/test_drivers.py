"""Driver attribution: the parts add up to the total change (within 0.01%, the issue's
acceptance), on PanPan's generated sales, for the standard periods and many others."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import psycopg
import pytest
from panpan_kpi import panpan_kpi_daily

from goalpost.core import decomposition
from goalpost.core.decomposition import wide
from goalpost.core.errors import ConfigError
from goalpost.core.registry.models import Client
from goalpost.core.warehouse import tenants
from goalpost.extensions import drivers
from goalpost.extensions._kpi_tools import kpi_frame
from goalpost.extensions.api import JobContext
from goalpost.extensions.runner import run_extension

END = date(2025, 3, 31)
NOW = datetime(2025, 4, 1, 6, tzinfo=UTC)
PANPAN = Client.model_validate({"name": "PanPan", "timezone": "Europe/Paris"})
TOLERANCE = 1e-4  # 0.01% of the total change


@pytest.fixture(scope="module")
def kpi(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """About 16 months of PanPan (three shops, two channels, returns, planted anomalies)."""
    return panpan_kpi_daily(tmp_path_factory.mktemp("panpan"), end=END, days=480)


def run(client: Client, kpi: pd.DataFrame, **settings: object) -> pd.DataFrame:
    return drivers.run(JobContext("panpan", client, kpi, NOW, dict(settings)))


def assert_parts_add_up(rows: pd.DataFrame) -> int:
    """Each parent's contribution equals the sum of its drivers'; returns the checks made."""
    checks = 0
    for _, comparison in rows.groupby(["metric", "period", "dimension", "dimension_value"]):
        total = comparison.loc[comparison["level"] == 0, "contribution"].item()
        for parent, parts in comparison.groupby("parent"):
            expected = comparison.loc[comparison["driver"] == parent, "contribution"].item()
            assert parts["contribution"].sum() == pytest.approx(
                expected, rel=TOLERANCE, abs=TOLERANCE * abs(total)), (parent, comparison)
            checks += 1
    return checks


def test_standard_periods_add_up_for_the_total_and_each_shop(kpi):
    rows = run(PANPAN, kpi)
    assert set(rows["period"]) == {"last_7_days", "last_28_days", "last_full_month",
                                   "same_month_last_year"}
    assert set(rows["dimension_value"]) == {"all", "LYO-01", "LYO-02", "VIL-01"}
    assert set(rows["driver"]) == {"revenue", "orders", "average_ticket", "items_per_order",
                                   "average_item_price"}
    assert assert_parts_add_up(rows) == 4 * 4 * 2

    month = rows[(rows["period"] == "last_full_month") & (rows["dimension_value"] == "all")]
    month = month.set_index("driver")
    assert (month.loc["revenue", "period_start"], month.loc["revenue", "baseline_end"]) == (
        date(2025, 3, 1), date(2025, 2, 28))
    # Period values come from the summed parts: the revenue and orders of March, and the
    # average ticket of March is their ratio, not a mean of daily tickets.
    frame = kpi_frame(kpi)
    march = frame[(frame["dimension"] == "all") & (frame["date"].dt.month == 3)
                  & (frame["date"].dt.year == 2025)].groupby("metric")["value"].sum()
    assert month.loc["revenue", "current_value"] == pytest.approx(march["revenue"], rel=1e-12)
    assert month.loc["orders", "current_value"] == march["orders"]
    assert month.loc["average_ticket", "current_value"] == pytest.approx(
        march["revenue"] / march["orders"], rel=1e-12)
    assert month.loc["revenue", "share"] == 1.0
    assert month.loc[["orders", "average_ticket"], "share"].sum() == pytest.approx(1.0)


def test_many_periods_and_dimension_values_add_up(kpi):
    """Random period pairs (1 to 120 days) for the total, each shop and each channel: 60 each,
    of which a few are left out (a one-day period on a day a shop is closed)."""
    registry = PANPAN.metric_registry()
    root = decomposition.tree("revenue", registry)
    frame = kpi_frame(kpi)
    rng = np.random.default_rng(7)
    start, end = frame["date"].min(), frame["date"].max()
    checked = 0
    for (dimension, value), rows in frame.groupby(["dimension", "dimension_value"]):
        daily = wide(rows, start, end)
        for _ in range(60):
            days = int(rng.integers(1, 121))
            base_start = start + pd.Timedelta(days=int(rng.integers(0, 470 - 2 * days)))
            current_start = base_start + pd.Timedelta(days=int(rng.integers(days, 470 - days)))
            current = (current_start, current_start + pd.Timedelta(days=days - 1))
            baseline = (base_start, base_start + pd.Timedelta(days=days - 1))
            found = decomposition.attribute(daily, root, registry, current, baseline)
            if found is None:  # a shop closed over one of the periods
                continue
            table = pd.DataFrame(found).assign(metric="revenue", period="p",
                                               dimension=dimension, dimension_value=value)
            checked += assert_parts_add_up(table)
            revenue = table.set_index("driver").loc["revenue"]
            assert revenue["contribution"] == pytest.approx(
                daily.loc[current[0]:current[1], "revenue"].sum()
                - daily.loc[baseline[0]:baseline[1], "revenue"].sum(), rel=1e-9, abs=1e-6)
    assert checked > 450


def test_a_sum_of_products_and_a_quotient_add_up(kpi):
    """A client's own metrics: gross sales = revenue + returns (a sum whose first part is a
    product), and sales per item = revenue / items (a quotient of sums)."""
    client = Client.model_validate({"name": "PanPan", "timezone": "Europe/Paris", "metrics": {
        "gross_sales": {"label": "Gross sales", "unit": "currency", "aggregation": "sum",
                        "category": "north_star",
                        "value": "SUM(total) FILTER (WHERE NOT is_return)",
                        "drivers": {"formula": "revenue + returns",
                                    "parts": ["revenue", "returns"]}},
        "sales_per_item": {"label": "Sales per item", "unit": "currency",
                           "aggregation": "ratio", "value": "SUM(total) / SUM(items)",
                           "drivers": {"formula": "revenue / items",
                                       "parts": ["revenue", "items"]}}}})
    assert decomposition.roots(client.metric_registry()) == ["gross_sales", "sales_per_item"]
    wide_kpi = kpi.pivot_table(index=["date", "dimension", "dimension_value"],
                               columns="metric", values="value")
    own = pd.DataFrame({"gross_sales": wide_kpi["revenue"] + wide_kpi["returns"],
                        "sales_per_item": wide_kpi["revenue"] / wide_kpi["items"]})
    own = own.reset_index().melt(id_vars=["date", "dimension", "dimension_value"],
                                 var_name="metric")
    rows = run(client, pd.concat([kpi, own], ignore_index=True), dimensions=[])
    assert set(rows["metric"]) == {"gross_sales", "sales_per_item"}
    assert assert_parts_add_up(rows) == 4 * (3 + 3)  # each nests revenue and its ticket
    gross = rows[(rows["metric"] == "gross_sales") & (rows["period"] == "last_28_days")]
    gross = gross.set_index("driver")
    # In a sum, a part contributes its own change.
    assert gross.loc["returns", "contribution"] == pytest.approx(
        gross.loc["returns", "current_value"] - gross.loc["returns", "baseline_value"])
    assert gross.loc["returns", "method"] == "additive"
    assert gross.loc["orders", "method"] == "lmdi"
    per_item = rows[(rows["metric"] == "sales_per_item") & (rows["period"] == "last_7_days")]
    per_item = per_item.set_index("driver")
    assert per_item.loc["sales_per_item", "current_value"] == pytest.approx(
        per_item.loc["revenue", "current_value"] / per_item.loc["items", "current_value"])
    # More items for the same revenue lowers sales per item.
    items_up = per_item.loc["items", "current_value"] > per_item.loc["items", "baseline_value"]
    assert (per_item.loc["items", "contribution"] < 0) == items_up


def test_a_shop_closed_for_the_week_is_left_out_of_that_period(kpi):
    frame = kpi_frame(kpi)
    closed = (frame["dimension_value"] == "VIL-01") & (frame["date"] > pd.Timestamp(END)
                                                       - pd.Timedelta(days=7))
    rows = run(PANPAN, frame[~closed].assign(date=lambda f: f["date"].dt.date))
    week = rows[rows["period"] == "last_7_days"]
    assert set(week["dimension_value"]) == {"all", "LYO-01", "LYO-02"}
    assert "VIL-01" in set(rows.loc[rows["period"] == "same_month_last_year", "dimension_value"])


@pytest.mark.parametrize(("formula", "parts", "words"), [
    ("orders * (average_ticket)", ["orders", "average_ticket"], "not a product or a sum"),
    ("orders * average_ticket + items", ["orders", "average_ticket", "items"], "mixes"),
    ("orders * items", ["orders", "average_ticket"], "must name each of its parts"),
    ("2 * orders", ["orders"], "not a product or a sum"),
])
def test_formulas_that_are_not_products_or_sums_are_refused(formula, parts, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        decomposition.parse_formula("revenue", formula, parts)


def test_drivers_that_lead_back_to_the_metric_are_refused():
    client = Client.model_validate({"name": "Shop", "metrics": {"average_ticket": {
        "drivers": {"formula": "revenue / orders", "parts": ["revenue", "orders"]}}}})
    with pytest.raises(ConfigError, match="lead back to it"):
        decomposition.tree("revenue", client.metric_registry())


def test_a_product_of_sums_is_refused_as_it_does_not_hold_on_totals(kpi):
    client = Client.model_validate({"name": "Shop", "metrics": {"revenue": {
        "drivers": {"formula": "orders * items", "parts": ["orders", "items"]}}}})
    with pytest.raises(ConfigError, match="does not hold on period totals"):
        run(client, kpi, dimensions=[])


def test_unknown_settings_are_refused(kpi):
    with pytest.raises(ConfigError, match="extension_settings.drivers: unknown setting"):
        run(PANPAN, kpi, periods=["week"])
    with pytest.raises(ConfigError, match="unknown dimension"):
        run(PANPAN, kpi, dimensions=["shop"])


def test_the_runner_writes_the_table(conn: psycopg.Connection, kpi):
    tenants.provision(conn, "shop")
    conn.execute("CREATE TABLE shop_marts.kpi_daily (metric text, date date, dimension text, "
                 "dimension_value text, value numeric)")
    buffer = io.StringIO()
    kpi.to_csv(buffer, index=False, header=False)
    with conn.cursor().copy("COPY shop_marts.kpi_daily FROM STDIN (FORMAT csv)") as copy:
        copy.write(buffer.getvalue())
    first = run_extension(conn, "shop", PANPAN, drivers.EXTENSION, run_id=1, now=NOW)
    assert first.status == "written" and first.rows == 4 * 4 * 5
    sums = conn.execute(
        "SELECT period, dimension_value, sum(contribution) FILTER (WHERE level = 1), "
        "sum(contribution) FILTER (WHERE level = 0) FROM shop_insights.driver_attribution "
        "GROUP BY 1, 2").fetchall()
    assert len(sums) == 16
    for _, _, parts, total in sums:
        assert parts == pytest.approx(total, rel=TOLERANCE)
    again = run_extension(conn, "shop", PANPAN, drivers.EXTENSION, run_id=2, now=NOW)
    assert again.status == "unchanged"


def test_no_data_before_today_gives_an_empty_table():
    empty = pd.DataFrame(columns=["metric", "date", "dimension", "dimension_value", "value"])
    assert run(PANPAN, empty).empty
