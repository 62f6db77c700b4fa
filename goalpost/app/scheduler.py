"""`goalpost scheduler`: runs every client on its cron, in its time zone, and the daily backup.

Several scheduler processes may share one warehouse (for availability); they coordinate
through it:

- each due slot of a client is claimed by one row in `goalpost.schedule_slots` (whoever
  inserts it runs it; the others move on), so a slot runs once;
- a run holds its client's advisory lock (goalpost.runs), so runs of one client never overlap,
  and a run left 'running' by a process that died is recognised by its free lock and marked
  failed (by every command, so at start and on every heartbeat here);
- slots that pass while nobody could run them (all schedulers down, or the previous run still
  going) are recorded as missed; after a downtime only the latest missed slot is run
  (coalescing), the others stay recorded as missed;
- clients run side by side, each run in a worker process (goalpost.app.workers), up to a
  limit that fits the machine's cores and memory, the earliest due slot first, one slot of a
  client at a time;
- after each slot's run, the client's business review of the period that has closed (the
  week, on Monday after the morning run) goes to whoever has not had it: once per period and
  recipient, whichever scheduler gets there (goalpost.alerts.review.deliver).

Jobs are APScheduler date jobs, one per client, re-armed after each slot; the process keeps
its SQLMesh contexts warm between runs (goalpost.transform caches them). `acceleration` runs
the schedules faster than real time (tests and demos: 60 makes a minute last a second).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from goalpost.app.workers import DEFAULT_TARGET, RunFailed, WorkerDied, WorkerPool, default_limit
from goalpost.core import registry, schedules
from goalpost.core.errors import GoalpostError
from goalpost.core.masking import install_log_masking, mask
from goalpost.core.warehouse import ready, tenants

log = logging.getLogger("goalpost.scheduler")
BACKUP_JOB = "backup"
MAX_MISSED_RECORDED = 500


@dataclass
class Clock:
    """Real time, or time running `factor` times faster from the moment the clock starts."""

    factor: float = 1.0
    real_start: float = 0.0
    virtual_start: datetime | None = None

    def __post_init__(self) -> None:
        self.real_start = self.real_start or time.time()
        self.virtual_start = self.virtual_start or datetime.fromtimestamp(self.real_start, UTC)

    def now(self) -> datetime:
        return self.virtual_start + timedelta(seconds=(time.time() - self.real_start) *
                                              self.factor)

    def real_at(self, moment: datetime) -> datetime:
        seconds = (moment - self.virtual_start).total_seconds() / self.factor
        return datetime.fromtimestamp(self.real_start + seconds, UTC)


def next_slot(schedule: str, timezone: str, after: datetime) -> datetime:
    """The first time after `after` that the cron expression names, in the client's zone."""
    return schedules.next_time(schedule, timezone, after)


def slots_between(schedule: str, timezone: str, start: datetime, end: datetime,
                  limit: int = MAX_MISSED_RECORDED) -> list[datetime]:
    """Cron slots in (start, end], oldest first, at most `limit` (the latest ones)."""
    out: list[datetime] = []
    moment = start
    while True:
        moment = next_slot(schedule, timezone, moment)
        if moment > end:
            return out[-limit:]
        out.append(moment)


