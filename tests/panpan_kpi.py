"""PanPan's kpi_daily computed in pandas from the generator's POS exports, the way the
standard metrics define it (goalpost/metrics/standard.yaml, rounding included): real-looking
data for the extensions' tests without building the whole stack."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from goalpost.sandbox.demo.generator import generate_panpan


def _round(values: pd.Series, digits: int) -> pd.Series:
    """SQL's ROUND: half away from zero."""
    scale = 10.0 ** digits
    return np.sign(values) * np.floor(values.abs() * scale + 0.5) / scale


def _metrics(orders: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    sales = orders[~orders["is_return"]]
    grouped = orders.groupby(keys)
    by_sales = sales.groupby(keys)
    out = pd.DataFrame({"revenue": grouped["total"].sum()})
    out["orders"] = by_sales.size().reindex(out.index, fill_value=0)
    sales_total = by_sales["total"].sum().reindex(out.index)
    sales_items = by_sales["items"].sum().reindex(out.index)
    out["average_ticket"] = _round(out["revenue"] / out["orders"].replace(0, np.nan), 2)
    out["items"] = grouped["items"].sum()
    out["items_per_order"] = _round(sales_items / out["orders"].replace(0, np.nan), 3)
    out["average_item_price"] = _round(sales_total / sales_items.replace(0, np.nan), 4)
    out["customers"] = (by_sales["customer_id"].nunique().reindex(out.index, fill_value=0))
    out["returns"] = -orders[orders["is_return"]].groupby(keys)["total"].sum().reindex(
        out.index, fill_value=0.0)
    return out


def kpi_daily_from_exports(folder: Path) -> pd.DataFrame:
    """Long-form kpi_daily (metric, date, dimension, dimension_value, value) of the exports."""
    lines = pd.concat(
        pd.read_csv(path, sep=";", decimal=",", dtype={"customer_id": str})
        for path in sorted(folder.glob("sales_*.csv.gz")))
    lines["date"] = pd.to_datetime(lines["sold_at"], format="%d/%m/%Y %H:%M").dt.normalize()
    # A receipt's lines share its time, shop, channel and customer.
    orders = lines.groupby("receipt_no", sort=False).agg(
        date=("date", "first"), location=("shop_id", "first"), channel=("channel", "first"),
        customer_id=("customer_id", "first"), items=("quantity", "sum"),
        total=("line_total", "sum")).reset_index()
    orders["is_return"] = orders["total"] < 0
    parts = []
    for dimension, keys in (("all", ["date"]), ("location", ["date", "location"]),
                            ("channel", ["date", "channel"])):
        table = _metrics(orders, keys).reset_index()
        table["dimension_value"] = "all" if dimension == "all" else table[keys[-1]]
        long = table.melt(id_vars=["date", "dimension_value"],
                          value_vars=["revenue", "orders", "average_ticket", "items",
                                      "items_per_order", "average_item_price", "customers",
                                      "returns"], var_name="metric")
        parts.append(long.assign(dimension=dimension))
    kpi = pd.concat(parts, ignore_index=True)
    kpi["date"] = kpi["date"].dt.date
    return kpi[["metric", "date", "dimension", "dimension_value", "value"]]


def panpan_kpi_daily(folder: Path, *, end: date, days: int, scale: float = 0.1,
                     seed: int = 3) -> pd.DataFrame:
    """Generate PanPan's exports into `folder` and compute their kpi_daily."""
    generate_panpan(folder, end=end, days=days, scale=scale, seed=seed)
    return kpi_daily_from_exports(folder)
