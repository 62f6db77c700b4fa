"""Connections to the warehouse.

GOALPOST_DATABASE_URL names the server; without it the embedded server under the state
folder is started (once) and used.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import psycopg

from goalpost.core import masking
from goalpost.core.errors import WarehouseError
from goalpost.core.paths import state_dir

_cached_url: str | None = None


def embedded_server():  # noqa: ANN201 - avoids importing the embedded module eagerly
    from goalpost.core.warehouse.embedded import EmbeddedPostgres

    return EmbeddedPostgres(state_dir())


def database_url() -> str:
    """The URL of the warehouse, starting the embedded server when no URL is configured."""
    global _cached_url
    env = os.environ.get("GOALPOST_DATABASE_URL")
    if env:
        return env
    if _cached_url is None:
        _cached_url = embedded_server().start()
        masking.register_url(_cached_url)
    return _cached_url


def redact(url: str) -> str:
    """A database URL (`postgresql://user:pass@host/db`) or key=value connection string
    (`host=... password=...`) with its password hidden, for messages and logs."""
    if "://" in url:
        parts = urlsplit(url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            url = parts._replace(netloc=netloc).geturl()
    else:
        url = re.sub(r"((?:^|\s)password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", url)
    return masking.mask(url)


def connect(url: str | None = None, **kwargs: object) -> psycopg.Connection:
    """Open a psycopg connection to the warehouse with a clear error when it is unreachable."""
    target = url or database_url()
    masking.register_url(target)
    try:
        return psycopg.connect(target, **kwargs)
    except psycopg.OperationalError as exc:
        raise WarehouseError(
            f"cannot connect to the warehouse at {redact(target)}: {str(exc).strip()}",
            hint="check GOALPOST_DATABASE_URL, or unset it to use the embedded server "
            "(`goalpost db start`)",
        ) from exc


_migrated: set[str] = set()


def ready(url: str | None = None) -> psycopg.Connection:
    """An autocommit connection to a warehouse whose control schema is up to date, and where
    no run of a process that died is still shown as running (every command sees it failed,
    not only the scheduler)."""
    from goalpost.core.runs import fail_interrupted_runs
    from goalpost.core.warehouse.migrations import migrate

    target = url or database_url()
    conn = connect(target, autocommit=True)
    if target not in _migrated:
        migrate(conn)
        _migrated.add(target)
    fail_interrupted_runs(conn)
    return conn
