"""The SQLMesh transform on a real Postgres: typed staging from raw rows, exact marts,
idempotent rebuilds, restatement with new data, and isolation between clients.

Raw rows and their source_files entries are written here with SQL, exactly as the file loader
lands them, so these tests do not depend on the loader.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from goalpost.core.errors import ConfigError, GoalpostError
from goalpost.core.registry.models import Client
from goalpost.core.warehouse import tenants
from goalpost.pipelines.raw import ensure_raw_table, raw_identifier
from goalpost.transform import PROJECT_DIR
from goalpost.transform import build as transform

ISO = {"format": "csv", "encoding": "utf-8", "delimiter": ",", "decimal": ".", "thousands": ""}
SALES_COLUMNS = {
    "order_id": "receipt_no", "line_number": "line_no", "ordered_at": "sold_at",
    "location_id": "shop_id", "channel": "channel", "customer_id": "customer_id",
    "product_id": "sku", "quantity": "qty", "unit_price": "unit_price",
    "discount": "discount", "line_total": "line_total",
}
# The monthly export: semicolons, decimal commas, dots for thousands, DD/MM/YYYY HH24:MI.
FR_SALES = {
    "format": "csv", "encoding": "cp1252", "delimiter": ";", "decimal": ",", "thousands": ".",
    "columns": SALES_COLUMNS,
    "date_formats": {"ordered_at": {"python": "%d/%m/%Y %H:%M", "postgres": "DD/MM/YYYY HH24:MI"}},
}
# A corrections file in another dialect and with another header for the quantity.
ISO_SALES = dict(
    ISO,
    columns=dict(SALES_COLUMNS, quantity="quantity"),
    date_formats={"ordered_at": {"python": "%Y-%m-%d %H:%M", "postgres": "YYYY-MM-DD HH24:MI"}},
)

SHOPS = [
    {"shop_id": "S1", "shop_name": "Lyon Centre", "city": "Lyon", "opened_on": "2019-05-01"},
    {"shop_id": "S2", "shop_name": "Croix-Rousse", "city": "Lyon", "opened_on": ""},
]
PRODUCTS = [
    {"sku": "P1", "name": "Croissant", "category": "viennoiserie", "unit_price": "1.20"},
    {"sku": "P2", "name": "Tarte", "category": "patisserie", "unit_price": "3.50"},
    {"sku": "P3", "name": "Gateau", "category": "patisserie", "unit_price": "25.00"},
]
CUSTOMERS = [
    {"customer_id": "C1", "first_name": "Ana", "signup": "2024-01-05 10:00:00"},
    {"customer_id": "C2", "first_name": "Bo", "signup": "2024-02-11 17:30:00"},
    {"customer_id": "C3", "first_name": "Cy", "signup": ""},
]


def sale(receipt: str, line: int, at: str, shop: str, customer: str, sku: str, qty: str,
         price: str, total: str, discount: str = "", qty_header: str = "qty") -> dict[str, str]:
    return {
        "receipt_no": receipt, "line_no": str(line), "sold_at": at, "shop_id": shop,
        "channel": "in-store", "customer_id": customer, "sku": sku, qty_header: qty,
        "unit_price": price, "discount": discount, "line_total": total,
    }


SALES_MARCH = [
    sale("R1", 1, "30/03/2024 08:05", "S1", "C1", "P1", "2", "1,20", "2,40"),
    sale("R1", 2, "30/03/2024 08:05", "S1", "C1", "P2", "1", "3,50", "3,50"),
    sale("R2", 1, "30/03/2024 09:10", "S1", "", "P3", "50", "25,00", "1.250,00"),
    sale("R3", 1, "30/03/2024 18:45", "S2", "C2", "P1", "3", "1,20", "3,60"),
    # 02:30 on the night clocks go forward in Paris: a wall time that exists in the file.
    sale("R4", 1, "31/03/2024 02:30", "S1", "C1", "P2", "2", "3,50", "6,50", discount="0,50"),
    sale("R5", 1, "31/03/2024 10:00", "S2", "C3", "P1", "1", "1,20", "1,20"),
    sale("R5", 2, "31/03/2024 10:00", "S2", "C3", "P3", "1", "25,00", "25,00"),
    sale("R6", 1, "31/03/2024 16:00", "S1", "C1", "P2", "-1", "3,50", "-3,50"),
    # R7 is corrected by the second file (4 croissants, not 3).
    sale("R7", 1, "01/04/2024 09:15", "S1", "C2", "P1", "3", "1,20", "3,60"),
]
SALES_CORRECTIONS = [
    sale("R7", 1, "2024-04-01 09:15", "S1", "C2", "P1", "4", "1.20", "4.80", qty_header="quantity"),
    sale("R8", 1, "2024-04-01 11:00", "S2", "", "P2", "1", "3.50", "3.50", qty_header="quantity"),
]

D = Decimal
DAILY = [
    # sales_date, location, name, orders, revenue, items, customers, average_ticket; items
    # are the units on sales receipts (R6 gives one tart back: revenue falls, items do not)
    (date(2024, 3, 30), "S1", "Lyon Centre", 2, D("1255.90"), D("53"), 1, D("627.95")),
    (date(2024, 3, 30), "S2", "Croix-Rousse", 1, D("3.60"), D("3"), 1, D("3.60")),
    (date(2024, 3, 31), "S1", "Lyon Centre", 1, D("3.00"), D("2"), 1, D("3.00")),
    (date(2024, 3, 31), "S2", "Croix-Rousse", 1, D("26.20"), D("2"), 1, D("26.20")),
    (date(2024, 4, 1), "S1", "Lyon Centre", 1, D("4.80"), D("4"), 1, D("4.80")),
    (date(2024, 4, 1), "S2", "Croix-Rousse", 1, D("3.50"), D("1"), 0, D("3.50")),
]
MONTHLY = [
    (date(2024, 3, 1), "S1", "Lyon Centre", 3, D("1258.90"), D("55"), 1, D("419.63")),
    (date(2024, 3, 1), "S2", "Croix-Rousse", 2, D("29.80"), D("5"), 2, D("14.90")),
    (date(2024, 4, 1), "S1", "Lyon Centre", 1, D("4.80"), D("4"), 1, D("4.80")),
    (date(2024, 4, 1), "S2", "Croix-Rousse", 1, D("3.50"), D("1"), 0, D("3.50")),
]
MEASURES = (
    "location_id, location_name, orders, revenue, items, customers, average_ticket"
)


def make_client(name: str = "Tiny Bakery", currency: str = "EUR") -> Client:
    return Client.model_validate({
        "name": name,
        "currency": currency,
        "timezone": "Europe/Paris",
        "sources": [{
            "name": "pos",
            "connector": "files",
            "streams": [
                {"name": "shops", "path": "shops.csv", "entity": "locations",
                 "primary_key": ["shop_id"],
                 "columns": {"location_id": "shop_id", "name": "shop_name"}},
                {"name": "products", "path": "products.csv", "entity": "products",
                 "primary_key": ["sku"], "columns": {"product_id": "sku"}},
                {"name": "customers", "path": "customers.csv", "entity": "customers",
                 "primary_key": ["customer_id"], "columns": {"created_at": "signup"}},
                {"name": "sales", "path": "sales_*.csv", "entity": "order_lines",
                 "primary_key": ["receipt_no", "line_no"], "columns": SALES_COLUMNS},
            ],
        }],
    })


class Raw:
    """Writes raw rows and their source_files entries the way the file loader does: each row
    an array of cells, the header's positions in the file's dialect."""

    def __init__(self, conn: psycopg.Connection, slug: str) -> None:
        self.conn, self.slug, self.run_id = conn, slug, 0
        for stream in ("shops", "products", "customers", "sales"):
            ensure_raw_table(conn, slug, "pos", stream)

    def load(self, stream: str, file: str, rows: list[dict[str, str]], dialect: dict[str, Any],
             key: tuple[str, ...], loaded_at: str) -> None:
        self.run_id += 1
        sha = hashlib.sha256(f"{self.slug}/{file}/{json.dumps(rows)}".encode()).hexdigest()
        header = list(rows[0])
        dialect = dict(dialect, header=header, positions={c: i for i, c in enumerate(header)})
        with self.conn.transaction():
            file_id = self.conn.execute(
                "INSERT INTO goalpost.source_files (client, source, stream, sha256, path, "
                "size_bytes, rows_loaded, rows_quarantined, dialect, run_id, loaded_at) "
                "VALUES (%s, 'pos', %s, %s, %s, 100, %s, 0, %s, %s, %s) RETURNING id",
                (self.slug, stream, sha, file, len(rows), json.dumps(dialect), self.run_id,
                 loaded_at),
            ).fetchone()[0]
            with self.conn.cursor() as cur:
                cur.executemany(
                    sql.SQL("INSERT INTO {} (_key, _loaded_at, _run_id, _file, _file_id, _row, "
                            "data) VALUES (%s, %s, %s, %s, %s, %s, %s)").format(
                        raw_identifier(self.slug, "pos", stream)),
                    [("|".join(row[k] for k in key), loaded_at, self.run_id, file, file_id,
                      number, json.dumps([row[c] for c in header]))
                     for number, row in enumerate(rows, start=1)],
                )


def seed(conn: psycopg.Connection, slug: str) -> Raw:
    tenants.provision(conn, slug)
    raw = Raw(conn, slug)
    iso_dates = dict(ISO, date_formats={
        "opened_on": {"python": "%Y-%m-%d", "postgres": "YYYY-MM-DD"},
        "created_at": {"python": "%Y-%m-%d %H:%M:%S", "postgres": "YYYY-MM-DD HH24:MI:SS"},
    })
    at = "2024-04-01 20:00+00"
    raw.load("shops", "shops.csv", SHOPS, dict(iso_dates, columns={
        "location_id": "shop_id", "name": "shop_name", "city": "city", "opened_on": "opened_on"}),
        ("shop_id",), at)
    raw.load("products", "products.csv", PRODUCTS, dict(iso_dates, columns={
        "product_id": "sku", "name": "name", "category": "category",
        "unit_price": "unit_price"}), ("sku",), at)
    raw.load("customers", "customers.csv", CUSTOMERS, dict(iso_dates, columns={
        "customer_id": "customer_id", "first_name": "first_name", "created_at": "signup"}),
        ("customer_id",), at)
    raw.load("sales", "sales_2024_03.csv", SALES_MARCH, FR_SALES, ("receipt_no", "line_no"), at)
    raw.load("sales", "sales_fix.csv", SALES_CORRECTIONS, ISO_SALES, ("receipt_no", "line_no"),
             "2024-04-02 07:00+00")
    return raw


def rows(conn: psycopg.Connection, query: str) -> list[tuple[Any, ...]]:
    return conn.execute(query).fetchall()


def contents(conn: psycopg.Connection, slug: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table and view of the client's staging and marts, fully, in a stable order."""
    found = rows(conn, f"""
        SELECT table_schema, table_name FROM information_schema.tables
        WHERE table_schema IN ('{slug}_staging', '{slug}_marts') ORDER BY 1, 2""")
    return {
        f"{schema}.{table}": sorted(
            rows(conn, sql.SQL("SELECT t::text FROM {}.{} AS t").format(
                sql.Identifier(schema), sql.Identifier(table)).as_string(conn))
        )
        for schema, table in found
    }


