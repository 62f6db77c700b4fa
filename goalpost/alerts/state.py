"""The state of each rule per key, so that a situation is told once.

A key whose condition holds is `firing` from then on (`since`); its recipients are told once
(`notified_at`), then again only as a reminder after the rule's remind_after, or when its
condition changes (a goal going from at risk to off track). While its rule is snoozed nothing
is told; if it still holds when the snooze ends, it is told then. A key whose condition no
longer holds goes back to `ok`: the rule is re-armed and the next time it fires again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg

from goalpost.alerts.evaluate import Observation, RuleResult
from goalpost.core.masking import mask, mask_data


@dataclass
class Notice:
    """Something the recipients of a rule must be told."""

    rule: str
    observation: Observation
    reason: str  # fired or reminded
    since: datetime


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def record_event(conn: psycopg.Connection, slug: str, evaluation_id: int | None, event: str,
                 status: str, *, rule: str | None = None, key: str | None = None,
                 recipient: str | None = None, attempt: int | None = None,
                 error: str | None = None, details: dict[str, Any] | None = None) -> None:
    """One line of goalpost.alert_events (an outcome of an evaluation, or a delivery), secrets
    masked."""
    conn.execute(
        "INSERT INTO goalpost.alert_events (client, evaluation_id, rule, key, event, status, "
        "recipient, attempt, error, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "%s::jsonb)",
        (slug, evaluation_id, rule, key, event, status, recipient, attempt, mask(error),
         _json(mask_data(details or {}))))


WHOLE_RULE = ""  # the key of a snooze that silences every key of its rule


def snoozed_until(conn: psycopg.Connection, slug: str, now: datetime
                  ) -> dict[str, dict[str, datetime]]:
    """The snoozes of the client in force at `now`: per rule, the end of each snoozed key
    (WHOLE_RULE for the whole rule)."""
    found: dict[str, dict[str, datetime]] = {}
    for rule, key, until in conn.execute(
            "SELECT rule, key, until FROM goalpost.alert_snoozes WHERE client = %s "
            "AND until > %s", (slug, now)):
        found.setdefault(rule, {})[key] = until
    return found


def set_snooze(conn: psycopg.Connection, slug: str, rule: str, until: datetime | None,
               key: str = WHOLE_RULE) -> None:
    """Snooze a rule, or one of its keys, until a time (None: wake it now)."""
    if until is None:
        conn.execute("DELETE FROM goalpost.alert_snoozes WHERE client = %s AND rule = %s "
                     "AND key = %s", (slug, rule, key))
        return
    conn.execute(
        "INSERT INTO goalpost.alert_snoozes (client, rule, key, until) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (client, rule, key) DO UPDATE SET until = excluded.until, "
        "created_at = clock_timestamp()", (slug, rule, key, until))


def apply(conn: psycopg.Connection, slug: str, evaluation_id: int, rule: str,
          result: RuleResult, *, now: datetime, snoozes: Mapping[str, datetime],
          remind_after: timedelta | None) -> tuple[list[Notice], dict[str, int]]:
    """Move the rule's keys to their new state; what must be told, and counts per outcome.
    `snoozes`: the rule's snoozes in force, by key (WHOLE_RULE for the whole rule).

    Runs inside the caller's transaction, with the client's alert lock held."""
    previous = {row[0]: row[1:] for row in conn.execute(
        "SELECT key, status, condition, since, notified_at FROM goalpost.alert_state "
        "WHERE client = %s AND rule = %s FOR UPDATE", (slug, rule))}
    counts = {"fired": 0, "reminded": 0, "recovered": 0, "snoozed": 0, "firing": 0}
    notices = []
    for obs in result.triggered:
        status, condition, since, notified_at = previous.get(obs.key, (None, None, None, None))
        new = status != "firing" or condition != obs.condition
        if new:
            since, notified_at = now, None
        details = {"summary": obs.summary, "value": obs.value, "threshold": obs.threshold,
                   "as_of": obs.as_of}
        reason = None
        snoozed = max((snoozes[k] for k in (WHOLE_RULE, obs.key) if k in snoozes), default=None)
        if snoozed is not None:
            if new:
                counts["snoozed"] += 1
                record_event(conn, slug, evaluation_id, "snoozed", "silent", rule=rule,
                             key=obs.key, details={**details, "until": snoozed})
        elif notified_at is None:
            reason = "fired"
        elif remind_after is not None and now - notified_at >= remind_after:
            reason = "reminded"
        if reason:
            counts[reason] += 1
            notified_at = now
            notices.append(Notice(rule, obs, reason, since))
            record_event(conn, slug, evaluation_id, reason, "queued", rule=rule, key=obs.key,
                         details=details)
        counts["firing"] += 1
        conn.execute(
            "INSERT INTO goalpost.alert_state (client, rule, key, status, condition, label, "
            "since, notified_at, evaluated_at, details) VALUES (%s, %s, %s, 'firing', %s, %s, "
            "%s, %s, %s, %s::jsonb) ON CONFLICT (client, rule, key) DO UPDATE SET "
            "status = 'firing', condition = excluded.condition, label = excluded.label, "
            "since = excluded.since, notified_at = excluded.notified_at, "
            "evaluated_at = excluded.evaluated_at, details = excluded.details",
            (slug, rule, obs.key, obs.condition, obs.label, since, notified_at, now,
             _json(details)))
    seen = {obs.key for obs in result.triggered}
    for key, (status, *_rest) in previous.items():
        if status == "firing" and key not in seen:
            counts["recovered"] += 1
            conn.execute("UPDATE goalpost.alert_state SET status = 'ok', evaluated_at = %s "
                         "WHERE client = %s AND rule = %s AND key = %s", (now, slug, rule, key))
            record_event(conn, slug, evaluation_id, "recovered", "ok", rule=rule, key=key)
    return notices, counts


def firing(conn: psycopg.Connection, slug: str) -> list[dict[str, Any]]:
    """The keys firing now, per rule: for `goalpost alerts list`."""
    rows = conn.execute(
        "SELECT rule, key, label, condition, since, notified_at, details FROM "
        "goalpost.alert_state WHERE client = %s AND status = 'firing' ORDER BY rule, key",
        (slug,)).fetchall()
    names = ("rule", "key", "label", "condition", "since", "notified_at", "details")
    return [dict(zip(names, row, strict=True)) for row in rows]
