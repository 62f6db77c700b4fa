"""Golden tests of the Shopify connector: the hand-made month of tests/golden_data.py served by
the Shopify emulator, extracted and built by `goalpost run`, gives the hand-computed marts;
and the same month on accounts that are not the simple case (discounts on the whole order,
edited orders, missing scopes or protected data access, deactivated locations, archived
products, connections longer than their first page)."""

from __future__ import annotations

from datetime import date, timedelta

import golden_data
import psycopg
import pytest
from golden_data import D

from goalpost.app.orchestrator import run_client
from goalpost.sandbox.emulators.panpan import Order, Shop, StockCount
from goalpost.sandbox.emulators.shopify import SCOPES, ShopifyEmulator

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


def test_order_level_discount_and_an_edited_out_line(shopify_client, conn) -> None:
    """T-0005 gets a 1.62 order-level discount (10%, spread across its lines by Shopify; a
    line's discountedTotalSet leaves it out) and an order edit takes 2 of T-0001's 3
    croissants off (the line's quantity stays 3, its currentQuantity is 1). By hand:
    T-0005 = 4.20 - 0.42 + 12.00 - 1.20 = 14.58, T-0001 = 8.40 + 1 x 1.30 = 9.70."""
    later = golden_data.NOW - timedelta(days=1)
    shopify_client.discount_order("T-0005", D("1.62"), later)
    shopify_client.remove_units("T-0001", 2, 2, later)
    run = run_client("gold")
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]
    names = dict(conn.execute("SELECT data ->> 'id', data ->> 'name' FROM gold_raw.shop__orders"))
    lines = {(names[r[0]], r[1]): (r[2], r[3]) for r in conn.execute(
        "SELECT order_id, product_id, quantity, line_total FROM gold_staging.order_lines "
        "WHERE order_id = ANY(%s)", ([k for k, v in names.items() if v in ("T-0001", "T-0005")],))}
    assert lines == {("T-0001", "PAI-001"): (D("2"), D("8.40")),
                     ("T-0001", "VIE-001"): (D("1"), D("1.30")),
                     ("T-0005", "PAI-001"): (D("1"), D("3.78")),
                     ("T-0005", "VIE-001"): (D("10"), D("10.80"))}
    revenue = dict(conn.execute("SELECT sales_date, sum(revenue) FROM gold_marts.daily_sales "
                                "GROUP BY 1"))
    assert revenue[date(2025, 1, 14)] == D("9.70") and revenue[date(2025, 2, 3)] == D("14.58")


def test_a_shop_without_read_all_orders_is_told(api_source, conn) -> None:
    """Without read_all_orders Shopify returns only the last 60 days of orders, silently: the
    run says so (the app's access scopes are checked) while it loads what it can see."""
    now = golden_data.NOW + timedelta(days=40)  # T-0001..T-0004 are now older than 60 days
    scopes = tuple(s for s in SCOPES if s != "read_all_orders")
    with ShopifyEmulator(golden_data.golden_data(), token=TOKEN, now=now, scopes=scopes) as shop:
        api_source("gold", "shop", "shopify", shop.url, {"access_token": TOKEN},
                   start_date=golden_data.START_DATE)
        run = run_client("gold")
    orders = next(s for s in run.steps if s.name == "extract shop.orders")
    assert orders.status == "succeeded"
    assert any("read_all_orders" in w and "60 days" in w for w in orders.details["warnings"])
    seen = {r[0] for r in conn.execute("SELECT data ->> 'name' FROM gold_raw.shop__orders")}
    assert seen == {"T-0005"}


def test_protected_customer_data_withheld_keeps_the_rest(api_source, conn) -> None:
    """An app without protected customer data access: Shopify answers 200 with names, emails
    and phones null and an error per field. The customers load without them and the run
    says which access to request."""
    with ShopifyEmulator(golden_data.golden_data(), token=TOKEN, now=golden_data.NOW,
                         protected_customer_data=False) as shop:
        api_source("gold", "shop", "shopify", shop.url, {"access_token": TOKEN},
                   start_date=golden_data.START_DATE)
        run = run_client("gold")
    customers = next(s for s in run.steps if s.name == "extract shop.customers")
    assert customers.status == "succeeded", customers.error
    assert any("protected customer data" in w for w in customers.details["warnings"])
    rows = conn.execute("SELECT customer_id, email, first_name FROM gold_staging.customers"
                        ).fetchall()
    assert len(rows) == len(golden_data.CUSTOMERS)
    assert all(r[0].startswith("gid://shopify/Customer/") and r[1] is None and r[2] is None
               for r in rows)


def test_deactivated_locations_archived_products_and_long_orders(api_source, conn) -> None:
    """Shopify leaves deactivated locations out of `locations` unless includeInactive, and
    lists ACTIVE products only unless the query names statuses; nested connections hold a
    first page only (an order's 25 lines, an item's 10 locations): all are read."""
    data = golden_data.golden_data()
    shops = [Shop(f"SHOP-{n:02d}", f"Boutique {n}", "Lyon", date(2024, 1, 1))
             for n in range(1, 11)]
    data.shops.extend(shops)
    data.stock_counts.extend(StockCount(date(2025, 2, 3), s.shop_id, "PAI-001", 7)
                             for s in shops)
    big = Order("T-0100", golden_data.paris("2025-02-04 10:00"), "LYO-01", "en_boutique", "",
                [golden_data.line(n, "VIE-001", "1") for n in range(1, 31)])
    data.orders.append(big)
    with ShopifyEmulator(data, token=TOKEN, now=golden_data.NOW) as shop:
        shop.deactivate_location("VIL-01", golden_data.NOW - timedelta(days=2))
        shop.set_product_status("GAT-001", "ARCHIVED", golden_data.NOW - timedelta(days=1))
        api_source("gold", "shop", "shopify", shop.url, {"access_token": TOKEN},
                   start_date=golden_data.START_DATE)
        run = run_client("gold")
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]
    names = {r[0] for r in conn.execute("SELECT name FROM gold_staging.locations")}
    assert golden_data.VILLEURBANNE in names and len(names) == 12
    assert {r[0] for r in conn.execute("SELECT product_id FROM gold_staging.products")} == {
        "PAI-001", "VIE-001", "GAT-001"}
    big_lines = conn.execute(
        "SELECT count(*), sum(line_total) FROM gold_staging.order_lines AS l JOIN "
        "gold_raw.shop__orders AS o ON o.data ->> 'id' = l.order_id "
        "WHERE o.data ->> 'name' = 'T-0100'").fetchone()
    assert big_lines == (30, D("39.00"))
    bread = conn.execute("SELECT count(DISTINCT location_id) FROM gold_staging.inventory_levels "
                         "WHERE product_id = 'PAI-001'").fetchone()
    assert bread == (12,)
