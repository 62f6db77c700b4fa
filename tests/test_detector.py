"""The univariate detector: causal on real series, seasons found from the data at any rhythm,
gaps, flat and short series, the partial last point, and what an alert says."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from goalpost.core.errors import ConfigError
from goalpost.extensions.detector import SEVERITIES, Detection, Settings, detect_series
from goalpost.extensions.seasons import (
    calendar_periods,
    modal_step,
    significant_periods,
    step_of,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import nab  # noqa: E402

NAB = nab.nab_folder()
needs_nab = pytest.mark.skipif(not (NAB / "labels").is_dir(),
                               reason=f"the NAB copy is not at {NAB}")


def nab_file(name: str) -> pd.DataFrame:
    return pd.read_csv(NAB / "data" / name, parse_dates=["timestamp"])


def fields(found: Detection, k: int) -> dict[str, np.ndarray]:
    return {name: getattr(found, name)[:k] for name in (
        "expected", "lower", "upper", "score", "alert", "severity", "direction", "judged")}


@needs_nab
@pytest.mark.parametrize("name", ["realKnownCause/nyc_taxi.csv",
                                  "realTweets/Twitter_volume_AMZN.csv"])
def test_the_first_points_are_judged_the_same_whatever_comes_after(name: str) -> None:
    frame = nab_file(name)
    values, frequency = frame["value"].to_numpy(float), modal_step(
        pd.DatetimeIndex(frame["timestamp"]))
    full = detect_series(values, frequency=frequency)
    assert full.alert.sum() > 0 and full.periods[-1][1]  # it found a cycle and alerted
    for k in (150, 1234, 4097, 9001):
        cut = detect_series(values[:k], frequency=frequency)
        for field, expected in fields(full, k).items():
            np.testing.assert_array_equal(getattr(cut, field), expected, err_msg=field)


WEEKS = Settings(warmup=24 * 21)  # footfall is judged once three weeks have been seen


def hourly(days: int, seed: int = 1) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Footfall: a daily shape, quieter weekends, noise."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2025-01-06", periods=days * 24, freq="h")
    day = np.exp(-((index.hour.to_numpy() - 13) / 4.0) ** 2)
    week = np.where(index.dayofweek.to_numpy() >= 5, 0.6, 1.0)
    return index, 100 * day * week + 5 + rng.normal(0, 3, len(index))


def test_seasons_are_found_from_the_data_at_its_rhythm() -> None:
    assert calendar_periods("h") == (24.0, 168.0, 8766.0)  # a year, given 2.5 years of data
    assert calendar_periods("D") == (7.0, 365.25)
    assert calendar_periods("W-SUN") == pytest.approx((52.1786,), abs=1e-3)
    assert calendar_periods("MS") == (12.0,)
    assert calendar_periods("5min") == (288.0, 2016.0, pytest.approx(105192.0))
    index, values = hourly(42)
    assert step_of(index) == "h"
    assert significant_periods(values, calendar_periods("h")) == (24.0, 168.0)
    found = detect_series(values, frequency="h")
    assert found.periods[-1][1] == (24.0, 168.0)
    # No cycle in noise; a monthly series with a yearly cycle over four years.
    noise = np.random.default_rng(2).normal(0, 1, 1000)
    assert significant_periods(noise, calendar_periods("D")) == ()
    months = np.arange(48)
    sales = 100 + 30 * np.sin(2 * np.pi * months / 12) + np.random.default_rng(3).normal(
        0, 3, 48)
    assert significant_periods(sales, calendar_periods("MS")) == (12.0,)
    # A fractional period (a year of daily data) over four years.
    days = np.arange(4 * 365)
    yearly = 50 + 20 * np.cos(2 * np.pi * days / 365.25) + np.random.default_rng(4).normal(
        0, 2, len(days))
    assert significant_periods(yearly, (7.0, 365.25)) == (365.25,)


def test_an_hourly_drop_is_an_alert_with_its_direction_and_range() -> None:
    index, values = hourly(42)
    t = 24 * 35 + 13  # a weekday, 13:00, the daily peak
    values[t] = 30.0
    found = detect_series(values, frequency="h", settings=WEEKS)
    assert found.alert[t] and found.direction[t] == -1 and found.severity[t] == "high"
    assert found.lower[t] > values[t] and found.expected[t] == pytest.approx(105, abs=10)
    assert found.lower[t] < found.expected[t] < found.upper[t]
    others = found.alert & (found.severity != None)  # noqa: E711 - elementwise
    others[t] = False
    assert others.sum() <= 1  # three weeks of hourly noise judged: almost nothing else


def test_severity_comes_from_the_score_on_alerts_only() -> None:
    levels = [level for _, level in SEVERITIES]
    assert levels == sorted(levels, reverse=True)
    index, values = hourly(42, seed=4)
    values[24 * 30 + 12] *= 3
    found = detect_series(values, frequency="h", settings=WEEKS)
    for severity, low in SEVERITIES:
        chosen = found.severity == severity
        assert np.all(found.alert[chosen]) and np.all(found.score[chosen] >= low)
    assert np.all(found.severity[~found.alert] == None)  # noqa: E711 - elementwise


def test_gaps_are_not_judged_and_do_not_break_the_rest() -> None:
    index, values = hourly(42, seed=5)
    values[600:630] = np.nan
    values[700] = np.nan
    values[900] = 400.0
    found = detect_series(values, frequency="h", settings=WEEKS)
    assert not found.judged[600:630].any() and not found.judged[700]
    assert found.score[700] == 0 and found.severity[700] is None
    assert found.judged[631:700].all() and found.alert[900]


def test_flat_and_short_series_are_fine() -> None:
    flat = np.full(500, 45.0)
    found = detect_series(flat, frequency="5min")
    assert not found.alert.any() and np.all(found.score == 0)
    broken = flat.copy()
    broken[400] = 46.0
    found = detect_series(broken, frequency="5min")
    assert found.alert[400] and found.severity[400] == "high"
    short = detect_series(np.arange(50.0), frequency="D")  # shorter than its warm-up
    assert not short.judged.any() and np.isnan(short.expected).all()
    assert detect_series(np.array([]), frequency="D").score.shape == (0,)
    assert not detect_series(np.arange(10.0), settings=Settings(warmup=3)).alert.any()


def test_a_partial_last_point_is_not_judged() -> None:
    index, values = hourly(42, seed=6)
    values = values[:-10]  # up to 13:00 on the last day
    values[-1] *= 0.2  # the hour is still running: it looks like a collapse
    found = detect_series(values, frequency="h", settings=WEEKS)
    assert found.alert[-1] and found.direction[-1] == -1
    kept = detect_series(values, frequency="h", settings=WEEKS,
                         last_complete=len(values) - 2)
    assert not kept.judged[-1] and not kept.alert[-1] and kept.severity[-1] is None
    np.testing.assert_array_equal(kept.score[:-1], found.score[:-1])


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ConfigError, match="one-dimensional"):
        detect_series(np.zeros((3, 3)))
    with pytest.raises(ConfigError, match="at least 2 points"):
        detect_series(np.zeros(300), periods=[1.0])
    with pytest.raises(ConfigError, match="warmup must be a whole number"):
        Settings(warmup=0)
    with pytest.raises(ConfigError, match="not regular"):
        step_of(pd.DatetimeIndex(["2025-01-01", "2025-01-02", "2025-01-04", "2025-01-05"]))
    with pytest.raises(ConfigError, match="no fixed length"):
        calendar_periods("B")
