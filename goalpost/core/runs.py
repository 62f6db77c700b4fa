"""Recording runs and their steps in `goalpost.runs` / `goalpost.run_steps`.

The recorder uses its own autocommit connection, so that a run's record survives whatever
happens to the transactions doing the work. What it records is masked (goalpost.core.masking):
a step's error often quotes what a vendor sent back, secrets included.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row

from goalpost.core.errors import GoalpostError
from goalpost.core.masking import mask, mask_data

INTERRUPTED = "interrupted: the process running it stopped before it finished"
log = logging.getLogger("goalpost.runs")


@dataclass
class Step:
    """What a step reports; filled in by the code running it."""

    name: str
    kind: str
    status: str = "running"
    rows_loaded: int = 0
    rows_quarantined: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


class StepTimeout(GoalpostError):
    """A step ran longer than its limit; it stops at its next safe point."""


_limits = threading.local()


def check_deadline() -> None:
    """Raise StepTimeout if the current step is past its time limit.

    Long loops call this between units of work that commit on their own (an API page, a
    file's COPY chunk, whose transaction then rolls back), so that a step stopped for time
    leaves nothing half-written. The transform step has no such point: SQLMesh's own
    statements run to their end.
    """
    deadline = getattr(_limits, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise StepTimeout(f"the step took longer than its limit of {_limits.seconds:.0f} s",
                          hint="raise --step-timeout, or look at why it is slow")


def run_lock_key(slug: str) -> str:
    return f"goalpost.run:{slug}"


def session_tag(slug: str) -> str:
    """The application_name of the database sessions that build a client's models."""
    return f"goalpost:{slug}"


def end_orphaned_sessions(conn: psycopg.Connection, slug: str, grace: float = 10.0) -> list[int]:
    """Wait for, then end, the client's sessions still busy although nobody holds its run
    lock but us: those of a run whose process died, whose statement goes on without it (the
    server notices a vanished client only when it next talks to it) and could commit results
    of an older state over the new run's. Idle sessions are left alone (a warm SQLMesh
    context's; a dead client's idle session ends by itself). Returns the sessions ended."""
    deadline = time.monotonic() + grace
    ended: list[int] = []
    while True:
        busy = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND pid <> "
            "pg_backend_pid() AND state = 'active'",
            (session_tag(slug),))]
        if not busy:
            return ended
        if time.monotonic() >= deadline:
            for pid in busy:
                conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            ended += busy
        time.sleep(0.2)


def acquire_run_lock(conn: psycopg.Connection, slug: str, wait: float) -> None:
    """Hold the client's advisory lock for the life of `conn`: one run of a client at a time,
    across processes and machines. A run whose process dies releases it with its session,
    which is how an interrupted run is recognised (see `fail_interrupted_runs`)."""
    deadline = time.monotonic() + wait
    while not conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                           (run_lock_key(slug),)).fetchone()[0]:
        if time.monotonic() >= deadline:
            running = conn.execute(
                "SELECT id FROM goalpost.runs WHERE client = %s AND status = 'running' "
                "ORDER BY id DESC LIMIT 1", (slug,)).fetchone()
            conn.close()
            raise GoalpostError(
                f"another run of {slug} is in progress"
                + (f" (run {running[0]})" if running else ""),
                hint="wait for it to finish; `goalpost status` shows it")
        time.sleep(0.2)


def fail_interrupted_runs(conn: psycopg.Connection) -> list[int]:
    """Mark failed the runs left 'running' by a process that died (their client's lock is
    free); returns their ids."""
    failed = []
    for run_id, slug in conn.execute(
            "SELECT id, client FROM goalpost.runs WHERE status = 'running' ORDER BY id").fetchall():
        free = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                            (run_lock_key(slug),)).fetchone()[0]
        if not free:
            continue
        try:
            with conn.transaction():
                conn.execute("UPDATE goalpost.run_steps SET status = 'failed', error = %s, "
                             "finished_at = clock_timestamp() WHERE run_id = %s AND "
                             "status = 'running'", (INTERRUPTED, run_id))
                conn.execute("UPDATE goalpost.runs SET status = 'failed', error = %s, "
                             "finished_at = clock_timestamp() WHERE id = %s AND "
                             "status = 'running'", (INTERRUPTED, run_id))
            failed.append(run_id)
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))",
                         (run_lock_key(slug),))
    if failed:
        log.warning("marked failed the runs of processes that stopped: %s", failed)
    return failed


