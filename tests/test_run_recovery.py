"""What happens around a run when things go wrong: a client file that cannot be scheduled, a
process killed mid-run, a bug in a step, sessions left busy by a dead run.

None of them may spoil another client, leave a run 'running' or a slot 'claimed', or need a
scheduler to be noticed.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from goalpost.app.scheduler import Scheduler
from goalpost.core.errors import GoalpostError
from goalpost.core.runs import RunRecorder

NEVER = "0 6 30 2 *"  # 30 February


@pytest.fixture
def shops(project: Path, database_url: str) -> Path:
    """`good`, a valid client, and `bad`, registered before schedules were checked: its cron
    names a day that never comes."""
    (project / "clients" / "good.yaml").write_text("name: Good\nschedule: '0 6 * * *'\n")
    (project / "clients" / "bad.yaml").write_text(f"name: Bad\nschedule: '{NEVER}'\n")
    return project


def test_a_file_that_cannot_be_scheduled_spoils_only_its_own_client(shops, run_cli, database_url,
                                                                     caplog):
    shown = run_cli("status", "--json")
    assert shown.exit_code == 0, shown.output
    rows = {row["client"]: row for row in json.loads(shown.output)["clients"]}
    assert rows["good"]["next_run"] is not None and rows["good"]["config_error"] is None
    assert rows["bad"]["next_run"] is None
    assert "clients/bad.yaml" in rows["bad"]["config_error"] and "never runs" in \
        rows["bad"]["config_error"]
    text = run_cli("status").output
    assert "not scheduled: clients/bad.yaml" in text and "Traceback" not in text

    refused = run_cli("run", "bad")
    assert refused.exit_code == 2 and "never runs" in refused.output

    scheduler = Scheduler(database_url, instance="t", backup_schedule=None)
    with caplog.at_level(logging.ERROR, logger="goalpost.scheduler"):
        scheduler.aps.start()
        try:
            scheduler.sync_clients()
            assert set(scheduler.schedules) == {"good"}
            assert scheduler.aps.get_job("client:good") is not None
        finally:
            scheduler.aps.shutdown(wait=False)
    assert "client bad is not scheduled" in caplog.text and "never runs" in caplog.text


def die_holding_a_run(slug: str) -> int:
    """A process that starts a run of `slug` and is SIGKILLed in the middle of it."""
    code = ("import os, signal, sys; from goalpost.core.runs import RunRecorder; "
            "r = RunRecorder(os.environ['GOALPOST_DATABASE_URL'], sys.argv[1]); "
            "print(r.run_id, flush=True); os.kill(os.getpid(), signal.SIGKILL)")
    done = subprocess.run([sys.executable, "-c", code, slug], capture_output=True, text=True,
                          env=dict(os.environ), check=False, timeout=60)
    assert done.returncode == -9, done.stderr
    return int(done.stdout)


def test_any_command_fails_the_run_of_a_dead_process(shops, run_cli, conn):
    run_id = die_holding_a_run("good")
    assert conn.execute("SELECT status FROM goalpost.runs WHERE id = %s",
                        (run_id,)).fetchone() == ("running",)
    shown = json.loads(run_cli("status", "--json").output)  # no scheduler anywhere
    (row,) = [r for r in shown["clients"] if r["client"] == "good"]
    assert (row["last_run"], row["status"]) == (run_id, "failed")
    assert row["error"].startswith("interrupted")


def test_a_bug_in_a_step_fails_the_run_and_frees_the_client(shops, conn, database_url,
                                                            monkeypatch):
    from goalpost.app.orchestrator import run_extensions
    from goalpost.extensions import runner

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in the extension runner")

    monkeypatch.setattr(runner, "run_extension", broken)
    with pytest.raises(RuntimeError):
        run_extensions("good")
    status, error = conn.execute("SELECT status, error FROM goalpost.runs WHERE client = "
                                 "'good'").fetchone()
    assert status == "failed" and "RuntimeError: a bug in the extension runner" in error
    assert conn.execute("SELECT count(*) FROM goalpost.run_steps WHERE status = 'running'"
                        ).fetchone() == (0,)
    RunRecorder(database_url, "good").finish({})  # the lock was released at once


def test_a_slot_whose_run_stops_on_a_bug_is_finished_and_logged(shops, conn, database_url,
                                                                caplog):
    def broken(slug: str, **kwargs: object) -> None:
        raise KeyError("bug")

    scheduler = Scheduler(database_url, instance="t", backup_schedule=None, run=broken)
    due = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
    with caplog.at_level(logging.ERROR, logger="goalpost.scheduler"):
        scheduler._run_slot("good", due)
    status, note = conn.execute("SELECT status, note FROM goalpost.schedule_slots WHERE "
                                "client = 'good' AND due_at = %s", (due,)).fetchone()
    assert status == "failed" and "KeyError" in note
    assert "run of good for the slot" in caplog.text


def test_a_new_run_waits_for_then_ends_the_sessions_of_a_dead_one(shops, database_url):
    from goalpost.core.runs import session_tag

    orphan = psycopg.connect(database_url, autocommit=True, application_name=session_tag("good"))
    ended: list[BaseException] = []

    def long_statement() -> None:
        try:
            orphan.execute("SELECT pg_sleep(120)")
        except psycopg.Error as exc:
            ended.append(exc)

    statement = threading.Thread(target=long_statement)
    statement.start()
    time.sleep(0.5)
    started = time.monotonic()
    recorder = RunRecorder(database_url, "good")
    try:
        statement.join(30)
        assert ended and isinstance(ended[0], psycopg.OperationalError)
        assert time.monotonic() - started < 60
    finally:
        recorder.finish({})
        orphan.close()


def test_a_second_run_of_a_client_is_refused_while_one_is_going(shops, database_url):
    first = RunRecorder(database_url, "good")
    try:
        with pytest.raises(GoalpostError, match=f"another run of good is in progress \\(run "
                                                f"{first.run_id}\\)"):
            RunRecorder(database_url, "good")
    finally:
        first.finish({})
