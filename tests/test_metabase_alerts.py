"""Metabase alerts for the alert rules marked `metabase: true`: plan, apply (spec-valid
bodies), idempotence, targeted updates, removal, refusals; the alert cards' SQL finds what
goalpost.alerts.evaluate finds on the same data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import psycopg
import pytest
from metabase_fixtures import make_client, standin  # noqa: F401 - fixture
from psycopg import sql

from goalpost.alerts import evaluate
from goalpost.alerts.check import evaluate_alerts
from goalpost.alerts.delivery import outbox_dir
from goalpost.alerts.links import dashboard_link
from goalpost.core.errors import ConfigError
from goalpost.core.registry import load_client
from goalpost.core.registry.models import Client
from goalpost.core.warehouse.tenants import refresh_grants
from goalpost.metabase.alerts import alert_crons, alert_sql
from goalpost.metabase.api import MetabaseClient
from goalpost.metabase.apply import apply_plan
from goalpost.metabase.bootstrap import bootstrap
from goalpost.metabase.plan import compute_plan
from goalpost.metabase.report import reader_connection
from goalpost.sandbox.metabase_standin.server import StandinServer

LOW_STOCK = {"name": "low_stock", "kind": "threshold", "metric": "stock", "operator": "<",
             "value": "reorder_point", "recipients": ["owners", "buyer@acme.example"],
             "metabase": True}
DROPS = {"name": "drops", "kind": "anomaly", "metric": "revenue", "min_severity": "high",
         "direction": "drop", "metabase": True}
EMAIL_ONLY = {"name": "slow_day", "kind": "threshold", "metric": "revenue", "operator": "<",
              "value": 150}


def _rewrite(project: Path, slug: str, **changes: Any) -> None:
    path = project / "clients" / f"{slug}.yaml"
    document = orjson.loads(path.read_bytes())
    document.update(changes)
    path.write_bytes(orjson.dumps(document))


def _plan(slug: str, conn: psycopg.Connection):
    return compute_plan(slug, load_client(slug), MetabaseClient.from_env(), conn)


def _apply(slug: str, conn: psycopg.Connection, server: StandinServer) -> list[Any]:
    """Apply the plan; the write requests it made."""
    before = len(server.metabase.seen)
    apply_plan(_plan(slug, conn), MetabaseClient.from_env(), conn)
    return [r for r in server.metabase.seen[before:] if r.method != "GET"]


def test_rules_asking_for_it_become_metabase_alerts(standin: StandinServer,  # noqa: F811
                                                   project: Path, conn: psycopg.Connection,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    make_client(project, conn, "acme", schedule="30 5 * * *",
                alerts={"rules": [LOW_STOCK, DROPS, EMAIL_ONLY]})
    monkeypatch.setenv("GOALPOST_METABASE_TIMEZONE", "Europe/Paris")  # the client's: as is
    bootstrap()
    plan = _plan("acme", conn)
    text = plan.render()
    assert "+ card        alerts.low_stock" in text and "+ notification low_stock" in text
    assert "+ card        alerts.drops" in text and "+ notification drops" in text
    assert "slow_day" not in text  # email only
    first = _apply("acme", conn, standin)
    state = standin.metabase.state
    cards = {c["name"]: c for c in state.cards.values()}
    groups = {g["name"]: g["id"] for g in state.groups.values()}
    collection = next(c for c in state.collections.values() if c["name"] == "Acme Shop")
    card = cards["Alert: low_stock"]
    assert card["collection_id"] == collection["id"] and card["display"] == "table"
    assert "acme_marts.inventory_status" in card["dataset_query"]["native"]["query"]
    notifications = {n["payload"]["card_id"]: n for n in state.notifications.values()}
    low = notifications[card["id"]]
    assert low["active"] is True
    assert low["payload"] == {"card_id": card["id"], "send_condition": "has_result",
                              "send_once": False}
    assert [s["cron_schedule"] for s in low["subscriptions"]] == ["0 30 6 ? * *"]
    (handler,) = low["handlers"]
    assert handler["channel_type"] == "channel/email"
    assert handler["recipients"] == [
        {"type": "notification-recipient/group",
         "permissions_group_id": groups["Acme Shop (acme)"]},
        {"type": "notification-recipient/raw-value",
         "details": {"value": "buyer@acme.example"}}]
    assert notifications[cards["Alert: drops"]["id"]]["handlers"][0]["recipients"] == [
        {"type": "notification-recipient/group",
         "permissions_group_id": groups["Acme Shop (acme)"]}]
    assert [(w.method, w.path) for w in first].count(("POST", "/api/notification/")) == 2
    # Again: nothing to write.
    assert _plan("acme", conn).empty
    second = _apply("acme", conn, standin)
    assert second == []
    print(f"with 2 Metabase alerts: first apply {len(first)} writes, second {len(second)}")
    # New recipients: only the notification is updated.
    _rewrite(project, "acme", alerts={"rules": [dict(LOW_STOCK, recipients=["a@acme.example"]),
                                                DROPS, EMAIL_ONLY]})
    plan = _plan("acme", conn)
    assert [(c.action, c.kind, c.key) for c in plan.pending] == [
        ("update", "notification", "low_stock")]
    writes = _apply("acme", conn, standin)
    assert [(w.method, w.path) for w in writes] == [("PUT", f"/api/notification/{low['id']}")]
    assert state.notifications[low["id"]]["handlers"][0]["recipients"] == [
        {"type": "notification-recipient/raw-value", "details": {"value": "a@acme.example"}}]
    # An alert deleted by hand in Metabase (deactivated) is put back.
    mb = MetabaseClient.from_env()
    mb.put(f"/api/notification/{low['id']}", dict(
        {k: state.notifications[low["id"]][k] for k in ("payload_type", "payload",
                                                        "subscriptions", "handlers")},
        active=False), what="test")
    assert [(c.action, c.key, c.reason) for c in _plan("acme", conn).pending] == [
        ("update", "low_stock", "deactivated in Metabase")]
    _apply("acme", conn, standin)
    assert state.notifications[low["id"]]["active"] is True
    # No longer `metabase: true`: the alert is deactivated and its card archived.
    _rewrite(project, "acme", alerts={"rules": [dict(LOW_STOCK, metabase=False), DROPS,
                                                EMAIL_ONLY]})
    plan = _plan("acme", conn)
    assert [(c.action, c.kind, c.key) for c in plan.pending] == [
        ("delete", "notification", "low_stock"), ("delete", "card", "alerts.low_stock")]
    _apply("acme", conn, standin)
    assert state.notifications[low["id"]]["active"] is False
    assert state.cards[card["id"]]["archived"] is True
    assert state.notifications[notifications[cards["Alert: drops"]["id"]]["id"]]["active"]
    assert _plan("acme", conn).empty


def test_archived_alert_card_is_restored_with_its_alert(standin: StandinServer,  # noqa: F811
                                                        project: Path,
                                                        conn: psycopg.Connection) -> None:
    make_client(project, conn, "acme", alerts={"rules": [DROPS]})
    bootstrap()
    _apply("acme", conn, standin)
    state = standin.metabase.state
    card = next(c for c in state.cards.values() if c["name"] == "Alert: drops")
    MetabaseClient.from_env().put(f"/api/card/{card['id']}", {"archived": True}, what="test")
    (notification,) = state.notifications.values()
    assert notification["active"] is False  # Metabase ends a question's alerts with it
    assert {(c.kind, c.key, c.reason) for c in _plan("acme", conn).pending} == {
        ("card", "alerts.drops", "archived in Metabase"),
        ("notification", "drops", "deactivated in Metabase")}
    _apply("acme", conn, standin)
    assert not state.cards[card["id"]]["archived"] and notification["active"]
    assert _plan("acme", conn).empty


@pytest.mark.parametrize(("rule", "words"), [
    ({"name": "stale", "kind": "stale_source", "metabase": True},
     "a stale_source rule cannot be a Metabase alert"),
    ({"name": "broken", "kind": "run_failed", "recipients": ["ops@acme.example"],
      "metabase": True}, "a run_failed rule cannot be a Metabase alert"),
])
def test_rules_metabase_cannot_see_are_refused(project: Path, rule: dict[str, Any],
                                               words: str) -> None:
    text = ("name: Acme\nowners:\n  - {name: Ann, email: ann@acme.example}\nalerts:\n"
            f"  rules:\n    - {orjson.dumps(rule).decode()}\n")
    (project / "clients" / "acme.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_client("acme")
    message = str(info.value)
    assert "clients/acme.yaml:6: alerts.rules[0].metabase:" in message
    assert words in message and "control schema" in message


@pytest.mark.parametrize(("schedule", "cron"), [
    ("0 6 * * *", "0 0 7 ? * *"),
    ("30 5 * * 1-5", "0 30 6 ? * MON,TUE,WED,THU,FRI"),
    ("15 23 * * 0", "0 15 0 ? * MON"),  # Sunday night's run: Monday 00:15
    ("0 6,18 * * *", "0 0 7,19 ? * *"),
    ("0,30 6 * * *", "0 0,30 7 ? * *"),
    ("0 6 1 * *", "0 0 7 ? * *"),  # monthly: checked daily after the run's time
])
def test_alert_cron_follows_the_clients_runs(schedule: str, cron: str) -> None:
    """Client and Metabase in one zone (UTC, the default): only the hour after the run.
    Conversions between zones: tests/test_metabase_schedule.py."""
    at = datetime(2025, 1, 15, tzinfo=UTC)
    assert alert_crons(Client(name="X", schedule=schedule), "UTC", at) == [cron]


# -- the alert cards' SQL against evaluate.py --------------------------------------------------

TABLES = {
    "marts.kpi_daily": "metric text, date date, dimension text, dimension_value text, "
                       "value numeric",
    "marts.daily_sales": "sales_date date, location_id text, location_name text",
    "marts.inventory_status": "as_of date, location_id text, location_name text, "
                              "product_id text, product_name text, on_hand numeric, "
                              "days_of_cover numeric, reorder_point numeric",
    "insights.anomalies": "metric text, dimension text, dimension_value text, date date, "
                          "value double precision, expected double precision, "
                          "severity text, direction text",
    "insights.goal_progress": "goal text, status text, as_of date, target double precision, "
                              "actual_to_date double precision, "
                              "forecast_at_deadline double precision, deadline date",
    "staging.current_locations": "location_id text, name text",
}


def _columns(table: str) -> list[str]:
    return [part.split()[0] for part in TABLES[table].split(", ")]


def _insert(conn: psycopg.Connection, table: str, rows: list[tuple[Any, ...]]) -> None:
    layer, name = table.split(".")
    target = sql.SQL("{}.{}").format(sql.Identifier(f"acme_{layer}"), sql.Identifier(name))
    with conn.cursor() as cursor:
        cursor.executemany(sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            target, sql.SQL(", ").join(map(sql.Identifier, _columns(table))),
            sql.SQL(", ").join(sql.Placeholder() * len(rows[0]))), rows)


def _marts(project: Path, conn: psycopg.Connection, rules: list[dict[str, Any]],
           **extra: Any) -> date:
    """Hand-made marts (beside make_client's tables) where every rule below has keys that
    breach and keys that do not; the client's yesterday."""
    make_client(project, conn, "acme", alerts={"rules": rules},
                goals=[{"name": "spring", "metric": "revenue", "target": 1000,
                        "period": "month", "deadline": "2030-03-31"}], **extra)
    for table, columns in TABLES.items():
        layer, name = table.split(".")
        target = sql.SQL("{}.{}").format(sql.Identifier(f"acme_{layer}"), sql.Identifier(name))
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ()").format(target))
        for column in columns.split(", "):
            conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {}").format(
                target, sql.SQL(column)))
    refresh_grants(conn, "acme")
    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    yesterday = today - timedelta(days=1)
    kpi = []
    for back in range(0, 15):
        day = today - timedelta(days=back)
        for location, value in (("LYO-01", 100 if back <= 7 else 400), ("VIL-01", 300)):
            kpi.append(("revenue", day, "location", location, value))
        kpi.append(("revenue", day, "all", "all", 500 if back else 10))
    _insert(conn, "marts.kpi_daily", kpi)
    _insert(conn, "marts.daily_sales", [(yesterday, "LYO-01", "Croix-Rousse"),
                                        (yesterday, "VIL-01", "Villeurbanne")])
    _insert(conn, "staging.current_locations", [("LYO-01", "Croix-Rousse"),
                                                ("VIL-01", "Villeurbanne")])
    _insert(conn, "marts.inventory_status", [
        (yesterday, "LYO-01", "Croix-Rousse", "BRD", "Bread", 3, 1, 10),
        (yesterday, "LYO-01", "Croix-Rousse", "CRO", "Croissant", 30, 9, 10),
        (yesterday, "VIL-01", "Villeurbanne", "BRD", "Bread", None, None, 10)])
    _insert(conn, "insights.anomalies", [
        ("revenue", "location", "LYO-01", yesterday, 100, 400, "high", "drop"),
        ("revenue", "location", "VIL-01", yesterday, 900, 300, "high", "spike"),
        ("revenue", "all", "all", yesterday, 450, 500, "low", "drop"),
        ("revenue", "location", "VIL-01", yesterday - timedelta(days=5), 10, 300, "high",
         "drop")])
    _insert(conn, "insights.goal_progress", [
        ("spring", "on-track", yesterday - timedelta(days=1), 1000, 100, 1100, date(2030, 3, 31)),
        ("spring", "off-track", yesterday, 1000, 100, 700, date(2030, 3, 31)),
        ("summer", "at-risk", yesterday, 1000, 100, 900, date(2030, 6, 30))])
    return yesterday


