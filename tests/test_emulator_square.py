"""The Square emulator against Square's API reference (developer.squareup.com/reference/square),
with plain httpx.

Data: generate_panpan(end=2025-01-31, days=20, scale=0.05, seed=3): 450 orders, 83 customers,
42 products in 6 categories, 123 (shop, sku) stock series. Seed 3 has no returns, so the
return tests use seed 5 (515 orders, 6 of them RET- receipts).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from goalpost.sandbox.demo.generator import generate_panpan
from goalpost.sandbox.emulators.base import rfc3339
from goalpost.sandbox.emulators.panpan import PanPanData
from goalpost.sandbox.emulators.square import SquareEmulator

TOKEN = "sq-test-token"
END = datetime(2025, 2, 1, tzinfo=UTC)  # after the last sale and the last stock count
MID = datetime(2025, 1, 22, 12, tzinfo=UTC)
ORDERS = "/v2/orders/search"
CUSTOMERS = "/v2/customers/search"
CATALOG = "/v2/catalog/search"
COUNTS = "/v2/inventory/counts/batch-retrieve"


def _load(tmp_path_factory: pytest.TempPathFactory, seed: int) -> PanPanData:
    folder: Path = tmp_path_factory.mktemp(f"panpan{seed}")
    generate_panpan(folder, end=date(2025, 1, 31), days=20, scale=0.05, seed=seed)
    return PanPanData.load(folder)


@pytest.fixture(scope="module")
def data(panpan_api_data: PanPanData) -> PanPanData:
    """The small PanPan data set of conftest.py (seed 3)."""
    return panpan_api_data


@pytest.fixture(scope="module")
def data_returns(tmp_path_factory: pytest.TempPathFactory) -> PanPanData:
    return _load(tmp_path_factory, 5)


@pytest.fixture
def emu(data: PanPanData) -> Iterator[SquareEmulator]:
    """A fresh emulator for tests that move the clock, touch records or inject faults."""
    emulator = SquareEmulator(data, token=TOKEN, now=END)
    with emulator:
        yield emulator


@pytest.fixture(scope="module")
def shared(data: PanPanData) -> Iterator[SquareEmulator]:
    """One emulator for the read-only tests (each server takes ~0.5 s to shut down)."""
    emulator = SquareEmulator(data, token=TOKEN, now=END)
    with emulator:
        yield emulator


def client(emulator: SquareEmulator, token: str | None = TOKEN, **headers: str) -> httpx.Client:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=emulator.url, headers=headers, timeout=10)


def error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1
    return body["errors"][0]


def locations(emulator: SquareEmulator) -> list[str]:
    return list(emulator.locations.values())


def order_query(emulator: SquareEmulator, start: datetime | None = None,
                end: datetime | None = None, **extra: Any) -> dict[str, Any]:
    span = {}
    if start:
        span["start_at"] = rfc3339(start)
    if end:
        span["end_at"] = rfc3339(end)
    return {"location_ids": locations(emulator),
            "query": {"filter": {"date_time_filter": {"updated_at": span}},
                      "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"}},
            **extra}


def pages(http: httpx.Client, path: str, body: dict[str, Any], key: str
          ) -> list[list[dict[str, Any]]]:
    """Follow cursors; every page is a 200 and only the last has no cursor."""
    out = []
    while True:
        response = http.post(path, json=body)
        assert response.status_code == 200, response.text
        payload = response.json()
        out.append(payload.get(key, []))
        if "cursor" not in payload:
            return out
        assert payload["cursor"]
        body = {**body, "cursor": payload["cursor"]}


# --- auth and versioning ------------------------------------------------------------------

@pytest.mark.e2e
def test_auth_and_square_version(emu: SquareEmulator) -> None:
    with client(emu, token=None) as http:
        response = http.get("/v2/locations")
        assert response.status_code == 401
        assert error(response)["category"] == "AUTHENTICATION_ERROR"
        assert error(response)["code"] == "UNAUTHORIZED"
    with client(emu, token="wrong") as http:
        response = http.post(ORDERS, json=order_query(emu))
        assert response.status_code == 401 and error(response)["code"] == "UNAUTHORIZED"
        assert "square-version" not in response.headers
    with client(emu, **{"Square-Version": "2024-10-17"}) as http:
        response = http.get("/v2/locations")
        assert response.status_code == 200
        assert response.headers["square-version"] == "2024-10-17"
    with client(emu) as http:
        assert http.get("/v2/locations").headers["square-version"] == "2025-01-23"
    with client(emu, **{"Square-Version": "2099-99-99"}) as http:
        response = http.get("/v2/locations")
        assert response.status_code == 400
        assert error(response)["code"] == "INVALID_SQUARE_VERSION_FORMAT"


@pytest.mark.e2e
def test_oauth_refresh_rotates_and_tokens_expire(emu: SquareEmulator) -> None:
    form = {"client_id": emu.client_id, "client_secret": emu.client_secret,
            "grant_type": "refresh_token", "refresh_token": emu.refresh_token}
    first_refresh = emu.refresh_token
    with client(emu, token=None) as http:
        assert http.post("/oauth2/token", json={**form, "client_secret": "x"}).status_code == 401
        response = http.post("/oauth2/token", json=form)
        assert response.status_code == 200, response.text
        grant = response.json()
        assert grant["token_type"] == "bearer"
        assert grant["expires_at"] == "2025-03-03T00:00:00Z"  # 30 days on the emulator clock
        assert grant["refresh_token"] != first_refresh
        again = http.post("/oauth2/token", json=form)  # the old refresh token is spent
        assert again.status_code == 401 and error(again)["code"] == "UNAUTHORIZED"
        rotated = http.post("/oauth2/token",
                            json={**form, "refresh_token": grant["refresh_token"]})
        assert rotated.status_code == 200
    with client(emu, token=grant["access_token"]) as http:
        assert http.get("/v2/locations").status_code == 200
        emu.now = END + timedelta(days=30)
        expired = http.get("/v2/locations")
        assert expired.status_code == 401
        assert error(expired) == {"category": "AUTHENTICATION_ERROR",
                                  "code": "ACCESS_TOKEN_EXPIRED",
                                  "detail": "The access token has expired."}


# --- locations ----------------------------------------------------------------------------

@pytest.mark.e2e
def test_locations_all_at_once(shared: SquareEmulator) -> None:
    with client(shared) as http:
        body = http.get("/v2/locations").json()
    assert set(body) == {"locations"}
    assert [loc["name"] for loc in body["locations"]] == [
        "PanPan Croix-Rousse", "PanPan Part-Dieu", "PanPan Villeurbanne"]
    for loc in body["locations"]:
        assert (loc["currency"], loc["timezone"], loc["country"]) == ("EUR", "Europe/Paris",
                                                                       "FR")
    assert body["locations"][0]["id"] == shared.locations["LYO-01"]
    with client(shared) as http:
        assert http.get("/v2/locations", params={"cursor": "x"}).status_code == 400
        one = http.get(f"/v2/locations/{shared.locations['VIL-01']}").json()
        assert one["location"]["address"]["locality"] == "Villeurbanne"
        assert http.get("/v2/locations/LNOPE").status_code == 404


# --- orders -------------------------------------------------------------------------------

@pytest.mark.e2e
def test_orders_pages_return_every_order_once(shared: SquareEmulator, data: PanPanData) -> None:
    with client(shared) as http:
        got = pages(http, ORDERS, order_query(shared, limit=100), "orders")
    assert [len(page) for page in got] == [100, 100, 100, 100, 50]
    orders = [o for page in got for o in page]
    assert len({o["id"] for o in orders}) == 450
    assert sorted(o["reference_id"] for o in orders) == sorted(o.receipt_no for o in data.orders)
    stamps = [(o["updated_at"], o["id"]) for o in orders]
    assert stamps == sorted(stamps)  # UPDATED_AT ASC
    assert all(o["state"] == "COMPLETED" and o["version"] == 1 for o in orders)
    with client(shared) as http:
        # Default limit is 500: one page holds all 450; 5 x 90 leaves no empty sixth page.
        assert [len(page) for page in pages(http, ORDERS, order_query(shared), "orders")] == [450]
        assert [len(p) for p in pages(http, ORDERS, order_query(shared, limit=90),
                                      "orders")] == [90] * 5


@pytest.mark.e2e
def test_orders_money_and_shape_exact(shared: SquareEmulator, data: PanPanData) -> None:
    with client(shared) as http:
        orders = http.post(ORDERS, json=order_query(shared)).json()["orders"]
    by_ref = {o["reference_id"]: o for o in orders}
    first = by_ref["VIL-01-20250112-0001"]
    assert first["total_money"] == {"amount": 510, "currency": "EUR"}
    assert first["created_at"] == first["updated_at"] == first["closed_at"] == \
        "2025-01-12T07:06:00.000Z"
    assert first["location_id"] == shared.locations["VIL-01"]
    assert first["source"] == {"name": "Boutique"}
    assert "customer_id" not in first  # an anonymous sale
    line = first["line_items"][0]
    assert line["quantity"] == "1" and line["catalog_object_id"] == shared.variation_ids["PAI-001"]
    assert line["base_price_money"] == {"amount": 120, "currency": "EUR"}
    discounted = by_ref["VIL-01-20250112-0007"]["line_items"][1]
    assert (discounted["gross_sales_money"]["amount"], discounted["total_discount_money"]["amount"],
            discounted["total_money"]["amount"]) == (420, 126, 294)
    assert by_ref["VIL-01-20250112-0007"]["total_money"]["amount"] == 774
    assert sum(o["total_money"]["amount"] for o in orders) == 309084
    for o in orders:
        assert isinstance(o["total_money"]["amount"], int)
        assert o["total_money"]["amount"] == sum(li["total_money"]["amount"]
                                                 for li in o["line_items"])
    delivered = [o for o in data.orders if o.channel == "livraison"]
    assert sum(o["source"]["name"] == "Livraison" for o in orders) == len(delivered) > 0
    known = next(o for o in data.orders if o.customer_id)
    assert by_ref[known.receipt_no]["customer_id"] == shared.customer_ids[known.customer_id]


@pytest.mark.e2e
def test_orders_bounds_are_inclusive(shared: SquareEmulator, data: PanPanData) -> None:
    t = data.orders[100].sold_at
    expected = sorted(o.receipt_no for o in data.orders if o.sold_at == t)
    with client(shared) as http:
        got = http.post(ORDERS, json=order_query(shared, t, t)).json()["orders"]
        assert sorted(o["reference_id"] for o in got) == expected
        after = http.post(ORDERS, json=order_query(shared, t + timedelta(milliseconds=1))).json()
        assert len(after["orders"]) == sum(o.sold_at > t for o in data.orders)
        empty = http.post(ORDERS, json=order_query(shared, END)).json()
        assert empty == {}


@pytest.mark.e2e
def test_orders_request_validation(shared: SquareEmulator) -> None:
    base = order_query(shared)
    cases = [
        ({**base, "limit": 1001}, "VALUE_TOO_HIGH"),
        ({**base, "limit": 0}, "VALUE_TOO_LOW"),
        ({**base, "location_ids": locations(shared) * 4}, "ARRAY_LENGTH_TOO_LONG"),
        ({**base, "location_ids": []}, "ARRAY_EMPTY"),
        ({"query": base["query"]}, "MISSING_REQUIRED_PARAMETER"),
        ({**base, "location_ids": ["LNOPE"]}, "INVALID_VALUE"),
        ({**base, "query": {**base["query"], "sort": {"sort_field": "CREATED_AT",
                                                      "sort_order": "ASC"}}}, "INVALID_VALUE"),
        # No sort means CREATED_AT DESC, which does not match an updated_at filter.
        ({**base, "query": {"filter": base["query"]["filter"]}}, "INVALID_VALUE"),
        ({**base, "sort": base["query"]["sort"]}, "UNKNOWN_BODY_PARAMETER"),  # Airbyte's shape
        # Sorting by CLOSED_AT while OPEN orders may be returned.
        ({**base, "query": {"filter": {"state_filter": {"states": ["OPEN", "COMPLETED"]}},
                            "sort": {"sort_field": "CLOSED_AT"}}}, "INVALID_VALUE"),
        ({**base, "limit": "10"}, "EXPECTED_INTEGER"),
    ]
    with client(shared) as http:
        for body, code in cases:
            response = http.post(ORDERS, json=body)
            assert response.status_code == 400, body
            assert error(response)["category"] == "INVALID_REQUEST_ERROR"
            assert error(response)["code"] == code, (body, response.text)
        bad_time = order_query(shared)
        bad_time["query"]["filter"]["date_time_filter"]["updated_at"]["start_at"] = "yesterday"
        assert error(http.post(ORDERS, json=bad_time))["code"] == "INVALID_TIME"
        assert error(http.post(ORDERS, content=b"not json"))["code"] == "EXPECTED_JSON_BODY"
        assert http.get(ORDERS).status_code == 405


@pytest.mark.e2e
def test_orders_cursor_needs_same_query(shared: SquareEmulator) -> None:
    with client(shared) as http:
        first = http.post(ORDERS, json=order_query(shared, limit=10)).json()
        changed = order_query(shared, MID, limit=10, cursor=first["cursor"])
        response = http.post(ORDERS, json=changed)
        assert response.status_code == 400
        assert error(response)["code"] == "INVALID_VALUE" and error(response)["field"] == "cursor"
        # A different limit is fine: limit is not part of the query.
        same = http.post(ORDERS, json=order_query(shared, limit=20, cursor=first["cursor"]))
        assert same.status_code == 200 and len(same.json()["orders"]) == 20
        garbled = http.post(ORDERS, json=order_query(shared, cursor="garbage!"))
        assert garbled.status_code == 400
        assert error(garbled)["code"] == "INVALID_CURSOR"


@pytest.mark.e2e
def test_missing_end_at_is_the_first_request_time(emu: SquareEmulator,
                                                  data: PanPanData) -> None:
    emu.now = MID
    with client(emu) as http:
        first = http.post(ORDERS, json=order_query(emu, limit=200)).json()
        emu.now = END  # 215 more orders happen while the chain is being followed
        rest = http.post(ORDERS, json=order_query(emu, limit=200, cursor=first["cursor"])).json()
        assert "cursor" not in rest
        chain = first["orders"] + rest["orders"]
        assert len(chain) == 235 == sum(o.sold_at <= MID for o in data.orders)
        fresh = http.post(ORDERS, json=order_query(emu)).json()["orders"]
        assert len(fresh) == 450


@pytest.mark.e2e
def test_clock_makes_new_orders_appear(emu: SquareEmulator, data: PanPanData) -> None:
    emu.now = MID
    with client(emu) as http:
        run1 = http.post(ORDERS, json=order_query(emu)).json()["orders"]
        assert len(run1) == 235
        assert max(o["created_at"] for o in run1) <= rfc3339(MID)
        bookmark = max(o["updated_at"] for o in run1)
        emu.now = END
        run2 = http.post(ORDERS, json=order_query(emu, datetime.fromisoformat(
            bookmark.replace("Z", "+00:00")))).json()["orders"]
    new = {o["reference_id"] for o in run2} - {o["reference_id"] for o in run1}
    assert len(new) == 215 == sum(o.sold_at > MID for o in data.orders)
    assert len(run2) - len(new) == sum(rfc3339(o.sold_at) == bookmark for o in data.orders)


@pytest.mark.e2e
def test_touch_order_moves_updated_at_and_version(emu: SquareEmulator,
                                                  data: PanPanData) -> None:
    receipt = data.orders[5].receipt_no
    edit = END - timedelta(hours=1, microseconds=123456)
    emu.touch("orders", receipt, edit)
    emu.touch("orders", emu.order_id(data.orders[6].receipt_no), END + timedelta(days=1))
    with client(emu) as http:
        got = http.post(ORDERS, json=order_query(emu, END - timedelta(hours=2))).json()["orders"]
        assert [(o["reference_id"], o["version"], o["updated_at"]) for o in got] == [
            (receipt, 2, "2025-01-31T22:59:59.876Z")]
        assert got[0]["created_at"] == rfc3339(data.orders[5].sold_at)
        emu.now = END + timedelta(days=1)  # the second edit has happened now
        got = http.post(ORDERS, json=order_query(emu, END - timedelta(hours=2))).json()["orders"]
        assert [o["reference_id"] for o in got] == [receipt, data.orders[6].receipt_no]
        entries = http.post(ORDERS, json=order_query(emu, END - timedelta(hours=2),
                                                     return_entries=True)).json()
        assert set(entries) == {"order_entries"}
        assert entries["order_entries"][0] == {"order_id": emu.order_id(receipt), "version": 2,
                                               "location_id": got[0]["location_id"]}
    with pytest.raises(KeyError):
        emu.touch("orders", "NOPE", END)
    with pytest.raises(ValueError):
        emu.touch("payments", receipt, END)


@pytest.mark.e2e
def test_orders_desc_created_at_and_filters(shared: SquareEmulator, data: PanPanData) -> None:
    lyo = shared.locations["LYO-01"]
    body = {"location_ids": [lyo], "limit": 40,
            "query": {"filter": {"date_time_filter": {"created_at": {"start_at": rfc3339(MID)}},
                                 "state_filter": {"states": ["COMPLETED"]},
                                 "source_filter": {"source_names": ["Livraison"]}},
                      "sort": {"sort_field": "CREATED_AT"}}}
    expected = [o for o in data.orders if o.shop_id == "LYO-01" and o.sold_at >= MID
                and o.channel == "livraison"]
    with client(shared) as http:
        got = [o for page in pages(http, ORDERS, body, "orders") for o in page]
        stamps = [(o["created_at"], o["id"]) for o in got]
        assert stamps == sorted(stamps, reverse=True)
        assert sorted(o["reference_id"] for o in got) == sorted(o.receipt_no for o in expected)
        body["query"]["filter"]["state_filter"] = {"states": ["OPEN"]}
        assert http.post(ORDERS, json=body).json() == {}


@pytest.mark.e2e
def test_returns_are_new_orders_pointing_at_the_original(data_returns: PanPanData) -> None:
    ret = next(o for o in data_returns.orders if o.receipt_no == "RET-VIL-01-20250115-0002")
    original = next(o for o in data_returns.orders if o.receipt_no == ret.receipt_no[4:])
    emulator = SquareEmulator(data_returns, token=TOKEN, now=ret.sold_at - timedelta(minutes=1))
    with emulator, client(emulator) as http:
        before = http.post(ORDERS, json=order_query(emulator)).json()["orders"]
        orig = next(o for o in before if o["reference_id"] == original.receipt_no)
        assert (orig["version"], orig["updated_at"]) == (1, rfc3339(original.sold_at))
        assert "refunds" not in orig and ret.receipt_no not in {o["reference_id"] for o in before}

        emulator.now = ret.sold_at
        got = http.post(ORDERS, json=order_query(emulator, ret.sold_at)).json()["orders"]
        by_ref = {o["reference_id"]: o for o in got}
        assert set(by_ref) == {original.receipt_no, ret.receipt_no}
        orig, back = by_ref[original.receipt_no], by_ref[ret.receipt_no]
        assert (orig["version"], orig["updated_at"]) == (2, "2025-01-16T10:30:00.000Z")
        assert orig["created_at"] == "2025-01-15T07:38:00.000Z"
        assert orig["refunds"][0]["amount_money"] == {"amount": 435, "currency": "EUR"}
        assert orig["net_amounts"]["total_money"]["amount"] == 0
        assert back["id"] != orig["id"] and "line_items" not in back
        assert back["returns"][0]["source_order_id"] == orig["id"]
        item = back["returns"][0]["return_line_items"][0]
        assert item["quantity"] == "3"
        assert item["total_money"] == {"amount": 435, "currency": "EUR"}
        assert item["catalog_object_id"] == emulator.variation_ids["VIE-002"]
        assert item["source_line_item_uid"] == orig["line_items"][0]["uid"]
        assert back["return_amounts"]["total_money"]["amount"] == 435
        assert back["total_money"]["amount"] == 0

        emulator.now = END
        all_orders = [o for p in pages(http, ORDERS, order_query(emulator, limit=100), "orders")
                      for o in p]
        assert len(all_orders) == 515
        assert sum("returns" in o for o in all_orders) == 6
        assert sum("refunds" in o for o in all_orders) == 6


# --- customers ----------------------------------------------------------------------------

def customer_query(start: datetime | None = None, end: datetime | None = None,
                   **extra: Any) -> dict[str, Any]:
    span = {}
    if start:
        span["start_at"] = rfc3339(start)
    if end:
        span["end_at"] = rfc3339(end)
    return {"query": {"filter": {"updated_at": span},
                      "sort": {"field": "CREATED_AT", "order": "ASC"}}, **extra}


@pytest.mark.e2e
def test_customers_pages_and_limit(shared: SquareEmulator, data: PanPanData) -> None:
    with client(shared) as http:
        got = pages(http, CUSTOMERS, {"limit": 30}, "customers")
        assert [len(page) for page in got] == [30, 30, 23]
        customers = [c for page in got for c in page]
        assert sorted(c["reference_id"] for c in customers) == sorted(
            c.customer_id for c in data.customers)
        assert len({c["id"] for c in customers}) == 83
        assert [len(p) for p in pages(http, CUSTOMERS, {}, "customers")] == [83]  # default 100
        for limit, code in ((101, "VALUE_TOO_HIGH"), (0, "VALUE_TOO_LOW")):
            response = http.post(CUSTOMERS, json={"limit": limit})
            assert response.status_code == 400
            assert error(response)["code"] == code and error(response)["field"] == "limit"
        first = customers[0]
        source = next(c for c in data.customers if c.customer_id == first["reference_id"])
        assert (first["given_name"], first["family_name"], first["email_address"],
                first["phone_number"], first["version"]) == (
            source.first_name, source.last_name, source.email, source.phone, 0)
        listed = http.get("/v2/customers", params={"limit": 50, "count": "true"}).json()
        assert len(listed["customers"]) == 50 and listed["count"] == 83 and listed["cursor"]


@pytest.mark.e2e
def test_customers_updated_at_start_inclusive_end_exclusive(shared: SquareEmulator,
                                                            data: PanPanData) -> None:
    signups = sorted({c.signed_up for c in data.customers})
    a, b = signups[-6], signups[-2]
    expected = sorted(c.customer_id for c in data.customers if a <= c.signed_up < b)
    with client(shared) as http:
        got = http.post(CUSTOMERS, json=customer_query(a, b)).json()["customers"]
    assert sorted(c["reference_id"] for c in got) == expected
    assert any(c["created_at"] == rfc3339(a) for c in got)
    assert not any(c["created_at"] == rfc3339(b) for c in got)


@pytest.mark.e2e
def test_customers_clock_and_touch(emu: SquareEmulator, data: PanPanData) -> None:
    emu.now = MID
    with client(emu) as http:
        run1 = [c for p in pages(http, CUSTOMERS, customer_query(), "customers") for c in p]
        assert len(run1) == 81 == sum(c.signed_up <= MID for c in data.customers)
        emu.now = END
        edit = END - timedelta(minutes=5)
        emu.touch("customers", "C000001", edit)
        run2 = http.post(CUSTOMERS, json=customer_query(MID)).json()["customers"]
    old = next(c for c in data.customers if c.customer_id == "C000001")
    assert sorted(c["reference_id"] for c in run2) == sorted(
        ["C000001", *(c.customer_id for c in data.customers if c.signed_up > MID)])
    touched = next(c for c in run2 if c["reference_id"] == "C000001")
    assert (touched["updated_at"], touched["created_at"], touched["version"]) == (
        rfc3339(edit), rfc3339(old.signed_up), 1)


# --- catalog ------------------------------------------------------------------------------

@pytest.mark.e2e
def test_catalog_items_begin_time_exclusive_and_touch(emu: SquareEmulator,
                                                      data: PanPanData) -> None:
    body = {"object_types": ["ITEM"], "limit": 10}
    with client(emu) as http:
        got = pages(http, CATALOG, body, "objects")
        assert [len(p) for p in got] == [10, 10, 10, 10, 2]
        items = [o for p in got for o in p]
        assert {o["type"] for o in items} == {"ITEM"}
        by_sku = {o["item_data"]["variations"][0]["item_variation_data"]["sku"]: o
                  for o in items}
        assert set(by_sku) == {p.sku for p in data.products}
        baguette = by_sku["PAI-001"]["item_data"]["variations"][0]
        assert baguette["id"] == emu.variation_ids["PAI-001"]
        assert baguette["item_variation_data"]["price_money"] == {"amount": 120,
                                                                  "currency": "EUR"}
        created = by_sku["PAI-001"]["updated_at"]
        assert created == "2011-02-28T23:00:00.000Z"
        since = {"object_types": ["ITEM"], "begin_time": created}
        assert http.post(CATALOG, json=since).json() == {"latest_time": created}
        emu.touch("catalog", "PAI-001", END - timedelta(hours=3))
        changed = http.post(CATALOG, json=since).json()
        assert [o["id"] for o in changed["objects"]] == [emu.item_ids["PAI-001"]]
        assert changed["latest_time"] == "2025-01-31T21:00:00.000Z"
        assert changed["objects"][0]["version"] > by_sku["PAI-001"]["version"]
        same_instant = {**since, "begin_time": changed["latest_time"]}
        assert "objects" not in http.post(CATALOG, json=same_instant).json()
        everything = http.post(CATALOG, json={"limit": 5000}).json()  # ignored, default 1000
        assert len(everything["objects"]) == 42 * 2 + 6 and "cursor" not in everything
        bad = http.post(CATALOG, json={"object_types": ["WIDGET"]})
        assert bad.status_code == 400 and error(bad)["code"] == "INVALID_ENUM_VALUE"


# --- inventory ----------------------------------------------------------------------------

@pytest.mark.e2e
def test_inventory_counts_pages_limit_and_updated_after(shared: SquareEmulator,
                                                        data: PanPanData) -> None:
    with client(shared) as http:
        got = pages(http, COUNTS, {"limit": 50}, "counts")
        assert [len(p) for p in got] == [50, 50, 23]
        counts = [c for p in got for c in p]
        assert len({(c["location_id"], c["catalog_object_id"]) for c in counts}) == 123
        latest = {}
        for count in data.stock_counts:
            latest[(count.shop_id, count.sku)] = count
        for c in counts:
            shop = next(s for s, lid in shared.locations.items() if lid == c["location_id"])
            sku = next(s for s, vid in shared.variation_ids.items()
                       if vid == c["catalog_object_id"])
            want = latest[(shop, sku)]
            assert (c["quantity"], c["calculated_at"], c["state"], c["catalog_object_type"]) == (
                str(want.on_hand), rfc3339(want.counted_at), "IN_STOCK", "ITEM_VARIATION")
        assert [len(p) for p in pages(http, COUNTS, {}, "counts")] == [123]  # default 1000
        assert [len(p) for p in pages(http, COUNTS, {"limit": 41}, "counts")] == [41] * 3
        for limit, code in ((1001, "VALUE_TOO_HIGH"), (0, "VALUE_TOO_LOW")):
            response = http.post(COUNTS, json={"limit": limit})
            assert response.status_code == 400 and error(response)["code"] == code
        last = "2025-01-31T20:00:00.000Z"
        assert http.post(COUNTS, json={"updated_after": last}).json() == {}
        just_before = http.post(COUNTS, json={"updated_after": "2025-01-31T19:59:59.999Z"})
        assert len(just_before.json()["counts"]) == sum(
            rfc3339(c.counted_at) == last for c in latest.values())
        lyo = http.post(COUNTS, json={"location_ids": [shared.locations["LYO-01"]]}).json()
        assert len(lyo["counts"]) == sum(shop == "LYO-01" for shop, _ in latest)


@pytest.mark.e2e
def test_inventory_clock_and_touch(emu: SquareEmulator, data: PanPanData) -> None:
    emu.now = datetime(2025, 1, 12, 19, tzinfo=UTC)  # before the first count (20:00 UTC)
    with client(emu) as http:
        assert http.post(COUNTS, json={}).json() == {}
        emu.now = datetime(2025, 1, 13, 12, tzinfo=UTC)
        counts = http.post(COUNTS, json={}).json()["counts"]
        first_day = [c for c in data.stock_counts if c.counted_on == date(2025, 1, 12)]
        assert len(counts) == len(first_day)
        assert {c["calculated_at"] for c in counts} == {"2025-01-12T20:00:00.000Z"}
        emu.touch("inventory", "LYO-01/PAI-001", datetime(2025, 1, 13, 9, tzinfo=UTC))
        recount = http.post(COUNTS, json={"updated_after": "2025-01-12T20:00:00.000Z"}).json()
        assert [(c["location_id"], c["catalog_object_id"], c["calculated_at"])
                for c in recount["counts"]] == [(emu.locations["LYO-01"],
                                                 emu.variation_ids["PAI-001"],
                                                 "2025-01-13T09:00:00.000Z")]


# --- faults -------------------------------------------------------------------------------

@pytest.mark.e2e
def test_injected_faults_use_square_shapes(emu: SquareEmulator) -> None:
    rate_limited = {"category": "RATE_LIMIT_ERROR", "code": "RATE_LIMITED",
                    "detail": "This request was rate limited. Please retry later."}
    with client(emu) as http:
        for retry_after in (None, 5.0):
            emu.inject("rate_limit", retry_after=retry_after)
            response = http.post(ORDERS, json=order_query(emu))
            assert response.status_code == 429
            assert error(response) == rate_limited
            assert "retry-after" not in response.headers
        for status, code in ((500, "INTERNAL_SERVER_ERROR"), (503, "SERVICE_UNAVAILABLE")):
            emu.inject("server_error", status=status)
            response = http.get("/v2/locations")
            assert response.status_code == status
            assert (error(response)["category"], error(response)["code"]) == ("API_ERROR", code)
        first = http.post(ORDERS, json=order_query(emu, limit=100)).json()
        emu.inject("expired_cursor", path=ORDERS)
        response = http.post(ORDERS, json=order_query(emu, limit=100, cursor=first["cursor"]))
        assert response.status_code == 400
        assert (error(response)["category"], error(response)["code"], error(response)["field"]) \
            == ("INVALID_REQUEST_ERROR", "INVALID_CURSOR", "cursor")
        # The cursor itself still works once the fault is spent.
        again = http.post(ORDERS, json=order_query(emu, limit=100, cursor=first["cursor"]))
        assert again.status_code == 200 and len(again.json()["orders"]) == 100
        emu.inject("bad_token")
        response = http.post(CUSTOMERS, json={})
        assert response.status_code == 401
        assert (error(response)["category"], error(response)["code"]) == (
            "AUTHENTICATION_ERROR", "UNAUTHORIZED")
        assert http.post(CUSTOMERS, json={}).status_code == 200
    logged = [r for r in emu.requests if r.headers.get("authorization")]
    assert logged and all(r.headers["authorization"] == "***" for r in logged)


def test_money_helper_refuses_fractions_of_a_cent() -> None:
    from goalpost.sandbox.emulators.square import money

    assert money(Decimal("19.99")) == {"amount": 1999, "currency": "EUR"}
    assert money(Decimal("-4.35")) == {"amount": -435, "currency": "EUR"}
    with pytest.raises(ValueError):
        money(Decimal("0.005"))
