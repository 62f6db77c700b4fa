"""The Shopify GraphQL Admin emulator against Shopify's Admin API reference
(shopify.dev/docs/api/admin-graphql: pagination, search syntax, rate limits and costs)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from goalpost.sandbox.demo.generator import generate_panpan
from goalpost.sandbox.emulators.panpan import PanPanData
from goalpost.sandbox.emulators.shopify import ShopifyEmulator

pytestmark = pytest.mark.e2e

TOKEN = "shpat_test"
ENDPOINT = "/admin/api/2025-01/graphql.json"
END = datetime(2025, 2, 1, tzinfo=UTC)  # after every record of the data set
CUT = datetime(2025, 1, 25, tzinfo=UTC)
BAD_TOKEN = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong "
                       "password)"}

ORDERS = """
query Orders($first: Int!, $after: String, $query: String, $sort: OrderSortKeys) {
  orders(first: $first, after: $after, query: $query, sortKey: $sort) {
    edges { cursor node { id name createdAt updatedAt } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def _load(tmp: Path, seed: int) -> PanPanData:
    generate_panpan(tmp, end=date(2025, 1, 31), days=20, scale=0.05, seed=seed)
    return PanPanData.load(tmp)


@pytest.fixture(scope="module")
def data(panpan_api_data: PanPanData) -> PanPanData:
    """The small PanPan data set of conftest.py (seed 3)."""
    return panpan_api_data


@pytest.fixture(scope="module")
def data_with_returns(tmp_path_factory: pytest.TempPathFactory) -> PanPanData:
    return _load(tmp_path_factory.mktemp("panpan5"), 5)


@pytest.fixture
def emulator(data: PanPanData) -> Iterator[ShopifyEmulator]:
    with ShopifyEmulator(data, token=TOKEN, now=END) as emu:
        yield emu


@pytest.fixture
def client(emulator: ShopifyEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, headers={"X-Shopify-Access-Token": TOKEN}) as c:
        yield c


def gql(client: httpx.Client, document: str, expect: int = 200, **variables: Any) -> dict:
    response = client.post(ENDPOINT, json={"query": document, "variables": variables})
    assert response.status_code == expect, response.text
    return response.json()


def all_orders(client: httpx.Client, first: int = 250, query: str | None = None,
               sort: str = "ID") -> list[dict]:
    nodes, after = [], None
    while True:
        page = gql(client, ORDERS, first=first, after=after, query=query,
                   sort=sort)["data"]["orders"]
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


def z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- auth and endpoint ----------------------------------------------------------------------

def test_auth(emulator: ShopifyEmulator, client: httpx.Client) -> None:
    assert gql(client, "{ shop { name currencyCode } }")["data"] == {
        "shop": {"name": "PanPan", "currencyCode": "EUR"}}
    body = {"query": "{ shop { name } }"}
    missing = httpx.post(emulator.url + ENDPOINT, json=body)
    assert (missing.status_code, missing.json()) == (401, BAD_TOKEN)
    wrong = httpx.post(emulator.url + ENDPOINT, json=body,
                       headers={"X-Shopify-Access-Token": "shpat_other"})
    assert (wrong.status_code, wrong.json()) == (401, BAD_TOKEN)
    bearer = httpx.post(emulator.url + ENDPOINT, json=body,
                        headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 401
    assert all(r.headers.get("x-shopify-access-token") in (None, "***")
               for r in emulator.requests)


def test_endpoint_paths_and_body(client: httpx.Client) -> None:
    query = {"query": "{ shop { name } }"}
    ok = client.post("/admin/api/unstable/graphql.json", json=query)
    assert ok.status_code == 200 and ok.headers["X-Shopify-API-Version"] == "unstable"
    assert client.post(ENDPOINT, json=query).headers["X-Shopify-API-Version"] == "2025-01"
    for path in ("/admin/api/2025-13/graphql.json", "/admin/api/2025-01/orders.json",
                 "/admin/graphql.json"):
        missing = client.post(path, json=query)
        assert (missing.status_code, missing.json()) == (404, {"errors": "Not Found"})
    assert client.get(ENDPOINT).status_code == 404
    no_query = client.post(ENDPOINT, json={"variables": {}})
    assert (no_query.status_code, no_query.json()) == (
        400, {"errors": {"query": "Required parameter missing or invalid"}})
    raw = client.post(ENDPOINT, content=b"{ shop { name } }",
                      headers={"Content-Type": "application/graphql"})
    assert raw.json()["data"] == {"shop": {"name": "PanPan"}}


# --- pagination -----------------------------------------------------------------------------

def test_pages_return_every_order_exactly_once(data: PanPanData, client: httpx.Client) -> None:
    sizes, names, ids, after = [], [], [], None
    while True:
        page = gql(client, ORDERS, first=100, after=after)["data"]["orders"]
        sizes.append(len(page["edges"]))
        names += [e["node"]["name"] for e in page["edges"]]
        ids += [e["node"]["id"] for e in page["edges"]]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sizes == [100, 100, 100, 100, 50]
    assert len(set(ids)) == 450 and ids == [f"gid://shopify/Order/{n}" for n in range(1, 451)]
    assert sorted(names) == sorted(o.receipt_no for o in data.orders)
    # sortKey UPDATED_AT and the `nodes` shape page the same records.
    by_update = all_orders(client, first=250, sort="UPDATED_AT")
    assert len(by_update) == 450 and {n["id"] for n in by_update} == set(ids)
    assert [n["updatedAt"] for n in by_update] == sorted(n["updatedAt"] for n in by_update)
    nodes = gql(client, "{ orders(first: 3, reverse: true) { nodes { name } } }")
    assert [n["name"] for n in nodes["data"]["orders"]["nodes"]] == \
        [o.receipt_no for o in data.orders[::-1][:3]]


def test_page_size_maximum(client: httpx.Client) -> None:
    page = gql(client, "{ orders(first: 250) { nodes { id } pageInfo { hasNextPage } } }")
    assert len(page["data"]["orders"]["nodes"]) == 250
    assert page["data"]["orders"]["pageInfo"]["hasNextPage"] is True
    too_many = gql(client, "{ orders(first: 251) { nodes { id } } }")
    assert too_many["data"] is None
    assert too_many["errors"] == [{"message": "first must be less than or equal to 250",
                                   "locations": [{"line": 1, "column": 3}],
                                   "path": ["orders"]}]
    assert too_many["extensions"]["cost"]["requestedQueryCost"] == 253
    nested = gql(client, "{ orders(first: 1) { nodes { lineItems(first: 300) { nodes { sku } } "
                         "} } }")
    assert nested["errors"][0]["message"] == "first must be less than or equal to 250"
    assert nested["errors"][0]["path"] == ["orders", "nodes", 0, "lineItems"]
    unbounded = gql(client, "{ customers { nodes { id } } }")
    assert unbounded["errors"][0]["message"] == "you must provide one of first or last"
    assert unbounded["data"] is None


def test_cursor_errors(client: httpx.Client) -> None:
    # Without a sortKey, orders go by PROCESSED_AT (the schema's default for the argument).
    default = gql(client, ORDERS, first=2)["data"]["orders"]["pageInfo"]["endCursor"]
    assert json.loads(base64.b64decode(default))["last_value"].startswith("2025-")
    first = gql(client, ORDERS, first=2, sort="ID")["data"]["orders"]["pageInfo"]["endCursor"]
    assert json.loads(base64.b64decode(first)) == {"last_id": 2, "last_value": "2"}
    for bad in ("not-a-cursor", base64.b64encode(b'{"last_id": 2}').decode()):
        answer = gql(client, ORDERS, first=2, after=bad, sort="ID")
        assert answer["data"] is None
        assert answer["errors"][0]["message"] == "Invalid cursor for current pagination sort."
        assert answer["errors"][0]["path"] == ["orders"]
    # An ID cursor is no cursor for the UPDATED_AT sort.
    mixed = gql(client, ORDERS, first=2, after=first, sort="UPDATED_AT")
    assert mixed["errors"][0]["message"] == "Invalid cursor for current pagination sort."


# --- incremental ----------------------------------------------------------------------------

def test_incremental_bounds(data: PanPanData, client: httpx.Client) -> None:
    low, high = datetime(2025, 1, 21, 11, 5, tzinfo=UTC), datetime(2025, 1, 27, 11, 15,
                                                                   tzinfo=UTC)
    window = f"updated_at:>='{z(low)}' AND updated_at:<'{z(high)}'"
    got = all_orders(client, first=50, query=window, sort="UPDATED_AT")
    expected = [o.receipt_no for o in data.orders if low <= o.sold_at < high]
    assert len(got) == len(expected) == 129
    assert sorted(n["name"] for n in got) == sorted(expected)
    at_low = {o.receipt_no for o in data.orders if o.sold_at == low}
    at_high = {o.receipt_no for o in data.orders if o.sold_at == high}
    assert len(at_low) == len(at_high) == 2
    names = {n["name"] for n in got}
    assert at_low <= names and not at_high & names  # >= inclusive, < exclusive
    exclusive = all_orders(client, query=f"updated_at:>'{z(low)}' updated_at:<='{z(high)}'")
    assert not at_low & {n["name"] for n in exclusive}
    assert at_high <= {n["name"] for n in exclusive}
    # Without an offset the time is the shop's (Paris): 12:05 Paris is 11:05 UTC.
    local = all_orders(client, query="updated_at:>='2025-01-21T12:05:00' AND "
                                     "updated_at:<='2025-01-21T12:05:00'")
    assert {n["name"] for n in local} == at_low


def test_search_warnings_and_refusals(client: httpx.Client) -> None:
    answer = gql(client, ORDERS, first=5, query="flavour:sweet AND status:any")
    assert len(answer["data"]["orders"]["edges"]) == 5
    assert answer["extensions"]["search"] == [{
        "path": ["orders"], "query": "flavour:sweet AND status:any",
        "warnings": [{"field": "flavour", "message": "Invalid search field for this query."}]}]
    refused = gql(client, ORDERS, first=5, query="updated_at:>2025-01-20 OR id:1")
    assert refused["data"] is None and "OR" in refused["errors"][0]["message"]


def test_clock_makes_new_records_appear(data: PanPanData, emulator: ShopifyEmulator,
                                        client: httpx.Client) -> None:
    emulator.now = CUT
    first_run = all_orders(client)
    assert len(first_run) == 294 == sum(o.sold_at <= CUT for o in data.orders)
    customers = gql(client, "{ customers(first: 250) { nodes { id } } }")
    assert len(customers["data"]["customers"]["nodes"]) == 82
    emulator.now = END
    second_run = all_orders(client, query=f"updated_at:>'{z(CUT)}'", sort="UPDATED_AT")
    assert len(second_run) == 156
    assert {n["name"] for n in second_run} == {o.receipt_no for o in data.orders
                                               if o.sold_at > CUT}
    assert not {n["id"] for n in first_run} & {n["id"] for n in second_run}
    new_customers = gql(client, "query($q: String) { customers(first: 250, query: $q) "
                                "{ nodes { id createdAt } } }", q=f"updated_at:>'{z(CUT)}'")
    assert len(new_customers["data"]["customers"]["nodes"]) == 1


def test_touch(data: PanPanData, emulator: ShopifyEmulator, client: httpx.Client) -> None:
    at = datetime(2025, 1, 31, 22, 0, 5, 123456, tzinfo=UTC)
    order = data.orders[10]
    customer = data.customers[3]
    emulator.touch("orders", order.receipt_no, at)
    emulator.touch("customers", customer.customer_id, at)
    emulator.touch("products", "PAI-001", at)
    emulator.touch("inventory_levels", "LYO-01/PAI-001", at)
    since = f"updated_at:>='{z(at)}'"
    changed = all_orders(client, query=since)
    assert [(n["name"], n["updatedAt"], n["createdAt"]) for n in changed] == [
        (order.receipt_no, "2025-01-31T22:00:05Z", z(order.sold_at))]
    query = """query($q: String) {
      customers(first: 10, query: $q) { nodes { id updatedAt } }
      products(first: 10, query: $q) { nodes { title updatedAt variants(first: 1) {
        nodes { sku updatedAt } } } }
      location(id: "gid://shopify/Location/1") { inventoryLevels(first: 10, query: $q) {
        nodes { item { sku } updatedAt } } }
    }"""
    got = gql(client, query, q=since)["data"]
    assert got["customers"]["nodes"] == [{"id": "gid://shopify/Customer/4",
                                          "updatedAt": "2025-01-31T22:00:05Z"}]
    assert got["products"]["nodes"] == [{"title": "Baguette", "updatedAt": "2025-01-31T22:00:05Z",
                                         "variants": {"nodes": [{
                                             "sku": "PAI-001",
                                             "updatedAt": "2025-01-31T22:00:05Z"}]}}]
    assert got["location"]["inventoryLevels"]["nodes"] == [
        {"item": {"sku": "PAI-001"}, "updatedAt": "2025-01-31T22:00:05Z"}]
    # A touch in the future is not seen until the clock reaches it.
    emulator.touch("orders", data.orders[11].receipt_no, datetime(2025, 3, 1, tzinfo=UTC))
    assert len(all_orders(client, query=since)) == 1
    with pytest.raises(ValueError):
        emulator.touch("refunds", "x", at)
    with pytest.raises(KeyError):
        emulator.touch("orders", "NOPE", at)


# --- records and money ----------------------------------------------------------------------

ORDER_DETAIL = """
query($q: String) { orders(first: 5, query: $q) { nodes {
  id name processedAt displayFinancialStatus sourceName
  totalPriceSet { shopMoney { amount currencyCode } }
  totalDiscountsSet { shopMoney { amount } }
  currentTotalPriceSet { shopMoney { amount } }
  totalRefundedSet { shopMoney { amount } }
  customer { id }
  physicalLocation { id }
  retailLocation { id name address { city } }
  lineItems(first: 10) { edges { node { sku name quantity currentQuantity
    originalUnitPriceSet { shopMoney { amount } }
    discountedTotalSet { shopMoney { amount currencyCode } }
    totalDiscountSet { shopMoney { amount } } } } }
  refunds { createdAt note totalRefundedSet { shopMoney { amount } }
    refundLineItems(first: 10) { nodes { quantity lineItem { id sku }
      subtotalSet { shopMoney { amount } } } } }
} } }"""


def test_money_is_exact(data: PanPanData, client: httpx.Client) -> None:
    got = gql(client, ORDER_DETAIL, q="id:16")["data"]["orders"]["nodes"]
    assert len(got) == 1
    order = got[0]
    assert order["name"] == data.orders[15].receipt_no == "VIL-01-20250112-0007"
    assert order["totalPriceSet"] == {"shopMoney": {"amount": "7.74", "currencyCode": "EUR"}}
    assert order["totalDiscountsSet"]["shopMoney"]["amount"] == "1.26"
    lines = [edge["node"] for edge in order["lineItems"]["edges"]]
    assert lines == [
        {"sku": "SNA-003", "name": "Croque-monsieur", "quantity": 1, "currentQuantity": 1,
         "originalUnitPriceSet": {"shopMoney": {"amount": "4.8"}},
         "discountedTotalSet": {"shopMoney": {"amount": "4.8", "currencyCode": "EUR"}},
         "totalDiscountSet": {"shopMoney": {"amount": "0.0"}}},
        {"sku": "PAT-010", "name": "Tarte aux fraises", "quantity": 1, "currentQuantity": 1,
         "originalUnitPriceSet": {"shopMoney": {"amount": "4.2"}},
         "discountedTotalSet": {"shopMoney": {"amount": "2.94", "currencyCode": "EUR"}},
         "totalDiscountSet": {"shopMoney": {"amount": "1.26"}}}]
    assert order["retailLocation"] == {"id": "gid://shopify/Location/3",
                                       "name": "PanPan Villeurbanne",
                                       "address": {"city": "Villeurbanne"}}
    assert order["physicalLocation"] == {"id": "gid://shopify/Location/3"}
    assert order["customer"] is None and order["refunds"] == []
    assert order["displayFinancialStatus"] == "PAID" and order["sourceName"] == "pos"
    # Every amount on the wire is a decimal string whose sum is the exact data total.
    totals = gql(client, "{ orders(first: 250) { nodes { totalPriceSet { shopMoney { amount } } }"
                         " pageInfo { endCursor } } }")["data"]["orders"]
    after = totals["pageInfo"]["endCursor"]
    rest = gql(client, "query($a: String) { orders(first: 250, after: $a) { nodes { "
                       "totalPriceSet { shopMoney { amount } } } } }", a=after)
    amounts = [n["totalPriceSet"]["shopMoney"]["amount"]
               for n in totals["nodes"] + rest["data"]["orders"]["nodes"]]
    assert all(isinstance(a, str) for a in amounts) and len(amounts) == 450
    assert sum(Decimal(a) for a in amounts) == Decimal("3090.84") == \
        sum(o.total for o in data.orders)


def test_returns_are_refunds_on_the_original(data_with_returns: PanPanData) -> None:
    data = data_with_returns
    emulator = ShopifyEmulator(data, token=TOKEN, now=datetime(2025, 1, 16, 10, tzinfo=UTC))
    with emulator, httpx.Client(base_url=emulator.url,
                                headers={"X-Shopify-Access-Token": TOKEN}) as client:
        before = [n for n in all_orders(client) if n["name"] == "VIL-01-20250115-0002"]
        assert before[0]["updatedAt"] == before[0]["createdAt"] == "2025-01-15T07:38:00Z"
        emulator.now = END
        orders = all_orders(client)
        assert len(orders) == 509 == len(data.orders) - 6  # 6 returns, none an order
        assert not any(n["name"].startswith("RET-") for n in orders)
        number = next(n["id"] for n in orders if n["name"] == "VIL-01-20250115-0002")
        detail = gql(client, ORDER_DETAIL, q=f"id:{number.rsplit('/', 1)[1]}")
        order = detail["data"]["orders"]["nodes"][0]
        assert order["displayFinancialStatus"] == "REFUNDED"
        assert order["totalPriceSet"]["shopMoney"]["amount"] == "4.35"
        assert order["totalRefundedSet"]["shopMoney"]["amount"] == "4.35"
        assert order["currentTotalPriceSet"]["shopMoney"]["amount"] == "0.0"
        line_id = number.replace("Order/", "LineItem/") + "001"
        assert order["refunds"] == [{
            "createdAt": "2025-01-16T10:30:00Z", "note": "RET-VIL-01-20250115-0002",
            "totalRefundedSet": {"shopMoney": {"amount": "4.35"}},
            "refundLineItems": {"nodes": [{"quantity": 3,
                                           "lineItem": {"id": line_id, "sku": "VIE-002"},
                                           "subtotalSet": {"shopMoney": {"amount": "4.35"}}}]}}]
        assert order["lineItems"]["edges"][0]["node"]["currentQuantity"] == 0
        # The refund moved updatedAt: an incremental pull from the refund time catches it.
        since = all_orders(client, query="updated_at:>='2025-01-16T10:30:00Z' AND "
                                         "created_at:<'2025-01-16T00:00:00Z'")
        sold = {o.receipt_no: o.sold_at for o in data.orders}
        refund_time = datetime(2025, 1, 16, 10, 30, tzinfo=UTC)
        expected = {o.receipt_no for o in data.orders if not o.is_return
                    and o.sold_at < datetime(2025, 1, 16, tzinfo=UTC)
                    and sold.get("RET-" + o.receipt_no, refund_time.replace(year=1)) >=
                    refund_time}
        assert {n["name"] for n in since} == expected == {"VIL-01-20250115-0002"}
        refunded = next(n for n in since if n["name"] == "VIL-01-20250115-0002")
        assert refunded["updatedAt"] == "2025-01-16T10:30:00Z"
        assert emulator.orphan_returns == []


def test_a_sale_called_off_before_payment_is_a_cancelled_order(data: PanPanData) -> None:
    sale = next(o for o in data.orders if not o.is_return and o.sold_at < CUT)
    called_off = sale.sold_at + timedelta(minutes=20)
    orders = [replace(o, cancelled_at=called_off) if o is sale else o for o in data.orders]
    emulator = ShopifyEmulator(replace(data, orders=orders), token=TOKEN,
                               now=sale.sold_at + timedelta(minutes=10))
    detail = """query($q: String) { orders(first: 1, query: $q) { nodes {
        updatedAt closedAt cancelledAt cancelReason displayFinancialStatus
        currentTotalPriceSet { shopMoney { amount } } totalPriceSet { shopMoney { amount } }
        lineItems(first: 20) { nodes { quantity currentQuantity } } } } }"""
    with emulator, httpx.Client(base_url=emulator.url,
                                headers={"X-Shopify-Access-Token": TOKEN}) as client:
        number = next(n["id"] for n in all_orders(client) if n["name"] == sale.receipt_no)
        query = f"id:{number.rsplit('/', 1)[1]}"
        before = gql(client, detail, q=query)["data"]["orders"]["nodes"][0]
        assert (before["cancelledAt"], before["displayFinancialStatus"]) == (None, "PAID")
        emulator.now = END
        after = gql(client, detail, q=query)["data"]["orders"]["nodes"][0]
        assert after["cancelledAt"] == after["updatedAt"] == after["closedAt"] == z(called_off)
        assert (after["cancelReason"], after["displayFinancialStatus"]) == ("CUSTOMER", "VOIDED")
        assert after["totalPriceSet"] == before["totalPriceSet"]
        assert after["currentTotalPriceSet"]["shopMoney"]["amount"] == "0.0"
        assert {n["currentQuantity"] for n in after["lineItems"]["nodes"]} == {0}
        # The cancellation moved updatedAt: an incremental pull from then on catches it.
        since = all_orders(client, query=f"updated_at:>='{z(called_off)}' AND "
                                         f"created_at:<'{z(sale.sold_at + timedelta(seconds=1))}'")
        assert [n["name"] for n in since] == [sale.receipt_no]


def test_customers_products_locations(data: PanPanData, client: httpx.Client) -> None:
    answer = gql(client, """{
      customers(first: 250) { nodes { id firstName lastName email phone createdAt updatedAt } }
      products(first: 50, sortKey: TITLE) { nodes { id title productType
        variants(first: 1) { nodes { sku price } } } }
      locations(first: 10) { nodes { id name address { city } } }
    }""")["data"]
    customers = answer["customers"]["nodes"]
    assert len(customers) == 83
    first = data.customers[0]
    assert customers[0] == {
        "id": "gid://shopify/Customer/1", "firstName": first.first_name,
        "lastName": first.last_name, "email": first.email or None,
        "phone": first.phone.replace(" ", "") or None, "createdAt": z(first.signed_up),
        "updatedAt": z(first.signed_up)}
    products = answer["products"]["nodes"]
    assert len(products) == 42
    assert [p["title"] for p in products] == sorted(p.name for p in data.products)
    baguette = next(p for p in products if p["title"] == "Baguette")
    assert baguette == {"id": "gid://shopify/Product/1", "title": "Baguette",
                        "productType": "pain",
                        "variants": {"nodes": [{"sku": "PAI-001", "price": "1.2"}]}}
    assert answer["locations"]["nodes"] == [
        {"id": f"gid://shopify/Location/{n}", "name": s.name, "address": {"city": s.city}}
        for n, s in enumerate(data.shops, 1)]


def test_inventory_levels(data: PanPanData, emulator: ShopifyEmulator,
                          client: httpx.Client) -> None:
    query = """query($id: ID!, $after: String) { location(id: $id) {
      inventoryLevels(first: 20, after: $after) {
        nodes { id updatedAt item { sku } quantities(names: ["available", "incoming"]) {
          name quantity } }
        pageInfo { hasNextPage endCursor } } } }"""
    levels: list[dict] = []
    locations = gql(client, "{ locations(first: 10) { nodes { id } } }")
    for location in locations["data"]["locations"]["nodes"]:
        after = None
        while True:
            page = gql(client, query, id=location["id"], after=after)
            connection = page["data"]["location"]["inventoryLevels"]
            levels += connection["nodes"]
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
    assert len(levels) == 123 == len({(c.shop_id, c.sku) for c in data.stock_counts})
    assert len({level["id"] for level in levels}) == 123
    last = {}
    for count in data.stock_counts:
        last[(count.shop_id, count.sku)] = count
    count = last[("LYO-01", "PAI-001")]
    level = next(x for x in levels
                 if x["id"] == "gid://shopify/InventoryLevel/1?inventory_item_id=1")
    assert level == {"id": "gid://shopify/InventoryLevel/1?inventory_item_id=1",
                     "updatedAt": z(count.counted_at), "item": {"sku": "PAI-001"},
                     "quantities": [{"name": "available", "quantity": count.on_hand},
                                    {"name": "incoming", "quantity": 0}]}
    # Before the first count's evening, no level is known yet.
    emulator.now = datetime(2025, 1, 12, 12, tzinfo=UTC)
    early = gql(client, query, id="gid://shopify/Location/1")
    assert early["data"]["location"]["inventoryLevels"]["nodes"] == []
    missing_names = gql(client, '{ location(id: "gid://shopify/Location/1") { inventoryLevels('
                                'first: 1) { nodes { quantities { name } } } } }')
    assert missing_names["errors"][0]["message"] == (
        "Field 'quantities' argument 'names' of type '[String!]!' is required, but it was not "
        "provided.")


# --- validation and cost --------------------------------------------------------------------

def test_graphql_validation(client: httpx.Client) -> None:
    """Queries are read and validated by graphql-core (the reference implementation) against
    Shopify's Admin schema: its messages are graphql-js's, where Shopify's are graphql-ruby's,
    in the same shape (HTTP 200, `errors` only)."""
    unknown = gql(client, "{ orders(first: 1) { nodes { id flavour } } }")
    assert unknown == {"errors": [{"message": "Cannot query field 'flavour' on type 'Order'.",
                                   "locations": [{"line": 1, "column": 33}]}]}
    argument = gql(client, "{ orders(first: 1, since: 3) { nodes { id } } }")
    assert argument["errors"][0]["message"] == "Unknown argument 'since' on field " \
                                               "'QueryRoot.orders'."
    literal = gql(client, '{ orders(first: "10") { nodes { id } } }')
    assert literal["errors"][0]["message"] == 'Int cannot represent non-integer value: "10"'
    variable = gql(client, "query($n: Int!) { orders(first: $n) { nodes { id } } }")
    assert variable["errors"][0]["message"] == ("Variable '$n' of required type 'Int!' was "
                                                "not provided.")
    parse = gql(client, "{ orders(first: 1) { nodes { id } }")
    assert parse["errors"][0]["message"] == "Syntax Error: Expected Name, found <EOF>."
    sort = gql(client, "{ orders(first: 1, sortKey: TOTAL) { nodes { id } } }")
    assert sort["errors"][0]["message"].startswith(
        "Value 'TOTAL' does not exist in 'OrderSortKeys' enum.")
    # A field Shopify has that the emulator does not serve is an error, never a made-up value.
    unserved = gql(client, "{ orders(first: 1) { nodes { id fulfillments { id } } } }")
    assert unserved["data"] is None
    assert unserved["errors"][0]["message"] == ("Cannot return null for non-nullable field "
                                                "Order.fulfillments.")
    fragments = gql(client, """query { orders(first: 2, sortKey: ID) { nodes { ...O } } }
                               fragment O on Order { name createdAt @skip(if: true) }""")
    assert fragments["data"]["orders"]["nodes"][0] == {"name": "VIL-01-20250112-0001"}
    aliased = gql(client, '{ a: orders(first: 1, sortKey: ID) { nodes { n: name } } '
                          'b: shop { name } }')
    assert aliased["data"] == {"a": {"nodes": [{"n": "VIL-01-20250112-0001"}]},
                               "b": {"name": "PanPan"}}


def test_cost_extension(client: httpx.Client) -> None:
    answer = gql(client, "{ orders(first: 10) { nodes { id } } }")
    cost = answer["extensions"]["cost"]
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (12, 12)
    assert cost["throttleStatus"]["maximumAvailable"] == 2000.0
    assert cost["throttleStatus"]["restoreRate"] == 100.0
    assert 1900 <= cost["throttleStatus"]["currentlyAvailable"] <= 2000
    heavy = gql(client, "{ orders(first: 100) { nodes { id lineItems(first: 10) { nodes { sku "
                        "originalUnitPriceSet { shopMoney { amount } } } } } } }")
    assert "data" not in heavy
    assert heavy["errors"][0]["extensions"] == {
        "code": "MAX_COST_EXCEEDED", "cost": 3302, "maxCost": 1000,
        "documentation": "https://shopify.dev/api/usage/rate-limits"}


def test_enforced_bucket_throttles(data: PanPanData) -> None:
    emulator = ShopifyEmulator(data, token=TOKEN, now=END, bucket_size=100, restore_rate=0.001,
                               enforce_bucket=True, throttle_status=429)
    with emulator, httpx.Client(base_url=emulator.url,
                                headers={"X-Shopify-Access-Token": TOKEN}) as client:
        query = "{ orders(first: 50) { nodes { id } } }"
        ok = gql(client, query)
        assert ok["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 48
        throttled = gql(client, query, expect=429)
        assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert throttled["extensions"]["cost"]["requestedQueryCost"] == 52
        assert throttled["extensions"]["cost"]["actualQueryCost"] is None


# --- injected faults ------------------------------------------------------------------------

THROTTLED = [{"message": "Throttled",
              "extensions": {"code": "THROTTLED",
                             "documentation": "https://shopify.dev/api/usage/rate-limits"}}]


def test_rate_limit_default_is_200_with_throttled(emulator: ShopifyEmulator,
                                                  client: httpx.Client) -> None:
    emulator.inject("rate_limit", retry_after=2.0)
    response = client.post(ENDPOINT, json={"query": "{ orders(first: 10) { nodes { id } } }"})
    assert response.status_code == 200 and "retry-after" not in response.headers
    body = response.json()
    assert body["errors"] == THROTTLED and "data" not in body
    assert body["extensions"]["cost"]["requestedQueryCost"] == 12
    assert body["extensions"]["cost"]["actualQueryCost"] is None
    assert set(body["extensions"]["cost"]["throttleStatus"]) == {
        "maximumAvailable", "currentlyAvailable", "restoreRate"}
    assert client.post(ENDPOINT, json={"query": "{ shop { name } }"}).json()["data"]


def test_rate_limit_as_429(data: PanPanData) -> None:
    emulator = ShopifyEmulator(data, token=TOKEN, now=END, throttle_status=429)
    with emulator, httpx.Client(base_url=emulator.url,
                                headers={"X-Shopify-Access-Token": TOKEN}) as client:
        emulator.inject("rate_limit", retry_after=2.0)
        with_header = client.post(ENDPOINT, json={"query": "{ shop { name } }"})
        assert with_header.status_code == 429 and with_header.headers["Retry-After"] == "2"
        assert with_header.json()["errors"] == THROTTLED
        emulator.inject("rate_limit", retry_after=1.5)
        assert client.post(ENDPOINT, json={"query": "{ shop { name } }"}).headers[
            "Retry-After"] == "1.5"
        emulator.inject("rate_limit")
        without = client.post(ENDPOINT, json={"query": "{ shop { name } }"})
        assert without.status_code == 429 and "retry-after" not in without.headers
        assert without.json()["errors"] == THROTTLED


def test_server_error_expired_cursor_and_bad_token(emulator: ShopifyEmulator,
                                                   client: httpx.Client) -> None:
    for status in (503, 500):
        emulator.inject("server_error", status=status)
        response = client.post(ENDPOINT, json={"query": "{ shop { name } }"})
        assert response.status_code == status
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
        assert error["extensions"]["requestId"] == response.headers["X-Request-Id"]
        assert error["message"].startswith("Internal error. Looks like something went wrong")
    first = gql(client, ORDERS, first=2)["data"]["orders"]["pageInfo"]["endCursor"]
    emulator.inject("expired_cursor")
    expired = gql(client, ORDERS, first=2, after=first)
    assert expired["data"] is None
    assert expired["errors"] == [{"message": "Invalid cursor for current pagination sort.",
                                  "locations": [{"line": 3, "column": 3}], "path": ["orders"]}]
    assert len(gql(client, ORDERS, first=2, after=first)["data"]["orders"]["edges"]) == 2
    emulator.inject("bad_token")
    refused = client.post(ENDPOINT, json={"query": "{ shop { name } }"})
    assert (refused.status_code, refused.json()) == (401, BAD_TOKEN)