RULES = [
    LOW_STOCK,
    {"name": "low_cover", "kind": "threshold", "metric": "days_of_cover", "operator": "<=",
     "value": 1, "metabase": True},
    {"name": "slow_shop", "kind": "threshold", "metric": "revenue", "dimension": "location",
     "operator": "<", "value": 150, "metabase": True},
    {"name": "slow_total", "kind": "threshold", "metric": "revenue", "operator": "<",
     "value": 600, "metabase": True},
    {"name": "weekly_fall", "kind": "change", "metric": "revenue", "dimension": "location",
     "change_pct": -20, "min_change": 100, "metabase": True},
    {"name": "daily_rise", "kind": "change", "metric": "revenue", "period": "day",
     "change_pct": 10, "metabase": True},
    DROPS,
    {"name": "any_anomaly", "kind": "anomaly", "min_severity": "low", "within_days": 7,
     "metabase": True},
    {"name": "goals", "kind": "goal", "metabase": True},
    {"name": "spring_off", "kind": "goal", "goal": "spring", "status": ["at-risk"],
     "metabase": True},
]
KEY_COLUMNS = {"threshold": ("location_id", "product_id"), "change": ("location_id",),
               "anomaly": ("metric", "dimension", "dimension_value"), "goal": ("goal",)}


