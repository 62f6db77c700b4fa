"""What the loader lets into raw, cell by cell, against a real Postgres: the issue's poison
cells are quarantined with reasons, suspect rows (a sale in the future) can be released and
then load, and the values staging would refuse (an unknown order kind, a constant it cannot
cast, a negative quantity that was paid for) never reach raw.

That whatever is accepted also builds in staging is tested through SQLMesh in
tests/test_file_exports.py.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from file_loads import Load, stream_loader

from goalpost.core.registry.models import FileStream

HEADER = "ticket,line,sold_at,shop,sku,quantity,price,total\n"
COLUMNS = {"order_id": "ticket", "line_number": "line", "ordered_at": "sold_at",
           "location_id": "shop", "product_id": "sku", "unit_price": "price",
           "line_total": "total"}


def sales(**settings: object) -> FileStream:
    values = {"name": "sales", "path": "sales/*", "entity": "order_lines",
              "primary_key": ["ticket", "line"], "columns": COLUMNS, **settings}
    return FileStream.model_validate(values)


def good(ticket: str, line: int = 1) -> str:
    return f"{ticket},{line},2024-03-01 08:00,S1,P1,2,1.50,3.00\n"


@pytest.fixture
def load(conn: psycopg.Connection, project: Path) -> Load:
    (project / "sales").mkdir()
    return stream_loader(conn, project, sales)


def loaded(conn: psycopg.Connection) -> list[str]:
    return [row[0] for row in conn.execute(
        "SELECT data ->> 0 FROM shop_raw.pos__sales ORDER BY _file_id, _row")]


def held(conn: psycopg.Connection) -> dict[str, tuple[str, str]]:
    """{ticket: (kind, reason)} of the quarantined rows."""
    return {record.split(",")[0]: (kind, reason) for record, kind, reason in conn.execute(
        "SELECT record, kind, reason FROM goalpost.quarantine ORDER BY id")}


def test_the_issues_poison_cells_are_quarantined_and_the_rest_loads(project, load, conn):
    rows = [
        "P1,1,2026-12-06T10,S1,P1,1,1.00,1.00",        # an hour without minutes
        "P2,1,2024-03-01 08:00,S1,P1,\uff12,1.00,2.00",  # a full-width digit
        "P3,1,2024-03-01 08:00,S1,P1,1,1.00,1e400000",  # past NUMERIC's range
        "P4,1e30,2024-03-01 08:00,S1,P1,1,1.00,1.00",   # past BIGINT, in an integer column
        "P5,1,2024-03-01 08:00,S1,P1,NaN,1.00,1.00",    # NUMERIC reads it, no quantity is
        "P6,1,2024-02-30 08:00,S1,P1,1,1.00,1.00",      # no such day
        "P7,1,2024-03-01 08:00,S1,P1,1,1.00,",          # empty total, computed from price
    ]
    body = "".join(good(f"G{n}") for n in range(10)) + "\n".join(rows) + "\n"
    (project / "sales" / "a.csv").write_text(HEADER + body)
    result = load()
    assert (result.rows_loaded, result.rows_quarantined, result.problems) == (11, 6, [])
    assert loaded(conn)[-1] == "P7"
    reasons = held(conn)
    assert set(reasons) == {"P1", "P2", "P3", "P4", "P5", "P6"}
    assert {kind for kind, _ in reasons.values()} == {"invalid"}
    assert "column 'sold_at' (ordered_at): '2026-12-06T10' is not an ISO 8601 date" in \
        reasons["P1"][1]
    assert "column 'quantity' (quantity): '２' is not a number (this file uses a decimal " \
        "point, and digits 0-9)" in reasons["P2"][1]
    assert "'1e400000' is too large for a quantity or an amount" in reasons["P3"][1]
    assert "column 'line' (line_number): '1e30' is too large" in reasons["P4"][1]
    assert "'NaN' is not a number" in reasons["P5"][1]
    assert "'2024-02-30 08:00' is not an ISO 8601 date" in reasons["P6"][1]
    assert reasons["P1"][1].startswith("line 12: ")


def test_a_sale_in_the_future_is_suspect_and_loads_once_released(project, load, conn):
    from goalpost.pipelines.files import quarantine

    (project / "sales" / "a.csv").write_text(
        HEADER + good("T1") + "T2,1,2099-03-01 08:00,S1,P1,1,1.00,1.00\n"
        "T3,1,2024-03-01 08:00,S1,P1,-2,1.50,3.00\n")
    result = load()
    assert (result.rows_loaded, result.rows_quarantined) == (1, 2)
    reasons = held(conn)
    assert reasons["T2"][0] == "suspect" and "is in the future (after " in reasons["T2"][1]
    assert reasons["T3"][0] == "invalid" and "quantity -2 was paid for" in reasons["T3"][1]

    ids = {row[0]: row[1] for row in conn.execute(
        "SELECT split_part(record, ',', 1), id FROM goalpost.quarantine")}
    outcome = quarantine.release(conn, "shop", [ids["T2"], ids["T3"]])
    assert outcome.released == [ids["T2"]] and "staging cannot read it" in outcome.refused[0]
    again = load()
    assert (again.rows_released, again.rows_loaded, again.files_skipped) == (1, 1, 1)
    assert loaded(conn) == ["T1", "T2"]
    assert load().rows_released == 0

    refreshed = load(full_refresh=True)
    assert (refreshed.rows_loaded, refreshed.rows_quarantined) == (2, 1)
    assert loaded(conn) == ["T1", "T2"]
    assert conn.execute("SELECT count(*) FROM goalpost.quarantine").fetchone() == (2,)


def test_returns_write_offs_and_instants_load(project, load, conn):
    (project / "sales" / "a.csv").write_text(
        HEADER
        + "R1,1,2024-03-01 08:00,S1,P1,-2,1.50,-3.00\n"     # a return: money goes back
        + "W1,1,2024-03-01 08:00,S1,P1,-5,0,0\n"            # a write-off: no money
        + "Z1,1,2024-03-01T09:00:00+05:00,S1,P1,1,1.50,1.50\n"  # an instant, with its offset
        + "Z2,1,2024-03-01T09:00Z,S1,P1,1,1.50,1.50\n")
    result = load()
    assert (result.rows_loaded, result.rows_quarantined) == (4, 0)


def test_an_order_kind_staging_cannot_classify_is_quarantined(project, load, conn):
    (project / "sales" / "a.csv").write_text(
        HEADER.strip() + ",type\n" + good("K1").strip() + ", Sale \n"
        + good("K2").strip() + ",RETURN\n" + good("K3").strip() + ",\n"
        + good("K4").strip() + ",refund\n")
    result = load(sales(columns={**COLUMNS, "order_kind": "type"}))
    assert (result.rows_loaded, result.rows_quarantined) == (3, 1)
    assert "column 'type' (order_kind): 'refund' is not one of sale, return, adjustment" in \
        held(conn)["K4"][1]


@pytest.mark.parametrize(("constant", "message"), [
    ({"quantity": "=two"}, "the constant quantity: '=two' is not a number"),
    ({"order_kind": "=refund"}, "the constant order_kind: '=refund' is not one of sale, return"),
    ({"channel": "=web", "line_total": "="}, "the constant line_total: '=' is empty"),
    ({"ordered_at": "=2099-01-01"}, "the constant ordered_at: '=2099-01-01' is in the future"),
])
def test_a_constant_staging_cannot_read_refuses_the_file(project, load, conn, constant,
                                                         message):
    (project / "sales" / "a.csv").write_text(HEADER + good("C1"))
    result = load(sales(columns={**COLUMNS, **constant}))
    (problem,) = result.problems
    assert problem.startswith("sales/a.csv ") and message in problem
    assert result.rows_loaded == 0 and loaded(conn) == []
