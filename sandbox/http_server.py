"""The one HTTP server every sandbox service runs on: a threaded server on loopback.

The vendor emulators and the Metabase stand-in each turn an `Incoming` request into a `Reply`
(or, for the emulators' transport faults, into an action on the raw connection); this module
does the socket work they share: TCP_NODELAY (headers and body go out in separate writes, and
without it Nagle's algorithm and the client's delayed ACK hold every response back 40 ms),
daemon threads, quiet logs, start, stop and the URL.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOST = "127.0.0.1"


@dataclass
class Incoming:
    """A request as received: method, path, raw query string, lower-case headers, body."""

    method: str
    target: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


# What a service may return instead of a Reply: acts on the raw connection itself (a delay
# longer than the client's timeout, a connection cut mid-body).
RawAction = Callable[[BaseHTTPRequestHandler], None]
App = Callable[[Incoming], "Reply | RawAction"]


def _handler(app: App, verbose: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            if verbose:
                super().log_message(format, *args)

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            incoming = Incoming(self.command, self.path, parts.path, parts.query,
                                {k.lower(): v for k, v in self.headers.items()}, body)
            outcome = app(incoming)
            if not isinstance(outcome, Reply):
                outcome(self)
                return
            self.send_response(outcome.status)
            if outcome.status != 204:
                self.send_header("Content-Type", outcome.content_type)
            self.send_header("Content-Length", str(len(outcome.body)))
            for key, value in outcome.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(outcome.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve  # noqa: N815

    return Handler


class LoopbackServer:
    """`app` served on a loopback port (0: any free one); a context manager, or start()/stop()
    around a background thread, or serve_forever() in the foreground."""

    def __init__(self, app: App, *, host: str = HOST, port: int = 0, name: str = "http",
                 verbose: bool = False) -> None:
        self._server = ThreadingHTTPServer((host, port), _handler(app, verbose))
        self._server.daemon_threads = True
        self._name = name
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        self._thread = threading.Thread(target=self._server.serve_forever, name=self._name,
                                        daemon=True)
        self._thread.start()
        return self.url

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