def test_alert_cards_find_what_the_email_alerts_find(project: Path,
                                                     conn: psycopg.Connection) -> None:
    _marts(project, conn, RULES)
    client = load_client("acme")
    ctx = evaluate.Context(conn, "acme", client, datetime.now(UTC))
    found: dict[str, list[str]] = {}
    with reader_connection("acme") as reader:  # the role Metabase connects with
        for rule in client.alerts.rules:
            cursor = reader.execute(alert_sql(rule, "acme", client))
            columns = [c.name for c in cursor.description]
            keyed = [c for c in KEY_COLUMNS[rule.kind] if c in columns]
            rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
            keys = sorted("/".join(str(row[c]) for c in keyed) if keyed else "all"
                          for row in rows)
            expected = sorted(o.key for o in evaluate.evaluate(ctx, rule).triggered)
            assert keys == expected, rule.name
            found[rule.name] = keys
    assert found == {
        "low_stock": ["LYO-01/BRD"], "low_cover": ["LYO-01/BRD"], "slow_shop": ["LYO-01"],
        "slow_total": ["all"], "weekly_fall": ["LYO-01"], "daily_rise": [],
        "drops": ["revenue/location/LYO-01"],
        "any_anomaly": ["revenue/all/all", "revenue/location/LYO-01", "revenue/location/VIL-01"],
        "goals": ["spring", "summer"], "spring_off": []}


