"""Versioned migrations of the control schema `goalpost`.

Migrations are the numbered SQL files in goalpost/migrations, applied in order, each in its
own transaction, under an advisory lock so that concurrent commands do not race.
"""

from __future__ import annotations

import re
from importlib import resources

import psycopg

CONTROL_SCHEMA = "goalpost"
_LOCK_KEY = 0x60A1_9057
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def available() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped with the package, in order."""
    found = []
    for entry in resources.files("goalpost.core.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text()))
    return sorted(found)


def migrate(conn: psycopg.Connection) -> list[int]:
    """Bring the control schema up to date; returns the versions applied now."""
    applied_now: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {CONTROL_SCHEMA}")
        conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {CONTROL_SCHEMA}.schema_migrations (
                   version int PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {
            row[0]
            for row in conn.execute(f"SELECT version FROM {CONTROL_SCHEMA}.schema_migrations")
        }
        for version, name, sql in available():
            if version in done:
                continue
            conn.execute(sql)
            conn.execute(
                f"INSERT INTO {CONTROL_SCHEMA}.schema_migrations (version, name) VALUES (%s, %s)",
                (version, name),
            )
            applied_now.append(version)
    return applied_now


def current_version(conn: psycopg.Connection) -> int | None:
    row = conn.execute(
        "SELECT to_regclass('goalpost.schema_migrations') IS NOT NULL"
    ).fetchone()
    if not row or not row[0]:
        return None
    return conn.execute("SELECT max(version) FROM goalpost.schema_migrations").fetchone()[0]
