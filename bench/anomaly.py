"""Benchmark: the anomalies extension against the demo's planted events.

    .venv/bin/python bench/anomaly.py [--days 730] [--scale 1.0] [--seed 7] [--end 2025-12-31]

Generates PanPan's POS exports, computes from the files the rows the extension reads from the
marts (revenue and orders per day in total, per shop and per channel as kpi_daily has them,
per shop x channel as daily_sales, and revenue per shop x product as product_sales_daily):
the same figures as the marts, which tests/test_panpan_end_to_end.py checks against the files,
without a warehouse or SQLMesh. Runs the detector on them and prints recall and precision on
the planted anomalies (revenue and orders, severity medium or high; goalpost.demo.scoring
says what counts), per kind of event, the time the detector took, and the rows it got wrong.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd


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
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2025, 12, 31))
    parser.add_argument("--show", action="store_true", help="list the rows it got wrong")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

    from extensions.anomalies import detect
    from goalpost.demo.generator import generate_panpan
    from goalpost.demo.scoring import score

    with tempfile.TemporaryDirectory(prefix="goalpost-bench-anomaly-") as tmp:
        started = time.perf_counter()
        truth = generate_panpan(Path(tmp), end=args.end, days=args.days, scale=args.scale,
                                seed=args.seed)
        generated = time.perf_counter() - started
        started = time.perf_counter()
        data = slices(Path(tmp))
        read = time.perf_counter() - started
    started = time.perf_counter()
    anomalies = detect(data, country="FR")
    detected = time.perf_counter() - started
    result = score(truth, anomalies)

    series = data[data["source"] == "kpi"].groupby(["metric", "location", "channel"],
                                                     dropna=False).ngroups
    print(f"PanPan {truth.start} to {truth.end} ({args.days} days, scale {args.scale}, "
          f"seed {args.seed}): {len(truth.anomalies)} planted events")
    print(f"generate {generated:.1f}s, read the files {read:.1f}s, detect {detected:.2f}s "
          f"({series} kpi series, {len(data):,} input rows, {len(anomalies)} anomalies of "
          f"every severity)")
    print("scored: revenue and orders, severity medium or high")
    print(f"{'':10} {'events':>6} {'found':>5} {'recall':>6}   {'rows':>4} {'correct':>7} "
          f"{'precision':>9}")
    tallies = [("all", result.overall), *result.by_kind.items(),
               *((f"{k} events", t) for k, t in result.by_target.items())]
    for name, tally in tallies:
        rows = (f"{tally.rows:>4} {tally.correct:>7} {tally.precision:>9.2f}"
                if tally.rows or name in ("all", "drop", "spike") else "")
        print(f"{name:10} {tally.events:>6} {tally.found:>5} {tally.recall:>6.2f}   {rows}")
    print(f"misnamed rows: {len(result.misnamed)}; missed events: "
          + (", ".join(f"{e.date} {e.shop_id} {e.kind} x{e.factor}" for e in result.missed)
             or "none"))
    if args.show:
        for row in result.false_alarms + result.misnamed:
            top = [(c["dimension"], c["value"], c["share"]) for c in row["contributors"]][:3]
            print(f"  {row['date']} {row['metric']:8} {row['dimension']:8} "
                  f"{row['dimension_value']:12} {row['direction']:5} {row['severity']:6} "
                  f"score {row['score']:.2f} value {row['value']:.0f} expected "
                  f"{row['expected']:.0f} {top} {row.get('planted', '')}")


if __name__ == "__main__":
    main()
