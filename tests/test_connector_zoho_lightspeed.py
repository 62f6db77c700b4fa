"""Zoho Inventory and Lightspeed X-Series connectors against their emulators."""

from __future__ import annotations

from datetime import timedelta

import pytest

from goalpost.app.orchestrator import run_client
from goalpost.sandbox.emulators.lightspeed_x import LightspeedXEmulator
from goalpost.sandbox.emulators.zoho_inventory import ZohoInventoryEmulator

pytestmark = pytest.mark.e2e

TOKEN = "ls-test-token-81aa3c"


def steps(run, source: str) -> dict[str, dict]:
    return {s.name.removeprefix(f"extract {source}."): {"status": s.status, "error": s.error,
                                                        **s.details}
            for s in run.steps if s.kind == "extract"}


def test_zoho_oauth_pages_and_stock_of_changed_items_only(panpan_api_data, api_source, conn,
                                                         raw_rows):
    now = panpan_api_data.orders[0].sold_at + timedelta(days=8)
    with ZohoInventoryEmulator(panpan_api_data, now=now, client_id="1000.CLIENT",
                               client_secret="zoho-secret-77", refresh_token="1000.refresh.91"
                               ) as zoho:
        api_source("shop", "stock", "zoho_inventory", zoho.url,
                   {"client_id": "1000.CLIENT", "client_secret": "zoho-secret-77",
                    "refresh_token": "1000.refresh.91"},
                   organization_id="10234695", accounts_url=zoho.url, page_size=10)
        first = steps(run_client("shop"), "stock")
        assert all(s["status"] == "succeeded" for s in first.values()), first
        products = len(panpan_api_data.products)
        assert (first["items"]["inserted"], first["items"]["pages"]) == (products, 5)
        assert first["locations"]["inserted"] == len(panpan_api_data.shops)
        assert first["item_stock"]["inserted"] == products
        assert first["item_stock"]["pages"] == products  # every item's detail, once
        calls = zoho.api_calls

        zoho.now = now + timedelta(days=5)
        second = steps(run_client("shop"), "stock")
        # The list is read whole; only the items whose entry moved (their stock on hand) get
        # their detail read again.
        moved = second["items"]["updated"]
        assert second["items"]["inserted"] == 0 and second["items"]["deleted"] == 0
        assert 0 < moved < products
        assert second["item_stock"]["pages"] == moved
        assert zoho.api_calls - calls == 5 + 1 + moved + 1  # items, locations, details, org
    stock = raw_rows("shop", "stock", "item_stock")
    assert all(len(row[1]["locations"]) == len(panpan_api_data.shops) for row in stock)
    # Amounts keep the digits the API sent (jsonb numeric, not a float).
    rates = dict(conn.execute("SELECT data->>'sku', data->>'rate' FROM shop_raw.stock__items"))
    assert all(rates[p.sku] == str(p.unit_price) for p in panpan_api_data.products)


def test_zoho_organisation_still_on_warehouses(panpan_api_data, api_source, raw_rows):
    """An organisation not yet on Locations: its default streams fail on the Locations API with
    Zoho's message; listing the warehouses stream instead reads stock per warehouse."""
    now = panpan_api_data.orders[0].sold_at + timedelta(days=8)
    secrets = {"client_id": "1000.CLIENT", "client_secret": "zoho-secret-77",
               "refresh_token": "1000.refresh.91"}
    with ZohoInventoryEmulator(panpan_api_data, now=now, stock_by="warehouses",
                               **secrets) as zoho:
        api_source("shop", "stock", "zoho_inventory", zoho.url, secrets,
                   organization_id="10234695", accounts_url=zoho.url)
        refused = steps(run_client("shop"), "stock")
        assert refused["locations"]["status"] == "failed"
        assert "Locations are not enabled" in refused["locations"]["error"]
        api_source("shop", "stock", "zoho_inventory", zoho.url, secrets,
                   organization_id="10234695", accounts_url=zoho.url,
                   streams=["items", "warehouses", "item_stock", "organization"])
        got = steps(run_client("shop"), "stock")
    assert all(s["status"] == "succeeded" for s in got.values()), got
    assert got["warehouses"]["inserted"] == len(panpan_api_data.shops)
    assert all(len(row[1]["warehouses"]) == len(panpan_api_data.shops)
               for row in raw_rows("shop", "stock", "item_stock"))


def test_lightspeed_version_feed_two_runs_and_deletes(panpan_api_data, api_source, conn,
                                                      raw_rows):
    now = panpan_api_data.orders[0].sold_at + timedelta(days=8)
    with LightspeedXEmulator(panpan_api_data, token=TOKEN, now=now) as lightspeed:
        api_source("shop", "pos", "lightspeed_x", lightspeed.url, {"access_token": TOKEN},
                   page_size=50)
        first = steps(run_client("shop"), "pos")
        assert all(s["status"] == "succeeded" for s in first.values()), first
        sold = [o for o in panpan_api_data.orders if o.sold_at <= now]
        assert first["sales"]["inserted"] == len(sold) > 50
        assert first["sales"]["pages"] == len(sold) // 50 + 2  # full pages, the rest, the end
        versions = [row[1]["version"] for row in raw_rows("shop", "pos", "sales")]
        assert first["sales"]["cursor"] == {"*": max(versions)}
        assert first["products"]["inserted"] == len(panpan_api_data.products)

        lightspeed.now = now + timedelta(days=7)
        product = panpan_api_data.products[0]
        lightspeed.delete("products", product.sku, lightspeed.now - timedelta(hours=1))
        second = steps(run_client("shop"), "pos")
        more = [o for o in panpan_api_data.orders if o.sold_at <= lightspeed.now]
        assert second["sales"]["inserted"] == len(more) - len(sold)
        assert second["products"]["updated"] == 1
        assert second["sales"]["cursor"]["*"] > first["sales"]["cursor"]["*"]
    deleted = conn.execute("SELECT count(*) FROM shop_raw.pos__products WHERE _deleted")
    assert deleted.fetchone() == (1,)
    assert len(raw_rows("shop", "pos", "sales")) == len(more)
