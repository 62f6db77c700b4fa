"""Per-client isolation in Postgres: the four layer schemas and a read-only login role.

The role `<slug>_reader` may read `<slug>_marts` and `<slug>_insights` and nothing else; it is
what Metabase connects with. Its password is derived from the installation's secret key, so it
is never stored and can always be recomputed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

import psycopg
from psycopg import sql

from goalpost.core.identifiers import LAYERS, check_slug, reader_role, schema_name
from goalpost.core.paths import state_dir

READABLE_LAYERS = ("marts", "insights")


def secret_key() -> bytes:
    """GOALPOST_SECRET_KEY, or a key generated once into the state folder."""
    env = os.environ.get("GOALPOST_SECRET_KEY")
    if env:
        return env.encode()
    path = state_dir() / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def reader_password(slug: str) -> str:
    return hmac.new(secret_key(), f"reader:{check_slug(slug)}".encode(), hashlib.sha256).hexdigest()


def physical_schemas(conn: psycopg.Connection, slug: str) -> list[str]:
    """Schemas SQLMesh created for this client (versioned tables and its state)."""
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s) ORDER BY nspname",
        ([f"sqlmesh__{schema_name(slug, layer)}" for layer in LAYERS] + [state_schema(slug)],),
    ).fetchall()
    return [row[0] for row in rows]


def state_schema(slug: str) -> str:
    """Where SQLMesh keeps this client's state: one state per client keeps contexts small."""
    return f"sqlmesh_state__{check_slug(slug)}"


def provision(conn: psycopg.Connection, slug: str) -> None:
    """Create (or repair) the client's schemas, reader role and grants. Idempotent."""
    role = sql.Identifier(reader_role(slug))
    with conn.transaction():
        for layer in LAYERS:
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(schema_name(slug, layer))
                )
            )
        exists = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (reader_role(slug),)
        ).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                role, sql.Literal(reader_password(slug))
            )
        )
        for layer in LAYERS:
            schema = sql.Identifier(schema_name(slug, layer))
            if layer in READABLE_LAYERS:
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role))
                conn.execute(
                    sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(schema, role)
                )
                conn.execute(
                    sql.SQL(
                        "ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON TABLES TO {}"
                    ).format(schema, role)
                )
            else:
                conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(schema, role))


def refresh_grants(conn: psycopg.Connection, slug: str) -> None:
    """Grant the reader SELECT on everything now in its readable schemas (after a build)."""
    role = sql.Identifier(reader_role(slug))
    with conn.transaction():
        for layer in READABLE_LAYERS:
            conn.execute(
                sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                    sql.Identifier(schema_name(slug, layer)), role
                )
            )


def deprovision(conn: psycopg.Connection, slug: str) -> None:
    """Drop every schema of the client (layers, SQLMesh physical and state) and its role,
    with its load bookkeeping (cursors, loaded files, quarantine): its raw data is gone, so a
    client created again under this slug starts from scratch. Run history is kept."""
    role = reader_role(slug)
    with conn.transaction():
        for table in ("extract_state", "source_files", "quarantine"):
            conn.execute(sql.SQL("DELETE FROM goalpost.{} WHERE client = %s").format(
                sql.Identifier(table)), (slug,))
        for schema in [schema_name(slug, layer) for layer in LAYERS] + physical_schemas(conn, slug):
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
