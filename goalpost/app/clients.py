"""Onboarding and offboarding clients: the YAML in the registry and the tenant in Postgres."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

from goalpost.core import registry
from goalpost.core.errors import ConfigError
from goalpost.core.identifiers import check_slug, schema_name
from goalpost.core.registry.models import Client
from goalpost.core.warehouse import tenants


def create(slug: str, values: dict[str, Any]) -> tuple[Path, bool]:
    """Write clients/<slug>.yaml unless it exists; returns (path, created)."""
    check_slug(slug)
    path = registry.client_path(slug)
    if path.exists():
        return path, False
    document = registry.new_document(values)
    return registry.save_document(slug, document), True


def sync(conn: psycopg.Connection, slug: str, client: Client) -> None:
    """Provision the tenant and mirror the registry entry into goalpost.clients/sources."""
    tenants.provision(conn, slug)
    config = client.model_dump(mode="json")
    with conn.transaction():
        conn.execute(
            """INSERT INTO goalpost.clients (slug, name, config) VALUES (%s, %s, %s::jsonb)
               ON CONFLICT (slug) DO UPDATE SET name = excluded.name, config = excluded.config,
                   updated_at = now()
               WHERE goalpost.clients.config IS DISTINCT FROM excluded.config
                  OR goalpost.clients.name IS DISTINCT FROM excluded.name""",
            (slug, client.name, orjson.dumps(config).decode()),
        )
        names = [source.name for source in client.sources]
        conn.execute(
            "DELETE FROM goalpost.sources WHERE client = %s AND NOT (name = ANY(%s))",
            (slug, names),
        )
        for source in client.sources:
            conn.execute(
                """INSERT INTO goalpost.sources (client, name, connector, config)
                   VALUES (%s, %s, %s, %s::jsonb)
                   ON CONFLICT (client, name) DO UPDATE SET connector = excluded.connector,
                       config = excluded.config, updated_at = now()
                   WHERE goalpost.sources.config IS DISTINCT FROM excluded.config""",
                (slug, source.name, source.connector,
                 orjson.dumps(source.model_dump(mode="json")).decode()),
            )


def remove(conn: psycopg.Connection, slug: str, *, keep_file: bool = False) -> list[str]:
    """Drop the client's schemas, role and control rows (and its YAML unless kept)."""
    check_slug(slug)
    removed = []
    elsewhere = tenants.deprovision(conn, slug)
    removed.append("schemas and reader role" + (
        f" (and its grants in {', '.join(elsewhere)})" if elsewhere else ""))
    with conn.transaction():
        for table in ("quarantine", "source_files", "extract_state", "alert_state",
                      "alert_snoozes", "alert_outbox", "transform_pending", "metric_points",
                      "metric_points_built"):
            conn.execute(f"DELETE FROM goalpost.{table} WHERE client = %s", (slug,))
        conn.execute("DELETE FROM goalpost.clients WHERE slug = %s", (slug,))
    removed.append("control-schema rows")
    path = registry.client_path(slug)
    if path.exists() and not keep_file:
        path.unlink()
        removed.append(str(path.name))
    return removed


def parse_owner(text: str) -> dict[str, str]:
    """`Name <email>` or `email` -> {name, email}."""
    text = text.strip()
    if "<" in text and text.endswith(">"):
        name, email = text[:-1].split("<", 1)
        return {"name": name.strip() or email.strip(), "email": email.strip()}
    if "@" in text:
        return {"name": text.split("@")[0], "email": text}
    raise ConfigError(f"owner {text!r} is not 'Name <email>' or an email address")


def newest_business_date(conn: psycopg.Connection, slug: str) -> date | None:
    """The client's newest business date (its latest sale or stock count, as
    `<slug>_staging.data_as_of` gives it), or None before the first build."""
    view = sql.SQL("{}.data_as_of").format(sql.Identifier(schema_name(slug, "staging")))
    if conn.execute("SELECT to_regclass(%s)", (view.as_string(conn),)).fetchone()[0] is None:
        return None
    row = conn.execute(sql.SQL("SELECT as_of FROM {}").format(view)).fetchone()
    return row[0] if row else None
