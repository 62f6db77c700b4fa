"""Shared set-up of the Metabase tests: a stand-in server and clients with built-looking
schemas (the tables and columns the templates' filters use), without running SQLMesh."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest
from psycopg import sql

from goalpost.core.identifiers import schema_name
from goalpost.core.warehouse.tenants import provision, refresh_grants
from goalpost.metabase.template import DIMENSIONS_FILTER, templates
from goalpost.sandbox.metabase_standin.server import StandinServer


def columns_used() -> dict[tuple[str, str], set[str]]:
    """(layer, table) -> the columns the templates' filters name."""
    found: dict[tuple[str, str], set[str]] = {}
    for dashboard in templates().values():
        for card in dashboard.cards:
            for key in card.filters:
                if key == DIMENSIONS_FILTER:  # a mart, for the client's dimensions (none here)
                    continue
                ref = card.column(key)
                found.setdefault((ref.layer, ref.table), set()).add(ref.column)
    return found


# A POS export of sales and stock counts: the client then gets every dashboard (Inventory
# needs a source of stock counts). Its files are never read here.
SOURCES = [{"name": "pos", "connector": "files", "streams": [
    {"name": "sales", "path": "exports/sales.csv", "entity": "order_lines"},
    {"name": "stock", "path": "exports/stock.csv", "entity": "inventory_levels"}]}]


def make_client(project: Path, conn: psycopg.Connection, slug: str, **extra: object) -> None:
    """clients/<slug>.yaml with an owner and a POS source (SOURCES), its schemas and reader
    role, and the tables."""
    document = {"name": f"{slug.title()} Shop", "timezone": "Europe/Paris",
                "owners": [{"name": f"Owner {slug.title()}", "email": f"owner@{slug}.example"}],
                "sources": SOURCES, **extra}
    (project / "clients" / f"{slug}.yaml").write_bytes(orjson.dumps(document))
    provision(conn, slug)
    tables = columns_used()
    # What plan reads of the data to fit the dashboards (metabase.fit.read_facts).
    tables[("marts", "kpi_daily")] |= {"date", "dimension", "dimension_value"}
    for (layer, table), columns in tables.items():
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} ({})").format(
            sql.Identifier(schema_name(slug, layer)), sql.Identifier(table),
            sql.SQL(", ").join(sql.SQL("{} {}").format(
                sql.Identifier(c), sql.SQL("date" if c in ("sales_date", "month", "date",
                                                          "started_on", "cohort_month",
                                                          "last_order_on") else "text"))
                for c in sorted(columns))))
    refresh_grants(conn, slug)


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandinServer]:
    """A stand-in Metabase; fails the test if any request Goalpost sent broke the spec."""
    server = StandinServer().start()
    monkeypatch.setenv("GOALPOST_METABASE_URL", server.url)
    monkeypatch.delenv("GOALPOST_METABASE_API_KEY", raising=False)
    for name in ("HOST", "PORT", "NAME", "SSL"):
        monkeypatch.delenv(f"GOALPOST_METABASE_DB_{name}", raising=False)
    monkeypatch.delenv("GOALPOST_SMTP_HOST", raising=False)
    monkeypatch.delenv("GOALPOST_METABASE_TIMEZONE", raising=False)  # bootstrap sets UTC
    try:
        yield server
    finally:
        server.stop()
    assert server.metabase.violations == []