class RunRecorder:
    """One run of one client: a row in goalpost.runs and a row per step."""

    def __init__(self, url: str, slug: str, *, trigger: str = "cli", full_refresh: bool = False,
                 wait_for_lock: float = 0.0, step_timeout: float | None = None):
        self.conn = psycopg.connect(url, autocommit=True)
        self.slug = slug
        self.step_timeout = step_timeout
        self.steps: list[Step] = []
        acquire_run_lock(self.conn, slug, wait_for_lock)
        ended = end_orphaned_sessions(self.conn, slug)
        if ended:
            log.warning("ended sessions of an interrupted run of %s: %s", slug, ended)
        self.run_id: int = self.conn.execute(
            "INSERT INTO goalpost.runs (client, trigger, full_refresh) VALUES (%s, %s, %s) "
            "RETURNING id",
            (slug, trigger, full_refresh),
        ).fetchone()[0]

    @contextmanager
    def step(self, name: str, kind: str) -> Iterator[Step]:
        """Run a step; a GoalpostError marks it failed (and is not re-raised), bugs propagate."""
        step = Step(name, kind)
        self.steps.append(step)
        step_id = self.conn.execute(
            "INSERT INTO goalpost.run_steps (run_id, name, kind) VALUES (%s, %s, %s) RETURNING id",
            (self.run_id, name, kind),
        ).fetchone()[0]
        started = time.perf_counter()
        if self.step_timeout:
            _limits.deadline = time.monotonic() + self.step_timeout
            _limits.seconds = self.step_timeout
        try:
            yield step
            if step.status == "running":
                step.status = "failed" if step.error else "succeeded"
        except GoalpostError as exc:
            step.status, step.error = "failed", str(exc)
        except BaseException as exc:
            step.status, step.error = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            _limits.deadline = None
            step.seconds = time.perf_counter() - started
            step.error, step.details = mask(step.error), mask_data(step.details)
            self.conn.execute(
                "UPDATE goalpost.run_steps SET status=%s, finished_at=clock_timestamp(), "
                "rows_loaded=%s, rows_quarantined=%s, details=%s::jsonb, error=%s WHERE id=%s",
                (step.status, step.rows_loaded, step.rows_quarantined,
                 orjson.dumps(step.details, default=str).decode(), step.error, step_id),
            )

    def finish(self, summary: dict[str, Any]) -> str:
        failed = [step for step in self.steps if step.status == "failed"]
        status = "failed" if failed else "succeeded"
        error = "; ".join(f"{s.name}: {s.error}" for s in failed) or None
        self.conn.execute(
            "UPDATE goalpost.runs SET status=%s, finished_at=clock_timestamp(), error=%s, "
            "summary=%s::jsonb WHERE id=%s",
            (status, mask(error), orjson.dumps(mask_data(summary), default=str).decode(),
             self.run_id),
        )
        self.conn.close()
        return status

    def abort(self, exc: BaseException) -> None:
        """Record the run failed by `exc` (a bug, an interrupt) and release its lock, so that
        nothing waits for a run that is over; the caller re-raises."""
        if self.conn.closed:
            return
        what = "interrupted" if isinstance(exc, KeyboardInterrupt) else \
            f"{type(exc).__name__}: {exc}"
        try:
            self.conn.execute(
                "UPDATE goalpost.run_steps SET status = 'failed', error = %s, finished_at = "
                "clock_timestamp() WHERE run_id = %s AND status = 'running'",
                (mask(what), self.run_id))
            self.conn.execute(
                "UPDATE goalpost.runs SET status = 'failed', finished_at = clock_timestamp(), "
                "error = %s WHERE id = %s AND status = 'running'",
                (mask(f"the run stopped: {what}"), self.run_id))
        finally:
            self.conn.close()


def last_runs(conn: psycopg.Connection, limit_per_client: int = 1) -> list[dict[str, Any]]:
    """The latest runs of every client, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT * FROM (
                   SELECT r.*, extract(epoch FROM coalesce(finished_at, clock_timestamp())
                                                 - started_at) AS seconds,
                          row_number() OVER (PARTITION BY client ORDER BY started_at DESC) AS n
                   FROM goalpost.runs r) ranked
               WHERE n <= %s ORDER BY client, started_at DESC""",
            (limit_per_client,),
        ).fetchall()


def run_steps(conn: psycopg.Connection, run_id: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT name, kind, status, rows_loaded, rows_quarantined, error, details, "
            "extract(epoch FROM finished_at - started_at) AS seconds "
            "FROM goalpost.run_steps WHERE run_id = %s ORDER BY id",
            (run_id,),
        ).fetchall()
