"""Masking secrets in everything that leaves the process: one function, every channel.

A secret reaches an output in many spellings: as it is, URL-encoded in a query string (`+` or
`%20` for a space, upper- or lower-case hex, encoded twice), JSON- or HTML-escaped, or inside
base64 (`Authorization: Basic base64(user:pass)`, a token echoed back encoded). `mask` replaces
every one of them with `***`. The secrets it knows are those registered by the code that
resolves them (connector settings, rotated tokens, reader passwords, the warehouse password)
and those read from the environment each time (SMTP and Metabase passwords, API keys, the
secret key, the password of GOALPOST_DATABASE_URL), so nobody has to remember to register them.

Every output channel goes through it: the CLI's stdout and stderr (`MaskingStream`, text and
--json), run records (goalpost.core.runs), alert events, the outbox and emails
(goalpost.alerts), and log records (`install_log_masking`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import threading
import traceback
from collections.abc import Iterable
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

MASK = "***"
MIN_LENGTH = 4  # shorter values would mask ordinary words; no real secret is that short
ENVIRONMENT_SECRETS = ("GOALPOST_SMTP_PASSWORD", "GOALPOST_SECRET_KEY",
                       "GOALPOST_METABASE_API_KEY", "GOALPOST_METABASE_ADMIN_PASSWORD")
ENVIRONMENT_URLS = ("GOALPOST_DATABASE_URL",)

_registered: set[str] = set()
_lock = threading.Lock()
_compiled: tuple[frozenset[str], re.Pattern[str] | None] = (frozenset(), None)
# Runs of base64 (standard or URL-safe, possibly percent- or JSON-escaped) long enough to hide
# a secret: each is decoded and masked whole if what it holds contains one.
_BASE64_RUN = re.compile(r"(?:[A-Za-z0-9+/_-]|%2[BbFf]|\\/){6,}(?:=|%3[Dd]){0,2}")
_JSON_SHORT = {'"': r'\\"', "\\": r"\\\\", "/": r"\\/", "\n": r"\\n", "\r": r"\\r",
               "\t": r"\\t", "\b": r"\\b", "\f": r"\\f", "'": r"\\'"}
_HTML = {"&": ("&amp;",), "<": ("&lt;",), ">": ("&gt;",), '"': ("&quot;",),
         "'": ("&#39;", "&#x27;")}


def register(value: str | None) -> None:
    """Mask `value` from now on in every output of this process."""
    if isinstance(value, str) and len(value) >= MIN_LENGTH:
        with _lock:
            _registered.add(value)


def register_url(url: str | None) -> None:
    """Mask the password of a database URL or key=value connection string."""
    password = url_password(url)
    if password:
        register(password)


def url_password(url: str | None) -> str | None:
    """The password in a `postgresql://user:pass@host/db` URL or a `password=...` DSN."""
    if not url:
        return None
    if "://" in url:
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        return unquote(password) if password else None
    match = re.search(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", url)
    if not match:
        return None
    value = match.group(1)
    return re.sub(r"\\(.)", r"\1", value[1:-1]) if value.startswith("'") else value


def secrets() -> frozenset[str]:
    """Every value masked now: the registered ones and the environment's."""
    found = set(_registered)
    for name in ENVIRONMENT_SECRETS:
        value = os.environ.get(name)
        if value and len(value) >= MIN_LENGTH:
            found.add(value)
    for name in ENVIRONMENT_URLS:
        password = url_password(os.environ.get(name))
        if password and len(password) >= MIN_LENGTH:
            found.add(password)
    return frozenset(found)


def _hex(byte: int) -> str:
    high, low = f"{byte:02X}"
    return "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in (high, low))


def _char_forms(char: str) -> list[str]:
    """Regular expressions for every way one character of a secret may be written."""
    data = char.encode("utf-8")
    forms = [re.escape(char),
             "".join(f"%{_hex(b)}" for b in data),        # URL-encoded
             "".join(f"%25{_hex(b)}" for b in data)]      # URL-encoded twice
    if char == " ":
        forms.append(r"\+")
    if char in _JSON_SHORT:
        forms.append(_JSON_SHORT[char])
    units = [ord(char)] if ord(char) < 0x10000 else [  # JSON's UTF-16 surrogate pair
        0xD800 + ((ord(char) - 0x10000) >> 10), 0xDC00 + ((ord(char) - 0x10000) & 0x3FF)]
    forms.append("".join(r"\\u" + "".join(f"[{d}{d.lower()}]" if d.isalpha() else d
                                          for d in f"{unit:04X}") for unit in units))
    forms += [re.escape(entity) for entity in _HTML.get(char, ())]
    return forms


def _secret_pattern(value: str) -> str:
    return "".join(f"(?:{'|'.join(_char_forms(c))})" for c in value)


def _pattern() -> re.Pattern[str] | None:
    global _compiled
    current = secrets()
    known, pattern = _compiled
    if known != current:
        ordered = sorted(current, key=len, reverse=True)
        pattern = re.compile("|".join(_secret_pattern(v) for v in ordered)) if ordered else None
        _compiled = (current, pattern)
    return pattern


def _decoded(run: str) -> Iterable[str]:
    """What a run of base64 may hold, decoded every way it could have been encoded."""
    text = unquote(run.replace("\\/", "/"))
    body = text.rstrip("=")
    for alphabet in (None, b"-_"):
        for start in range(min(4, len(body))):
            chunk = body[start:]
            chunk = chunk[:len(chunk) - len(chunk) % 4] if len(chunk) % 4 == 1 else chunk
            try:
                data = base64.b64decode(chunk + "=" * (-len(chunk) % 4), altchars=alphabet,
                                        validate=True)
            except (binascii.Error, ValueError):
                continue
            yield data.decode("utf-8", "replace")


def mask(text: str) -> str:
    """`text` with every known secret, in any of its encodings, replaced by ***."""
    if not isinstance(text, str) or not text:
        return text
    pattern = _pattern()
    if pattern is None:
        return text

    def hides_secret(match: re.Match[str]) -> str:
        run = match.group(0)
        return MASK if any(pattern.search(d) for d in _decoded(run)) else run

    return pattern.sub(MASK, _BASE64_RUN.sub(hides_secret, text))


def mask_data(value: Any) -> Any:
    """A JSON-like structure with every string in it (keys too) masked."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask_data(k): mask_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_data(v) for v in value)
    return value


class MaskingStream:
    """A text stream that masks what is written to the stream it wraps, a line at a time (a
    secret split over two writes is still caught)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._pending = ""

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:
        return getattr(self.stream, "errors", None)

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._pending += text
        if "\n" in self._pending:
            complete, _, self._pending = self._pending.rpartition("\n")
            self.stream.write(mask(complete + "\n"))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.stream.write(mask(self._pending))
            self._pending = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return getattr(self.stream, "closed", False)


def unmasked(stream: TextIO) -> TextIO:
    """The stream under a MaskingStream: for the one output meant to show a secret (`goalpost
    db url`)."""
    return stream.stream if isinstance(stream, MaskingStream) else stream


_factory_installed = False


def install_log_masking() -> None:
    """Mask every log record of the process, whichever logger or handler: its message and its
    traceback are masked when the record is made."""
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        _factory_installed = True
    previous = logging.getLogRecordFactory()

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            record.msg, record.args = mask(record.getMessage()), None
        except (TypeError, ValueError):
            record.msg = mask(str(record.msg))
            record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = mask("".join(traceback.format_exception(*record.exc_info)).rstrip())
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return record

    logging.setLogRecordFactory(masked_record)
