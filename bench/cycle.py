"""Benchmark: one daily cycle of N small clients through the scheduler.

    .venv/bin/python bench/cycle.py [--clients 10,100] [--workers 1,0]

Each client is a files source (3 shops, 5 products, a day of sales per file) registered in a
temporary project with its own schemas. A first cycle loads each client's first day (not
measured); then for every entry of --workers (1 = one client at a time, the serial figure;
0 = the default limit for this machine) a day of new sales is written for every client and
one daily cycle is measured: a Scheduler with every client due at 07:00 Paris, from the due
time until every slot is finished. Each scheduler starts its worker processes cold (imports,
SQLMesh contexts), as a daily scheduler with more clients than warm contexts does anyway.
Printed: wall time, per-client wall time, CPU seconds of the scheduler and its workers (not
Postgres'), peak RSS of this process and its workers (not Postgres', which runs detached),
the load average at the end, and the target.
Target: 1,000 clients within 60 minutes (3.6 s per client) on 2 cores, flat from 10 to 1,000.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

TARGET_PER_CLIENT = 3600 / 1000
FIRST_DUE = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)  # 07:00 in Paris

CLIENT_YAML = """name: Cycle {n}
timezone: Europe/Paris
schedule: "0 7 * * *"
sources:
  - name: pos
    connector: files
    streams:
      - name: shops
        path: {data}/shops.csv
        entity: locations
        primary_key: [shop_id]
        columns: {{location_id: shop_id, name: shop_name}}
      - name: sales
        path: {data}/sales_*.csv
        entity: order_lines
        primary_key: [receipt, line]
        columns: {{order_id: receipt, line_number: line, ordered_at: sold_at,
                   location_id: shop_id, product_id: sku, quantity: qty,
                   line_total: total}}
"""


def write_day(folder: Path, n: int, day: datetime) -> None:
    """One day of sales of client `n`: 40 lines over its 3 shops and 5 products."""
    lines = ["receipt,line,sold_at,shop_id,sku,qty,total"]
    for i in range(40):
        sold = day.replace(hour=8) + timedelta(minutes=11 * i)
        lines.append(f"R{day:%Y%m%d}-{i // 2},{i % 2 + 1},{sold:%Y-%m-%d %H:%M},S{i % 3},"
                     f"P{(i * 7 + n) % 5},{1 + i % 3},{(1 + i % 3) * 2.5:.2f}")
    (folder / f"sales_{day:%Y%m%d}.csv").write_text("\n".join(lines) + "\n")


def tree_rss() -> int:
    """Resident bytes of this process and all its descendants."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(stat[1])
            rss[int(entry.name)] = int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    ours, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in ours:
                ours.add(child)
                frontier.append(child)
    return sum(rss.get(pid, 0) for pid in ours)


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def cycle(url: str, slugs: list[str], due: datetime, workers: int | None) -> dict[str, float]:
    """Run one daily cycle of `slugs` due at `due` through the scheduler; its figures."""
    import psycopg

    from goalpost.app.scheduler import Scheduler

    scheduler = Scheduler(url, instance=f"cycle-{due:%m%d}", backup_schedule=None,
                          workers=workers, heartbeat_seconds=10.0,
                          virtual_start=due - timedelta(seconds=1))
    peak, sampling = [0], threading.Event()

    def sample() -> None:
        while not sampling.wait(0.5):
            peak[0] = max(peak[0], tree_rss())

    sampler = threading.Thread(target=sample, daemon=True)
    cpu_before, started = cpu_seconds(), time.monotonic()
    sampler.start()
    scheduler.start()
    with psycopg.connect(url, autocommit=True) as conn:
        while conn.execute("SELECT count(*) FROM goalpost.schedule_slots WHERE due_at = %s "
                           "AND status <> 'claimed'", (due,)).fetchone()[0] < len(slugs):
            time.sleep(0.5)
        wall = time.monotonic() - started - 1.0  # the slot was due one second in
        failed = conn.execute("SELECT count(*) FROM goalpost.schedule_slots WHERE due_at = %s"
                              " AND status <> 'succeeded'", (due,)).fetchone()[0]
    scheduler.stop()
    sampling.set()
    sampler.join()
    return {"wall": wall, "cpu": cpu_seconds() - cpu_before, "peak": peak[0],
            "load": os.getloadavg()[0], "failed": failed, "workers": scheduler.workers.size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="10,100")
    parser.add_argument("--workers", default="1,0",
                        help="worker counts to measure, 0 for the default limit")
    args = parser.parse_args()
    sizes = sorted({int(n) for n in args.clients.split(",")})
    worker_counts = [int(w) for w in args.workers.split(",")]
    root = Path(tempfile.mkdtemp(prefix="goalpost-bench-cycle-"))
    os.chmod(root, 0o755)
    (root / "clients").mkdir()
    (root / "pyproject.toml").write_text("")
    os.environ["GOALPOST_HOME"] = str(root)
    os.environ["GOALPOST_STATE_DIR"] = str(root / ".goalpost")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

    from goalpost.core.warehouse.embedded import EmbeddedPostgres

    server = None
    try:
        if not os.environ.get("GOALPOST_DATABASE_URL"):
            server = EmbeddedPostgres(root / "pg")
            os.environ["GOALPOST_DATABASE_URL"] = server.start()
        url = os.environ["GOALPOST_DATABASE_URL"]
        print(f"target: 1,000 clients in 60 min on 2 cores = {TARGET_PER_CLIENT:.1f} s per "
              f"client, flat from 10 to 1,000; this machine: {os.cpu_count()} cores")
        print(f"{'clients':>7} {'workers':>7} {'wall s':>8} {'s/client':>8} {'cpu s':>8} "
              f"{'cpu s/client':>12} {'peak RSS MB':>11} {'load1':>6} {'failed':>6}")
        due = FIRST_DUE
        for size in sizes:
            slugs = [f"c{n:04d}" for n in range(size)]
            for n, slug in enumerate(slugs):
                data = root / "data" / slug
                data.mkdir(parents=True, exist_ok=True)
                if not (data / "shops.csv").exists():
                    (data / "shops.csv").write_text(
                        "shop_id,shop_name\n" + "".join(f"S{i},Shop {i}\n" for i in range(3)))
                    write_day(data, n, due)
                    (root / "clients" / f"{slug}.yaml").write_text(
                        CLIENT_YAML.format(n=n, data=data))
            first = cycle(url, slugs, due, 0)  # first runs of the new clients: not measured
            print(f"{size:>7} (first runs, not measured: {first['wall']:.0f} s wall, "
                  f"{first['failed']} failed)")
            for workers in worker_counts:
                due += timedelta(days=1)
                for n, slug in enumerate(slugs):
                    write_day(root / "data" / slug, n, due)
                got = cycle(url, slugs, due, workers or None)
                print(f"{size:>7} {got['workers']:>7} {got['wall']:>8.1f} "
                      f"{got['wall'] / size:>8.2f} {got['cpu']:>8.1f} "
                      f"{got['cpu'] / size:>12.2f} {got['peak'] / 2**20:>11.0f} "
                      f"{got['load']:>6.2f} {got['failed']:>6}", flush=True)
            due += timedelta(days=1)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
