"""Alert rules: validation that names the file and field, each kind of rule on hand-made
marts, reminders, quiet hours, failed runs to the consultant, the outbox, and the CLI.

The marts here are tables written by the test (the real build is covered by
tests/test_alerts_end_to_end.py); without GOALPOST_SMTP_HOST, emails go to the outbox folder.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from goalpost.alerts.check import evaluate_alerts, quiet_until
from goalpost.alerts.delivery import outbox_dir, smtp_settings
from goalpost.alerts.manage import overview, snooze
from goalpost.app import clients
from goalpost.core import registry
from goalpost.core.errors import ConfigError

SLUG = "shop"
NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)  # 10:00 in Paris, a Monday
LOCATIONS = {"LYO-01": "Croix-Rousse", "VIL-01": "Villeurbanne"}

VALID = """\
name: Shop
timezone: Europe/Paris
owners:
  - {name: Camille, email: camille@shop.example}
goals:
  - {name: spring, metric: revenue, target: 1000, period: month, deadline: 2025-03-31}
alerts:
  rules:
    - name: low_stock
      kind: threshold
      metric: stock
      operator: "<"
      value: reorder_point
      recipients: [owners, buyer@shop.example]
    - {name: revenue_drop, kind: change, metric: revenue, change_pct: -20, min_change: 50}
