"""Alerts end to end: a client's stock falls under its reorder point through real runs
(files -> raw -> SQLMesh marts -> alert rules), and a real SMTP server on loopback receives
the emails.

One email when the stock falls under the threshold; none at the next run with no change; the
rule re-arms when the stock recovers and fires again when it falls again; a snoozed rule stays
silent until its time, then tells what still holds. With the SMTP server down the run still
succeeds, the delivery is retried and recorded, and the next evaluation delivers it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import pytest
from csv_files import write_csv
from smtp_inbox import Inbox, free_port

from goalpost.alerts import delivery
from goalpost.alerts.manage import check, snooze
from goalpost.app.orchestrator import run_client

pytestmark = pytest.mark.e2e

SLUG = "stocky"
RULE = "low_stock"


def count(project: Path, day: str, **on_hand: int) -> None:
    """A new stock count export: {sku: units} at the shop on `day`."""
    write_csv(project / "exports" / SLUG / f"stock_{day}.csv", [
        {"count_date": day, "shop_id": "LYO-01", "sku": sku.replace("_", "-"),
         "on_hand": str(units)} for sku, units in on_hand.items()])


def write_client(project: Path) -> None:
    """A one-shop bakery: croissants (reorder point 40) and bread (reorder point 10), a few
    receipts, and an alert rule on each product's stock against its reorder point."""
    folder = project / "exports" / SLUG
    write_csv(folder / "shops.csv", [{"shop_id": "LYO-01", "shop_name": "Croix-Rousse"}])
    write_csv(folder / "products.csv", [
        {"sku": "VIE-001", "name": "Croissant", "unit_price": "1.30", "reorder_point": "40"},
        {"sku": "PAI-001", "name": "Pain de campagne", "unit_price": "4.20",
         "reorder_point": "10"}])
    write_csv(folder / "sales.csv", [
        {"receipt_no": f"T-{i}", "line_no": "1", "sold_at": f"2025-01-{10 + i} 08:00",
         "shop_id": "LYO-01", "sku": "VIE-001", "quantity": "3", "unit_price": "1.30"}
        for i in range(3)])
    streams = [
        {"name": "shops", "path": f"exports/{SLUG}/shops.csv", "entity": "locations",
         "primary_key": ["shop_id"], "columns": {"location_id": "shop_id", "name": "shop_name"}},
        {"name": "products", "path": f"exports/{SLUG}/products.csv", "entity": "products",
         "primary_key": ["sku"], "columns": {"product_id": "sku"}},
        {"name": "sales", "path": f"exports/{SLUG}/sales.csv", "entity": "order_lines",
         "primary_key": ["receipt_no", "line_no"],
         "columns": {"order_id": "receipt_no", "line_number": "line_no",
                     "ordered_at": "sold_at", "location_id": "shop_id", "product_id": "sku"}},
        {"name": "stock", "path": f"exports/{SLUG}/stock_*.csv", "entity": "inventory_levels",
         "primary_key": ["count_date", "shop_id", "sku"],
         "columns": {"counted_on": "count_date", "location_id": "shop_id",
                     "product_id": "sku"}},
    ]
    document = {
        "name": "Stocky", "timezone": "Europe/Paris",
        "owners": [{"name": "Camille", "email": "camille@stocky.example"}],
        "sources": [{"name": "pos", "connector": "files", "streams": streams}],
        "extensions": [],
        "alerts": {"dashboard_url": "https://metabase.example/dashboard/7", "rules": [
            {"name": RULE, "kind": "threshold", "metric": "stock", "dimension": "product",
             "operator": "<", "value": "reorder_point",
             "description": "a product's stock falls under its reorder point"}]},
    }
    (project / "clients" / f"{SLUG}.yaml").write_bytes(orjson.dumps(document))


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch):
    """aiosmtpd on a loopback port, and GOALPOST_SMTP_* pointing at it."""
    port = free_port()
    server = Inbox()
    server.start(port)
    monkeypatch.setenv("GOALPOST_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("GOALPOST_SMTP_PORT", str(port))
    monkeypatch.setenv("GOALPOST_SMTP_SECURITY", "none")
    monkeypatch.setenv("GOALPOST_SMTP_FROM", "Goalpost <alerts@consultancy.example>")
    monkeypatch.setattr(delivery, "RETRY_DELAYS", (0.0, 0.0))
    yield server
    server.stop()


def run() -> None:
    result = run_client(SLUG)
    assert result.status == "succeeded", [(s.name, s.error) for s in result.steps]
    (step,) = [s for s in result.steps if s.kind == "alert"]
    assert step.status == "succeeded" and step.details["warnings"] == []


def firing(conn: psycopg.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, status FROM goalpost.alert_state WHERE client = %s "
                             "AND rule = %s", (SLUG, RULE)).fetchall())


