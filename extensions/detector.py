"""A univariate, causal anomaly detector for a regular series of any frequency.

`detect_series` judges each point only on the points before it (a streaming detector run
over history): appending points never changes what was said of the earlier ones. Per point:

1. **Expected value.** Candidates: the median of the last `local` points, and per seasonal
   period (found from the data at fixed checkpoints, extensions/seasons.py, or given) the
   median of the same phase over the last `cycles` cycles plus the median gap of the last
   `gap` points to their own seasonal baseline. Fractional periods (365.25 days, 52.18
   weeks) take the nearest point of each past cycle. Every block of `REFIT` points uses the
   candidate with the smallest mean absolute error over the points before it.
2. **How unusual the error is**: the tail probability of |error| among the last `window`
   errors of that candidate (_Tail): with a thousand of them, empirical, with an exponential
   tail beyond their 98th percentile (peaks over threshold) that also carries past the
   largest error seen, so a series whose errors are often large is not news when they are
   large again; with fewer, exponential beyond their median (a Laplace law).
3. **How extreme the value is**: the rank of the value among all the series' past values,
   on its side of the median (the highest so far is the rarest).
4. **Evidence** in log10 units, E and V the -log10 of 2 and 3: CAP + NOVELTY_WEIGHT * V when
   E >= CAP (an unusual move to an extreme of the series' history), or ERROR_WEIGHT * E if
   larger (a move so unusual it needs no extreme: a daily cycle that did not come).
   score = min(evidence / FULL_EVIDENCE, 1).
5. **Alerts**: a point alerts when its score beats every score of the `rest_hours` before it
   and those of the last SHORT_HOURS did not come within 95% of it: an episode is reported when it
   starts and again only if it gets clearly worse, so an owner is not told the same thing
   every hour. Severity (low, medium, high) is given to alerts only, from the score
   (SEVERITIES, whose false-alarm rates bench/anomaly_nab.py measures).

Not judged (score 0, no severity): the `warmup` first points, gaps (NaN), and points after
`last_complete` (a day or month still running).

Scored on the Numenta Anomaly Benchmark by bench/anomaly_nab.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from goalpost.core.errors import ConfigError
from goalpost.extensions.seasons import (
    calendar_periods,
    points_per,
    significant_periods,
    strongest_period,
)

REFIT = 50  # points per block: each block is judged with what was known at its start
TAIL_QUANTILE = 0.98  # beyond it the errors' tail is exponential
MIN_EXCEEDANCES = 10  # errors the exponential tail is fitted on, at least
MIN_EMPIRICAL = 1000  # past errors from which their own extremes are trusted
MIN_BASELINE_CYCLES = 3  # observed past cycles a seasonal baseline needs
CAP = 2.0  # evidence (log10) an unusual error brings to an extreme value, at most
NOVELTY_WEIGHT = 0.5
ERROR_WEIGHT = 1.0
FULL_EVIDENCE = 10.0  # evidence of score 1
BAND_P = 0.01  # lower / upper: the range the error stays in 99% of the time
SHORT_HOURS = 2.5  # after an alert, a slightly higher score this soon is the same episode
ESCALATION = 0.95
MAX_PERIOD_HISTORY = 20_000  # points the periods are looked for in, at most
FIRST_DETECTION_CHECKPOINT_CAP = 8192
SEVERITIES = (("high", 0.32), ("medium", 0.27), ("low", 0.22))  # score from which


@dataclass(frozen=True)
class Settings:
    """How the detector reads a series (defaults suit any frequency)."""

    warmup: int = 100  # points seen before the first judgement
    local: int = 10  # points of the local level
    cycles: int = 3  # past cycles of a seasonal baseline
    gap: int = 5  # points over which a seasonal baseline's level gap is measured
    window: int = 2000  # past errors their tail is estimated on
    rest_hours: float = 12.0  # an alert silences lower scores for this long (sub-daily)
    widening: float = 2.0  # how much wider the band is on points marked unusual
    relative: bool = False  # read the series as ratios (asinh of value over its scale)
    choice: int | None = None  # points a candidate's past error is measured on (default:
    # the shortest period in use, at least 56)

    def __post_init__(self) -> None:
        for name in ("warmup", "local", "cycles", "gap", "window", "choice"):
            value = getattr(self, name)
            if name == "choice" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"detector setting {name} must be a whole number of at "
                                  f"least 1, not {value!r}")
        for name in ("rest_hours", "widening"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"detector setting {name} must be a number of at least 0, "
                                  f"not {value!r}")


@dataclass
class Detection:
    """What the detector said of each point (arrays as long as the series)."""

    expected: np.ndarray  # NaN where nothing was expected yet
    lower: np.ndarray
    upper: np.ndarray
    score: np.ndarray  # 0 to 1: the point's evidence, 0 where not judged
    alert: np.ndarray  # bool: an anomaly starts or clearly worsens here
    severity: np.ndarray  # object: "low", "medium", "high" on alerts that reach one
    direction: np.ndarray  # +1 above the expected value, -1 below, 0 not judged
    judged: np.ndarray  # bool
    extreme: np.ndarray  # bool: the evidence is an unusual move to an extreme of the history
    error_evidence: np.ndarray  # -log10 P(an error this large), 0 where not judged
    novelty: np.ndarray  # -log10 of how rare the value is among the past values
    periods: list[tuple[int, tuple[float, ...]]] = field(default_factory=list)
    # the seasonal periods in use from each checkpoint on: [(first point, periods)]

    def alert_scores(self) -> np.ndarray:
        """The score of alerting points, 0 elsewhere: what an alert threshold applies to."""
        return np.where(self.alert, self.score, 0.0)


def severity_of(score: float) -> str | None:
    """The severity of an alert of this score (None below the lowest)."""
    return next((name for name, low in SEVERITIES if score >= low), None)


def detect_series(values: Sequence[float] | np.ndarray, *, frequency: str | None = None,
                  periods: Sequence[float] | None = None, settings: Settings | None = None,
                  unusual: np.ndarray | None = None, last_complete: int | None = None,
                  predictions: Sequence[np.ndarray] = ()) -> Detection:
    """Judge every point of a regular series against the points before it.

    `frequency` (a pandas alias: "5min", "h", "D", "W", "MS") says which seasonal periods to
    look for (goalpost.extensions.seasons); without it nor `periods`, the strongest cycle of
    the autocorrelation is looked for. `periods` (in points, fractional allowed) are used
    as given. `unusual` marks points judged with a band `widening` times wider (public
    holidays); `last_complete` is the index of the last complete point: later ones (a day
    still running) are not judged. `predictions` are the caller's own expected values (each
    as long as the series, for each point made without it: a total's as the sum of its
    parts'), candidates beside the detector's own.
    """
    settings = settings or Settings()
    raw = np.asarray(values, float).copy()
    if raw.ndim != 1:
        raise ConfigError("a series to judge is one-dimensional")
    raw[~np.isfinite(raw)] = np.nan
    scale = _relative_scale(raw, settings.warmup) if settings.relative else None
    x = raw if scale is None else np.arcsinh(raw / scale)
    n = len(x)
    candidates = None if periods is not None else (
        calendar_periods(frequency) if frequency else None)
    if periods is not None and any(not (p >= 2) for p in periods):
        raise ConfigError(f"seasonal periods are at least 2 points (got {list(periods)})")
    rest = _rest_points(frequency, settings.rest_hours)
    short = _rest_points(frequency, SHORT_HOURS)
    empty = Detection(np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan),
                      np.zeros(n), np.zeros(n, bool), np.full(n, None, dtype=object),
                      np.zeros(n, int), np.zeros(n, bool), np.zeros(n, bool), np.zeros(n),
                      np.zeros(n))
    if n <= settings.warmup:
        return empty

    local = pd.Series(x).shift(1).rolling(settings.local, min_periods=1).median().to_numpy()
    schedule = _period_schedule(x, settings.warmup, periods, candidates)
    baselines: dict[float, np.ndarray] = {}
    for _, found in schedule:
        for period in found:
            if period not in baselines:
                baselines[period] = _seasonal_baseline(x, period, settings.cycles,
                                                       settings.gap)
    names: list[float | str | None] = [None, *baselines]
    given = [np.asarray(p, float) for p in predictions]
    if any(p.shape != raw.shape for p in given):
        raise ConfigError("each of the caller's predictions is as long as the series")
    given = [p if scale is None else np.arcsinh(p / scale) for p in given]
    names += [f"given{i}" for i in range(len(given))]
    predictions = np.vstack([local, *baselines.values(), *given])
    errors = np.abs(x[None, :] - predictions)
    widen = np.ones(n) if unusual is None else np.where(np.asarray(unusual, bool),
                                                        max(settings.widening, 1e-9), 1.0)

    # Each point's expected value: the allowed candidate (the local level, the periods in
    # use from the last checkpoint, the caller's) with the smallest mean error over the
    # `span` points before it.
    starts = np.array([start for start, _ in schedule])
    phase = np.clip(np.searchsorted(starts, np.arange(n), side="right") - 1, 0, None)
    allowed = np.zeros((len(names), len(schedule)), bool)
    allowed[0] = True
    allowed[len(names) - len(given):] = True
    for k, (_, found) in enumerate(schedule):
        allowed[[names.index(p) for p in found], k] = True
    span = settings.choice or max(56, int(round(min(baselines, default=0))))
    mean_error = np.vstack([pd.Series(e).shift(1).rolling(span, min_periods=1).mean()
                            .to_numpy() for e in errors])
    mean_error = np.where(allowed[:, phase] & np.isfinite(mean_error), mean_error, np.inf)
    chosen = np.argmin(mean_error, axis=0)
    chosen = np.where(np.isfinite(predictions[chosen, np.arange(n)]), chosen, 0)
    expected = predictions[chosen, np.arange(n)]
    realised = errors[chosen, np.arange(n)]

    lower, upper = np.full(n, np.nan), np.full(n, np.nan)
    error_evidence, evidence = np.zeros(n), np.zeros(n)
    novelty = _novelty(x, settings.warmup)
    for start in range(settings.warmup, n, REFIT):
        past = realised[max(0, start - settings.window):start]
        past = past[np.isfinite(past)]
        if len(past) < min(settings.warmup, 20):
            expected[start:start + REFIT] = np.nan
            continue
        tail = _Tail(past)
        block = slice(start, min(start + REFIT, n))
        current = realised[block] / widen[block]
        error_evidence[block] = np.where(np.isfinite(current),
                                         -np.log10(tail.p(np.nan_to_num(current))), 0.0)
        half = tail.quantile(BAND_P) * widen[block]
        lower[block], upper[block] = expected[block] - half, expected[block] + half
        evidence[block] = _evidence(error_evidence[block], novelty[block])
    expected[:settings.warmup] = np.nan

    judged = np.isfinite(x) & np.isfinite(expected) & (np.arange(n) >= settings.warmup)
    if last_complete is not None:
        judged &= np.arange(n) <= last_complete
    score = np.where(judged, np.minimum(evidence / FULL_EVIDENCE, 1.0), 0.0)
    alert = judged & _alerts(score, rest, short)
    severity = np.array([severity_of(s) if a else None for s, a in zip(score, alert,
                                                                         strict=True)],
                        dtype=object)
    direction = np.where(judged, np.sign(np.nan_to_num(x - expected)).astype(int), 0)
    if scale is not None:
        expected, lower, upper = (scale * np.sinh(a) for a in (expected, lower, upper))
    return Detection(expected, lower, upper, score, alert, severity, direction, judged,
                     judged & (error_evidence >= CAP)
                     & (CAP + NOVELTY_WEIGHT * novelty >= ERROR_WEIGHT * error_evidence),
                     np.where(judged, error_evidence, 0.0), np.where(judged, novelty, 0.0),
                     [(start, tuple(found)) for start, found in schedule])


def _evidence(error: np.ndarray, novelty: np.ndarray) -> np.ndarray:
    """log10 evidence of an anomaly: an unusual error (p <= 10^-CAP) to an extreme value,
    or an error so unusual it needs no extreme."""
    to_extreme = np.where(error >= CAP, CAP + NOVELTY_WEIGHT * novelty, 0.0)
    return np.maximum(to_extreme, ERROR_WEIGHT * error)


def _relative_scale(x: np.ndarray, warmup: int) -> float:
    """Where asinh(x / s) turns from linear to logarithmic: a tenth of the series' typical
    size over its warm-up, or its standard deviation there if larger (a sparse series stays
    nearly linear, so a day without any is not a fall to nothing)."""
    first = x[:warmup][np.isfinite(x[:warmup])]  # the warm-up only: later points may not count
    if not len(first):
        return 1.0
    size = max(0.1 * float(np.median(np.abs(first))), float(np.std(first)))
    return size if size > 0 else max(float(np.abs(first).max()), 1.0)


def _rest_points(frequency: str | None, hours: float) -> int:
    """An alert's rest in points: `hours` for sub-daily data, one point otherwise."""
    if not frequency:
        return 1
    day = points_per(frequency).get("day")
    if day is None or day <= 1:
        return 1
    return max(1, int(round(hours / 24.0 * day)))


