"""Real exports through whole runs (load, SQLMesh build): overlapping and repeated keyless
exports give the marts of a single load, a declared key that repeats is refused, corrections
win in load order in normal and full-refresh runs alike, and hostile cells never break
staging (the issue's poison cells, then a property test with generated ones)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from goalpost.app.orchestrator import run_client
from goalpost.core.registry.models import FileStream
from goalpost.core.warehouse import tenants
from goalpost.pipelines.files.loader import load_file_stream

pytestmark = pytest.mark.e2e

FILE = Path("shared") / "data" / "online_retail_ii_2009_2010.csv.gz"
DATA = next((base / FILE for base in (Path(__file__).resolve().parents[2], Path("/work"))
             if (base / FILE).exists()), Path("/work") / FILE)

RETAIL = """name: Online Retail
timezone: Europe/London
currency: GBP
country: GB
extensions: []
sources:
  - name: shop
    connector: files
    streams:
      - name: lines
        path: {path}
        entity: order_lines
        columns:
          order_id: Invoice
          ordered_at: InvoiceDate
          location_id: "=online"
          product_id: StockCode
          product_name: Description
          quantity: Quantity
          unit_price: Price
          customer_id: Customer ID
          country: Country
"""


def marts(conn: psycopg.Connection, slug: str) -> dict[str, list[tuple]]:
    """Every mart of a client, as sorted rows, without `loaded_at` (when the client's newest
    data was loaded: two clients loading the same rows differ there and nowhere else)."""
    columns: dict[str, list[str]] = {}
    for table, column in conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND column_name <> 'loaded_at' "
            "ORDER BY table_name, ordinal_position", (f"{slug}_marts",)):
        columns.setdefault(table, []).append(f'"{column}"')
    return {table: sorted(conn.execute(
        f'SELECT {", ".join(names)} FROM "{slug}_marts"."{table}"').fetchall(), key=repr)
        for table, names in columns.items()}


def succeeded(slug: str, **kwargs: object):
    run = run_client(slug, **kwargs)
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps if s.error]
    return run


@pytest.fixture(scope="module")
def retail_rows() -> tuple[list[str], list[list[str]]]:
    if not DATA.exists():
        pytest.skip(f"the Online Retail II file is not on this machine (looked for {DATA})")
    with gzip.open(DATA, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, list(reader)


def write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)


def test_overlapping_and_repeated_exports_give_the_marts_of_one_load(project, conn,
                                                                     retail_rows):
    header, rows = retail_rows
    when = header.index("InvoiceDate")
    (project / "whole").mkdir()
    shutil.copy(DATA, project / "whole" / DATA.name)
    (project / "clients" / "whole.yaml").write_text(RETAIL.format(path="whole/*"))
    single = succeeded("whole")
    # Exact duplicate lines of the export are real lines: all of them count.
    assert single.rows_loaded == len(rows) == 525_461
    assert conn.execute("SELECT count(*) FROM whole_staging.order_lines").fetchone() == (
        len(rows),)
    expected = marts(conn, "whole")
    assert expected["daily_sales"] and expected["kpi_daily"]

    (project / "clients" / "split.yaml").write_text(RETAIL.format(path="split/*"))
    first = [r for r in rows if r[when] < "2010-07"]          # Dec 2009 - Jun 2010
    second = [r for r in rows if r[when] >= "2010-04"]        # Apr - Dec 2010: overlaps
    write(project / "split" / "lines_2010_h1.csv", header, first)
    assert succeeded("split").rows_loaded == len(first)
    write(project / "split" / "lines_2010_q2_q4.csv", header, second)
    assert succeeded("split").rows_loaded == len(second)
    assert marts(conn, "split") == expected

    # The whole export again, under another name and in other bytes (not gzip'd).
    with gzip.open(DATA, "rb") as packed:
        (project / "split" / "export_copy.csv").write_bytes(packed.read())
    assert succeeded("split").rows_loaded == len(rows)
    assert marts(conn, "split") == expected
    assert conn.execute("SELECT count(*) FROM split_staging.order_lines").fetchone() == (
        len(rows),)


def test_a_repeating_key_on_the_dev_file_is_refused_and_keeps_earlier_files(
        project, conn, retail_rows):
    header, rows = retail_rows
    frame = pd.DataFrame(rows, columns=header)
    sharing = int(frame.duplicated(["Invoice", "StockCode"], keep=False).sum())
    keys = int(frame[frame.duplicated(["Invoice", "StockCode"], keep=False)]
               .groupby(["Invoice", "StockCode"]).ngroups)
    tenants.provision(conn, "retail")
    stream = FileStream.model_validate({
        "name": "lines", "path": "exports/*", "entity": "order_lines",
        "primary_key": ["Invoice", "StockCode"],
        "columns": {"order_id": "Invoice", "ordered_at": "InvoiceDate",
                    "location_id": "=online", "product_id": "StockCode",
                    "quantity": "Quantity", "unit_price": "Price"}})
    earlier = frame.drop_duplicates(["Invoice", "StockCode"]).head(500)
    write(project / "exports" / "a_earlier.csv", header, earlier.values.tolist())
    shutil.copy(DATA, project / "exports" / f"b_{DATA.name}")
    result = load_file_stream(conn, slug="retail", source="shop", stream=stream, root=project,
                              run_id=1, country="GB")
    assert result.files_loaded == 1 and result.rows_loaded == 500
    (problem,) = result.problems
    assert f"the primary key (Invoice, StockCode) is not unique in the file: {sharing:,} rows " \
        f"share their key with another row ({keys:,} keys repeat)" in problem
    assert problem.count(" on rows ") == 3 and "declare a longer key" in problem
    assert conn.execute("SELECT count(*) FROM retail_raw.shop__lines").fetchone() == (500,)


SHOP = """name: Shop
timezone: Europe/Paris
currency: EUR
country: FR
extensions: []
sources:
  - name: pos
    connector: files
    streams:
      - name: sales
        path: sales/*
        entity: order_lines
        primary_key: [ticket, sku]
        columns: {order_id: ticket, ordered_at: sold_at, location_id: shop, product_id: sku}
"""
HEADER = "ticket,sold_at,shop,sku,quantity,line_total\n"


def test_corrections_win_in_load_order_in_normal_and_full_refresh_runs(project, conn, run_cli):
    (project / "clients" / "shop.yaml").write_text(SHOP)
    sales = project / "sales"
    sales.mkdir()
    (sales / "sales_2024-03.csv").write_text(
        HEADER + "T1,2024-03-01 08:00,S1,P1,5,5.00\nT2,2024-03-01 09:00,S1,P1,1,1.00\n")
    succeeded("shop")
    # The correction's name sorts before the original's; it was loaded after it.
    (sales / "fix_T1.csv").write_text(HEADER + "T1,2024-03-01 08:00,S1,P1,4,4.00\n")
    succeeded("shop")
    query = "SELECT order_id, quantity FROM shop_staging.order_lines ORDER BY order_id"
    normal = conn.execute(query).fetchall()
    assert [(o, int(q)) for o, q in normal] == [("T1", 4), ("T2", 1)]

    refreshed = run_cli("run", "shop", "--full-refresh")
    assert refreshed.exit_code == 0, refreshed.output
    assert "3 rows from 2 file(s) reloaded (full refresh" in refreshed.output
    assert conn.execute(query).fetchall() == normal

    # A loaded file moved away: the refresh keeps its rows and says so.
    (sales / "fix_T1.csv").rename(project / "fix_T1.csv")
    moved = run_cli("run", "shop", "--full-refresh")
    assert moved.exit_code == 0, moved.output
    assert "1 loaded file(s) are no longer found: sales/fix_T1.csv" in moved.output
    assert conn.execute(query).fetchall() == normal

    status = run_cli("status")
    assert "data through 2024-03-01 (" in status.output and " days old)" in status.output


def test_poison_cells_are_quarantined_and_the_marts_still_build(project, conn, run_cli):
    (project / "clients" / "shop.yaml").write_text(SHOP.replace("primary_key: [ticket, sku]",
                                                                "primary_key: [ticket]"))
    sales = project / "sales"
    sales.mkdir()
    rows = ["T1,2024-03-01 08:00,S1,P1,2,3.00",
            "T2,2026-12-06T10,S1,P1,1,1.00",        # an hour but no minutes
            "T3,2024-03-01 08:00,S1,P1,\uff12,1.00",  # a full-width digit
            "T4,2024-03-01 08:00,S1,P1,1,1e400000",
            "T5,2024-03-01 08:00,S1,P1,-2,4.00",      # a negative quantity paid for
            "T6,2024-03-01 08:00,S1,P1,1,1e30",       # more than any amount
            "T7,2024-03-01 08:00,  ,P1,1,1.00",       # a blank shop
            "T8,2099-03-01 08:00,S1,P1,1,1.00",       # in the future
            "T9,2024-03-01T09:00:00+05:00,S1,P1,1,1.00"]  # an instant, with its offset
    (sales / "sales.csv").write_text(HEADER + "\n".join(rows) + "\n")
    run = succeeded("shop")
    assert (run.rows_loaded, run.rows_quarantined) == (2, 7)
    staged = conn.execute("SELECT order_id, ordered_at FROM shop_staging.order_lines "
                          "ORDER BY order_id").fetchall()
    assert [(o, str(t)) for o, t in staged] == [("T1", "2024-03-01 08:00:00"),
                                                ("T9", "2024-03-01 05:00:00")]  # Paris time
    reasons = dict(conn.execute("SELECT row_number, reason FROM goalpost.quarantine"))
    assert "'2026-12-06T10' is not an ISO 8601 date" in reasons[2]
    assert "is not a number" in reasons[3] and "too large" in reasons[4]
    assert "quantity -2 was paid for" in reasons[5] and "too large" in reasons[6]
    assert "column 'shop' (location_id) is empty but required" in reasons[7]
    assert "is in the future" in reasons[8]

    listed = json.loads(run_cli("quarantine", "list", "shop", "--json").output)
    assert [(r["kind"], r["rows"], r["released"]) for r in listed] == [("invalid", 6, 0),
                                                                         ("suspect", 1, 0)]
    shown = run_cli("quarantine", "show", "shop", "--kind", "suspect")
    assert "sales/sales.csv row 8: line 9: column 'sold_at'" in shown.output
    assert "T8,2099-03-01 08:00,S1,P1,1,1.00" in shown.output
    assert run_cli("quarantine", "release", "shop", "999999").exit_code == 3
    ids = dict(conn.execute("SELECT row_number, id FROM goalpost.quarantine"))
    released = run_cli("quarantine", "release", "shop", str(ids[8]), str(ids[2]))
    assert released.exit_code == 1 and "released 1 row(s)" in released.output
    assert "staging cannot read it" in released.output
    assert succeeded("shop").rows_loaded == 1
    assert conn.execute("SELECT count(*) FROM shop_staging.order_lines").fetchone() == (3,)
    again = succeeded("shop", full_refresh=True)
    assert (again.rows_loaded, again.rows_quarantined) == (3, 6)
    assert conn.execute("SELECT count(*) FROM shop_staging.order_lines").fetchone() == (3,)


def test_a_file_no_reader_can_read_fails_its_step_and_the_run_goes_on(project, conn,
                                                                      run_cli):
    import zipfile

    from openpyxl import Workbook

    (project / "clients" / "shop.yaml").write_text(SHOP)
    sales = project / "sales"
    sales.mkdir()
    with zipfile.ZipFile(sales / "a_sales.csv", "w") as archive:  # a ZIP, but no workbook
        archive.writestr("xl/workbook.xml", "<not-xml")
    book = Workbook()  # a workbook saved under a CSV name: read as what it is
    book.active.append(["ticket", "sold_at", "shop", "sku", "quantity", "line_total"])
    book.active.append(["T1", "2024-03-01 08:00", "S1", "P1", 2, 3.0])
    book.save(sales / "b_sales.csv")
    (sales / "c_sales.csv").write_text(HEADER + "T2,2024-03-02 08:00,S1,P1,1,1.50\n")
    run = run_client("shop")
    assert run.status == "failed" and run.rows_loaded == 2
    steps = {s.name: (s.status, s.error) for s in run.steps}
    assert steps["extract pos.sales"][0] == "failed"
    assert steps["extract pos.sales"][1].startswith("sales/a_sales.csv is not a readable XLSX "
                                                    "workbook")
    assert steps["transform"] == ("succeeded", None) and steps["alerts"][0] == "succeeded"
    assert conn.execute("SELECT status FROM goalpost.runs").fetchone() == ("failed",)
    assert conn.execute("SELECT count(*) FROM shop_staging.order_lines").fetchone() == (2,)
    tested = run_cli("source", "test", "shop")
    assert tested.exit_code == 1 and "Traceback" not in tested.output
    assert "sales/a_sales.csv is not a readable XLSX workbook" in tested.output


def test_us_ordered_dates_in_a_day_first_file_refuse_it(project, conn):
    tenants.provision(conn, "shop")
    (project / "sales").mkdir()
    # Past the 1,000 rows the format is detected from, a date that reads only month-first.
    body = "".join(f"T{d},0{d % 9 + 1}/03/2024 08:00,S1,P1,1,1.00\n" for d in range(1, 1101))
    body += "T9999,03/25/2024 08:00,S1,P1,1,1.00\n"
    (project / "sales" / "a.csv").write_text(HEADER + body)
    stream = FileStream.model_validate({
        "name": "sales", "path": "sales/*", "entity": "order_lines", "primary_key": ["ticket"],
        "columns": {"order_id": "ticket", "ordered_at": "sold_at", "location_id": "shop",
                    "product_id": "sku"}})
    result = load_file_stream(conn, slug="shop", source="pos", stream=stream, root=project,
                              run_id=1, country="FR")
    (problem,) = result.problems
    assert "has dates in the other day/month order: 1 row(s) like line 1,102" in problem
    assert "'03/25/2024 08:00' reads only as %m/%d/%Y %H:%M" in problem
    assert "set `date_format`" in problem and result.rows_loaded == 0


# Hostile cells per canonical type: what exports, spreadsheets and fuzzers produce.
_DIGITS = st.text(st.sampled_from("0123456789"), min_size=1, max_size=25)
_ODD = st.sampled_from(["", " ", "\u00a0", "\t", "NaN", "Infinity", "-", "+", ".", "1e", "1e-9999",
                        "1e400000", "1e30", "9" * 40, "\uff12", "\u0663", "1,5", "1.5.5", "0x1F",
                        "2026-12-06T10", "2024-02-30", "2024-13-01", "0000-01-01",
                        "2024-03-01 24:00", "2024-03-01T08:00:00+16:00", "2024-03-01T08:00Z",
                        "2024-03-01 08:00:00.1234567", "31/12/2024", "2099-01-01",
                        "2024-03-01T08:00:00+05:30", "-0", "  12  "])
_NUMBER = st.one_of(_ODD, _ODD, _DIGITS, st.builds(lambda a, b, e: f"{a}.{b}e{e}", _DIGITS, _DIGITS,
                                             st.integers(-2000, 2000)),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.integers(-(2**70), 2**70).map(str))
_STAMP = st.one_of(_ODD, _ODD, st.builds(lambda d, sep: d.isoformat(sep=sep), st.datetimes(),
                                   st.sampled_from(" T")),
                   st.datetimes().map(lambda d: d.isoformat()[:13]),
                   st.text(st.sampled_from("0123456789-:T +Z."), max_size=25))
_TEXT = st.one_of(_ODD, st.text(st.characters(exclude_characters="\x00"), max_size=12))
_KIND = st.one_of(_TEXT, st.sampled_from(["sale", " Return ", "ADJUSTMENT", "refund",
                                          "sale\u0131"]))
_COLUMNS = ("ticket", "line", "sold_at", "shop", "sku", "quantity", "price", "total", "kind")


@st.composite
def _hostile_rows(draw: st.DrawFn) -> list[list[str]]:
    """Good rows, then rows with one hostile cell each (fewer than the good ones, so that
    the file is not refused as mostly unreadable and every hostile cell is judged alone)."""
    kinds = {"line": _NUMBER, "sold_at": _STAMP, "shop": _TEXT, "sku": _TEXT,
             "quantity": _NUMBER, "price": _NUMBER, "total": _NUMBER, "kind": _KIND}

    def good(n: int) -> list[str]:
        return [f"G{n}", str(n), "2024-03-01 08:00", "S1", "P1", "1", "1.50", "1.50",
                "sale" if n % 2 else ""]

    rows = [good(n) for n in range(1, 31)]
    for n in range(draw(st.integers(1, 25))):
        row = [f"H{n}", *good(n)[1:]]
        column = draw(st.sampled_from(sorted(kinds)))
        row[_COLUMNS.index(column)] = draw(kinds[column])
        rows.append(row)
    return rows


HOSTILE = """name: Hostile
timezone: Europe/Paris
extensions: []
sources:
  - name: pos
    connector: files
    streams:
      - name: sales
        path: sales/*
        entity: order_lines
        primary_key: [ticket]
        date_format: iso
        columns: {order_id: ticket, line_number: line, ordered_at: sold_at, location_id: shop,
                  product_id: sku, unit_price: price, line_total: total, order_kind: kind}
      - name: counts
        path: counts/*
        entity: inventory_levels
        date_format: iso
        columns: {counted_on: day, location_id: shop, product_id: sku, on_hand: stock}
"""


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=_hostile_rows(), days=st.lists(st.one_of(_STAMP, _ODD), min_size=1, max_size=10),
       stocks=st.lists(_NUMBER, min_size=1, max_size=10))
def test_whatever_the_loader_accepts_builds_in_staging(project, conn, rows, days, stocks):
    """Every example is a new pair of files in the same client: the loader takes some rows,
    quarantines the others, and the incremental build of staging and marts must succeed
    with every row taken."""
    (project / "clients" / "hostile.yaml").write_text(HOSTILE)
    number = len(list((project / "sales").glob("*.csv"))) if (project / "sales").exists() else 0
    unique = [[f"{row[0]}-{number}", *row[1:]] for row in rows]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([list(_COLUMNS), *unique])
    (project / "sales").mkdir(exist_ok=True)
    (project / "sales" / f"s{number:03d}.csv").write_text(out.getvalue(), encoding="utf-8")
    counts = io.StringIO()
    csv.writer(counts, lineterminator="\n").writerows(
        [["day", "shop", "sku", "stock"]]
        + [[day, "S1", f"P{number}-{i}", stock] for i, (day, stock)
           in enumerate(zip(days, stocks * len(days), strict=False))])
    (project / "counts").mkdir(exist_ok=True)
    (project / "counts" / f"c{number:03d}.csv").write_text(counts.getvalue(), encoding="utf-8")
    run = run_client("hostile")
    steps = {s.name: (s.status, s.error) for s in run.steps}
    assert steps["transform"] == ("succeeded", None), steps
    raw = conn.execute("SELECT count(*) FROM hostile_raw.pos__sales").fetchone()[0]
    staged = conn.execute("SELECT count(*) FROM hostile_staging.order_lines").fetchone()[0]
    assert staged == raw
