"""The Square connector against its emulator: pages, two incremental runs, exact money."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from goalpost.app.orchestrator import run_client
from goalpost.sandbox.emulators.base import rfc3339
from goalpost.sandbox.emulators.square import SquareEmulator

pytestmark = pytest.mark.e2e

TOKEN = "EAAAl-square-test-9b1f"
SINCE = datetime(2015, 1, 1, tzinfo=UTC)


@pytest.fixture
def square(panpan_api_data, api_source):
    first_sale = panpan_api_data.orders[0].sold_at
    emulator = SquareEmulator(panpan_api_data, token=TOKEN, now=first_sale + timedelta(days=8))
    emulator.start()
    api_source("shop", "pos", "square", emulator.url, {"access_token": TOKEN},
               start_date="2015-01-01T00:00:00Z", page_size=40)
    yield emulator
    emulator.stop()


def steps(run) -> dict[str, dict]:
    return {s.name.removeprefix("extract pos."): {"status": s.status, "error": s.error,
                                                  **s.details}
            for s in run.steps if s.kind == "extract"}


def visible_orders(data, now: datetime) -> list:
    return [o for o in data.orders if SINCE <= o.sold_at <= now]


def test_two_incremental_runs(square, panpan_api_data, raw_rows):
    first = steps(run_client("shop"))
    assert all(s["status"] == "succeeded" for s in first.values()), first
    orders = visible_orders(panpan_api_data, square.now)
    assert first["locations"]["inserted"] == len(panpan_api_data.shops)
    assert first["orders"]["inserted"] == len(orders) > 40
    assert first["orders"]["pages"] >= len(orders) // 40
    customers = [c for c in panpan_api_data.customers if SINCE <= c.signed_up <= square.now]
    assert first["customers"]["inserted"] == len(customers)
    # Items, their variations (asked for on their own too) and their categories.
    assert first["catalog"]["inserted"] == 2 * len(panpan_api_data.products) + len(
        {p.category for p in panpan_api_data.products})
    cursor = first["orders"]["cursor"]
    assert list(cursor.values()) == [max(r[1]["updated_at"] for r in raw_rows("shop", "pos",
                                                                           "orders"))]

    square.now += timedelta(days=10)
    second = steps(run_client("shop"))
    more = visible_orders(panpan_api_data, square.now)
    assert second["orders"]["inserted"] == len(more) - len(orders)
    assert len(raw_rows("shop", "pos", "orders")) == len(more)
    # Money is integer minor units, exactly the receipt's total in cents.
    by_ref = {r[1].get("reference_id") or r[1]["id"]: r[1] for r in raw_rows("shop", "pos",
                                                                               "orders")}
    sample = more[-1]
    stored = next(o for o in by_ref.values()
                  if sample.receipt_no in (o.get("reference_id"), o.get("id")))
    assert stored["total_money"] == {"amount": int(sample.total * 100), "currency": "EUR"}
    assert rfc3339(sample.sold_at) <= stored["updated_at"]


def extract_all(conn, slug: str, emulator, *, sleeps: list[float]) -> dict:
    """Every stream of a Square source through the engine directly, with instant backoff and
    a short timeout, so fault tests run fast."""
    from goalpost.core.warehouse import tenants
    from goalpost.pipelines.connectors.engine import run_stream
    from goalpost.pipelines.connectors.http import ApiClient
    from goalpost.pipelines.connectors.manifest import load_manifest

    tenants.provision(conn, slug)
    manifest = load_manifest("square")
    manifest = manifest.model_copy(update={"retry": manifest.retry.model_copy(
        update={"timeout_seconds": 0.5, "max_retries": 10})})
    settings = {"access_token": TOKEN, "base_url": emulator.url, "page_size": 40,
                "start_date": "2015-01-01T00:00:00Z", "square_version": "2024-07-17"}
    client = ApiClient(manifest, settings, slug=slug, source="pos", sleep=sleeps.append)
    try:
        return {name: run_stream(conn, client, slug=slug, source="pos", manifest=manifest,
                                 name=name, settings=settings, run_id=1)
                for name in manifest.streams}
    finally:
        client.close()


def test_faults_end_with_exactly_a_clean_runs_records(square, conn, raw_rows):
    sleeps: list[float] = []
    extract_all(conn, "clean", square, sleeps=sleeps)
    for kind, extra in [("rate_limit", {"retry_after": 2}), ("rate_limit", {}),
                        ("server_error", {"count": 3, "status": 503}),
                        ("server_error", {"count": 2, "status": 500}),
                        ("timeout", {"delay": 1.0}), ("cut", {}), ("malformed", {}),
                        ("expired_cursor", {})]:
        square.inject(kind, path="/v2/orders/search", **extra)
    sleeps.clear()
    got = extract_all(conn, "shop", square, sleeps=sleeps)
    assert got["orders"].retries == 10 and len(sleeps) == 10
    for stream in ("locations", "orders", "customers", "catalog", "inventory_counts"):
        assert raw_rows("shop", "pos", stream) == raw_rows("clean", "pos", stream), stream


def test_rejected_token_is_a_clear_failure(square, conn):
    from goalpost.core.errors import GoalpostError

    square.inject("bad_token", count=5)
    with pytest.raises(GoalpostError) as raised:
        extract_all(conn, "shop", square, sleeps=[])
    assert "access token was refused" in str(raised.value) and TOKEN not in str(raised.value)
    assert "refresh_token" in str(raised.value)  # says how to renew it


def test_a_customer_edit_indexed_late_is_read_next_run(square, panpan_api_data, raw_rows):
    """SearchCustomers lags behind edits: a customer edited five minutes before the run but
    indexed after it, while another edit two minutes before the run is already searchable,
    is read by the next run thanks to the stream's lookback."""
    seen = [c for c in panpan_api_data.customers if c.signed_up <= square.now]
    slow, fast = seen[0], seen[1]
    slow_at = square.now - timedelta(minutes=5)
    square.touch("customers", slow.customer_id, slow_at, search_lag=timedelta(minutes=20))
    square.touch("customers", fast.customer_id, square.now - timedelta(minutes=2))
    first = steps(run_client("shop"))
    assert first["customers"]["status"] == "succeeded", first["customers"]["error"]

    square.now += timedelta(minutes=30)
    assert steps(run_client("shop"))["customers"]["status"] == "succeeded"
    stored = {row[1]["reference_id"]: row[1] for row in raw_rows("shop", "pos", "customers")}
    assert stored[slow.customer_id]["updated_at"] == rfc3339(slow_at)
