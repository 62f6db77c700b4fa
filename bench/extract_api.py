"""Benchmark: a 200,000-record paged extract from a vendor emulator into raw.

    .venv/bin/python bench/extract_api.py [--records 200000] [--vendor lightspeed_x|square]

Generates PanPan sales until there are enough, serves them from the vendor's emulator in a
process of its own (as a vendor's server would be: not sharing our interpreter) and runs the
real sales stream (Lightspeed's version feed, or Square's SearchOrders with cursor pages;
upserts with the cursor in the same transaction) into a throwaway warehouse, twice: with pages
fetched ahead by a background thread while the previous page loads, and fetched in turn.
Prints records/s for both.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

VENDORS = {
    "lightspeed_x": {"stream": "sales", "parents": [],
                     "settings": {"access_token": "bench-token"}},
    "square": {"stream": "orders", "parents": ["locations"],
               "settings": {"access_token": "bench-token", "start_date": "2000-01-01T00:00:00Z",
                            "square_version": "2024-07-17"}},
}


def _serve(vendor: str, data: object, now: object, pipe: object) -> None:
    """The emulator's process: serve until terminated."""
    import importlib

    module = importlib.import_module(f"goalpost.sandbox.emulators.{vendor}")
    cls = next(getattr(module, n) for n in dir(module)
               if n.endswith("Emulator") and n != "Emulator")
    emulator = cls(data, token="bench-token", now=now)
    pipe.send(emulator.start())
    threading.Event().wait()


def _serve_in_child(vendor: str, data: object, now: object) -> tuple[str, object]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=_serve, args=(vendor, data, now, child), daemon=True)
    process.start()
    return parent.recv(), process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--vendor", choices=sorted(VENDORS), default="lightspeed_x")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

    import psycopg

    from goalpost.core.warehouse import tenants
    from goalpost.core.warehouse.embedded import EmbeddedPostgres
    from goalpost.core.warehouse.migrations import migrate
    from goalpost.pipelines.connectors.engine import run_stream
    from goalpost.pipelines.connectors.http import ApiClient
    from goalpost.pipelines.connectors.manifest import load_manifest
    from goalpost.sandbox.demo.generator import generate_panpan
    from goalpost.sandbox.emulators.panpan import PanPanData

    scratch = Path(tempfile.mkdtemp(prefix="goalpost-bench-api-"))
    os.chmod(scratch, 0o755)
    server = None
    url = os.environ.get("GOALPOST_DATABASE_URL")
    try:
        # About 540 receipts a day at scale 1: enough days for the records asked for.
        days = max(30, int(args.records / 520) + 10)
        started = time.perf_counter()
        generate_panpan(scratch / "data", end=date(2025, 12, 31), days=days)
        data = PanPanData.load(scratch / "data")
        data.orders = data.orders[:args.records]
        print(f"data: {len(data.orders):,} orders over {days} days "
              f"({time.perf_counter() - started:.1f} s to generate and load)")
        if not url:
            server = EmbeddedPostgres(scratch / "pg")
            url = server.start()
        vendor = VENDORS[args.vendor]
        manifest = load_manifest(args.vendor)
        now = data.orders[-1].sold_at + timedelta(seconds=1)
        emulator_url, emulator = _serve_in_child(args.vendor, data, now)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                migrate(conn)
                settings = dict(vendor["settings"], base_url=emulator_url,
                                page_size=args.page_size)
                # The first pass (untimed) warms the emulator, which renders each record once.
                for label, prefetch in (("warm-up", 2), ("pages fetched ahead", 2),
                                        ("pages fetched in turn", 0)):
                    slug = "bench_ahead" if prefetch else "bench_turn"
                    tenants.deprovision(conn, slug)
                    tenants.provision(conn, slug)
                    client = ApiClient(manifest, settings, slug=slug, source="pos")
                    try:
                        for parent in vendor["parents"]:
                            run_stream(conn, client, slug=slug, source="pos", manifest=manifest,
                                       name=parent, settings=settings, run_id=1)
                        began = time.perf_counter()
                        result = run_stream(conn, client, slug=slug, source="pos",
                                            manifest=manifest, name=vendor["stream"],
                                            settings=settings, run_id=1, prefetch=prefetch)
                        seconds = time.perf_counter() - began
                    finally:
                        client.close()
                    stored = conn.execute(
                        f"SELECT count(*) FROM {slug}_raw.pos__{vendor['stream']}").fetchone()
                    if result.records != len(data.orders) or stored[0] != len(data.orders):
                        raise SystemExit(f"expected {len(data.orders)} records, got "
                                         f"{result.records} received and {stored[0]} stored")
                    if label != "warm-up":
                        print(f"{label:22} {result.records:>9,} records  {result.pages:>5} "
                              f"pages  {seconds:6.2f} s  {result.records / seconds:>9,.0f} "
                              "records/s")
                    tenants.deprovision(conn, slug)
        finally:
            emulator.terminate()
            emulator.join()
        print("target: at least 20,000 records/s with pages fetched ahead")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
