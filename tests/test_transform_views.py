"""A physical view SQLMesh dropped and forgot (on Postgres it replaces a view with DROP ...
CASCADE, which takes the views built on it along: SQLMesh/sqlmesh#5954) is recreated, and the
build that needed it goes on instead of failing with "relation does not exist"."""

from __future__ import annotations

from pathlib import Path

import orjson
import psycopg
import pytest
from csv_files import write_csv

from goalpost.app.orchestrator import run_client
from goalpost.transform import build

pytestmark = pytest.mark.e2e


def physical_view(conn: psycopg.Connection, slug: str, name: str) -> str:
    """The physical view behind `<slug>_staging.<name>` (SQLMesh's virtual layer)."""
    definition = conn.execute("SELECT pg_get_viewdef(%s::regclass)",
                              (f"{slug}_staging.{name}",)).fetchone()[0]
    return definition.split("FROM", 1)[1].strip().rstrip(";").split()[0]


def test_a_lost_view_is_recreated_and_the_build_goes_on(project: Path, database_url: str,
                                                        conn: psycopg.Connection) -> None:
    write_csv(project / "exports" / "sales.csv", [
        {"receipt": "R1", "sold_at": "2025-03-03 10:00", "sku": "P1", "qty": "2",
         "total": "5.00"}])
    document = {"name": "Lost", "extensions": [], "sources": [
        {"name": "pos", "connector": "files", "streams": [
            {"name": "sales", "path": "exports/sales.csv", "entity": "order_lines",
             "columns": {"order_id": "receipt", "ordered_at": "sold_at",
                         "location_id": "=shop", "product_id": "sku", "quantity": "qty",
                         "line_total": "total"}}]}]}
    (project / "clients" / "lost.yaml").write_bytes(orjson.dumps(document))
    assert run_client("lost").status == "succeeded"
    lost = physical_view(conn, "lost", "dated_order_lines")
    assert lost.startswith("sqlmesh__lost_staging.dated_order_lines__")
    # What SQLMesh's CASCADE leaves: the physical view gone (and what read it).
    conn.execute(f"DROP VIEW {lost} CASCADE")

    write_csv(project / "exports" / "sales_2.csv", [
        {"receipt": "R2", "sold_at": "2025-03-04 10:00", "sku": "P1", "qty": "1",
         "total": "2.50"}])
    document["sources"][0]["streams"][0]["path"] = "exports/sales*.csv"
    (project / "clients" / "lost.yaml").write_bytes(orjson.dumps(document))
    build.forget_contexts()
    messages: list[str] = []
    run = run_client("lost", progress=messages.append)
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]
    # The physical view and prod's view of it, which the CASCADE took along.
    assert any("recreated 2 view(s) a plan had dropped" in m for m in messages), messages
    assert conn.execute("SELECT count(*) FROM lost_staging.dated_order_lines").fetchone()[0] == 2
    assert conn.execute(f"SELECT count(*) FROM {lost}").fetchone()[0] == 2
    assert conn.execute("SELECT sales_date, units_sold FROM lost_marts.product_sales_daily "
                        "ORDER BY 1").fetchall()[-1][1] == 1
