"""The business review on a kpi_daily computed independently from PanPan's exports (in pandas,
tests/panpan_kpi.py) and loaded into a client's marts: its periods, its figures against the
same sums done here, the change split that adds up, a period without data or with missing
days, and its delivery: once per period and recipient, whatever the retries, failures and
concurrent senders."""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import orjson
import pandas as pd
import psycopg
import pytest
from panpan_kpi import panpan_kpi_daily
from smtp_inbox import Inbox, free_port

from goalpost.alerts import delivery
from goalpost.alerts.review import deliver, period
from goalpost.alerts.review.build import build
from goalpost.core import registry
from goalpost.core.errors import ConfigError, NotFoundError

END = date(2026, 12, 6)  # a Sunday
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # Monday morning in Paris
W49 = period.parse("2026-W49", "week")
OWNERS = [{"name": "Camille Durand", "email": "camille@shop.example"},
          {"name": "Sam Martin", "email": "sam@shop.example"}]


@pytest.fixture(scope="module")
def kpi(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """About 14 months of PanPan at a tenth of its traffic: last year's week 49 is in it."""
    return panpan_kpi_daily(tmp_path_factory.mktemp("panpan"), end=END, days=430)


def write_client(project: Path, **settings: object) -> None:
    document = {"name": "Shop", "timezone": "Europe/Paris", "owners": OWNERS,
                "metrics": {"revenue": {"target": 400}}, **settings}
    (project / "clients" / "shop.yaml").write_bytes(orjson.dumps(document))


@pytest.fixture
def shop(project: Path, conn: psycopg.Connection, kpi: pd.DataFrame,
         monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    """Client `shop` whose marts hold only kpi_daily; emails go to the outbox."""
    monkeypatch.delenv("GOALPOST_SMTP_HOST", raising=False)
    write_client(project)
    conn.execute("CREATE SCHEMA shop_marts")
    conn.execute("CREATE TABLE shop_marts.kpi_daily (metric text, date date, dimension text, "
                 "dimension_value text, value numeric)")
    with conn.cursor().copy("COPY shop_marts.kpi_daily FROM STDIN") as copy:
        for row in kpi.itertuples(index=False):
            copy.write_row((row.metric, row.date, row.dimension, row.dimension_value,
                            None if pd.isna(row.value) else row.value))
    return kpi


def total(kpi: pd.DataFrame, metric: str, start: date, end: date,
          dimension: str = "all") -> float:
    rows = kpi[(kpi["metric"] == metric) & (kpi["dimension"] == dimension)
               & (kpi["date"] >= start) & (kpi["date"] <= end)]
    return float(rows["value"].astype(float).sum())


def flat(text: str) -> str:
    """The text part with its lines joined (it is wrapped at 76 columns)."""
    return re.sub(r"[ \n]+", " ", text).strip()  # no-break spaces stay


def test_periods() -> None:
    assert (W49.start, W49.end, W49.key) == (date(2026, 11, 30), date(2026, 12, 6), "2026-W49")
    assert W49.previous().key == "2026-W48"
    assert (W49.last_year().start, W49.last_year().key) == (date(2025, 12, 1), "2025-W49")
    november = period.parse("2026-11", "month")
    assert (november.start, november.end, november.previous().key,
            november.last_year().key) == (date(2026, 11, 1), date(2026, 11, 30), "2026-10",
                                          "2025-11")
    assert period.last_closed("week", date(2026, 12, 7)) == W49
    assert period.last_closed("week", date(2026, 12, 13)) == W49  # Sunday: not closed yet
    assert period.last_closed("month", date(2026, 12, 1)) == november
    for text, kind in (("2026-W54", "week"), ("2026-49", "week"), ("2026-13", "month"),
                       ("11/2026", "month")):
        with pytest.raises(ConfigError, match="e.g. 2026-W49|like 2026-11"):
            period.parse(text, kind)  # type: ignore[arg-type]


def test_the_figures_are_the_sums_of_kpi_daily_and_the_split_adds_up(
        shop: pd.DataFrame, conn: psycopg.Connection) -> None:
    client = registry.load_client("shop")
    review = build(conn, "shop", client, W49, NOW)
    figures = review.figures
    revenue = figures.metric("revenue")
    assert revenue.current == pytest.approx(total(shop, "revenue", W49.start, W49.end))
    assert revenue.previous == pytest.approx(total(shop, "revenue", date(2026, 11, 23),
                                                   date(2026, 11, 29)))
    assert revenue.last_year == pytest.approx(total(shop, "revenue", date(2025, 12, 1),
                                                    date(2025, 12, 7)))
    assert revenue.target == 400 * 7
    ticket = figures.metric("average_ticket")
    assert ticket.reading == "period" and ticket.current == pytest.approx(
        revenue.current / total(shop, "orders", W49.start, W49.end))
    customers = figures.metric("customers")
    days = shop[(shop["metric"] == "customers") & (shop["dimension"] == "all")
                & (shop["date"] >= W49.start) & (shop["date"] <= W49.end)]
    assert customers.reading == "daily_average" and customers.current == pytest.approx(
        days["value"].astype(float).mean())
    for which in ("previous", "last_year"):
        (split,) = figures.splits[which]
        top = split.children("revenue")
        assert {p.metric.name for p in top} == {"orders", "average_ticket"}
        assert sum(p.contribution for p in top) == pytest.approx(split.change, rel=1e-4)
        inner = split.children("average_ticket")
        ticket_part = next(p for p in top if p.metric.name == "average_ticket")
        assert sum(p.contribution for p in inner) == pytest.approx(ticket_part.contribution,
                                                                   rel=1e-4, abs=1e-6)
    assert split.change == pytest.approx(revenue.current - revenue.last_year)
    # Movers: every location and channel that moved, with its change against the week before.
    for mover in [m for movers in figures.movers.values() for m in movers]:
        assert mover.current == pytest.approx(total(shop, "revenue", W49.start, W49.end,
                                                    mover.dimension)
                                              if mover.dimension == "all" else float(
            shop[(shop["metric"] == "revenue") & (shop["dimension"] == mover.dimension)
                 & (shop["dimension_value"] == mover.value) & (shop["date"] >= W49.start)
                 & (shop["date"] <= W49.end)]["value"].astype(float).sum()))
    text = flat(review.text())
    assert f"Revenue: €{revenue.current:,.2f}." in text
    assert f"{100 * revenue.current / revenue.target:.0f}% of the target of €2,800.00" in text


def test_a_week_without_data_says_so_and_a_cut_week_compares_the_same_days(
        shop: pd.DataFrame, conn: psycopg.Connection) -> None:
    client = registry.load_client("shop")
    empty = build(conn, "shop", client, period.parse("2027-W09", "week"),
                  datetime(2027, 3, 8, 6, tzinfo=UTC))
    text = flat(empty.text())
    assert "No sales were recorded from Monday, March 1, 2027 to Sunday, March 7, 2027." in text
    assert "The data runs from" in text and "Sunday, December 6, 2026." in text
    assert empty.figures.metrics == [] and "€0.00" not in text
    assert empty.document.subject == "Shop, week of Mar 1, 2027: no data"
    # Data up to Wednesday: Monday to Wednesday against Monday to Wednesday.
    conn.execute("DELETE FROM shop_marts.kpi_daily WHERE date > '2026-12-02'")
    cut = build(conn, "shop", client, W49, NOW)
    assert cut.figures.span.end == date(2026, 12, 2)
    assert cut.figures.metric("revenue").previous == pytest.approx(
        total(shop, "revenue", date(2026, 11, 23), date(2026, 11, 25)))
    assert cut.figures.metric("revenue").target == 400 * 3
    text = flat(cut.text())
    assert "The data stops on Wednesday, December 2, 2026: the figures cover" in text
    assert "4 days of the period have no figures yet." in text
    # The first whole week of the data (from Friday 3 October 2025) has only part of a week
    # before it, and no year before: both said, neither compared in part nor shown as zero.
    first = build(conn, "shop", client, period.week_of(date(2025, 10, 6)), NOW)
    text = flat(first.text())
    assert "No complete data for the week before." in text
    assert "No complete data for the same week last year." in text
    assert first.figures.splits == {"previous": [], "last_year": []}
    assert first.figures.movers == {} and first.figures.metric("revenue").previous is None


def outbox(project: Path) -> list:
    folder = project / ".goalpost" / "outbox" / "shop"
    return [message_from_bytes(p.read_bytes(), policy=policy.default)
            for p in sorted(folder.glob("*.eml"))] if folder.exists() else []


def test_each_owner_gets_the_week_once_even_from_concurrent_senders(
        shop: pd.DataFrame, conn: psycopg.Connection, database_url: str,
        project: Path) -> None:
    client = registry.load_client("shop")
    results = []

    def send() -> None:
        with psycopg.connect(database_url, autocommit=True) as own:
            results.append(deliver.send_due(own, "shop", client, now=NOW))

    threads = [threading.Thread(target=send) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent = sorted(s["recipient"] for r in results for s in r.sent)
    assert sent == ["camille@shop.example", "sam@shop.example"]
    emails = outbox(project)
    assert sorted(m["To"] for m in emails) == sent
    assert {m["X-Goalpost-Review"] for m in emails} == {"2026-W49"}
    # Later that week: the same period, nothing more.
    again = deliver.send_due(conn, "shop", client, now=NOW + timedelta(days=2))
    assert again.sent == [] and sorted(again.already_sent) == sent
    assert len(outbox(project)) == 2
    rows = conn.execute("SELECT recipient, status, channel, attempts, subject FROM "
                        "goalpost.review_deliveries ORDER BY recipient").fetchall()
    assert [r[:4] for r in rows] == [(r, "sent", "outbox", 1) for r in sent]
    assert rows[0][4] == emails[0]["Subject"]
    # A third owner added later gets it; the others do not get it again.
    write_client(project, owners=[*OWNERS, {"name": "Lou", "email": "lou@shop.example"}])
    later = deliver.send_due(conn, "shop", registry.load_client("shop"), now=NOW)
    assert [s["recipient"] for s in later.sent] == ["lou@shop.example"]
    # review.send: false: the scheduler sends nothing.
    write_client(project, review={"send": False})
    assert deliver.send_due(conn, "shop", registry.load_client("shop"), now=NOW) is None


def test_a_failed_delivery_is_retried_then_sent_once_with_the_same_message_id(
        shop: pd.DataFrame, conn: psycopg.Connection, project: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("GOALPOST_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("GOALPOST_SMTP_PORT", str(port))
    monkeypatch.setenv("GOALPOST_SMTP_SECURITY", "none")
    monkeypatch.setattr(delivery, "RETRY_DELAYS", (0.0, 0.0))
    write_client(project, language="fr")
    client = registry.load_client("shop")
    down = deliver.send_due(conn, "shop", client, now=NOW)
    assert down.sent == [] and {f["attempts"] for f in down.failed} == {3}
    assert all("Connection refused" in f["error"] or "Errno" in f["error"]
               for f in down.failed)
    assert "will retry at the next slot" in down.warnings()[0]
    assert conn.execute("SELECT DISTINCT status, attempts FROM goalpost.review_deliveries"
                        ).fetchall() == [("pending", 3)]
    inbox = Inbox()
    inbox.start(port)
    try:
        up = deliver.send_due(conn, "shop", client, now=NOW + timedelta(days=1))
        again = deliver.send_due(conn, "shop", client, now=NOW + timedelta(days=1, hours=1))
    finally:
        inbox.stop()
    assert sorted(s["recipient"] for s in up.sent) == ["camille@shop.example",
                                                        "sam@shop.example"]
    assert again.sent == [] and len(inbox.messages) == 2
    message = inbox.messages[0]
    assert message["Message-ID"] == deliver.message.message_id("shop", "2026-W49",
                                                               message["To"])
    assert message["Content-Language"] == "fr"
    assert message["Subject"].startswith("Shop, semaine du 30 nov. 2026\u00a0: chiffre")
    assert conn.execute("SELECT DISTINCT status, attempts, channel FROM "
                        "goalpost.review_deliveries").fetchall() == [("sent", 4, "smtp")]


def test_a_delivery_failing_for_two_days_is_given_up(
        shop: pd.DataFrame, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOALPOST_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("GOALPOST_SMTP_PORT", str(free_port()))
    monkeypatch.setenv("GOALPOST_SMTP_SECURITY", "none")
    monkeypatch.setattr(delivery, "RETRY_DELAYS", ())
    client = registry.load_client("shop")
    deliver.send_due(conn, "shop", client, now=NOW)
    late = deliver.send_due(conn, "shop", client, now=NOW + timedelta(days=2, hours=1))
    assert late.expired == 2 and late.sent == [] and late.failed == []
    assert "2 review email(s) given up after 2 days" in late.warnings()[0]
    assert conn.execute("SELECT DISTINCT status FROM goalpost.review_deliveries"
                        ).fetchall() == [("expired",)]


def test_a_client_with_nothing_built_gets_no_review(project: Path, conn: psycopg.Connection
                                                    ) -> None:
    write_client(project)
    with pytest.raises(NotFoundError, match="no data built yet"):
        deliver.send_due(conn, "shop", registry.load_client("shop"), now=NOW)
    assert conn.execute("SELECT count(*) FROM goalpost.review_deliveries").fetchone() == (0,)


def test_the_alert_emails_speak_the_clients_language(
        shop: pd.DataFrame, conn: psycopg.Connection, project: Path) -> None:
    from goalpost.alerts.check import evaluate_alerts

    # The week's orders against the week before, so that the change rule fires either way.
    week = total(shop, "orders", END - timedelta(days=6), END)
    before = total(shop, "orders", END - timedelta(days=13), END - timedelta(days=7))
    write_client(project, language="fr", alerts={"rules": [
        {"name": "slow_day", "kind": "threshold", "metric": "revenue",
         "dimension": "location", "operator": "<", "value": 100000},
        {"name": "orders_moved", "kind": "change", "metric": "orders", "period": "week",
         "change_pct": -0.1 if week < before else 0.1}]})
    outcome = evaluate_alerts(conn, "shop", registry.load_client("shop"), now=NOW)
    assert outcome.warnings() == [] and len(outcome.delivery.sent) == 2
    emails = [m for m in outbox(project) if not m["X-Goalpost-Review"]]
    text = emails[0].get_body(("plain",)).get_content()
    locations = shop[(shop["dimension"] == "location") & (shop["metric"] == "revenue")]
    day = locations["date"].max()
    shops = len(locations[locations["date"] == day])
    assert emails[0]["Subject"] == (f"Shop\u00a0: {shops + 1} alertes\u00a0: "
                                    f"orders_moved, slow_day ({shops})")
    assert text.startswith(f"Shop\u00a0: {shops + 1} alertes\n")
    assert "slow_day (avertissement) : revenue < 100000, par point de vente".replace(
        " :", "\u00a0:") in text
    assert re.search(rf"Chiffre d’affaires [\d\u202f]+,\d\d le {day} est sous 100\u202f000 \(",
                     text), text
    assert "valeur " in text and ", seuil 100\u202f000" in text
    assert "Pour suspendre une règle\u00a0: goalpost alerts snooze shop" in text
    assert "Commandes " in text and "sur les 7 jours jusqu’au" in text
    html = emails[0].get_body(("html",)).get_content()
    assert "Envoyé par Goalpost." in html and "avertissement" in html
