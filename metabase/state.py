"""What Goalpost provisioned in Metabase: goalpost.metabase_objects, one row per object.

Only objects in this table are updated or deleted by Goalpost; anything else in Metabase was
made by hand and is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb


@dataclass
class Provisioned:
    kind: str
    key: str
    metabase_id: int
    entity_id: str | None
    fingerprint: str
    payload: dict[str, Any]


def load(conn: psycopg.Connection, client: str) -> dict[tuple[str, str], Provisioned]:
    rows = conn.execute(
        "SELECT kind, key, metabase_id, entity_id, fingerprint, payload "
        "FROM goalpost.metabase_objects WHERE client = %s", (client,)).fetchall()
    return {(row[0], row[1]): Provisioned(*row) for row in rows}


def ids_of_kind(conn: psycopg.Connection, kind: str) -> dict[str, int]:
    """Metabase ids of one kind of object across every client, by client (other clients'
    groups, databases and collections, which a client's permissions must exclude)."""
    rows = conn.execute("SELECT client, metabase_id FROM goalpost.metabase_objects "
                        "WHERE kind = %s", (kind,)).fetchall()
    return {row[0]: row[1] for row in rows}


def save(conn: psycopg.Connection, client: str, item: Provisioned) -> None:
    conn.execute(
        """INSERT INTO goalpost.metabase_objects
               (client, kind, key, metabase_id, entity_id, fingerprint, payload)
           VALUES (%s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (client, kind, key) DO UPDATE SET
               metabase_id = EXCLUDED.metabase_id, entity_id = EXCLUDED.entity_id,
               fingerprint = EXCLUDED.fingerprint, payload = EXCLUDED.payload,
               applied_at = now()""",
        (client, item.kind, item.key, item.metabase_id, item.entity_id, item.fingerprint,
         Jsonb(item.payload)))


def forget(conn: psycopg.Connection, client: str, kind: str, key: str) -> None:
    conn.execute("DELETE FROM goalpost.metabase_objects WHERE client = %s AND kind = %s "
                 "AND key = %s", (client, kind, key))
