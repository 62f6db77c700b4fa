"""The weekly review of the PanPan demo end to end: 400 days of the demo's data ending on
Sunday 6 December 2026, whose last planted anomaly (a water leak at Part-Dieu on Saturday 5
December: traffic at a third) falls in the last complete week, built like `goalpost run`
builds it (files and vendor APIs -> raw -> marts -> every extension).

Every figure of the review is recomputed here from the marts and insights with queries of
its own; the planted anomaly appears with its shop, the monthly goal at risk with its
forecast; the French review reads as French; the email fits a phone's width in Chromium; the
scheduler sends one email per owner that Monday, and a second scheduler or evaluation sends
nothing more."""

from __future__ import annotations

import base64
import math
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import chromium
import numpy as np
import psycopg
import pytest
from click.testing import CliRunner
from PIL import Image

from goalpost.alerts.delivery import outbox_dir
from goalpost.alerts.review import deliver
from goalpost.alerts.review.build import build
from goalpost.alerts.review.period import parse
from goalpost.app.cli import cli
from goalpost.app.orchestrator import run_client
from goalpost.app.scheduler import Scheduler
from goalpost.core import registry
from goalpost.core.warehouse import connection
from goalpost.core.warehouse.migrations import migrate
from goalpost.sandbox.demo import run as demo_run
from goalpost.sandbox.demo.apis import demo_apis
from goalpost.sandbox.demo.generator import GroundTruth, generate_panpan

pytestmark = pytest.mark.e2e

END = date(2026, 12, 6)
DAYS, SCALE, SEED = 400, 0.3, 14
WEEK = parse("2026-W49", "week")
# Monday 7 December 2026, 05:29:50 in Paris: ten seconds before PanPan's morning run.
MONDAY = datetime(2026, 12, 7, 4, 29, 50, tzinfo=UTC)
OWNERS = ("camille@panpan.example", "louis@panpan.example")
MONEY = re.compile(r"[+-]?€[\d,]+\.\d\d")
PERCENT = re.compile(r"[+-]?\d+(?:\.\d)?%")


@dataclass
class Demo:
    project: Path
    url: str
    truth: GroundTruth


