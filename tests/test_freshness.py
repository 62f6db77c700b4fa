"""Source freshness: when data last arrived per source, against twice the client's schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from goalpost.core.freshness import schedule_interval, source_freshness
from goalpost.core.registry.models import Client

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def shop(schedule: str = "0 6 * * *") -> Client:
    return Client.model_validate({
        "name": "Shop", "timezone": "Europe/Paris", "schedule": schedule,
        "sources": [
            {"name": "pos", "connector": "files", "streams": [
                {"name": "sales", "path": "sales_*.csv", "entity": "order_lines",
                 "primary_key": ["receipt"], "columns": {"order_id": "receipt"}},
                {"name": "shops", "path": "shops.csv", "entity": "locations",
                 "primary_key": ["id"], "columns": {"location_id": "id"}},
            ]},
            {"name": "crm", "connector": "hubspot", "streams": ["contacts"],
             "config": {"access_token": "env:NOT_NEEDED_HERE"}},
        ],
    })


def file_loaded(conn: psycopg.Connection, stream: str, name: str, at: datetime) -> None:
    conn.execute(
        "INSERT INTO goalpost.source_files (client, source, stream, sha256, path, size_bytes, "
        "rows_loaded, rows_quarantined, dialect, loaded_at) "
        "VALUES ('shop', 'pos', %s, md5(%s), %s, 1, 1, 0, '{}', %s)", (stream, name, name, at))


def extract(conn: psycopg.Connection, name: str, status: str, at: datetime) -> None:
    run_id = conn.execute("INSERT INTO goalpost.runs (client, status) VALUES ('shop', 'succeeded') "
                          "RETURNING id").fetchone()[0]
    conn.execute("INSERT INTO goalpost.run_steps (run_id, name, kind, status, finished_at) "
                 "VALUES (%s, %s, 'extract', %s, %s)", (run_id, name, status, at))


def test_interval_follows_the_cron() -> None:
    assert schedule_interval(shop(), NOW) == timedelta(days=1)
    assert schedule_interval(shop("*/15 * * * *"), NOW) == timedelta(minutes=15)
    assert schedule_interval(shop("0 7 * * 1"), NOW) == timedelta(days=7)


def test_a_source_is_as_fresh_as_its_stalest_stream(conn: psycopg.Connection) -> None:
    client = shop()
    assert [(f.source, f.stream, f.last_data_at, f.stale)
            for f in source_freshness(conn, "shop", client, NOW)] == [
        ("pos", "sales", None, True), ("crm", "contacts", None, True)]

    file_loaded(conn, "sales", "sales_1.csv", NOW - timedelta(days=3))
    file_loaded(conn, "sales", "sales_2.csv", NOW - timedelta(hours=20))
    file_loaded(conn, "shops", "shops.csv", NOW - timedelta(hours=47))
    extract(conn, "extract crm.contacts", "succeeded", NOW - timedelta(days=2, hours=1))
    extract(conn, "extract crm.contacts", "failed", NOW - timedelta(hours=1))
    pos, crm = source_freshness(conn, "shop", client, NOW)
    # The shops file is 47 hours old, within twice a daily schedule.
    assert (pos.stream, pos.last_data_at, pos.stale) == ("shops", NOW - timedelta(hours=47),
                                                         False)
    # A failed extract is no news: the last success is 49 hours old.
    assert (crm.last_data_at, crm.stale) == (NOW - timedelta(days=2, hours=1), True)
    assert crm.describe(NOW) == ("source crm is stale: no new data from contacts for 49 hours "
                                 "(expected at least every 48 hours)")
