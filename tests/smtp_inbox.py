"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for alert tests;
with a certificate and logins when a test wants TLS and AUTH."""

from __future__ import annotations

import socket
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """The messages received, parsed, with their envelope recipients and whether each came
    over TLS; the logins tried (user, whether accepted) when `accounts` are given."""

    def __init__(self, accounts: dict[str, str] | None = None) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[list[str]] = []
        self.over_tls: list[bool] = []
        self.accounts = accounts
        self.logins: list[tuple[str, bool]] = []
        self.controller: Controller | None = None

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd API
        self.envelopes.append(list(envelope.rcpt_tos))
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.over_tls.append(server.transport.get_extra_info("ssl_object") is not None)
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        """aiosmtpd's authenticator: the login and password must be one of `accounts`."""
        ok = (isinstance(auth_data, LoginPassword) and self.accounts is not None and
              self.accounts.get(auth_data.login.decode()) == auth_data.password.decode())
        self.logins.append((auth_data.login.decode(), ok))
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 when refused

    def start(self, port: int, **options: Any) -> None:
        """Serve on the port; `options` go to aiosmtpd's Controller and SMTP (TLS, AUTH)."""
        if self.accounts is not None:
            options = {"authenticator": self.authenticate, "auth_required": True, **options}
        self.controller = Controller(self, hostname="127.0.0.1", port=port, **options)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def take(self) -> list[EmailMessage]:
        """The messages received since the last take."""
        got, self.messages, self.envelopes, self.over_tls = self.messages, [], [], []
        return got
