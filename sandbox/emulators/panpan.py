"""The PanPan demo data (goalpost.demo.generator's CSV exports) as records the emulators serve.

Amounts stay decimal strings or Decimals, never floats; times are aware datetimes (the exports
hold Paris wall time). A return is a receipt numbered `RET-<original receipt>` with negative
quantities, as the POS exports it; each vendor emulator presents it its own way.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True)
class Shop:
    shop_id: str
    name: str
    city: str
    opened_on: date


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    unit_price: Decimal
    unit_cost: Decimal
    reorder_point: int


@dataclass(frozen=True)
class Customer:
    customer_id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    signed_up: datetime  # midnight Paris time of the signup date, as UTC
    loyalty_opt_in: bool


@dataclass(frozen=True)
class OrderLine:
    line_no: int
    sku: str
    name: str
    quantity: Decimal
    unit_price: Decimal
    discount: Decimal
    line_total: Decimal


@dataclass
class Order:
    receipt_no: str
    sold_at: datetime  # aware, UTC
    shop_id: str
    channel: str  # en_boutique or livraison
    customer_id: str  # "" for an anonymous sale
    lines: list[OrderLine] = field(default_factory=list)
    # When the sale was called off before payment (the exports never hold one; hand-made test
    # data does, to check that each vendor's way of reporting a cancellation is left out).
    cancelled_at: datetime | None = None

    @property
    def is_return(self) -> bool:
        return self.receipt_no.startswith("RET-")

    @property
    def total(self) -> Decimal:
        return sum((line.line_total for line in self.lines), Decimal("0"))


@dataclass(frozen=True)
class StockCount:
    counted_on: date
    shop_id: str
    sku: str
    on_hand: int

    @property
    def counted_at(self) -> datetime:
        """End of the counting day, Paris time, as UTC: when the count becomes known."""
        return datetime(self.counted_on.year, self.counted_on.month, self.counted_on.day, 21, 0,
                        tzinfo=PARIS).astimezone(UTC)


@dataclass
class PanPanData:
    shops: list[Shop]
    products: list[Product]
    customers: list[Customer]
    orders: list[Order]  # by sold_at, then receipt
    stock_counts: list[StockCount]  # by date, shop, sku

    @classmethod
    def load(cls, folder: Path) -> PanPanData:
        """Read a folder written by goalpost.demo.generator.generate_panpan."""
        shops = [Shop(r["shop_id"], r["shop_name"], r["city"], date.fromisoformat(r["opened_on"]))
                 for r in _read(folder / "shops.csv")]
        products = [Product(r["sku"], r["name"], r["category"], Decimal(r["unit_price"]),
                            Decimal(r["unit_cost"]), int(r["reorder_point"]))
                    for r in _read(folder / "products.csv")]
        customers = [
            Customer(r["customer_id"], r["first_name"], r["last_name"], r["email"], r["phone"],
                     _paris_midnight(r["signup_date"]), r["loyalty_opt_in"] == "true")
            for r in _read(folder / "customers.csv")
        ]
        orders: dict[str, Order] = {}
        for path in sorted(folder.glob("sales_*.csv.gz")):
            for r in _read(path, delimiter=";"):
                order = orders.get(r["receipt_no"])
                if order is None:
                    sold_at = datetime.strptime(r["sold_at"], "%d/%m/%Y %H:%M")
                    order = orders[r["receipt_no"]] = Order(
                        r["receipt_no"], sold_at.replace(tzinfo=PARIS).astimezone(UTC),
                        r["shop_id"], r["channel"], r["customer_id"])
                order.lines.append(OrderLine(
                    int(r["line_no"]), r["sku"], r["product_name"], _dec(r["quantity"]),
                    _dec(r["unit_price"]), _dec(r["discount"]), _dec(r["line_total"])))
        counts = [StockCount(date.fromisoformat(r["count_date"]), r["shop_id"], r["sku"],
                             int(r["on_hand"]))
                  for path in sorted(folder.glob("stock_counts_*.csv.gz"))
                  for r in _read(path)]
        return cls(shops, products, customers,
                   sorted(orders.values(), key=lambda o: (o.sold_at, o.receipt_no)), counts)


def _dec(text: str) -> Decimal:
    return Decimal(text.replace(",", "."))


def _paris_midnight(text: str) -> datetime:
    day = date.fromisoformat(text)
    return datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)


def _read(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8")), delimiter=delimiter))