class Scheduler:
    """One scheduler process; `start()` returns at once, `stop()` waits for running work."""

    def __init__(self, url: str, *, acceleration: float = 1.0, instance: str | None = None,
                 clock_start: float | None = None,
                 backup_schedule: str | None = "0 3 * * *", retries: int = 2,
                 retry_backoff: float = 30.0, heartbeat_seconds: float = 10.0,
                 step_timeout: float | None = 7200.0,
                 run: Callable[..., Any] | None = None,
                 virtual_start: datetime | None = None, workers: int | None = None,
                 worker_target: str = DEFAULT_TARGET) -> None:
        """`workers`: how many clients run at once, each in a worker process (default: what
        the machine's cores and memory fit, goalpost.app.workers.default_limit). `run`, when
        given, replaces the worker pool: called in the scheduler's own threads as
        run(slug, due=..., trigger=..., wait_for_lock=..., step_timeout=...)."""
        self.url = url
        # Schedulers sharing a warehouse under acceleration share `clock_start`, so that they
        # agree on what time it is.
        self.clock = Clock(acceleration, clock_start or 0.0, virtual_start)
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.backup_schedule = backup_schedule
        self.retries, self.retry_backoff = retries, retry_backoff
        self.heartbeat_seconds = heartbeat_seconds
        self.step_timeout = step_timeout
        self.workers = WorkerPool(workers or default_limit(), worker_target)
        self.run = run or self._run_in_worker
        self.stopping = threading.Event()
        self.schedules: dict[str, tuple[str, str]] = {}
        self._files: dict[str, tuple[tuple[int, int], tuple[str, str] | None]] = {}
        self._lock = threading.Lock()
        # A slot's thread mostly waits (for a worker, or between retries): more threads than
        # workers, so that the slots due first are the ones queued for the next free worker.
        threads = max(8, 4 * self.workers.size)
        self.aps = BackgroundScheduler(
            timezone=UTC, executors={"default": ThreadPoolExecutor(threads),
                                     # its own thread: slots queued for workers never delay
                                     # the heartbeat that says this scheduler is alive
                                     "heartbeat": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        with ready(self.url) as conn:
            conn.execute(
                "INSERT INTO goalpost.scheduler_instances (instance, host, pid) "
                "VALUES (%s, %s, %s)", (self.instance, socket.gethostname(), os.getpid()))
        self.aps.start()
        self.sync_clients()
        if self.backup_schedule:
            self._arm(BACKUP_JOB, self.clock.now())
        self.aps.add_job(self.heartbeat, "interval", seconds=self.heartbeat_seconds,
                         id="heartbeat", executor="heartbeat", next_run_time=datetime.now(UTC))
        log.info("scheduler %s started (%d clients, up to %d at once)", self.instance,
                 len(self.schedules), self.workers.size)

    def stop(self) -> None:
        """Stop taking new work; the running runs finish (their steps commit or roll back)."""
        self.stopping.set()
        self.workers.close()  # slots waiting for a worker give up; running ones finish
        self.aps.shutdown(wait=True)
        self.workers.join()
        with ready(self.url) as conn:
            conn.execute("UPDATE goalpost.scheduler_instances SET stopped_at = clock_timestamp()"
                         " WHERE instance = %s", (self.instance,))
        log.info("scheduler %s stopped", self.instance)

    def heartbeat(self) -> None:
        """Say this scheduler is alive, fail the runs of dead processes (`ready` does), put
        back what a reader role changed on itself, and pick up changed client files."""
        with ready(self.url) as conn:
            conn.execute("UPDATE goalpost.scheduler_instances SET beat_at = clock_timestamp() "
                         "WHERE instance = %s", (self.instance,))
            for slug in sorted(self.schedules):
                repaired = tenants.repair_reader(conn, slug)
                if repaired:
                    log.warning("the reader role of %s had changed %s on itself: put back",
                                slug, " and ".join(repaired))
        self.sync_clients()

    # --- planning ---------------------------------------------------------------------------

    def sync_clients(self) -> None:
        """Arm new clients, re-arm changed schedules, drop removed clients."""
        wanted: dict[str, tuple[str, str]] = {}
        for slug in registry.list_slugs():
            spec = self._schedule_of(slug)
            if spec is not None:
                wanted[slug] = spec
        with self._lock:
            for slug in set(self.schedules) - set(wanted):
                if self.aps.get_job(f"client:{slug}"):
                    self.aps.remove_job(f"client:{slug}")
            changed = {s: v for s, v in wanted.items() if self.schedules.get(s) != v}
            self.schedules = wanted
        for slug in changed:
            try:
                self._catch_up_or_arm(slug)
            except Exception:  # noqa: BLE001 - one client's problem must not stop the others
                log.exception("client %s is not scheduled", slug)
                with self._lock:
                    self.schedules.pop(slug, None)

    def _schedule_of(self, slug: str) -> tuple[str, str] | None:
        """The client's (schedule, time zone), None if its file is broken; a file is parsed
        again only when it changed (with a thousand clients, parsing every file at every
        heartbeat would keep a core busy)."""
        try:
            stat = registry.client_path(slug).stat()
        except OSError:
            return None
        signature = (stat.st_mtime_ns, stat.st_size)
        known = self._files.get(slug)
        if known is not None and known[0] == signature:
            return known[1]
        try:
            client = registry.load_client(slug)
            spec: tuple[str, str] | None = (client.schedule, client.timezone)
        except GoalpostError as exc:
            # A broken file must not stop the other clients; `client validate` names it.
            log.error("client %s is not scheduled: %s", slug, exc)
            spec = None
        self._files[slug] = (signature, spec)
        return spec

    def _catch_up_or_arm(self, slug: str) -> None:
        """Arm the next slot; after a downtime, run the latest missed slot now and record the
        earlier ones as missed."""
        schedule, zone = self.schedules[slug]
        now = self.clock.now()
        with ready(self.url) as conn:
            last = conn.execute("SELECT max(due_at) FROM goalpost.schedule_slots WHERE "
                                "client = %s", (slug,)).fetchone()[0]
            missed = slots_between(schedule, zone, last, now) if last else []
            for due in missed[:-1]:
                self._record(conn, slug, due, "missed", "no scheduler was running")
        if missed:
            self._add_job(slug, missed[-1], run_now=True)
        else:
            self._arm(slug, now)

    def _arm(self, slug: str, after: datetime) -> None:
        if self.stopping.is_set():
            return
        if slug == BACKUP_JOB:
            due = next_slot(self.backup_schedule, "UTC", after)
        else:
            with self._lock:
                spec = self.schedules.get(slug)
            if spec is None:
                return
            due = next_slot(*spec, after)
        self._add_job(slug, due)

    def _add_job(self, slug: str, due: datetime, run_now: bool = False) -> None:
        job_id = BACKUP_JOB if slug == BACKUP_JOB else f"client:{slug}"
        when = datetime.now(UTC) if run_now else self.clock.real_at(due)
        self.aps.add_job(self._fire, DateTrigger(run_date=when), args=(slug, due), id=job_id,
                         replace_existing=True)

    # --- running a slot -----------------------------------------------------------------------

    def _fire(self, slug: str, due: datetime) -> None:
        if self.stopping.is_set():
            return  # not claimed: the next scheduler to start catches it up
        try:
            if slug == BACKUP_JOB:
                self._backup(due)
            else:
                self._run_slot(slug, due)
        except Exception:
            log.exception("slot %s of %s failed", due, slug)
        finally:
            now = self.clock.now()
            if slug != BACKUP_JOB and not self.stopping.is_set():
                spec = self.schedules.get(slug)
                if spec is not None:
                    passed = slots_between(*spec, due, now)
                    with ready(self.url) as conn:
                        for late in passed:
                            self._record(conn, slug, late, "missed",
                                         "the previous run was still going")
            self._arm(slug, max(due, now))

    def _claim(self, conn: psycopg.Connection, slug: str, due: datetime) -> bool:
        row = conn.execute(
            "INSERT INTO goalpost.schedule_slots (client, due_at, status, instance) VALUES "
            "(%s, %s, 'claimed', %s) ON CONFLICT DO NOTHING RETURNING 1",
            (slug, due, self.instance)).fetchone()
        return row is not None

    def _record(self, conn: psycopg.Connection, slug: str, due: datetime, status: str,
                note: str) -> None:
        conn.execute(
            "INSERT INTO goalpost.schedule_slots (client, due_at, status, instance, note, "
            "finished_at) VALUES (%s, %s, %s, %s, %s, clock_timestamp()) "
            "ON CONFLICT DO NOTHING", (slug, due, status, self.instance, note))

    def _run_slot(self, slug: str, due: datetime) -> None:
        """Run one claimed slot; whatever happens in the run (a bug included), the slot is
        finished with its outcome, never left 'claimed'."""
        with ready(self.url) as conn:
            if not self._claim(conn, slug, due):
                return  # another scheduler has this slot
            (runs_before,) = conn.execute("SELECT coalesce(max(id), 0) FROM goalpost.runs"
                                          ).fetchone()
        status, run_id, note = "failed", None, None
        try:
            for attempt in range(self.retries + 1):
                try:
                    result = self.run(slug, due=due, trigger="scheduler", wait_for_lock=30.0,
                                      step_timeout=self.step_timeout)
                except GoalpostError as exc:
                    status, note = "missed", str(exc).splitlines()[0]
                    break
                except WorkerDied as exc:
                    # Its run is marked failed ('interrupted') once its lock is free.
                    status, run_id = "failed", self._last_run(slug, runs_before) or run_id
                    log.error("slot %s of %s: %s", due, slug, exc)
                    if self.stopping.is_set() or attempt == self.retries:
                        note = str(exc)
                        break
                    note = f"retried: {exc}"
                    self.stopping.wait(self.retry_backoff * 2 ** attempt)
                    continue
                run_id, status = result.run_id, result.status
                if status == "succeeded":
                    log.info("run %s of %s (slot %s) succeeded", run_id, slug, due)
                else:
                    log.warning("run %s of %s (slot %s) failed: %s", run_id, slug, due,
                                "; ".join(f"{s.name}: {s.error}" for s in result.steps
                                          if s.status == "failed"))
                if status == "succeeded" or self.stopping.is_set() or attempt == self.retries:
                    break
                note = f"retried after run {run_id} failed"
                self.stopping.wait(self.retry_backoff * 2 ** attempt)
        except RunFailed as exc:
            status, note = "failed", f"the run stopped on an error: {exc}"
            log.error("run of %s for the slot %s stopped, in its worker:\n%s", slug, due,
                      exc.remote_traceback)
        except Exception as exc:  # noqa: BLE001 - recorded on the slot, logged, and the next
            # slots of this client and the others still run
            status, note = "failed", f"the run stopped on an error: {type(exc).__name__}: {exc}"
            log.exception("run of %s for the slot %s stopped", slug, due)
        finally:
            with ready(self.url) as conn:
                conn.execute(
                    "UPDATE goalpost.schedule_slots SET status = %s, run_id = %s, note = %s, "
                    "finished_at = clock_timestamp() WHERE client = %s AND due_at = %s",
                    (status, run_id, mask(note), slug, due))
        self._review(slug)

    def _run_in_worker(self, slug: str, *, due: datetime, **kwargs: Any) -> Any:
        return self.workers.run(slug, due, **kwargs)

    def _last_run(self, slug: str, after: int) -> int | None:
        """The latest scheduled run of the client begun after run id `after`."""
        with ready(self.url) as conn:
            return conn.execute("SELECT max(id) FROM goalpost.runs WHERE client = %s AND "
                                "trigger = 'scheduler' AND id > %s", (slug, after)).fetchone()[0]

    def _review(self, slug: str) -> None:
        """After a slot's run: the review of the period that closed, to whoever has not had
        it (goalpost.alerts.review.deliver: once per period and recipient)."""
        from goalpost.alerts.review.deliver import send_due

        try:
            client = registry.load_client(slug)
            with ready(self.url) as conn:
                outcome = send_due(conn, slug, client, now=self.clock.now())
        except GoalpostError as exc:
            log.error("review of %s not sent: %s", slug, exc)
            return
        except Exception:  # noqa: BLE001 - a review that cannot be built is logged; the
            # client's next slots and the other clients still run
            log.exception("review of %s stopped", slug)
            return
        if outcome is None:
            return
        for sent in outcome.sent:
            log.info("review %s of %s sent to %s", outcome.period, slug, sent["recipient"])
        for warning in outcome.warnings():
            log.warning("%s: %s", slug, warning)

    def _backup(self, due: datetime) -> None:
        from goalpost.backup.core import create_backup

        with ready(self.url) as conn:
            if not self._claim(conn, BACKUP_JOB, due):
                return
            try:
                made = create_backup(conn, self.url)
                status, note = "succeeded", made.id
            except GoalpostError as exc:
                status, note = "failed", str(exc)
            conn.execute(
                "UPDATE goalpost.schedule_slots SET status = %s, note = %s, finished_at = "
                "clock_timestamp() WHERE client = %s AND due_at = %s",
                (status, note, BACKUP_JOB, due))


def serve(url: str, *, acceleration: float = 1.0, instance: str | None = None,
          clock_start: float | None = None, backup_schedule: str | None = "0 3 * * *",
          step_timeout: float | None = 7200.0, workers: int | None = None,
          stop_event: threading.Event | None = None) -> None:
    """Run a scheduler until SIGTERM/SIGINT (or `stop_event`), then stop cleanly."""
    import signal

    install_log_masking()
    stop = stop_event or threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    scheduler = Scheduler(url, acceleration=acceleration, instance=instance,
                          clock_start=clock_start, backup_schedule=backup_schedule,
                          step_timeout=step_timeout, workers=workers)
    scheduler.start()
    try:
        stop.wait()
    finally:
        scheduler.stop()
