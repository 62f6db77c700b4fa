"""HubSpot, Zoho Inventory and Lightspeed X-Series held to their documentation: every request
body the connector sends and every response the emulator answers during runs of the golden
month (with the faults the connector handles) validates against tests/vendor_schemas.py,
which refuses keys the vendors do not document."""

from __future__ import annotations

from datetime import timedelta

import golden_data
import pytest
from contracts import body_of, exchanges, problems
from jsonschema import Draft202012Validator
from vendor_schemas import SCHEMAS

from goalpost.app.orchestrator import run_client
from goalpost.sandbox.emulators.base import Request
from goalpost.sandbox.emulators.hubspot import HubSpotEmulator
from goalpost.sandbox.emulators.lightspeed_x import LightspeedXEmulator
from goalpost.sandbox.emulators.zoho_inventory import ZohoInventoryEmulator

pytestmark = pytest.mark.e2e


def check(name: str, instance: object, where: str) -> list[str]:
    return problems(Draft202012Validator(SCHEMAS[name]), instance, where)


def hubspot_schema(request: Request, status: int) -> str:
    if status == 429:
        return "hubspot_rate_limited"
    if status >= 400:
        return "hubspot_error"
    return "hubspot_search" if request.path.endswith("/search") else "hubspot_list"


def zoho_schema(request: Request, status: int) -> str:
    if request.path == "/oauth/v2/token":
        return "zoho_token"
    if status >= 400:
        return "zoho_error"
    resource = request.path.removeprefix("/inventory/v1/")
    return {"items": "zoho_items", "locations": "zoho_locations",
            "settings/warehouses": "zoho_warehouses"}.get(
        resource, "zoho_organization" if resource.startswith("organizations/") else "zoho_item")


def lightspeed_schema(request: Request, status: int) -> str:
    if request.path == "/api/1.0/token":
        return "lightspeed_token"
    if status >= 400:
        return "lightspeed_error"
    return "lightspeed_" + request.path.removeprefix("/api/2.0/")


def off_documentation(emulator, schema_of) -> list[str]:
    found = []
    for request, status, payload in exchanges(emulator):
        where = f"{status} {request.method} {request.path}"
        if request.method == "POST" and request.path.endswith("/search"):
            found += check("hubspot_search_request", body_of(request.body), f"request {where}")
        found += check(schema_of(request, status), body_of(payload), where)
    return found


def test_hubspot_exchanges_are_documented(api_source):
    token = "pat-eu1-contract"
    with HubSpotEmulator(golden_data.golden_data(), token=token, now=golden_data.NOW) as crm:
        crm.exchanges = []
        crm.inject("rate_limit", path="/crm/v3/objects/deals/search", retry_after=0.01)
        crm.archive("contacts", "C0002", golden_data.NOW - timedelta(hours=3))
        api_source("gold", "crm", "hubspot", crm.url, {"access_token": token},
                   start_date=golden_data.START_DATE, page_size=1)
        assert run_client("gold").status == "succeeded"
        assert {s for _, s, _ in crm.exchanges} >= {200, 429}
        assert off_documentation(crm, hubspot_schema) == []


@pytest.mark.parametrize("stock_by", ["locations", "warehouses"])
def test_zoho_exchanges_are_documented(stock_by, api_source):
    secrets = {"client_id": "1000.CONTRACT", "client_secret": "contract-secret",
               "refresh_token": "1000.contract.refresh"}
    streams = ["items", stock_by, "item_stock", "organization"]
    with ZohoInventoryEmulator(golden_data.golden_data(), now=golden_data.NOW,
                               stock_by=stock_by, **secrets) as zoho:
        zoho.exchanges = []
        zoho.inject("server_error", path="/inventory/v1/items", status=503)
        api_source("gold", "stock", "zoho_inventory", zoho.url, secrets, streams=streams,
                   organization_id=zoho.organization_id, accounts_url=zoho.url, page_size=2)
        assert run_client("gold").status == "succeeded"
        assert off_documentation(zoho, zoho_schema) == []


def test_lightspeed_exchanges_are_documented(api_source):
    secrets = {"client_secret": "ls-contract-secret", "refresh_token": "ls-contract-refresh"}
    with LightspeedXEmulator(golden_data.golden_data(), now=golden_data.NOW,
                             client_id="ls-contract", **secrets) as ls:
        ls.exchanges = []
        expired = ls.issue_access_token(golden_data.NOW - timedelta(hours=1))
        ls.delete("products", "GAT-001", golden_data.NOW - timedelta(hours=2))
        api_source("gold", "pos", "lightspeed_x", ls.url, {"access_token": expired, **secrets},
                   client_id="ls-contract", page_size=2)
        assert run_client("gold").status == "succeeded"
        assert {s for _, s, _ in ls.exchanges} >= {200, 401}
        assert off_documentation(ls, lightspeed_schema) == []
