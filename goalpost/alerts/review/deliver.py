"""Sending a review: once per client, period and recipient, by the alert emails' channels
(SMTP, or .eml files in the outbox without GOALPOST_SMTP_HOST) and with their retries.

Each recipient's row in goalpost.review_deliveries is inserted before anything is sent and
marked `sent` right after; the client's review lock is held meanwhile, so a second scheduler
(or a `goalpost review --send`) at the same moment waits, then finds nothing left to send.
A failed delivery is tried 3 times, then left pending with its error: the next evaluation (the
scheduler's next slot) tries again, for two days, after which it is expired. Only the latest
period being sent is retried: when a new one closes, what is still pending of older ones expires.
The review is built once per evaluation, when something is due, and sent in the client's
language; the Message-ID is the same for every try (goalpost.alerts.review.message).
"""

from __future__ import annotations

import os
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg

from goalpost.alerts import delivery
from goalpost.alerts.delivery import MAX_PENDING, SmtpSettings
from goalpost.alerts.review import message
from goalpost.alerts.review.build import Review, build, default_period, require_marts
from goalpost.alerts.review.period import Period
from goalpost.core.errors import ConfigError
from goalpost.core.registry.models import Client

DEFAULT_SENDER = "Goalpost <goalpost@localhost>"


@dataclass
class ReviewDelivery:
    """What one evaluation of a client's review did."""

    period: str
    sent: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    already_sent: list[str] = field(default_factory=list)
    expired: int = 0
    review: Review | None = None

    def warnings(self) -> list[str]:
        out = [f"review {self.period} to {f['recipient']} not sent after {f['attempts']} "
               f"tr{'y' if f['attempts'] == 1 else 'ies'} (will retry at the next slot): "
               f"{f['error']}" for f in self.failed]
        if self.expired:
            out.append(f"{self.expired} review email(s) given up after {MAX_PENDING.days} "
                       "days of failed deliveries")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"period": self.period, "sent": self.sent, "failed": self.failed,
                "already_sent": self.already_sent, "expired": self.expired,
                "warnings": self.warnings()}


def recipients(client: Client) -> list[str]:
    """The review's addresses (`review.recipients`: owners, consultant, addresses)."""
    found: list[str] = []
    for item in client.review.recipients:
        if item == "owners":
            found += [owner.email for owner in client.owners]
        elif item == "consultant":
            consultant = client.alerts.consultant_email()
            if not consultant:
                raise ConfigError("review.recipients names the consultant but no address is "
                                  "known", hint="set GOALPOST_CONSULTANT_EMAIL or "
                                               "alerts.consultant")
            found.append(consultant)
        else:
            found.append(item)
    return list(dict.fromkeys(found))


def _lock(conn: psycopg.Connection, slug: str) -> None:
    conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"goalpost.review:{slug}",))


def _unlock(conn: psycopg.Connection, slug: str) -> None:
    conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))",
                 (f"goalpost.review:{slug}",))


