"""Benchmark: the forecasting core (goalpost.extensions.forecasting) on the NAB series that
have a regular frequency of an hour or less, one day ahead, beside seasonal naive at the
daily period.

    OMP_NUM_THREADS=1 .venv/bin/python bench/forecast_hf.py [--days 7] [--history 28]
                                                            [--workers 2]

For each series (strictly regular timestamps, a step of an hour or less: 34 of NAB's 58) and
each of its last `--days` days as an origin (fewer when the series is short: three days of
history at least), forecasts the next day from the `--history` days before it with
forecast_series (its periods: the day and the week in points; its own backtest and
seasonal-naive guard), and scores it beside seasonal naive (the day before, repeated):
sMAPE (mean of 200|y-f|/(|y|+|f|)) and MASE (MAE over the in-sample MAE of seasonal naive at
the daily period). Prints them per series and on average over the series whose MASE is
defined (a series that never moves from one day to the next has no MASE), the share of
origins where the guard published seasonal naive, and the time taken.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nab  # noqa: E402

from goalpost.extensions.forecasting import (  # noqa: E402
    forecast_series,
    map_parallel,
    mase,
    smape,
)
from goalpost.extensions.seasons import points_per  # noqa: E402

MIN_DAYS = 3  # days of history before the first origin


def regular(data: nab.DataFile) -> str | None:
    """The series' frequency when its timestamps are strictly regular at an hour or less."""
    frequency = pd.infer_freq(data.timestamps)
    if frequency is None:
        return None
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(frequency))
    return frequency if step <= pd.Timedelta(hours=1) else None


def _series(item: tuple[str, np.ndarray, str, int, int]) -> dict:
    """One series' origins: our and seasonal naive's sMAPE and MASE, guard use, CPU."""
    name, values, frequency, days, history_days = item
    started = time.process_time()
    spans = points_per(frequency)
    day = int(round(spans["day"]))
    periods = (spans["day"], spans["week"])
    origins = min(days, len(values) // day - MIN_DAYS)
    ours, naive, guarded = [], [], 0
    for k in range(origins, 0, -1):
        origin = len(values) - k * day
        history = values[max(0, origin - history_days * day):origin]
        actual = values[origin:origin + day]
        result = forecast_series(history, period=periods, horizon=len(actual), origins=1)
        repeat = history[-day:][np.arange(len(actual)) % day]
        guarded += result.note is not None
        ours.append((smape(actual, result.mean), mase(history, actual, result.mean, day)))
        naive.append((smape(actual, repeat), mase(history, actual, repeat, day)))
    return {"name": name, "origins": origins, "ours": np.array(ours),
            "naive": np.array(naive), "guarded": guarded,
            "cpu": time.process_time() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=7, help="origins per series (days)")
    parser.add_argument("--history", type=int, default=28, help="days of history per origin")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    files = [(f, frequency) for f in nab.corpus() if (frequency := regular(f))]
    items = [(f.name, f.values, frequency, args.days, args.history) for f, frequency in files]
    started = time.perf_counter()
    results = map_parallel(_series, items, args.workers)
    wall = time.perf_counter() - started

    print(f"NAB, {len(results)} series with a regular step of an hour or less; one day ahead "
          f"from {args.history} days, {sum(r['origins'] for r in results)} origins")
    print(f"{'series':58} {'origins':>7} {'sMAPE':>7} {'SN':>7} {'MASE':>6} {'SN':>6}")
    kept = []
    for r in results:
        ours, naive = r["ours"].mean(axis=0), r["naive"].mean(axis=0)
        defined = np.all(np.isfinite(r["ours"][:, 1])) and np.all(np.isfinite(r["naive"][:, 1]))
        if defined:
            kept.append((ours, naive))
        cells = (f"{ours[1]:6.3f} {naive[1]:6.3f}" if defined else f"{'-':>6} {'-':>6}")
        print(f"{r['name']:58} {r['origins']:>7} {ours[0]:7.2f} {naive[0]:7.2f} {cells}")
    ours = np.mean([o for o, _ in kept], axis=0)
    naive = np.mean([n for _, n in kept], axis=0)
    origins = sum(r["origins"] for r in results)
    print(f"\nmean over the {len(kept)} series with a MASE: sMAPE {ours[0]:.2f} vs seasonal "
          f"naive {naive[0]:.2f}; MASE {ours[1]:.3f} vs {naive[1]:.3f} "
          f"({100 * (1 - ours[1] / naive[1]):.1f}% below seasonal naive; target 10%)")
    print(f"guard: seasonal naive published at {sum(r['guarded'] for r in results)} of "
          f"{origins} origins")
    print(f"{wall:.1f} s wall with {args.workers} worker(s), "
          f"{sum(r['cpu'] for r in results):.1f} s CPU")


if __name__ == "__main__":
    main()
