"""`goalpost demo`: the PanPan bakery end to end on whatever warehouse is configured.

Generates two years of POS exports (once per day: later runs reuse them), serves the same
business through the Square, HubSpot and Zoho Inventory emulators, registers the client from
the worked example if it is not in the registry yet, runs it like any client (files and
APIs), and summarises what landed in each layer.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from psycopg import sql

from goalpost.app import clients
from goalpost.app.orchestrator import Progress, RunResult, run_client
from goalpost.core import registry
from goalpost.core.identifiers import LAYERS, schema_name
from goalpost.core.paths import project_root
from goalpost.core.warehouse import ready
from goalpost.sandbox.demo.apis import demo_apis
from goalpost.sandbox.demo.generator import generate_panpan

SLUG = "panpan"


def demo_data_dir() -> Path:
    """Where clients/panpan.yaml expects the exports (relative to the project root)."""
    return project_root() / ".goalpost" / "demo" / SLUG


@dataclass
class DemoSummary:
    status: str
    run: RunResult
    seconds: float
    rows_per_layer: dict[str, dict[str, int]] = field(default_factory=dict)
    last_days: list[dict[str, Any]] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)

    def render(self) -> str:
        out = [f"PanPan demo: run {self.run.run_id} {self.status} in {self.seconds:.1f}s", ""]
        for layer, tables in self.rows_per_layer.items():
            total = sum(tables.values())
            out.append(f"{schema_name(SLUG, layer):18} {total:>10,} rows in {len(tables)} tables")
            out.extend(f"    {name:30} {rows:>10,}" for name, rows in tables.items())
        if self.last_days:
            out += ["", "Revenue of the last 7 days per shop (EUR):"]
            out.append("date        " + "".join(f"{loc:>22}" for loc in self.locations))
            by_day: dict[date, dict[str, Any]] = {}
            for row in self.last_days:
                by_day.setdefault(row["sales_date"], {})[row["location_name"]] = row["revenue"]
            for day, values in sorted(by_day.items()):
                cells = "".join(f"{values.get(loc, 0):>22,.2f}" for loc in self.locations)
                out.append(f"{day.isoformat()}  {cells}")
        if self.status != "succeeded":
            out += ["", "Some steps failed:"]
            out += [f"  {s.name}: {s.error}" for s in self.run.steps if s.error]
        return "\n".join(out)


def ensure_client_file() -> Path:
    """Put the worked example in the registry if the consultant has not got one, its API
    sources reading the emulators' URLs from the environment; an existing file is kept."""
    path = registry.client_path(SLUG)
    if not path.exists():
        template = resources.files("goalpost.sandbox.demo").joinpath("panpan.yaml").read_text()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template, encoding="utf-8")
    return path


def ensure_data(days: int, scale: float, progress: Progress) -> bool:
    """Generate the exports unless a set with the same parameters is there; True if generated.

    Existing data is kept even when it ends before yesterday, so that repeated demos load
    nothing new; `--fresh` regenerates up to yesterday.
    """
    folder = demo_data_dir()
    marker = folder / "ground_truth.json"
    if marker.exists():
        params = json.loads(marker.read_text()).get("params", {})
        if (params.get("days"), params.get("scale")) == (days, scale):
            progress(f"demo data {params.get('start')}..{params.get('end')} already in {folder}")
            return False
    end = date.today() - timedelta(days=1)
    progress(f"generating {days} days of PanPan POS exports up to {end} into {folder}")
    generate_panpan(folder, end=end, days=days, scale=scale, progress=progress)
    return True


def layer_counts(slug: str) -> dict[str, dict[str, int]]:
    """Row counts of every table and view in the client's layer schemas."""
    counts: dict[str, dict[str, int]] = {}
    with ready() as conn:
        for layer in LAYERS:
            schema = schema_name(slug, layer)
            names = [row[0] for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "ORDER BY table_name", (schema,))]
            counts[layer] = {
                name: conn.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(name))).fetchone()[0]
                for name in names
            }
    return counts


def run_demo(*, days: int = 730, scale: float = 1.0, fresh: bool = False,
             progress: Progress) -> DemoSummary:
    started = time.perf_counter()
    if fresh:
        with ready() as conn:
            clients.remove(conn, SLUG, keep_file=True)
        shutil.rmtree(demo_data_dir(), ignore_errors=True)
    ensure_client_file()
    regenerated = ensure_data(days, scale, progress)
    # New exports replace the old ones, so raw is reloaded from them rather than added to.
    with demo_apis(demo_data_dir()):
        result = run_client(SLUG, trigger="demo", full_refresh=regenerated, progress=progress)
    summary = DemoSummary(result.status, result, 0.0, layer_counts(SLUG))
    if "daily_sales" not in summary.rows_per_layer.get("marts", {}):
        summary.seconds = time.perf_counter() - started
        return summary  # the build failed before the marts existed: render says why
    with ready() as conn:
        rows = conn.execute(
            """SELECT sales_date, location_name, sum(revenue) AS revenue
               FROM panpan_marts.daily_sales
               WHERE sales_date > (SELECT max(sales_date) - 7 FROM panpan_marts.daily_sales)
               GROUP BY 1, 2 ORDER BY 1, 2"""
        ).fetchall()
    summary.last_days = [{"sales_date": d, "location_name": n, "revenue": r} for d, n, r in rows]
    summary.locations = sorted({row["location_name"] for row in summary.last_days})
    summary.seconds = time.perf_counter() - started
    return summary
