"""Online Retail II (a real year of a UK shop's invoice lines) through a file source: the KPIs
equal figures computed independently with pandas from the same file."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pandas as pd
import pytest

from goalpost.app.orchestrator import run_client
from goalpost.sandbox.online_retail import client_yaml, dev_file

pytestmark = pytest.mark.e2e

DATA = dev_file()
CLIENT = client_yaml(DATA)


@pytest.fixture(scope="module")
def expected() -> dict:
    """The figures, from the file alone."""
    if not DATA.exists():
        pytest.skip(f"the Online Retail II file is not on this machine (looked for {DATA})")
    lines = pd.read_csv(DATA, dtype=str, keep_default_na=False)
    amounts = [Decimal(q) * Decimal(p) for q, p in zip(lines["Quantity"], lines["Price"],
                                                       strict=True)]
    lines["amount"] = amounts
    per_invoice: dict[str, Decimal] = defaultdict(Decimal)
    goods_back: set[str] = set(lines.loc[lines["Quantity"].astype(int) < 0, "Invoice"])
    for invoice, amount in zip(lines["Invoice"], amounts, strict=True):
        per_invoice[invoice] += amount
    # An invoice is a sale when money came in, a return when money went out with goods back
    # (cancellations, "C..."), else an adjustment (write-offs at price 0, bad-debt entries),
    # which is in no sales figure.
    traded = {invoice for invoice, total in per_invoice.items()
              if total > 0 or (total < 0 and invoice in goods_back)}
    per_month: dict[str, Decimal] = defaultdict(Decimal)
    for invoice, when, amount in zip(lines["Invoice"], lines["InvoiceDate"], amounts,
                                     strict=True):
        if invoice in traded:
            per_month[when[:7]] += amount
    return {
        "lines": len(lines),
        "revenue": sum(per_month.values(), Decimal(0)),
        "invoices": sum(1 for total in per_invoice.values() if total > 0),
        # Codes are compared without surrounding spaces, as staging trims every cell (the
        # file has both "47503J" and "47503J ").
        "customers": lines.loc[lines["Customer ID"] != "", "Customer ID"].str.strip().nunique(),
        "products": lines["StockCode"].str.strip().nunique(),
        "countries": lines["Country"].str.strip().nunique(),
        "per_month": dict(per_month),
    }


def test_kpis_equal_pandas_figures(project, database_url, conn, expected):
    (project / "clients" / "retail.yaml").write_text(CLIENT)
    run = run_client("retail")
    assert run.status == "succeeded", [s.error for s in run.steps]
    assert run.rows_loaded == expected["lines"] and run.rows_quarantined == 0

    revenue, invoices = conn.execute(
        "SELECT sum(value) FILTER (WHERE metric = 'revenue'), "
        "sum(value) FILTER (WHERE metric = 'orders') "
        "FROM retail_marts.kpi_daily WHERE dimension = 'all'").fetchone()
    assert revenue == expected["revenue"]
    assert invoices == expected["invoices"]
    customers, products, countries = conn.execute(
        "SELECT count(DISTINCT customer_id), count(DISTINCT product_id), "
        "count(DISTINCT country) FROM retail_staging.order_lines").fetchone()
    assert (customers, products, countries) == (
        expected["customers"], expected["products"], expected["countries"])
    monthly = {month.strftime("%Y-%m"): value for month, value in conn.execute(
        "SELECT sales_month, revenue FROM retail_marts.monthly_sales")}
    assert monthly == expected["per_month"]
