"""Golden test of the Lightspeed Retail X-Series connector: the hand-made month of
tests/golden_data.py served by the X-Series emulator (prices without tax, VAT 5.5% beside
them), extracted and built by `goalpost run`, gives the hand-computed marts."""

from __future__ import annotations

from datetime import date, datetime

import golden_data
import psycopg
import pytest
from golden_data import D

from goalpost.app.orchestrator import run_client
from goalpost.sandbox.emulators.lightspeed_x import LightspeedXEmulator, ls_id
from goalpost.sandbox.emulators.panpan import PARIS

pytestmark = pytest.mark.e2e

TOKEN = "ls-golden-token"
# Staging names the channel by how X-Series says the sale was fulfilled.
CHANNELS = {"in_store": "en_boutique", "delivery": "livraison"}


@pytest.fixture
def lightspeed_client(api_source):
    emulator = LightspeedXEmulator(golden_data.golden_data(), token=TOKEN, now=golden_data.NOW)
    emulator.start()
    api_source("gold", "pos", "lightspeed_x", emulator.url, {"access_token": TOKEN})
    yield emulator
    emulator.stop()


def test_lightspeed_marts_equal_hand_computed_figures(lightspeed_client,
                                                      conn: psycopg.Connection) -> None:
    first_day = datetime.now(PARIS).date()
    run = run_client("gold")
    last_day = datetime.now(PARIS).date()
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]

    figures = golden_data.mart_figures(conn, "gold", CHANNELS)
    assert figures == golden_data.EXPECTED

    # The voided sale reached the warehouse and was left out by staging.
    states = conn.execute("SELECT data ->> 'status', count(*) FROM gold_raw.pos__sales "
                          "GROUP BY 1 ORDER BY 1").fetchall()
    assert states == [("CLOSED", 4), ("DISPATCHED_CLOSED", 1), ("VOIDED", 1)]
    staged = {r[0] for r in conn.execute("SELECT order_id FROM gold_staging.order_lines")}
    assert len(staged) == 5 and ls_id("sales", "T-0004") not in staged
    # Totals are tax-inclusive: what was paid, not X-Series' prices without tax.
    paid = conn.execute("SELECT total FROM gold_staging.orders WHERE order_id = %s",
                        (ls_id("sales", "T-0002"),)).fetchone()
    assert paid == (D("22.00"),)
    # The return names the sale its goods came from, and is a refund of 24.00.
    assert conn.execute(
        "SELECT o.order_id, r.amount, r.refund_date FROM gold_staging.refunds AS r "
        "JOIN gold_staging.orders AS o ON o.order_id = r.returned_order_id").fetchall() == [
        (ls_id("sales", "T-0003"), D("24.00"), date(2025, 1, 16))]
    # Products by SKU with their tax-inclusive price.
    products = {r[0]: (r[1], r[2]) for r in conn.execute(
        "SELECT product_id, name, unit_price FROM gold_staging.products")}
    assert products == golden_data.PRODUCT_PRICES
    # X-Series gives only current levels, without a timestamp (the emulator sends none, as
    # the API does): each is the latest count, dated the day it was read.
    levels = conn.execute("""
        SELECT n.name, i.product_id, i.on_hand, i.counted_on
        FROM gold_staging.inventory_levels AS i
        JOIN gold_staging.locations AS n ON n.location_id = i.location_id""").fetchall()
    assert {(r[0], r[1]): r[2] for r in levels} == golden_data.ON_HAND
    assert len(levels) == len(golden_data.ON_HAND)
    assert {r[3] for r in levels} <= {first_day, last_day}
    assert not conn.execute("SELECT count(*) FROM gold_raw.pos__inventory "
                            "WHERE data ?| array['created_at', 'updated_at']").fetchone()[0]
