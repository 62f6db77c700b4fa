"""File sources against a real Postgres: formats, dialect detection, re-loads and bad files.

Every malformed case must end in a message naming the file or quarantined rows with a reason,
never a traceback, and must leave what was loaded before intact.
"""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

import orjson
import psycopg
import pytest
from file_loads import Load, stream_loader
from openpyxl import Workbook

from goalpost.core.registry.models import FileStream
from goalpost.pipelines.files.probe import probe_stream

HEADER = "receipt_no,sold_at,shop_id,sku,quantity,line_total\n"
ROWS = [
    "R1,2024-03-01 08:00,S1,P1,2,2.40\n",
    "R1,2024-03-01 08:00,S1,P2,1,3.50\n",
    "R2,2024-03-01 09:30,S2,P1,1,1.20\n",
]
SALES_COLUMNS = {"order_id": "receipt_no", "ordered_at": "sold_at", "location_id": "shop_id",
                 "product_id": "sku"}


def sales(path: str = "sales/*", key: tuple[str, ...] = ("receipt_no", "sku"),
          **settings: object) -> FileStream:
    return FileStream.model_validate({
        "name": "sales", "path": path, "entity": "order_lines", "primary_key": list(key),
        "columns": SALES_COLUMNS, **settings})


@pytest.fixture
def folder(project: Path) -> Path:
    (project / "sales").mkdir()
    return project / "sales"


@pytest.fixture
def load(conn: psycopg.Connection, project: Path) -> Load:
    return stream_loader(conn, project, sales)


