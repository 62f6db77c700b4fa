"""A vendor that echoes the credentials it was sent, and every place Goalpost writes to: no
encoding of any secret comes out.

The API here answers every request with an error quoting what it received: the query string
as sent (the token URL-encoded), the Authorization header (`Basic base64(user:pass)`) and the
decoded values inside its JSON (JSON-escaped). Many real APIs quote the request in their
errors. The secrets hold the characters that encodings change (`+ / = & ?`, a space, quotes,
letters outside ASCII). Then the CLI's text and --json output, the run records, the alert
events and outbox, the emails and the scheduler's log are searched for every encoding of
every secret: as is, URL-encoded (`+` and `%20` for spaces, upper- and lower-case hex),
JSON- and HTML-escaped, and base64 (standard and URL-safe) of each secret and of `user:pass`.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import signal
import subprocess
import sys
import time
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import parse_qs, quote, quote_plus

import psycopg
import pytest

from goalpost.alerts.delivery import outbox_dir
from goalpost.sandbox.http_server import Incoming, LoopbackServer, Reply

pytestmark = pytest.mark.e2e

TOKEN = 'tok+en/k=y&x? "q" Ünï'
USER = "svc-reader"
PASSWORD = "p@ss w0rd+/=&\"z\""
SECRETS = {"token": TOKEN, "password": PASSWORD}

CLIENT = """\
name: Echo Shop
timezone: Europe/Paris
schedule: "* * * * *"
extensions: []
alerts:
  consultant: ops@consultancy.example
sources:
  - name: byquery
    connector: rest
    config: {{api_key: env:ECHO_TOKEN, base_url: "{url}"}}
    manifest:
      base_url: http://unused.invalid
      settings:
        api_key: {{required: true, secret: true}}
      auth: {{type: query, param: api_key, token: "{{config.api_key}}"}}
      retry: {{max_retries: 0, base_seconds: 0.01, max_seconds: 0.01, timeout_seconds: 5}}
      streams:
        items: {{request: {{path: /q/items}}, records: items, primary_key: [id]}}
  - name: bybasic
    connector: rest
    config: {{username: {user}, password: env:ECHO_PASSWORD, base_url: "{url}"}}
    manifest:
      base_url: http://unused.invalid
      settings:
        username: {{required: true}}
        password: {{required: true, secret: true}}
      auth: {{type: basic, username: "{{config.username}}", password: "{{config.password}}"}}
      retry: {{max_retries: 0, base_seconds: 0.01, max_seconds: 0.01, timeout_seconds: 5}}
      streams:
        items: {{request: {{path: /b/items}}, records: items, primary_key: [id]}}
"""


def echo(incoming: Incoming) -> Reply:
    """Refuse the request, quoting it back: raw, as a header, and decoded into JSON."""
    decoded = {key: values[0] for key, values in parse_qs(incoming.query).items()}
    body = {"error": "denied", "sent": incoming.target,
            "auth": incoming.headers.get("authorization"), "decoded": decoded}
    status = 401 if incoming.path.startswith("/b/") else 400
    return Reply(status, json.dumps(body).encode())


def encodings(secret: str) -> set[str]:
    """Every spelling of `secret` looked for."""
    forms = {secret, quote(secret, safe=""), quote(secret, safe="/"), quote(secret),
             quote_plus(secret, safe=""), quote_plus(secret),
             json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
             html.escape(secret), html.escape(secret, quote=False)}
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in set(forms)}
    for raw in (secret, f"{USER}:{secret}"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(raw.encode()).decode()
            forms |= {text, text.rstrip("=")}
    return {form for form in forms if len(form) >= 4}


def leaks(channel: str, text: str) -> list[str]:
    return [f"{channel}: the {name} as {form!r}" for name, secret in SECRETS.items()
            for form in encodings(secret) if form in text]


@pytest.fixture
def shop(project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ECHO_TOKEN", TOKEN)
    monkeypatch.setenv("ECHO_PASSWORD", PASSWORD)
    with LoopbackServer(echo, name="echo") as server:
        (project / "clients" / "shop.yaml").write_text(
            CLIENT.format(url=server.url, user=USER))
        yield server


def control_tables(conn: psycopg.Connection) -> str:
    return "\n".join(row[0] for table in (
        "runs", "run_steps", "alert_events", "alert_outbox", "alert_evaluations",
        "extract_state", "schedule_slots")
        for row in conn.execute(f"SELECT t::text FROM goalpost.{table} t").fetchall())


def emails(slug: str) -> str:
    """Every outbox email: as stored, and every part decoded."""
    texts = []
    for path in sorted(outbox_dir(slug).glob("*.eml")):
        raw = path.read_bytes()
        texts.append(raw.decode("utf-8", "replace"))
        message = message_from_bytes(raw, policy=policy.default)
        texts += [str(value) for value in message.values()]
        texts += [part.get_content() for part in message.walk()
                  if part.get_content_maintype() == "text"]
    return "\n".join(texts)


def scheduler_log(project: Path) -> str:
    """What a scheduler process logs until its first run of the client has ended."""
    process = subprocess.Popen(
        [sys.executable, "-m", "goalpost", "scheduler", "--acceleration", "60",
         "--backup-schedule", "off", "--instance", "echo"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ),
        cwd=project)
    deadline = time.monotonic() + 180
    with psycopg.connect(os.environ["GOALPOST_DATABASE_URL"], autocommit=True) as conn:
        while time.monotonic() < deadline and conn.execute(
                "SELECT count(*) FROM goalpost.runs WHERE client = 'shop' AND trigger = "
                "'scheduler' AND status <> 'running'").fetchone()[0] < 1:
            time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    return output


def test_no_encoding_of_a_secret_reaches_any_output(shop, project, conn, run_cli):
    found: list[str] = []
    outputs = {
        "source test": run_cli("source", "test", "shop"),
        "source test --json": run_cli("source", "test", "shop", "--json"),
        "run": run_cli("run", "shop"),
        "run --json": run_cli("run", "shop", "--json"),
        "status --json": run_cli("status", "--json"),
        "alerts history --json": run_cli("alerts", "history", "shop", "--json"),
    }
    for channel, result in outputs.items():
        found += leaks(channel, result.output)
    ran = json.loads(outputs["run --json"].output)
    errors = [step["error"] for step in ran["steps"] if step["kind"] == "extract"]
    # The vendor did quote the credentials back, and they were masked where they appeared.
    assert len(errors) == 2 and all("***" in error for error in errors), errors
    assert "HTTP 400" in errors[0] and "HTTP 401" in errors[1]
    found += leaks("database", control_tables(conn))
    mail = emails("shop")
    assert "the run of Echo Shop failed" in mail and "***" in mail
    found += leaks("emails", mail)
    log = scheduler_log(project)
    assert "run" in log and "***" in log, log[-2000:]
    found += leaks("scheduler log", log)
    assert found == []
