"""Sending the pending notifications: one digest email per recipient, by SMTP or to the outbox.

SMTP is configured from the environment (GOALPOST_SMTP_HOST, _PORT, _SECURITY, _USER,
_PASSWORD, _FROM, _TIMEOUT, _CA_FILE). Without a host, messages are written as .eml files to
`<state dir>/outbox/<client>/`, so a demo or a laptop shows what would have been sent. TLS
(STARTTLS or implicit) always verifies the server's certificate and name, against the system's
certificate authorities or, for a server with a private or self-signed certificate, those of
GOALPOST_SMTP_CA_FILE: a password never goes to a server that is not the one configured.

A digest that cannot be sent is tried again a few times with backoff, then left pending with
its error: the next evaluation (the next run, or `goalpost alerts check`) tries again. A
refused login or an untrusted certificate is not tried again within the evaluation: it will not
mend itself in seconds, and repeated bad logins can get the account locked. A
notification pending for longer than MAX_PENDING is given up (expired) and reported.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import psycopg

from goalpost.alerts import render
from goalpost.alerts.i18n import ENGLISH, Language
from goalpost.alerts.state import record_event
from goalpost.core.errors import ConfigError
from goalpost.core.masking import mask
from goalpost.core.paths import state_dir

# Waits between the tries of one digest within an evaluation (so 3 tries).
RETRY_DELAYS: tuple[float, ...] = (2.0, 8.0)
MAX_PENDING = timedelta(days=2)
SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str
    user: str | None
    password: str | None
    sender: str
    timeout: float
    ca_file: str | None = None  # PEM certificate authorities trusted instead of the system's

    def describe(self) -> str:
        return f"smtp://{self.host}:{self.port} ({self.security})"


def smtp_settings(environ: dict[str, str] | None = None) -> SmtpSettings | None:
    """The SMTP server from the environment; None when GOALPOST_SMTP_HOST is unset (outbox)."""
    env = os.environ if environ is None else environ
    host = env.get("GOALPOST_SMTP_HOST", "").strip()
    if not host:
        return None
    security = env.get("GOALPOST_SMTP_SECURITY", "starttls").strip().lower()
    if security not in SECURITY:
        raise ConfigError(f"GOALPOST_SMTP_SECURITY={security!r} is not one of "
                          f"{', '.join(SECURITY)}")
    port_text = env.get("GOALPOST_SMTP_PORT", "").strip()
    try:
        port = int(port_text) if port_text else DEFAULT_PORTS[security]
        timeout = float(env.get("GOALPOST_SMTP_TIMEOUT", "") or 20)
    except ValueError:
        raise ConfigError("GOALPOST_SMTP_PORT must be a number (e.g. 587) and "
                          "GOALPOST_SMTP_TIMEOUT seconds") from None
    user = env.get("GOALPOST_SMTP_USER") or None
    password = env.get("GOALPOST_SMTP_PASSWORD") or None
    if user and not password:
        raise ConfigError("GOALPOST_SMTP_USER is set without GOALPOST_SMTP_PASSWORD")
    sender = env.get("GOALPOST_SMTP_FROM") or (f"Goalpost <{user}>" if user and "@" in user
                                               else "Goalpost <goalpost@localhost>")
    ca_file = env.get("GOALPOST_SMTP_CA_FILE", "").strip() or None
    if ca_file and not Path(ca_file).expanduser().is_file():
        raise ConfigError(f"GOALPOST_SMTP_CA_FILE={ca_file} is not a file",
                          hint="the PEM file of the certificate authority that signed the SMTP "
                               "server's certificate (or that certificate, if self-signed)")
    if ca_file and security == "none":
        raise ConfigError("GOALPOST_SMTP_CA_FILE is set but GOALPOST_SMTP_SECURITY is none",
                          hint="use starttls or ssl, or unset GOALPOST_SMTP_CA_FILE")
    return SmtpSettings(host, port, security, user, password, sender, timeout,
                        str(Path(ca_file).expanduser()) if ca_file else None)


def outbox_dir(slug: str) -> Path:
    return state_dir() / "outbox" / slug


def send_smtp(settings: SmtpSettings, message: EmailMessage) -> None:
    """Hand one message to the SMTP server (raises OSError / smtplib.SMTPException)."""
    context = ssl.create_default_context(cafile=settings.ca_file)
    if settings.security == "ssl":
        server: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port,
                                                timeout=settings.timeout, context=context)
    else:
        server = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    with server:
        if settings.security == "starttls":
            server.starttls(context=context)
        if settings.user:
            server.login(settings.user, settings.password or "")
        server.send_message(message)


def describe_failure(settings: SmtpSettings, exc: Exception) -> tuple[str, bool]:
    """What went wrong, for the consultant reading the run's warnings, and whether trying
    again within this evaluation could help (not for a refused login or certificate)."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        reply = exc.smtp_error
        if isinstance(reply, bytes):
            reply = reply.decode(errors="replace")
        return (f"SMTPAuthenticationError: {settings.describe()} refused the login of "
                f"{settings.user} ({exc.smtp_code} {reply}): check GOALPOST_SMTP_USER and "
                f"GOALPOST_SMTP_PASSWORD", False)
    if isinstance(exc, ssl.SSLCertVerificationError):
        trusted = settings.ca_file or "the system's certificate authorities"
        return (f"SSLCertVerificationError: the certificate of {settings.describe()} is not "
                f"trusted ({exc.verify_message}; trusted: {trusted}): set "
                f"GOALPOST_SMTP_CA_FILE to its CA if it is a private one", False)
    return f"{type(exc).__name__}: {exc}".strip(), True