def raw(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT _key, _file, _row, data FROM shop_raw.pos__sales ORDER BY _file, _row").fetchall()


def quarantine(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT file, row_number, reason, record FROM goalpost.quarantine ORDER BY id").fetchall()


def dialect_of(conn: psycopg.Connection, file: str) -> dict:
    return conn.execute("SELECT dialect FROM goalpost.source_files WHERE path = %s",
                        (file,)).fetchone()[0]


def test_csv_loads_with_keys_positions_and_lineage(folder, load, conn):
    (folder / "sales_03.csv").write_text(HEADER + "".join(ROWS))
    result = load()
    assert (result.files_found, result.files_loaded, result.rows_loaded) == (1, 1, 3)
    assert result.problems == [] and result.rows_quarantined == 0
    rows = raw(conn)
    assert [r[0] for r in rows] == ['["R1","P1"]', '["R1","P2"]', '["R2","P1"]']
    assert {r[1] for r in rows} == {"sales/sales_03.csv"} and [r[2] for r in rows] == [1, 2, 3]
    assert rows[0][3] == ["R1", "2024-03-01 08:00", "S1", "P1", "2", "2.40"]
    dialect = dialect_of(conn, "sales/sales_03.csv")
    assert dialect["positions"]["sku"] == 3 and dialect["delimiter"] == ","
    assert dialect["columns"]["order_id"] == "receipt_no"
    assert dialect["date_formats"]["ordered_at"] == {"python": "iso", "postgres": None}
    files = conn.execute("SELECT rows_loaded, rows_quarantined, size_bytes FROM "
                         "goalpost.source_files").fetchall()
    assert files == [(3, 0, (folder / "sales_03.csv").stat().st_size)]


def test_french_gzip_export_is_detected(folder, load, conn):
    text = ("Ticket;Date;Boutique;Article;Qté;Total\n"
            "T1;02/10/2026 07:15;LYO-01;Pain complet;2;1.250,50\n"
            "T2;13/10/2026 18:00;LYO-02;Éclair;-1;-3,20\n")
    (folder / "ventes.csv.gz").write_bytes(gzip.compress(text.encode("cp1252")))
    stream = sales(key=("Ticket", "Article"), columns={
        "order_id": "Ticket", "ordered_at": "Date", "location_id": "Boutique",
        "product_id": "Article", "quantity": "Qté", "line_total": "Total"})
    result = load(stream)
    assert result.rows_loaded == 2 and result.problems == []
    dialect = dialect_of(conn, "sales/ventes.csv.gz")
    assert (dialect["encoding"], dialect["compression"], dialect["delimiter"]) == (
        "cp1252", "gzip", ";")
    assert (dialect["decimal"], dialect["thousands"]) == (",", ".")
    assert dialect["date_formats"]["ordered_at"] == {
        "python": "%d/%m/%Y %H:%M", "postgres": "DD/MM/YYYY HH24:MI"}
    assert raw(conn)[1][3][3] == "Éclair"


def test_us_client_reads_ambiguous_dates_month_first(folder, load, conn):
    (folder / "s.csv").write_text(HEADER + "R1,03/04/2024 10:00,S1,P1,1,1.00\n")
    assert load(country="US").rows_loaded == 1
    fmt = dialect_of(conn, "sales/s.csv")["date_formats"]["ordered_at"]["python"]
    assert fmt == "%m/%d/%Y %H:%M"


def test_xlsx_sheet_loads_with_typed_cells(folder, load, conn):
    book = Workbook()
    sheet = book.active
    sheet.append(["receipt_no", "sold_at", "shop_id", "sku", "quantity", "line_total", None])
    sheet.append(["R1", datetime(2024, 3, 1, 8, 0), "S1", "P1", 2, 2.4])
    sheet.append(["R2", datetime(2024, 3, 2), "S2", "P1", 1, 1.2])
    sheet.append([None, None, None, None, None, None])
    book.save(folder / "march.xlsx")
    result = load()
    assert result.rows_loaded == 2 and result.problems == []
    assert [r[3] for r in raw(conn)] == [
        ["R1", "2024-03-01 08:00:00", "S1", "P1", "2", "2.4"],
        ["R2", "2024-03-02", "S2", "P1", "1", "1.2"],
    ]
    assert dialect_of(conn, "sales/march.xlsx")["format"] == "xlsx"


def test_files_load_once_new_files_load_and_full_refresh_rebuilds(folder, load, conn):
    (folder / "a.csv").write_text(HEADER + "".join(ROWS))
    assert load().files_loaded == 1
    again = load()
    assert (again.files_loaded, again.files_skipped, again.rows_loaded) == (0, 1, 0)

    (folder / "b.csv").write_text(HEADER + "R3,2024-03-02 10:00,S1,P1,1,1.20\n")
    newer = load()
    assert (newer.files_loaded, newer.files_skipped, newer.rows_loaded) == (1, 1, 1)
    assert len(raw(conn)) == 4

    refreshed = load(full_refresh=True)
    assert (refreshed.files_loaded, refreshed.rows_loaded) == (2, 4)
    assert len(raw(conn)) == 4
    assert conn.execute("SELECT count(*) FROM goalpost.source_files").fetchone()[0] == 2


def test_same_content_under_another_name_is_not_loaded_twice(folder, load, conn):
    (folder / "a.csv").write_text(HEADER + "".join(ROWS))
    (folder / "copy_of_a.csv").write_text(HEADER + "".join(ROWS))
    result = load()
    assert (result.files_loaded, result.files_skipped, len(raw(conn))) == (1, 1, 3)


def test_new_columns_are_reported(folder, load):
    (folder / "a.csv").write_text(HEADER + "".join(ROWS))
    load()
    (folder / "b.csv").write_text(HEADER.strip() + ",loyalty_points\n"
                                  "R9,2024-03-03 10:00,S1,P1,1,1.20,12\n")
    assert load().new_columns == {"sales/b.csv": ["loyalty_points"]}


def test_bad_rows_are_quarantined_with_reasons(folder, load, conn):
    (folder / "a.csv").write_text(
        HEADER + "".join(ROWS)
        + "R4,31/02/2024,S1,P1,1,1.20\n"       # not a date in the file's format
        + "R5,2024-03-03 10:00,S1,P1,one,1.20\n"  # not a number
        + "R6,2024-03-03 10:00,S1\n"            # too few fields
        + ",2024-03-03 10:00,S1,P1,1,1.20\n"    # empty required key field
        + "R7,2024-03-03 10:00,S1,P1,1,1.20,,\n"  # trailing delimiters: fine
        + "\n"                                  # blank line: skipped
    )
    result = load()
    assert (result.rows_loaded, result.rows_quarantined, result.problems) == (4, 4, [])
    reasons = [(r[1], r[2]) for r in quarantine(conn)]
    assert reasons[0][0] == 4 and "'31/02/2024' is not an ISO 8601 date" in reasons[0][1]
    assert "column 'quantity' (quantity): 'one' is not a number" in reasons[1][1]
    assert "has 3 fields, the header has 6" in reasons[2][1]
    assert "column 'receipt_no' (order_id) is empty but required" in reasons[3][1]
    assert all(r[1].startswith("line ") for r in reasons)
    assert quarantine(conn)[2][3] == "R6,2024-03-03 10:00,S1"
    assert conn.execute("SELECT rows_quarantined FROM goalpost.source_files").fetchone() == (4,)


def test_non_utf8_bytes_quarantine_the_row_and_keep_accents(folder, load, conn):
    good = "R1,2024-03-01 08:00,S1,Crème brûlée,1,4.50\n" * 5
    (folder / "a.csv").write_bytes(
        (HEADER + good).encode() + b"R2,2024-03-01 09:00,S1,Cr\xe8me,1,4.50\n")
    result = load(sales(key=()))
    assert (result.rows_loaded, result.rows_quarantined) == (5, 1)
    assert raw(conn)[0][3][3] == "Crème brûlée"
    (reason, record), = [(r[2], r[3]) for r in quarantine(conn)]
    assert "not valid utf-8 (e8)" in reason and record.endswith("Cr\\xe8me,1,4.50")
    assert raw(conn)[0][0].endswith(":1")  # no primary key: the file position is the key


def test_missing_column_is_a_clear_problem_and_loads_nothing(folder, load, conn):
    (folder / "a.csv").write_text(HEADER + "".join(ROWS))
    load()
    (folder / "b.csv").write_text("receipt_no,sold_at,sku,quantity,line_total\n"
                                  "R9,2024-03-03 10:00,P1,1,1.20\n")
    result = load()
    assert result.files_loaded == 0 and result.rows_loaded == 0
    (problem,) = result.problems
    assert problem.startswith("sales/b.csv no column 'shop_id' for required field location_id")
    assert "the file's columns are: receipt_no, sold_at, sku" in problem
    assert len(raw(conn)) == 3
    assert conn.execute("SELECT count(*) FROM goalpost.source_files").fetchone()[0] == 1


def test_wrong_delimiter_setting_says_which_one_the_file_uses(folder, load):
    (folder / "a.csv").write_text((HEADER + "".join(ROWS)).replace(",", ";"))
    (problem,) = load(sales(delimiter=",")).problems
    assert "looks semicolon-delimited; set `delimiter: auto` or ';'" in problem


def test_a_file_mostly_unreadable_is_refused_whole(folder, load, conn):
    bad = "".join(f"R{i},yesterday,S1,P1,1,1.00\n" for i in range(20))
    (folder / "a.csv").write_text(HEADER + ROWS[0] + bad)
    (problem,) = load().problems
    assert "20 of 21 rows cannot be read" in problem and "was not loaded" in problem
    assert raw(conn) == [] and quarantine(conn) == []


@pytest.mark.parametrize(("name", "content", "message"), [
    ("empty.csv", b"", "is empty (0 bytes)"),
    ("blank.csv", b"\n\n", "is empty"),
    ("truncated.csv.gz", None, "is truncated or corrupt"),
    ("broken.xlsx", b"PK\x03\x04 not really a workbook", "is not a readable XLSX workbook"),
])
def test_unreadable_files_are_reported_and_earlier_files_kept(folder, load, conn, name, content,
                                                              message):
    (folder / "a.csv").write_text(HEADER + "".join(ROWS))
    assert load().rows_loaded == 3
    if content is None:
        # Big enough that the cut falls after the first rows were already sent to COPY.
        body = (HEADER + ROWS[0] * 200_000).encode()
        content = gzip.compress(body)[:-5000]
    (folder / name).write_bytes(content)
    result = load()
    (problem,) = result.problems
    assert problem.startswith(f"sales/{name} {message}")
    assert result.rows_loaded == 0 and len(raw(conn)) == 3
    assert conn.execute("SELECT count(*) FROM goalpost.source_files").fetchone()[0] == 1

    refreshed = load(full_refresh=True)
    assert "the full refresh was rolled back" in refreshed.problems[0]
    assert len(raw(conn)) == 3


def test_header_only_file_loads_nothing_without_complaint(folder, load, conn):
    (folder / "a.csv").write_text(HEADER)
    result = load()
    assert (result.files_loaded, result.rows_loaded, result.problems) == (1, 0, [])


def test_no_matching_files_is_a_problem(load):
    (problem,) = load(sales(path="nowhere/*.csv")).problems
    assert "no file matches 'nowhere/*.csv'" in problem


def test_backslashes_tabs_and_quotes_survive_copy(folder, load, conn):
    (folder / "a.csv").write_text(
        HEADER + 'R1,2024-03-01 08:00,S1,"C:\\temp\\x\t""quoted""\nnext",1,1.00\n')
    (folder / "b.csv").write_text(HEADER + "R2,2024-03-01 08:00,S1,P\x00,1,1.00\n" + ROWS[0])
    result = load()
    assert (result.rows_loaded, result.rows_quarantined) == (2, 1)
    assert quarantine(conn)[0][1:3] == (1, "contains a NUL character")
    assert raw(conn)[0][3][3] == 'C:\\temp\\x\t"quoted"\nnext'
    assert orjson.loads(raw(conn)[0][0]) == ["R1", 'C:\\temp\\x\t"quoted"\nnext']


def test_probe_reports_dialect_and_rejected_rows_without_writing(folder, project, conn):
    (folder / "a.csv").write_text(HEADER + "".join(ROWS) + "R4,soon,S1,P1,1,1.20\n")
    check = probe_stream("pos", sales(), project, country="FR")
    assert check.ok and check.files == ["sales/a.csv"]
    assert (check.sample_rows, check.sample_rejected) == (4, 1)
    assert "'soon' is not an ISO 8601 date" in check.rejected_examples[0]
    assert check.mapping["order_id"] == "receipt_no"
    assert conn.execute("SELECT count(*) FROM goalpost.source_files").fetchone()[0] == 0

    (folder / "b.csv").write_text("x\n")
    check = probe_stream("pos", sales(), project, country="FR")
    assert not check.ok and "sales/b.csv" in check.problems[0]


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
@pytest.mark.parametrize("block", [7, 64, 1 << 20])
def test_fast_csv_reader_reads_like_the_csv_module(monkeypatch, line_end, block):
    import csv
    import io
    import random

    from goalpost.pipelines.files import readers

    rng = random.Random(block)
    alphabet = ["a", "b", "é", " ", ";", ",", '"', "\n", "\r\n", "x" * 5, "", "1,5"]
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator=line_end)
    for _ in range(500):
        if rng.random() < 0.05:
            out.write(line_end)  # a blank line
            continue
        writer.writerow(["".join(rng.choices(alphabet, k=rng.randint(0, 4)))
                         for _ in range(rng.randint(1, 5))])
    text = out.getvalue()
    monkeypatch.setattr(readers, "HEAD_BYTES", block)
    fast = list(readers._csv_rows(readers._Lines(io.StringIO(text, newline="")), ";"))
    assert fast == list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