"""


def write(project: Path, document: dict[str, Any] | str, slug: str = SLUG) -> None:
    text = document if isinstance(document, str) else orjson.dumps(document).decode()
    (project / "clients" / f"{slug}.yaml").write_text(text)


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("metric: stock", "metric: stok", 11, "alerts.rules[0].metric", "unknown metric 'stok'"),
        ('operator: "<"', 'operator: "=<"', 12, "alerts.rules[0].operator",
         "must be one of '<', '<=', '>' or '>='"),
        ("[owners, buyer@shop.example]", "[owners, buyer]", 14, "alerts.rules[0].recipients",
         "'buyer' is not a recipient"),
        ("metric: revenue, change_pct", "metric: margin, change_pct", 15,
         "alerts.rules[1].metric", "unknown metric 'margin'"),
        ("change_pct: -20", "change_pct: 0", 15, "alerts.rules[1].change_pct", "a fall"),
        ("kind: change", "kind: drop", 15, "alerts.rules[1]", "`kind` must be one of"),
        ("kind: change,", "kind: goal, goal: summer, ", 15, "alerts.rules[1].goal",
         "no goal named 'summer'"),
        ("metric: stock", "metric: revenue", 13, "alerts.rules[0].value",
         "reorder_point is a threshold for the stock metric only"),
        ("  rules:", "  remind_after: often\n  rules:", 8, "alerts.remind_after",
         "not a duration"),
        ("name: revenue_drop", "name: low_stock", 8, "alerts.rules", "repeated: low_stock"),
    ],
)
def test_bad_rules_are_refused_naming_file_line_and_field(project, old, new, line, field, words):
    assert old in VALID
    write(project, VALID.replace(old, new))
    with pytest.raises(ConfigError) as info:
        registry.load_client(SLUG)
    message = str(info.value)
    assert f"clients/shop.yaml:{line}: {field}:" in message
    assert words in message


def test_valid_rules_read_with_their_defaults(project) -> None:
    write(project, VALID)
    client = registry.load_client(SLUG)
    low, drop = client.alerts.rules
    assert (low.dimension, low.severity, low.recipients) == (
        "product", "warning", ["owners", "buyer@shop.example"])
    assert (drop.period, drop.dimension, drop.recipients) == ("week", "all", None)
    assert drop.describe() == ("revenue falls by 20% or more and by at least 50 over a week "
                               "against the week before, in total")
    # A client without owners must say who its rules are for.
    write(project, VALID.replace("owners:\n  - {name: Camille, email: camille@shop.example}\n",
                                 ""))
    with pytest.raises(ConfigError, match=r"shop.yaml:13: alerts.rules\[1\].recipients: "
                                          "required: the client has no owners"):
        registry.load_client(SLUG)


@pytest.mark.e2e
def test_panpan_alerts_on_low_stock_in_both_copies() -> None:
    repo = Path(__file__).resolve().parents[1]
    example = repo / "clients" / "panpan.yaml"
    assert example.read_bytes() == (repo / "sandbox" / "demo" / "panpan.yaml").read_bytes()
    client, _ = registry.parse_client(example.read_text(), example)
    (rule,) = client.alerts.rules
    assert (rule.name, rule.metric, rule.dimension, rule.operator, rule.value) == (
        "low_stock", "stock", "product", "<", "reorder_point")


def test_smtp_settings_come_from_the_environment() -> None:
    assert smtp_settings({}) is None
    settings = smtp_settings({"GOALPOST_SMTP_HOST": "smtp.example", "GOALPOST_SMTP_SECURITY":
                              "ssl", "GOALPOST_SMTP_USER": "me@x.example",
                              "GOALPOST_SMTP_PASSWORD": "secret"})
    assert (settings.port, settings.security, settings.sender) == (465, "ssl",
                                                                  "Goalpost <me@x.example>")
    with pytest.raises(ConfigError, match="GOALPOST_SMTP_SECURITY='tls' is not one of"):
        smtp_settings({"GOALPOST_SMTP_HOST": "smtp.example", "GOALPOST_SMTP_SECURITY": "tls"})


def test_quiet_hours_end_in_the_clients_time_zone(project) -> None:
    write(project, {"name": "Shop", "timezone": "Europe/Paris", "owners": [
        {"name": "C", "email": "c@shop.example"}],
        "alerts": {"quiet_hours": {"start": "21:00", "end": "07:00"}}})
    client = registry.load_client(SLUG)
    seven = datetime(2025, 3, 11, 6, 0, tzinfo=UTC)  # 07:00 in Paris (UTC+1)
    assert quiet_until(client, datetime(2025, 3, 10, 21, 30, tzinfo=UTC)) == seven
    assert quiet_until(client, datetime(2025, 3, 11, 5, 0, tzinfo=UTC)) == seven
    assert quiet_until(client, datetime(2025, 3, 11, 6, 0, tzinfo=UTC)) is None
    assert quiet_until(client, NOW) is None


# --- evaluations on hand-made marts -------------------------------------------------------


def setup_client(project: Path, conn: psycopg.Connection, rules: list[dict[str, Any]],
                 **alerts: Any) -> Any:
    """clients/shop.yaml with `rules`, its schemas, and its locations."""
    write(project, {"name": "Shop", "timezone": "Europe/Paris",
                    "owners": [{"name": "Camille", "email": "camille@shop.example"}],
                    "goals": [{"name": "spring", "metric": "revenue", "target": 1000,
                               "period": "month", "deadline": "2025-03-31"}],
                    "extensions": [], "alerts": {"rules": rules, **alerts}})
    client = registry.load_client(SLUG)
    clients.sync(conn, SLUG, client)
    conn.execute("CREATE TABLE shop_staging.current_locations (location_id text, name text)")
    conn.cursor().executemany("INSERT INTO shop_staging.current_locations VALUES (%s, %s)",
                     list(LOCATIONS.items()))
    conn.execute("CREATE TABLE shop_marts.kpi_daily (metric text, date date, dimension text, "
                 "dimension_value text, value numeric)")
    return client


def kpi(conn: psycopg.Connection, metric: str, location: str, values: dict[date, float]) -> None:
    conn.cursor().executemany(
        "INSERT INTO shop_marts.kpi_daily VALUES (%s, %s, 'location', %s, %s)",
        [(metric, day, location, value) for day, value in values.items()])


def outbox() -> list[Any]:
    """The .eml files written so far, parsed, oldest first."""
    folder = outbox_dir(SLUG)
    return [message_from_bytes(path.read_bytes(), policy=policy.default)
            for path in sorted(folder.glob("*.eml"))] if folder.is_dir() else []


def days(first: date, *values: float) -> dict[date, float]:
    return {first + timedelta(days=i): value for i, value in enumerate(values)}


def test_threshold_per_location_fires_once_then_reminds(project, conn) -> None:
    client = setup_client(project, conn, [
        {"name": "slow_day", "kind": "threshold", "metric": "revenue", "dimension": "location",
         "operator": "<", "value": 100, "remind_after": "12h"}])
    kpi(conn, "revenue", "LYO-01", days(date(2025, 3, 7), 150, 120, 80))
    kpi(conn, "revenue", "VIL-01", days(date(2025, 3, 7), 90, 95, 130))
    # Today's (10 March) partial figures are not judged.
    kpi(conn, "revenue", "VIL-01", {date(2025, 3, 10): 5})

    outcome = evaluate_alerts(conn, SLUG, client, now=NOW)
    assert [(r["checked"], r["fired"], r["firing"]) for r in outcome.rules] == [(2, 1, 1)]
    (message,) = outbox()
    assert message["Subject"] == "Shop: Revenue 80 on 2025-03-09 is under 100 (Croix-Rousse)"
    assert "recent: 03-07 150, 03-08 120, 03-09 80" in message.get_body(("plain",)).get_content()
    assert outcome.delivery.sent[0]["channel"] == "outbox"

    evaluate_alerts(conn, SLUG, client, now=NOW + timedelta(hours=2))
    assert len(outbox()) == 1
    outcome = evaluate_alerts(conn, SLUG, client, now=NOW + timedelta(hours=12))
    assert [r["reminded"] for r in outcome.rules] == [1]
    assert outbox()[-1]["Subject"].startswith("Shop: still: Revenue 80")
    assert len(outbox()) == 2


def test_a_snoozed_key_stays_silent_while_the_rest_of_its_rule_is_told(project, conn
                                                                       ) -> None:
    client = setup_client(project, conn, [
        {"name": "slow_day", "kind": "threshold", "metric": "revenue", "dimension": "location",
         "operator": "<", "value": 100}])
    kpi(conn, "revenue", "LYO-01", days(date(2025, 3, 7), 150, 120, 80))
    kpi(conn, "revenue", "VIL-01", days(date(2025, 3, 7), 150, 120, 90))
    snooze(SLUG, "slow_day", "2025-03-12", key="LYO-01", now=NOW)

    outcome = evaluate_alerts(conn, SLUG, client, now=NOW)
    assert [(r["checked"], r["fired"], r["snoozed"]) for r in outcome.rules] == [(2, 1, 1)]
    (message,) = outbox()
    assert message["Subject"] == "Shop: Revenue 90 on 2025-03-09 is under 100 (Villeurbanne)"
    (listed,) = overview(SLUG, now=NOW)
    assert listed["snoozed_until"] is None
    assert listed["snoozed_keys"] == {"LYO-01": datetime(2025, 3, 11, 23, tzinfo=UTC)}
    # Still under the threshold when the key's snooze ends: told then, once.
    evaluate_alerts(conn, SLUG, client, now=datetime(2025, 3, 11, 22, 59, tzinfo=UTC))
    assert len(outbox()) == 1
    evaluate_alerts(conn, SLUG, client, now=datetime(2025, 3, 11, 23, 1, tzinfo=UTC))
    assert outbox()[-1]["Subject"].startswith("Shop: Revenue 80 on 2025-03-09")
    evaluate_alerts(conn, SLUG, client, now=datetime(2025, 3, 11, 23, 2, tzinfo=UTC))
    assert len(outbox()) == 2


def test_change_needs_the_percentage_and_the_floor(project, conn) -> None:
    client = setup_client(project, conn, [
        {"name": "drop", "kind": "change", "metric": "revenue", "dimension": "location",
         "period": "week", "change_pct": -30, "min_change": 50}])
    # Croix-Rousse: 700 the week before, 420 the last week (-40%, -280): told.
    kpi(conn, "revenue", "LYO-01", days(date(2025, 2, 23), *[100] * 7, *[60] * 7))
    # Villeurbanne: 14 then 7 (-50%, but only -7): under the floor.
    kpi(conn, "revenue", "VIL-01", days(date(2025, 2, 23), *[2] * 7, *[1] * 7))
    outcome = evaluate_alerts(conn, SLUG, client, now=NOW)
    assert [(r["checked"], r["fired"]) for r in outcome.rules] == [(2, 1)]
    (message,) = outbox()
    assert message["Subject"] == ("Shop: Revenue 420 over the 7 days to 2025-03-08, -40.0% "
                                  "against 700 the 7 days before (Croix-Rousse)")


def test_anomaly_goal_and_stale_source_and_a_missing_table(project, conn) -> None:
    client = setup_client(project, conn, [
        {"name": "drops", "kind": "anomaly", "metric": "revenue", "direction": "drop",
         "min_severity": "medium"},
        {"name": "goal_risk", "kind": "goal", "goal": "spring", "severity": "critical"},
        {"name": "forecast_gone", "kind": "threshold", "metric": "days_of_cover",
         "operator": "<", "value": 2},
    ])
    conn.execute("CREATE TABLE shop_insights.anomalies (metric text, dimension text, "
                 "dimension_value text, date date, value numeric, expected numeric, "
                 "severity text, direction text)")
    conn.cursor().executemany(
        "INSERT INTO shop_insights.anomalies VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", [
                         ("revenue", "location", "LYO-01", date(2025, 3, 9), 40, 400, "high",
                          "drop"),
                         ("revenue", "location", "VIL-01", date(2025, 3, 9), 900, 400, "high",
                          "spike"),
                         ("revenue", "all", "all", date(2025, 3, 9), 300, 350, "low", "drop"),
                         ("revenue", "all", "all", date(2025, 3, 1), 30, 350, "high", "drop")])
    conn.execute("CREATE TABLE shop_insights.goal_progress (goal text, status text, as_of date, "
                 "target numeric, actual_to_date numeric, forecast_at_deadline numeric, "
                 "deadline date)")
    conn.execute("INSERT INTO shop_insights.goal_progress VALUES ('spring', 'on-track', "
                 "'2025-03-08', 1000, 300, 1100, '2025-03-31'), ('spring', 'off-track', "
                 "'2025-03-09', 1000, 310, 800, '2025-03-31')")

    outcome = evaluate_alerts(conn, SLUG, client, now=NOW)
    by_rule = {r["rule"]: r for r in outcome.rules}
    assert by_rule["drops"]["fired"] == 1 and by_rule["goal_risk"]["fired"] == 1
    # No inventory mart: that rule is reported, the others went on.
    assert "no inventory_status mart yet" in by_rule["forecast_gone"]["error"]
    assert outcome.warnings() == [
        "alert rule forecast_gone could not be evaluated: no inventory_status mart yet: the "
        "client's models have not been built"]
    (message,) = outbox()  # one digest for the owner
    assert message["Subject"] == "[critical] Shop: 2 alerts: goal_risk, drops"
    text = message.get_body(("plain",)).get_content()
    assert "goal spring is off-track: 310 to date, 800 forecast by 2025-03-31" in text
    assert "Revenue 40 on 2025-03-09: a high drop (expected about 400; Croix-Rousse)" in text
    assert conn.execute("SELECT count(*) FROM goalpost.alert_events WHERE client = %s AND "
                        "event = 'error' AND rule = 'forecast_gone'", (SLUG,)).fetchone() == (1,)

    # The goal recovers to at-risk only: a new condition, so told again; the anomaly has gone.
    conn.execute("INSERT INTO shop_insights.goal_progress VALUES ('spring', 'at-risk', "
                 "'2025-03-10', 1000, 400, 950, '2025-03-31')")
    conn.execute("DELETE FROM shop_insights.anomalies")
    outcome = evaluate_alerts(conn, SLUG, client, now=NOW + timedelta(hours=1))
    by_rule = {r["rule"]: r for r in outcome.rules}
    assert (by_rule["goal_risk"]["fired"], by_rule["drops"]["recovered"]) == (1, 1)
    assert "goal spring is at-risk" in outbox()[-1]["Subject"]


def test_stale_source_and_failed_run_go_to_the_consultant(project, conn, monkeypatch) -> None:
    monkeypatch.setenv("GOALPOST_CONSULTANT_EMAIL", "Ops@Consultancy.example")
    write(project, {"name": "Shop", "timezone": "Europe/Paris",
                    "owners": [{"name": "Camille", "email": "camille@shop.example"}],
                    "sources": [{"name": "pos", "connector": "files", "streams": [
                        {"name": "sales", "path": "exports/*.csv", "entity": "order_lines"}]}],
                    "alerts": {"rules": [{"name": "stale", "kind": "stale_source",
                                          "recipients": ["consultant"]}]}})
    client = registry.load_client(SLUG)
    outcome = evaluate_alerts(conn, SLUG, client, now=NOW, run_errors="extract pos.sales: boom")
    assert [(r["rule"], r["fired"]) for r in outcome.rules] == [("stale", 1), ("run_failed", 1)]
    (message,) = outbox()
    assert message["To"] == "ops@consultancy.example"
    text = message.get_body(("plain",)).get_content()
    assert "source pos: no data has arrived yet from sales" in text
    assert "the run of Shop failed: extract pos.sales: boom" in text
    # The same failure again: nothing new. A successful run re-arms it.
    evaluate_alerts(conn, SLUG, client, now=NOW, run_errors="extract pos.sales: boom")
    outcome = evaluate_alerts(conn, SLUG, client, now=NOW, run_errors="")
    assert [r["recovered"] for r in outcome.rules] == [0, 1]
    assert len(outbox()) == 1


def test_quiet_hours_hold_all_but_critical(project, conn) -> None:
    client = setup_client(project, conn, [
        {"name": "slow_day", "kind": "threshold", "metric": "revenue", "dimension": "location",
         "operator": "<", "value": 100},
        {"name": "very_slow", "kind": "threshold", "metric": "revenue", "dimension": "location",
         "operator": "<", "value": 10, "severity": "critical"}],
        quiet_hours={"start": "21:00", "end": "07:00"})
    kpi(conn, "revenue", "LYO-01", days(date(2025, 3, 8), 80, 5))
    evening = datetime(2025, 3, 10, 21, 30, tzinfo=UTC)  # 22:30 in Paris
    outcome = evaluate_alerts(conn, SLUG, client, now=evening)
    assert outcome.delivery.held == 1
    (message,) = outbox()
    assert message["Subject"] == ("[critical] Shop: Revenue 5 on 2025-03-09 is under 10 "
                                  "(Croix-Rousse)")
    assert conn.execute("SELECT rule, recipient, details->>'until' FROM goalpost.alert_events "
                        "WHERE event = 'held'").fetchall() == [
        ("slow_day", "camille@shop.example", "2025-03-11T06:00:00+00:00")]
    # Still quiet at 06:30 Paris; at 07:05 the held one goes out.
    evaluate_alerts(conn, SLUG, client, now=datetime(2025, 3, 11, 5, 30, tzinfo=UTC))
    assert len(outbox()) == 1
    outcome = evaluate_alerts(conn, SLUG, client, now=datetime(2025, 3, 11, 6, 5, tzinfo=UTC))
    assert (outcome.delivery.held, len(outcome.delivery.sent)) == (0, 1)
    assert outbox()[-1]["Subject"] == "Shop: Revenue 5 on 2025-03-09 is under 100 (Croix-Rousse)"


def test_cli_list_test_snooze_history_check(project, conn, run_cli) -> None:
    setup_client(project, conn, [
        {"name": "slow_day", "kind": "threshold", "metric": "revenue", "dimension": "location",
         "operator": "<", "value": 100}])
    kpi(conn, "revenue", "LYO-01", days(date(2025, 3, 1), 80))

    result = run_cli("alerts", "test", SLUG)
    assert result.exit_code == 0, result.output
    assert "sent to camille@shop.example (1 item(s))" in result.output
    (message,) = outbox()
    assert message["Subject"].startswith("[test] Shop: a test of rule slow_day")

    result = run_cli("alerts", "snooze", SLUG, "slow_day", "--until", "2099-01-01")
    assert result.exit_code == 0 and "snoozed until 2098-12-31 23:00 UTC" in result.output
    result = run_cli("alerts", "check", SLUG)
    assert result.exit_code == 0 and "firing    1" in result.output
    assert len(outbox()) == 1
    listed = orjson.loads(run_cli("alerts", "list", SLUG, "--json").output)
    assert [(r["rule"], len(r["firing"]), r["snoozed_until"][:4]) for r in listed] == [
        ("slow_day", 1, "2098")]

    assert run_cli("alerts", "snooze", SLUG, "slow_day", "--clear").exit_code == 0
    result = run_cli("alerts", "check", SLUG)
    assert "fired 1" in result.output and len(outbox()) == 2
    events = orjson.loads(run_cli("alerts", "history", SLUG, "--json").output)
    assert [e["event"] for e in events[:3]] == ["delivery", "evaluated", "fired"]

    bad = run_cli("alerts", "snooze", SLUG, "nope", "--until", "1d")
    assert bad.exit_code == 3 and "no alert rule 'nope' (rules: slow_day)" in bad.output
    bad = run_cli("alerts", "snooze", SLUG, "slow_day", "--until", "someday")
    assert bad.exit_code == 2 and "is not a date" in bad.output


def test_a_line_break_in_what_fired_stays_out_of_the_headers(project, conn, monkeypatch):
    monkeypatch.setenv("GOALPOST_CONSULTANT_EMAIL", "ops@consultancy.example")
    write(project, {"name": "Shop\nBcc: crowd@elsewhere.example", "timezone": "Europe/Paris",
                    "owners": [{"name": "Camille", "email": "camille@shop.example"}]})
    client = registry.load_client(SLUG)
    error = ("extract pos.sales: sales_x.csv is not a workbook\n  hint: save it as CSV\r\n"
             "Bcc: crowd@elsewhere.example")
    outcome = evaluate_alerts(conn, SLUG, client, now=NOW, run_errors=error)
    assert outcome.delivery.failed == [] and len(outcome.delivery.sent) == 1
    (message,) = outbox()
    assert message["Bcc"] is None and message["To"] == "ops@consultancy.example"
    subject = message["Subject"]
    assert "\n" not in subject and "\r" not in subject
    assert "is not a workbook hint: save it as CSV Bcc: crowd@elsewhere.example" in subject
    # The body keeps the lines as they were.
    assert "hint: save it as CSV" in message.get_body(("plain",)).get_content()
    # Nothing is left queued that would stop the next evaluations.
    assert evaluate_alerts(conn, SLUG, client, now=NOW, run_errors=error).delivery.failed == []


def test_a_digest_that_cannot_be_built_is_reported_and_retried_not_raised(project, conn,
                                                                          monkeypatch):
    from goalpost.alerts import render

    monkeypatch.setenv("GOALPOST_CONSULTANT_EMAIL", "ops@consultancy.example")
    write(project, {"name": "Shop", "timezone": "Europe/Paris"})
    client = registry.load_client(SLUG)
    built = render.digest

    def broken(**kwargs: Any) -> Any:
        raise ValueError("a bug while rendering")

    monkeypatch.setattr(render, "digest", broken)
    outcome = evaluate_alerts(conn, SLUG, client, now=NOW, run_errors="extract: boom")
    (failed,) = outcome.delivery.failed
    assert "could not be built: ValueError: a bug while rendering" in failed["error"]
    assert outbox() == []
    monkeypatch.setattr(render, "digest", built)
    later = evaluate_alerts(conn, SLUG, client, now=NOW + timedelta(minutes=5), run_errors="")
    assert len(later.delivery.sent) == 1 and len(outbox()) == 1  # retried, then told
