"""A tiny hand-made PanPan month that every vendor emulator can serve, and the mart figures
computed from it by hand.

The same business, whatever system reports it, must give the same marts: the golden test of
each connector serves these records through its emulator, runs `goalpost run`, and compares
the marts with the figures below (keyed by shop name and SKU, since each vendor has its own
ids). The data is chosen to catch the usual mistakes:

- T-0002 is sold at 00:30 Paris time on 15 January, still 14 January in UTC: it belongs to
  the 15th;
- RET-T-0003 returns the tart of T-0003 the next day: negative revenue on the 16th, one item
  returned, no item sold, no order counted;
- T-0004 was called off before payment: no sale at all;
- T-0005 falls in February and carries a line discount;
- anonymous T-0002 counts as an order but not as a customer.

Figures by hand (Europe/Paris, EUR, prices tax included):
  T-0001  14 Jan 08:15  Croix-Rousse  en_boutique  C0001  2 x PAI-001 @4.20 = 8.40
                                                          3 x VIE-001 @1.30 = 3.90  -> 12.30
  T-0002  15 Jan 00:30  Villeurbanne  livraison    -      1 x GAT-001 @24.00 - 2.00 -> 22.00
  T-0003  15 Jan 09:00  Croix-Rousse  en_boutique  C0002  6 x VIE-001 @1.30 = 7.80
                                                          1 x GAT-001 @24.00        -> 31.80
  RET-T-0003 16 Jan 10:00 Croix-Rousse en_boutique C0002 -1 x GAT-001 @24.00        -> -24.00
  T-0004  16 Jan 11:00  Croix-Rousse  cancelled 11:20     5 x PAI-001               -> (none)
  T-0005   3 Feb 17:45  Villeurbanne  en_boutique  C0001  1 x PAI-001 @4.20 = 4.20
                                                         10 x VIE-001 @1.30 - 1.00 -> 16.20
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg

from goalpost.sandbox.emulators.panpan import (
    PARIS,
    Customer,
    Order,
    OrderLine,
    PanPanData,
    Product,
    Shop,
    StockCount,
)

D = Decimal
# When the emulators are asked: a week after the last sale.
NOW = datetime(2025, 2, 10, 12, 0, tzinfo=UTC)
START_DATE = "2024-12-01T00:00:00Z"

CROIX_ROUSSE = "PanPan Croix-Rousse"
VILLEURBANNE = "PanPan Villeurbanne"


def paris(text: str) -> datetime:
    """A Paris wall time ('2025-01-14 08:15') as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=PARIS).astimezone(UTC)


def line(no: int, sku: str, quantity: str, discount: str = "0") -> OrderLine:
    product = next(p for p in PRODUCTS if p.sku == sku)
    qty, off = D(quantity), D(discount)
    return OrderLine(no, sku, product.name, qty, product.unit_price, off,
                     qty * product.unit_price - off)


SHOPS = [
    Shop("LYO-01", CROIX_ROUSSE, "Lyon", date(2023, 3, 1)),
    Shop("VIL-01", VILLEURBANNE, "Villeurbanne", date(2024, 6, 15)),
]
PRODUCTS = [
    Product("PAI-001", "Pain de campagne", "pain", D("4.20"), D("1.10"), 10),
    Product("VIE-001", "Croissant", "viennoiserie", D("1.30"), D("0.35"), 40),
    Product("GAT-001", "Tarte aux fraises", "patisserie", D("24.00"), D("8.50"), 2),
]
CUSTOMERS = [
    Customer("C0001", "Alice", "Martin", "alice.martin@example.fr", "+33 6 12 34 56 78",
             paris("2025-01-10 00:00"), True),
    Customer("C0002", "Bruno", "Petit", "bruno.petit@example.fr", "+33 6 98 76 54 32",
             paris("2025-01-12 00:00"), False),
]


def orders() -> list[Order]:
    return [
        Order("T-0001", paris("2025-01-14 08:15"), "LYO-01", "en_boutique", "C0001",
              [line(1, "PAI-001", "2"), line(2, "VIE-001", "3")]),
        Order("T-0002", paris("2025-01-15 00:30"), "VIL-01", "livraison", "",
              [line(1, "GAT-001", "1", "2.00")]),
        Order("T-0003", paris("2025-01-15 09:00"), "LYO-01", "en_boutique", "C0002",
              [line(1, "VIE-001", "6"), line(2, "GAT-001", "1")]),
        Order("RET-T-0003", paris("2025-01-16 10:00"), "LYO-01", "en_boutique", "C0002",
              [line(1, "GAT-001", "-1")]),
        Order("T-0004", paris("2025-01-16 11:00"), "LYO-01", "en_boutique", "",
              [line(1, "PAI-001", "5")], cancelled_at=paris("2025-01-16 11:20")),
        Order("T-0005", paris("2025-02-03 17:45"), "VIL-01", "en_boutique", "C0001",
              [line(1, "PAI-001", "1"), line(2, "VIE-001", "10", "1.00")]),
    ]


