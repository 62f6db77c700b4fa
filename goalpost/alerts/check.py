"""One evaluation of a client's alert rules: evaluate, update the state, queue, deliver.

Runs at the end of every run (also a failed one) and on demand (`goalpost alerts check`).
Each rule is evaluated and its state moved in a transaction of its own, so a rule that
cannot be evaluated (its table is missing) is recorded as an error and the others go on.
Everything that fired is queued per recipient; then every due notification of the client
goes out, one digest email per recipient. Evaluations of one client never overlap (an
advisory lock), so two of them cannot both send the same news.

Quiet hours (client's time zone) hold notifications until they end, except `critical` ones;
held notifications go out at the first evaluation after the end. A failed run alerts the
consultant (GOALPOST_CONSULTANT_EMAIL or `alerts.consultant`) through a built-in rule
`run_failed` unless the client declares its own rule of kind run_failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import psycopg

from goalpost.alerts import evaluate, state
from goalpost.alerts.delivery import DeliveryReport, deliver_pending
from goalpost.alerts.links import dashboard_link
from goalpost.core.errors import ConfigError
from goalpost.core.masking import mask_data
from goalpost.core.registry.alert_rules import CONSULTANT_ENV, RunFailedRule
from goalpost.core.registry.models import Client

BUILTIN_RUN_FAILED = "run_failed"


@dataclass
class AlertOutcome:
    """What one evaluation found and sent."""

    evaluation_id: int
    now: datetime
    rules: list[dict[str, Any]] = field(default_factory=list)
    delivery: DeliveryReport = field(default_factory=DeliveryReport)

    def warnings(self) -> list[str]:
        out = [f"alert rule {r['rule']} could not be evaluated: {r['error']}"
               for r in self.rules if r.get("error")]
        return out + self.delivery.warnings()

    def as_dict(self) -> dict[str, Any]:
        return {"evaluation_id": self.evaluation_id, "evaluated_at": self.now,
                "rules": self.rules, "sent": self.delivery.sent,
                "failed": self.delivery.failed, "held": self.delivery.held,
                "expired": self.delivery.expired, "warnings": self.warnings()}


def rules_of(client: Client) -> list[Any]:
    """The client's rules, plus the built-in run_failed rule when a consultant is known and
    the client has no rule of that kind."""
    rules = list(client.alerts.rules)
    if client.alerts.consultant_email() and not any(r.kind == "run_failed" or r.name ==
                                            BUILTIN_RUN_FAILED for r in rules):
        rules.append(RunFailedRule(name=BUILTIN_RUN_FAILED, kind="run_failed",
                                   description="built-in: a run of the client failed"))
    return rules


def recipients(client: Client, rule: Any) -> list[str]:
    """The email addresses a rule's notifications go to (ConfigError when there are none)."""
    found: list[str] = []
    for item in rule.recipients or rule.default_recipients():
        if item == "owners":
            found += [owner.email for owner in client.owners]
        elif item == "consultant":
            consultant = client.alerts.consultant_email()
            if not consultant:
                raise ConfigError(f"rule {rule.name} is for the consultant but no address is "
                                  f"known: set {CONSULTANT_ENV} or alerts.consultant")
            found.append(consultant)
        else:
            found.append(item)
    found = list(dict.fromkeys(found))
    if not found:
        raise ConfigError(f"rule {rule.name} has no recipient: the client has no owners",
                          hint="add owners, or recipients to the rule")
    return found


def quiet_until(client: Client, now: datetime) -> datetime | None:
    """When the quiet hours around `now` end (None: not in quiet hours)."""
    quiet = client.alerts.quiet_hours
    if quiet is None:
        return None
    zone = ZoneInfo(client.timezone)
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if quiet.start < quiet.end:
        inside, day = quiet.start <= clock < quiet.end, local.date()
    else:  # overnight, e.g. 21:00 to 07:00
        inside = clock >= quiet.start or clock < quiet.end
        day = local.date() + timedelta(days=1) if clock >= quiet.start else local.date()
    if not inside:
        return None
    return datetime.combine(day, quiet.end, tzinfo=zone).astimezone(UTC)


def _payload(ctx: evaluate.Context, client: Client, rule: Any,
             notice: state.Notice) -> dict[str, Any]:
    obs = notice.observation
    recent = evaluate.recent_values(ctx, obs)
    return {"client": client.name, "rule": rule.name, "kind": rule.kind,
            "severity": rule.severity,
            "description": rule.description or rule.describe(ctx.lang.gettext),
            "key": obs.key, "label": obs.label, "summary": obs.summary,
            "condition": obs.condition, "value": obs.value, "threshold": obs.threshold,
            "as_of": obs.as_of, "recent": [[day.isoformat(), value] for day, value in recent],
            "reason": notice.reason, "since": notice.since,
            "dashboard_url": dashboard_link(ctx.conn, ctx.slug, client, rule)}


