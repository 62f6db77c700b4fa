"""Benchmark: loading a POS CSV into raw, beside a bare COPY of the same file, in one run.

    .venv/bin/python bench/load_files.py [--rows 1000000] [--repeat 3]

Writes a POS export of `--rows` lines (and one of a quarter of that, to show that memory does
not grow with the file), then for each: a bare `COPY ... (FORMAT csv)` of the file into a typed
table, and Goalpost's file load (detection, row checks, keys, jsonb, quarantine bookkeeping)
into a raw table. Each measurement runs in a fresh process so that its peak RSS is its own.
Uses GOALPOST_DATABASE_URL when set, else starts a throwaway embedded server.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

HEADER = ("receipt_no,sold_at,shop_id,channel,customer_id,line_no,sku,product_name,quantity,"
          "unit_price,discount,line_total")
TYPED = ("receipt_no text, sold_at timestamp, shop_id text, channel text, customer_id text, "
         "line_no integer, sku text, product_name text, quantity numeric, unit_price numeric, "
         "discount numeric, line_total numeric")
PRODUCTS = [("PAI-001", "Baguette", "1.25"), ("VIE-001", "Croissant", "1.35"),
            ("VIE-002", "Pain au chocolat", "1.50"), ("PAT-004", "Éclair café", "3.20"),
            ("PAI-007", "Pain de campagne, 500 g", "3.90")]


def write_export(path: Path, rows: int, seed: int = 11) -> None:
    """A POS sales export: ISO timestamps and decimal points, so a bare COPY can read it."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, 7, 0)
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\n")
        written, receipt = 0, 0
        while written < rows:
            receipt += 1
            shop = f"LYO-0{rng.randint(1, 3)}"
            at = start + timedelta(minutes=receipt // 3)
            customer = f"C{rng.randint(1, 40000):06d}" if rng.random() < 0.4 else ""
            channel = "livraison" if rng.random() < 0.1 else "en_boutique"
            for line in range(1, rng.randint(1, 4) + 1):
                if written == rows:
                    break
                sku, name, price = rng.choice(PRODUCTS)
                qty = rng.randint(1, 6)
                total = f"{qty * float(price):.2f}"
                name = f'"{name}"' if "," in name else name
                out.write(f"{shop}-{receipt:08d},{at:%Y-%m-%d %H:%M:%S},{shop},{channel},"
                          f"{customer},{line},{sku},{name},{qty},{price},0.00,{total}\n")
                written += 1


def worker(kind: str, url: str, path: str, rows: int) -> dict[str, float]:
    """One measurement, in its own process: seconds, rows/s and peak RSS."""
    import psycopg

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with psycopg.connect(url, autocommit=True) as conn:
        if kind == "copy":
            conn.execute("DROP TABLE IF EXISTS bench_typed")
            conn.execute(f"CREATE TABLE bench_typed ({TYPED})")
            started = time.perf_counter()
            statement = "COPY bench_typed FROM STDIN (FORMAT csv, HEADER true)"
            with conn.cursor() as cur, open(path, "rb") as handle, cur.copy(statement) as copy:
                while chunk := handle.read(1 << 20):
                    copy.write(chunk)
            seconds = time.perf_counter() - started
            loaded = conn.execute("SELECT count(*) FROM bench_typed").fetchone()[0]
            conn.execute("DROP TABLE bench_typed")
        else:
            from goalpost.core.registry.models import FileStream
            from goalpost.core.warehouse import tenants
            from goalpost.core.warehouse.migrations import migrate
            from goalpost.pipelines.files.loader import load_file_stream

            migrate(conn)
            tenants.provision(conn, "bench")
            conn.execute("DROP TABLE IF EXISTS bench_raw.pos__sales")
            conn.execute("DELETE FROM goalpost.source_files WHERE client = 'bench'")
            stream = FileStream(name="sales", path=path, entity="order_lines",
                                primary_key=["receipt_no", "line_no"],
                                columns={"order_id": "receipt_no", "line_number": "line_no",
                                         "ordered_at": "sold_at", "location_id": "shop_id",
                                         "product_id": "sku"})
            started = time.perf_counter()
            result = load_file_stream(conn, slug="bench", source="pos", stream=stream,
                                      root=Path(path).parent, run_id=1)
            seconds = time.perf_counter() - started
            if result.problems or result.rows_quarantined:
                raise SystemExit(f"load problems: {result.problems}")
            loaded = result.rows_loaded
            tenants.deprovision(conn, "bench")
    if loaded != rows:
        raise SystemExit(f"{kind} loaded {loaded} rows, expected {rows}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "rows_per_s": rows / seconds, "peak_rss_mb": peak / 1024,
            "baseline_rss_mb": baseline / 1024}


def measure(kind: str, url: str, path: Path, rows: int) -> dict[str, float]:
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root))
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, "--url", url, "--file", str(path),
         "--rows", str(rows)],
        capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{kind} measurement failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.url, args.file, args.rows)))
        return

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from goalpost.core.warehouse.embedded import EmbeddedPostgres

    scratch = Path(tempfile.mkdtemp(prefix="goalpost-bench-"))
    os.chmod(scratch, 0o755)
    server = None
    url = os.environ.get("GOALPOST_DATABASE_URL")
    try:
        if not url:
            server = EmbeddedPostgres(scratch / "pg")
            url = server.start()
        sizes = sorted({max(args.rows // 4, 1), args.rows})
        print(f"{'rows':>10} {'method':18} {'seconds':>8} {'rows/s':>10} {'peak RSS':>9}")
        best: dict[tuple[int, str], dict[str, float]] = {}
        for rows in sizes:
            path = scratch / f"pos_sales_{rows}.csv"
            write_export(path, rows)
            size_mb = path.stat().st_size / 1e6
            print(f"{rows:>10,} file {size_mb:.0f} MB")
            # Interleaved, so that both methods see the same moments of a noisy machine.
            for _ in range(args.repeat):
                for kind, label in (("copy", "bare COPY (typed)"), ("raw", "goalpost raw load")):
                    got = measure(kind, url, path, rows)
                    print(f"{rows:>10,} {label:18} {got['seconds']:8.2f} "
                          f"{got['rows_per_s']:>10,.0f} {got['peak_rss_mb']:7.0f} MB")
                    if (rows, kind) not in best or got["seconds"] < best[rows, kind]["seconds"]:
                        best[rows, kind] = got
            path.unlink()
        print()
        for rows in sizes:
            copy, raw = best[rows, "copy"], best[rows, "raw"]
            print(f"{rows:>10,} rows, best of {args.repeat}: bare COPY {copy['rows_per_s']:,.0f} "
                  f"rows/s, raw load {raw['rows_per_s']:,.0f} rows/s, ratio "
                  f"{raw['rows_per_s'] / copy['rows_per_s']:.2f} (target >= 0.50); raw load "
                  f"peak RSS {raw['peak_rss_mb']:.0f} MB (after imports "
                  f"{raw['baseline_rss_mb']:.0f} MB)")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