STOCK_COUNTS = [
    StockCount(date(2025, 1, 13), "LYO-01", "PAI-001", 20),
    StockCount(date(2025, 1, 13), "LYO-01", "VIE-001", 60),
    StockCount(date(2025, 1, 13), "LYO-01", "GAT-001", 4),
    StockCount(date(2025, 2, 3), "LYO-01", "PAI-001", 15),
    StockCount(date(2025, 2, 3), "LYO-01", "VIE-001", 30),
    StockCount(date(2025, 2, 3), "LYO-01", "GAT-001", 1),
    StockCount(date(2025, 2, 3), "VIL-01", "PAI-001", 8),
    StockCount(date(2025, 2, 3), "VIL-01", "VIE-001", 60),
    StockCount(date(2025, 2, 3), "VIL-01", "GAT-001", 3),
]


def golden_data() -> PanPanData:
    """A fresh copy (emulators may index or mutate what they are given)."""
    return PanPanData(list(SHOPS), list(PRODUCTS), list(CUSTOMERS), orders(), list(STOCK_COUNTS))


# daily_sales: (date, shop name, PanPan channel) -> (orders, revenue, items (sold, on sales
# receipts), customers, average ticket)
DAILY_SALES = {
    (date(2025, 1, 14), CROIX_ROUSSE, "en_boutique"): (1, D("12.30"), D("5"), 1, D("12.30")),
    (date(2025, 1, 15), VILLEURBANNE, "livraison"): (1, D("22.00"), D("1"), 0, D("22.00")),
    (date(2025, 1, 15), CROIX_ROUSSE, "en_boutique"): (1, D("31.80"), D("7"), 1, D("31.80")),
    (date(2025, 1, 16), CROIX_ROUSSE, "en_boutique"): (0, D("-24.00"), D("0"), 0, None),
    (date(2025, 2, 3), VILLEURBANNE, "en_boutique"): (1, D("16.20"), D("11"), 1, D("16.20")),
}
# monthly_sales: (first of month, shop name, PanPan channel) -> (orders, revenue, items,
# customers, average ticket)
MONTHLY_SALES = {
    (date(2025, 1, 1), CROIX_ROUSSE, "en_boutique"): (2, D("20.10"), D("12"), 2, D("10.05")),
    (date(2025, 1, 1), VILLEURBANNE, "livraison"): (1, D("22.00"), D("1"), 0, D("22.00")),
    (date(2025, 2, 1), VILLEURBANNE, "en_boutique"): (1, D("16.20"), D("11"), 1, D("16.20")),
}
# kpi_daily, dimension 'all': (metric, date) -> value
KPI_TOTALS = {
    ("revenue", date(2025, 1, 14)): D("12.30"),
    ("revenue", date(2025, 1, 15)): D("53.80"),
    ("revenue", date(2025, 1, 16)): D("-24.00"),
    ("revenue", date(2025, 2, 3)): D("16.20"),
    ("orders", date(2025, 1, 15)): D("2"),
    ("orders", date(2025, 1, 16)): D("0"),
    ("average_ticket", date(2025, 1, 15)): D("26.90"),
    ("returns", date(2025, 1, 16)): D("24.00"),
    ("returns", date(2025, 1, 15)): D("0"),
}
# The latest stock count per (shop name, SKU): on hand.
ON_HAND = {
    (CROIX_ROUSSE, "PAI-001"): D("15"),
    (CROIX_ROUSSE, "VIE-001"): D("30"),
    (CROIX_ROUSSE, "GAT-001"): D("1"),
    (VILLEURBANNE, "PAI-001"): D("8"),
    (VILLEURBANNE, "VIE-001"): D("60"),
    (VILLEURBANNE, "GAT-001"): D("3"),
}
# Products: SKU -> (name, unit price)
PRODUCT_PRICES = {p.sku: (p.name, p.unit_price) for p in PRODUCTS}


def mart_figures(conn: psycopg.Connection, slug: str, channels: dict[str, str]) -> dict[str, dict]:
    """The marts of a client in the shape of the figures above; `channels` names the PanPan
    channel of each channel label the vendor reports (e.g. Square's 'Boutique')."""
    def sales(mart: str, period: str) -> dict:
        return {
            (r[0], r[1], channels.get(r[2], r[2])): tuple(r[3:])
            for r in conn.execute(
                f"SELECT {period}, location_name, channel, orders, revenue, items, customers, "
                f"average_ticket FROM {slug}_marts.{mart}").fetchall()
        }

    kpis = {
        (r[0], r[1]): r[2]
        for r in conn.execute(
            f"SELECT metric, date, value FROM {slug}_marts.kpi_daily "
            f"WHERE dimension = 'all'").fetchall()
    }
    return {"daily_sales": sales("daily_sales", "sales_date"),
            "monthly_sales": sales("monthly_sales", "sales_month"),
            "kpi_totals": {key: kpis.get(key) for key in KPI_TOTALS}}


EXPECTED = {"daily_sales": DAILY_SALES, "monthly_sales": MONTHLY_SALES, "kpi_totals": KPI_TOTALS}
