"""`goalpost report`: a small client built for real (POS files -> raw -> SQLMesh marts), its
dashboards rendered as a page, opened in headless Chromium and checked on the screenshot.

`tiny` has two shops, eight weeks of sales ending two days ago (inside the templates' default
`past90days`), a daily revenue target, and only the `goals` extension (no goals: an empty
goal_progress table), so the forecast and anomaly cards fail (no such tables) and show their
error, and the goals card says "No data".
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import chromium
import orjson
import pytest
from click.testing import CliRunner
from csv_files import write_csv
from test_report_page import load, pixels

from goalpost.app.cli import cli
from goalpost.app.orchestrator import run_client
from goalpost.core.registry import load_client
from goalpost.core.registry.models import Client
from goalpost.metabase import report
from goalpost.metabase.charts import GOAL_COLOUR, PALETTE
from goalpost.metabase.template import render_sql, templates

SHOPS = {"LYO-01": "Tiny Croix-Rousse", "LYO-02": "Tiny Part-Dieu"}
PRODUCTS = [("PAI-001", "Pain", Decimal("4.20")), ("VIE-001", "Croissant", Decimal("1.30")),
            ("GAT-001", "Tarte", Decimal("24.00"))]
TARGET = 300


def sales(last_day: date) -> list[dict[str, str]]:
    """56 days of receipts per shop, in the shop and delivered, with a few customers."""
    rng = random.Random(7)
    rows = []
    for offset in range(56):
        day = last_day - timedelta(days=55 - offset)
        for shop in SHOPS:
            for receipt in range(rng.randint(8, 14)):
                number = f"{shop}-{day:%Y%m%d}-{receipt:02d}"
                channel = "livraison" if receipt % 4 == 0 else "en_boutique"
                customer = f"C{rng.randint(1, 40):03d}" if receipt % 2 else ""
                for line, (sku, name, price) in enumerate(rng.sample(PRODUCTS, 2), start=1):
                    quantity = rng.randint(1, 4)
                    rows.append({
                        "receipt_no": number, "line_no": str(line),
                        "sold_at": f"{day} {8 + receipt % 10:02d}:15", "shop_id": shop,
                        "channel": channel, "customer_id": customer, "sku": sku,
                        "product_name": name, "quantity": str(quantity),
                        "unit_price": str(price), "line_total": str(price * quantity)})
    return rows


@pytest.fixture
def tiny(project: Path, database_url: str) -> list[dict[str, str]]:
    """Client `tiny`, built; returns its sales lines."""
    last_day = date.today() - timedelta(days=2)
    lines = sales(last_day)
    folder = project / "exports" / "tiny"
    write_csv(folder / "shops.csv", [{"shop_id": k, "shop_name": v} for k, v in SHOPS.items()])
    write_csv(folder / "sales.csv", lines)
    document = {
        "name": "Tiny Bakery", "timezone": "Europe/Paris", "currency": "EUR",
        "metrics": {"revenue": {"target": TARGET}},
        "extensions": ["goals"],
        "sources": [{"name": "pos", "connector": "files", "streams": [
            {"name": "shops", "path": "exports/tiny/shops.csv", "entity": "locations",
             "primary_key": ["shop_id"], "columns": {"location_id": "shop_id",
                                                     "name": "shop_name"}},
            {"name": "sales", "path": "exports/tiny/sales.csv", "entity": "order_lines",
             "primary_key": ["receipt_no", "line_no"],
             "columns": {"order_id": "receipt_no", "line_number": "line_no",
                         "ordered_at": "sold_at", "location_id": "shop_id",
                         "product_id": "sku"}},
        ]}],
    }
    (project / "clients" / "tiny.yaml").write_bytes(orjson.dumps(document))
    run = run_client("tiny")
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]
    return lines


def revenue(lines: list[dict[str, str]], shop: str | None = None) -> Decimal:
    return sum((Decimal(r["line_total"]) for r in lines if shop in (None, r["shop_id"])),
               Decimal(0))


def test_filter_values_and_their_sql() -> None:
    sales_overview = report.selected_dashboards(Client.model_validate({"name": "T"}))[0]
    defaults = report.filter_values(sales_overview, report.Options())
    assert defaults == {"date": "past90days", "location": None}
    chosen = report.filter_values(sales_overview, report.Options(
        since=date(2026, 1, 1), until=date(2026, 1, 31), locations=("LYO-01", "LYO-02")))
    assert chosen == {"date": "2026-01-01~2026-01-31", "location": ["LYO-01", "LYO-02"]}
    query = render_sql(sales_overview.card("revenue"), "tiny", chosen,
                       filters=sales_overview.filters)
    assert ("\"tiny_marts\".\"daily_sales\".\"sales_date\" BETWEEN DATE '2026-01-01' AND "
            "DATE '2026-01-31'") in query
    assert "\"tiny_marts\".\"daily_sales\".\"location_id\" IN ('LYO-01', 'LYO-02')" in query
    only_since = report.filter_values(sales_overview, report.Options(since=date(2026, 3, 1)))
    assert only_since["date"] == "2026-03-01~"

    date_filter = sales_overview.filter("date")
    today = date(2026, 12, 2)
    assert report.describe_filter(date_filter, "past90days", today) == \
        "past90days (2026-09-03 to 2026-12-01)"
    assert report.describe_filter(date_filter, "2026-03-01~", today) == "2026-03-01 to …"
    assert report.describe_filter(sales_overview.filter("location"), None, today) == "All"
    assert report.parse_locations(("LYO-01,LYO-02", " LYO-03 ")) == ("LYO-01", "LYO-02",
                                                                      "LYO-03")
    # By default every template its sources can fill, in reading order: Inventory only with
    # a source of stock counts; else the client's, in its order.
    stream = {"name": "s", "path": "s.csv", "entity": "inventory_levels"}
    stocked = Client.model_validate({"name": "All", "sources": [
        {"name": "pos", "connector": "files", "streams": [stream]}]})
    everyone = report.selected_dashboards(stocked)
    assert [d.key for d in everyone][:3] == ["sales_overview", "customers", "inventory"]
    assert len(everyone) == len(templates())
    unstocked = report.selected_dashboards(Client.model_validate({"name": "None"}))
    assert [d.key for d in unstocked] == ["sales_overview", "customers", "forecasts_anomalies",
                                          "goals_kpis", "metric_map", "weekly_review"]
    some = Client.model_validate({"name": "Some", "dashboards": ["inventory", "sales_overview"]})
    assert [d.key for d in report.selected_dashboards(some)] == ["inventory", "sales_overview"]


@pytest.mark.e2e
@chromium.needed
def test_report_of_a_built_client_in_chromium_and_with_options(
        tiny: list[dict[str, str]], project: Path, tmp_path: Path) -> None:
    done = CliRunner().invoke(cli, ["report", "tiny"])
    assert done.exit_code == 0, done.output
    path = project / ".goalpost" / "reports" / "tiny.html"
    assert done.stdout.splitlines()[0] == str(path)
    # No stock counts: no Inventory dashboard; no dimension: no card per dimension.
    fitted = report.selected_dashboards(load_client("tiny"))
    cards = sum(len(t.cards) for t in fitted)
    assert [t.key for t in fitted] == ["sales_overview", "customers", "forecasts_anomalies",
                                       "goals_kpis", "metric_map", "weekly_review"]
    assert f"{cards} cards on 6 dashboards" in done.output
    # No insights but goal_progress: the forecast, anomaly and correlation cards fail, and
    # say why.
    failed = [line for line in done.output.splitlines()
              if line.startswith(("  Forecasts", "  Weekly review", "  Metric map"))]
    assert failed and all("does not exist" in line for line in failed)
    assert not any(line.startswith(("  Sales overview", "  Customers", "  Inventory"))
                   for line in done.output.splitlines())

    html = path.read_text(encoding="utf-8")
    assert "<script" not in html and "https://" not in html
    layout = chromium.layout(path)
    assert len(layout.cards) == cards
    image = load(chromium.screenshot(path, tmp_path / "tiny.png", layout.height))
    boxes = {title: box.body for title, box in layout.cards.items()}

    # Revenue per day: the line and the target's goal line, both drawn.
    assert pixels(image, boxes["Revenue per day"], PALETTE[0]) > 500
    assert pixels(image, boxes["Revenue per day"], GOAL_COLOUR) > 300
    assert pixels(image, boxes["Revenue per day against target"], GOAL_COLOUR) > 100
    # Stacked bars: both channels; a bar per shop.
    assert pixels(image, boxes["Revenue per week and channel"], PALETTE[0]) > 1000
    assert pixels(image, boxes["Revenue per week and channel"], PALETTE[1]) > 500
    assert pixels(image, boxes["Revenue per shop"], PALETTE[0]) > 3000
    # Nothing drawn where there is no data or the query failed.
    for title in ("Goals", "Revenue, last 90 days and forecast", "Anomalies per week and "
                  "severity"):
        assert pixels(image, boxes[title], PALETTE[0]) == 0, title
    # Not a blank page: plenty of ink overall.
    assert (image.min(axis=2) < 200).sum() > 50_000

    dom = layout.dom
    total = f"€{revenue(tiny):,.2f}"
    assert f'<div class="big">{total}</div>' in dom
    assert "Tiny Part-Dieu" in dom and "No data" in dom
    assert dom.count("Query failed:") == len(failed)
    assert 'tiny_insights.forecasts" does not exist' in dom.replace("&quot;", '"')
    last_day = max(r["sold_at"][:10] for r in tiny)
    assert f'class="as-of">{last_day}<' in dom
    assert "past90days (" in dom

    # --location and --since/--until replace the dashboards' defaults (same built client:
    # building another takes longer than this whole test).
    out = tmp_path / "one-shop.html"
    done = CliRunner().invoke(cli, ["report", "tiny", "--location", "LYO-02", "--out", str(out),
                                    "--json"])
    assert done.exit_code == 0, done.output
    summary = orjson.loads(done.output)
    assert summary["path"] == str(out) and summary["errors"]
    html = out.read_text(encoding="utf-8")
    assert f'<div class="big">€{revenue(tiny, "LYO-02"):,.2f}</div>' in html
    assert "Location: <b>LYO-02</b>" in html

    first = min(r["sold_at"][:10] for r in tiny)
    made = report.build_report("tiny", options=report.Options(
        since=date.fromisoformat(first), until=date.fromisoformat(first)), out=out)
    one_day = [r for r in tiny if r["sold_at"].startswith(first)]
    assert f'<div class="big">€{revenue(one_day):,.2f}</div>' in out.read_text(encoding="utf-8")
    assert made.cards == summary["cards"] == cards


def test_user_errors_exit_with_a_hint(project: Path, database_url: str) -> None:
    unknown = CliRunner().invoke(cli, ["report", "nobody"])
    assert unknown.exit_code == 3
    (project / "clients" / "empty.yaml").write_bytes(orjson.dumps({"name": "Empty"}))
    assert CliRunner().invoke(cli, ["client", "validate", "empty"]).exit_code == 0
    from goalpost.app import clients
    from goalpost.core import registry
    from goalpost.core.warehouse import ready

    with ready() as conn:
        clients.sync(conn, "empty", registry.load_client("empty"))
    unbuilt = CliRunner().invoke(cli, ["report", "empty"])
    assert unbuilt.exit_code == 3
    assert "no data built yet" in unbuilt.output and "goalpost run empty" in unbuilt.output
    backwards = CliRunner().invoke(cli, ["report", "empty", "--since", "2026-02-01",
                                         "--until", "2026-01-01"])
    assert backwards.exit_code == 2 and "before" in backwards.output
