"""Forecasting one series: candidate models, a rolling-origin backtest, intervals, and the
seasonal-naive guard.

`forecast_series` works on a plain array with its seasonal periods and a horizon, so the
same code forecasts a client's KPIs (extensions/forecast.py), the M3 competition
(bench/forecast.py) and NAB's minute-to-hour series (bench/forecast_hf.py). The method, and
why:

- Seasonality: any number of periods, fractional allowed (24 and 168 for hourly data, 7
  and 365.25 for daily, 52.18 for weekly, 12 for monthly). Each whose autocorrelation is
  significant (the 90% test of the standard Theta implementation, at the nearest lag) is
  removed by classical decomposition, shortest first, each on what the previous left
  (multiplicative when the series is positive, or positive apart from days of the cycle
  that are always zero, a shop's closing day, whose index is 0; additive otherwise), and
  put back after forecasting; the indices of a long cycle seen a few times are smoothed
  over neighbouring positions. ETS, Theta, ARIMA, SES and drift then only model level and
  trend, which is cheap and, on M3, more accurate than fitting seasonal models. Closing days
  are forecast as zero whatever the model.
- Candidates: seasonal naive, SES (ETS A,N,N), damped-trend ETS (A,Ad,N), Theta, ARIMA,
  random walk with drift; with two cycles or more, statsmodels' MSTL (its seasonal
  components carried on, its trend and remainder by Theta) within a cost budget; and
  Prophet with the seasonalities of the series' rhythm (daily for sub-daily data, weekly,
  yearly) and the country's holidays when dates are given and the caller asks for it. ARIMA
  is an AR(p) on the first differences with drift (ARIMA(p,1,0) with drift), p chosen by
  AIC, fitted by least squares: statsmodels' state-space ARIMA costs 0.3-1 s a fit here,
  which a backtest multiplies. With fewer than two seasons of history no model that
  carries a trend is a candidate (seasonal naive with one full season, else SES): one
  season's peak is not a trend.
- Combination: the median of the combinable candidates (all but seasonal naive and
  Prophet), leaving out the one with the worst backtest error when there are four or more.
  Combinations beat selecting one model on the M-competitions, and did here: on a third of
  M3, picking the best single model on one backtest window scored sMAPE 14.2 / MASE 1.57
  (worse than Theta alone, 13.3 / 1.47) against 12.9 / 1.37 for this combination. So a
  single model (Prophet, seasonal naive, or one member) replaces it only when backtested on
  two origins or more and clearly better (SINGLE_MARGIN).
- Backtest: rolling origins over the last points (the forecast horizon, or what the history
  allows), scored by MASE (the in-sample seasonal naive MAE at the shortest cycle).
- Guard: the chosen forecast is published only if, over GUARD_ORIGINS rolling origins at
  least, it backtests no worse than the benchmark (seasonal naive at the shortest cycle;
  naive without a cycle); otherwise the benchmark is published with a note saying why. The
  benchmark's backtest sMAPE and MASE are returned beside the published one's.
- Intervals: each model's own h-step variance (normal errors), on the adjusted scale then
  re-seasonalised; Prophet's from its predictive samples; a combination's bounds are the
  median of its members' bounds.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from goalpost.core.errors import ConfigError

COMBINABLE = ("ses", "ets", "theta", "arima", "drift", "mstl")
MODELS = ("seasonal_naive", *COMBINABLE, "prophet")
DEFAULT_MODELS = ("seasonal_naive", *COMBINABLE)
COMBINATION = "combination"
# A single model is chosen over the combination only if its backtest MASE is below this
# fraction of the combination's.
SINGLE_MARGIN = 0.8
# A cycle this long and seen fewer times has its indices smoothed over period / SHARE points.
LONG_PERIOD, WELL_SEEN_CYCLES, SMOOTHING_SHARE = 100, 8, 50
# Models that carry a trend: left out while the history holds fewer than two seasons (one
# season's peak is not a trend).
TRENDED = ("drift", "arima", "theta", "ets", "mstl", "prophet")
# MSTL's cost grows with length x period: above this product it is left out (5-minute data
# with a weekly cycle would take a minute a fit).
MSTL_BUDGET = 2_000_000
# The published model is held against the benchmark on at least this many rolling origins
# (one window is too noisy to replace a good model by a naive one).
GUARD_ORIGINS = 5
# Fewest points each model is fitted on (below that it is left out).
MIN_POINTS = {"seasonal_naive": 1, "naive": 1, "drift": 3, "ses": 4, "theta": 5, "arima": 8,
              "ets": 10, "mstl": 10, "prophet": 30}


@dataclass(frozen=True)
class ProphetInput:
    """What Prophet needs beside the values: the dates (of any regular frequency) and the
    holiday country."""

    dates: pd.DatetimeIndex
    country: str | None = None
    samples: int = 400


@dataclass
class Prediction:
    """One model's forecast: the mean and, per level, the lower and upper bounds."""

    mean: np.ndarray
    bounds: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