def _checkpoints(n: int, first: int) -> list[int]:
    """Where the periods are looked for again: doubling from `first`, then every 4096."""
    points, k = [], first
    while k < n and k <= FIRST_DETECTION_CHECKPOINT_CAP:
        points.append(k)
        k *= 2
    k = (points[-1] if points else first) + 4096
    while k < n:
        points.append(k)
        k += 4096
    return points


def _period_schedule(x: np.ndarray, warmup: int, periods: Sequence[float] | None,
                     candidates: tuple[float, ...] | None) -> list[tuple[int, list[float]]]:
    """[(first point, periods in use from there)], each found from the points before it."""
    n = len(x)
    if periods is not None:
        return [(warmup, sorted(float(p) for p in periods if p < n))]
    schedule = []
    for point in _checkpoints(n, max(warmup, 2)):
        history = x[max(0, point - MAX_PERIOD_HISTORY):point]
        if candidates is None:
            best = strongest_period(history, max(2, len(history) // 3))
            found = [best] if best is not None else []
        else:
            found = list(significant_periods(history, candidates))
        schedule.append((point, found))
    return schedule


def _seasonal_baseline(x: np.ndarray, period: float, cycles: int, gap: int) -> np.ndarray:
    """The median of the same phase over the last `cycles` cycles (NaN for the first
    MIN_BASELINE_CYCLES cycles), plus the median gap of the last `gap` points
    to their own baseline (a new level is followed within `gap` points)."""
    n = len(x)
    shifted = []
    for j in range(1, cycles + 1):
        lag = int(round(j * period))
        if lag >= n:
            break
        shifted.append(np.r_[np.full(lag, np.nan), x[:n - lag]])
    stacked = np.vstack(shifted)
    count = np.sum(np.isfinite(stacked), axis=0)
    # From MIN_BASELINE_CYCLES cycles into the series, any observed cycle will do (a gap
    # leaves the others); before, the first cycles' medians are too noisy to trust.
    enough = (count > 0) & (np.arange(n) >= round(min(cycles, MIN_BASELINE_CYCLES) * period))
    with np.errstate(all="ignore"):
        baseline = np.where(enough, np.nanmedian(np.where(count > 0, stacked, 0.0), axis=0),
                            np.nan)
    level = pd.Series(x - baseline).shift(1).rolling(gap, min_periods=1).median().to_numpy()
    return baseline + np.nan_to_num(level)


class _Tail:
    """The distribution of past absolute errors. With MIN_EMPIRICAL of them or more: empirical
    (a large error that came before is not news), with an exponential tail beyond a high
    quantile (TAIL_QUANTILE, or lower so that MIN_EXCEEDANCES lie beyond it), its scale the
    exceedances' mean, extended past the largest error seen. With fewer (a couple of years of
    daily data), too few to trust their own extremes: exponential beyond the median (a
    Laplace law, heavier-tailed than a normal one), its scale their mean excess."""

    def __init__(self, past: np.ndarray) -> None:
        self.past = np.sort(past)
        self.n = len(self.past)
        self.parametric = self.n < MIN_EMPIRICAL
        self.share = 0.5 if self.parametric else max(1 - TAIL_QUANTILE,
                                                      MIN_EXCEEDANCES / self.n)
        self.threshold = float(self.past[int((1 - self.share) * (self.n - 1))])
        excess = self.past[self.past > self.threshold] - self.threshold
        self.scale = float(excess.mean()) if len(excess) else 0.0

    def p(self, current: np.ndarray) -> np.ndarray:
        """P(|error| >= current) per value, never 0."""
        at_least = self.n - np.searchsorted(self.past, current, side="left")
        empirical = (at_least + 1.0) / (self.n + 1.0)
        above = current > self.threshold
        if self.scale > 0:
            with np.errstate(over="ignore"):
                tail = self.share * np.exp(-(current - self.threshold) / self.scale)
                beyond = np.exp(-(current - self.past[-1]) / self.scale) / (self.n + 1.0)
            if self.parametric:
                p = np.where(above, tail, empirical)
            else:
                p = np.where(above, np.maximum(empirical, tail), empirical)
                p = np.where(at_least == 0, np.minimum(p, beyond), p)
        else:  # errors were all equal so far (a flat or perfectly regular series)
            p = np.where(above, 1e-3 / (self.n + 1.0), empirical)
        return np.clip(p, 1e-300, 1.0)

    def quantile(self, p: float) -> float:
        """The error exceeded with probability p."""
        if self.scale > 0 and p < self.share:
            return self.threshold + self.scale * math.log(self.share / p)
        return float(np.quantile(self.past, 1 - p))


def _novelty(x: np.ndarray, warmup: int) -> np.ndarray:
    """-log10 of how rare each value is among all the values before it, on its side of their
    median: 2 (k + 1) / (N + 1), k the past values at least as far out."""
    n = len(x)
    out = np.zeros(n)
    for start in range(warmup, n, REFIT):
        past = x[:start]
        past = np.sort(past[np.isfinite(past)])
        if len(past) < 2:
            continue
        current = x[start:start + REFIT]
        median = past[len(past) // 2]
        above = len(past) - np.searchsorted(past, current, side="left")
        below = np.searchsorted(past, current, side="right")
        rank = np.where(current >= median, above, below)
        p = np.minimum(1.0, 2.0 * (rank + 1.0) / (len(past) + 1.0))
        out[start:start + REFIT] = np.where(np.isfinite(current), -np.log10(p), 0.0)
    return out


def _alerts(score: np.ndarray, rest: int, short: int) -> np.ndarray:
    """Points whose score beats the `rest` before it, and that the `short` points before it
    did not nearly reach (the same episode climbing by a hair)."""
    series = pd.Series(score).shift(1)
    before = series.rolling(rest, min_periods=1).max().fillna(0.0).to_numpy()
    recent = series.rolling(short, min_periods=1).max().fillna(0.0).to_numpy()
    return (score > before) & (recent < ESCALATION * score)
