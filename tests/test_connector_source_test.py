"""`goalpost source test` on accounts that lack something, before any run: what it says about
scopes and protected customer data (Shopify), the data centre and the API budget left (Zoho),
and a token that will expire (Square). It reads one page per stream and writes nothing."""

from __future__ import annotations

from datetime import timedelta

import golden_data
import pytest

from goalpost.sandbox.emulators.shopify import SCOPES, ShopifyEmulator
from goalpost.sandbox.emulators.square import SquareEmulator
from goalpost.sandbox.emulators.zoho_inventory import ZohoInventoryEmulator

pytestmark = pytest.mark.e2e

ZOHO = {"client_id": "1000.TEST", "client_secret": "zoho-test-secret",
        "refresh_token": "1000.test.refresh"}


def test_shopify_missing_scope_and_protected_data_are_named(api_source, run_cli):
    scopes = tuple(s for s in SCOPES if s != "read_all_orders")
    with ShopifyEmulator(golden_data.golden_data(), token="shpat_t", now=golden_data.NOW,
                         scopes=scopes, protected_customer_data=False) as shop:
        api_source("gold", "shop", "shopify", shop.url, {"access_token": "shpat_t"})
        tested = run_cli("source", "test", "gold", "shop")
    assert tested.exit_code == 1, tested.output
    assert "FAIL shop.account" in tested.output
    assert "lacks the read_all_orders scope" in tested.output
    assert "FAIL shop.customers" in tested.output
    assert "request protected customer data access" in tested.output
    assert "ok   shop.orders" in tested.output


def test_zoho_data_centre_and_budget_left(api_source, run_cli, conn):
    with ZohoInventoryEmulator(golden_data.golden_data(), now=golden_data.NOW,
                               api_domain="https://www.zohoapis.eu", **ZOHO) as zoho:
        # The token answer places the organisation in the EU; the source says com (base_url
        # keeps the calls on the emulator).
        api_source("gold", "stock", "zoho_inventory", zoho.url, ZOHO, data_center="com",
                   organization_id=zoho.organization_id, accounts_url=zoho.url,
                   daily_budget=50)
        tested = run_cli("source", "test", "gold", "stock")
    assert "the account is in data centre eu" in tested.output
    assert "set data_center: eu" in tested.output
    assert "API budget: 4 of 50 calls a day spent today" in tested.output, tested.output
    assert "46 left" in tested.output  # items, locations, organisation, an item's detail


def test_a_square_token_that_will_expire_is_told(api_source, run_cli):
    with SquareEmulator(golden_data.golden_data(), now=golden_data.NOW) as square:
        token = square.issue_access_token(golden_data.NOW + timedelta(days=6))
        api_source("gold", "pos", "square", square.url, {"access_token": token})
        tested = run_cli("source", "test", "gold", "pos")
    assert tested.exit_code == 0, tested.output
    assert "the access token expires" in tested.output
    assert "cannot be renewed: set client_id, client_secret, refresh_token" in tested.output