def write_outbox(slug: str, message: EmailMessage, now: datetime) -> Path:
    """Write the message as an .eml file, named by time and recipient."""
    folder = outbox_dir(slug)
    folder.mkdir(parents=True, exist_ok=True)
    who = re.sub(r"[^a-z0-9.@_-]+", "_", str(message["To"]).lower())
    token = re.sub(r"[^A-Za-z0-9]", "", str(message["Message-ID"]))[:12]
    path = folder / f"{now:%Y%m%dT%H%M%S}-{who}-{token}.eml"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(message.as_bytes())
    tmp.replace(path)
    return path


@dataclass
class DeliveryReport:
    sent: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    held: int = 0
    expired: int = 0

    def warnings(self) -> list[str]:
        out = [f"alert email to {f['recipient']} not sent after {f['attempts']} "
               f"tr{'y' if f['attempts'] == 1 else 'ies'} (will retry at the next "
               f"evaluation): {f['error']}" for f in self.failed]
        if self.expired:
            out.append(f"{self.expired} alert notification(s) given up after "
                       f"{MAX_PENDING.days} days of failed deliveries")
        return out


def deliver_pending(conn: psycopg.Connection, slug: str, client_name: str, *,
                    evaluation_id: int | None, now: datetime,
                    sleep: Callable[[float], None] = time.sleep,
                    lang: Language = ENGLISH) -> DeliveryReport:
    """Send every due notification of the client, one digest per recipient, in `lang`."""
    report = DeliveryReport()
    try:
        settings = smtp_settings()
        problem = None
    except ConfigError as exc:  # a misconfigured server: reported, retried next time
        settings, problem = None, mask(str(exc))
    expired = conn.execute(
        "UPDATE goalpost.alert_outbox SET status = 'expired' WHERE client = %s AND "
        "status = 'pending' AND created_at < %s RETURNING rule, key, recipient, last_error",
        (slug, now - MAX_PENDING)).fetchall()
    for rule, key, recipient, error in expired:
        record_event(conn, slug, evaluation_id, "expired", "failed", rule=rule, key=key,
                     recipient=recipient, error=error)
    report.expired = len(expired)
    report.held = conn.execute(
        "SELECT count(*) FROM goalpost.alert_outbox WHERE client = %s AND status = 'pending' "
        "AND not_before > %s", (slug, now)).fetchone()[0]
    due = conn.execute(
        "SELECT id, recipient, payload FROM goalpost.alert_outbox WHERE client = %s AND "
        "status = 'pending' AND not_before <= %s ORDER BY recipient, id", (slug, now)).fetchall()
    by_recipient: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for row_id, recipient, payload in due:
        by_recipient.setdefault(recipient, []).append((row_id, payload))
    sender = settings.sender if settings else (os.environ.get("GOALPOST_SMTP_FROM")
                                               or "Goalpost <goalpost@localhost>")
    for recipient, rows in by_recipient.items():
        ids = [row_id for row_id, _ in rows]
        if problem:
            conn.execute("UPDATE goalpost.alert_outbox SET last_error = %s WHERE "
                         "id = ANY(%s)", (problem, ids))
            record_event(conn, slug, evaluation_id, "delivery", "failed", recipient=recipient,
                         error=problem, details={"outbox_ids": ids})
            report.failed.append({"recipient": recipient, "attempts": 0, "error": problem,
                                  "items": len(ids)})
            continue
        try:
            message = render.digest(sender=sender, recipient=recipient,
                                    client_name=client_name, slug=slug,
                                    items=[payload for _, payload in rows], now=now,
                                    lang=lang)
        except Exception as exc:  # noqa: BLE001 - one digest that cannot be built must not
            # stop the others, nor every later evaluation: it fails, is retried, then expires.
            error = mask(f"the email could not be built: {type(exc).__name__}: {exc}")
            conn.execute("UPDATE goalpost.alert_outbox SET attempts = attempts + 1, "
                         "last_error = %s WHERE id = ANY(%s)", (error, ids))
            record_event(conn, slug, evaluation_id, "delivery", "failed", recipient=recipient,
                         attempt=1, error=error, details={"outbox_ids": ids})
            report.failed.append({"recipient": recipient, "attempts": 1, "error": error,
                                  "items": len(ids)})
            continue
        _send(conn, slug, evaluation_id, settings, message, recipient, ids, now, sleep, report)
    return report