def state(conn: psycopg.Connection, slug: str) -> dict[str, list[tuple[Any, ...]]]:
    """The client's SQLMesh state and physical tables, fully."""
    found = rows(conn, f"""
        SELECT table_schema, table_name FROM information_schema.tables
        WHERE table_schema IN ('{tenants.state_schema(slug)}', 'sqlmesh__{slug}_staging',
                               'sqlmesh__{slug}_marts') ORDER BY 1, 2""")
    return {
        f"{schema}.{table}": sorted(
            rows(conn, sql.SQL("SELECT t::text FROM {}.{} AS t").format(
                sql.Identifier(schema), sql.Identifier(table)).as_string(conn))
        )
        for schema, table in found
    }


def marts(conn: psycopg.Connection, slug: str, name: str, period: str) -> list[tuple[Any, ...]]:
    return rows(conn, f"SELECT {period}, {MEASURES} FROM {slug}_marts.{name} ORDER BY 1, 2")


@pytest.fixture(autouse=True)
def _cold_contexts() -> Iterator[None]:
    yield
    transform.forget_contexts()


@pytest.mark.e2e
def test_build_types_staging_and_computes_marts_exactly(
    conn: psycopg.Connection, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A session in a DST zone must not shift wall times (the server itself runs in UTC).
    monkeypatch.setenv("PGTZ", "Europe/Paris")
    raw = seed(conn, "tiny")
    messages: list[str] = []

    first = transform.build_client(
        "tiny", make_client(), url=database_url, progress=messages.append
    )

    assert marts(conn, "tiny", "daily_sales", "sales_date") == DAILY
    assert marts(conn, "tiny", "monthly_sales", "sales_month") == MONTHLY
    assert first.audit_failures == []
    assert "tiny_marts.daily_sales" in first.models and "tiny_staging.orders" in first.models
    assert first.rows["tiny_staging.order_lines"] == 10
    assert first.rows["tiny_staging.orders"] == 8
    assert first.rows["tiny_marts.daily_sales"] == 6
    assert any("daily_sales" in message for message in messages)
    assert rows(conn, "SELECT ordered_at FROM tiny_staging.orders WHERE order_id = 'R4'") == [
        (datetime(2024, 3, 31, 2, 30),)
    ]
    assert rows(conn, """
        SELECT order_id, line_number, quantity, unit_price, discount, line_total, currency
        FROM tiny_staging.order_lines WHERE order_id IN ('R2', 'R4', 'R7') ORDER BY 1""") == [
        ("R2", 1, D("50"), D("25.00"), None, D("1250.00"), "EUR"),
        ("R4", 1, D("2"), D("3.50"), D("0.50"), D("6.50"), "EUR"),
        ("R7", 1, D("4"), D("1.20"), None, D("4.80"), "EUR"),
    ]
    assert rows(conn, "SELECT location_id, name, opened_on FROM tiny_staging.locations "
                "ORDER BY 1") == [("S1", "Lyon Centre", date(2019, 5, 1)),
                                  ("S2", "Croix-Rousse", None)]
    assert rows(conn, "SELECT customer_id, created_at FROM tiny_staging.customers ORDER BY 1") == [
        ("C1", datetime(2024, 1, 5, 10, 0)), ("C2", datetime(2024, 2, 11, 17, 30)), ("C3", None)
    ]
    assert rows(conn, "SELECT is_return, total FROM tiny_staging.orders WHERE order_id = 'R6'") == [
        (True, D("-3.50"))
    ]

    before = contents(conn, "tiny")
    again = transform.build_client("tiny", make_client(), url=database_url)
    assert again.models == []
    assert contents(conn, "tiny") == before

    # New rows, built twice on the same day: each restated build shows them.
    raw.load("sales", "sales_2024_04.csv", [
        sale("R9", 1, "02/04/2024 08:00", "S2", "C3", "P3", "2", "25,00", "50,00"),
    ], FR_SALES, ("receipt_no", "line_no"), "2024-04-02 09:00+00")
    transform.build_client("tiny", make_client(), url=database_url, restate=True)
    assert marts(conn, "tiny", "daily_sales", "sales_date")[-1] == (
        date(2024, 4, 2), "S2", "Croix-Rousse", 1, D("50.00"), D("2"), 1, D("50.00")
    )
    raw.load("sales", "sales_2024_04b.csv", [
        sale("R10", 1, "02/04/2024 12:00", "S2", "C1", "P1", "5", "1,20", "6,00"),
    ], FR_SALES, ("receipt_no", "line_no"), "2024-04-02 13:00+00")
    transform.build_client("tiny", make_client(), url=database_url, restate=True)
    assert marts(conn, "tiny", "monthly_sales", "sales_month")[-1] == (
        date(2024, 4, 1), "S2", "Croix-Rousse", 3, D("59.50"), D("8"), 2, D("19.83")
    )

    # A registry change rebuilds what depends on it, down to the marts, without restating.
    changed = transform.build_client("tiny", make_client(currency="GBP"), url=database_url)
    assert "tiny_marts.daily_sales" in changed.models
    assert rows(conn, "SELECT DISTINCT currency FROM tiny_marts.daily_sales") == [("GBP",)]

    # A value the file's dialect cannot read is a data problem: a message, no traceback.
    raw.load("sales", "sales_bad.csv", [
        sale("R11", 1, "03/04/2024 08:00", "S1", "", "P1", "deux", "1,20", "2,40"),
        sale("R12", 1, "03/04/2024 09:00", "S1", "", "P1", "1", "1,20", "1,20"),
    ], FR_SALES, ("receipt_no", "line_no"), "2024-04-03 09:00+00")
    with pytest.raises(GoalpostError) as failure:
        transform.build_client("tiny", make_client(currency="GBP"), url=database_url, restate=True)
    message = str(failure.value)
    assert "tiny_staging.stg_files__order_lines" in message
    assert 'invalid input syntax for type numeric: "deux"' in message
    # Once the data is fixed, the next build restates even though nothing new was loaded.
    conn.execute("DELETE FROM tiny_raw.pos__sales WHERE _key = 'R11|1'")
    transform.build_client("tiny", make_client(currency="GBP"), url=database_url)
    assert marts(conn, "tiny", "daily_sales", "sales_date")[-1] == (
        date(2024, 4, 3), "S1", "Lyon Centre", 1, D("1.20"), D("1"), 0, D("1.20")
    )


@pytest.mark.e2e
def test_clients_are_isolated(conn: psycopg.Connection, database_url: str) -> None:
    seed(conn, "alpha")
    transform.build_client("alpha", make_client("Alpha"), url=database_url)
    alpha_tables, alpha_state = contents(conn, "alpha"), state(conn, "alpha")

    # Beta has sales and one shop without an id, and no products or customers files yet.
    tenants.provision(conn, "beta")
    beta_raw = Raw(conn, "beta")
    beta_raw.load("sales", "sales.csv", SALES_MARCH[:2], FR_SALES, ("receipt_no", "line_no"),
                  "2024-04-01 20:00+00")
    beta_raw.load("shops", "shops.csv", [{"shop_id": "", "shop_name": "Ghost"}],
                  dict(ISO, columns={"location_id": "shop_id", "name": "shop_name"}),
                  ("shop_name",), "2024-04-01 20:00+00")
    beta = transform.build_client("beta", make_client("Beta"), url=database_url)

    assert contents(conn, "alpha") == alpha_tables
    assert state(conn, "alpha") == alpha_state
    assert beta.rows["beta_staging.products"] == 0
    assert beta.rows["beta_staging.customers"] == 0
    assert beta.audit_failures == [
        "beta_staging.stg_files__locations: 'not_null_non_blocking' audit error: 1 row failed"
    ]
    # No shop list names S1: its name is its id.
    assert marts(conn, "beta", "daily_sales", "sales_date") == [
        (date(2024, 3, 30), "S1", "S1", 1, D("5.90"), D("3"), 1, D("5.90"))
    ]
    assert {"beta_staging", "beta_marts", "sqlmesh__beta_marts", "sqlmesh_state__beta"} <= {
        row[0] for row in rows(conn, "SELECT nspname FROM pg_namespace")
    }

    params = conninfo_to_dict(database_url)
    params.update(user="alpha_reader", password=tenants.reader_password("alpha"))
    with psycopg.connect(make_conninfo(**params), autocommit=True) as reader:
        assert len(rows(reader, "SELECT * FROM alpha_marts.daily_sales")) == 6
        for forbidden in ("alpha_raw.pos__sales", "alpha_staging.orders", "beta_marts.daily_sales"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(f"SELECT 1 FROM {forbidden}")


def test_config_parses_socket_urls_and_requires_a_client() -> None:
    config = transform.connection_config("postgresql://me:s%40cret@/db?host=/run/pg&port=5433")
    assert (config.host, config.port, config.user, config.password, config.database) == (
        "/run/pg", 5433, "me", "s@cret", "db"
    )
    with pytest.raises(ConfigError, match="GOALPOST_CLIENT"):
        transform.cli_config(None)


def test_model_names_leave_room_for_sqlmesh_physical_names() -> None:
    """SQLMesh names a model's temporary table `<table>__<10-digit fingerprint>_schema_tmp`;
    Postgres cuts identifiers at 63 characters, so a model name may have at most 40."""
    names = [path.stem for path in (PROJECT_DIR / "models").rglob("*.sql")]
    too_long = [name for name in names if len(name) > 63 - len("__0123456789_schema_tmp")]
    assert names and not too_long


@pytest.mark.e2e
def test_a_failing_audit_blocks_only_what_depends_on_it(
    conn: psycopg.Connection, database_url: str
) -> None:
    raw = seed(conn, "audited")
    transform.build_client("audited", make_client(), url=database_url)
    sales_before = marts(conn, "audited", "daily_sales", "sales_date")

    # Three croissants coming back, yet paid for: a sign error in the export.
    raw.load("sales", "sales_2024_04.csv", [
        sale("R9", 1, "02/04/2024 08:00", "S2", "C3", "P3", "2", "25,00", "50,00"),
        sale("R9", 2, "02/04/2024 08:00", "S2", "C3", "P1", "-3", "1,20", "3,60"),
    ], FR_SALES, ("receipt_no", "line_no"), "2024-04-02 09:00+00")
    raw.load("shops", "shops_2.csv", [
        {"shop_id": "S3", "shop_name": "Vieux Lyon", "city": "Lyon", "opened_on": ""}],
        dict(ISO, columns={"location_id": "shop_id", "name": "shop_name"}), ("shop_id",),
        "2024-04-02 09:00+00")
    with pytest.raises(GoalpostError) as failure:
        transform.build_client("audited", make_client(), url=database_url, restate=True)
    message = str(failure.value)
    assert "audited_staging.order_lines" in message
    assert "non_negative_quantities_except_returns" in message
    assert "1 row failed" in message
    assert "Not rebuilt until it is fixed (previous data kept): " in message
    assert "audited_marts.daily_sales" in message and "audited_staging.orders" in message
    assert "audited_staging.locations" not in message.split("Not rebuilt")[1]
    assert "SELECT" in failure.value.hint
    # What depends on the lines kept its previous contents; the rest was built.
    assert marts(conn, "audited", "daily_sales", "sales_date") == sales_before
    assert ("S3", "Vieux Lyon") in rows(
        conn, "SELECT location_id, name FROM audited_staging.locations")


@pytest.mark.e2e
def test_new_rows_restate_only_what_they_feed(conn: psycopg.Connection, database_url: str) -> None:
    raw = seed(conn, "fed")
    transform.build_client("fed", make_client(), url=database_url)

    raw.load("shops", "shops_2.csv", [
        {"shop_id": "S1", "shop_name": "Lyon Presqu'île", "city": "Lyon", "opened_on": ""}],
        dict(ISO, columns={"location_id": "shop_id", "name": "shop_name"}), ("shop_id",),
        "2024-04-02 09:00+00")
    built = transform.build_client("fed", make_client(), url=database_url, restate=True,
                                   changed={"fed_raw.pos__shops"})
    # The shop's new name reaches every mart that names shops, and nothing else is rebuilt.
    assert {"fed_staging.stg_files__locations", "fed_staging.locations",
            "fed_marts.daily_sales", "fed_marts.monthly_sales"} <= set(built.models)
    assert not {"fed_staging.stg_files__customers", "fed_staging.orders",
                "fed_marts.customers", "fed_marts.customer_cohorts"} & set(built.models)
    assert marts(conn, "fed", "daily_sales", "sales_date")[0][2] == "Lyon Presqu'île"

    raw.load("sales", "sales_2024_04.csv", [
        sale("R9", 1, "02/04/2024 08:00", "S2", "C3", "P3", "2", "25,00", "50,00"),
    ], FR_SALES, ("receipt_no", "line_no"), "2024-04-02 10:00+00")
    built = transform.build_client("fed", make_client(), url=database_url, restate=True,
                                   changed={"fed_raw.pos__sales"})
    assert {"fed_staging.stg_files__order_lines", "fed_staging.orders",
            "fed_marts.customers", "fed_marts.daily_sales"} <= set(built.models)
    assert "fed_staging.stg_files__locations" not in built.models
    assert marts(conn, "fed", "daily_sales", "sales_date")[-1][:5] == (
        date(2024, 4, 2), "S2", "Croix-Rousse", 1, D("50.00"))
