"""Golden test of the Shopify connector: the hand-made month of tests/golden_data.py served by
the Shopify emulator, extracted and built by `goalpost run`, gives the hand-computed marts."""

from __future__ import annotations

from datetime import date

import golden_data
import psycopg
import pytest
from golden_data import D

from goalpost.app.orchestrator import run_client
from goalpost.sandbox.emulators.shopify import ShopifyEmulator

pytestmark = pytest.mark.e2e

TOKEN = "shpat_golden_shopify"
# Shopify reports the channel as the order's sourceName: "pos" at the till, "web" online.
CHANNELS = {"pos": "en_boutique", "web": "livraison"}


@pytest.fixture
def shopify_client(api_source):
    emulator = ShopifyEmulator(golden_data.golden_data(), token=TOKEN, now=golden_data.NOW)
    emulator.start()
    api_source("gold", "shop", "shopify", emulator.url, {"access_token": TOKEN},
               start_date=golden_data.START_DATE)
    yield emulator
    emulator.stop()


def test_shopify_marts_equal_hand_computed_figures(shopify_client,
                                                   conn: psycopg.Connection) -> None:
    run = run_client("gold")
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]

    figures = golden_data.mart_figures(conn, "gold", CHANNELS)
    assert figures == golden_data.EXPECTED

    # The cancelled sale reached the warehouse and was left out by staging; the return is a
    # refund inside T-0003, not an order of its own.
    raw = conn.execute(
        "SELECT data ->> 'name', data ->> 'cancelledAt' IS NOT NULL, "
        "jsonb_array_length(data -> 'refunds') FROM gold_raw.shop__orders ORDER BY 1").fetchall()
    assert raw == [("T-0001", False, 0), ("T-0002", False, 0), ("T-0003", False, 1),
                   ("T-0004", True, 0), ("T-0005", False, 0)]
    staged = conn.execute("SELECT DISTINCT order_id FROM gold_staging.order_lines").fetchall()
    cancelled = conn.execute("SELECT data ->> 'id' FROM gold_raw.shop__orders "
                             "WHERE data ->> 'name' = 'T-0004'").fetchone()
    assert len(staged) == 5 and cancelled not in staged
    # The refund names the order its goods came from, and gives back 24.00.
    original = conn.execute("SELECT data ->> 'id' FROM gold_raw.shop__orders "
                            "WHERE data ->> 'name' = 'T-0003'").fetchone()[0]
    assert conn.execute(
        "SELECT o.order_id, r.amount, r.refund_date FROM gold_staging.refunds AS r "
        "JOIN gold_staging.orders AS o ON o.order_id = r.returned_order_id").fetchall() == [
        (original, D("24.00"), date(2025, 1, 16))]
    # Products by SKU with their Shopify price.
    products = {r[0]: (r[1], r[2]) for r in conn.execute(
        "SELECT product_id, name, unit_price FROM gold_staging.products")}
    assert products == golden_data.PRODUCT_PRICES
    # Shopify gives only current levels: each is the latest count, dated by its update.
    levels = conn.execute("""
        SELECT n.name, i.product_id, i.on_hand, i.counted_on
        FROM gold_staging.inventory_levels AS i
        JOIN gold_staging.locations AS n ON n.location_id = i.location_id""").fetchall()
    assert {(r[0], r[1]): r[2] for r in levels} == golden_data.ON_HAND
    assert len(levels) == len(golden_data.ON_HAND)
    assert {r[3] for r in levels} == {date(2025, 2, 3)}
