"""The Shopify GraphQL connector against its emulator: pages, two incremental runs,
throttling inside a 200 answer."""

from __future__ import annotations

from datetime import timedelta

import pytest

from goalpost.app.orchestrator import run_client
from goalpost.sandbox.emulators.shopify import ShopifyEmulator

pytestmark = pytest.mark.e2e

TOKEN = "shpat_test_4be2a07c"


def steps(run) -> dict[str, dict]:
    return {s.name.removeprefix("extract shop."): {"status": s.status, "error": s.error,
                                                   **s.details}
            for s in run.steps if s.kind == "extract"}


@pytest.fixture
def shopify(panpan_api_data, api_source):
    now = panpan_api_data.orders[0].sold_at + timedelta(days=8)
    with ShopifyEmulator(panpan_api_data, token=TOKEN, now=now) as emulator:
        api_source("shop", "shop", "shopify", emulator.url, {"access_token": TOKEN},
                   start_date="2015-01-01T00:00:00Z")
        yield emulator


def test_two_incremental_runs_and_throttling(shopify, panpan_api_data, conn, raw_rows):
    shopify.inject("rate_limit", retry_after=0.01)  # THROTTLED in a 200 body
    first = steps(run_client("shop"))
    assert all(s["status"] == "succeeded" for s in first.values()), first
    sales = [o for o in panpan_api_data.orders if not o.is_return and o.sold_at <= shopify.now]
    assert first["orders"]["inserted"] == len(sales)
    assert first["orders"]["pages"] >= len(sales) // 10 and first["orders"]["retries"] == 1
    customers = [c for c in panpan_api_data.customers if c.signed_up <= shopify.now]
    assert first["customers"]["inserted"] == len(customers)
    assert first["products"]["inserted"] == len(panpan_api_data.products)
    assert first["locations"]["inserted"] == len(panpan_api_data.shops)
    stored = raw_rows("shop", "shop", "orders")
    assert first["orders"]["cursor"] == {"*": max(r[1]["updatedAt"] for r in stored)}

    before = shopify.now
    shopify.now = before + timedelta(days=7)
    second = steps(run_client("shop"))
    more = [o for o in panpan_api_data.orders if not o.is_return and o.sold_at <= shopify.now]
    assert second["orders"]["inserted"] == len(more) - len(sales)
    assert len(raw_rows("shop", "shop", "orders")) == len(more)
    amount = conn.execute("SELECT data #>> '{totalPriceSet,shopMoney,amount}' "
                          "FROM shop_raw.shop__orders LIMIT 1").fetchone()[0]
    assert isinstance(amount, str) and amount.replace(".", "").isdigit()
