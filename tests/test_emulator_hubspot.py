"""The HubSpot CRM v3 emulator against the small PanPan data set, through plain httpx.

The data set (seed 3, 20 days to 2025-01-31, scale 0.05) holds 83 customers, 3 shops and 28
delivery orders (20 with a customer) totalling 795.55 EUR; at 2025-01-20T00:00Z, 81 customers
had signed up and 13 deliveries had been sold.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from goalpost.sandbox.emulators.base import rfc3339
from goalpost.sandbox.emulators.hubspot import HubSpotEmulator
from goalpost.sandbox.emulators.panpan import Customer, Order, OrderLine, PanPanData, Shop

pytestmark = pytest.mark.e2e

TOKEN = "pat-eu1-test-token"
END = datetime(2025, 2, 1, tzinfo=UTC)
MID = datetime(2025, 1, 20, tzinfo=UTC)
CONTACT_DEFAULTS = {"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate",
                    "lastname"}
DEAL_DEFAULTS = {"amount", "closedate", "createdate", "dealname", "dealstage",
                 "hs_lastmodifieddate", "hs_object_id", "pipeline"}


@pytest.fixture(scope="module")
def data(panpan_api_data: PanPanData) -> PanPanData:
    """The small PanPan data set of conftest.py (seed 3)."""
    return panpan_api_data


@pytest.fixture
def emu(data: PanPanData) -> Iterator[HubSpotEmulator]:
    with HubSpotEmulator(data, token=TOKEN, now=END) as server:
        yield server


@pytest.fixture
def client(emu: HubSpotEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=10) as http:
        yield http


def ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def since(prop: str, op: str, value: str, **extra: object) -> dict:
    body: dict = {"filterGroups": [{"filters": [{"propertyName": prop, "operator": op,
                                                 "value": value}]}],
                  "sorts": [{"propertyName": prop, "direction": "ASCENDING"}]}
    body.update(extra)
    return body


def list_all(client: httpx.Client, kind: str, **params: object) -> list[dict]:
    out, pages, after = [], 0, None
    while True:
        query = {**params, **({"after": after} if after else {})}
        response = client.get(f"/crm/v3/objects/{kind}", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        out += body["results"]
        pages += 1
        assert pages < 100
        if "paging" not in body:
            return out
        after = body["paging"]["next"]["after"]


def search_all(client: httpx.Client, kind: str, body: dict) -> tuple[list[dict], int]:
    out, totals = [], set()
    after = None
    while True:
        response = client.post(f"/crm/v3/objects/{kind}/search",
                               json={**body, **({"after": after} if after else {})})
        assert response.status_code == 200, response.text
        page = response.json()
        totals.add(page["total"])
        out += page["results"]
        if "paging" not in page:
            assert len(totals) == 1
            return out, totals.pop()
        after = page["paging"]["next"]["after"]


# --- auth -------------------------------------------------------------------------------------

def test_bearer_token_accepted_and_refused(emu: HubSpotEmulator, client: httpx.Client) -> None:
    ok = client.get("/crm/v3/objects/contacts")
    assert ok.status_code == 200
    assert ok.headers["X-HubSpot-RateLimit-Daily"] == "500000"
    assert int(ok.headers["X-HubSpot-RateLimit-Daily-Remaining"]) < 500000
    assert ok.headers["X-HubSpot-RateLimit-Max"] == "150"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        refused = httpx.get(f"{emu.url}/crm/v3/objects/contacts", headers=headers)
        assert refused.status_code == 401
        body = refused.json()
        assert body["status"] == "error"
        assert body["category"] == "INVALID_AUTHENTICATION"
        assert body["message"].startswith("Authentication credentials not found.")
        assert body["correlationId"] == refused.headers["X-HubSpot-Correlation-Id"]
    legacy = httpx.get(f"{emu.url}/crm/v3/objects/contacts", params={"hapikey": TOKEN})
    assert legacy.status_code == 401


# --- list endpoint ----------------------------------------------------------------------------

def test_list_pages_return_every_contact_once(client: httpx.Client, data: PanPanData) -> None:
    first = client.get("/crm/v3/objects/contacts").json()
    assert len(first["results"]) == 10  # default limit
    records = list_all(client, "contacts", limit=7)
    ids = [r["id"] for r in records]
    assert len(ids) == 83 == len(set(ids))
    assert ids == sorted(ids, key=int)
    emails = {r["properties"]["email"] for r in records}
    assert emails == {c.email for c in data.customers}
    for record in records:
        assert set(record["properties"]) == CONTACT_DEFAULTS
        assert all(isinstance(v, str) for v in record["properties"].values())
        assert record["archived"] is False
        assert record["properties"]["hs_object_id"] == record["id"]
        assert record["updatedAt"].endswith("Z") and len(record["updatedAt"]) == 24
    assert len(list_all(client, "companies", limit=2)) == 3
    assert len(list_all(client, "deals", limit=100)) == 28


def test_list_link_follows_to_the_next_page(client: httpx.Client) -> None:
    page = client.get("/crm/v3/objects/deals", params={"limit": 20, "properties": "amount"})
    link = page.json()["paging"]["next"]["link"]
    second = client.get(link).json()
    assert len(second["results"]) == 8 and "paging" not in second
    assert set(second["results"][0]["properties"]) == {
        "amount", "createdate", "hs_lastmodifieddate", "hs_object_id"}


def test_list_limit_maximum_and_bad_cursor(client: httpx.Client) -> None:
    assert len(client.get("/crm/v3/objects/contacts?limit=100").json()["results"]) == 83
    for bad in ("101", "0", "ten"):
        response = client.get("/crm/v3/objects/contacts", params={"limit": bad})
        assert response.status_code == 400
        assert response.json()["category"] == "VALIDATION_ERROR"
        assert response.json()["status"] == "error"
    bad_after = client.get("/crm/v3/objects/contacts", params={"after": "not a cursor!"})
    assert bad_after.status_code == 400
    assert bad_after.json()["category"] == "VALIDATION_ERROR"
    unknown = client.get("/crm/v3/objects/widgets")
    assert unknown.status_code == 400
    assert unknown.json()["message"] == "Unable to infer object type from: widgets"


def test_properties_and_single_read(client: httpx.Client, data: PanPanData) -> None:
    customer = data.customers[0]
    records = list_all(client, "contacts", limit=100, properties="phone,nosuchprop",
                       associations="deals")
    record = next(r for r in records if r["id"] == "1000001")
    assert record["properties"] == {
        "phone": customer.phone, "createdate": "2022-01-21T23:00:00.000Z",
        "lastmodifieddate": "2022-01-21T23:00:00.000Z", "hs_object_id": "1000001"}
    c63 = next(r for r in records if r["id"] == "1000063")
    assert len(c63["associations"]["deals"]["results"]) == 5
    one = client.get("/crm/v3/objects/contacts/1000001").json()
    assert one["properties"]["email"] == customer.email
    missing = client.get("/crm/v3/objects/contacts/999")
    assert missing.status_code == 404
    assert missing.json()["category"] == "OBJECT_NOT_FOUND"


# --- deals and money --------------------------------------------------------------------------

def test_deals_money_exact_and_associations(client: httpx.Client, data: PanPanData) -> None:
    deals = list_all(client, "deals", limit=9, associations="contacts,companies")
    orders = [o for o in data.orders if o.channel == "livraison"]
    assert len(deals) == 28
    assert [d["properties"]["amount"] for d in deals] == [str(o.total) for o in orders]
    assert deals[0]["properties"]["amount"] == "20.60"
    assert sum(Decimal(d["properties"]["amount"]) for d in deals) == Decimal("795.55")
    assert {d["properties"]["dealstage"] for d in deals} == {"closedwon"}
    assert {d["properties"]["pipeline"] for d in deals} == {"default"}
    assert set(deals[0]["properties"]) == DEAL_DEFAULTS
    assert sum("contacts" in d.get("associations", {}) for d in deals) == 20
    assert all(len(d["associations"]["companies"]["results"]) == 1 for d in deals)
    assert deals[0]["associations"]["contacts"]["results"] == [
        {"id": "1000068", "type": "deal_to_contact"}]


def test_delivery_return_is_a_negative_deal() -> None:
    when = datetime(2025, 1, 10, 9, 0, tzinfo=UTC)
    sale = Order("LYO-01-20250110-0001", when, "LYO-01", "livraison", "C000001",
                 [OrderLine(1, "PAT-010", "Tarte", Decimal("2"), Decimal("4.20"),
                            Decimal("0.00"), Decimal("8.40"))])
    refund = Order("RET-LYO-01-20250110-0001", when + timedelta(hours=3), "LYO-01",
                   "livraison", "C000001",
                   [OrderLine(1, "PAT-010", "Tarte", Decimal("-1"), Decimal("4.20"),
                              Decimal("0.00"), Decimal("-4.20"))])
    data = PanPanData([Shop("LYO-01", "PanPan Croix-Rousse", "Lyon", date(2011, 3, 1))], [],
                      [Customer("C000001", "Ana", "Roy", "ana@example.fr", "", when, False)],
                      [sale, refund], [])
    with HubSpotEmulator(data, token=TOKEN, now=END) as server:
        body = httpx.get(f"{server.url}/crm/v3/objects/deals",
                         params={"properties": "amount,dealname,panpan_receipt_no"},
                         headers={"Authorization": f"Bearer {TOKEN}"}).json()
    amounts = [(r["properties"]["dealname"], r["properties"]["amount"]) for r in body["results"]]
    assert amounts == [("Livraison LYO-01-20250110-0001", "8.40"),
                       ("Retour livraison LYO-01-20250110-0001", "-4.20")]


# --- search -----------------------------------------------------------------------------------

def test_search_bounds_on_modified_date(client: httpx.Client, data: PanPanData) -> None:
    orders = [o for o in data.orders if o.channel == "livraison"]
    pivot = orders[13].sold_at  # 2025-01-20T17:44Z
    counts = {}
    for op in ("GTE", "GT", "LT", "LTE", "EQ"):
        results, total = search_all(client, "deals",
                                    since("hs_lastmodifieddate", op, ms(pivot), limit=4))
        assert total == len(results)
        counts[op] = total
    assert counts == {"GTE": 15, "GT": 14, "LT": 13, "LTE": 14, "EQ": 1}
    iso, _ = search_all(client, "deals", since("hs_lastmodifieddate", "GTE",
                                               "2025-01-20T17:44:00Z"))
    assert len(iso) == 15
    stamps = [r["properties"]["hs_lastmodifieddate"] for r in iso]
    assert stamps == sorted(stamps) and stamps[0] == "2025-01-20T17:44:00.000Z"
    contacts, total = search_all(client, "contacts",
                                 since("lastmodifieddate", "GTE", ms(MID), limit=200))
    assert total == 2 == len(contacts)
    between = {"filterGroups": [{"filters": [
        {"propertyName": "amount", "operator": "BETWEEN", "value": "20.60",
         "highValue": "25.30"}]}, {"filters": [
        {"propertyName": "dealname", "operator": "EQ",
         "value": "livraison lyo-02-20250131-0016"}]}]}
    found, total = search_all(client, "deals", body=between)
    assert total == 10
    assert {r["properties"]["amount"] for r in found} >= {"20.60", "25.30", "14.80"}


def test_search_pages_every_record_once_with_total(client: httpx.Client) -> None:
    first = client.post("/crm/v3/objects/contacts/search", json={"limit": 30}).json()
    assert first["total"] == 83 and first["paging"]["next"] == {"after": "30"}
    results, total = search_all(client, "contacts", {"limit": 30})
    assert total == 83 and len({r["id"] for r in results}) == 83
    created = [r["properties"]["createdate"] for r in results]
    assert created == sorted(created)  # default order: createdate ascending


def test_search_validation_errors(client: httpx.Client) -> None:
    def post(kind: str, body: dict) -> httpx.Response:
        return client.post(f"/crm/v3/objects/{kind}/search", json=body)

    assert post("deals", {"limit": 200}).status_code == 200
    bad = [("deals", {"limit": 201}),
           ("contacts", since("hs_lastmodifieddate", "GTE", "0")),  # contacts' name differs
           ("deals", since("lastmodifieddate", "GTE", "0")),
           ("deals", since("hs_lastmodifieddate", "AFTER", "0")),
           ("deals", since("hs_lastmodifieddate", "GTE", "yesterday")),
           ("deals", {"filterGroups": [{"filters": []}] * 6}),
           ("deals", {"after": "abc"}),
           ("deals", {"limits": 10}),
           ("deals", {"sorts": ["createdate", "amount"]})]
    for kind, body in bad:
        response = post(kind, body)
        assert response.status_code == 400, body
        assert response.json()["category"] == "VALIDATION_ERROR"


def test_search_ceiling_gives_400(data: PanPanData) -> None:
    with HubSpotEmulator(data, token=TOKEN, now=END, search_ceiling=10) as server, \
            httpx.Client(base_url=server.url,
                         headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        page = http.post("/crm/v3/objects/deals/search", json={"limit": 6, "after": "6"}).json()
        assert page["total"] == 28 and len(page["results"]) == 4
        assert page["paging"]["next"]["after"] == "10"
        beyond = http.post("/crm/v3/objects/deals/search", json={"limit": 6, "after": "10"})
        assert beyond.status_code == 400
        assert beyond.json()["category"] == "VALIDATION_ERROR"
        assert beyond.json()["status"] == "error"


# --- clock, touch, archive --------------------------------------------------------------------

def test_clock_makes_new_records_appear(emu: HubSpotEmulator, client: httpx.Client) -> None:
    emu.now = MID
    assert len(list_all(client, "contacts", limit=100)) == 81
    first, total = search_all(client, "deals", since("hs_lastmodifieddate", "GTE", "0"))
    assert total == 13
    bookmark = first[-1]["properties"]["hs_lastmodifieddate"]
    emu.now = END
    second, total = search_all(client, "deals", since("hs_lastmodifieddate", "GT", bookmark))
    assert total == 15
    assert not {r["id"] for r in first} & {r["id"] for r in second}
    assert len(list_all(client, "contacts", limit=100)) == 83


def test_touch_brings_a_record_back(emu: HubSpotEmulator, client: httpx.Client) -> None:
    bookmark = ms(END)
    assert search_all(client, "contacts", since("lastmodifieddate", "GTE", bookmark))[1] == 0
    edit = END + timedelta(hours=2, milliseconds=345)
    emu.touch("customers", "C000005", edit)
    emu.touch("companies", "2000002", edit)
    emu.touch("deals", "LYO-02-20250112-0001", edit + timedelta(days=1))  # in the future
    assert search_all(client, "contacts", since("lastmodifieddate", "GTE", bookmark))[1] == 0
    emu.now = END + timedelta(hours=3)
    found, total = search_all(client, "contacts", since("lastmodifieddate", "GTE", bookmark))
    assert total == 1 and found[0]["id"] == "1000005"
    assert found[0]["updatedAt"] == "2025-02-01T02:00:00.345Z"
    assert found[0]["properties"]["lastmodifieddate"] == "2025-02-01T02:00:00.345Z"
    assert found[0]["createdAt"] != found[0]["updatedAt"]
    companies, _ = search_all(client, "companies", since("hs_lastmodifieddate", "GTE", bookmark))
    assert [c["properties"]["name"] for c in companies] == ["PanPan Part-Dieu"]
    assert search_all(client, "deals", since("hs_lastmodifieddate", "GTE", bookmark))[1] == 0
    emu.now = END + timedelta(days=2)
    deals, _ = search_all(client, "deals", since("hs_lastmodifieddate", "GTE", bookmark))
    assert [d["id"] for d in deals] == ["3000001"]
    with pytest.raises(KeyError):
        emu.touch("deals", "nope", END)


def test_archived_records_leave_lists_and_search(emu: HubSpotEmulator,
                                                 client: httpx.Client) -> None:
    at = END - timedelta(hours=1)
    emu.archive("deals", "3000002", at)
    assert len(list_all(client, "deals", limit=100)) == 27
    assert search_all(client, "deals", {})[1] == 27
    archived = client.get("/crm/v3/objects/deals", params={"archived": "true"}).json()
    assert [r["id"] for r in archived["results"]] == ["3000002"]
    assert archived["results"][0]["archived"] is True
    assert archived["results"][0]["archivedAt"] == "2025-01-31T23:00:00.000Z"
    assert client.get("/crm/v3/objects/deals/3000002").status_code == 404
    assert client.get("/crm/v3/objects/deals?archived=maybe").status_code == 400


def test_merge_makes_a_new_contact_and_retires_both_ids(emu: HubSpotEmulator,
                                                        client: httpx.Client,
                                                        data: PanPanData) -> None:
    at = END + timedelta(hours=1)
    new_id = emu.merge("contacts", "1000063", "C000017", at)
    assert new_id == "1000084"
    assert len(list_all(client, "contacts", limit=100)) == 83  # the clock is not there yet
    emu.now = at
    records = {r["id"]: r for r in list_all(
        client, "contacts", limit=100, properties="email,hs_merged_object_ids",
        associations="deals")}
    assert len(records) == 82 and not {"1000063", "1000017"} & set(records)
    merged = records[new_id]
    c63, c17 = (next(c for c in data.customers if c.customer_id == key)
               for key in ("C000063", "C000017"))
    assert merged["properties"]["email"] == c63.email
    assert merged["properties"]["hs_merged_object_ids"] == "1000063;1000017"
    assert merged["properties"]["createdate"] == rfc3339(min(c63.signed_up, c17.signed_up))
    assert merged["createdAt"] == merged["properties"]["createdate"]
    assert merged["properties"]["lastmodifieddate"] == rfc3339(at)
    deals = sum(1 for o in data.orders if o.channel == "livraison" and o.sold_at <= at
                and o.customer_id in ("C000063", "C000017"))
    assert len(merged["associations"]["deals"]["results"]) == deals == 7
    linked = {d["associations"]["contacts"]["results"][0]["id"]
              for d in list_all(client, "deals", limit=100, associations="contacts")
              if d["id"] in {r["id"] for r in merged["associations"]["deals"]["results"]}}
    assert linked == {new_id}
    found, _ = search_all(client, "contacts", since("lastmodifieddate", "GTE", ms(END)))
    assert [r["id"] for r in found] == [new_id]
    assert client.get("/crm/v3/objects/contacts/1000017").json()["id"] == new_id
    archived = client.get("/crm/v3/objects/contacts", params={"archived": "true"}).json()
    assert archived["results"] == []
    with pytest.raises(ValueError):
        emu.merge("contacts", "1000063", new_id, at)


# --- injected faults --------------------------------------------------------------------------

def test_rate_limit_with_and_without_retry_after(emu: HubSpotEmulator,
                                                 client: httpx.Client) -> None:
    emu.inject("rate_limit", retry_after=2)
    emu.inject("rate_limit", retry_after=None)
    with_header = client.get("/crm/v3/objects/contacts")
    without = client.post("/crm/v3/objects/contacts/search", json={})
    for response in (with_header, without):
        assert response.status_code == 429
        body = response.json()
        assert set(body) == {"status", "message", "errorType", "correlationId", "policyName"}
        assert body["status"] == "error"
        assert body["message"] == "You have reached your secondly limit."
        assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "SECONDLY"
        assert response.headers["X-HubSpot-RateLimit-Secondly-Remaining"] == "0"
    assert with_header.headers["Retry-After"] == "2"
    assert "Retry-After" not in without.headers
    assert client.get("/crm/v3/objects/contacts").status_code == 200


def test_server_error_expired_cursor_and_bad_token(emu: HubSpotEmulator,
                                                   client: httpx.Client) -> None:
    emu.inject("server_error", status=503)
    failed = client.get("/crm/v3/objects/deals")
    assert failed.status_code == 503
    assert failed.json()["status"] == "error" and "correlationId" in failed.json()
    emu.inject("expired_cursor")
    stale = client.post("/crm/v3/objects/deals/search", json={"after": "20"})
    assert stale.status_code == 400
    assert stale.json()["category"] == "VALIDATION_ERROR"
    assert "'20'" in stale.json()["message"]
    emu.inject("bad_token")
    refused = client.get("/crm/v3/objects/deals")
    assert refused.status_code == 401
    assert refused.json()["category"] == "INVALID_AUTHENTICATION"
    assert client.get("/crm/v3/objects/deals").status_code == 200


def test_date_versioned_path(client: httpx.Client) -> None:
    response = client.post("/crm/objects/2026-03/deals/search", json={"limit": 1})
    assert response.status_code == 200 and response.json()["total"] == 28
    assert "X-HubSpot-RateLimit-Max" not in response.headers
    assert response.headers["X-HubSpot-RateLimit-Daily"] == "500000"


def test_unknown_path_and_method(client: httpx.Client) -> None:
    assert client.get("/crm/v4/objects/deals").status_code == 404
    assert client.delete("/crm/v3/objects/deals/3000001").status_code == 405
