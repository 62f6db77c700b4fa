"""A test client whose metrics come from everywhere, with figures simple enough to compute by
hand: two shops' POS sales (a CSV), monthly marketing spend (an XLSX sheet), daily footfall per
shop (a CSV), and weekly staff hours entered with `goalpost metrics record`.

The business, from January 2023 to March 2025:
- every day, 12 anonymous sales at shop S1 and 8 at shop S2, each one item at 8.00;
- marketing spend each month (SPEND below); the month after, spend / 10 new customers
  (plus NOISE[m % 5]) each make a first purchase of one item at 12.00, customer k of the month
  on day 1 + k % 28, at S1 when k is even, else S2;
- footfall (January to March 2025 only): 20 a day at S1, 16 at S2, but 40 at S2 on
  31 March 2025 (a day of visitors who did not buy: conversion 8 / 40 = 0.2).
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from pathlib import Path

import openpyxl
import orjson
from csv_files import write_csv

FIRST_MONTH = date(2023, 1, 1)
LAST_DAY = date(2025, 3, 31)
# Marketing spend per month, January 2023 to March 2025.
SPEND = [900, 1300, 700, 1500, 1100, 800, 1400, 1000, 600, 1200, 1600, 900,
         1250, 750, 1350, 1050, 650, 1450, 950, 1150, 850, 1550, 1000, 700,
         1150, 1000, 1200]
NOISE = [0, 2, -1, 1, -2]
FIRST_NEW = 80  # new customers in January 2023 (no spend the month before)
ANONYMOUS = {"S1": 12, "S2": 8}
FOOTFALL = {"S1": 20, "S2": 16}
FOOTFALL_FROM = date(2025, 1, 1)
BUSY_DAY = (date(2025, 3, 31), "S2", 40)
STAFF_HOURS = [("2025-03-03", "100"), ("2025-03-10", "110"), ("2025-03-17", "95"),
               ("2025-03-24", "120")]
STAFF_CORRECTION = ("2025-03-10", "105")  # entered later: replaces 110


def months() -> list[date]:
    found, day = [], FIRST_MONTH
    while day <= LAST_DAY:
        found.append(day)
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return found


def new_customers(index: int) -> int:
    """New customers in month `index` (0 = January 2023)."""
    return FIRST_NEW if index == 0 else SPEND[index - 1] // 10 + NOISE[index % 5]


def first_purchases(index: int) -> list[tuple[date, str, str]]:
    """(day, shop, customer) of the month's new customers' first purchases."""
    month = months()[index]
    return [(month.replace(day=1 + k % 28), "S1" if k % 2 == 0 else "S2", f"C{index}_{k}")
            for k in range(new_customers(index))]


def footfall(day: date, shop: str) -> int:
    return BUSY_DAY[2] if (day, shop) == BUSY_DAY[:2] else FOOTFALL[shop]


def write_client(project: Path, slug: str = "metrics_shop", **extra: object) -> dict:
    """The files and clients/<slug>.yaml; returns the client document."""
    folder = project / "exports"
    sales = []
    receipt = 0

    def sale(day: date, shop: str, customer: str, price: str) -> None:
        nonlocal receipt
        receipt += 1
        sales.append({"receipt": f"R{receipt}", "line": "1", "sold_at": f"{day} 11:00",
                      "shop": shop, "customer": customer, "sku": "P1", "qty": "1",
                      "price": price, "total": price})

    for index, month in enumerate(months()):
        for day_number in range(1, calendar.monthrange(month.year, month.month)[1] + 1):
            day = month.replace(day=day_number)
            for shop, count in ANONYMOUS.items():
                for _ in range(count):
                    sale(day, shop, "", "8.00")
        for day, shop, customer in first_purchases(index):
            sale(day, shop, customer, "12.00")
    write_csv(folder / "sales.csv", sales)
    write_csv(folder / "shops.csv", [{"shop_id": "S1", "name": "Nord"},
                                     {"shop_id": "S2", "name": "Sud"}])
    days = [FOOTFALL_FROM + timedelta(days=i) for i in range((LAST_DAY - FOOTFALL_FROM).days + 1)]
    write_csv(folder / "footfall.csv", [{"day": str(day), "shop": shop,
                                         "visitors": str(footfall(day, shop))}
                                        for day in days for shop in FOOTFALL])
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Spend"
    sheet.append(["Month", "Spend"])
    for month, spend in zip(months(), SPEND, strict=True):
        sheet.append([month, spend])
    book.save(folder / "marketing.xlsx")
    document = {
        "name": "Metrics Shop", "timezone": "Europe/Paris",
        "owners": [{"name": "Owner", "email": "owner@shop.example"}],
        "extensions": ["correlations", "goals"],
        "metrics": {
            "footfall": {"label": "Footfall", "unit": "count", "aggregation": "sum",
                         "dimensions": ["location"], "confidence": "medium",
                         "hypothesis": "Visitors who do not buy are sales to win"},
            "marketing_spend": {"label": "Marketing spend", "unit": "currency",
                                "aggregation": "sum", "rhythm": "month", "dimensions": [],
                                "owner": "Sam"},
            "staff_hours": {"label": "Staff hours", "unit": "hours", "aggregation": "sum",
                            "rhythm": "week", "dimensions": []},
            "conversion": {"label": "Conversion", "formula": "orders / footfall",
                           "unit": "ratio", "value_type": "percentage",
                           "thresholds": {"direction": "min", "warning": 0.5,
                                          "critical": 0.3}},
            "cac": {"label": "Customer acquisition cost",
                    "formula": "marketing_spend / new_customers", "unit": "currency",
                    "direction": "down", "category": "guardrail",
                    "thresholds": {"direction": "max", "warning": 12, "critical": 15}},
            "sales_per_labour_hour": {"label": "Sales per labour hour",
                                      "formula": "revenue / staff_hours", "unit": "currency"},
        },
        "relationships": [
            {"from": "marketing_spend", "to": "new_customers", "lag": "1 month",
             "direction": "positive", "confidence": "medium",
             "notes": "campaigns bring first visits the month after"},
            {"from": "marketing_spend", "to": "customers", "lag": "1 month",
             "direction": "negative", "notes": "a hypothesis the data should contradict"},
        ],
        "goals": [
            {"name": "cac_q1", "metric": "cac", "max": 12, "period": "quarter",
             "deadline": "2025-03-31"},
            {"name": "cac_q2", "metric": "cac", "max": 12, "period": "quarter",
             "deadline": "2025-06-30"},
        ],
        "alerts": {"rules": [{"name": "low_conversion", "kind": "threshold",
                              "metric": "conversion", "dimension": "location",
                              "value": "warning"}]},
        "sources": [{"name": "pos", "connector": "files", "streams": [
            {"name": "shops", "path": "exports/shops.csv", "entity": "locations",
             "primary_key": ["shop_id"], "columns": {"location_id": "shop_id"}},
            {"name": "sales", "path": "exports/sales.csv", "entity": "order_lines",
             "primary_key": ["receipt", "line"],
             "columns": {"order_id": "receipt", "line_number": "line", "ordered_at": "sold_at",
                         "location_id": "shop", "customer_id": "customer",
                         "product_id": "sku", "quantity": "qty", "unit_price": "price",
                         "line_total": "total"}},
        ]}, {"name": "counters", "connector": "files", "streams": [
            {"name": "footfall", "path": "exports/footfall.csv", "entity": "metric_values",
             "primary_key": ["day", "shop"],
             "columns": {"metric": "=footfall", "period_start": "day",
                         "dimension": "=location", "dimension_value": "shop",
                         "value": "visitors"}},
        ]}, {"name": "marketing", "connector": "files", "streams": [
            {"name": "spend", "path": "exports/marketing.xlsx", "entity": "metric_values",
             "primary_key": ["Month"], "sheet": "Spend",
             "columns": {"metric": "=marketing_spend", "period_start": "Month",
                         "value": "Spend"}},
        ]}],
        **extra,
    }
    (project / "clients" / f"{slug}.yaml").write_bytes(orjson.dumps(document))
    return document
