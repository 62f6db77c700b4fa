"""The scheduler's worker processes: clients' runs side by side, on every core, fairly.

A run is mostly Python (the loader's rows, SQLMesh's planning, the extensions' model fits), so
threads of one process share one core; the scheduler hands each run to a long-lived worker
process instead. A worker keeps what it loaded between runs (imports, and the warm SQLMesh
contexts goalpost.transform caches per process), so a client tends to go back to the worker
that ran it last.

Fairness: runs wait in one queue ordered by their slot's due time (then arrival), and a run
holds one worker until it ends, so a huge client's run takes one worker while the small ones
go through the others. A worker that dies mid-run (killed, out of memory) is replaced; its
caller gets `WorkerDied`, and the run it left 'running' is marked failed by
goalpost.core.runs once its advisory lock is free (the lock goes with the dead process's
database session).

Modules a worker imports at start are only this one and what its target needs: keep it light,
so that thread limits (OMP_NUM_THREADS and co.) are set before numpy is imported.
"""

from __future__ import annotations

import contextlib
import heapq
import importlib
import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from goalpost.core.errors import GoalpostError

log = logging.getLogger("goalpost.workers")

DEFAULT_TARGET = "goalpost.app.orchestrator:run_client"
# What one worker may need at its peak (a first run of a small client with SQLMesh and the
# extensions loaded is about 1 GB here): the default number of workers leaves that much each.
WORKER_MEMORY = 1536 * 1024 * 1024
REMEMBERED_CLIENTS = 64  # per worker, the clients whose contexts it may still have warm
THREAD_LIMITS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "NUMEXPR_NUM_THREADS")


class WorkerDied(Exception):
    """The worker process running a run stopped before answering (killed, out of memory)."""

    def __init__(self, slug: str, exitcode: int | None) -> None:
        how = f"exit code {exitcode}" if exitcode is not None else "no exit code"
        super().__init__(f"the worker process running {slug} died during the run ({how})")
        self.exitcode = exitcode


