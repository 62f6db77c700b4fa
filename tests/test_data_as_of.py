"""`<client>_marts.data_as_of`: how far a client's data goes, and whether its newest day is
complete. A day is complete once the data was loaded after it ended and its sales did not
stop early; a partial day or month is marked, and never "the latest month"."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import psycopg
import pytest
from csv_files import write_csv

from goalpost.app.orchestrator import run_client

pytestmark = pytest.mark.e2e


def build(project: Path, slug: str, rows: list[dict[str, str]],
          timezone: str = "Europe/Paris") -> None:
    write_csv(project / "exports" / f"{slug}.csv", rows)
    document = {"name": slug.title(), "timezone": timezone, "extensions": [], "sources": [
        {"name": "pos", "connector": "files", "streams": [
            {"name": "sales", "path": f"exports/{slug}.csv", "entity": "order_lines",
             "columns": {"order_id": "receipt", "ordered_at": "sold_at",
                         "location_id": "=shop", "product_id": "sku", "quantity": "qty",
                         "line_total": "total"}}]}]}
    (project / "clients" / f"{slug}.yaml").write_bytes(orjson.dumps(document))
    run = run_client(slug)
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]


def sale(receipt: str, at: datetime) -> dict[str, str]:
    return {"receipt": receipt, "sold_at": at.strftime("%Y-%m-%d %H:%M"), "sku": "P1",
            "qty": "1", "total": "5.00"}


def as_of(conn: psycopg.Connection, slug: str) -> tuple:
    return conn.execute(f"SELECT as_of_date, last_complete_date, partial_day, "
                        f"last_complete_month FROM {slug}_marts.data_as_of").fetchone()


def test_a_day_cut_short_is_partial_and_so_is_its_month(project: Path, database_url: str,
                                                         conn: psycopg.Connection) -> None:
    """Six weeks of sales from 8:00 to 19:00, then an export taken at 11:00 on 31 March."""
    days = [date(2025, 2, 18) + timedelta(days=n) for n in range(42)]
    assert days[-1] == date(2025, 3, 31)
    rows = [sale(f"{day}-{hour}", datetime.combine(day, datetime.min.time()).replace(hour=hour))
            for day in days[:-1] for hour in (8, 13, 19)]
    rows += [sale(f"{days[-1]}-{hour}", datetime(2025, 3, 31, hour)) for hour in (8, 10)]
    build(project, "cut", rows)
    assert as_of(conn, "cut") == (date(2025, 3, 31), date(2025, 3, 30), True, date(2025, 2, 1))
    assert dict(conn.execute("SELECT sales_month, complete_month FROM cut_marts.monthly_sales"
                             )) == {date(2025, 2, 1): True, date(2025, 3, 1): False}


def test_a_whole_last_day_is_complete(project: Path, database_url: str,
                                      conn: psycopg.Connection) -> None:
    days = [date(2025, 2, 18) + timedelta(days=n) for n in range(42)]
    rows = [sale(f"{day}-{hour}", datetime.combine(day, datetime.min.time()).replace(hour=hour))
            for day in days for hour in (8, 13, 19)]
    build(project, "whole", rows)
    assert as_of(conn, "whole") == (date(2025, 3, 31), date(2025, 3, 31), False,
                                    date(2025, 3, 1))
    assert all(c for (c,) in conn.execute("SELECT complete_month FROM whole_marts.monthly_sales"))


def test_today_is_partial_until_a_load_after_it(project: Path, database_url: str,
                                                conn: psycopg.Connection) -> None:
    """Sales up to this minute, loaded now: today is still selling."""
    zone = "Pacific/Kiritimati"  # UTC+14: whatever the hour here, the client's day has begun
    now = datetime.now(ZoneInfo(zone)).replace(tzinfo=None, second=0, microsecond=0)
    rows = [sale(f"r{n}", now - timedelta(days=n)) for n in range(3)]
    build(project, "today", rows, timezone=zone)
    found = as_of(conn, "today")
    assert found[:3] == (now.date(), now.date() - timedelta(days=1), True)