def queue_notification(conn: psycopg.Connection, slug: str, evaluation_id: int,
                       payload: dict[str, Any], to: list[str], reason: str, severity: str,
                       now: datetime, not_before: datetime) -> None:
    """One outbox row per recipient (secrets masked); rows held until `not_before` are
    recorded as held."""
    payload = mask_data(payload)
    for recipient in to:
        conn.execute(
            "INSERT INTO goalpost.alert_outbox (client, evaluation_id, rule, key, recipient, "
            "severity, reason, payload, created_at, not_before) VALUES (%s, %s, %s, %s, %s, "
            "%s, %s, %s::jsonb, %s, %s)",
            (slug, evaluation_id, payload["rule"], payload["key"], recipient, severity, reason,
             orjson.dumps(payload, default=str).decode(), now, not_before))
        if not_before > now:
            state.record_event(conn, slug, evaluation_id, "held", "held", rule=payload["rule"],
                               key=payload["key"], recipient=recipient,
                               details={"until": not_before, "reason": "quiet hours"})


def _lock(conn: psycopg.Connection, slug: str) -> None:
    conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"goalpost.alerts:{slug}",))


def _unlock(conn: psycopg.Connection, slug: str) -> None:
    conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))",
                 (f"goalpost.alerts:{slug}",))


def start_evaluation(conn: psycopg.Connection, slug: str, trigger: str, run_id: int | None,
           now: datetime) -> int:
    return conn.execute(
        "INSERT INTO goalpost.alert_evaluations (client, run_id, trigger, evaluated_at) "
        "VALUES (%s, %s, %s, %s) RETURNING id", (slug, run_id, trigger, now)).fetchone()[0]


def _finish(conn: psycopg.Connection, outcome: AlertOutcome) -> None:
    summary = {k: v for k, v in outcome.as_dict().items() if k != "evaluated_at"}
    conn.execute("UPDATE goalpost.alert_evaluations SET finished_at = clock_timestamp(), "
                 "summary = %s::jsonb WHERE id = %s",
                 (orjson.dumps(summary, default=str).decode(), outcome.evaluation_id))


def evaluate_alerts(conn: psycopg.Connection, slug: str, client: Client, *,
                    trigger: str = "check", run_id: int | None = None,
                    run_errors: str | None = None, now: datetime | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> AlertOutcome:
    """Evaluate every rule of the client, then deliver what is due.

    `conn` is an autocommit connection. `run_errors` is given within a run (the failed
    steps' errors, "" when none failed); otherwise run_failed reads the last finished run.
    A delivery that fails is retried and reported, never raised."""
    now = now or datetime.now(UTC)
    _lock(conn, slug)
    try:
        evaluation_id = start_evaluation(conn, slug, trigger, run_id, now)
        outcome = AlertOutcome(evaluation_id, now)
        ctx = evaluate.Context(conn, slug, client, now, run_errors)
        snoozes = state.snoozed_until(conn, slug, now)
        held_until = quiet_until(client, now)
        for rule in rules_of(client):
            outcome.rules.append(_evaluate_rule(ctx, rule, evaluation_id,
                                                snoozes.get(rule.name, {}), held_until))
        outcome.delivery = deliver_pending(conn, slug, client.name,
                                           evaluation_id=evaluation_id, now=now, sleep=sleep,
                                           lang=ctx.lang)
        _finish(conn, outcome)
        return outcome
    finally:
        _unlock(conn, slug)


def _evaluate_rule(ctx: evaluate.Context, rule: Any, evaluation_id: int,
                   snoozes: dict[str, datetime], held_until: datetime | None
                   ) -> dict[str, Any]:
    conn, slug, client, now = ctx.conn, ctx.slug, ctx.client, ctx.now
    line: dict[str, Any] = {"rule": rule.name, "kind": rule.kind,
                            "snoozed_until": snoozes.get(state.WHOLE_RULE)}
    try:
        with conn.transaction():
            to = recipients(client, rule)
            result = evaluate.evaluate(ctx, rule)
            remind = rule.remind_after or client.alerts.remind_after
            notices, counts = state.apply(conn, slug, evaluation_id, rule.name, result,
                                          now=now, snoozes=snoozes, remind_after=remind)
            urgent = rule.severity == "critical"
            not_before = held_until if held_until and not urgent else now
            for notice in notices:
                queue_notification(conn, slug, evaluation_id,
                                   _payload(ctx, client, rule, notice), to, notice.reason,
                                   rule.severity, now, not_before)
            line.update(checked=result.checked, **counts)
            state.record_event(conn, slug, evaluation_id, "evaluated", "ok", rule=rule.name,
                               details=line)
    except Exception as exc:  # noqa: BLE001 - one rule's failure must not stop the others
        line["error"] = str(exc) if isinstance(exc, evaluate.RuleError | ConfigError) \
            else f"{type(exc).__name__}: {exc}"
        state.record_event(conn, slug, evaluation_id, "error", "failed", rule=rule.name,
                           error=line["error"])
    return line