@pytest.fixture(scope="module")
def demo(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo built once for the module, in its own database and project, with a second
    owner; its vendor emulators serve until the module ends (the scheduler's run uses them)."""
    root = tmp_path_factory.mktemp("review-demo") / "project"
    (root / "clients").mkdir(parents=True)
    name = f"review_demo_{os.getpid()}"
    base = pg_server.rsplit("/", 1)[0]
    with psycopg.connect(pg_server, autocommit=True) as admin:
        roles = {r[0] for r in admin.execute("SELECT rolname FROM pg_roles")}
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{base}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOALPOST_HOME", str(root))
        patch.setenv("GOALPOST_STATE_DIR", str(root / ".goalpost"))
        patch.setenv("GOALPOST_DATABASE_URL", url)
        patch.setattr(connection, "_cached_url", None)
        for variable in ("GOALPOST_SMTP_HOST", "GOALPOST_CONSULTANT_EMAIL"):
            patch.delenv(variable, raising=False)
        path = demo_run.ensure_client_file()
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace(
            "    email: camille@panpan.example\n",
            "    email: camille@panpan.example\n  - name: Louis Durand\n"
            "    email: louis@panpan.example\n"), encoding="utf-8")
        folder = demo_run.demo_data_dir()
        truth = generate_panpan(folder, end=END, days=DAYS, scale=SCALE, seed=SEED)
        with demo_apis(folder):
            result = run_client("panpan", trigger="demo")
            assert result.status == "succeeded", [(s.name, s.error) for s in result.steps
                                                  if s.error]
            yield Demo(root, url, truth)
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in sorted({r[0] for r in admin.execute("SELECT rolname FROM pg_roles")}
                           - roles):
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def db(demo: Demo) -> Iterator[psycopg.Connection]:
    with psycopg.connect(demo.url, autocommit=True) as conn:
        yield conn


def one(conn: psycopg.Connection, query: str, *params: object) -> float:
    value = conn.execute(query, params).fetchone()[0]
    return float(value)


def flat(text: str) -> str:
    return re.sub(r"[ \n]+", " ", text).strip()  # no-break spaces stay


def money(value: float) -> str:
    return f"-€{abs(value):,.2f}" if round(value, 2) < 0 else f"€{value:,.2f}"


def signed_money(value: float) -> str:
    return money(value) if round(value, 2) < 0 else f"+€{value:,.2f}"


def pct(fraction: float, signed: bool = True, decimals: int = 1) -> str:
    text = f"{100 * fraction:.{decimals}f}%"
    return f"+{text}" if signed and not text.startswith("-") else text


def log_mean(x: float, y: float) -> float:
    return x if math.isclose(x, y) else (x - y) / (math.log(x) - math.log(y))


def week_figures(conn: psycopg.Connection, start: date, end: date) -> dict[str, float]:
    """Revenue, orders, items and their ratios over the days, from daily_sales; items per
    order (sales receipts only) and the rest from kpi_daily's own columns."""
    revenue, orders, items = conn.execute(
        "SELECT sum(revenue), sum(orders), sum(items) FROM panpan_marts.daily_sales "
        "WHERE sales_date BETWEEN %s AND %s", (start, end)).fetchone()
    per_order = one(conn, "SELECT sum(i.value * o.value) / sum(o.value) FROM "
                    "panpan_marts.kpi_daily i JOIN panpan_marts.kpi_daily o USING (date, "
                    "dimension, dimension_value) WHERE i.metric = 'items_per_order' AND "
                    "o.metric = 'orders' AND dimension = 'all' AND date BETWEEN %s AND %s",
                    start, end)
    ticket = float(revenue) / float(orders)
    return {"revenue": float(revenue), "orders": float(orders), "items": float(items),
            "average_ticket": ticket, "items_per_order": per_order,
            "average_item_price": ticket / per_order,
            "returns": one(conn, "SELECT sum(value) FROM panpan_marts.kpi_daily WHERE metric = "
                           "'returns' AND dimension = 'all' AND date BETWEEN %s AND %s",
                           start, end),
            "customers": one(conn, "SELECT avg(value) FROM panpan_marts.kpi_daily WHERE "
                             "metric = 'customers' AND dimension = 'all' AND date BETWEEN "
                             "%s AND %s", start, end)}


def own_figure(conn: psycopg.Connection, metric: str, summed: bool, start: date,
               end: date) -> float | None:
    """A client metric's week in kpi_daily: its total when it adds up, else its daily mean."""
    total, average = conn.execute(
        "SELECT sum(value), avg(value) FROM panpan_marts.kpi_daily WHERE metric = %s AND "
        "dimension = 'all' AND date BETWEEN %s AND %s", (metric, start, end)).fetchone()
    found = total if summed else average
    return None if found is None else float(found)


def test_every_figure_of_the_review_is_recomputed_from_the_marts(
        demo: Demo, db: psycopg.Connection) -> None:
    client = registry.load_client("panpan")
    review = build(db, "panpan", client, WEEK, MONDAY)
    text = flat(review.text())
    now = week_figures(db, WEEK.start, WEEK.end)
    before = week_figures(db, date(2026, 11, 23), date(2026, 11, 29))
    year = week_figures(db, date(2025, 12, 1), date(2025, 12, 7))
    targets = {"revenue": 4200 * 7, "orders": 650 * 7, "average_ticket": 6.5,
               "items_per_order": 2.9}
    expected_money, expected_pct = set(), set()
    registry_of = client.metric_registry()
    for name, line in ((m.name, m) for m in review.figures.metrics):
        if name not in now:  # the client's own metrics (footfall, conversion...): a week's
            # total of a summed metric, else its daily average, in kpi_daily
            summed = registry_of[name].aggregation == "sum"
            mine = [own_figure(db, name, summed, *span) for span in (
                (WEEK.start, WEEK.end), (date(2026, 11, 23), date(2026, 11, 29)),
                (date(2025, 12, 1), date(2025, 12, 7)))]
            assert [line.current, line.previous, line.last_year] == pytest.approx(
                mine, rel=1e-9, nan_ok=True), name
            expected_pct |= {pct(mine[0] / then - 1) for then in mine[1:] if then}
            continue
        assert line.current == pytest.approx(now[name], rel=1e-9), name
        assert line.previous == pytest.approx(before[name], rel=1e-9), name
        assert line.last_year == pytest.approx(year[name], rel=1e-9), name
        assert line.target == targets.get(name), name
        for value in (now[name], before[name], year[name], targets.get(name)):
            if value is not None:
                expected_money.add(money(value))
        for then in (before[name], year[name]):
            expected_pct.add(pct(now[name] / then - 1))
        if name in targets:
            expected_pct.add(pct(now[name] / targets[name], signed=False, decimals=0))
    change = now["revenue"] - before["revenue"]
    assert (f"Revenue: {money(now['revenue'])}. {signed_money(change)} "
            f"({pct(now['revenue'] / before['revenue'] - 1)}) on the week before "
            f"({money(before['revenue'])}).") in text
    # The change split, computed here with LMDI on the same sums: it adds up to the change.
    for which, then in (("previous", before), ("last_year", year)):
        (split,) = review.figures.splits[which]
        scale = log_mean(now["revenue"], then["revenue"])
        parts = {p.metric.name: p.contribution for p in split.parts}
        assert parts["orders"] == pytest.approx(scale * math.log(now["orders"] / then["orders"]))
        assert parts["average_ticket"] == pytest.approx(
            scale * math.log(now["average_ticket"] / then["average_ticket"]))
        change = now["revenue"] - then["revenue"]
        assert abs(parts["orders"] + parts["average_ticket"] - change) <= 1e-4 * abs(change)
        assert abs(parts["items_per_order"] + parts["average_item_price"]
                   - parts["average_ticket"]) <= 1e-4 * abs(parts["average_ticket"])
        expected_money |= {signed_money(v) for v in parts.values()} | {signed_money(change)}
        words = "fewer orders" if parts["orders"] < 0 else "more orders"
        assert f"{signed_money(parts['orders'])} from {words}" in text
    # Movers: shops from daily_sales, products from product_sales_daily.
    shops = dict((n, (float(a), float(b))) for n, a, b in db.execute(
        "SELECT location_name, sum(revenue) FILTER (WHERE sales_date >= %s), "
        "sum(revenue) FILTER (WHERE sales_date < %s) FROM panpan_marts.daily_sales WHERE "
        "sales_date BETWEEN %s AND %s GROUP BY 1", (WEEK.start, WEEK.start,
                                                    date(2026, 11, 23), WEEK.end)))
    products = dict((n, (float(a), float(b))) for n, a, b in db.execute(
        "SELECT product_name, coalesce(sum(revenue) FILTER (WHERE sales_date >= %s), 0), "
        "coalesce(sum(revenue) FILTER (WHERE sales_date < %s), 0) FROM "
        "panpan_marts.product_sales_daily WHERE sales_date BETWEEN %s AND %s GROUP BY 1",
        (WEEK.start, WEEK.start, date(2026, 11, 23), WEEK.end)))
    channels = dict((n, (float(a), float(b))) for n, a, b in db.execute(
        "SELECT channel, sum(revenue) FILTER (WHERE sales_date >= %s), sum(revenue) FILTER "
        "(WHERE sales_date < %s) FROM panpan_marts.daily_sales WHERE sales_date BETWEEN %s "
        "AND %s GROUP BY 1", (WEEK.start, WEEK.start, date(2026, 11, 23), WEEK.end)))
    movers = review.figures.movers
    assert movers["location"] and movers["product"]
    for dimension, truth in (("location", shops), ("product", products),
                             ("channel", channels)):
        for mover in movers.get(dimension, []):
            current, previous = truth[mover.label]
            assert (mover.current, mover.previous) == pytest.approx((current, previous))
            expected_money.add(signed_money(current - previous))
            expected_pct.add(pct((current - previous) / previous))
            assert f"{mover.label} {signed_money(current - previous)}" in text
    # The biggest shop move of the week comes first.
    biggest = max(shops, key=lambda n: abs(shops[n][0] - shops[n][1]))
    move = signed_money(shops[biggest][0] - shops[biggest][1])
    assert f"By location: {biggest} {move}" in text
    # Anomalies, goals and stock: from their tables.
    for event in review.figures.anomalies:
        value, expected = db.execute(
            "SELECT value, expected FROM panpan_insights.anomalies WHERE date = %s AND "
            "metric = %s AND dimension = %s AND dimension_value = %s",
            (event.day, event.metric.name, event.dimension, event.value)).fetchone()
        expected_money |= {money(value), money(expected)}
        expected_pct.add(pct(value / expected - 1))
        expected_pct |= {pct(c.share, signed=False, decimals=0) for c in event.behind}
    for goal in review.figures.goals:
        row = db.execute("SELECT target, actual_to_date, forecast_at_deadline, "
                         "forecast_lower_80, forecast_upper_80 FROM "
                         "panpan_insights.goal_progress WHERE goal = %s", (goal.name,)
                         ).fetchone()
        expected_money |= {money(v) for v in row}
        expected_pct.add(pct(row[1] / row[0], signed=False, decimals=0))
    # Every amount and percentage in the text is one of those recomputed here.
    found_money = set(MONEY.findall(text))
    assert found_money <= expected_money, found_money - expected_money
    found_pct = set(PERCENT.findall(text)) - {"80%"}  # "80% range": the band's name
    assert found_pct <= expected_pct, found_pct - expected_pct
    assert len(MONEY.findall(text)) > 30


def test_the_planted_anomaly_appears_with_its_shop_and_the_goal_at_risk_with_its_forecast(
        demo: Demo, db: psycopg.Connection) -> None:
    planted = demo.truth.anomalies[-1]
    assert WEEK.contains(planted.date) and planted.kind == "drop"
    shop = db.execute("SELECT max(location_name) FROM panpan_marts.daily_sales WHERE "
                      "location_id = %s", (planted.shop_id,)).fetchone()[0]
    review = build(db, "panpan", registry.load_client("panpan"), WEEK, MONDAY)
    (event,) = [e for e in review.figures.anomalies if e.day == planted.date]
    assert (event.dimension, event.value, event.label, event.direction) == (
        "location", planted.shop_id, shop, "drop")
    assert event.actual < 0.5 * event.expected
    text = flat(review.text())
    assert (f"Saturday, December 5, 2026, {shop}: {event.metric.label.lower()} "
            f"{money(event.actual)} against about {money(event.expected)} expected") in text
    (goal,) = review.figures.goals
    status, forecast, lower, upper, deadline = db.execute(
        "SELECT status, forecast_at_deadline, forecast_lower_80, forecast_upper_80, deadline "
        "FROM panpan_insights.goal_progress WHERE goal = 'monthly_growth'").fetchone()
    assert status == "at-risk" and goal.status == status
    assert "Goal monthly_growth (revenue, Dec 1\u2009–\u200931, 2026): at risk." in text
    assert (f"Forecast for Thursday, December 31, 2026: {money(forecast)} (80% range "
            f"{money(lower)} to {money(upper)}).") in text
    (low,) = demo.truth.low_stock
    product = db.execute("SELECT product_name FROM panpan_marts.inventory_status WHERE "
                         "product_id = %s AND location_id = %s",
                         (low.sku, low.shop_id)).fetchone()[0]
    assert f"{product} at PanPan Villeurbanne: {low.on_hand} in stock, reorder point " \
           f"{low.reorder_point}" in text


def french_money(value: float) -> str:
    """1 150,00 € as French typography writes it (narrow no-break space between thousands,
    no-break space before the sign), built here without Babel."""
    whole, cents = f"{abs(value):.2f}".split(".")
    groups = []
    while whole:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    return ("-" if value < 0 else "") + "\u202f".join(groups) + f",{cents}\u00a0€"


def test_the_french_review_reads_as_french(demo: Demo, db: psycopg.Connection) -> None:
    client = registry.load_client("panpan").model_copy(update={"language": "fr"})
    review = build(db, "panpan", client, WEEK, MONDAY)
    text = review.text()
    joined = flat(text)
    revenue = review.figures.metric("revenue")
    for expected in ("PanPan Boulangerie: Revue de la semaine",
                     "Du lundi 30 novembre 2026 au dimanche 6 décembre 2026",
                     "Établie le lundi 7 décembre 2026, sur les données jusqu’au dimanche "
                     "6 décembre 2026.",
                     "LA SEMAINE", "CE QUI L’EXPLIQUE", "JOURNÉES INHABITUELLES", "OBJECTIFS",
                     f"Chiffre d’affaires\u00a0: {french_money(revenue.current)}.",
                     "par comparaison avec la semaine précédente",
                     "Samedi 5 décembre 2026, PanPan Part-Dieu\u00a0: chiffre d’affaires",
                     "une forte baisse", "Objectif monthly_growth (chiffre d’affaires, "
                     "1–31 déc. 2026)\u00a0: menacé.",
                     "Prévision pour le jeudi 31 décembre 2026\u00a0:",
                     "Envoyé par Goalpost pour PanPan Boulangerie."):
        assert expected in joined, expected
    amounts = re.findall(r"-?\d{1,3}(?:\u202f\d{3})*,\d{2}\u00a0€", text)
    assert len(amounts) > 30 and french_money(revenue.previous) in amounts
    for english in ("Revenue", "Weekly review", "the week before", "Goal ", "Behind it",
                    "Forecast", "Monday", "December", "€1", "€2", "€3", "€4", "€5", "€6",
                    "€7", "€8", "€9"):
        assert english not in text, english
    assert review.document.subject.startswith(
        "PanPan Boulangerie, semaine du 30 nov. 2026\u00a0: chiffre d’affaires ")


def review_emails(demo: Demo) -> list[EmailMessage]:
    folder = outbox_dir("panpan")
    found = [message_from_bytes(p.read_bytes(), policy=policy.default)
             for p in sorted(folder.glob("*.eml"))] if folder.exists() else []
    return [m for m in found if m["X-Goalpost-Review"]]


def wait_for(condition, timeout: float) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_the_scheduler_sends_one_email_per_owner_that_monday_and_never_again(
        demo: Demo, db: psycopg.Connection) -> None:
    def sent() -> int:
        return db.execute("SELECT count(*) FROM goalpost.review_deliveries WHERE "
                          "status = 'sent'").fetchone()[0]

    first = Scheduler(demo.url, instance="first", acceleration=10, virtual_start=MONDAY,
                      backup_schedule=None, heartbeat_seconds=3600)
    first.start()
    try:
        wait_for(lambda: sent() == len(OWNERS), 600)
    finally:
        first.stop()
    emails = review_emails(demo)
    assert sorted(m["To"] for m in emails) == sorted(OWNERS)
    assert {m["X-Goalpost-Review"] for m in emails} == {"2026-W49"}
    slot = db.execute("SELECT due_at, status, instance FROM goalpost.schedule_slots WHERE "
                      "client = 'panpan'").fetchall()
    assert slot == [(datetime(2026, 12, 7, 4, 30, tzinfo=UTC), "succeeded", "first")]
    # A second scheduler on the same Monday: the slot is taken, nothing more is sent.
    second = Scheduler(demo.url, instance="second", acceleration=10, virtual_start=MONDAY,
                       backup_schedule=None, heartbeat_seconds=3600)
    second.start()
    time.sleep(6)  # a virtual minute: past the 05:30 slot
    second.stop()
    # Another evaluation later that week (the next morning's run): nothing more either.
    again = deliver.send_due(db, "panpan", registry.load_client("panpan"),
                             now=MONDAY + timedelta(days=1, hours=1))
    assert again.sent == [] and sorted(again.already_sent) == sorted(OWNERS)
    assert len(review_emails(demo)) == len(OWNERS) and sent() == len(OWNERS)
    rows = db.execute("SELECT recipient, status, channel, attempts, message_id FROM "
                      "goalpost.review_deliveries ORDER BY recipient").fetchall()
    assert [r[:4] for r in rows] == [(o, "sent", "outbox", 1) for o in sorted(OWNERS)]
    assert {r[4] for r in rows} == {m["Message-ID"] for m in emails}


def test_goalpost_review_writes_the_page(demo: Demo, tmp_path: Path) -> None:
    out = tmp_path / "w49.html"
    done = CliRunner().invoke(cli, ["review", "panpan", "--week", "2026-W49", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert done.output.splitlines()[0] == str(out.resolve())
    assert "2026-W49 (2026-11-30 to 2026-12-06), data as of 2026-12-06" in done.output
    page = out.read_text(encoding="utf-8")
    assert "Weekly review" in page and "PanPan Part-Dieu" in page
    assert page.count("data:image/png;base64,") == 2 and "https://" not in page
    default = CliRunner().invoke(cli, ["review", "panpan", "--month", "2026-11"])
    assert default.exit_code == 0, default.output
    assert (demo.project / ".goalpost" / "reviews" / "panpan-2026-11.html").exists()
    bad = CliRunner().invoke(cli, ["review", "panpan", "--week", "2026-49"])
    assert bad.exit_code == 2 and "e.g. 2026-W49" in bad.output and "Traceback" not in bad.output


@chromium.needed
def test_the_email_fits_a_phone(demo: Demo, db: psycopg.Connection, tmp_path: Path) -> None:
    """The HTML part of a sent review, its inline charts in place (as a mail reader shows
    it), laid out 400 pixels wide: nothing wider than the screen, the charts drawn."""
    emails = review_emails(demo)
    if not emails:  # this test alone: send it now
        deliver.send_due(db, "panpan", registry.load_client("panpan"),
                         now=MONDAY + timedelta(hours=1))
        emails = review_emails(demo)
    message = emails[0]
    html = message.get_body(("html",)).get_content()
    for part in message.walk():
        if part.get_content_type() == "image/png":
            cid = part["Content-ID"].strip("<>")
            html = html.replace(f"cid:{cid}", "data:image/png;base64,"
                                + base64.b64encode(part.get_content()).decode())
    assert "cid:" not in html
    page = tmp_path / "review-email.html"
    page.write_text(html, encoding="utf-8")
    extent = chromium.extent(page, 400)
    assert extent.scroll_width <= 400 and extent.rightmost <= 400, extent
    png = chromium.narrow_screenshot(page, tmp_path / "review-400.png", 400,
                                     extent.scroll_height)
    keep = os.environ.get("GOALPOST_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(png, keep)
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape[:2] == (extent.scroll_height, 400)
    # The charts' bars: the week's blue, the split's red and green, all inside the width.
    for colour in ("#2a5db0", "#c62828"):
        rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(image.astype(int) - rgb) <= 12).all(axis=2).sum() > 200, colour
