"""Benchmark: a 200,000-record paged extract from a vendor emulator into raw, and the API
calls Zoho Inventory's paced extract spends per changed item.

    .venv/bin/python bench/extract_api.py [--records 200000] [--vendor lightspeed_x|square]
                                          [--zoho-items 2000] [--zoho-changed 100]

Generates PanPan sales until there are enough, serves them from the vendor's emulator in a
process of its own (as a vendor's server would be: not sharing our interpreter) and runs the
real sales stream (Lightspeed's version feed, or Square's SearchOrders with cursor pages;
upserts with the cursor in the same transaction) into a throwaway warehouse, twice: with pages
fetched ahead by a background thread while the previous page loads, and fetched in turn.
Prints records/s for both.

Then Zoho: an organisation of `--zoho-items` items (the emulator enforcing 100 calls a minute,
on a clock that the connector's pacing moves, so no real minute is waited), read once whole,
then again after `--zoho-changed` items' stock moved: prints the calls of each run, the calls
per changed item of the second, the minutes the pacing spread them over, and the runs a
free-plan day (1,000 calls) holds.
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


class _Clock:
    """The time the Zoho emulator counts its minute in, moved by the connector's pacing."""

    def __init__(self) -> None:
        self.now, self.waited = 0.0, 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.waited += seconds


def zoho_paced(url: str, items: int, changed: int) -> None:
    """Calls per changed item of Zoho's paced extract (see the module docstring)."""
    from decimal import Decimal

    import psycopg

    from goalpost.core.warehouse import tenants
    from goalpost.pipelines.connectors.engine import run_stream
    from goalpost.pipelines.connectors.http import ApiClient
    from goalpost.pipelines.connectors.manifest import load_manifest
    from goalpost.sandbox.emulators.panpan import PanPanData, Product, Shop, StockCount
    from goalpost.sandbox.emulators.zoho_inventory import ZohoInventoryEmulator

    shops = [Shop(f"S{n}", f"Shop {n}", "Lyon", date(2024, 1, 1)) for n in range(3)]
    products = [Product(f"SKU-{n:05d}", f"Item {n}", "misc", Decimal("2.50"), Decimal("1.00"),
                        5) for n in range(items)]
    counts = [StockCount(date(2025, 1, 1), s.shop_id, p.sku, 10) for s in shops
              for p in products]
    counts += [StockCount(date(2025, 1, 2), shops[0].shop_id, p.sku, 9)
               for p in products[:changed]]
    data = PanPanData(shops, products, [], [], counts)
    clock = _Clock()
    secrets = {"client_id": "1000.BENCH", "client_secret": "bench", "refresh_token": "1000.r"}
    emulator = ZohoInventoryEmulator(data, now=counts[0].counted_at + timedelta(hours=1),
                                     per_minute_limit=100, clock=clock, **secrets)
    manifest = load_manifest("zoho_inventory")
    settings = {"organization_id": emulator.organization_id, "base_url": None,
                "accounts_url": None, "daily_budget": 1_000_000, **secrets}
    with emulator, psycopg.connect(url, autocommit=True) as conn:
        settings.update(base_url=emulator.url, accounts_url=emulator.url)
        tenants.deprovision(conn, "bench_zoho")
        tenants.provision(conn, "bench_zoho")
        calls = []
        for label in ("first run (every item)", f"after {changed:,} items' stock moved"):
            client = ApiClient(manifest, settings, slug="bench_zoho", source="stock",
                               sleep=clock.sleep, clock=clock)
            before, waited = emulator.api_calls, clock.waited
            try:
                for stream in ("items", "item_stock"):
                    run_stream(conn, client, slug="bench_zoho", source="stock",
                               manifest=manifest, name=stream, settings=settings, run_id=1,
                               prefetch=0)
            finally:
                client.close()
            spent = emulator.api_calls - before
            calls.append(spent)
            print(f"zoho {label:32} {spent:>6,} calls, paced over "
                  f"{(clock.waited - waited) / 60:5.1f} min (no 429: "
                  f"{client.retries == 0})")
            emulator.now = counts[-1].counted_at + timedelta(hours=1)
            clock.now += 60.0  # runs are hours apart: the next starts with a fresh minute
        tenants.deprovision(conn, "bench_zoho")
    print(f"zoho calls per changed item: {calls[1] / changed:.2f} "
          f"({calls[1]:,} calls for {changed:,} changed of {items:,}: one list page per 200 "
          f"items, one detail per changed item); a free-plan day of 1,000 calls holds "
          f"{1000 // max(calls[1], 1)} such runs")
    print("target: about 1 call per changed item plus one per 200 items, no call refused")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--vendor", choices=sorted(VENDORS), default="lightspeed_x")
    parser.add_argument("--zoho-items", type=int, default=2000)
    parser.add_argument("--zoho-changed", type=int, default=100)
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
        zoho_paced(url, args.zoho_items, args.zoho_changed)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