@dataclass(frozen=True)
class Forecast:
    """The published forecast of one series, with its backtest error and the benchmark's
    (seasonal naive, or naive without a cycle) on the same origins."""

    mean: np.ndarray
    bounds: dict[int, tuple[np.ndarray, np.ndarray]]
    model: str
    backtest_smape: float | None
    backtest_mase: float | None
    history_points: int
    benchmark: str = "naive"
    benchmark_smape: float | None = None
    benchmark_mase: float | None = None
    note: str | None = None  # why the published model is not the best candidate, if so


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean of 200|y-f|/(|y|+|f|), a point where both are zero counting as no error."""
    actual, forecast = np.asarray(actual, float), np.asarray(forecast, float)
    denominator = np.abs(actual) + np.abs(forecast)
    terms = np.divide(200 * np.abs(actual - forecast), denominator,
                      out=np.zeros_like(denominator), where=denominator > 0)
    return float(np.mean(terms))


def mase_scale(history: np.ndarray, period: float) -> float:
    """The in-sample MAE of the seasonal naive forecast (naive when the history is short);
    a fractional period is rounded to the nearest point."""
    period = max(1, int(round(period)))
    lag = period if len(history) > period else 1
    if len(history) <= lag:
        return math.nan
    return float(np.mean(np.abs(history[lag:] - history[:-lag])))


def mase(history: np.ndarray, actual: np.ndarray, forecast: np.ndarray,
         period: float) -> float:
    """MAE scaled by the in-sample seasonal naive MAE; NaN when that is zero."""
    scale = mase_scale(np.asarray(history, float), period)
    error = float(np.mean(np.abs(np.asarray(actual, float) - np.asarray(forecast, float))))
    if not scale or math.isnan(scale):
        return 0.0 if error == 0 else math.nan
    return error / scale


# --- seasonal adjustment ------------------------------------------------------------------

@dataclass(frozen=True)
class _Season:
    """Seasonal indices, one per position in the cycle (aligned with the series' first
    point); a multiplicative index of 0 marks a position that is always zero (a closing
    day), forecast as zero."""

    indices: np.ndarray
    multiplicative: bool

    def future(self, start: int, steps: int) -> np.ndarray:
        return self.indices[(start + np.arange(steps)) % len(self.indices)]

    def adjust(self, y: np.ndarray) -> np.ndarray:
        idx = self.future(0, len(y))
        if not self.multiplicative:
            return y - idx
        open_ = idx > 0
        adjusted = np.divide(y, idx, out=np.zeros_like(y), where=open_)
        if not open_.all():  # closing days: the adjusted level of the days around them
            positions = np.arange(len(y))
            adjusted[~open_] = np.interp(positions[~open_], positions[open_], adjusted[open_])
        return adjusted

    def restore(self, values: np.ndarray, start: int) -> np.ndarray:
        idx = self.future(start, len(values))
        return values * idx if self.multiplicative else values + idx


def _closed(y: np.ndarray, period: int) -> np.ndarray:
    """Positions of the cycle (from the first point) where the series is always zero, over
    two cycles at least: a shop's closing day."""
    if period < 2 or len(y) < 2 * period:
        return np.zeros(max(period, 1), bool)
    position = np.arange(len(y)) % period
    closed = np.array([np.all(y[position == p] == 0) for p in range(period)])
    return closed if not closed.all() else np.zeros(period, bool)


