"""A client's own dimensions (`dimensions:` in its YAML) computed per order or per line through
staging into kpi_daily and the sales marts, from canonical fields and from file columns no
canonical field holds; and what a receipt is (sale, return, adjustment) on hand-made receipts
with every kind of row. Their validation: tests/test_dimensions_registry.py."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import orjson
import psycopg
import pytest
from csv_files import write_csv

from goalpost.app.orchestrator import run_client

pytestmark = pytest.mark.e2e

D = Decimal
DAY1, DAY2 = date(2025, 3, 3), date(2025, 3, 4)


SALES = [
    # receipt, day, shop, customer, payment, country, sku, qty, price, promo
    ("O1", DAY1, "S1", "C1", "card", "FR", "P1", "2", "3.00", "SPRING"),
    ("O1", DAY1, "S1", "C1", "card", "FR", "P2", "1", "10.00", ""),
    ("O2", DAY1, "S2", "", "cash", "BE", "P2", "1", "10.00", ""),
    # a loyalty reward: a priced tart given away (its line total is 0)
    ("L1", DAY1, "S2", "C2", "cash", "BE", "P2", "1", "10.00", ""),
    # a return, money and goods back
    ("O3", DAY2, "S1", "C1", "card", "FR", "P1", "-1", "3.00", ""),
    # a stock write-off at price 0, a bad-debt entry, goods given away for nothing
    ("W1", DAY2, "S1", "", "", "", "P1", "-5", "0", ""),
    ("B1", DAY2, "S1", "", "", "", "BAD", "1", "-50.00", ""),
    ("Z1", DAY2, "S2", "C2", "cash", "BE", "P1", "2", "0", ""),
]


@pytest.fixture
def shop(project: Path, database_url: str) -> str:
    """Client `shop`: two shops with a region column, products with categories, customers
    with a segment column, and receipts of every kind with payment and promotion columns."""
    folder = project / "exports"
    write_csv(folder / "shops.csv", [{"shop_id": "S1", "name": "Nord", "Region": "North"},
                                     {"shop_id": "S2", "name": "Sud", "Region": "South"}])
    write_csv(folder / "products.csv", [{"sku": "P1", "name": "Pain", "category": "bread"},
                                        {"sku": "P2", "name": "Tarte", "category": "cake"}])
    write_csv(folder / "customers.csv", [{"customer_id": "C1", "Segment": "gold"},
                                         {"customer_id": "C2", "Segment": ""}])
    write_csv(folder / "sales.csv", [
        {"receipt": r, "line": str(n), "sold_at": f"{day} 10:00", "shop": s, "customer": c,
         "Payment": pay, "country": country, "sku": sku, "qty": qty, "price": price,
         "total": "0" if r == "L1" else str(Decimal(qty) * Decimal(price)), "Promo": promo}
        for n, (r, day, s, c, pay, country, sku, qty, price, promo) in enumerate(SALES)])
    document = {
        "name": "Shop", "timezone": "Europe/Paris", "extensions": [],
        "dimensions": {
            "country": {"entity": "orders"},
            "payment": {"entity": "orders", "column": "Payment"},
            "region": {"entity": "locations", "column": "Region"},
            "segment": {"entity": "customers", "column": "Segment"},
            "category": {"entity": "products"},
            "promo": {"entity": "order_lines", "column": "Promo", "label": "Promotion"},
        },
        "sources": [{"name": "pos", "connector": "files", "streams": [
            {"name": "shops", "path": "exports/shops.csv", "entity": "locations",
             "primary_key": ["shop_id"], "columns": {"location_id": "shop_id"}},
            {"name": "products", "path": "exports/products.csv", "entity": "products",
             "primary_key": ["sku"], "columns": {"product_id": "sku"}},
            {"name": "customers", "path": "exports/customers.csv", "entity": "customers",
             "primary_key": ["customer_id"]},
            {"name": "sales", "path": "exports/sales.csv", "entity": "order_lines",
             "primary_key": ["receipt", "line"],
             "columns": {"order_id": "receipt", "line_number": "line", "ordered_at": "sold_at",
                         "location_id": "shop", "customer_id": "customer",
                         "product_id": "sku", "quantity": "qty", "unit_price": "price",
                         "line_total": "total"}},
        ]}],
    }
    (project / "clients" / "shop.yaml").write_bytes(orjson.dumps(document))
    run = run_client("shop")
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]
    return "shop"


def kpi(conn: psycopg.Connection, metric: str, dimension: str) -> dict:
    return {(r[0], r[1]): r[2] for r in conn.execute(
        "SELECT date, dimension_value, value FROM shop_marts.kpi_daily "
        "WHERE metric = %s AND dimension = %s", (metric, dimension))}


def test_receipts_of_every_kind_and_every_dimension(shop: str, conn: psycopg.Connection) -> None:
    assert dict(conn.execute("SELECT order_id, kind FROM shop_staging.orders")) == {
        "O1": "sale", "O2": "sale", "L1": "sale", "O3": "return", "W1": "adjustment",
        "B1": "adjustment", "Z1": "adjustment"}
    # Adjustments are in no figure: day 2 holds the return alone.
    assert kpi(conn, "revenue", "all") == {(DAY1, "all"): D("26.00"), (DAY2, "all"): D("-3.00")}
    assert kpi(conn, "orders", "all") == {(DAY1, "all"): 3, (DAY2, "all"): 0}
    assert kpi(conn, "items", "all") == {(DAY1, "all"): 5, (DAY2, "all"): 0}
    # Order-level dimensions: one value per order, they add up to the total.
    assert kpi(conn, "revenue", "payment") == {
        (DAY1, "card"): D("16.00"), (DAY1, "cash"): D("10.00"), (DAY2, "card"): D("-3.00")}
    assert kpi(conn, "revenue", "country")[(DAY1, "FR")] == D("16.00")
    assert kpi(conn, "revenue", "region") == {
        (DAY1, "North"): D("16.00"), (DAY1, "South"): D("10.00"), (DAY2, "North"): D("-3.00")}
    assert kpi(conn, "customers", "segment") == {
        (DAY1, "gold"): 1, (DAY1, "(none)"): 1, (DAY2, "gold"): 0}
    # Line-level ones: an order counts in each value its lines have; revenue adds up.
    assert kpi(conn, "revenue", "category") == {
        (DAY1, "bread"): D("6.00"), (DAY1, "cake"): D("20.00"), (DAY2, "bread"): D("-3.00")}
    assert kpi(conn, "orders", "category") == {
        (DAY1, "bread"): 1, (DAY1, "cake"): 3, (DAY2, "bread"): 0}
    assert kpi(conn, "items", "promo") == {
        (DAY1, "SPRING"): 2, (DAY1, "(none)"): 3, (DAY2, "(none)"): 0}
    # The sales marts carry them as columns (order-level ones in daily_sales; every one per
    # product), '(none)' where an order has no value.
    assert conn.execute("""
        SELECT sales_date, location_name, country, payment, region, segment, orders, revenue
        FROM shop_marts.daily_sales ORDER BY 1, 2""").fetchall() == [
        (DAY1, "Nord", "FR", "card", "North", "gold", 1, D("16.00")),
        (DAY1, "Sud", "BE", "cash", "South", "(none)", 2, D("10.00")),
        (DAY2, "Nord", "FR", "card", "North", "gold", 0, D("-3.00"))]
    assert conn.execute("""
        SELECT product_id, category, promo, payment, units_sold, units_returned, revenue
        FROM shop_marts.product_sales_daily WHERE sales_date = %s ORDER BY 1, 3, 4""",
        (DAY1,)).fetchall() == [
        ("P1", "bread", "SPRING", "card", 2, 0, D("6.00")),
        ("P2", "cake", "(none)", "card", 1, 0, D("10.00")),
        ("P2", "cake", "(none)", "cash", 2, 0, D("10.00"))]
    assert conn.execute("SELECT customer, segment FROM shop_marts.customers ORDER BY 1"
                        ).fetchall() == [("C1", "gold"), ("C2", "(none)")]
    assert conn.execute("SELECT segment, orders FROM shop_marts.customers_monthly ORDER BY 1"
                        ).fetchall() == [("(none)", 1), ("gold", 1)]


def test_a_kind_the_source_gives_is_used_and_a_bad_one_refused(project: Path,
                                                               database_url: str,
                                                               conn: psycopg.Connection) -> None:
    """A file may say what each receipt is (order_kind): a zero-value receipt the shop calls
    a sale stays one; a kind Goalpost does not know is quarantined at load, saying which line,
    column and value, and never reaches the sales marts."""
    rows = [{"receipt": "F1", "sold_at": "2025-03-03 09:00", "shop": "S1", "sku": "P1",
             "qty": "1", "total": "0", "type": "Sale"},
            {"receipt": "F2", "sold_at": "2025-03-03 10:00", "shop": "S1", "sku": "P1",
             "qty": "-1", "total": "0", "type": "adjustment"}]
    write_csv(project / "exports" / "kinds.csv", rows)
    document = {"name": "Kinds", "extensions": [], "sources": [
        {"name": "pos", "connector": "files", "streams": [
            {"name": "sales", "path": "exports/kinds.csv", "entity": "order_lines",
             "primary_key": ["receipt"],
             "columns": {"order_id": "receipt", "ordered_at": "sold_at", "location_id": "shop",
                         "product_id": "sku", "quantity": "qty", "line_total": "total",
                         "order_kind": "type"}}]}]}
    (project / "clients" / "kinds.yaml").write_bytes(orjson.dumps(document))
    run = run_client("kinds")
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]
    assert dict(conn.execute("SELECT order_id, kind FROM kinds_staging.orders")) == {
        "F1": "sale", "F2": "adjustment"}
    assert conn.execute("SELECT sum(orders) FROM kinds_marts.daily_sales").fetchone()[0] == 1

    write_csv(project / "exports" / "kinds_2.csv", [dict(rows[0], receipt="F3", type="void")])
    document["sources"][0]["streams"][0]["path"] = "exports/kinds*.csv"
    (project / "clients" / "kinds.yaml").write_bytes(orjson.dumps(document))
    run = run_client("kinds")
    extract = next(s for s in run.steps if s.kind == "extract")
    assert (extract.rows_loaded, extract.rows_quarantined) == (0, 1)
    reason, = conn.execute("SELECT reason FROM goalpost.quarantine WHERE client = 'kinds'").fetchone()
    assert "line 2" in reason and "'type' (order_kind)" in reason and "'void'" in reason
    # The line waits in quarantine, named; what was built before stays: one sale.
    assert conn.execute("SELECT sum(orders) FROM kinds_marts.daily_sales").fetchone()[0] == 1
