"""Connections to the warehouse.

GOALPOST_DATABASE_URL names the server; without it the embedded server under the state
folder is started (once) and used.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import psycopg

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
    return _cached_url


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def connect(url: str | None = None, **kwargs: object) -> psycopg.Connection:
    """Open a psycopg connection to the warehouse with a clear error when it is unreachable."""
    target = url or database_url()
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
    """An autocommit connection to a warehouse whose control schema is up to date."""
    from goalpost.core.warehouse.migrations import migrate

    target = url or database_url()
    conn = connect(target, autocommit=True)
    if target not in _migrated:
        migrate(conn)
        _migrated.add(target)
    return conn
