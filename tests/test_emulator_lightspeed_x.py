"""The Lightspeed X-Series emulator against its contract: bearer auth, the global version
cursor (`after`, `page_size`, `{data, version{min,max}}`), the clock, touch(), delete(),
faults, the request budget and exact money."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from goalpost.sandbox.emulators.lightspeed_x import LightspeedXEmulator, ls_id
from goalpost.sandbox.emulators.panpan import Order, OrderLine, PanPanData

pytestmark = pytest.mark.e2e

NOW = datetime(2025, 1, 25, tzinfo=UTC)
LATER = datetime(2025, 2, 1, tzinfo=UTC)
AUTH = {"Authorization": "Bearer emulator-token"}


@pytest.fixture(scope="module")
def data(panpan_api_data: PanPanData) -> PanPanData:
    """The small PanPan data set of conftest.py (seed 3)."""
    return panpan_api_data


@pytest.fixture
def ls(data: PanPanData) -> Iterator[LightspeedXEmulator]:
    emulator = LightspeedXEmulator(data, now=NOW)
    emulator.start()
    yield emulator
    emulator.stop()


def get(ls: LightspeedXEmulator, resource: str, headers: dict[str, str] | None = None,
        **params: object) -> httpx.Response:
    return httpx.get(f"{ls.url}/api/2.0/{resource}", params=params,
                     headers=AUTH if headers is None else headers)


def feed(ls: LightspeedXEmulator, resource: str, after: int = 0, page_size: int = 1000,
         **params: object) -> tuple[list[dict], int, int]:
    """Every record after `after`, the last version seen and the number of requests."""
    records, requests = [], 0
    while True:
        body = get(ls, resource, after=after, page_size=page_size, **params).json()
        requests += 1
        if not body["data"]:
            assert body["version"] == {"min": None, "max": None}
            return records, after, requests
        versions = [r["version"] for r in body["data"]]
        assert versions == sorted(versions) and versions[0] > after
        assert body["version"] == {"min": versions[0], "max": versions[-1]}
        records += body["data"]
        after = body["version"]["max"]


def test_auth_accepted_and_refused(ls):
    assert get(ls, "sales").status_code == 200
    for headers in ({}, {"Authorization": "Bearer nope"},
                    {"Authorization": "Zoho-oauthtoken emulator-token"}):
        response = get(ls, "sales", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "Unauthorized"


def test_pages_return_every_sale_exactly_once(ls, data):
    records, last, requests = feed(ls, "sales", page_size=50)
    expected = [o.receipt_no for o in data.orders if o.sold_at <= NOW]
    assert len(expected) == 294
    assert requests == 7  # 6 pages of up to 50, then the empty page that ends the feed
    assert [r["invoice_number"] for r in records] == expected  # version order = sale order
    assert len({r["id"] for r in records}) == 294
    assert last == records[-1]["version"]
    assert all(r["state"] == "closed" and r["deleted_at"] is None for r in records)
    # Deliveries are closed sales with the delivery attribute (legacy status DISPATCHED_CLOSED).
    assert {(r["status"], tuple(r["attributes"])) for r in records} == {
        ("CLOSED", ()), ("DISPATCHED_CLOSED", ("delivery",))}
    one_page = get(ls, "sales").json()  # default page_size 1000 holds them all
    assert [r["id"] for r in one_page["data"]] == [r["id"] for r in records]


def test_every_resource_and_its_count(ls, data):
    counts = {resource: len(feed(ls, resource, page_size=40)[0])
              for resource in ("outlets", "registers", "products", "customers", "sales",
                               "inventory")}
    assert counts == {"outlets": 3, "registers": 3, "products": 42, "customers": 82,
                      "sales": 294, "inventory": 123}
    assert counts["customers"] == sum(c.signed_up <= NOW for c in data.customers)
    versions = [r["version"] for resource in counts for r in feed(ls, resource)[0]]
    assert len(set(versions)) == len(versions)  # one global counter: no two alike


def test_page_size_default_maximum_and_errors(data):
    orders = [replace(o, receipt_no=f"{o.receipt_no}-{n}") for n in range(3)
              for o in data.orders]
    big = replace(data, orders=sorted(orders, key=lambda o: (o.sold_at, o.receipt_no)))
    with LightspeedXEmulator(big, now=LATER) as ls:
        assert len(get(ls, "sales").json()["data"]) == 1000  # the default
        assert len(get(ls, "sales", page_size=5000).json()["data"]) == 1350  # the maximum
        for params in ({"page_size": 5001}, {"page_size": 0}, {"page_size": "ten"},
                       {"after": -1}, {"after": "v1"}, {"deleted": "maybe"}):
            response = get(ls, "sales", **params)
            assert response.status_code == 400, params
            assert response.json()["error"] == "Bad Request"
        assert get(ls, "sales", date_from="2030-01-01", page_size=5000).json()["data"] \
            .__len__() == 1350  # date filters are ignored, as the doc warns


def test_after_is_exclusive(ls):
    records = get(ls, "sales").json()["data"]
    pivot = records[99]["version"]
    rest = feed(ls, "sales", after=pivot)[0]
    assert len(rest) == 294 - 100
    assert rest[0]["id"] == records[100]["id"]
    assert feed(ls, "sales", after=pivot - 1)[0][0]["id"] == records[99]["id"]
    assert get(ls, "sales", after=records[-1]["version"]).json()["data"] == []


def test_clock_makes_new_records_appear(ls, data):
    sales, cursor, _ = feed(ls, "sales")
    counts, count_cursor, _ = feed(ls, "inventory")
    assert (len(sales), len(counts)) == (294, 123)
    ls.now = LATER
    new = feed(ls, "sales", after=cursor)[0]
    assert len(new) == 450 - 294 == sum(NOW < o.sold_at <= LATER for o in data.orders)
    assert all(r["sale_date"] > "2025-01-25T00:00:00+00:00" for r in new)
    assert not {r["id"] for r in new} & {r["id"] for r in sales}
    recounted = feed(ls, "inventory", after=count_cursor)[0]
    assert len(recounted) == len({(c.sku, c.shop_id) for c in data.stock_counts
                                  if NOW < c.counted_at <= LATER}) == 123
    latest = {(c.sku, c.shop_id): c.on_hand for c in data.stock_counts}
    assert {(r["product_id"], r["outlet_id"]): r["inventory_level"] for r in recounted} == {
        (ls_id("products", sku), ls_id("outlets", shop)): level
        for (sku, shop), level in latest.items()}
    # X-Series inventory records carry no timestamps: only a higher version.
    assert not any({"created_at", "updated_at"} & set(r) for r in [*counts, *recounted])
    assert min(r["version"] for r in recounted) > count_cursor
    assert feed(ls, "customers", after=feed(ls, "customers")[1])[0] == []


def test_touch_gives_a_new_higher_version(ls, data):
    _, cursor, _ = feed(ls, "sales")
    receipt = data.orders[3].receipt_no
    ls.touch("sales", receipt, NOW + timedelta(hours=1))
    assert feed(ls, "sales", after=cursor)[0] == []  # not yet: the clock is behind
    ls.now = NOW + timedelta(hours=2)
    touched = feed(ls, "sales", after=cursor)[0]
    assert [r["invoice_number"] for r in touched] == [receipt]
    assert touched[0]["version"] > cursor
    assert touched[0]["updated_at"] == "2025-01-25T01:00:00+00:00"
    assert touched[0]["created_at"] == touched[0]["sale_date"]
    everything = feed(ls, "sales")[0]
    assert len(everything) == 294 and everything[-1]["invoice_number"] == receipt
    ls.now = LATER
    _, cursor, _ = feed(ls, "sales")
    ls.touch("sales", data.orders[5].receipt_no, NOW)  # dated before sales already synced
    late = feed(ls, "sales", after=cursor)[0]
    assert [(r["invoice_number"], r["updated_at"]) for r in late] == [
        (data.orders[5].receipt_no, "2025-01-25T00:00:00+00:00")]
    assert late[0]["version"] > cursor  # versions are handed out at write time
    product_id = ls_id("products", "PAI-002")
    _, cursor, _ = feed(ls, "products")
    ls.touch("products", product_id, NOW)  # in the past: still a version above the cursor
    assert [r["sku"] for r in feed(ls, "products", after=cursor)[0]] == ["PAI-002"]
    with pytest.raises(ValueError):
        ls.touch("brands", "x", NOW)
    with pytest.raises(KeyError):
        ls.touch("sales", "NO-SUCH-RECEIPT", NOW)


def test_delete_sets_deleted_at(ls):
    _, cursor, _ = feed(ls, "products")
    ls.delete("products", "PAI-001", NOW)
    assert feed(ls, "products", after=cursor)[0] == []  # left out by default
    deleted = feed(ls, "products", after=cursor, deleted="true")[0]
    assert [(r["sku"], r["deleted_at"]) for r in deleted] == [
        ("PAI-001", "2025-01-25T00:00:00+00:00")]
    assert len(feed(ls, "products")[0]) == 41
    assert len(feed(ls, "products", deleted="true")[0]) == 42


def test_faults_in_x_series_shape(ls):
    ls.inject("rate_limit", retry_after=3)
    limited = get(ls, "sales")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert limited.json()["error"] == "Too Many Requests"
    ls.inject("rate_limit")
    limited = get(ls, "sales")
    assert limited.status_code == 429 and "Retry-After" not in limited.headers
    ls.inject("server_error", status=503)
    failed = get(ls, "sales")
    assert failed.status_code == 503 and failed.json()["error"] == "Service Unavailable"
    ls.inject("expired_cursor")
    expired = get(ls, "sales", after=5)
    assert expired.status_code == 400
    assert "older than the retained history" in expired.json()["details"]
    ls.inject("bad_token")
    assert get(ls, "sales").status_code == 401
    assert get(ls, "sales").status_code == 200
    assert get(ls, "brands").status_code == 404
    assert httpx.post(f"{ls.url}/api/2.0/sales", headers=AUTH).status_code == 405


def test_after_older_than_the_history_is_refused(data):
    with LightspeedXEmulator(data, now=NOW, history=timedelta(days=7)) as ls:
        records = get(ls, "sales").json()["data"]
        assert len(records) == 294  # after=0 is always a full resync
        old = [r for r in records if r["sale_date"] < "2025-01-18T00:00:00+00:00"]
        refused = get(ls, "sales", after=old[-1]["version"])
        assert refused.status_code == 400
        assert "older than the retained history" in refused.json()["details"]
        recent = records[len(old)]["version"]
        assert len(feed(ls, "sales", after=recent)[0]) == 294 - len(old) - 1


def test_request_budget_when_enforced(data):
    with LightspeedXEmulator(data, now=NOW, enforce_rate_limit=True, rate_limit=3) as ls:
        answers = [get(ls, "outlets") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
        assert answers[0].headers["X-RateLimit-Limit"] == "3"
        assert 1 <= int(answers[3].headers["Retry-After"]) <= 300
        assert len(ls.requests) == 4
        assert all(r.headers.get("authorization") == "***" for r in ls.requests)
    assert LightspeedXEmulator(data).rate_limit == 300 * 3 + 50


def test_money_is_exact_on_the_wire(ls, data):
    response = get(ls, "sales", page_size=1)
    first = data.orders[0]
    assert first.total == Decimal("5.10")
    assert '"total_price":4.84,"total_tax":0.26' in response.text
    assert '"price_total":3.70,"tax_total":0.20' in response.text
    sales = json.loads(get(ls, "sales").content, parse_float=Decimal)["data"]
    by_receipt = {o.receipt_no: o for o in data.orders}
    for sale in sales:
        order = by_receipt[sale["invoice_number"]]
        assert sale["total_price"] + sale["total_tax"] == order.total
        assert sale["total_price"] == sum(li["price_total"] for li in sale["line_items"])
        for item, line in zip(sale["line_items"], order.lines, strict=True):
            assert item["price_total"] + item["tax_total"] == line.line_total
            assert item["quantity"] == line.quantity
            assert item["product_id"] == ls_id("products", line.sku)
    products = json.loads(get(ls, "products").content, parse_float=Decimal)["data"]
    assert {p["sku"]: (p["price_including_tax"], p["supply_price"]) for p in products} == {
        p.sku: (p.unit_price, p.unit_cost) for p in data.products}
    first_product = get(ls, "products", page_size=1).text  # BOI-001, Eau minérale, 1.50
    assert '"handle":"eau-minerale-50-cl"' in first_product
    assert '"price_including_tax":1.50,"price_excluding_tax":1.42180,"supply_price":0.45' \
        in first_product


def test_without_tax_totals_are_the_receipt_totals(data):
    with LightspeedXEmulator(data, now=NOW, tax_rate="0") as ls:
        sales = json.loads(get(ls, "sales").content, parse_float=Decimal)["data"]
        totals = {o.receipt_no: o.total for o in data.orders}
        assert all(s["total_price"] == totals[s["invoice_number"]] and s["total_tax"] == 0
                   for s in sales)


def test_a_return_is_a_closed_sale_with_negative_quantities(data):
    original = data.orders[10]
    back = Order(f"RET-{original.receipt_no}", original.sold_at + timedelta(hours=2),
                 original.shop_id, original.channel, original.customer_id,
                 [OrderLine(1, line.sku, line.name, -line.quantity, line.unit_price,
                            -line.discount, -line.line_total) for line in original.lines[:1]])
    orders = sorted([*data.orders, back], key=lambda o: (o.sold_at, o.receipt_no))
    with LightspeedXEmulator(replace(data, orders=orders), now=NOW) as ls:
        sales = json.loads(get(ls, "sales").content, parse_float=Decimal)["data"]
        assert len(sales) == 295
        refund = next(s for s in sales if s["invoice_number"] == back.receipt_no)
        assert refund["status"] == "CLOSED"
        assert refund["return_for"] == ls_id("sales", original.receipt_no)
        assert [li["quantity"] for li in refund["line_items"]] == [-original.lines[0].quantity]
        assert refund["total_price"] + refund["total_tax"] == -original.lines[0].line_total < 0
        assert refund["total_tax"] <= 0


def test_a_sale_called_off_before_payment_is_voided(data):
    sale = next(o for o in data.orders if o.sold_at < NOW - timedelta(hours=1))
    called_off = sale.sold_at + timedelta(minutes=20)
    orders = [replace(o, cancelled_at=called_off) if o is sale else o for o in data.orders]
    with LightspeedXEmulator(replace(data, orders=orders), now=sale.sold_at) as ls:
        before, cursor, _ = feed(ls, "sales")
        assert (before[-1]["invoice_number"], before[-1]["state"]) == (sale.receipt_no, "closed")
        ls.now = NOW
        voided = [r for r in feed(ls, "sales", after=cursor)[0]
                  if r["invoice_number"] == sale.receipt_no]
        assert [(r["status"], r["state"]) for r in voided] == [("VOIDED", "voided")]
        assert voided[0]["updated_at"] == called_off.isoformat()
        assert voided[0]["version"] > before[-1]["version"]
        assert voided[0]["line_items"] == before[-1]["line_items"]  # a void keeps its lines
        assert sum(r["invoice_number"] == sale.receipt_no for r in feed(ls, "sales")[0]) == 1
