"""Seasonal periods of a regular series: the calendar's candidates for its rhythm, and which
of them the data shows.

A metric's rhythm decides which cycles it can have: hourly footfall repeats every day (24
points) and every week (168); daily sales every week (7) and every year (365.25); weekly
spend every year (52.18); monthly margins every year (12). A candidate is kept when the series
shows it: its autocorrelation at that lag is a positive local peak that stands out of the
noise (the 90% test of the standard Theta method, Assimakopoulos and Nikolopoulos 2000) or,
for a long smooth cycle, rises well above its value half a cycle away, over at least
`MIN_CYCLES` cycles of history. Without a calendar (a plain array), the strongest such
peak of the autocorrelation is the period.

Shared by the anomaly detector (extensions/detector.py) and the forecasting core
(extensions/forecasting.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from goalpost.core.errors import ConfigError

DAY, WEEK, YEAR = 86_400.0, 7 * 86_400.0, 365.25 * 86_400.0
MIN_CYCLES = 2.5  # cycles of history a period is looked for in, at least
MIN_AUTOCORRELATION = 0.2  # below this a cycle explains too little to model
CONFIDENCE = 0.90
MIN_SWING = 0.5  # how far a cycle's autocorrelation rises from half a cycle to a full one


def step_of(index: pd.DatetimeIndex) -> str:
    """The regular frequency of a DatetimeIndex as a pandas alias ("5min", "D", "MS"), or a
    clear error naming what is irregular."""
    if len(index) < 3:
        raise ConfigError("a series needs at least 3 timestamps to tell its frequency")
    freq = pd.infer_freq(index)
    if freq is None:
        steps = pd.Series(index[1:] - index[:-1]).value_counts()
        raise ConfigError(f"the series is not regular: steps {', '.join(map(str, steps.index[:3]))}"
                          f" (x{', x'.join(map(str, steps.to_numpy()[:3]))})",
                          hint="resample it to one step first, with missing points as NaN")
    return freq


def modal_step(index: pd.DatetimeIndex) -> str:
    """The most common step between consecutive timestamps, as a pandas alias ("5min"): the
    rhythm of a series read as a sequence of points (a few missing or doubled rows aside)."""
    if len(index) < 2:
        raise ConfigError("a series needs at least 2 timestamps to tell its step")
    steps = pd.Series(index[1:] - index[:-1])
    step = steps.mode().iloc[0]
    if step <= pd.Timedelta(0):
        raise ConfigError("timestamps must increase")
    return pd.tseries.frequencies.to_offset(step).freqstr


def points_per(frequency: str) -> dict[str, float]:
    """How many points of this frequency make a day, a week and a year (only the spans that
    hold more than one point)."""
    offset = pd.tseries.frequencies.to_offset(frequency)
    name = offset.name.split("-")[0]
    n = getattr(offset, "n", 1) or 1
    if name in ("MS", "ME", "M", "BMS", "BME", "BM", "SMS", "SME"):
        per_year = 12.0 / n if name[:2] != "SM" else 24.0 / n
        return {"year": per_year} if per_year > 1 else {}
    if name in ("QS", "QE", "Q", "BQS", "BQE", "BQ"):
        return {"year": 4.0 / n} if n < 4 else {}
    if name in ("YS", "YE", "Y", "A", "AS", "BYS", "BYE"):
        return {}
    if name == "W":
        return {"year": 365.25 / 7 / n}
    try:
        seconds = pd.Timedelta(offset).total_seconds()
    except (TypeError, ValueError):
        raise ConfigError(f"frequency {frequency!r} has no fixed length",
                          hint="use a fixed step (5min, h, D, W) or a monthly or "
                               "quarterly one") from None
    spans = {"day": DAY / seconds, "week": WEEK / seconds, "year": YEAR / seconds}
    return {name: value for name, value in spans.items() if value > 1.0 + 1e-9}


def calendar_periods(frequency: str) -> tuple[float, ...]:
    """The cycles a series of this frequency can have, in points, shortest first: (24, 168)
    for hourly data, (7, 365.25) for daily, (52.18,) for weekly, (12,) for monthly."""
    spans = points_per(frequency)
    return tuple(sorted(value for value in spans.values() if value >= 2.0))


def _observed(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """The series with its gaps (NaN) at its mean: lags keep their meaning (a shop closed on
    Mondays is still a week apart from itself), the gaps add no correlation."""
    x = np.asarray(values, float)
    finite = np.isfinite(x)
    return np.where(finite, x, x[finite].mean()) if finite.any() else x[:0]


def _autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    centred = x - x.mean()
    n = len(centred)
    spectrum = np.fft.rfft(centred, 2 * n)
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[:max_lag + 1]
    return acf / acf[0] if acf[0] > 0 else np.zeros(max_lag + 1)


def _shows(acf: np.ndarray, lag: int, n: int) -> bool:
    """Whether the autocorrelation at `lag` is a positive local peak that stands out: above
    the 90% bound of the Theta method's test, or well above the trough half a cycle away
    (a long, smooth cycle, a year of daily data, whose short lags all correlate, fails the
    bound yet rises and falls)."""
    r = acf[lag]
    if not (np.isfinite(r) and r >= MIN_AUTOCORRELATION):
        return False
    # A peak among its neighbours once each lag is freed of the shrinkage of long lags
    # (n - k terms in the sum): one a year back in daily data is otherwise a lag early.
    around = np.arange(max(1, lag - 1), min(len(acf), lag + 2))
    unshrunk = acf[around] * n / (n - around)
    if unshrunk[list(around).index(lag)] < unshrunk.max():
        return False
    bound = math.sqrt((1 + 2 * float(np.sum(acf[1:lag] ** 2))) / n) * norm.ppf(CONFIDENCE)
    return r > bound or r - acf[max(1, lag // 2)] >= MIN_SWING


def significant_periods(values: Sequence[float] | np.ndarray,
                        candidates: Sequence[float]) -> tuple[float, ...]:
    """The candidate periods (points, fractional allowed) that the series shows, given
    enough history for each (gaps, NaN, count as the series' mean)."""
    x = _observed(values)
    usable = [m for m in candidates if m >= 2 and len(x) >= MIN_CYCLES * m]
    if not usable or np.ptp(x) == 0:
        return ()
    acf = _autocorrelation(x, int(round(max(usable))) + 1)
    return tuple(m for m in usable if _shows(acf, int(round(m)), len(x)))


def strongest_period(values: Sequence[float] | np.ndarray, max_period: int) -> float | None:
    """Without a calendar: the lag (2..max_period) with the highest significant peak of the
    autocorrelation, None when none stands out."""
    x = _observed(values)
    max_period = int(min(max_period, len(x) / MIN_CYCLES))
    if max_period < 2 or np.ptp(x) == 0:
        return None
    acf = _autocorrelation(x, max_period + 1)
    peaks = [lag for lag in range(2, max_period + 1) if _shows(acf, lag, len(x))]
    return float(max(peaks, key=lambda lag: acf[lag])) if peaks else None
