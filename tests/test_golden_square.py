"""Golden test of the Square connector: the hand-made month of tests/golden_data.py served by
the Square emulator, extracted and built by `goalpost run`, gives the hand-computed marts."""

from __future__ import annotations

from datetime import timedelta

import golden_data
import psycopg
import pytest
from golden_data import D

from goalpost.app.orchestrator import run_client

pytestmark = pytest.mark.e2e

# Square reports the channel as the order's source name.
CHANNELS = {"Boutique": "en_boutique", "Livraison": "livraison"}


def test_square_marts_equal_hand_computed_figures(golden_square, conn: psycopg.Connection) -> None:
    run = run_client("gold")
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]

    freshness = next(s for s in run.steps if s.name == "freshness")
    assert freshness.status == "succeeded" and freshness.details["warnings"] == []
    assert not freshness.details["sources"]["pos"]["stale"]

    figures = golden_data.mart_figures(conn, "gold", CHANNELS)
    assert figures == golden_data.EXPECTED

    # The cancelled sale reached the warehouse and was left out by staging.
    states = conn.execute("SELECT data ->> 'state', count(*) FROM gold_raw.pos__orders "
                          "GROUP BY 1 ORDER BY 1").fetchall()
    assert states == [("CANCELED", 1), ("COMPLETED", 5)]
    # The return names the order its goods came from, and is a refund of 24.00.
    assert conn.execute(
        "SELECT o.order_id, r.amount FROM gold_staging.refunds AS r "
        "JOIN gold_staging.orders AS o ON o.order_id = r.returned_order_id").fetchall() == [
        (golden_square.order_id("T-0003"), D("24.00"))]
    # Products by SKU with their Square price; stock counts as of their local date.
    products = {r[0]: (r[1], r[2]) for r in conn.execute(
        "SELECT product_id, name, unit_price FROM gold_staging.products")}
    assert products == golden_data.PRODUCT_PRICES
    categories = dict(conn.execute("SELECT product_id, category FROM gold_staging.products"))
    assert categories == {p.sku: p.category for p in golden_data.PRODUCTS}
    on_hand = {(r[0], r[1]): r[2] for r in conn.execute("""
        SELECT DISTINCT ON (i.location_id, i.product_id) n.name, i.product_id, i.on_hand
        FROM gold_staging.inventory_levels AS i
        JOIN gold_staging.locations AS n ON n.location_id = i.location_id
        ORDER BY i.location_id, i.product_id, i.counted_on DESC""")}
    assert on_hand == golden_data.ON_HAND


def test_location_thresholds_and_variation_edits(golden_square, conn: psycopg.Connection) -> None:
    """A location's own stock alert threshold (a variation's location override) is an edit of
    the variation alone: Square moves the variation's updated_at, not its item's. The next run
    reads it (the catalog stream asks for variations too) and the inventory marts reorder at
    that location by it, elsewhere by the product's threshold."""
    assert run_client("gold").status == "succeeded"
    golden_square.now += timedelta(days=1)
    golden_square.set_location_threshold("PAI-001", "LYO-01", 25,
                                         golden_square.now - timedelta(hours=1))
    run = run_client("gold")
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]
    items = conn.execute("SELECT data ->> 'type', data ->> 'updated_at' FROM "
                         "gold_raw.pos__catalog WHERE data ->> 'id' = ANY(%s)",
                         ([golden_square.item_ids["PAI-001"],
                           golden_square.variation_ids["PAI-001"]],)).fetchall()
    assert dict(items)["ITEM"] < dict(items)["ITEM_VARIATION"]  # the item did not move
    status = {(r[0], r[1]): (r[2], r[3]) for r in conn.execute("""
        SELECT location_name, product_id, reorder_point, reorder_point_source
        FROM gold_marts.inventory_status WHERE product_id = 'PAI-001'""")}
    assert status == {(golden_data.CROIX_ROUSSE, "PAI-001"): (D("25"), "location"),
                      (golden_data.VILLEURBANNE, "PAI-001"): (D("10"), "product")}
