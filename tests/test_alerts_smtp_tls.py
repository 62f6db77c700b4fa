"""Alert emails over TLS to a real SMTP server on loopback (aiosmtpd) that wants a login:
STARTTLS and implicit TLS, the server's certificate verified against a throwaway CA given in
GOALPOST_SMTP_CA_FILE (and refused without it), and a wrong password recorded as a failed
delivery, tried once, while the run succeeds."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from smtp_inbox import Inbox, free_port
from test_alerts_end_to_end import SLUG, count, write_client

from goalpost.alerts import delivery
from goalpost.alerts.delivery import smtp_settings
from goalpost.alerts.manage import check, send_test
from goalpost.app.orchestrator import run_client
from goalpost.core.errors import ConfigError

USER = "alerts@consultancy.example"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for 127.0.0.1 and localhost, and its key."""
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert, key = folder / "server.pem", folder / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=Goalpost test SMTP", "-addext",
         "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True)
    return cert, key


@pytest.fixture
def server(request: pytest.FixtureRequest, certificate: tuple[Path, Path],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """aiosmtpd with TLS (request.param: starttls or ssl) wanting USER's login, and
    GOALPOST_SMTP_* pointing at it with the certificate as the trusted CA."""
    security = getattr(request, "param", "starttls")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    inbox = Inbox(accounts={USER: PASSWORD})
    port = free_port()
    if security == "starttls":
        inbox.start(port, tls_context=context, require_starttls=True, auth_require_tls=True)
    else:
        # aiosmtpd counts only the TLS it negotiated itself (STARTTLS) as TLS, so on an
        # implicit TLS connection AUTH is refused unless auth_require_tls is off
        # (aio-libs/aiosmtpd#281): the whole connection is encrypted anyway.
        inbox.start(port, ssl_context=context, auth_require_tls=False)
    for name, value in {"HOST": "127.0.0.1", "PORT": str(port), "SECURITY": security,
                        "USER": USER, "PASSWORD": PASSWORD, "FROM": f"Goalpost <{USER}>",
                        "CA_FILE": str(certificate[0]), "TIMEOUT": "10"}.items():
        monkeypatch.setenv(f"GOALPOST_SMTP_{name}", value)
    monkeypatch.setattr(delivery, "RETRY_DELAYS", (0.0, 0.0))
    yield inbox
    inbox.stop()


@pytest.mark.parametrize("server", ["starttls", "ssl"], indirect=True)
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # see server()
def test_tls_delivery_logs_in_and_trusts_only_a_verified_server(
        project: Path, database_url: str, server: Inbox,
        monkeypatch: pytest.MonkeyPatch) -> None:
    write_client(project)
    report = send_test(SLUG)
    assert report.failed == [] and [s["recipient"] for s in report.sent] == [
        "camille@stocky.example"]
    assert server.logins == [(USER, True)] and server.over_tls == [True]
    (message,) = server.take()
    assert message["Subject"].startswith("[test] Stocky: ")

    # The system's CAs do not know the test certificate: no connection, no password sent.
    monkeypatch.delenv("GOALPOST_SMTP_CA_FILE")
    (failed,) = send_test(SLUG).failed
    assert failed["attempts"] == 1, "an untrusted certificate is not tried again at once"
    assert failed["error"].startswith("SSLCertVerificationError: the certificate of "
                                      "smtp://127.0.0.1:")
    assert "self-signed certificate" in failed["error"]
    assert "GOALPOST_SMTP_CA_FILE" in failed["error"]
    assert server.logins == [(USER, True)] and server.take() == []


@pytest.mark.e2e
@pytest.mark.parametrize("server", ["starttls"], indirect=True)
def test_a_wrong_password_is_a_failed_delivery_and_the_run_succeeds(
        project: Path, database_url: str, conn: psycopg.Connection, server: Inbox,
        monkeypatch: pytest.MonkeyPatch) -> None:
    write_client(project)
    count(project, "2025-01-12", VIE_001=30, PAI_001=20)
    monkeypatch.setenv("GOALPOST_SMTP_PASSWORD", "wrong")

    result = run_client(SLUG)
    assert result.status == "succeeded", [(s.name, s.error) for s in result.steps]
    (step,) = [s for s in result.steps if s.kind == "alert"]
    assert step.status == "succeeded" and step.details["emails_failed"] == 1
    (warning,) = step.details["warnings"]
    assert "alert email to camille@stocky.example not sent after 1 try" in warning
    assert f"refused the login of {USER} (535 " in warning
    assert "check GOALPOST_SMTP_USER and GOALPOST_SMTP_PASSWORD" in warning
    # Refused in one connection (smtplib tries each mechanism the server offers), not three.
    assert server.logins and not any(ok for _, ok in server.logins)
    (event,) = conn.execute("SELECT attempt, status, error FROM goalpost.alert_events WHERE "
                            "client = %s AND event = 'delivery'", (SLUG,)).fetchall()
    assert event[:2] == (1, "failed") and event[2].startswith("SMTPAuthenticationError: ")
    assert conn.execute("SELECT status, attempts FROM goalpost.alert_outbox WHERE client = %s",
                        (SLUG,)).fetchall() == [("pending", 1)]
    assert server.take() == []

    # The password is put right: the next evaluation delivers the pending email.
    monkeypatch.setenv("GOALPOST_SMTP_PASSWORD", PASSWORD)
    outcome = check(SLUG, now=datetime.now(UTC))
    assert [sent["recipient"] for sent in outcome.delivery.sent] == ["camille@stocky.example"]
    assert server.logins[-1] == (USER, True) and server.over_tls == [True]
    (message,) = server.take()
    assert "Croissant at Croix-Rousse: stock 30" in message["Subject"]


def test_the_ca_file_is_checked(tmp_path: Path) -> None:
    base = {"GOALPOST_SMTP_HOST": "smtp.example"}
    ca = tmp_path / "ca.pem"
    with pytest.raises(ConfigError, match=f"GOALPOST_SMTP_CA_FILE={ca} is not a file"):
        smtp_settings({**base, "GOALPOST_SMTP_CA_FILE": str(ca)})
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    assert smtp_settings({**base, "GOALPOST_SMTP_CA_FILE": str(ca)}).ca_file == str(ca)
    assert smtp_settings(base).ca_file is None
    with pytest.raises(ConfigError, match="SECURITY is none"):
        smtp_settings({**base, "GOALPOST_SMTP_SECURITY": "none",
                       "GOALPOST_SMTP_CA_FILE": str(ca)})