def test_alert_emails_link_to_the_provisioned_dashboards(standin: StandinServer,  # noqa: F811
                                                        project: Path, conn: psycopg.Connection,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    rules = [dict(LOW_STOCK, recipients=["owners"]), RULES[2], DROPS]  # stock, revenue, anomaly
    _marts(project, conn, rules)
    bootstrap()
    apply_plan(_plan("acme", conn), MetabaseClient.from_env(), conn)
    dashboards = {d["name"]: d["id"] for d in standin.metabase.state.dashboards.values()}
    monkeypatch.setenv("GOALPOST_METABASE_SITE_URL", "https://bi.acme.example/")
    outcome = evaluate_alerts(conn, "acme", load_client("acme"))
    assert len(outcome.delivery.sent) == 1, outcome.as_dict()
    (path,) = outbox_dir("acme").glob("*.eml")
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    links = {name: f"https://bi.acme.example/dashboard/{dashboards[name]}"
             for name in ("Inventory", "Sales overview", "Forecasts and anomalies")}
    for line, name in (("Bread at Croix-Rousse", "Inventory"),
                       ("is under 150 (Croix-Rousse)", "Sales overview"),
                       ("a high drop", "Forecasts and anomalies")):
        item = text[text.index(line):]
        assert item.split("\n  - ")[0].count(f"dashboard: {links[name]}\n") == 1, item
        assert f"href='{links[name]}'" in html
    assert "Dashboard: " not in text  # no closing link: each item has its own


def test_the_yamls_dashboard_url_still_wins(project: Path, conn: psycopg.Connection,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOALPOST_METABASE_SITE_URL", "https://bi.acme.example")
    _marts(project, conn, [LOW_STOCK, RULES[2]])
    _rewrite(project, "acme", alerts={"rules": [LOW_STOCK, RULES[2]],
                                      "dashboard_url": "https://example.com/board"})
    conn.execute("INSERT INTO goalpost.metabase_objects (client, kind, key, metabase_id, "
                 "fingerprint, payload) VALUES ('acme', 'dashboard', 'inventory', 5, '', '{}')")
    client = load_client("acme")
    assert dashboard_link(conn, "acme", client, client.alerts.rules[0]) == \
        "https://example.com/board"
    evaluate_alerts(conn, "acme", client)
    path = next(outbox_dir("acme").glob("*owner@acme.example*.eml"))
    text = message_from_bytes(path.read_bytes(), policy=policy.default).get_body(
        ("plain",)).get_content()
    assert text.count("https://example.com/board") == 1  # once, closing the message
    assert "Dashboard: https://example.com/board" in text
    # Without the YAML's link: the provisioned dashboard, else nothing.
    _rewrite(project, "acme", alerts={"rules": [LOW_STOCK, RULES[2]]})
    client = load_client("acme")
    stock, revenue = client.alerts.rules
    assert dashboard_link(conn, "acme", client, stock) == "https://bi.acme.example/dashboard/5"
    assert dashboard_link(conn, "acme", client, revenue) is None  # sales_overview not made
    monkeypatch.delenv("GOALPOST_METABASE_SITE_URL")
    monkeypatch.delenv("GOALPOST_METABASE_URL", raising=False)
    assert dashboard_link(conn, "acme", client, stock) is None