def _season(y: np.ndarray, period: int) -> _Season | None:
    """Classical decomposition indices when the period's autocorrelation is significant (the
    90% test of the standard Theta method). Multiplicative when the series is positive, or
    positive but on positions of the cycle that are always zero; additive otherwise. Indices
    of a long cycle seen a few times (a year of days) are smoothed over neighbouring
    positions, which one or two cycles cannot tell apart from noise."""
    n = len(y)
    if period < 2 or n <= 2 * period or np.ptp(y) == 0:
        return None
    from statsmodels.tsa.stattools import acf

    r = acf(y, nlags=period, fft=period > 64)[1:]
    if not np.all(np.isfinite(r)):
        return None
    stat = math.sqrt((1 + 2 * float(np.sum(r[:-1] ** 2))) / n)
    if abs(r[-1]) / stat <= norm.ppf(0.95):
        return None
    position = np.arange(n) % period
    closed = _closed(y, period)
    multiplicative = bool(np.all(y[~closed[position]] > 0)) and not closed.all()
    # The trend: a centred moving average over one cycle (2 x m when m is even).
    weights = np.ones(period + 1 - period % 2)
    if period % 2 == 0:
        weights[[0, -1]] = 0.5
    trend = np.convolve(y, weights / period, mode="valid")
    offset = len(weights) // 2
    where = np.arange(offset, offset + len(trend))
    if multiplicative and np.any(trend <= 0):
        return None
    detrended = y[where] / trend if multiplicative else y[where] - trend
    counts = np.bincount(position[where], minlength=period)
    indices = np.bincount(position[where], weights=detrended, minlength=period) / np.maximum(
        counts, 1)
    cycles = len(where) / period
    if period >= LONG_PERIOD and cycles < WELL_SEEN_CYCLES:
        width = max(3, int(period / SMOOTHING_SHARE) | 1)
        ring = np.r_[indices[-(width // 2):], indices, indices[:width // 2]]
        indices = np.convolve(ring, np.ones(width) / width, mode="valid")
    if multiplicative:
        indices[closed] = 0.0
        indices *= period / indices.sum()
    else:
        indices -= indices.mean()
    if not np.all(np.isfinite(indices)):
        return None
    return _Season(indices, multiplicative)


@dataclass(frozen=True)
class _Seasons:
    """Several seasonal cycles removed one after the other, shortest first (the hours of the
    day, then the days of the week on what the hours leave)."""

    parts: tuple[_Season, ...]

    def adjust(self, y: np.ndarray) -> np.ndarray:
        for part in self.parts:
            y = part.adjust(y)
        return y

    def restore(self, values: np.ndarray, start: int) -> np.ndarray:
        for part in reversed(self.parts):
            values = part.restore(values, start)
        return values


def _seasons(y: np.ndarray, periods: Sequence[float]) -> _Seasons | None:
    parts: list[_Season] = []
    adjusted = y
    for period in periods:
        part = _season(adjusted, int(round(period)))
        if part is not None:
            parts.append(part)
            adjusted = part.adjust(adjusted)
    return _Seasons(tuple(parts)) if parts else None


def _safe_season(y: np.ndarray, period: float | Sequence[float]) -> _Seasons | None:
    """The series' seasonal cycles among `period` (one or several, in points), None when
    none is significant."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return _seasons(y, _periods(period))


def _periods(period: float | Sequence[float]) -> tuple[float, ...]:
    """Seasonal periods as a sorted tuple, those under 2 points (no cycle) left out."""
    given = [period] if isinstance(period, int | float) else list(period)
    for value in given:
        if not (isinstance(value, int | float) and value >= 1):
            raise ConfigError(f"seasonal periods are at least 1 point (got {value!r})")
    return tuple(sorted(float(p) for p in set(given) if p >= 2))


# --- the models ---------------------------------------------------------------------------
# Each takes the (adjusted) history and a horizon and returns the mean and the standard
# deviation of the h-step error, or None for the deviation when only the mean is wanted.

Fitted = tuple[np.ndarray, np.ndarray | None]


def _naive(y: np.ndarray, h: int, sd: bool) -> Fitted:
    steps = np.arange(1, h + 1)
    sigma = math.sqrt(np.mean(np.diff(y) ** 2)) if len(y) > 1 else 0.0
    return np.repeat(y[-1], h), (sigma * np.sqrt(steps) if sd else None)


def _seasonal_naive(y: np.ndarray, h: int, period: int, sd: bool) -> Fitted:
    lag = period if len(y) >= period and period > 1 else 1
    if lag == 1:
        return _naive(y, h, sd)
    steps = np.arange(h)
    mean = y[len(y) - lag + steps % lag]
    if not sd:
        return mean, None
    errors = y[lag:] - y[:-lag]
    sigma = math.sqrt(np.mean(errors ** 2)) if len(errors) else 0.0
    return mean, sigma * np.sqrt(steps // lag + 1)


def _drift(y: np.ndarray, h: int, sd: bool) -> Fitted:
    n = len(y)
    slope = (y[-1] - y[0]) / (n - 1)
    steps = np.arange(1, h + 1)
    mean = y[-1] + slope * steps
    if not sd:
        return mean, None
    errors = np.diff(y) - slope
    sigma = math.sqrt(np.sum(errors ** 2) / max(n - 2, 1))
    return mean, sigma * np.sqrt(steps * (1 + steps / (n - 1)))


def _ses_sd(y: np.ndarray, alpha: float, h: int, drift: float = 0.0) -> np.ndarray:
    """SES (and Theta's SES with drift) h-step deviation: sigma * sqrt(1 + (j-1) alpha^2)."""
    level, errors = y[0], []
    for value in y[1:]:
        errors.append(value - level - drift)
        level = level + drift + alpha * (value - level - drift)
    sigma = math.sqrt(np.mean(np.square(errors))) if errors else 0.0
    return sigma * np.sqrt(1 + np.arange(h) * alpha ** 2)


@functools.lru_cache(maxsize=4)
def _theta_fit(data: bytes) -> Any:
    """statsmodels' Theta fit of a series (given as bytes so it can be cached: SES and Theta
    share it, as Theta's SES component is the SES forecast)."""
    from statsmodels.tsa.forecasting.theta import ThetaModel

    return ThetaModel(np.frombuffer(data), period=1, deseasonalize=False).fit()


def _ses(y: np.ndarray, h: int, sd: bool) -> Fitted:
    fit = _theta_fit(y.tobytes())
    mean = np.asarray(fit.forecast_components(h)["ses"], float)
    return mean, (_ses_sd(y, float(fit.params["alpha"]), h) if sd else None)


def _theta(y: np.ndarray, h: int, sd: bool) -> Fitted:
    fit = _theta_fit(y.tobytes())
    mean = np.asarray(fit.forecast(h), float)
    if not sd:
        return mean, None
    # Theta (theta = 2) is SES with drift b0 (Hyndman and Billah, 2003).
    return mean, _ses_sd(y, float(fit.params["alpha"]), h, float(fit.params["b0"]))


def _ets(y: np.ndarray, h: int, sd: bool) -> Fitted:
    """ETS(A,Ad,N); initial states from the heuristic rather than estimated (half the cost,
    forecasts within about 1%) when there are enough points for it."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    try:
        fit = ETSModel(y, error="add", trend="add", damped_trend=True,
                       initialization_method="heuristic").fit(disp=False)
    except ValueError:
        fit = ETSModel(y, error="add", trend="add", damped_trend=True).fit(disp=False)
    mean = np.asarray(fit.forecast(h), float)
    if not sd:
        return mean, None
    alpha, beta, phi = (float(v) for v in np.asarray(fit.params)[:3])
    j = np.arange(1, h)
    c = alpha + beta * phi * (1 - phi ** j) / (1 - phi) if phi < 1 else alpha + beta * j
    variance = float(fit.mse) * (1 + np.concatenate([[0.0], np.cumsum(c ** 2)]))
    return mean, np.sqrt(variance)


def _arima(y: np.ndarray, h: int, sd: bool) -> Fitted:
    """ARIMA(p,1,0) with drift: AR(p) on the differences, p by AIC, least squares."""
    from statsmodels.tsa.ar_model import AutoReg, ar_select_order
    from statsmodels.tsa.arima_process import arma2ma

    z = np.diff(y)
    max_lag = int(min(5, max(0, len(z) // 4 - 1)))
    lags = (ar_select_order(z, maxlag=max_lag, trend="c", ic="aic").ar_lags or 0) \
        if max_lag >= 1 else 0
    fit = AutoReg(z, lags=lags, trend="c").fit()
    changes = np.asarray(fit.predict(start=len(z), end=len(z) + h - 1), float)
    mean = y[-1] + np.cumsum(changes)
    if not sd:
        return mean, None
    phi = np.asarray(fit.params, float)[1:]
    psi = arma2ma(np.r_[1, -phi], np.array([1.0]), lags=h)
    variance = float(fit.sigma2) * np.cumsum(np.cumsum(psi) ** 2)
    return mean, np.sqrt(variance)


def _quiet_prophet() -> None:
    """Import Prophet without its noise: it warns that plotly is missing when imported, and
    it and cmdstanpy log every fit (prophet sets its logger to INFO on import, cmdstanpy adds
    a console handler unless one exists)."""
    logging.getLogger("prophet.plot").disabled = True
    import prophet  # noqa: F401 - imported here so that the settings below stick

    for name in ("cmdstanpy", "prophet"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.ERROR)
        logger.propagate = False
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())


def _prophet(y: np.ndarray, h: int, spec: ProphetInput, periods: Sequence[float],
             levels: Sequence[int] | None) -> Prediction:
    """Prophet with the seasonalities the series' rhythm has among its periods (daily for
    sub-daily data, weekly, yearly) and the country's holidays for daily or finer data."""
    _quiet_prophet()
    from prophet import Prophet

    from goalpost.extensions.seasons import modal_step, points_per

    dates = spec.dates[:len(y)]
    frequency = dates.freqstr or pd.infer_freq(dates) or modal_step(dates)
    spans = points_per(frequency)

    def has(span: str) -> bool:
        return span in spans and any(abs(p - spans[span]) < 0.5 for p in periods)

    model = Prophet(daily_seasonality=has("day"), weekly_seasonality=has("week"),
                    yearly_seasonality=has("year"),
                    uncertainty_samples=spec.samples if levels else 0)
    if spec.country and "day" in spans:
        # A country the holidays package does not know gets no holiday effects.
        with contextlib.suppress(AttributeError, NotImplementedError, KeyError):
            model.add_country_holidays(country_name=spec.country)
    model.fit(pd.DataFrame({"ds": dates, "y": y}))
    future = pd.DataFrame({"ds": pd.date_range(dates[-1], periods=h + 1,
                                               freq=frequency)[1:]})
    if not levels:
        return Prediction(np.asarray(model.predict(future)["yhat"], float))
    state = np.random.get_state()
    np.random.seed(0)  # Prophet samples with numpy's global generator: keep runs identical
    try:
        samples = model.predictive_samples(future)["yhat"]
    finally:
        np.random.set_state(state)
    model.uncertainty_samples = 0  # the mean is the fitted curve, without sampling again
    mean = np.asarray(model.predict(future)["yhat"], float)
    bounds = {level: (np.percentile(samples, 50 - level / 2, axis=1),
                      np.percentile(samples, 50 + level / 2, axis=1)) for level in levels}
    return Prediction(mean, bounds)


def _mstl_periods(n: int, periods: Sequence[float]) -> list[int]:
    """The periods MSTL can fit (two cycles of history each), within its cost budget."""
    usable = [int(round(p)) for p in periods if n >= 2 * round(p)]
    return usable if len(usable) >= 2 and n * max(usable) <= MSTL_BUDGET else []


def _mstl(y: np.ndarray, h: int, periods: Sequence[float], sd: bool) -> Fitted:
    """statsmodels' MSTL (STL per cycle, iterated): its trend and remainder forecast by
    Theta, each seasonal component carried on by its last cycle."""
    from statsmodels.tsa.seasonal import MSTL

    usable = _mstl_periods(len(y), periods)
    fit = MSTL(y, periods=usable).fit()
    seasonal = np.asarray(fit.seasonal, float).reshape(len(y), -1)
    adjusted = y - seasonal.sum(axis=1)
    mean, deviation = _theta(adjusted, h, sd)
    steps = np.arange(h)
    for column, period in enumerate(usable):
        last = seasonal[-period:, column]
        mean = mean + last[steps % period]
    return mean, deviation


# --- choosing and forecasting -------------------------------------------------------------

def _member(name: str, y: np.ndarray, h: int, periods: Sequence[float],
            levels: Sequence[int] | None, prophet: ProphetInput | None,
            season: _Seasons | None) -> Prediction:
    """One model's forecast of y, seasonally adjusted first (by `season`, from
    _safe_season(y)) unless it models seasons itself."""
    if name == "prophet":
        assert prophet is not None
        return _prophet(y, h, prophet, periods, levels)
    want_sd = bool(levels)
    if name == "seasonal_naive":
        mean, sd = _seasonal_naive(y, h, _main(periods), want_sd)
        season = None
    elif name == "mstl":
        mean, sd = _mstl(y, h, periods, want_sd)
        season = None
    else:
        adjusted = season.adjust(y) if season else y
        fit: Callable[[np.ndarray, int, bool], Fitted] = _FITS[name]
        mean, sd = fit(adjusted, h, want_sd)
    prediction = Prediction(np.asarray(mean, float))
    for level in levels or ():
        z = float(norm.ppf(0.5 + level / 200))
        lower, upper = prediction.mean - z * sd, prediction.mean + z * sd
        if season:
            lower, upper = season.restore(lower, len(y)), season.restore(upper, len(y))
        prediction.bounds[level] = (lower, upper)
    if season:
        prediction.mean = season.restore(prediction.mean, len(y))
    return prediction


_FITS: dict[str, Callable[[np.ndarray, int, bool], Fitted]] = {
    "naive": _naive, "drift": _drift, "ses": _ses, "theta": _theta, "ets": _ets,
    "arima": _arima,
}


def _main(periods: Sequence[float]) -> int:
    """The shortest cycle in points (1: none): the seasonal naive benchmark's lag."""
    return int(round(periods[0])) if periods else 1


def _safe_member(name: str, y: np.ndarray, h: int, periods: Sequence[float],
                 levels: Sequence[int] | None, prophet: ProphetInput | None,
                 season: _Seasons | None) -> Prediction | None:
    """A model's forecast, or None when it fails or returns non-finite values (a model that
    cannot fit a series is left out rather than failing the whole forecast)."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            prediction = _member(name, y, h, periods, levels, prophet, season)
    except Exception:  # noqa: BLE001 - any model may fail on some series; the others remain
        return None
    arrays = [prediction.mean, *(b for pair in prediction.bounds.values() for b in pair)]
    if not all(np.all(np.isfinite(a)) for a in arrays):
        return None
    return prediction


def _combine(predictions: Sequence[Prediction], levels: Sequence[int] | None) -> Prediction:
    """The median of the members' means and, level by level, of their bounds."""
    combined = Prediction(np.median([p.mean for p in predictions], axis=0))
    for level in levels or ():
        combined.bounds[level] = (np.median([p.bounds[level][0] for p in predictions], axis=0),
                                  np.median([p.bounds[level][1] for p in predictions], axis=0))
    return combined


def _eligible(models: Sequence[str], n: int, periods: Sequence[float],
              prophet: ProphetInput | None) -> list[str]:
    """The candidates this history allows. With fewer than two seasons of a cycle the series
    has, no model that carries a trend (one season's peak would read as one): seasonal
    naive with a full season, else the level models."""
    main = _main(periods)
    found = [m for m in models if n >= MIN_POINTS[m] and (m != "prophet" or prophet is not None)
             and (m != "mstl" or _mstl_periods(n, periods))]
    if main > 1 and n < 2 * main:
        found = [m for m in found if m not in TRENDED]
        if n >= main:
            found = [m for m in found if m == "seasonal_naive"] or found
    return found


def _origins(n: int, horizon: int, period: int, count: int) -> list[tuple[int, int]]:
    """Rolling origins (training length, test length): the last `test` points after each,
    spaced half a test window apart, each leaving enough history to fit on."""
    min_train = max(8, 2 * period + 1 if period > 1 and n > 4 * period else 8)
    test = min(horizon, n - min_train)
    if count < 1 or test < 1:
        return []
    step = max(1, test // 2)
    found = []
    for i in range(count):
        train = n - test - i * step
        if train < min_train:
            break
        found.append((train, test))
    return found


@dataclass
class _Scores:
    rank: float  # what candidates are compared on: MAE over the in-sample naive MAE
    mase: float
    smape: float


def _score(y: np.ndarray, period: int, origins: list[tuple[int, int]],
           forecasts: list[np.ndarray]) -> _Scores:
    ranks, mases, smapes = [], [], []
    for (train, test), forecast in zip(origins, forecasts, strict=True):
        actual = y[train:train + test]
        scale = mase_scale(y[:train], period)
        error = float(np.mean(np.abs(actual - forecast)))
        ranks.append(error / scale if scale > 0 else error)
        mases.append(error / scale if scale > 0 else (0.0 if error == 0 else math.nan))
        smapes.append(smape(actual, forecast))
    return _Scores(float(np.mean(ranks)), float(np.mean(mases)), float(np.mean(smapes)))


def forecast_series(y: Sequence[float] | np.ndarray, *, period: float | Sequence[float] = 1,
                    horizon: int, models: Sequence[str] = DEFAULT_MODELS,
                    levels: Sequence[int] = (80, 95), origins: int = 1,
                    prophet: ProphetInput | None = None,
                    nonnegative: bool | None = None) -> Forecast:
    """Forecast `horizon` steps of y (oldest first, no gaps) with the candidate `models`.

    `period` is the series' seasonal cycle in points, or several (24 and 168 for hourly
    data, 7 and 365.25 for daily), fractional allowed; those the data shows are removed
    before the models that do not model seasons themselves. Each candidate and the
    combination are backtested on `origins` rolling origins; the combination is kept unless
    a single model does clearly better on two origins or more (one window is too noisy to
    trust a single model over a combination). Whatever is chosen is published only if it
    backtests at least as well as the benchmark (seasonal naive at the shortest cycle, naive
    without one); otherwise the benchmark is, and `note` says so. A constant or very short
    series gets its last value, positions of the cycle that were always zero (closing days)
    get zero. `nonnegative` (default: the history has no negative value) clips forecasts and
    bounds at zero.
    """
    values = np.asarray(y, float)
    periods = _periods(period)
    if horizon < 1:
        raise ConfigError(f"the horizon must be at least 1 (got {horizon})")
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise ConfigError(f"unknown forecast model(s): {', '.join(unknown)}",
                          hint=f"choose among {', '.join(MODELS)}")
    if not all(0 < level < 100 for level in levels):
        raise ConfigError(f"interval levels are percentages between 0 and 100 (got {levels})")
    if len(values) == 0 or not np.all(np.isfinite(values)):
        raise ConfigError("a series to forecast needs at least one value and no missing "
                          "or infinite values", hint="fill or drop the gaps first")
    if nonnegative is None:
        nonnegative = bool(np.all(values >= 0))
    main = _main(periods)
    benchmark_name = "seasonal_naive" if main > 1 and len(values) >= main else "naive"
    if np.ptp(values) == 0 or len(values) < 3:
        choice = _Choice("naive", ["naive"], None, None, None)
    else:
        choice = _choose(values, periods, horizon, models, origins, prophet, benchmark_name)
    season = _safe_season(values, periods)
    if choice.name == COMBINATION:
        fitted = [p for p in (_safe_member(m, values, horizon, periods, levels, prophet, season)
                              for m in choice.members) if p is not None]
        prediction = _combine(fitted, levels) if fitted else None
    else:
        prediction = _safe_member(choice.name, values, horizon, periods, levels, prophet,
                                  season)
    if prediction is None:  # the chosen model failed on the whole history
        choice = _Choice("naive", ["naive"], None, choice.benchmark, None)
        prediction = _member("naive", values, horizon, (), levels, None, None)
    label = (f"{COMBINATION}({','.join(choice.members)})" if choice.name == COMBINATION
             else choice.name)
    mean, bounds = prediction.mean, dict(prediction.bounds)
    closed = _closed(values, main)
    if closed.any():  # whatever the model, a day the shop always closed sells nothing
        shut = closed[(len(values) + np.arange(horizon)) % main]
        mean = np.where(shut, 0.0, mean)
        bounds = {k: (np.where(shut, 0.0, lo), np.where(shut, 0.0, hi))
                  for k, (lo, hi) in bounds.items()}
    if nonnegative:
        mean = np.maximum(mean, 0)
        bounds = {k: (np.maximum(lo, 0), np.maximum(hi, 0)) for k, (lo, hi) in bounds.items()}

    def finite(value: float | None) -> float | None:
        return None if value is None or math.isnan(value) else value

    backtest, benchmark = choice.backtest, choice.benchmark
    return Forecast(mean, bounds, label, None if backtest is None else backtest.smape,
                    None if backtest is None else finite(backtest.mase), len(values),
                    benchmark_name, None if benchmark is None else benchmark.smape,
                    None if benchmark is None else finite(benchmark.mase), choice.note)


@dataclass
class _Choice:
    name: str  # a model or COMBINATION
    members: list[str]
    backtest: _Scores | None
    benchmark: _Scores | None
    note: str | None


def _choose(values: np.ndarray, periods: Sequence[float], horizon: int,
            models: Sequence[str], origins: int, prophet: ProphetInput | None,
            benchmark: str) -> _Choice:
    """The candidate to publish, the combination's members, its and the benchmark's backtest
    scores, and a note when the benchmark replaced a model that backtested worse."""
    main = _main(periods)
    candidates = _eligible(models, len(values), periods, prophet)
    combinable = [m for m in candidates if m in COMBINABLE]
    windows = _origins(len(values), horizon, main, max(origins, GUARD_ORIGINS))
    if not windows or origins < 1:  # too short to backtest: the combination, else the simplest
        if len(combinable) >= 2:
            return _Choice(COMBINATION, combinable, None, None, None)
        return _Choice(candidates[0] if candidates else benchmark, [], None, None, None)
    chosen_by = min(origins, len(windows))  # the selection's windows; the guard sees them all
    seasons = [_safe_season(values[:train], periods) for train, _ in windows]
    forecasts: dict[str, list[np.ndarray]] = {}
    for name in dict.fromkeys([*candidates, benchmark]):
        runs = [_safe_member(name, values[:train], test, periods, None, prophet, season)
                for (train, test), season in zip(windows, seasons, strict=True)]
        if all(run is not None for run in runs):
            forecasts[name] = [run.mean for run in runs if run is not None]

    def scored(runs: list[np.ndarray], count: int) -> _Scores:
        return _score(values, main, windows[:count], runs[:count])

    members = [m for m in combinable if m in forecasts]
    if len(members) >= 4:  # leave out the worst: usually a model that does not suit the series
        worst = max(members, key=lambda m: scored(forecasts[m], chosen_by).rank)
        members.remove(worst)
    if len(members) >= 2:
        forecasts[COMBINATION] = [np.median([forecasts[m][i] for m in members], axis=0)
                                  for i in range(len(windows))]
    ranked = {m: scored(runs, chosen_by) for m, runs in forecasts.items()
              if m in candidates or m == COMBINATION}
    reference = scored(forecasts[benchmark], len(windows)) if benchmark in forecasts else None
    if not ranked:
        return _Choice(benchmark, [benchmark], reference, reference,
                       "no candidate could be fitted: the benchmark is published")
    best = min(ranked, key=lambda m: (ranked[m].rank, m != COMBINATION))
    if COMBINATION in ranked and best != COMBINATION and not (
            chosen_by >= 2 and ranked[best].rank < SINGLE_MARGIN * ranked[COMBINATION].rank):
        best = COMBINATION
    guarded = scored(forecasts[best], len(windows))
    label = f"{COMBINATION}({','.join(members)})" if best == COMBINATION else best
    if reference is not None and best != benchmark and guarded.rank > reference.rank:
        return _Choice(benchmark, [benchmark], reference, reference,
                       f"{label} backtested worse than {benchmark} (MASE "
                       f"{guarded.mase:.2f} against {reference.mase:.2f}): "
                       f"{benchmark} is published")
    return _Choice(best, members if best == COMBINATION else [best], guarded, reference,
                   None)


# --- many series at once ------------------------------------------------------------------

def _init_worker() -> None:
    """One BLAS thread per process: more only compete for the cores."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def map_parallel(function: Callable[[Any], Any], items: Sequence[Any],
                 workers: int | None = None) -> list[Any]:
    """function(item) for every item, in order, over `workers` processes (default: one per
    core); in this process when there is one worker or one item. Each result depends only on
    its item, so the output does not depend on the number of workers.

    Workers are spawned, not forked: the caller may hold threads and connections (the
    scheduler, psycopg) that a fork would copy in an unknown state. `function` must be a
    module-level function (it is pickled by name)."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from threadpoolctl import threadpool_limits

    workers = min(workers or os.cpu_count() or 1, len(items))
    if workers <= 1:
        with threadpool_limits(1):
            return [function(item) for item in items]
    chunk = max(1, len(items) // (workers * 8))
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                             initializer=_init_worker) as pool:
        return list(pool.map(function, items, chunksize=chunk))
