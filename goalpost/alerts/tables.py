"""A client's tables as the alerts stage reads them: quoted names, whether one exists yet
(an extension that never ran leaves its table out), and rows (alert rules and the review)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from goalpost.core.identifiers import schema_name


class ClientTables:
    """For a class with `conn` (a connection) and `slug` (the client's)."""

    conn: psycopg.Connection
    slug: str

    def table(self, layer: str, name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(schema_name(self.slug, layer)),
                                       sql.Identifier(name))

    def exists(self, layer: str, name: str) -> bool:
        return self.conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                                 (f'"{schema_name(self.slug, layer)}"."{name}"',)
                                 ).fetchone()[0]

    def rows(self, query: sql.Composable, params: Any = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(query, params).fetchall()
