"""Golden test of the Zoho Inventory connector: the products, shops and stock counts of
tests/golden_data.py served by the Zoho emulator (an organisation on Locations, as the current
API has them: GET /locations, item stock in locations[] as decimal strings), extracted and
built by `goalpost run`, give the golden catalog and the latest on-hand levels per shop.

Besides the golden products, Zoho holds one marked inactive (a discontinued cake): it stays a
product, without a reorder point."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import golden_data
import orjson
import psycopg
import pytest
from golden_data import D

from goalpost.app.orchestrator import run_client
from goalpost.sandbox.emulators.panpan import PARIS, Product
from goalpost.sandbox.emulators.zoho_inventory import ZohoInventoryEmulator

pytestmark = pytest.mark.e2e

SECRETS = {"client_id": "1000.GOLDENCLIENT", "client_secret": "golden-secret",
           "refresh_token": "1000.golden.refresh"}
DISCONTINUED = Product("BUC-001", "Bûche de Noël", "patisserie", D("32.00"), D("11.00"), 3)


@pytest.fixture
def zoho_client(api_source):
    data = golden_data.golden_data()
    data.products.append(DISCONTINUED)
    emulator = ZohoInventoryEmulator(data, now=golden_data.NOW, **SECRETS)
    emulator.deactivate("items", DISCONTINUED.sku, golden_data.NOW - timedelta(days=1))
    emulator.start()
    api_source("gold", "stock", "zoho_inventory", emulator.url, SECRETS,
               organization_id=emulator.organization_id, accounts_url=emulator.url)
    yield emulator
    emulator.stop()


def test_zoho_catalog_shops_and_stock_are_the_golden_ones(zoho_client: ZohoInventoryEmulator,
                                                          conn: psycopg.Connection) -> None:
    first_day = datetime.now(PARIS).date()
    run = run_client("gold")
    last_day = datetime.now(PARIS).date()
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]
    transform = next(s for s in run.steps if s.kind == "transform")
    assert transform.details["audit_failures"] == []  # unique and not null

    products = {r[0]: tuple(r[1:]) for r in conn.execute(
        "SELECT product_id, name, unit_price, unit_cost, reorder_point, category, currency "
        "FROM gold_staging.products")}
    golden = {p.sku: (*golden_data.PRODUCT_PRICES[p.sku], p.unit_cost, p.reorder_point,
                      p.category, "EUR")
              for p in golden_data.PRODUCTS}
    assert products == {**golden, DISCONTINUED.sku: (
        DISCONTINUED.name, DISCONTINUED.unit_price, DISCONTINUED.unit_cost, None,
        DISCONTINUED.category, "EUR")}

    locations = {r[0]: (r[1], r[2]) for r in conn.execute(
        "SELECT location_id, name, city FROM gold_staging.locations")}
    assert sorted(locations.values()) == sorted((s.name, s.city) for s in golden_data.SHOPS)
    # Zoho names warehouses by its own ids: they are not the POS's shop ids.
    assert not set(locations) & {s.shop_id for s in golden_data.SHOPS}

    levels = conn.execute("""
        SELECT n.name, i.product_id, i.on_hand, i.counted_on
        FROM gold_staging.inventory_levels AS i
        JOIN gold_staging.locations AS n ON n.location_id = i.location_id""").fetchall()
    on_hand = {(r[0], r[1]): r[2] for r in levels}
    assert {k: v for k, v in on_hand.items() if k[1] != DISCONTINUED.sku} == golden_data.ON_HAND
    # Never counted: nothing on hand in either shop.
    assert {k[0]: v for k, v in on_hand.items() if k[1] == DISCONTINUED.sku} == {
        s.name: 0 for s in golden_data.SHOPS}
    # Zoho gives current levels only: they are as of the day they were read.
    assert {r[3] for r in levels} <= {first_day, last_day}
    assert len(levels) == len(on_hand)


def test_an_eu_organisation_is_read_on_the_host_its_token_names(api_source, conn) -> None:
    """An organisation in Zoho's EU data centre: the source says `data_center: eu` and gives no
    API host. The API host is the one the token answer names (api_domain); the .eu hosts the
    data centre implies are only where Goalpost starts (here they are unreachable, as every
    host but the emulator's is)."""
    emulator = ZohoInventoryEmulator(golden_data.golden_data(), now=golden_data.NOW, **SECRETS)
    with emulator:
        api_source("gold", "stock", "zoho_inventory", None, SECRETS, data_center="eu",
                   organization_id=emulator.organization_id, accounts_url=emulator.url)
        run = run_client("gold")
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]
    on_hand = {(r[0], r[1]): r[2] for r in conn.execute("""
        SELECT n.name, i.product_id, i.on_hand FROM gold_staging.inventory_levels AS i
        JOIN gold_staging.locations AS n ON n.location_id = i.location_id""")}
    assert on_hand == golden_data.ON_HAND


def test_an_item_detail_without_stock_arrays_stops_the_build(zoho_client, conn) -> None:
    """Should an inventory item's detail come without locations[] and warehouses[] (Zoho
    changing its answer, or an organisation the connector does not know), inventory must not
    read as empty: staging gives the item a row without location and quantity, and the
    blocking not_null audit fails the build of what depends on it, naming the model."""
    assert run_client("gold").status == "succeeded"
    answer = zoho_client._get_item

    def without_stock(item_id: str):  # Zoho's detail, its stock array left out
        response = answer(item_id)
        body = orjson.loads(response.body)
        body["item"].pop("locations", None)
        return replace(response, body=orjson.dumps(body))

    zoho_client._get_item = without_stock
    zoho_client.touch("items", "PAI-001", golden_data.NOW - timedelta(minutes=5))
    run = run_client("gold")  # PAI-001 changed: its detail is read again, without stock
    transform = next(s for s in run.steps if s.kind == "transform")
    assert run.status == "failed" and transform.status == "failed"
    assert "stg_zoho_inventory__inventory_levels: 'not_null' audit error: 1 row failed" in \
        transform.error
    assert "gold_staging.inventory_levels" in transform.error  # kept as it was, not emptied
    kept = conn.execute("SELECT location_name, on_hand FROM gold_marts.inventory_status "
                        "WHERE product_id = 'PAI-001' ORDER BY 1").fetchall()
    assert kept == sorted((shop, n) for (shop, sku), n in golden_data.ON_HAND.items()
                          if sku == "PAI-001")
