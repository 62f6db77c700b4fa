"""SIGKILL during an incremental transform, then a plain rerun: the marts are those of a run
that was never interrupted.

Two clients read the same monthly POS exports (the demo generator's, five months): `bake`,
whose run after each new month is killed at one moment of its transform (a real `goalpost
run` process, SIGKILL), then simply run again; and `ref`, run without interruption. After
every rerun, every staging table and mart of `bake` holds exactly the rows of `ref`'s.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from goalpost.app.orchestrator import run_client
from goalpost.transform import build as transform

pytestmark = pytest.mark.e2e

CLIENT = """\
name: {name}
timezone: Europe/Paris
extensions: []
sources:
  - name: pos
    connector: files
    streams:
      - {{name: shops, path: exports/shops.csv, entity: locations, primary_key: [shop_id],
         columns: {{location_id: shop_id, name: shop_name}}}}
      - {{name: products, path: exports/products.csv, entity: products, primary_key: [sku],
         columns: {{product_id: sku}}}}
      - {{name: customers, path: exports/customers.csv, entity: customers,
         primary_key: [customer_id], columns: {{created_at: signup_date}}}}
      - name: sales
        path: exports/sales_*.csv.gz
        entity: order_lines
        primary_key: [receipt_no, line_no]
        columns: {{order_id: receipt_no, line_number: line_no, ordered_at: sold_at,
                   location_id: shop_id, product_id: sku}}
      - name: stock_counts
        path: exports/stock_counts_*.csv.gz
        entity: inventory_levels
        primary_key: [count_date, shop_id, sku]
        columns: {{counted_on: count_date, location_id: shop_id, product_id: sku}}
"""
MONTHS = ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06"]
# The incremental model's MERGE of its new rows, in flight.
MERGING = ("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> "
           "pg_backend_pid() AND query LIKE "
           "'%%MERGE INTO \"sqlmesh__bake_staging\".\"stg_files__order_lines%%'")


@pytest.fixture
def exports(project: Path, database_url: str, tmp_path: Path) -> Iterator[Path]:
    from goalpost.sandbox.demo.generator import generate_panpan

    generated = tmp_path / "generated"
    generate_panpan(generated, end=date(2025, 6, 30), days=181, scale=0.3, seed=5)
    folder = project / "exports"
    folder.mkdir()
    for name in ("shops.csv", "products.csv", "customers.csv"):
        shutil.copy(generated / name, folder / name)
    for slug in ("bake", "ref"):
        (project / "clients" / f"{slug}.yaml").write_text(CLIENT.format(name=slug.title()))
    yield generated
    transform.forget_contexts()


def add_month(generated: Path, folder: Path, month: str) -> None:
    for kind in ("sales", "stock_counts"):
        shutil.copy(generated / f"{kind}_{month}.csv.gz", folder / f"{kind}_{month}.csv.gz")


def kill_during_transform(project: Path, database_url: str, trigger: str) -> str:
    """Run `goalpost run bake` in a process of its own and SIGKILL it at `trigger`: the first
    progress line matching it, or (`merging`) while its incremental MERGE is running in the
    database. Returns what was seen last before the kill."""
    process = subprocess.Popen([sys.executable, "-m", "goalpost", "run", "bake"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ), cwd=project)
    seen: list[str] = []
    in_transform = threading.Event()

    def read() -> None:
        for line in process.stderr:
            seen.append(line.strip())
            if "transform:" in line:
                in_transform.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 240
    with psycopg.connect(database_url, autocommit=True) as watcher:
        while process.poll() is None and time.monotonic() < deadline:
            if trigger == "merging":
                if in_transform.is_set() and watcher.execute(MERGING).fetchone()[0]:
                    break
            elif any(re.search(trigger, line) for line in seen):
                break
            time.sleep(0.005)
    assert process.poll() is None, f"the run ended before {trigger!r}: {seen[-5:]}"
    process.kill()
    process.wait(30)
    reader.join(5)
    return seen[-1] if seen else ""


def differences(conn: psycopg.Connection) -> dict[str, tuple[int, int]]:
    """Per table of ref's staging and marts: (rows only in bake's, rows only in ref's), on
    every column but the load times (the two clients loaded the same files at other times:
    `_loaded_at` on rows, data_as_of's `loaded_at`)."""
    found = {}
    for schema, table in conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE "
            "table_schema IN ('ref_staging', 'ref_marts') ORDER BY 1, 2").fetchall():
        columns = sql.SQL(", ").join(sql.Identifier(name) for (name,) in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND "
            "table_name = %s AND column_name NOT IN ('_loaded_at', 'loaded_at') "
            "ORDER BY ordinal_position",
            (schema, table)))
        mine = sql.Identifier(schema.replace("ref_", "bake_"), table)
        theirs = sql.Identifier(schema, table)
        query = sql.SQL("SELECT (SELECT count(*) FROM (SELECT {c} FROM {a} EXCEPT ALL "
                        "SELECT {c} FROM {b}) x), (SELECT count(*) FROM (SELECT {c} FROM {b} "
                        "EXCEPT ALL SELECT {c} FROM {a}) y)").format(c=columns, a=mine,
                                                                     b=theirs)
        extra, missing = conn.execute(query).fetchone()
        if extra or missing:
            found[f"{schema.replace('ref_', '')}.{table}"] = (extra, missing)
    return found


def test_a_killed_transform_is_finished_by_a_plain_rerun(exports, project, conn, database_url):
    folder = project / "exports"
    add_month(exports, folder, MONTHS[0])
    for slug in ("bake", "ref"):
        assert run_client(slug).status == "succeeded"
    assert differences(conn) == {}
    moments = ["merging",                                   # its MERGE in flight
               r"built bake_staging\.stg_files__order_lines",  # merged, nothing restated
               r"built bake_staging\.orders",               # staging restated, marts not
               r"built bake_marts\.daily_sales",            # marts half restated
               r"built bake_marts\.inventory_turnover_monthly"]  # late in the restatement
    for month, moment in zip(MONTHS[1:], moments, strict=True):
        add_month(exports, folder, month)
        last = kill_during_transform(project, database_url, moment)
        rerun = run_client("bake", wait_for_lock=30)
        assert rerun.status == "succeeded", (moment, rerun.as_dict())
        assert run_client("ref").status == "succeeded"
        assert differences(conn) == {}, f"killed at {moment!r} (last seen: {last!r})"
    killed = conn.execute("SELECT count(*) FROM goalpost.runs WHERE client = 'bake' AND "
                          "status = 'failed' AND error LIKE 'interrupted%%'").fetchone()[0]
    assert killed == len(moments)
    assert conn.execute("SELECT count(*) FROM bake_staging.order_lines").fetchone() == \
        conn.execute("SELECT count(*) FROM ref_raw.pos__sales").fetchone()
