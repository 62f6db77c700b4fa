"""The HubSpot connector against its emulator: pages, two incremental runs, archived records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from goalpost.app.orchestrator import run_client
from goalpost.sandbox.emulators.base import rfc3339
from goalpost.sandbox.emulators.hubspot import HubSpotEmulator
from goalpost.sandbox.emulators.panpan import Customer, PanPanData

pytestmark = pytest.mark.e2e

TOKEN = "pat-eu1-test-0c3e9a"


@pytest.fixture
def hubspot(panpan_api_data, api_source):
    first_sale = panpan_api_data.orders[0].sold_at
    emulator = HubSpotEmulator(panpan_api_data, token=TOKEN, now=first_sale + timedelta(days=8))
    emulator.start()
    api_source("shop", "crm", "hubspot", emulator.url, {"access_token": TOKEN},
               start_date="2015-01-01T00:00:00Z", page_size=25)
    yield emulator
    emulator.stop()


def steps(run) -> dict[str, dict]:
    return {s.name.removeprefix("extract crm."): {"status": s.status, "error": s.error,
                                                  **s.details}
            for s in run.steps if s.kind == "extract"}


def expected(data, now: datetime, since: datetime) -> dict[str, int]:
    deliveries = [o for o in data.orders if o.channel == "livraison" and since <= o.sold_at <= now]
    return {"contacts": sum(1 for c in data.customers if since <= c.signed_up <= now),
            "deals": len(deliveries)}


def test_two_incremental_runs(hubspot, panpan_api_data, conn, raw_rows):
    since = datetime(2015, 1, 1, tzinfo=UTC)
    first = steps(run_client("shop"))
    assert all(s["status"] == "succeeded" for s in first.values()), first
    want = expected(panpan_api_data, hubspot.now, since)
    assert first["contacts"]["inserted"] == want["contacts"] > 25  # several pages
    assert first["deals"]["inserted"] == want["deals"] > 0
    assert first["contacts"]["pages"] > want["contacts"] // 25
    last_deal = max(o.sold_at for o in panpan_api_data.orders
                    if o.channel == "livraison" and o.sold_at <= hubspot.now)
    assert first["deals"]["cursor"] == {"*": rfc3339(last_deal)}

    before = hubspot.now
    hubspot.now = before + timedelta(days=10)
    second = steps(run_client("shop"))
    total = expected(panpan_api_data, hubspot.now, since)
    assert second["deals"]["inserted"] == total["deals"] - want["deals"]
    assert second["contacts"]["inserted"] == total["contacts"] - want["contacts"]
    assert len(raw_rows("shop", "crm", "deals")) == total["deals"]
    amounts = {row[1]["properties"]["amount"] for row in raw_rows("shop", "crm", "deals")}
    assert all(isinstance(a, str) and "." in a for a in amounts)  # exact decimal strings


def test_a_window_with_more_than_10000_changes_is_split(api_source, conn, raw_rows):
    """HubSpot search pages through 10,000 results at most; 10,500 contacts changed in one
    quarter: the connector sees `total` above the ceiling on the first page and halves the
    window before paging past it (the emulator's 400 past the ceiling has a wording of its
    own, which the connector must not rely on)."""
    signed = datetime(2025, 3, 3, tzinfo=UTC)
    customers = [Customer(f"C{n:05d}", "Anne", f"Nom{n}", f"c{n}@example.fr", "",
                          signed + timedelta(minutes=n * 7), False) for n in range(1, 10_501)]
    data = PanPanData([], [], customers, [], [])
    now = signed + timedelta(days=80)
    with HubSpotEmulator(data, token=TOKEN, now=now) as emulator:
        api_source("shop", "crm", "hubspot", emulator.url, {"access_token": TOKEN},
                   start_date="2025-03-01T00:00:00Z")
        got = steps(run_client("shop"))
        offsets = [int(r.json()["after"]) for r in emulator.requests
                   if r.path.endswith("/contacts/search") and (r.json() or {}).get("after")]
    assert got["contacts"]["status"] == "succeeded", got["contacts"]["error"]
    assert len(raw_rows("shop", "crm", "contacts")) == 10_500
    assert max(offsets) < 10_000  # never paged past the ceiling


def test_archived_contacts_are_flagged_deleted(hubspot, panpan_api_data, conn):
    customer = panpan_api_data.customers[0]
    hubspot.archive("contacts", customer.customer_id, hubspot.now - timedelta(hours=1))
    assert steps(run_client("shop"))["archived_contacts"]["inserted"] == 1
    assert conn.execute("SELECT count(*) FROM shop_raw.crm__archived_contacts "
                        "WHERE _deleted").fetchone() == (1,)


def test_a_contact_edit_indexed_late_is_read_next_run(hubspot, panpan_api_data, raw_rows):
    """HubSpot search lags behind edits: a contact edited five minutes before the run but
    indexed after it, while another edited two minutes before is already searchable, is read
    by the next run thanks to the search streams' lookback."""
    seen = [c for c in panpan_api_data.customers if c.signed_up <= hubspot.now]
    slow, fast = seen[0], seen[1]
    slow_at = hubspot.now - timedelta(minutes=5)
    hubspot.touch("contacts", slow.customer_id, slow_at, search_lag=timedelta(minutes=20))
    hubspot.touch("contacts", fast.customer_id, hubspot.now - timedelta(minutes=2))
    assert steps(run_client("shop"))["contacts"]["status"] == "succeeded"

    hubspot.now += timedelta(minutes=30)
    assert steps(run_client("shop"))["contacts"]["status"] == "succeeded"
    stored = {row[1]["properties"]["email"]: row[1] for row in raw_rows("shop", "crm",
                                                                        "contacts")}
    assert stored[slow.email]["updatedAt"] == rfc3339(slow_at)
