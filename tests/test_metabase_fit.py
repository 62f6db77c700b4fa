"""Templates fitted to a client (metabase.fit): the dashboards it gets, its dimensions as
filters and cards, cards about a single shop left out, and date defaults that count back from
the data's latest day when it ends in the past, in Metabase's payloads as in the report."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from goalpost.core.registry.models import Client
from goalpost.metabase import fit
from goalpost.metabase.desired import desired_objects
from goalpost.metabase.template import render_sql, templates

TODAY = date(2026, 3, 15)
OLD = fit.DataFacts(as_of=date(2010, 12, 9), last_complete=date(2010, 12, 9))
STREAM = {"name": "s", "path": "s.csv", "entity": "order_lines"}


def shop(**changes: object) -> Client:
    return Client.model_validate({"name": "Shop", "sources": [
        {"name": "pos", "connector": "files", "streams": [STREAM]}], **changes})


def test_dimensions_become_filters_and_cards() -> None:
    client = shop(dimensions={"country": {"entity": "orders"},
                              "category": {"entity": "products", "label": "Family"}})
    sales = fit.fit(templates()["sales_overview"], client, fit.DataFacts(), today=TODAY)
    assert [(f.key, f.name, f.type) for f in sales.filters][2:] == [
        ("country", "Country", "text"), ("category", "Family", "text")]
    # An order-level dimension filters the daily_sales cards; both filter product cards.
    revenue = sales.card("revenue")
    assert revenue.filters["country"] == "marts.daily_sales.country"
    assert "category" not in revenue.filters
    sql = render_sql(revenue, "shop", {"country": ["France"]}, filters=sales.filters)
    assert "\"shop_marts\".\"daily_sales\".\"country\" IN ('France')" in sql
    assert "{{" not in render_sql(revenue, "shop", {}, filters=sales.filters)
    top = sales.card("top_products")
    assert {"country", "category"} <= set(top.filters)
    # A card per dimension, named by its label.
    by = {c.key: c for c in sales.cards if c.key.startswith("revenue_by_")}
    assert set(by) == {"revenue_by_country", "revenue_by_category"}
    assert by["revenue_by_category"].name == "Revenue by family"
    assert "SELECT category, SUM(revenue)" in by["revenue_by_category"].sql
    assert by["revenue_by_country"].visualization.dimensions == ["country"]
    # Without dimensions there is neither a dimension filter nor a card per dimension.
    bare = fit.fit(templates()["sales_overview"], shop(), fit.DataFacts(), today=TODAY)
    assert [f.key for f in bare.filters] == ["date", "location"]
    assert not any(c.key.startswith("revenue_by") for c in bare.cards)


def test_a_single_shop_has_no_per_shop_cards() -> None:
    one = fit.DataFacts(single_valued=frozenset({"location", "channel"}))
    keys = {t.key: [c.key for c in t.cards] for t in fit.dashboards(shop(), one, today=TODAY)}
    assert "revenue_per_shop" not in keys["sales_overview"]
    assert "customers_per_shop" not in keys["customers"]
    assert "forecast_per_shop" not in keys["forecasts_anomalies"]
    many = {t.key: [c.key for c in t.cards]
            for t in fit.dashboards(shop(), fit.DataFacts(), today=TODAY)}
    assert "revenue_per_shop" in many["sales_overview"]


def test_dashboards_need_a_source_for_what_they_show() -> None:
    assert [t.key for t in fit.chosen(shop())] == [
        "customers", "forecasts_anomalies", "goals_kpis", "metric_map", "sales_overview",
        "weekly_review"]
    stocked = shop(sources=[{"name": "pos", "connector": "files", "streams": [
        STREAM, dict(STREAM, name="stock", entity="inventory_levels")]}])
    assert "inventory" in [t.key for t in fit.chosen(stocked)]
    # A card of a dashboard every client gets leaves out what no source feeds.
    review = templates()["weekly_review"]
    assert "stock_at_risk" not in [c.key for c in fit.fit(review, shop(), fit.DataFacts(),
                                                            today=TODAY).cards]
    assert "stock_at_risk" in [c.key for c in fit.fit(review, stocked, fit.DataFacts(),
                                                        today=TODAY).cards]
    # Named in the YAML, a dashboard is provisioned whatever the sources.
    assert [t.key for t in fit.chosen(shop(dashboards=["inventory"]))] == ["inventory"]


def test_date_defaults_count_back_from_old_data() -> None:
    assert fit.anchor(OLD, TODAY) == date(2010, 12, 10)
    fresh = fit.DataFacts(as_of=date(2026, 3, 14))
    assert fit.anchor(fresh, TODAY) == TODAY  # data up to yesterday: today, as Metabase does
    pinned = fit.fit(templates()["sales_overview"], shop(), OLD, today=TODAY, pin_dates=True)
    assert pinned.filter("date").default == "2010-09-11~2010-12-09"
    assert "Date defaults to 2010-09-11 to 2010-12-09 (past90days counted back from " \
        "2010-12-09, the day the data goes to)." in (pinned.description or "")
    live = fit.fit(templates()["sales_overview"], shop(), fresh, today=TODAY, pin_dates=True)
    assert live.filter("date").default == "past90days"
    unpinned = fit.fit(templates()["sales_overview"], shop(), OLD, today=TODAY)
    assert unpinned.filter("date").default == "past90days"
    customers = fit.fit(templates()["customers"], shop(), OLD, today=TODAY)
    assert "to 2010-12-09" in (customers.card("acquisition").description or "")


def test_metabase_dashboards_of_old_data_default_to_its_last_days(project: Path) -> None:
    objects = desired_objects("shop", shop(), {"host": "db", "port": 5432, "dbname": "g"},
                              metabase_zone="UTC", at=datetime(2026, 3, 15, 9, tzinfo=UTC),
                              facts=OLD)
    sales = next(o for o in objects if o.kind == "dashboard" and o.key == "sales_overview")
    date_parameter = next(p for p in sales.payload["parameters"] if p["slug"] == "date")
    assert date_parameter["default"] == "2010-09-11~2010-12-09"
    assert "the day the data goes to" in sales.payload["description"]
    assert not any(o.key == "inventory" for o in objects if o.kind == "dashboard")
