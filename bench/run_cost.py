"""Benchmark: what a `goalpost` run costs when little or nothing is new (issue 19).

    .venv/bin/python bench/run_cost.py [--only demo,retail] [--save after.json]
                                       [--before before.json]

Each case is the CLI a consultant types, started as a process of its own in a fresh project
home on one embedded Postgres (or GOALPOST_DATABASE_URL), so start-up (imports, emulators,
SQLMesh contexts) is counted as the user pays it:

- demo: `goalpost demo` from nothing (generation of two years of exports included), again
  with nothing new, then again after one new day of sales was exported;
- retail: a file-only client reading the Online Retail II dev file (540k lines), `goalpost
  run` first, then again with nothing new.

Each line prints wall seconds, CPU seconds (the process and every process it waited for),
peak resident memory of the whole process tree, and the load average of the last minute at
the start and at the end (the machine is shared: read CPU seconds and ratios before wall
time), beside the target of issue 19, the figures the issue measured, and, with `--before`,
the figures a `--save` of an earlier version wrote.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import psutil

GOALPOST = str(Path(sys.executable).with_name("goalpost"))
RETAIL_FILE = Path("/work/shared/data/online_retail_ii_2009_2010.csv.gz")
RETAIL_YAML = """name: Online Retail
timezone: Europe/London
currency: GBP
country: GB
sources:
  - name: shop
    connector: files
    streams:
      - name: lines
        path: {path}
        entity: order_lines
        columns:
          order_id: Invoice
          ordered_at: InvoiceDate
          location_id: "=online"
          product_id: StockCode
          product_name: Description
          quantity: Quantity
          unit_price: Price
          customer_id: Customer ID
          country: Country
"""
# case: (target wall seconds, target peak MB or None); issue 19's own measurements.
TARGETS = {
    "demo first run": (90.0, None),
    "demo no-op": (3.0, 400.0),
    "demo one new day": (8.0, None),
    "retail first run": (40.0, None),
    "retail no-op": (2.0, None),
}
ISSUE = {
    "demo first run": "132 s",
    "demo no-op": "25 s, 1,080 MB",
    "demo one new day": "-",
    "retail first run": "-",
    "retail no-op": "16 s",
}


@dataclass
class Cost:
    case: str
    wall: float
    cpu: float
    peak_mb: float
    load_start: float
    load_end: float
    status: int


def measure(case: str, args: list[str], env: dict[str, str], cwd: Path) -> Cost:
    """Run one command; its wall and CPU time and the peak memory of its process tree."""
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    process = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    root = psutil.Process(process.pid)
    peak = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    output = process.stdout.read().decode(errors="replace")
    if process.returncode != 0:
        print(output[-3000:], file=sys.stderr)
    return Cost(case, wall, usage.ru_utime + usage.ru_stime, peak / 2**20, load_start,
                os.getloadavg()[0], process.returncode)


def demo_new_day(home: Path) -> None:
    """Export one more day of sales beside the demo's files, as a POS would."""
    from goalpost.sandbox.demo.generator import generate_panpan

    folder = home / ".goalpost" / "demo" / "panpan"
    params = json.loads((folder / "ground_truth.json").read_text())["params"]
    end = date.fromisoformat(params["end"]) + timedelta(days=1)
    extra = home / "extra-day"
    generate_panpan(extra, end=end, days=1, scale=params["scale"], seed=99)
    new = sorted(extra.glob("sales_*.csv.gz"))[-1]
    shutil.copy(new, folder / f"sales_{end.isoformat()}_extra.csv.gz")


def print_costs(costs: list[Cost], before: dict[str, dict]) -> None:
    print(f"{'case':18} {'wall s':>7} {'CPU s':>7} {'peak MB':>8} {'load 1m':>11} "
          f"{'target':>14} {'before (--before)':>26} {'issue 19':>15}")
    for c in costs:
        wall_t, mem_t = TARGETS[c.case]
        target = f"<= {wall_t:g} s" + (f", {mem_t:g} MB" if mem_t else "")
        b = before.get(c.case)
        was = (f"{b['wall']:.1f} s, {b['cpu']:.1f} CPU, {b['peak_mb']:,.0f} MB" if b else "-")
        flag = "" if c.status == 0 else f"  FAILED (exit {c.status})"
        print(f"{c.case:18} {c.wall:7.1f} {c.cpu:7.1f} {c.peak_mb:8,.0f} "
              f"{c.load_start:5.2f}-{c.load_end:<5.2f} {target:>14} {was:>26} "
              f"{ISSUE[c.case]:>15}{flag}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="demo,retail")
    parser.add_argument("--save", type=Path, help="write the figures as JSON")
    parser.add_argument("--before", type=Path, help="figures a --save of before wrote")
    parser.add_argument("--keep", action="store_true", help="keep the project home")
    args = parser.parse_args()
    only = set(args.only.split(","))
    from goalpost.core.warehouse.embedded import EmbeddedPostgres

    home = Path(tempfile.mkdtemp(prefix="goalpost-bench-run-cost-"))
    os.chmod(home, 0o755)
    (home / "clients").mkdir()
    env = {**os.environ, "GOALPOST_HOME": str(home),
           "GOALPOST_STATE_DIR": str(home / ".goalpost")}
    server = None
    costs: list[Cost] = []
    try:
        if not env.get("GOALPOST_DATABASE_URL"):
            server = EmbeddedPostgres(home / "pg")
            env["GOALPOST_DATABASE_URL"] = server.start()
        os.environ.update(env)
        if "demo" in only:
            demo = [GOALPOST, "demo"]
            costs.append(measure("demo first run", demo, env, home))
            costs.append(measure("demo no-op", demo, env, home))
            demo_new_day(home)
            costs.append(measure("demo one new day", demo, env, home))
        if "retail" in only:
            if not RETAIL_FILE.exists():
                raise SystemExit(f"the dev file is not on this machine: {RETAIL_FILE}")
            (home / "clients" / "retail.yaml").write_text(RETAIL_YAML.format(path=RETAIL_FILE))
            run = [GOALPOST, "run", "retail"]
            costs.append(measure("retail first run", run, env, home))
            costs.append(measure("retail no-op", run, env, home))
        before = json.loads(args.before.read_text()) if args.before else {}
        print_costs(costs, before)
        if args.save:
            args.save.write_text(json.dumps({c.case: asdict(c) for c in costs}, indent=1))
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"project home kept: {home}")


if __name__ == "__main__":
    main()
