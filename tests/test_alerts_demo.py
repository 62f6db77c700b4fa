"""The owner's story of the PanPan demo end to end: the generated data's planted short delivery
(ground truth `low_stock`) goes through a run of the demo client (files and the vendor APIs ->
raw -> marts -> PanPan's `low_stock` rule) and lands as one email in the outbox, naming the
product and the shop; the next run sends nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from goalpost.alerts.delivery import outbox_dir
from goalpost.app.orchestrator import RunResult, run_client
from goalpost.sandbox.demo import run as demo_run
from goalpost.sandbox.demo.apis import demo_apis
from goalpost.sandbox.demo.generator import GroundTruth, generate_panpan

pytestmark = pytest.mark.e2e

# Five weeks at a tenth of the traffic, ending on a Friday: on the last counts only the
# planted product is under its reorder point (tests/test_demo_generator.py checks the same of
# its own range).
END = date(2025, 3, 14)
DAYS = 35
SCALE = 0.1
SEED = 3


@pytest.fixture
def panpan(project: Path, database_url: str,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[GroundTruth]:
    """The demo client, its emulators on free ports, no extensions (the rule reads the marts
    only), and emails written to the outbox."""
    for name in ("GOALPOST_SMTP_HOST", "GOALPOST_CONSULTANT_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    path = demo_run.ensure_client_file()
    path.write_text(path.read_text(encoding="utf-8") + "extensions: []\n", encoding="utf-8")
    folder = demo_run.demo_data_dir()
    truth = generate_panpan(folder, end=END, days=DAYS, scale=SCALE, seed=SEED)
    with demo_apis(folder):
        yield truth


def run() -> RunResult:
    result = run_client("panpan", trigger="demo")
    assert result.status == "succeeded", [(s.name, s.error) for s in result.steps if s.error]
    return result


def emails() -> list[EmailMessage]:
    folder = outbox_dir("panpan")
    return [message_from_bytes(path.read_bytes(), policy=policy.default)
            for path in sorted(folder.glob("*.eml"))] if folder.exists() else []


def test_the_demo_emails_the_planted_low_stock_once(panpan: GroundTruth,
                                                    conn: psycopg.Connection) -> None:
    (low,) = panpan.low_stock
    folder = demo_run.demo_data_dir()
    product = pd.read_csv(folder / "products.csv").set_index("sku").loc[low.sku, "name"]
    shop = pd.read_csv(folder / "shops.csv").set_index("shop_id").loc[low.shop_id, "shop_name"]

    first = run()
    (step,) = [s for s in first.steps if s.kind == "alert"]
    assert step.status == "succeeded" and step.details["warnings"] == []
    (message,) = emails()
    assert message["To"] == "camille@panpan.example"
    assert message["Subject"] == (
        f"PanPan Boulangerie: {product} at {shop}: stock {low.on_hand} is under the reorder "
        f"point {low.reorder_point} (as of {panpan.end})")
    text = message.get_body(("plain",)).get_content()
    assert f"value {low.on_hand}, threshold {low.reorder_point}" in text
    assert f"{panpan.end:%m-%d} {low.on_hand}" in text
    html = message.get_body(("html",)).get_content()
    assert product in html and shop in html
    (chart,) = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert chart.get_content()[:4] == b"\x89PNG"
    assert conn.execute(
        "SELECT rule, key, status, channel FROM goalpost.alert_outbox WHERE client = 'panpan'"
    ).fetchall() == [("low_stock", f"{low.shop_id}/{low.sku}", "sent", "outbox")]

    # The same data again: the situation was told, nothing new is sent.
    run()
    assert len(emails()) == 1
    assert conn.execute("SELECT count(*) FROM goalpost.alert_outbox WHERE client = 'panpan'"
                        ).fetchone() == (1,)
