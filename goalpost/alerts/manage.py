"""What the `goalpost alerts` commands do: check, test, snooze, list and history."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from psycopg.rows import dict_row

from goalpost.alerts import state
from goalpost.alerts.check import (
    AlertOutcome,
    evaluate_alerts,
    queue_notification,
    recipients,
    rules_of,
    start_evaluation,
)
from goalpost.alerts.delivery import DeliveryReport, deliver_pending
from goalpost.alerts.i18n import language
from goalpost.alerts.links import dashboard_link
from goalpost.core import registry
from goalpost.core.errors import ConfigError, NotFoundError
from goalpost.core.registry.alert_rules import parse_duration
from goalpost.core.registry.models import Client
from goalpost.core.warehouse import ready


def _rule(client: Client, slug: str, name: str) -> Any:
    found = next((rule for rule in rules_of(client) if rule.name == name), None)
    if found is None:
        known = ", ".join(rule.name for rule in rules_of(client)) or "none"
        raise NotFoundError(f"client {slug} has no alert rule {name!r} (rules: {known})",
                            hint=f"see `goalpost alerts list {slug}`")
    return found


def check(slug: str, *, now: datetime | None = None) -> AlertOutcome:
    """Evaluate the client's rules now and deliver what is due (`goalpost alerts check`)."""
    client = registry.load_client(slug)
    with ready() as conn:
        return evaluate_alerts(conn, slug, client, trigger="check", now=now)


def send_test(slug: str, rule_name: str | None = None, *,
              now: datetime | None = None) -> DeliveryReport:
    """Send a sample notification of each rule (or one) to its recipients, now, whatever the
    quiet hours; the rules' state is left alone."""
    client = registry.load_client(slug)
    rules = [_rule(client, slug, rule_name)] if rule_name else rules_of(client)
    if not rules:
        raise ConfigError(f"client {slug} has no alert rules",
                          hint=f"add rules under `alerts:` in clients/{slug}.yaml")
    now = now or datetime.now(UTC)
    lang = language(client.language)
    _ = lang.gettext
    with ready() as conn:
        evaluation_id = start_evaluation(conn, slug, "test", None, now)
        with conn.transaction():
            for rule in rules:
                payload = {"client": client.name, "rule": rule.name, "kind": rule.kind,
                           "severity": rule.severity,
                           "description": rule.description or rule.describe(_),
                           "key": "test", "label": "test", "condition": "test",
                           "reason": "test",
                           "summary": _("a test of rule {rule} ({condition})").format(
                               rule=rule.name, condition=rule.describe(_)),
                           "value": None, "threshold": None, "recent": [],
                           "dashboard_url": dashboard_link(conn, slug, client, rule)}
                queue_notification(conn, slug, evaluation_id, payload,
                                   recipients(client, rule), "test", rule.severity, now, now)
        return deliver_pending(conn, slug, client.name, evaluation_id=evaluation_id, now=now,
                               lang=lang)


def parse_until(text: str, timezone: str, now: datetime) -> datetime:
    """A snooze's end: a duration from now (3d, 12h), a date (midnight, the client's time
    zone) or a date and time (the client's time zone unless it gives its own)."""
    text = text.strip()
    if re.fullmatch(r"\d+\s*[mhdw]", text):
        return now + parse_duration(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--until {text!r} is not a date, a date and time or a duration",
                          hint="e.g. --until 2025-03-01, --until '2025-03-01 08:00' or "
                          "--until 3d") from None
    if len(text) <= 10:
        moment = datetime.combine(moment.date(), time(0))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    if moment <= now:
        raise ConfigError(f"--until {text} is in the past", hint="give a later time")
    return moment.astimezone(UTC)


def snooze(slug: str, rule_name: str, until: str | None, *, key: str | None = None,
           now: datetime | None = None) -> datetime | None:
    """Silence a rule, or one of its keys (one product at one shop: `goalpost alerts list
    --json` shows the keys), until a time (None: wake it now); returns the snooze's end."""
    client = registry.load_client(slug)
    rule = _rule(client, slug, rule_name)
    now = now or datetime.now(UTC)
    end = parse_until(until, client.timezone, now) if until else None
    key = (key or "").strip()
    with ready() as conn:
        state.set_snooze(conn, slug, rule.name, end, key or state.WHOLE_RULE)
        state.record_event(conn, slug, None, "snoozed", "set" if end else "cleared",
                           rule=rule.name, key=key or None, details={"until": end})
    return end


def overview(slug: str, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every rule with its condition, recipients, snooze and what is firing."""
    client = registry.load_client(slug)
    now = now or datetime.now(UTC)
    with ready() as conn:
        snoozes = state.snoozed_until(conn, slug, now)
        firing = state.firing(conn, slug)
        pending = dict(conn.execute(
            "SELECT rule, count(*) FROM goalpost.alert_outbox WHERE client = %s AND "
            "status = 'pending' GROUP BY rule", (slug,)).fetchall())
    items = []
    for rule in rules_of(client):
        try:
            to = recipients(client, rule)
        except ConfigError as exc:
            to = [f"(none: {exc.message})"]
        items.append({
            "rule": rule.name, "kind": rule.kind, "severity": rule.severity,
            "condition": rule.describe(), "recipients": to,
            "remind_after": rule.remind_after or client.alerts.remind_after,
            "snoozed_until": snoozes.get(rule.name, {}).get(state.WHOLE_RULE),
            "snoozed_keys": {k: until for k, until in snoozes.get(rule.name, {}).items()
                             if k != state.WHOLE_RULE},
            "firing": [f for f in firing if f["rule"] == rule.name],
            "pending_deliveries": pending.get(rule.name, 0)})
    return items


def history(slug: str, *, limit: int = 50, rule: str | None = None) -> list[dict[str, Any]]:
    """The latest alert events of the client, newest first."""
    registry.load_client(slug)
    with ready() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, at, evaluation_id, rule, key, event, status, recipient, attempt, "
            "error, details FROM goalpost.alert_events WHERE client = %s AND "
            "(%s::text IS NULL OR rule = %s) ORDER BY id DESC LIMIT %s",
            (slug, rule, rule, limit)).fetchall()
