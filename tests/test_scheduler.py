"""The scheduler as processes on one warehouse: accelerated schedules run once each or are
recorded missed, runs of a client never overlap, and a crash mid-run is recovered."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from goalpost.app.scheduler import Clock, Scheduler, next_slot, slots_between

ACCELERATION = 20  # a virtual minute lasts 3 s
SEVEN_PARIS = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


@pytest.fixture
def bakery(project: Path, database_url: str) -> Path:
    (project / "exports").mkdir()
    (project / "exports" / "sales.csv").write_text(
        "ticket,date,shop,sku,qty,total\n"
        + "".join(f"T{i},2024-03-0{1 + i % 5} 08:00,S1,P{i % 3},1,1.50\n" for i in range(40)))
    (project / "clients" / "bakery.yaml").write_text("""name: Bakery
timezone: Europe/Paris
schedule: "* * * * *"
sources:
  - name: pos
    connector: files
    streams:
      - name: sales
        path: exports/sales.csv
        entity: order_lines
        primary_key: [ticket]
        columns: {order_id: ticket, ordered_at: date, location_id: shop, product_id: sku,
                  quantity: qty, line_total: total}
""")
    return project


def scheduler(name: str, clock_start: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "goalpost", "scheduler", "--acceleration", str(ACCELERATION),
         "--clock-start", str(clock_start), "--instance", name, "--backup-schedule", "off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))


def wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_slots_and_clock():
    clock = Clock(60.0, real_start=1000.0, virtual_start=datetime(2024, 1, 1, tzinfo=UTC))
    assert clock.real_at(datetime(2024, 1, 1, 0, 1, tzinfo=UTC)) == datetime.fromtimestamp(
        1001.0, UTC)
    due = next_slot("30 5 * * *", "Europe/Paris", datetime(2024, 3, 30, 12, tzinfo=UTC))
    assert due == datetime(2024, 3, 31, 3, 30, tzinfo=UTC)  # 05:30 Paris, summer time
    assert len(slots_between("* * * * *", "UTC", due, due + timedelta(minutes=10))) == 10


@pytest.mark.e2e  # schedulers in processes of their own run the client
def test_two_schedulers_run_each_slot_once_and_never_overlap(bakery, conn):
    start = time.time()
    processes = [scheduler("a", start), scheduler("b", start)]
    time.sleep(10 * 60 / ACCELERATION + 2)  # ten virtual minutes
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        assert process.wait(60) == 0
    slots = conn.execute("SELECT due_at, status, instance, run_id FROM goalpost.schedule_slots "
                         "WHERE client = 'bakery' ORDER BY due_at").fetchall()
    assert len(slots) >= 9
    dues = [s[0] for s in slots]
    assert dues == [dues[0] + timedelta(minutes=i) for i in range(len(dues))]  # no gap
    assert {s[1] for s in slots} <= {"succeeded", "missed"}
    ran = [s for s in slots if s[1] == "succeeded"]
    assert len(ran) >= 3 and len({s[3] for s in ran}) == len(ran)
    runs = conn.execute("SELECT started_at, finished_at, status FROM goalpost.runs "
                        "WHERE client = 'bakery' ORDER BY started_at").fetchall()
    assert len(runs) == len(ran) and all(r[2] == "succeeded" for r in runs)
    for before, after in zip(runs, runs[1:], strict=False):
        assert after[0] >= before[1], "two runs of the client overlapped"
    assert conn.execute("SELECT count(*) FROM goalpost.scheduler_instances WHERE "
                        "stopped_at IS NOT NULL").fetchone() == (2,)
    assert conn.execute("SELECT count(*) FROM bakery_raw.pos__sales").fetchone() == (40,)


@pytest.mark.e2e  # schedulers in processes of their own run the client
def test_killed_scheduler_run_is_failed_and_the_next_completes(bakery, conn, database_url):
    start = time.time()
    first = scheduler("first", start)

    def running() -> bool:
        return conn.execute("SELECT count(*) FROM goalpost.runs WHERE client = 'bakery' AND "
                            "status = 'running'").fetchone()[0] > 0

    wait_for(running, 60)
    time.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    first.wait()
    (killed,) = conn.execute("SELECT id FROM goalpost.runs WHERE status = 'running'").fetchone()
    second = scheduler("second", start)
    try:
        wait_for(lambda: conn.execute(
            "SELECT count(*) FROM goalpost.runs WHERE client = 'bakery' AND status = "
            "'succeeded' AND id > %s", (killed,)).fetchone()[0] > 0, 90)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
    status, error = conn.execute("SELECT status, error FROM goalpost.runs WHERE id = %s",
                                 (killed,)).fetchone()
    assert status == "failed" and error.startswith("interrupted")
    assert conn.execute("SELECT count(*) FROM bakery_raw.pos__sales").fetchone() == (40,)
    assert conn.execute("SELECT count(*) FROM goalpost.source_files").fetchone() == (1,)


@pytest.mark.e2e
def test_status_shows_next_run_freshness_and_failures(bakery, conn, run_cli):
    from goalpost.app.orchestrator import run_client

    assert run_client("bakery").status == "succeeded"
    shown = json.loads(run_cli("status", "--json").output)
    (row,) = shown["clients"]
    assert row["client"] == "bakery" and row["status"] == "succeeded"
    next_run = datetime.fromisoformat(row["next_run"])
    assert timedelta(0) < next_run - datetime.now(UTC) <= timedelta(minutes=1)
    assert row["data_as_of"] is not None and row["failed_runs_24h"] == 0
    assert "schedulers alive: none" in run_cli("status").output


@pytest.mark.e2e  # schedulers in processes of their own run the client
def test_scheduled_backup_runs_once_per_slot(bakery, conn, database_url, monkeypatch):
    from goalpost.app.scheduler import BACKUP_JOB, Scheduler
    from goalpost.backup.core import list_backups

    monkeypatch.setenv("GOALPOST_BACKUP_DIR", str(bakery / "backups"))
    due = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    first, second = Scheduler(database_url, instance="a"), Scheduler(database_url, instance="b")
    first._backup(due)
    second._backup(due)  # the same slot: already claimed, nothing to do
    assert len(list_backups()) == 1
    assert conn.execute("SELECT status, note FROM goalpost.schedule_slots WHERE client = %s",
                        (BACKUP_JOB,)).fetchone() == ("succeeded", list_backups()[0].id)


@pytest.mark.e2e  # the worker builds the client's SQLMesh models
def test_a_worker_killed_mid_run_leaves_no_claimed_slot_nor_running_run(bakery, conn,
                                                                        database_url):
    scheduler = Scheduler(database_url, instance="t", workers=1, backup_schedule=None,
                          retry_backoff=1.0, heartbeat_seconds=2.0,
                          virtual_start=SEVEN_PARIS - timedelta(seconds=2))

    def running() -> int | None:
        row = conn.execute("SELECT id FROM goalpost.runs WHERE client = 'bakery' AND "
                           "status = 'running'").fetchone()
        return row[0] if row else None

    scheduler.start()
    try:
        wait_for(lambda: running() is not None and "bakery" in scheduler.workers.busy(), 120)
        killed = running()
        time.sleep(0.5)
        pid = scheduler.workers.busy()["bakery"]
        os.kill(pid, signal.SIGKILL)
        # The slot's next attempt runs on a new worker and completes.
        wait_for(lambda: conn.execute("SELECT status FROM goalpost.schedule_slots WHERE "
                                      "client = 'bakery' AND due_at = %s",
                                      (SEVEN_PARIS,)).fetchone() != ("claimed",), 240)
    finally:
        scheduler.stop()
    assert pid not in scheduler.workers.pids()
    status, error = conn.execute("SELECT status, error FROM goalpost.runs WHERE id = %s",
                                 (killed,)).fetchone()
    assert status == "failed" and error.startswith("interrupted")
    assert conn.execute("SELECT status, note FROM goalpost.schedule_slots WHERE client = "
                        "'bakery' AND due_at = %s", (SEVEN_PARIS,)).fetchone() == (
        "succeeded", "retried: the worker process running bakery died during the run "
                     "(exit code -9)")
    assert conn.execute("SELECT count(*) FROM goalpost.runs WHERE status = 'running'"
                        ).fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM bakery_raw.pos__sales").fetchone() == (40,)
