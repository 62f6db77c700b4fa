"""The scheduler's worker processes: at most the limit at once, the earliest due first, a huge
client holding one worker only, a dead worker replaced (a worker killed in a real run: in
test_scheduler.py)."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from goalpost.app.scheduler import Scheduler
from goalpost.app.workers import WorkerDied, WorkerPool, default_limit

SMALL = [f"small{i}" for i in range(5)]
SIX_AM = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def _events() -> Path:
    return Path(os.environ["GOALPOST_HOME"]) / "events.log"


def _note(line: str) -> None:
    with open(_events(), "a", encoding="utf-8") as out:  # one write per line: O_APPEND
        out.write(f"{line}\n")


def gated_run(slug: str, **kwargs: object):
    """A run recorded like any other, whose work is waiting: the huge client's until the test
    releases it, the small ones' a moment (so that runs side by side can be seen)."""
    from goalpost.app.orchestrator import RunResult
    from goalpost.core.runs import RunRecorder

    recorder = RunRecorder(os.environ["GOALPOST_DATABASE_URL"], slug, trigger="scheduler",
                           wait_for_lock=float(kwargs.get("wait_for_lock", 0.0)))
    _note(f"start {slug} {os.getpid()}")
    if slug == "huge":
        release = Path(os.environ["GOALPOST_HOME"]) / "release"
        deadline = time.monotonic() + 300
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    else:
        time.sleep(0.5)
    _note(f"end {slug} {os.getpid()}")
    return RunResult(recorder.run_id, slug, recorder.finish({}))


def echo(slug: str, **kwargs: object) -> str:
    """What the pool's tests run: notes the client once the gate file is gone."""
    gate = Path(os.environ["GOALPOST_HOME"]) / "gate"
    while gate.exists():
        time.sleep(0.05)
    _note(f"ran {slug}")
    return slug


def wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def write_clients(project: Path, slugs: list[str], schedule: str = "0 7 * * *") -> None:
    for slug in slugs:
        (project / "clients" / f"{slug}.yaml").write_text(
            f"name: {slug}\ntimezone: Europe/Paris\nschedule: \"{schedule}\"\n")


def test_the_default_limit_fits_the_machine():
    assert 1 <= default_limit() <= (os.cpu_count() or 1)


def test_the_pool_serves_the_earliest_due_first(project: Path):
    gate = project / "gate"
    gate.touch()
    pool = WorkerPool(1, target="test_scheduler_workers:echo")
    results: dict[str, str] = {}

    def submit(slug: str, due: datetime) -> None:
        results[slug] = pool.run(slug, due)

    threads = [threading.Thread(target=submit, args=("first", SIX_AM))]
    threads[0].start()
    wait_for(lambda: pool.busy() != {}, 60)  # the only worker is held by "first"
    for slug, minutes in (("late", 30), ("early", 1), ("middle", 10)):
        threads.append(threading.Thread(target=submit,
                                        args=(slug, SIX_AM + timedelta(minutes=minutes))))
        threads[-1].start()
    wait_for(lambda: len(pool.waiting()) == 3, 30)
    assert pool.waiting() == ["early", "middle", "late"]
    gate.unlink()
    for thread in threads:
        thread.join(60)
    pool.close()
    pool.join(30)
    assert results == {s: s for s in ("first", "late", "early", "middle")}
    assert _events().read_text().split("\n")[:-1] == [
        "ran first", "ran early", "ran middle", "ran late"]


def test_a_worker_that_dies_is_replaced(project: Path):
    gate = project / "gate"
    gate.touch()
    pool = WorkerPool(1, target="test_scheduler_workers:echo")
    died: list[BaseException] = []

    def doomed() -> None:
        try:
            pool.run("doomed", SIX_AM)
        except WorkerDied as exc:
            died.append(exc)

    thread = threading.Thread(target=doomed)
    thread.start()
    wait_for(lambda: "doomed" in pool.busy(), 60)
    (pid,) = pool.pids()
    os.kill(pid, signal.SIGKILL)
    thread.join(30)
    assert died and died[0].exitcode == -signal.SIGKILL
    gate.unlink()
    assert pool.run("next", SIX_AM) == "next"
    assert pool.pids() != [pid]
    pool.close()
    pool.join(30)


def test_runs_go_side_by_side_up_to_the_limit_and_a_huge_one_holds_one_worker(
        project: Path, conn):
    write_clients(project, ["huge", *SMALL])
    scheduler = Scheduler(os.environ["GOALPOST_DATABASE_URL"], instance="t", workers=2,
                          worker_target="test_scheduler_workers:gated_run",
                          backup_schedule=None, virtual_start=SIX_AM.replace(hour=5) +
                          timedelta(minutes=59, seconds=58))

    def finished(slugs: list[str]) -> bool:
        return conn.execute("SELECT count(*) FROM goalpost.schedule_slots WHERE status = "
                            "'succeeded' AND client = ANY(%s)", (slugs,)).fetchone()[0] == \
            len(slugs)

    scheduler.start()
    try:
        # Every client is due at 07:00 Paris; the huge one holds its worker until released,
        # and all the small ones get through the other.
        wait_for(lambda: finished(SMALL), 180)
        assert conn.execute("SELECT status FROM goalpost.schedule_slots WHERE client = "
                            "'huge'").fetchone() == ("claimed",)
        (project / "release").touch()
        wait_for(lambda: finished(["huge"]), 60)
    finally:
        scheduler.stop()
    events = [line.split() for line in _events().read_text().splitlines()]
    running, most = 0, 0
    for what, _slug, _pid in events:
        running += 1 if what == "start" else -1
        most = max(most, running)
    assert most == 2  # side by side, never more than the limit
    pids = {slug: pid for what, slug, pid in events if what == "start"}
    assert len(set(pids.values())) == 2 and all(pids[s] != pids["huge"] for s in SMALL)
    assert [s for what, s, _ in events if what == "end"][-1] == "huge"
    slots = conn.execute("SELECT client, due_at, status FROM goalpost.schedule_slots "
                         "ORDER BY client").fetchall()
    assert [(c, s) for c, _, s in slots] == [(c, "succeeded") for c in sorted(["huge", *SMALL])]
    assert {d for _, d, _ in slots} == {SIX_AM}
    assert conn.execute("SELECT count(*) FROM goalpost.runs WHERE status <> 'succeeded'"
                        ).fetchone() == (0,)
