"""Benchmark: the anomaly detector (goalpost.extensions.detector) on the Numenta Anomaly
Benchmark, scored the way NAB scores (bench/nab.py).

    OMP_NUM_THREADS=1 .venv/bin/python bench/anomaly_nab.py [--workers 2] [--files N]

First checks the scorer: the null detector (never fires) must score 0 and a detector firing
on the first row of every window 100, on every profile. Then runs the detector causally on
every file (each row judged on the rows before it; the rows are read as a sequence at the
file's usual step, as NAB does) and prints, per profile, the normalised score at the best
threshold for the whole corpus (one threshold, as NAB chooses it) beside NAB's published
scoreboard, the score per category at that threshold, the score at the extension's own
severity levels (low, medium, high), the false alerts per 10,000 points of normal data (rows
after the probation and outside the windows and one window's width after them), and the time
taken (wall and CPU seconds).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nab  # noqa: E402

# NAB v1.1's scoreboard (its README): standard, reward low FP, reward low FN.
PUBLISHED = (
    ("perfect", 100.0, 100.0, 100.0), ("ARTime", 74.9, 65.1, 80.4),
    ("Numenta HTM", 70.5, 62.6, 75.2), ("CAD OSE", 69.9, 67.0, 73.2),
    ("earthgecko Skyline", 58.2, 46.2, 63.9), ("KNN CAD", 58.0, 43.4, 64.8),
    ("Relative Entropy", 54.6, 47.6, 58.8), ("Random Cut Forest", 51.7, 38.4, 59.7),
    ("Twitter ADVec", 47.1, 33.6, 53.5), ("Windowed Gaussian", 39.6, 20.9, 47.4),
    ("Etsy Skyline", 35.7, 27.1, 44.5), ("Bayesian Changepoint", 17.7, 3.2, 32.2),
    ("null", 0.0, 0.0, 0.0),
)

# The two published detectors per category (standard profile), normalised like the corpus
# from the per-file raw scores NAB publishes (results/numenta/numenta_standard_scores.csv and
# results/contextOSE/contextOSE_standard_scores.csv of numenta/NAB); artificialNoAnomaly has
# no window, so its raw score (the false positives' cost) is given instead.
PUBLISHED_CATEGORIES = {
    "artificialNoAnomaly": (-0.44, -0.44), "artificialWithAnomaly": (70.2, 69.5),
    "realAWSCloudwatch": (73.4, 71.9), "realAdExchange": (76.9, 71.1),
    "realKnownCause": (55.5, 45.8), "realTraffic": (82.5, 89.3), "realTweets": (68.0, 74.0),
}


def _detect(item: tuple[str, np.ndarray, str]) -> tuple[np.ndarray, float]:
    """The alert scores of one file and the CPU seconds they took."""
    from goalpost.extensions.detector import detect_series

    _, values, frequency = item
    started = time.process_time()
    found = detect_series(values, frequency=frequency)
    return found.alert_scores(), time.process_time() - started


def _normal(data: nab.DataFile) -> np.ndarray:
    """Rows that are neither probationary nor in or just after a window."""
    normal = np.ones(len(data.values), bool)
    normal[:data.probation] = False
    for first, last in data.windows:
        normal[first:last + (last - first) + 2] = False
    return normal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--files", type=int, default=None, help="only the first N files")
    args = parser.parse_args()

    from goalpost.extensions.detector import SEVERITIES
    from goalpost.extensions.forecasting import map_parallel
    from goalpost.extensions.seasons import modal_step

    files = nab.corpus()[:args.files]
    scorer = nab.Scorer(files)
    profiles = nab.profiles()
    points = sum(len(f.values) for f in files)
    print(f"NAB: {len(files)} files, {points:,} rows, {scorer.windows} windows")

    null, perfect = nab.null_scores(files), nab.perfect_scores(files)
    checks = []
    for profile in profiles:
        for name, scores in (("null", null), ("perfect", perfect)):
            result = scorer.score(scores, profile, scorer.best(scores, profile))
            checks.append(f"{name} {result.normalised:.1f}")
        checks[-2:] = [f"{profile.name}: " + ", ".join(checks[-2:])]
    print("scorer check (must be 0 and 100): " + "; ".join(checks))

    started, cpu_started = time.perf_counter(), time.process_time()
    items = [(f.name, f.values, modal_step(f.timestamps)) for f in files]
    out = map_parallel(_detect, items, args.workers)
    wall = time.perf_counter() - started
    cpu = sum(seconds for _, seconds in out) + time.process_time() - cpu_started
    scores = [s for s, _ in out]
    print(f"detector: {wall:.1f} s wall, {cpu:.1f} s CPU in the detector "
          f"({args.workers} worker(s)), {points / wall:,.0f} rows/s")

    best = {p.name: scorer.best(scores, p) for p in profiles}
    print(f"\n{'detector':22} {'standard':>9} {'low FP':>8} {'low FN':>8}")
    ours = [scorer.score(scores, p, best[p.name]).normalised for p in profiles]
    rows = [*PUBLISHED[:-1], ("Goalpost (this run)", *ours), PUBLISHED[-1]]
    for name, *values in sorted(rows, key=lambda r: -r[1]):
        print(f"{name:22} " + " ".join(f"{v:>8.1f}" for v in values))

    print("\nper profile at its best threshold:")
    for profile in profiles:
        result = scorer.score(scores, profile, best[profile.name])
        print(f"  {profile.name:20} threshold {best[profile.name]:.4f}: {result.subset()}")

    categories = sorted({f.category for f in files})
    print(f"\nper category (standard profile, threshold {best['standard']:.4f}), beside "
          f"Numenta HTM and CAD OSE:")
    for category in categories:
        subset = np.array([f.category == category for f in files])
        result = scorer.score(scores, profiles[0], best["standard"], subset)
        count = int(subset.sum())
        htm, cad = PUBLISHED_CATEGORIES.get(category, (float("nan"), float("nan")))
        ours = (result.subset() if result.windows else
                f"raw {result.raw:6.2f}  (no windows, {result.false_positives} FP)")
        digits = 1 if result.windows else 2  # normalised scores, or the raw cost
        print(f"  {category:22} {count:>2} files  {ours:34}  HTM {htm:6.{digits}f}  "
              f"CAD OSE {cad:6.{digits}f}")

    print("\nat the extension's severity levels:")
    normal = np.concatenate([_normal(f) for f in files])
    everything = np.concatenate(scores)
    for severity, level in SEVERITIES:
        cells = [scorer.score(scores, p, level).normalised for p in profiles]
        rate = np.sum(everything[normal] >= level) / normal.sum() * 1e4
        print(f"  {severity:6} (score >= {level:.2f}): standard {cells[0]:5.1f}, low FP "
              f"{cells[1]:5.1f}, low FN {cells[2]:5.1f}; {rate:5.1f} false alerts per 10,000 "
              f"points of normal data (one per {1e4 / rate:,.0f})" if rate else "")


if __name__ == "__main__":
    main()
