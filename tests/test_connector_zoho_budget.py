"""Zoho Inventory's API budget: 100 requests a minute per organisation and a daily cap by plan
(the emulator enforces both, with Zoho's 429 codes). The connector paces itself to the minute's
allowance and stops a run, saying why, before the day's is spent; the next run goes on with
the items whose stock it had not read."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from goalpost.app.orchestrator import run_client
from goalpost.core.warehouse import tenants
from goalpost.pipelines.connectors.engine import run_stream
from goalpost.pipelines.connectors.http import ApiClient
from goalpost.pipelines.connectors.manifest import load_manifest
from goalpost.pipelines.connectors.secrets import resolve_settings
from goalpost.sandbox.emulators.panpan import Product
from goalpost.sandbox.emulators.zoho_inventory import ZohoInventoryEmulator

pytestmark = pytest.mark.e2e

SECRETS = {"client_id": "1000.BUDGET", "client_secret": "budget-secret",
           "refresh_token": "1000.budget.refresh"}


def many_items(data, count: int):
    products = [Product(f"SKU-{n:04d}", f"Article {n}", "divers", Decimal("2.50"),
                        Decimal("1.00"), 5) for n in range(count)]
    return replace(data, products=products, stock_counts=[])


class FakeClock:
    """The time both sides read: sleeping moves it, so pacing costs no real minutes."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_calls_are_paced_to_100_a_minute(panpan_api_data, conn, monkeypatch):
    clock = FakeClock()
    data = many_items(panpan_api_data, 150)
    with ZohoInventoryEmulator(data, per_minute_limit=100, clock=clock, **SECRETS) as zoho:
        for name, value in SECRETS.items():
            monkeypatch.setenv(f"ZB_{name.upper()}", value)
        manifest = load_manifest("zoho_inventory")
        settings = resolve_settings(manifest, {
            "organization_id": zoho.organization_id, "accounts_url": zoho.url,
            "base_url": zoho.url, **{k: f"env:ZB_{k.upper()}" for k in SECRETS}},
            slug="paced", source="stock")
        tenants.provision(conn, "paced")
        client = ApiClient(manifest, settings, slug="paced", source="stock", sleep=clock.sleep,
                           clock=clock)
        try:
            for stream in ("items", "item_stock"):
                run_stream(conn, client, slug="paced", source="stock", manifest=manifest,
                           name=stream, settings=settings, run_id=1, prefetch=0)
        finally:
            client.close()
    assert zoho.api_calls == client.calls == 1 + 150  # one list page, then each item's detail
    assert client.retries == 0  # never refused: no 429 was needed to slow down
    assert len(clock.slept) == 1 and 59 < clock.slept[0] <= 60  # once, to the minute's end
    assert conn.execute("SELECT count(*) FROM paced_raw.stock__item_stock").fetchone() == (150,)


def test_a_run_stops_before_the_days_budget_and_the_next_goes_on(panpan_api_data, api_source,
                                                                  conn):
    data = many_items(panpan_api_data, 120)
    with ZohoInventoryEmulator(data, daily_limit=1000, **SECRETS) as zoho:
        api_source("shop", "stock", "zoho_inventory", zoho.url, SECRETS,
                   organization_id=zoho.organization_id, accounts_url=zoho.url,
                   daily_budget=80)
        first = run_client("shop")
        steps = {s.name.removeprefix("extract stock."): s for s in first.steps
                 if s.kind == "extract"}
        assert steps["items"].status == "succeeded"
        stock = steps["item_stock"]
        assert stock.status == "failed"
        assert "day's API budget of 80 calls is spent" in stock.error
        assert "goes on from what is loaded" in stock.error
        assert zoho.api_calls == 80  # it stopped itself: Zoho never refused a call
        read = conn.execute("SELECT count(*) FROM shop_raw.stock__item_stock").fetchone()[0]
        assert read == 80 - 3  # the list page, locations, organisation, then details

        api_source("shop", "stock", "zoho_inventory", zoho.url, SECRETS,
                   organization_id=zoho.organization_id, accounts_url=zoho.url,
                   daily_budget=500)
        zoho.now += timedelta(hours=1)
        second = run_client("shop")
    again = {s.name.removeprefix("extract stock."): s for s in second.steps if s.kind == "extract"}
    assert all(s.status == "succeeded" for s in again.values()), [
        (n, s.error) for n, s in again.items()]
    assert again["item_stock"].details["pages"] == 120 - read  # only the items not yet read
    assert conn.execute("SELECT count(*) FROM shop_raw.stock__item_stock").fetchone() == (120,)