class RunFailed(Exception):
    """A run raised an unexpected error in its worker; the worker's traceback is kept."""

    def __init__(self, kind: str, message: str, remote_traceback: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.remote_traceback = remote_traceback


class PoolClosed(GoalpostError):
    """The scheduler stopped before a worker was free for the run."""


def available_memory() -> int | None:
    """Bytes the kernel says new processes can use (MemAvailable), None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def usable_cpus() -> int:
    """The cores this process may run on (its affinity), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


def default_limit() -> int:
    """As many workers as usable cores, fewer if memory cannot hold WORKER_MEMORY each."""
    cpus = usable_cpus()
    memory = available_memory()
    by_memory = max(1, memory // WORKER_MEMORY) if memory else cpus
    return max(1, min(cpus, by_memory))


def _resolve(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _die_with(parent: int) -> None:
    """End this worker when the scheduler that started it dies: a run of a dead scheduler
    must stop like one in its threads would, so that it is recovered as interrupted rather
    than finishing unrecorded on a slot nobody will close. (Not PR_SET_PDEATHSIG: it fires
    when the thread that started the worker ends, and any of the scheduler's threads may.)"""
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _serve(conn: Connection, target: str, log_level: int, parent: int) -> None:
    """A worker's life: run what the pool sends, one at a time, until told to stop or the
    pool's end of the pipe closes."""
    _die_with(parent)
    for name in THREAD_LIMITS:  # one process per core; BLAS threads only add CPU here
        os.environ.setdefault(name, "1")
    # The scheduler decides when workers stop: Ctrl-C or SIGTERM to the process group must
    # not cut a run short, the pool closes the pipe once the runs in progress are done.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from goalpost.core.masking import install_log_masking

    logging.basicConfig(level=log_level,
                        format="%(asctime)s %(name)s [worker %(process)d] %(message)s")
    install_log_masking()
    function = _resolve(target)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        slug, kwargs = message
        try:
            reply: tuple[Any, ...] = ("ok", function(slug, **kwargs))
        except GoalpostError as exc:
            reply = ("goalpost", type(exc).__name__, exc.message, exc.hint)
        except Exception as exc:  # noqa: BLE001 - sent to the scheduler, which records it
            reply = ("error", type(exc).__name__, str(exc), traceback.format_exc())
        try:
            conn.send(reply)
        except Exception as exc:  # noqa: BLE001 - a result that cannot be pickled
            conn.send(("error", type(exc).__name__, f"the run's result could not be sent "
                       f"back: {exc}", traceback.format_exc()))


@dataclass
class _Worker:
    process: Any
    conn: Connection
    busy_with: str | None = None
    clients: OrderedDict[str, None] = field(default_factory=OrderedDict)


@dataclass(order=True)
class _Request:
    due: datetime
    seq: int
    slug: str = field(compare=False)
    worker: _Worker | None = field(default=None, compare=False)
    assigned: threading.Event = field(default_factory=threading.Event, compare=False)


class WorkerPool:
    """At most `size` worker processes, started when first needed, each running `target`
    ("module:function", called as function(slug, **kwargs)) for one client at a time."""

    def __init__(self, size: int, target: str = DEFAULT_TARGET) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.size = size
        self.target = target
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._queue: list[_Request] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False

    def run(self, slug: str, due: datetime, **kwargs: Any) -> Any:
        """Wait for a worker (earliest due first), run `slug` there and return its result.

        Raises what the run raised (a GoalpostError as a GoalpostError, anything else as
        RunFailed), WorkerDied if the worker died, PoolClosed if the pool closed first."""
        request = _Request(due, next(self._seq), slug)
        with self._cond:
            if self._closed:
                raise PoolClosed(f"the scheduler is stopping: {slug} was not started")
            heapq.heappush(self._queue, request)
            self._assign()
        request.assigned.wait()
        worker = request.worker
        if worker is None:
            raise PoolClosed(f"the scheduler stopped before a worker was free for {slug}")
        try:
            worker.conn.send((slug, kwargs))
            reply = worker.conn.recv()
        except (EOFError, OSError) as exc:
            worker.process.join(10)
            code = worker.process.exitcode
            self._discard(worker)
            raise WorkerDied(slug, code) from exc
        self._release(worker)
        kind, *rest = reply
        if kind == "ok":
            return rest[0]
        if kind == "goalpost":
            _name, message, hint = rest
            raise GoalpostError(message, hint=hint)
        name, message, remote = rest
        raise RunFailed(name, message, remote)

    def busy(self) -> dict[str, int]:
        """The clients running now, each with its worker's process id."""
        with self._cond:
            return {w.busy_with: w.process.pid for w in self._workers if w.busy_with}

    def pids(self) -> list[int]:
        with self._cond:
            return [w.process.pid for w in self._workers]

    def waiting(self) -> list[str]:
        """The clients waiting for a worker, in the order they will get one."""
        with self._cond:
            return [r.slug for r in sorted(self._queue)]

    def close(self) -> None:
        """Refuse new runs, give up the waiting ones, stop the idle workers; the busy ones
        stop when their run ends."""
        with self._cond:
            self._closed = True
            waiting, self._queue = self._queue, []
            idle = [w for w in self._workers if w.busy_with is None]
        for request in waiting:
            request.assigned.set()
        for worker in idle:
            self._stop(worker)

    def join(self, timeout: float | None = None) -> None:
        """Wait for every worker process to exit (after `close`)."""
        with self._cond:
            workers = list(self._workers)
        for worker in workers:
            worker.process.join(timeout)

    # --- under the pool's lock ------------------------------------------------------------

    def _assign(self) -> None:
        """Give free workers to the earliest requests, preferring the worker that ran the
        client last (its context may be warm); start workers up to `size`."""
        for dead in [w for w in self._workers if w.busy_with is None
                     and not w.process.is_alive()]:
            log.error("idle worker process %d had died (exit code %s); replaced",
                      dead.process.pid, dead.process.exitcode)
            dead.conn.close()
            self._workers.remove(dead)
        while self._queue:
            free = [w for w in self._workers if w.busy_with is None]
            if not free and len(self._workers) < self.size:
                free = [self._spawn()]
            if not free:
                return
            request = heapq.heappop(self._queue)
            worker = next((w for w in free if request.slug in w.clients), free[0])
            worker.busy_with = request.slug
            worker.clients[request.slug] = None
            worker.clients.move_to_end(request.slug)
            while len(worker.clients) > REMEMBERED_CLIENTS:
                worker.clients.popitem(last=False)
            request.worker = worker
            request.assigned.set()

    def _spawn(self) -> _Worker:
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_serve, args=(theirs, self.target, logging.getLogger().getEffectiveLevel(),
                  os.getpid()),
            name="goalpost-worker", daemon=False)
        process.start()
        theirs.close()  # so that a dead worker shows as EOF on ours
        worker = _Worker(process, ours)
        self._workers.append(worker)
        log.info("worker process %d started (%d of at most %d)", process.pid,
                 len(self._workers), self.size)
        return worker

    # --- taking the lock ------------------------------------------------------------------

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            worker.busy_with = None
            if self._closed:
                stop = True
            else:
                stop = False
                self._assign()
        if stop:
            self._stop(worker)

    def _discard(self, worker: _Worker) -> None:
        log.error("worker process %d died (exit code %s); a new one replaces it",
                  worker.process.pid, worker.process.exitcode)
        worker.conn.close()
        with self._cond:
            self._workers.remove(worker)
            if not self._closed:
                self._assign()

    @staticmethod
    def _stop(worker: _Worker) -> None:
        with contextlib.suppress(OSError):
            worker.conn.send(None)
        worker.conn.close()
