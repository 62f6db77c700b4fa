"""The harness every vendor API emulator runs on (served by goalpost.sandbox.http_server).

An emulator stands in for a vendor's API in tests, benchmarks and the demo. It is held to the
vendor's published API reference (each emulator's docstring names its pages: auth, pagination,
incremental filters, rate limits, error shapes), checked by the contract tests against the
vendor's specification (tests/test_contract_*.py), and serves the PanPan demo data.

Subclasses implement `route(request) -> Response` and the vendor's own error shapes; the
harness adds what every test needs:

- a clock (`now`): records dated after it do not exist yet, so a test moves the clock forward
  between two incremental runs;
- fault injection (`inject`): the next matching requests get a 429 (with or without
  Retry-After), a 5xx, a delay longer than the client's timeout, a connection cut mid-body, a
  malformed JSON body, an expired-cursor error or a rejected token;
- a request log (`requests`), without credentials;
- when `exchanges` is set to a list, every request with the status and body answered, which
  the contract tests hold to the vendor's specification.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from goalpost.sandbox.http_server import Incoming, LoopbackServer, RawAction, Reply

FAULT_KINDS = ("rate_limit", "server_error", "timeout", "cut", "malformed", "expired_cursor",
               "bad_token")
SECRET_HEADERS = {"authorization", "x-shopify-access-token", "x-api-key", "cookie"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-serialisable, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode()


@dataclass
class Fault:
    kind: str
    count: int = 1
    path: str | None = None  # only requests whose path starts with this
    retry_after: float | None = None  # rate_limit: seconds, or None for no Retry-After header
    status: int = 503  # server_error
    delay: float = 5.0  # timeout: seconds to wait before answering


class Emulator(ABC):
    """Base class of the vendor emulators; use as a context manager or start()/stop()."""

    name = "emulator"

    def __init__(self, *, token: str = "emulator-token", now: datetime | None = None) -> None:
        self.token = token
        self.now = now or datetime.now(UTC)
        self.requests: list[Request] = []
        # Set to a list to keep every exchange (request, status, body sent) for contract tests.
        self.exchanges: list[tuple[Request, int, bytes]] | None = None
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._server: LoopbackServer | None = None

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self.name} emulator is not started")
        return self._server.url

    def start(self, port: int = 0) -> str:
        self._server = LoopbackServer(self._serve, port=port, name=self.name)
        return self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _serve(self, incoming: Incoming) -> Reply | RawAction:
        request = Request(incoming.method, incoming.path, parse_qs(incoming.query),
                          incoming.headers, incoming.body)
        try:
            outcome = self.handle(request)
        except Exception as exc:  # an emulator bug must show, not hang the client
            outcome = Response(500, {"error": f"emulator error: {exc!r}"})
        if isinstance(outcome, Fault):
            return _act_out(outcome)
        payload = outcome.payload()
        if self.exchanges is not None:
            self.exchanges.append((request, outcome.status, payload))
        return Reply(outcome.status, payload, outcome.headers)

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- faults ---------------------------------------------------------------------------

    def inject(self, kind: str, count: int = 1, **params: Any) -> None:
        """Make the next `count` requests (matching `path=` if given) fail in this way."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._faults.append(Fault(kind, count, **params))

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path is None or path.startswith(fault.path):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # --- what a vendor implements ---------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        """Whether the request carries the emulator's credentials (bearer by default)."""
        return request.headers.get("authorization") == f"Bearer {self.token}"

    @abstractmethod
    def route(self, request: Request) -> Response:
        """The vendor's answer to an authorised request without an injected fault."""

    def unauthorized(self, request: Request) -> Response:
        return Response(401, {"error": "unauthorized"})

    def rate_limited(self, request: Request, retry_after: float | None) -> Response:
        headers = {"Retry-After": _seconds(retry_after)} if retry_after is not None else {}
        return Response(429, {"error": "rate limited"}, headers)

    def server_error(self, request: Request, status: int) -> Response:
        return Response(status, {"error": "internal error"})

    def expired_cursor(self, request: Request) -> Response:
        return Response(400, {"error": "cursor expired"})

    # --- dispatch -------------------------------------------------------------------------

    def handle(self, request: Request) -> Response | Fault:
        """The response to a request, or the transport-level fault to act out."""
        self.requests.append(_logged(request))
        fault = self._take_fault(request.path)
        if fault is not None:
            if fault.kind == "rate_limit":
                return self.rate_limited(request, fault.retry_after)
            if fault.kind == "server_error":
                return self.server_error(request, fault.status)
            if fault.kind == "expired_cursor":
                return self.expired_cursor(request)
            if fault.kind == "bad_token":
                return self.unauthorized(request)
            return fault  # timeout, cut, malformed: acted out by the handler
        if not self.authorized(request):
            return self.unauthorized(request)
        return self.route(request)


def exact_json(body: Any) -> bytes:
    """JSON with every Decimal written as a number from its exact text (never via float), as
    vendors that send JSON decimals (Zoho, Lightspeed) write amounts."""
    def mark(value: Any) -> str:
        if isinstance(value, Decimal):
            return f"\x01{value:f}\x02"
        raise TypeError(f"cannot serialise {type(value).__name__}")
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=mark)
    return text.replace('"\\u0001', "").replace('\\u0002"', "").encode()


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _logged(request: Request) -> Request:
    headers = {k: ("***" if k in SECRET_HEADERS else v) for k, v in request.headers.items()}
    return Request(request.method, request.path, request.query, headers, request.body)


def rfc3339(moment: datetime) -> str:
    """UTC with milliseconds and a Z, as Square, Shopify and HubSpot write timestamps."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{moment.microsecond // 1000:03d}Z"


def parse_time(value: str) -> datetime:
    """An RFC 3339 timestamp (Z or offset) as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _act_out(fault: Fault) -> RawAction:
    """A transport fault as an action on the raw connection."""
    def act(handler: BaseHTTPRequestHandler) -> None:
        if fault.kind == "timeout":
            time.sleep(fault.delay)
            handler.close_connection = True
            return
        payload = b'{"data": [{"id": "1", "name": "trunc'
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        if fault.kind == "cut":
            # Announce more than is sent, then drop the connection mid-body.
            handler.send_header("Content-Length", str(len(payload) + 1000))
            handler.end_headers()
            handler.wfile.write(payload)
            handler.wfile.flush()
            handler.connection.shutdown(socket.SHUT_RDWR)
            handler.close_connection = True
            return
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
    return act
