"""The harness every vendor API emulator runs on: a threaded HTTP server on loopback.

An emulator stands in for a vendor's API in tests, benchmarks and the demo. It is held to the
real API's contract as described in ../shared/docs/connectors.md (auth, pagination, incremental
filters, rate limits, error shapes) and serves the PanPan demo data.

Subclasses implement `route(request) -> Response` and the vendor's own error shapes; the
harness adds what every test needs:

- a clock (`now`): records dated after it do not exist yet, so a test moves the clock forward
  between two incremental runs;
- fault injection (`inject`): the next matching requests get a 429 (with or without
  Retry-After), a 5xx, a delay longer than the client's timeout, a connection cut mid-body, a
  malformed JSON body, an expired-cursor error or a rejected token;
- a request log (`requests`), without credentials.
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self.name} emulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self, port: int = 0) -> str:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.name,
                                        daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

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


def _handler_for(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes: without this, Nagle's algorithm and
            # the client's delayed ACK hold every response back 40 ms.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return None

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(self.command, parts.path, parse_qs(parts.query),
                              {k.lower(): v for k, v in self.headers.items()}, body)
            try:
                outcome = emulator.handle(request)
            except Exception as exc:  # an emulator bug must show, not hang the client
                outcome = Response(500, {"error": f"emulator error: {exc!r}"})
            if isinstance(outcome, Fault):
                self._act_out(outcome)
                return
            payload = outcome.payload()
            self.send_response(outcome.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in outcome.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def _act_out(self, fault: Fault) -> None:
            if fault.kind == "timeout":
                time.sleep(fault.delay)
                self.close_connection = True
                return
            payload = b'{"data": [{"id": "1", "name": "trunc'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if fault.kind == "cut":
                # Announce more than is sent, then drop the connection mid-body.
                self.send_header("Content-Length", str(len(payload) + 1000))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

    return Handler