def send_review(conn: psycopg.Connection, slug: str, client: Client, period: Period, *,
                now: datetime | None = None,
                sleep: Callable[[float], None] = time.sleep) -> ReviewDelivery:
    """Send the review of `period` to each recipient who has not had it yet."""
    now = now or datetime.now(UTC)
    outcome = ReviewDelivery(period.key)
    to = recipients(client)
    if not to:
        return outcome
    require_marts(conn, slug)
    try:
        settings, problem = delivery.smtp_settings(), None
    except ConfigError as exc:  # reported and retried next time, like the alert emails
        settings, problem = None, str(exc)
    _lock(conn, slug)
    try:
        with conn.transaction():
            expired = conn.execute(
                "UPDATE goalpost.review_deliveries SET status = 'expired' WHERE client = %s "
                "AND status = 'pending' AND (created_at < %s OR period < %s) RETURNING 1",
                (slug, now - MAX_PENDING, period.key)).fetchall()
            outcome.expired = len(expired)
            for recipient in to:
                conn.execute(
                    "INSERT INTO goalpost.review_deliveries (client, period, recipient, "
                    "language, created_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (slug, period.key, recipient, client.language, now))
        rows = conn.execute(
            "SELECT recipient, status FROM goalpost.review_deliveries WHERE client = %s AND "
            "period = %s AND recipient = ANY(%s) ORDER BY recipient", (slug, period.key, to)
        ).fetchall()
        due = [recipient for recipient, status in rows if status == "pending"]
        outcome.already_sent = [recipient for recipient, status in rows if status == "sent"]
        if not due:
            return outcome
        if problem:
            for recipient in due:
                _failed(conn, slug, period, recipient, problem, outcome, attempts=0)
            return outcome
        review = outcome.review = build(conn, slug, client, period, now)
        sender = settings.sender if settings else (os.environ.get("GOALPOST_SMTP_FROM")
                                                   or DEFAULT_SENDER)
        for recipient in due:
            email = message.email(review.document, client_name=client.name, slug=slug,
                                  period=period.key, sender=sender, recipient=recipient,
                                  drawn=review.charts, now=now)
            _deliver(conn, slug, period, recipient, email, review, settings, now, sleep,
                     outcome)
        return outcome
    finally:
        _unlock(conn, slug)


def send_due(conn: psycopg.Connection, slug: str, client: Client, *,
             now: datetime | None = None,
             sleep: Callable[[float], None] = time.sleep) -> ReviewDelivery | None:
    """What the scheduler calls after each run: the latest closed period's review, to those
    who have not had it (None when the client's review is not emailed)."""
    if not client.review.send:
        return None
    now = now or datetime.now(UTC)
    return send_review(conn, slug, client, default_period(client, now), now=now, sleep=sleep)


def _failed(conn: psycopg.Connection, slug: str, period: Period, recipient: str, error: str,
            outcome: ReviewDelivery, *, attempts: int) -> None:
    conn.execute("UPDATE goalpost.review_deliveries SET attempts = attempts + %s, "
                 "last_error = %s WHERE client = %s AND period = %s AND recipient = %s",
                 (attempts, error, slug, period.key, recipient))
    outcome.failed.append({"recipient": recipient, "attempts": attempts, "error": error})


def _deliver(conn: psycopg.Connection, slug: str, period: Period, recipient: str,
             email: Any, review: Review, settings: SmtpSettings | None, now: datetime,
             sleep: Callable[[float], None], outcome: ReviewDelivery) -> None:
    where: dict[str, Any] = {}
    if settings is None:
        try:
            where = {"channel": "outbox", "path": str(delivery.write_outbox(slug, email, now))}
        except OSError as exc:
            _failed(conn, slug, period, recipient,
                    f"cannot write to the outbox {delivery.outbox_dir(slug)}: {exc}", outcome,
                    attempts=1)
            return
        attempts = 1
    else:
        attempts, error = 0, ""
        for delay in (*delivery.RETRY_DELAYS, None):
            attempts += 1
            try:
                delivery.send_smtp(settings, email)
            except (OSError, smtplib.SMTPException) as exc:
                error, retry = delivery.describe_failure(settings, exc)
                if retry and delay is not None:
                    sleep(delay)
                    continue
                _failed(conn, slug, period, recipient, error, outcome, attempts=attempts)
                return
            where = {"channel": "smtp", "server": settings.describe()}
            break
    conn.execute(
        "UPDATE goalpost.review_deliveries SET status = 'sent', sent_at = %s, channel = %s, "
        "message_id = %s, subject = %s, summary = %s::jsonb, attempts = attempts + %s, "
        "last_error = NULL WHERE client = %s AND period = %s AND recipient = %s",
        (now, where["channel"], str(email["Message-ID"]), str(email["Subject"]),
         orjson.dumps(review.summary(), default=str).decode(), attempts, slug, period.key,
         recipient))
    outcome.sent.append({"recipient": recipient, **where, "subject": str(email["Subject"])})


def history(conn: psycopg.Connection, slug: str, limit: int = 20) -> list[dict[str, Any]]:
    """The client's review deliveries, newest period first."""
    cursor = conn.execute(
        "SELECT period, recipient, status, language, created_at, sent_at, channel, attempts, "
        "last_error, subject FROM goalpost.review_deliveries WHERE client = %s "
        "ORDER BY period DESC, recipient LIMIT %s", (slug, limit))
    names = [c.name for c in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
