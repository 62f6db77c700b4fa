"""Product and inventory marts (product_sales_daily, inventory_status,
inventory_turnover_monthly, stockouts) against figures computed by hand.

Two clients carry the hand-made month of tests/golden_data.py:
- `gold`, through the Square emulator, as tests/test_golden_square.py does. Square's inventory
  API only reports current counts: one count (3 February) per shop and product.
- `filed`, the same shops and receipts as POS export files (the cancelled T-0004 is not in
  them: the export holds completed receipts), with the golden stock counts plus hand-made ones
  (several counts a month, empty shelves) for turnover and stock-outs, and its own product
  list (see FILE_PRODUCTS).

Both have data up to 3 February 2025, so as_of = 2025-02-03 and the 28-day window of
inventory_status is 2025-01-07..2025-02-03 (25 January days + 3 February days).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import golden_data
import orjson
import psycopg
import pytest
from csv_files import write_csv
from golden_data import CROIX_ROUSSE, VILLEURBANNE, D

from goalpost.app.orchestrator import run_client

pytestmark = pytest.mark.e2e

AS_OF = date(2025, 2, 3)
JAN, FEB = date(2025, 1, 1), date(2025, 2, 1)

# product_sales_daily: (date, shop, SKU) -> (product name, units sold (on sales receipts),
# units returned, revenue (net of returns), sales lines, orders, average unit price,
# currency). The same for both clients.
PRODUCT_SALES = {
    # T-0001: 2 x 4.20 = 8.40 and 3 x 1.30 = 3.90
    (date(2025, 1, 14), CROIX_ROUSSE, "PAI-001"):
        ("Pain de campagne", D("2"), D("0"), D("8.40"), 1, 1, D("4.20"), "EUR"),
    (date(2025, 1, 14), CROIX_ROUSSE, "VIE-001"):
        ("Croissant", D("3"), D("0"), D("3.90"), 1, 1, D("1.30"), "EUR"),
    # T-0002 at 00:30 Paris on the 15th (the 14th in UTC): 24.00 - 2.00 = 22.00 for 1 unit
    (date(2025, 1, 15), VILLEURBANNE, "GAT-001"):
        ("Tarte aux fraises", D("1"), D("0"), D("22.00"), 1, 1, D("22.00"), "EUR"),
    # T-0003: 6 x 1.30 = 7.80 and 1 x 24.00
    (date(2025, 1, 15), CROIX_ROUSSE, "VIE-001"):
        ("Croissant", D("6"), D("0"), D("7.80"), 1, 1, D("1.30"), "EUR"),
    (date(2025, 1, 15), CROIX_ROUSSE, "GAT-001"):
        ("Tarte aux fraises", D("1"), D("0"), D("24.00"), 1, 1, D("24.00"), "EUR"),
    # RET-T-0003 gives the tart back: 1 unit returned, -24.00, no sale, so no unit sold, no
    # line, order or price
    (date(2025, 1, 16), CROIX_ROUSSE, "GAT-001"):
        ("Tarte aux fraises", D("0"), D("1"), D("-24.00"), 0, 0, None, "EUR"),
    # T-0004 (16 Jan, 5 x PAI-001) was cancelled: no row. T-0005: 1 x 4.20
    (date(2025, 2, 3), VILLEURBANNE, "PAI-001"):
        ("Pain de campagne", D("1"), D("0"), D("4.20"), 1, 1, D("4.20"), "EUR"),
    # T-0005: 10 x 1.30 - 1.00 discount = 12.00, so 12.00 / 10 = 1.20 a croissant
    (date(2025, 2, 3), VILLEURBANNE, "VIE-001"):
        ("Croissant", D("10"), D("0"), D("12.00"), 1, 1, D("1.20"), "EUR"),
}

# inventory_status of `gold`: (shop, SKU) -> (last counted on, on hand, units sold in the 28
# days, average daily units, days of cover, reorder point, its source, below reorder).
# Days of cover = on hand x 28 / units sold, from the unrounded average.
SQUARE_STATUS = {
    # T-0001: 2 -> 2/28 = 0.0714; 15 x 28 / 2 = 210.0; 15 < 10 no
    (CROIX_ROUSSE, "PAI-001"): (AS_OF, D("15"), D("2"), D("0.0714"), D("210.0"), D("10"),
                                "product", False),
    # T-0001 + T-0003: 3 + 6 = 9 -> 9/28 = 0.3214; 30 x 28 / 9 = 93.33 -> 93.3; 30 < 40 yes
    (CROIX_ROUSSE, "VIE-001"): (AS_OF, D("30"), D("9"), D("0.3214"), D("93.3"), D("40"),
                                "product", True),
    # T-0003 - RET-T-0003: 1 - 1 = 0 -> nothing sold, no cover; 1 < 2 yes
    (CROIX_ROUSSE, "GAT-001"): (AS_OF, D("1"), D("0"), D("0.0000"), None, D("2"),
                                "product", True),
    # T-0005: 1 -> 1/28 = 0.0357; 8 x 28 / 1 = 224.0; 8 < 10 yes
    (VILLEURBANNE, "PAI-001"): (AS_OF, D("8"), D("1"), D("0.0357"), D("224.0"), D("10"),
                                "product", True),
    # T-0005: 10 -> 10/28 = 0.3571; 60 x 28 / 10 = 168.0; 60 < 40 no
    (VILLEURBANNE, "VIE-001"): (AS_OF, D("60"), D("10"), D("0.3571"), D("168.0"), D("40"),
                                "product", False),
    # T-0002 (15 Jan, inside the window): 1 -> 0.0357; 3 x 28 / 1 = 84.0; 3 < 2 no
    (VILLEURBANNE, "GAT-001"): (AS_OF, D("3"), D("1"), D("0.0357"), D("84.0"), D("2"),
                                "product", False),
}

# The file client's product list: PAI-001 is missing (named from its sales lines, no category,
# no cost, a derived reorder point); GAT-001's reorder point is 3, so Villeurbanne's 3 tarts
# sit exactly at it; FAR-001 is never sold and has no reorder point.
FILE_PRODUCTS = [
    {"sku": "VIE-001", "name": "Croissant", "category": "viennoiserie", "unit_price": "1.30",
     "unit_cost": "0.35", "reorder_point": "40"},
    {"sku": "GAT-001", "name": "Tarte aux fraises", "category": "patisserie",
     "unit_price": "24.00", "unit_cost": "8.50", "reorder_point": "3"},
    {"sku": "FAR-001", "name": "Far breton", "category": "patisserie", "unit_price": "3.50",
     "unit_cost": "1.20", "reorder_point": ""},
]
# Counts on top of golden_data.STOCK_COUNTS: (date, shop id, SKU, on hand).
EXTRA_COUNTS = [
    # The Croix-Rousse tarts run out after T-0003 and come back on the 20th.
    (date(2025, 1, 16), "LYO-01", "GAT-001", 0),
    (date(2025, 1, 17), "LYO-01", "GAT-001", 0),
    (date(2025, 1, 20), "LYO-01", "GAT-001", 5),
    # A second January croissant count at Croix-Rousse.
    (date(2025, 1, 27), "LYO-01", "VIE-001", 12),
    # Far breton at Croix-Rousse: empty at the first count, back, then empty to the end.
    (date(2025, 1, 13), "LYO-01", "FAR-001", 0),
    (date(2025, 1, 20), "LYO-01", "FAR-001", 6),
    (date(2025, 1, 31), "LYO-01", "FAR-001", 0),
    (date(2025, 2, 3), "LYO-01", "FAR-001", 0),
    # Far breton at Villeurbanne: counted once, in January.
    (date(2025, 1, 20), "VIL-01", "FAR-001", 4),
]

# inventory_status of `filed`, same columns as SQUARE_STATUS.
FILE_STATUS = {
    # Not in the product list: derived CEIL(2/28 x 7) = CEIL(0.5) = 1; 15 < 1 no
    (CROIX_ROUSSE, "PAI-001"): (AS_OF, D("15"), D("2"), D("0.0714"), D("210.0"), D("1"),
                                "derived", False),
    (CROIX_ROUSSE, "VIE-001"): SQUARE_STATUS[(CROIX_ROUSSE, "VIE-001")],
    # The file's reorder point 3: 1 < 3 yes
    (CROIX_ROUSSE, "GAT-001"): (AS_OF, D("1"), D("0"), D("0.0000"), None, D("3"),
                                "product", True),
    # Empty and never sold: no cover, derived CEIL(0) = 0, and 0 < 0 is not under it
    (CROIX_ROUSSE, "FAR-001"): (AS_OF, D("0"), D("0"), D("0.0000"), None, D("0"),
                                "derived", False),
    # derived CEIL(1/28 x 7) = CEIL(0.25) = 1; 8 < 1 no
    (VILLEURBANNE, "PAI-001"): (AS_OF, D("8"), D("1"), D("0.0357"), D("224.0"), D("1"),
                                "derived", False),
    (VILLEURBANNE, "VIE-001"): SQUARE_STATUS[(VILLEURBANNE, "VIE-001")],
    # 3 on hand at a reorder point of 3: at it, not under it
    (VILLEURBANNE, "GAT-001"): (AS_OF, D("3"), D("1"), D("0.0357"), D("84.0"), D("3"),
                                "product", False),
    # Last counted on 20 January: 4 on hand, never sold
    (VILLEURBANNE, "FAR-001"): (date(2025, 1, 20), D("4"), D("0"), D("0.0000"), None, D("0"),
                                "derived", False),
}

# inventory_turnover_monthly of `filed`: (month, shop, SKU) -> (complete month, units sold,
# cost of goods sold, stock counts, average inventory, turnover, days of inventory).
# January has 31 days, February 28; February is partial (as_of is the 3rd).
FILE_TURNOVER = {
    # 2 sold (T-0001); one count, 20; 2 / 20 = 0.1; 31 / 0.1 = 310.0; no cost known
    (JAN, CROIX_ROUSSE, "PAI-001"): (True, D("2"), None, 1, D("20.00"), D("0.1000"), D("310.0")),
    # nothing sold; the count of 3 Feb, 15; 0 / 15 = 0; no days of inventory
    (FEB, CROIX_ROUSSE, "PAI-001"): (False, D("0"), None, 1, D("15.00"), D("0.0000"), None),
    # 3 + 6 = 9 sold, 9 x 0.35 = 3.15; counts 60 and 12: mean 36; 9 / 36 = 0.25; 31 / 0.25 = 124
    (JAN, CROIX_ROUSSE, "VIE-001"): (True, D("9"), D("3.15"), 2, D("36.00"), D("0.2500"),
                                     D("124.0")),
    (FEB, CROIX_ROUSSE, "VIE-001"): (False, D("0"), D("0.00"), 1, D("30.00"), D("0.0000"), None),
    # 1 - 1 returned = 0; counts 4, 0, 0, 5: mean 9 / 4 = 2.25; turnover 0
    (JAN, CROIX_ROUSSE, "GAT-001"): (True, D("0"), D("0.00"), 4, D("2.25"), D("0.0000"), None),
    (FEB, CROIX_ROUSSE, "GAT-001"): (False, D("0"), D("0.00"), 1, D("1.00"), D("0.0000"), None),
    # counts 0, 6, 0: mean 2; nothing sold
    (JAN, CROIX_ROUSSE, "FAR-001"): (True, D("0"), D("0.00"), 3, D("2.00"), D("0.0000"), None),
    # one count, 0: no inventory to turn over
    (FEB, CROIX_ROUSSE, "FAR-001"): (False, D("0"), D("0.00"), 1, D("0.00"), None, None),
    # Villeurbanne's PAI-001 and VIE-001 start in February (sale and count on the 3rd).
    # 1 sold; count 8; 1 / 8 = 0.125; 28 / 0.125 = 224.0
    (FEB, VILLEURBANNE, "PAI-001"): (False, D("1"), None, 1, D("8.00"), D("0.1250"), D("224.0")),
    # 10 sold, 10 x 0.35 = 3.50; count 60; 10 / 60 = 0.1667; 28 x 60 / 10 = 168.0
    (FEB, VILLEURBANNE, "VIE-001"): (False, D("10"), D("3.50"), 1, D("60.00"), D("0.1667"),
                                     D("168.0")),
    # T-0002 in January, 1 x 8.50, before any count: no average inventory, no turnover
    (JAN, VILLEURBANNE, "GAT-001"): (True, D("1"), D("8.50"), 0, None, None, None),
    (FEB, VILLEURBANNE, "GAT-001"): (False, D("0"), D("0.00"), 1, D("3.00"), D("0.0000"), None),
    # counted 4 on 20 January; February has no count: the January one carries over
    (JAN, VILLEURBANNE, "FAR-001"): (True, D("0"), D("0.00"), 1, D("4.00"), D("0.0000"), None),
    (FEB, VILLEURBANNE, "FAR-001"): (False, D("0"), D("0.00"), 0, D("4.00"), D("0.0000"), None),
}

# stockouts of `filed`: (shop, SKU, started on) -> (ended on, ongoing, days, empty counts,
# average daily units in the 28 days before, estimated units lost).
FILE_STOCKOUTS = {
    # empty on 16 and 17 Jan, 5 on the 20th: 4 days. The 28 days before are 19 Dec..15 Jan:
    # T-0003's tart, 1 -> 1/28 = 0.0357; 4 x 1/28 = 0.14 -> 0.1 (RET-T-0003 on the 16th is
    # the episode's first day, not before it)
    (CROIX_ROUSSE, "GAT-001", date(2025, 1, 16)): (date(2025, 1, 20), False, 4, 2,
                                                   D("0.0357"), D("0.1")),
    # empty at the first count (13 Jan), 6 on the 20th: 7 days, never sold
    (CROIX_ROUSSE, "FAR-001", date(2025, 1, 13)): (date(2025, 1, 20), False, 7, 1,
                                                   D("0.0000"), D("0.0")),
    # empty on 31 Jan and 3 Feb and not counted since: ongoing, 3 Feb - 31 Jan = 3 days
    (CROIX_ROUSSE, "FAR-001", date(2025, 1, 31)): (None, True, 3, 2, D("0.0000"), D("0.0")),
}


def built(slug: str, *, full_refresh: bool = False) -> None:
    """Run the client; it must succeed with every audit passing."""
    run = run_client(slug, full_refresh=full_refresh)
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]
    transform = next(s for s in run.steps if s.kind == "transform")
    assert transform.details["audit_failures"] == []


def product_sales(conn: psycopg.Connection, slug: str) -> dict:
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in conn.execute(f"""
        SELECT sales_date, location_name, product_id, product_name, units_sold, units_returned,
               revenue, sales_lines, orders, average_unit_price, currency
        FROM {slug}_marts.product_sales_daily""")}


def categories(conn: psycopg.Connection, slug: str) -> dict[str, str | None]:
    return dict(conn.execute(
        f"SELECT DISTINCT product_id, category FROM {slug}_marts.product_sales_daily"))


def status(conn: psycopg.Connection, slug: str) -> tuple[set[date], dict]:
    found = conn.execute(f"""
        SELECT as_of, location_name, product_id, last_counted_on, on_hand, units_sold_28d,
               avg_daily_units, days_of_cover, reorder_point, reorder_point_source,
               below_reorder
        FROM {slug}_marts.inventory_status""").fetchall()
    return {r[0] for r in found}, {(r[1], r[2]): tuple(r[3:]) for r in found}


def turnover(conn: psycopg.Connection, slug: str) -> dict:
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in conn.execute(f"""
        SELECT month, location_name, product_id, complete_month, units_sold,
               cost_of_goods_sold, stock_counts, average_inventory, turnover, days_of_inventory
        FROM {slug}_marts.inventory_turnover_monthly""")}


def stockouts(conn: psycopg.Connection, slug: str) -> dict:
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in conn.execute(f"""
        SELECT location_name, product_id, started_on, ended_on, ongoing, days, empty_counts,
               avg_daily_units_before, estimated_units_lost
        FROM {slug}_marts.stockouts""")}


def write_file_client(project: Path, slug: str, *, products: bool, counts: bool) -> None:
    """clients/<slug>.yaml with one `files` source, and its export files: the golden shops
    and completed receipts (Paris wall time), optionally FILE_PRODUCTS and the stock counts."""
    folder = project / "exports" / slug
    write_csv(folder / "shops.csv", [
        {"shop_id": s.shop_id, "shop_name": s.name, "city": s.city,
         "opened_on": s.opened_on.isoformat()} for s in golden_data.SHOPS])
    write_csv(folder / "sales.csv", [
        {"receipt_no": o.receipt_no, "line_no": str(li.line_no),
         "sold_at": o.sold_at.astimezone(golden_data.PARIS).strftime("%Y-%m-%d %H:%M"),
         "shop_id": o.shop_id, "channel": o.channel, "customer_id": o.customer_id,
         "sku": li.sku, "product_name": li.name, "quantity": str(li.quantity),
         "unit_price": str(li.unit_price), "discount": str(li.discount),
         "line_total": str(li.line_total)}
        for o in golden_data.orders() if o.cancelled_at is None for li in o.lines])
    streams = [
        {"name": "shops", "path": f"exports/{slug}/shops.csv", "entity": "locations",
         "primary_key": ["shop_id"], "columns": {"location_id": "shop_id", "name": "shop_name"}},
        {"name": "sales", "path": f"exports/{slug}/sales.csv", "entity": "order_lines",
         "primary_key": ["receipt_no", "line_no"],
         "columns": {"order_id": "receipt_no", "line_number": "line_no",
                     "ordered_at": "sold_at", "location_id": "shop_id", "product_id": "sku"}},
    ]
    if products:
        write_csv(folder / "products.csv", FILE_PRODUCTS)
        streams.append({"name": "products", "path": f"exports/{slug}/products.csv",
                        "entity": "products", "primary_key": ["sku"],
                        "columns": {"product_id": "sku"}})
    if counts:
        write_csv(folder / "stock_counts.csv", [
            {"count_date": day.isoformat(), "shop_id": shop, "sku": sku, "on_hand": str(on_hand)}
            for day, shop, sku, on_hand in
            [(c.counted_on, c.shop_id, c.sku, c.on_hand) for c in golden_data.STOCK_COUNTS]
            + EXTRA_COUNTS])
        streams.append({"name": "stock_counts", "path": f"exports/{slug}/stock_counts.csv",
                        "entity": "inventory_levels",
                        "primary_key": ["count_date", "shop_id", "sku"],
                        "columns": {"counted_on": "count_date", "location_id": "shop_id",
                                    "product_id": "sku"}})
    document = {"name": slug.title(), "timezone": "Europe/Paris", "currency": "EUR",
                "sources": [{"name": "pos", "connector": "files", "streams": streams}]}
    (project / "clients" / f"{slug}.yaml").write_bytes(orjson.dumps(document))


def test_square_golden_month(golden_square, conn: psycopg.Connection) -> None:
    built("gold")

    assert product_sales(conn, "gold") == PRODUCT_SALES
    # Categories come from the Square catalog.
    assert categories(conn, "gold") == {"PAI-001": "pain", "VIE-001": "viennoiserie",
                                        "GAT-001": "patisserie"}
    # A day's product revenue adds up to its daily_sales revenue, per location.
    assert conn.execute("""
        SELECT p.sales_date, p.location_id, p.revenue, d.revenue
        FROM (SELECT sales_date, location_id, SUM(revenue) AS revenue
              FROM gold_marts.product_sales_daily GROUP BY 1, 2) AS p
        FULL JOIN (SELECT sales_date, location_id, SUM(revenue) AS revenue
                   FROM gold_marts.daily_sales GROUP BY 1, 2) AS d
          USING (sales_date, location_id)
        WHERE p.revenue IS DISTINCT FROM d.revenue""").fetchall() == []

    as_of, found = status(conn, "gold")
    assert as_of == {AS_OF}
    assert found == SQUARE_STATUS

    # One count per product and shop (3 Feb): January has no inventory yet; Square has no
    # unit cost, so no cost of goods sold.
    months = turnover(conn, "gold")
    assert set(months) == {(JAN, CROIX_ROUSSE, sku) for sku in ("PAI-001", "VIE-001", "GAT-001")} \
        | {(FEB, shop, sku) for shop in (CROIX_ROUSSE, VILLEURBANNE)
           for sku in ("PAI-001", "VIE-001", "GAT-001")} | {(JAN, VILLEURBANNE, "GAT-001")}
    # 9 croissants sold in January at Croix-Rousse, nothing counted before February
    assert months[(JAN, CROIX_ROUSSE, "VIE-001")] == (True, D("9"), None, 0, None, None, None)
    # 10 sold on 3 Feb at Villeurbanne, 60 counted: 10 / 60 = 0.1667; 28 x 60 / 10 = 168.0
    assert months[(FEB, VILLEURBANNE, "VIE-001")] == (
        False, D("10"), None, 1, D("60.00"), D("0.1667"), D("168.0"))
    # No count ever at zero: no stock-out.
    assert stockouts(conn, "gold") == {}


def test_file_client_with_counts_over_time(project: Path, conn: psycopg.Connection) -> None:
    write_file_client(project, "filed", products=True, counts=True)
    built("filed")

    # Same receipts as Square: same product sales; the file's product list names the
    # categories, and PAI-001, missing from it, keeps the name on its sales lines.
    assert product_sales(conn, "filed") == PRODUCT_SALES
    assert categories(conn, "filed") == {
        "PAI-001": None, "VIE-001": "viennoiserie", "GAT-001": "patisserie"}
    # The golden daily and monthly sales too (the export names channels as PanPan does).
    figures = golden_data.mart_figures(conn, "filed", {})
    assert figures == golden_data.EXPECTED

    as_of, found = status(conn, "filed")
    assert as_of == {AS_OF}
    assert found == FILE_STATUS
    assert turnover(conn, "filed") == FILE_TURNOVER
    assert stockouts(conn, "filed") == FILE_STOCKOUTS
    # Names from the product list, else from the sales lines (PAI-001); the never sold
    # FAR-001 from the product list.
    names = {"PAI-001": "Pain de campagne", "VIE-001": "Croissant",
             "GAT-001": "Tarte aux fraises", "FAR-001": "Far breton"}
    for mart in ("inventory_status", "inventory_turnover_monthly"):
        assert dict(conn.execute(
            f"SELECT DISTINCT product_id, product_name FROM filed_marts.{mart}")) == names
    assert set(conn.execute("SELECT product_id, product_name FROM filed_marts.stockouts")) == {
        ("GAT-001", "Tarte aux fraises"), ("FAR-001", "Far breton")}
    # Costs come with the product's currency; unknown costs have none.
    assert dict(conn.execute("SELECT DISTINCT product_id, currency FROM "
                             "filed_marts.inventory_turnover_monthly")) == {
        "PAI-001": None, "VIE-001": "EUR", "GAT-001": "EUR", "FAR-001": "EUR"}

    # A rebuild of the same data gives the same marts (as_of comes from the data).
    before = {name: sorted(map(str, conn.execute(f"SELECT t FROM filed_marts.{name} AS t")))
              for name in ("inventory_status", "inventory_turnover_monthly", "stockouts")}
    built("filed", full_refresh=True)
    assert before == {
        name: sorted(map(str, conn.execute(f"SELECT t FROM filed_marts.{name} AS t")))
        for name in before}


def test_client_without_stock_counts_gets_empty_inventory_marts(
    project: Path, conn: psycopg.Connection
) -> None:
    write_file_client(project, "nostock", products=False, counts=False)
    built("nostock")

    for mart in ("inventory_status", "inventory_turnover_monthly", "stockouts"):
        assert conn.execute(f"SELECT count(*) FROM nostock_marts.{mart}").fetchone() == (0,)
    # Without a product list, products are named from their sales lines, uncategorised.
    assert product_sales(conn, "nostock") == PRODUCT_SALES
    assert set(categories(conn, "nostock").values()) == {None}
