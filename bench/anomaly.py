"""Benchmark: the anomalies extension against the demo's planted events.

    .venv/bin/python bench/anomaly.py [--days 730] [--scale 1.0] [--seed 7[,1,2...]]
                                      [--end 2025-12-31] [--show]

Generates PanPan's POS exports, computes from the files the rows the extension reads from the
marts (revenue and orders per day in total, per shop and per channel as kpi_daily has them,
per shop x channel as daily_sales, and revenue per shop x product as product_sales_daily):
the marts' own figures (tests/test_panpan_end_to_end.py checks kpi_daily and daily_sales
against the files), without a warehouse or SQLMesh. Runs the detector on them and prints
recall and precision on the planted anomalies (revenue and orders, severity medium or high;
goalpost.demo.scoring says what counts), per seed and pooled, per kind of event, the false
alerts per severity (rows on a day and series no planted event moved) per series and quarter,
the time the detector took, and with --show the rows it got wrong.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from goalpost.sandbox.demo.generator import GroundTruth


def slices(folder: Path) -> pd.DataFrame:
    """The extension's input (SLICES_SQL's columns) for revenue and orders, from the files."""
    lines = pd.concat(
        pd.read_csv(path, sep=";", decimal=",", usecols=[
            "receipt_no", "sold_at", "shop_id", "channel", "sku", "line_total"],
            dtype={"receipt_no": str, "sold_at": str, "shop_id": str, "channel": str,
                   "sku": str, "line_total": float})
        for path in sorted(folder.glob("sales_*.csv.gz")))
    lines["date"] = pd.to_datetime(lines["sold_at"].str[:10], format="%d/%m/%Y")
    sales = lines[~lines["receipt_no"].str.startswith("RET-")]
    parts = []
    for group, source, location, channel in (
            ([], "kpi", None, None), (["shop_id"], "kpi", "shop_id", None),
            (["channel"], "kpi", None, "channel"),
            (["shop_id", "channel"], "sales", "shop_id", "channel")):
        keys = ["date", *group]
        for metric, values in (("revenue", lines.groupby(keys)["line_total"].sum()),
                               ("orders", sales.groupby(keys)["receipt_no"].nunique())):
            frame = values.rename("value").reset_index()
            parts.append(pd.DataFrame({
                "source": source, "metric": metric, "date": frame["date"],
                "location": frame[location] if location else None,
                "channel": frame[channel] if channel else None, "product": None,
                "value": frame["value"].astype(float)}))
    products = lines.groupby(["date", "shop_id", "sku"])["line_total"].sum().reset_index()
    parts.append(pd.DataFrame({
        "source": "product", "metric": "revenue", "date": products["date"],
        "location": products["shop_id"], "channel": None, "product": products["sku"],
        "value": products["line_total"]}))
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", default="7", help="a seed, or several: 7,1,2")
    parser.add_argument("--end", type=date.fromisoformat, default=date(2025, 12, 31))
    parser.add_argument("--show", action="store_true", help="list the rows it got wrong")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

    from goalpost.extensions.anomalies import detect
    from goalpost.sandbox.demo.scoring import Tally, score

    seeds = [int(seed) for seed in args.seed.split(",")]
    totals: dict[str, Tally] = {}
    passed = 0
    false_alerts = {severity: 0 for severity in ("low", "medium", "high")}
    series_days = 0
    print(f"PanPan, {args.days} days to {args.end}, scale {args.scale}; scored: revenue and "
          "orders, severity medium or high")
    for seed in seeds:
        truth, data, generated, read = _generate(args.days, args.scale, seed, args.end)
        started = time.perf_counter()
        anomalies = detect(data, country="FR")
        detected = time.perf_counter() - started
        result = score(truth, anomalies)
        tally = result.overall
        everything = score(truth, anomalies, severities=("low", "medium", "high"))
        for row in everything.false_alarms:
            false_alerts[row["severity"]] += 1
        kpi = data[(data["source"] == "kpi") & data["metric"].isin(["revenue", "orders"])]
        series_days += len(kpi)
        passed += tally.recall >= 0.9 and tally.precision >= 0.8
        series = data[data["source"] == "kpi"].groupby(
            ["metric", "location", "channel"], dropna=False).ngroups
        print(f"seed {seed}: {len(truth.anomalies)} events, found {tally.found} (recall "
              f"{tally.recall:.2f}); {tally.rows} rows, {tally.correct} correct (precision "
              f"{tally.precision:.2f}); {len(result.misnamed)} misnamed; detect {detected:.2f}s "
              f"for {series} series x {data['date'].nunique()} days ({len(anomalies)} "
              f"anomalies of any severity; generate {generated:.1f}s, read {read:.1f}s)")
        if result.missed:
            print("  missed: " + ", ".join(f"{e.date} {e.shop_id} {e.kind} x{e.factor}"
                                           for e in result.missed))
        for name, part in [("all", tally), *result.by_kind.items(),
                           *((f"{k} events", t) for k, t in result.by_target.items())]:
            total = totals.setdefault(name, Tally())
            for field in ("events", "found", "rows", "correct"):
                setattr(total, field, getattr(total, field) + getattr(part, field))
        if args.show:
            for row in result.false_alarms + result.misnamed:
                top = [(c["dimension"], c["value"], c["share"]) for c in row["contributors"]]
                print(f"  {row['date']} {row['metric']:8} {row['dimension']:8} "
                      f"{row['dimension_value']:12} {row['direction']:5} {row['severity']:6} "
                      f"score {row['score']:.2f} value {row['value']:.0f} expected "
                      f"{row['expected']:.0f} {top[:3]} {row.get('planted', '')}")

    print(f"\n{len(seeds)} seed(s), {passed} with recall >= 0.9 and precision >= 0.8")
    rates = ", ".join(f"{severity} {count} ({count / series_days * 91:.3f} per series per "
                      f"quarter)" for severity, count in false_alerts.items())
    print(f"false alerts on {series_days:,} series-days of revenue and orders: {rates}")
    print(f"{'':16} {'events':>6} {'found':>5} {'recall':>6}   {'rows':>4} {'correct':>7} "
          f"{'precision':>9}")
    for name, tally in totals.items():
        rows = (f"{tally.rows:>4} {tally.correct:>7} {tally.precision:>9.2f}"
                if name in ("all", "drop", "spike") else "")
        print(f"{name:16} {tally.events:>6} {tally.found:>5} {tally.recall:>6.2f}   {rows}")


def _generate(days: int, scale: float, seed: int,
              end: date) -> tuple[GroundTruth, pd.DataFrame, float, float]:
    """The ground truth, the detector's input from the files, and the seconds each took."""
    from goalpost.sandbox.demo.generator import generate_panpan

    with tempfile.TemporaryDirectory(prefix="goalpost-bench-anomaly-") as tmp:
        started = time.perf_counter()
        truth = generate_panpan(Path(tmp), end=end, days=days, scale=scale, seed=seed)
        generated = time.perf_counter() - started
        started = time.perf_counter()
        data = slices(Path(tmp))
        return truth, data, generated, time.perf_counter() - started


if __name__ == "__main__":
    main()
