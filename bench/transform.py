"""Benchmark: SQLMesh plan and run times as the number of clients grows.

    .venv/bin/python bench/transform.py [--clients 1,10,50]

Each client reads the same small PanPan file exports (60 days, scale 0.05) through its own
file source, into its own schemas, with its own SQLMesh context and state (goalpost.transform
keeps one warm context per client in a process, as the scheduler does). For each number of
clients it prints: the first run of the new clients (extract + cold plan and apply), a run of
one client with nothing new (warm context), and a run of one client after one new day of
data (warm context, the new file loaded, its lines merged and the other models restated);
each as the whole `goalpost run` and, in brackets, its SQLMesh plan and apply. Target: a warm
run of one client at most 1.5 s with 50 clients in the warehouse.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

CLIENT_YAML = """name: Bench {n}
timezone: Europe/Paris
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
        path: {data}/sales_*.csv.gz
        entity: order_lines
        primary_key: [receipt_no, line_no]
        columns: {{order_id: receipt_no, line_number: line_no, ordered_at: sold_at,
                   location_id: shop_id, product_id: sku}}
"""


def sqlmesh_seconds(result) -> float:  # noqa: ANN001 - goalpost.orchestrator.RunResult
    """The SQLMesh plan and apply of a run (its transform step)."""
    return next(s.seconds for s in result.steps if s.kind == "transform")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="1,10,50")
    args = parser.parse_args()
    steps = sorted({int(n) for n in args.clients.split(",")})
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    root = Path(tempfile.mkdtemp(prefix="goalpost-bench-transform-"))
    os.chmod(root, 0o755)
    (root / "clients").mkdir()
    (root / "pyproject.toml").write_text("")
    os.environ["GOALPOST_HOME"] = str(root)
    os.environ["GOALPOST_STATE_DIR"] = str(root / ".goalpost")

    from goalpost.app.orchestrator import run_client
    from goalpost.core.warehouse.embedded import EmbeddedPostgres
    from goalpost.sandbox.demo.generator import generate_panpan

    server = None
    try:
        if not os.environ.get("GOALPOST_DATABASE_URL"):
            server = EmbeddedPostgres(root / "pg")
            os.environ["GOALPOST_DATABASE_URL"] = server.start()
        data = root / "data"
        end = date(2025, 6, 30)
        generate_panpan(data, end=end, days=60, scale=0.05, seed=11)

        print("seconds: whole run [SQLMesh plan and apply]")
        print(f"{'clients':>7} {'first runs (per client)':>32} {'warm, nothing new':>20} "
              f"{'warm, one new day':>20}")
        made = 0
        for index, count in enumerate(steps, start=1):
            firsts, first_plans = [], []
            for n in range(made, count):
                (root / "clients" / f"bench{n:03d}.yaml").write_text(
                    CLIENT_YAML.format(n=n, data=data))
                started = time.perf_counter()
                result = run_client(f"bench{n:03d}")
                firsts.append(time.perf_counter() - started)
                if result.status != "succeeded":
                    raise SystemExit(f"bench{n:03d}: {[s.error for s in result.steps]}")
                first_plans.append(sqlmesh_seconds(result))
            made = count
            probe = "bench000"
            run_client(probe)  # make sure its context is warm
            started = time.perf_counter()
            warm_plan = sqlmesh_seconds(run_client(probe))
            warm = time.perf_counter() - started
            # One more day of sales, exported as a file of its own.
            extra = root / f"extra{index}"
            generate_panpan(extra, end=end + timedelta(days=index), days=1, scale=0.05,
                            seed=100 + index)
            new_day = sorted(extra.glob("sales_*.csv.gz"))[-1]
            target = data / f"sales_extra_{count}.csv.gz"
            shutil.copy(new_day, target)
            started = time.perf_counter()
            result = run_client(probe)
            with_day = time.perf_counter() - started
            day_plan = sqlmesh_seconds(result)
            target.unlink()  # the other clients keep the original files
            if result.rows_loaded == 0:
                raise SystemExit("the new day did not load")
            first = (f"{statistics.mean(firsts):.2f} [{statistics.mean(first_plans):.2f}] "
                     f"({len(firsts)} new)" if firsts else "-")
            print(f"{count:>7} {first:>32} {f'{warm:.2f} [{warm_plan:.2f}]':>20} "
                  f"{f'{with_day:.2f} [{day_plan:.2f}]':>20}")
        print("target: warm run of one client <= 1.5 s with 50 clients")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
