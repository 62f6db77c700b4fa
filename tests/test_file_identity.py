"""What identifies a file row: declared keys that must not repeat, content keys for files
without one, the load order of corrections, and full refreshes that keep what raw holds.

Against a real Postgres; the marts-level consequences are in tests/test_file_exports.py.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import psycopg
import pytest
from file_loads import Load, stream_loader

from goalpost.core.registry.models import FileStream
from goalpost.pipelines.files.probe import probe_stream

HEADER = "receipt_no,sold_at,shop_id,sku,quantity,line_total\n"
COLUMNS = {"order_id": "receipt_no", "ordered_at": "sold_at", "location_id": "shop_id",
           "product_id": "sku"}


def sales(key: tuple[str, ...] = ("receipt_no", "sku"), **settings: object) -> FileStream:
    return FileStream.model_validate({"name": "sales", "path": "sales/*", "entity": "order_lines",
                                      "primary_key": list(key), "columns": COLUMNS, **settings})


def line(receipt: int, sku: str = "P1", quantity: int = 1, day: int = 1) -> str:
    return f"R{receipt},2024-03-{day:02d} 08:00,S1,{sku},{quantity},{quantity * 1.5:.2f}\n"


@pytest.fixture
def folder(project: Path) -> Path:
    (project / "sales").mkdir()
    return project / "sales"


@pytest.fixture
def load(conn: psycopg.Connection, project: Path) -> Load:
    return stream_loader(conn, project, sales)


def keys_of(conn: psycopg.Connection) -> list[str]:
    return [row[0] for row in conn.execute(
        "SELECT _key FROM shop_raw.pos__sales ORDER BY _file_id, _row")]


def test_a_file_whose_declared_key_repeats_is_refused_whole(folder, load, conn):
    (folder / "a.csv").write_text(HEADER + line(1) + line(2))
    assert load().rows_loaded == 2
    # 1,500 good lines, then the same product twice on three receipts, past the sample.
    body = "".join(line(n) for n in range(10, 1510))
    body += line(7, "P9") + line(7, "P9", 2) + line(8, "P9") + line(8, "P9")
    body += line(9, "P9") + line(9, "P9") + line(9, "P9")
    (folder / "b.csv").write_text(HEADER + body)
    result = load()
    (problem,) = result.problems
    assert problem.startswith("sales/b.csv the primary key (receipt_no, sku) is not unique in "
                              "the file: 7 rows share their key with another row (3 keys repeat)")
    assert '["R7","P9"] on rows 1,501 and 1,502' in problem
    assert '["R9","P9"] on rows 1,505 and 1,506 and 1 more' in problem
    assert "declare a longer key" in problem and "`primary_key: []`" in problem
    assert result.rows_loaded == 0 and keys_of(conn) == ['["R1","P1"]', '["R2","P1"]']
    assert conn.execute("SELECT count(*) FROM goalpost.source_files").fetchone() == (1,)

    # `source test` reads every row of every file, not a sample, and says the same.
    check = probe_stream("pos", sales(), folder.parent)
    assert not check.ok and check.sample_rows == 2 + 1507
    assert check.problems == [problem]


def test_files_without_a_key_are_keyed_by_content_and_occurrence(folder, load, conn):
    twice = line(1) + line(1)  # a customer bought the same thing twice in the same minute
    (folder / "a.csv").write_text(HEADER + twice + line(2))
    assert load(sales(key=())).rows_loaded == 3
    first = keys_of(conn)
    assert first[0].endswith(":1") and first[1] == first[0][:-1] + "2"
    assert first[2].endswith(":1") and first[2] != first[0]
    # An overlapping re-export (the same lines, then new ones) in another layout: its rows
    # get the same keys, so staging keeps each line once.
    (folder / "b.csv").write_text(
        "sku;receipt_no;quantity;line_total;shop_id;sold_at;note\n"
        + "".join(f"{c[3]};{c[0]};{c[4]};{c[5].strip()};{c[2]};{c[1]};x\n"
                  for c in (row.split(",") for row in (twice + line(2) + line(3)).splitlines())))
    result = load(sales(key=()))
    assert result.rows_loaded == 4 and result.problems == []
    second = keys_of(conn)[3:]
    assert second[:3] == first and len(set(keys_of(conn))) == 4


def test_shops_without_a_key_are_keyed_by_their_id(folder, load, conn):
    stream = FileStream(name="sales", path="sales/*", entity="locations",
                        columns={"location_id": "id", "name": "label"})
    (folder / "shops.csv").write_text("id,label\nS1,Centre\nS2,Gare\n")
    assert load(stream).rows_loaded == 2
    assert keys_of(conn) == ['["S1"]', '["S2"]']
    (folder / "shops_2.csv").write_text("id,label\nS1,Centre\nS1,Centre-ville\n")
    (problem,) = load(stream).problems
    assert "the field location_id (column 'id') is not unique in the file: 2 rows" in problem
    assert "a file should hold each shop once" in problem


def test_stock_counts_are_keyed_by_day_shop_and_product(folder, load, conn):
    """A re-count in a later export replaces the earlier count, whatever else its row says
    (keyed by content, both counts would reach staging, whose uniqueness audit then stops
    the inventory build); two counts of one product on one day in one file are refused."""
    stream = FileStream(name="sales", path="sales/*", entity="inventory_levels",
                        columns={"counted_on": "day", "location_id": "shop",
                                 "product_id": "sku", "on_hand": "stock"})
    (folder / "a.csv").write_text("day,shop,sku,stock,note\n2024-03-01,S1,P1,10,\n"
                                  "2024-03-01,S1,P2,4,\n")
    assert load(stream).rows_loaded == 2
    (folder / "b.csv").write_text("day,shop,sku,stock,note\n2024-03-01,S1,P1 ,8,recount\n")
    assert load(stream).rows_loaded == 1
    assert keys_of(conn) == ['["2024-03-01","S1","P1"]', '["2024-03-01","S1","P2"]',
                             '["2024-03-01","S1","P1"]']

    (folder / "c.csv").write_text("day,shop,sku,stock\n2024-03-02,S1,P1,7\n"
                                  "2024-03-02,S1,P1,9\n")
    (problem,) = load(stream).problems
    assert problem.startswith("sales/c.csv the fields counted_on, location_id, product_id "
                              "(columns 'day', 'shop', 'sku') is not unique in the file")
    assert "a file should hold each stock count once" in problem

    # A declared key that is not the day, shop and product would let two counts through.
    (problem,) = load(stream.model_copy(update={"primary_key": ["day", "sku"]})).problems
    assert problem == (
        "sales/c.csv has primary_key [day, sku], but staging keeps one stock count per "
        "counted_on (column 'day'), location_id (column 'shop'), product_id (column 'sku'): "
        "another key would let two rows of one stock count through, which staging refuses; "
        "set `primary_key: [day, shop, sku]` on the stream, or leave it out (the same by "
        "default)")


def test_key_cells_are_read_trimmed_as_staging_reads_them(folder, load, conn):
    (folder / "a.csv").write_text(HEADER + line(1) + line(1).replace(",P1,", ", P1 ,"))
    (problem,) = load().problems
    assert '2 rows share their key with another row (1 key repeat), e.g. ["R1","P1"]' in problem
    assert keys_of(conn) == []


def test_full_refresh_keeps_the_load_order_and_the_rows_of_files_gone(folder, load, conn):
    (folder / "b_sales.csv").write_text(HEADER + line(1, quantity=5) + line(2))
    load()
    (folder / "a_correction.csv").write_text(HEADER + line(1, quantity=4))
    load()
    (folder / "c_more.csv").write_text(HEADER + line(3))
    load()
    order = conn.execute("SELECT path, id FROM goalpost.source_files ORDER BY id").fetchall()
    assert [p for p, _ in order] == ["sales/b_sales.csv", "sales/a_correction.csv",
                                     "sales/c_more.csv"]
    (folder / "c_more.csv").rename(folder.parent / "c_more.csv")  # moved out of the folder
    refreshed = load(full_refresh=True)
    # The correction is still loaded after the original, and the moved file's row is kept.
    rows = conn.execute("SELECT _file, _key, data ->> 4 FROM shop_raw.pos__sales "
                        "ORDER BY _file_id, _row").fetchall()
    assert rows == [("sales/b_sales.csv", '["R1","P1"]', "5"),
                    ("sales/b_sales.csv", '["R2","P1"]', "1"),
                    ("sales/a_correction.csv", '["R1","P1"]', "4"),
                    ("sales/c_more.csv", '["R3","P1"]', "1")]
    assert conn.execute("SELECT path, id FROM goalpost.source_files ORDER BY id").fetchall() \
        == order
    assert refreshed.problems == [] and refreshed.full_refresh
    assert refreshed.files_missing == ["sales/c_more.csv"]
    assert "1 loaded file(s) are no longer found: sales/c_more.csv; their rows are kept" in \
        refreshed.warnings[0]

    # With another key the rows of the missing file could not be matched: refused.
    refused = load(sales(key=("receipt_no",)), full_refresh=True)
    assert "cannot refresh: 1 loaded file(s) are no longer found (sales/c_more.csv)" in \
        refused.problems[0]
    assert len(keys_of(conn)) == 4


def test_a_workbook_saved_as_csv_loads_and_other_zips_are_refused_clearly(folder, load, conn):
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["receipt_no", "sold_at", "shop_id", "sku", "quantity", "line_total"])
    book.active.append(["R1", "2024-03-01 08:00", "S1", "P1", 2, 3.0])
    book.save(folder / "sales_x.csv")
    import zipfile

    with zipfile.ZipFile(folder / "sales_y.csv", "w") as archive:
        archive.writestr("notes.txt", "not a workbook")
    (folder / "sales_z.csv").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    result = load()
    assert result.rows_loaded == 1 and keys_of(conn) == ['["R1","P1"]']
    assert result.problems[0].startswith("sales/sales_y.csv is not a readable XLSX workbook")
    assert result.problems[1] == ("sales/sales_z.csv is an Excel 97-2003 workbook (.xls), "
                                  "which Goalpost does not read: save it as .xlsx or CSV")
    check = probe_stream("pos", sales(), folder.parent)
    assert check.sample_rows == 1 and len(check.problems) == 2


def test_utf16_loads_with_its_bom_and_is_named_without(folder, load, conn):
    text = HEADER + "R1,2024-03-01 08:00,S1,Crème,1,1.50\n"
    (folder / "a.csv").write_bytes(text.encode("utf-16"))
    assert load().rows_loaded == 1
    assert conn.execute("SELECT data ->> 3 FROM shop_raw.pos__sales").fetchone() == ("Crème",)
    (folder / "b.csv").write_bytes(text.replace("R1", "R2").encode("utf-16-le"))
    (problem,) = load().problems
    assert problem == ("sales/b.csv is encoded in UTF-16 (LE, without a byte-order mark): set "
                       "`encoding: utf-16-le` on the stream, or export it as UTF-8")


def test_an_endless_line_is_refused_at_once_naming_the_line(folder, load, conn):
    with gzip.open(folder / "big.csv.gz", "wb", compresslevel=1) as out:
        out.write(HEADER.encode() + line(1).encode())
        block = b"x" * (1 << 20)
        for _ in range(64):  # 64 MiB without a line break
            out.write(block)
    (folder / "late.csv").write_text(HEADER + line(2))
    result = load()
    (problem,) = result.problems
    assert problem.startswith("sales/big.csv.gz has a line longer than 1,048,576 characters "
                              "at line 3: this is not a table export")
    assert keys_of(conn) == ['["R2","P1"]']

    (folder / "big.csv.gz").unlink()
    (folder / "quote.csv").write_text(HEADER + line(3) + 'R4,2024-03-01 08:00,S1,"P' +
                                      "y" * 20 + "\n" * (1 << 20) + ",1,1.50\n")
    (problem,) = load().problems
    assert problem.startswith("sales/quote.csv has a cell longer than 1,048,576 characters")


def test_step_time_limit_stops_a_load_between_blocks(folder, load, conn, database_url):
    from goalpost.core.runs import RunRecorder

    (folder / "a.csv").write_text(HEADER + "".join(line(n) for n in range(1, 20_000)))
    recorder = RunRecorder(database_url, "shop", step_timeout=1e-9)
    with recorder.step("extract pos.sales", "extract") as step:
        load()
    assert step.status == "failed"
    assert step.error.startswith("the step took longer than its limit of 0 s")
    assert keys_of(conn) == []
    assert conn.execute("SELECT count(*) FROM goalpost.source_files").fetchone() == (0,)
    recorder.finish({})


def test_unknown_countries_are_kept_and_named_in_a_warning(folder, load, conn):
    stream = sales(columns={**COLUMNS, "country": "Country"})
    (folder / "a.csv").write_text(
        HEADER.strip() + ",Country\n" + line(1).strip() + ",United Kingdom\n"
        + line(2).strip() + ",gb\n" + line(3).strip() + ",EIRE\n" + line(4).strip() + ",EIRE\n"
        + line(5).strip() + ",\n")
    result = load(stream)
    assert result.rows_loaded == 5 and result.problems == []
    assert result.warnings == [
        "sales/a.csv: column 'Country' (country): 1 value(s) are neither ISO 3166 codes nor "
        "English country names: 'EIRE' (2 rows); kept as written (fix them in the export to "
        "count them under their country)"]


def test_a_client_currency_or_country_outside_iso_is_refused():
    from pydantic import ValidationError

    from goalpost.core.registry.models import Client

    assert Client.model_validate({"name": "x", "currency": "gbp", "country": "gb"}).currency \
        == "GBP"
    for field, value, message in (("currency", "XYZ", "is not an ISO 4217 currency code"),
                                  ("currency", "XXX", "transactions without a currency"),
                                  ("country", "XX", "is not an ISO 3166 country code")):
        with pytest.raises(ValidationError, match=message):
            Client.model_validate({"name": "x", field: value})
