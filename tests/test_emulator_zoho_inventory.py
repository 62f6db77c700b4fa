"""The Zoho Inventory emulator against its contract: auth, organization_id, page/per_page,
the clock, touch(), faults in Zoho's {code, message} shape and exact money."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from goalpost.sandbox.emulators.panpan import PanPanData
from goalpost.sandbox.emulators.zoho_inventory import ZohoInventoryEmulator

pytestmark = pytest.mark.e2e

NOW = datetime(2025, 1, 25, tzinfo=UTC)
LATER = datetime(2025, 2, 1, tzinfo=UTC)
ORG = "10234695"
AUTH = {"Authorization": "Zoho-oauthtoken emulator-token"}
ITEMS = "/inventory/v1/items"


@pytest.fixture(scope="module")
def data(panpan_api_data: PanPanData) -> PanPanData:
    """The small PanPan data set of conftest.py (seed 3)."""
    return panpan_api_data


@pytest.fixture
def zoho(data: PanPanData) -> Iterator[ZohoInventoryEmulator]:
    emulator = ZohoInventoryEmulator(data, now=NOW)
    emulator.start()
    yield emulator
    emulator.stop()


def get(zoho: ZohoInventoryEmulator, path: str, headers: dict[str, str] | None = None,
        **params: object) -> httpx.Response:
    params.setdefault("organization_id", ORG)
    params = {k: v for k, v in params.items() if v is not None}
    return httpx.get(zoho.url + path, params=params, headers=AUTH if headers is None else headers)


def expected_stock(data: PanPanData, now: datetime) -> dict[str, int]:
    """sku -> sum over shops of the latest count at `now`, computed independently."""
    latest: dict[tuple[str, str], tuple[datetime, int]] = {}
    for count in data.stock_counts:
        key = (count.shop_id, count.sku)
        if count.counted_at <= now and (key not in latest or latest[key][0] <= count.counted_at):
            latest[key] = (count.counted_at, count.on_hand)
    return {p.sku: sum(v for (_, sku), (_, v) in latest.items() if sku == p.sku)
            for p in data.products}


def test_auth_accepted_and_refused(zoho):
    assert get(zoho, ITEMS).status_code == 200
    for headers in ({}, {"Authorization": "Zoho-oauthtoken nope"},
                    {"Authorization": "Bearer emulator-token"}):
        response = get(zoho, ITEMS, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"code": 57,
                                   "message": "You are not authorized to perform this operation"}


def test_organization_id_is_required(zoho):
    missing = get(zoho, ITEMS, organization_id=None)
    assert missing.status_code == 400
    assert missing.json()["code"] == 6042
    assert "CompanyID/CompanyName is required" in missing.json()["message"]
    wrong = get(zoho, ITEMS, organization_id="999")
    assert wrong.status_code == 403
    assert wrong.json() == {"code": 6041, "message": "This user is not associated with the "
                                                      "CompanyID/CompanyName:999."}
    orgs = get(zoho, "/inventory/v1/organizations", organization_id=None)
    assert orgs.status_code == 200
    assert [o["organization_id"] for o in orgs.json()["organizations"]] == [ORG]
    one = get(zoho, f"/inventory/v1/organizations/{ORG}")
    assert one.status_code == 200
    assert one.json()["organization"] == orgs.json()["organizations"][0]
    assert one.json()["organization"]["currency_code"] == "EUR"
    assert get(zoho, "/inventory/v1/organizations/999").json()["code"] == 6041


def test_pages_return_every_item_exactly_once(zoho, data):
    seen, flags = [], []
    for page in range(1, 7):
        body = get(zoho, ITEMS, page=page, per_page=10).json()
        assert body["code"] == 0 and body["message"] == "success"
        context = body["page_context"]
        assert (context["page"], context["per_page"]) == (page, 10)
        assert (context["sort_column"], context["sort_order"]) == ("name", "A")
        seen += [item["item_id"] for item in body["items"]]
        flags.append((len(body["items"]), context["has_more_page"]))
    assert flags == [(10, True), (10, True), (10, True), (10, True), (2, False), (0, False)]
    assert len(seen) == len(set(seen)) == 42 == len(data.products)
    whole = get(zoho, ITEMS).json()  # default per_page is 200: one page
    assert [i["item_id"] for i in whole["items"]] == seen
    assert whole["page_context"]["per_page"] == 200
    assert whole["page_context"]["has_more_page"] is False
    names = [i["name"] for i in whole["items"]]
    assert names == sorted(names)


def test_per_page_maximum_and_invalid_values(zoho):
    assert len(get(zoho, ITEMS, per_page=200).json()["items"]) == 42
    for name, value in (("per_page", 201), ("per_page", 0), ("per_page", "ten"), ("page", 0),
                        ("page", "-1"), ("sort_column", "color"), ("sort_order", "up"),
                        ("filter_by", "Status.Whatever")):
        response = get(zoho, ITEMS, **{name: value})
        assert response.status_code == 400, (name, value)
        assert response.json() == {"code": 2, "message": f"Invalid value passed for {name}"}


def test_sorting_is_stable_and_the_modified_since_filter(zoho, data):
    body = get(zoho, ITEMS, sort_column="rate", sort_order="D").json()
    pairs = [(Decimal(str(i["rate"])), int(i["item_id"])) for i in body["items"]]
    assert pairs == sorted(pairs, key=lambda p: (-p[0], p[1]))
    assert body["items"][0]["sku"] == "SAI-002"  # 28.00, the dearest
    # last_modified_time: items modified after it (the items reference's list filter).
    zoho.touch("items", "PAI-003", NOW - timedelta(hours=1))
    since = get(zoho, ITEMS, last_modified_time="2025-01-24T00:00:00+0100").json()
    assert [i["sku"] for i in since["items"]] == ["PAI-003"]
    assert len(get(zoho, ITEMS, last_modified_time="2011-01-01T00:00:00+0100").json()[
        "items"]) == 42
    assert get(zoho, ITEMS, last_modified_time="yesterday").json() == {
        "code": 2, "message": "Invalid value passed for last_modified_time"}
    assert len(get(zoho, ITEMS, filter_by="Status.Active").json()["items"]) == 42
    assert len(get(zoho, ITEMS, filter_by="Status.Inactive").json()["items"]) == 0


def test_clock_moves_stock_on_hand(zoho, data):
    seen = {}
    for now, baguette in ((datetime(2025, 1, 12, tzinfo=UTC), 0), (NOW, 13), (LATER, 13)):
        zoho.now = now
        items = {i["sku"]: i for i in get(zoho, ITEMS).json()["items"]}
        assert {sku: i["stock_on_hand"] for sku, i in items.items()} == \
            expected_stock(data, now)
        assert items["PAI-001"]["stock_on_hand"] == baguette
        seen[now] = {sku: i["stock_on_hand"] for sku, i in items.items()}
    assert set(seen[datetime(2025, 1, 12, tzinfo=UTC)].values()) == {0}  # before any count
    assert seen[NOW]["PAI-003"] == 13 and seen[LATER]["PAI-003"] == 11
    assert sum(seen[NOW][s] != seen[LATER][s] for s in seen[NOW]) > 0


def test_item_detail_lists_locations(zoho, data):
    """An organisation on Locations (the current API): GET /locations, and the item's stock
    per location as decimal strings; the legacy warehouses API is refused."""
    body = get(zoho, f"{ITEMS}/4600000000100003").json()
    item = body["item"]
    assert "warehouses" not in item
    assert [loc["location_name"] for loc in item["locations"]] == [s.name for s in data.shops]
    assert sum(int(loc["location_stock_on_hand"]) for loc in item["locations"]) == \
        item["stock_on_hand"] == 13
    assert all(isinstance(loc["location_stock_on_hand"], str) for loc in item["locations"])
    listed = get(zoho, "/inventory/v1/locations").json()["locations"]
    assert [(loc["location_id"], loc["address"]["city"]) for loc in listed] == [
        ("4600000000000001", "Lyon"), ("4600000000000002", "Lyon"),
        ("4600000000000003", "Villeurbanne")]
    legacy = get(zoho, "/inventory/v1/settings/warehouses")
    assert legacy.status_code == 400 and "replaced by Locations" in legacy.json()["message"]


def test_item_detail_lists_warehouses_on_a_legacy_organisation(data):
    with ZohoInventoryEmulator(data, now=NOW, stock_by="warehouses") as zoho:
        assert get(zoho, "/inventory/v1/locations").status_code == 400
        _legacy_warehouses(zoho, data)


def _legacy_warehouses(zoho: ZohoInventoryEmulator, data: PanPanData) -> None:
    item_id = "4600000000100003"
    body = get(zoho, f"{ITEMS}/{item_id}").json()
    item = body["item"]
    assert (body["code"], item["sku"], item["name"]) == (0, "PAI-003", "Pain de campagne")
    warehouses = item["warehouses"]
    assert [w["warehouse_name"] for w in warehouses] == [s.name for s in data.shops]
    assert sum(w["warehouse_stock_on_hand"] for w in warehouses) == item["stock_on_hand"] == 13
    assert [w["is_primary"] for w in warehouses] == [True, False, False]
    missing = get(zoho, f"{ITEMS}/123")
    assert missing.status_code == 404
    assert missing.json() == {"code": 1002, "message": "Item does not exist."}
    listed = get(zoho, "/inventory/v1/settings/warehouses").json()["warehouses"]
    assert [(w["warehouse_id"], w["city"]) for w in listed] == [
        ("4600000000000001", "Lyon"), ("4600000000000002", "Lyon"),
        ("4600000000000003", "Villeurbanne")]
    assert get(zoho, "/inventory/v1/warehouses").json() == {"code": 5,
                                                           "message": "Invalid URL Passed"}


def test_touch_moves_last_modified_time_once_the_clock_gets_there(zoho):
    def modified() -> dict[str, str]:
        return {i["sku"]: i["last_modified_time"] for i in get(zoho, ITEMS).json()["items"]}
    before = modified()
    assert set(before.values()) == {"2011-03-01T00:00:00+0100"}
    zoho.touch("items", "PAI-003", NOW + timedelta(hours=1))
    assert modified() == before  # not yet
    zoho.now = NOW + timedelta(hours=2)
    after = modified()
    assert after["PAI-003"] == "2025-01-25T02:00:00+0100"
    assert {k: v for k, v in after.items() if k != "PAI-003"} == \
        {k: v for k, v in before.items() if k != "PAI-003"}
    zoho.touch("items", "4600000000100001", datetime(2025, 7, 1, 8, tzinfo=UTC))
    zoho.now = datetime(2025, 7, 2, tzinfo=UTC)
    newest = get(zoho, ITEMS, sort_column="last_modified_time", sort_order="D").json()["items"]
    assert [i["sku"] for i in newest[:2]] == ["PAI-001", "PAI-003"]
    assert newest[0]["last_modified_time"] == "2025-07-01T10:00:00+0200"  # summer time
    with pytest.raises(ValueError):
        zoho.touch("contacts", "x", NOW)
    with pytest.raises(KeyError):
        zoho.touch("items", "NOPE", NOW)


def test_deactivated_item_stays_listed_as_inactive(zoho, data):
    def statuses(**params: object) -> dict[str, str]:
        return {i["sku"]: i["status"] for i in get(zoho, ITEMS, **params).json()["items"]}
    zoho.deactivate("items", "PAI-003", NOW + timedelta(hours=1))
    assert set(statuses().values()) == {"active"}  # not yet
    zoho.now = NOW + timedelta(hours=2)
    assert statuses() == {p.sku: "inactive" if p.sku == "PAI-003" else "active"
                          for p in data.products}
    assert statuses(filter_by="Status.Inactive") == {"PAI-003": "inactive"}
    assert "PAI-003" not in statuses(filter_by="Status.Active")
    item_id = next(i["item_id"] for i in get(zoho, ITEMS).json()["items"]
                   if i["sku"] == "PAI-003")
    assert get(zoho, f"{ITEMS}/{item_id}").json()["item"]["status"] == "inactive"
    modified = {i["sku"]: i["last_modified_time"] for i in get(zoho, ITEMS).json()["items"]}
    assert modified["PAI-003"] == "2025-01-25T02:00:00+0100"


def test_faults_in_zoho_shape(zoho):
    zoho.inject("rate_limit", retry_after=7)
    limited = get(zoho, ITEMS)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"
    assert limited.json() == {"code": 45, "message": "API call limit exceeded"}
    zoho.inject("rate_limit")
    limited = get(zoho, ITEMS)
    assert limited.status_code == 429 and "Retry-After" not in limited.headers
    assert limited.json()["code"] == 45
    zoho.inject("server_error", status=503)
    failed = get(zoho, ITEMS)
    assert failed.status_code == 503
    assert failed.json() == {"code": 1000, "message": "Internal error"}
    zoho.inject("expired_cursor")
    expired = get(zoho, ITEMS, page=2, per_page=10)
    assert expired.status_code == 400
    assert expired.json() == {"code": 2, "message": "Invalid value passed for page"}
    zoho.inject("bad_token")
    refused = get(zoho, ITEMS)
    assert refused.status_code == 401 and refused.json()["code"] == 57
    assert get(zoho, ITEMS).status_code == 200  # each fault was used once
    assert all(r.headers.get("authorization") in (None, "***") for r in zoho.requests)


def test_money_is_exact_on_the_wire(zoho, data):
    response = get(zoho, ITEMS)
    assert '"rate":1.20,"purchase_rate":0.31' in response.text  # Baguette, trailing zero kept
    assert '"rate":22.00' in response.text
    items = json.loads(response.content, parse_float=Decimal)["items"]
    prices = {p.sku: (p.unit_price, p.unit_cost, p.reorder_point) for p in data.products}
    assert {i["sku"]: (i["rate"], i["purchase_rate"], i["reorder_level"]) for i in items} == \
        prices
    assert all(isinstance(i["rate"], Decimal) for i in items)


def test_refresh_token_grant(zoho):
    form = {"grant_type": "refresh_token", "client_id": "1000.EMULATORCLIENT",
            "client_secret": "emulator-secret", "refresh_token": "1000.emulator.refresh"}
    granted = httpx.post(zoho.url + "/oauth/v2/token", data=form)
    assert granted.status_code == 200
    body = granted.json()
    assert set(body) == {"access_token", "api_domain", "token_type", "expires_in"}
    assert body["expires_in"] == 3600 and "refresh_token" not in body  # Zoho does not rotate
    fresh = {"Authorization": f"Zoho-oauthtoken {body['access_token']}"}
    assert get(zoho, ITEMS, headers=fresh).status_code == 200
    # the same refresh token works again (query-string style, as Zoho documents it)
    again = httpx.post(zoho.url + "/oauth/v2/token", params=form).json()
    assert again["access_token"] != body["access_token"]
    assert httpx.post(zoho.url + "/oauth/v2/token", json=form).json()["expires_in"] == 3600
    zoho.now = NOW + timedelta(seconds=3600)
    assert get(zoho, ITEMS, headers=fresh).status_code == 401  # expired on the emulator clock
    assert get(zoho, ITEMS).status_code == 200  # the constructor's token does not expire
    for change, error in (({"refresh_token": "stale"}, "invalid_code"),
                          ({"client_secret": "wrong"}, "invalid_client"),
                          ({"grant_type": "authorization_code"}, "unsupported_grant_type")):
        refused = httpx.post(zoho.url + "/oauth/v2/token", data={**form, **change})
        assert refused.status_code == 200 and refused.json() == {"error": error}
    assert httpx.get(zoho.url + "/oauth/v2/token").status_code == 405