def test_low_stock_is_told_once_rearms_and_respects_snooze(project: Path, database_url: str,
                                                           conn, inbox: Inbox) -> None:
    write_client(project)
    count(project, "2025-01-12", VIE_001=30, PAI_001=20)
    run()
    (message,) = inbox.take()
    assert inbox.envelopes == [] and message["To"] == "camille@stocky.example"
    assert message["Subject"] == ("Stocky: Croissant at Croix-Rousse: stock 30 is under the "
                                  "reorder point 40 (as of 2025-01-12)")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "value 30, threshold 40" in text and "recent: 01-12 30" in text
    assert "https://metabase.example/dashboard/7" in text and "dashboard/7" in html
    assert "Pain de campagne" not in text
    assert firing(conn) == {"LYO-01/VIE-001": "firing"}

    # Nothing new: nothing sent.
    run()
    assert inbox.take() == []

    # Back above the reorder point: re-armed, and nothing is sent about it.
    count(project, "2025-01-13", VIE_001=60, PAI_001=20)
    run()
    assert inbox.take() == []
    assert firing(conn) == {"LYO-01/VIE-001": "ok"}

    # Under it again: a new situation, one email; its chart has the counts so far.
    count(project, "2025-01-14", VIE_001=12, PAI_001=20)
    run()
    (message,) = inbox.take()
    assert "stock 12 is under the reorder point 40" in message["Subject"]
    assert "recent: 01-12 30, 01-13 60, 01-14 12" in message.get_body(("plain",)).get_content()
    images = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0].get_content()[:4] == b"\x89PNG"

    # Snoozed for three days: the bread falling under its point is not told...
    until = snooze(SLUG, RULE, "3d")
    count(project, "2025-01-15", VIE_001=12, PAI_001=4)
    run()
    assert inbox.take() == []
    assert firing(conn) == {"LYO-01/VIE-001": "firing", "LYO-01/PAI-001": "firing"}
    assert check(SLUG, now=until - timedelta(minutes=1)).delivery.sent == []
    assert inbox.take() == []
    # ...until the snooze ends: then it is, and only it (the croissants were told already).
    outcome = check(SLUG, now=until + timedelta(minutes=1))
    assert [rule["fired"] for rule in outcome.rules] == [1]
    (message,) = inbox.take()
    assert message["Subject"].startswith("Stocky: Pain de campagne at Croix-Rousse: stock 4")
    assert check(SLUG, now=until + timedelta(minutes=2)).delivery.sent == []
    assert inbox.take() == []

    events = conn.execute("SELECT event, status, count(*) FROM goalpost.alert_events WHERE "
                          "client = %s AND event <> 'evaluated' GROUP BY 1, 2 ORDER BY 1, 2",
                          (SLUG,)).fetchall()
    assert events == [("delivery", "sent", 3), ("fired", "queued", 3), ("recovered", "ok", 1),
                      ("snoozed", "set", 1), ("snoozed", "silent", 1)]
    # Every evaluation (5 runs and 3 checks) is recorded.
    assert conn.execute("SELECT count(*) FROM goalpost.alert_evaluations WHERE client = %s",
                        (SLUG,)).fetchone() == (8,)


def test_smtp_down_run_succeeds_and_delivery_is_retried(project: Path, database_url: str,
                                                        conn, inbox: Inbox,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    write_client(project)
    count(project, "2025-01-12", VIE_001=30, PAI_001=20)
    up_port = inbox.controller.port
    monkeypatch.setenv("GOALPOST_SMTP_PORT", str(free_port()))  # nothing listens there

    result = run_client(SLUG)
    assert result.status == "succeeded", [(s.name, s.error) for s in result.steps]
    (step,) = [s for s in result.steps if s.kind == "alert"]
    assert step.status == "succeeded" and step.details["emails_failed"] == 1
    (warning,) = step.details["warnings"]
    assert "camille@stocky.example not sent after 3 tries" in warning
    attempts = conn.execute(
        "SELECT attempt, status, error FROM goalpost.alert_events WHERE client = %s AND "
        "event = 'delivery' ORDER BY id", (SLUG,)).fetchall()
    assert [(a, s) for a, s, _ in attempts] == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert all("ConnectionRefusedError" in error for _, _, error in attempts)
    assert conn.execute("SELECT status, attempts FROM goalpost.alert_outbox WHERE client = %s",
                        (SLUG,)).fetchall() == [("pending", 3)]
    assert inbox.take() == []

    # The server is back: the next evaluation delivers the pending email, once.
    monkeypatch.setenv("GOALPOST_SMTP_PORT", str(up_port))
    outcome = check(SLUG, now=datetime.now(UTC))
    assert [sent["recipient"] for sent in outcome.delivery.sent] == ["camille@stocky.example"]
    (message,) = inbox.take()
    assert "Croissant at Croix-Rousse: stock 30" in message["Subject"]
    assert conn.execute("SELECT status, attempts, channel FROM goalpost.alert_outbox WHERE "
                        "client = %s", (SLUG,)).fetchall() == [("sent", 4, "smtp")]
    assert conn.execute("SELECT attempt, status FROM goalpost.alert_events WHERE client = %s "
                        "AND event = 'delivery' ORDER BY id DESC LIMIT 1",
                        (SLUG,)).fetchone() == (4, "sent")
    run()
    assert inbox.take() == []