def _send(conn: psycopg.Connection, slug: str, evaluation_id: int | None,
          settings: SmtpSettings | None, message: EmailMessage, recipient: str,
          ids: list[int], now: datetime, sleep: Callable[[float], None],
          report: DeliveryReport) -> None:
    details = {"outbox_ids": ids, "subject": str(message["Subject"]),
               "message_id": str(message["Message-ID"])}
    if settings is None:
        try:
            path = write_outbox(slug, message, now)
        except OSError as exc:
            error = mask(f"cannot write to the outbox {outbox_dir(slug)}: {exc}")
            conn.execute("UPDATE goalpost.alert_outbox SET attempts = attempts + 1, "
                         "last_error = %s WHERE id = ANY(%s)", (error, ids))
            record_event(conn, slug, evaluation_id, "delivery", "failed", recipient=recipient,
                         attempt=1, error=error, details={**details, "channel": "outbox"})
            report.failed.append({"recipient": recipient, "attempts": 1, "error": error,
                                  "items": len(ids)})
            return
        _mark_sent(conn, ids, now, "outbox", str(message["Message-ID"]))
        record_event(conn, slug, evaluation_id, "delivery", "sent", recipient=recipient,
                     attempt=1, details={**details, "channel": "outbox", "path": str(path)})
        report.sent.append({"recipient": recipient, "channel": "outbox", "path": str(path),
                            "items": len(ids), "subject": details["subject"]})
        return
    error = ""
    attempts = 0
    for attempt, delay in enumerate((*RETRY_DELAYS, None), start=1):
        attempts = attempt
        previous = conn.execute("SELECT max(attempts) FROM goalpost.alert_outbox WHERE "
                                "id = ANY(%s)", (ids,)).fetchone()[0] or 0
        try:
            send_smtp(settings, message)
        except (OSError, smtplib.SMTPException) as exc:
            error, retry = describe_failure(settings, exc)
            error = mask(error)
            conn.execute("UPDATE goalpost.alert_outbox SET attempts = attempts + 1, "
                         "last_error = %s WHERE id = ANY(%s)", (error, ids))
            record_event(conn, slug, evaluation_id, "delivery", "failed", recipient=recipient,
                         attempt=previous + 1, error=error,
                         details={**details, "channel": "smtp", "server": settings.describe()})
            if not retry:
                break
            if delay is not None:
                sleep(delay)
            continue
        conn.execute("UPDATE goalpost.alert_outbox SET attempts = attempts + 1 WHERE "
                     "id = ANY(%s)", (ids,))
        _mark_sent(conn, ids, now, "smtp", str(message["Message-ID"]))
        record_event(conn, slug, evaluation_id, "delivery", "sent", recipient=recipient,
                     attempt=previous + 1,
                     details={**details, "channel": "smtp", "server": settings.describe()})
        report.sent.append({"recipient": recipient, "channel": "smtp", "items": len(ids),
                            "subject": details["subject"]})
        return
    report.failed.append({"recipient": recipient, "attempts": attempts, "error": error,
                          "items": len(ids)})


def _mark_sent(conn: psycopg.Connection, ids: list[int], now: datetime, channel: str,
               message_id: str) -> None:
    conn.execute("UPDATE goalpost.alert_outbox SET status = 'sent', sent_at = %s, "
                 "channel = %s, message_id = %s, last_error = NULL WHERE id = ANY(%s)",
                 (now, channel, message_id, ids))
