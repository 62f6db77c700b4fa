"""Helpers shared by the extensions: kpi_daily as floats, every metric at its grain
(kpi_values, the shared loader: KPI_VALUES_SQL, values_frame, periodic), the last complete
day, per-dimension groups, settings checks and the Benjamini-Hochberg correction.

Not an extension (the runner skips modules whose name starts with an underscore).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from scipy import stats

from goalpost.core.dimensions import dimension_names
from goalpost.core.errors import ConfigError
from goalpost.core.registry.models import Client
from goalpost.extensions.api import DISTINCT_SERIES


def kpi_frame(data: pd.DataFrame) -> pd.DataFrame:
    """kpi_daily rows with float values and datetime64 dates.

    Postgres numerics arrive as Decimal objects; NULL ratios (a day with returns only) as None.
    """
    frame = data[["metric", "date", "dimension", "dimension_value", "value"]].copy()
    frame["date"] = pd.to_datetime(frame["date"])
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
    return frame


# Every metric at each grain it is known at (kpi_values: its rhythm and the coarser grains its
# periods add up to), or kpi_daily's rows as daily values where the marts have no kpi_values
# (built before it, or written by hand); `complete` is NULL for those. The total and the
# dimensions with more than one value (DISTINCT_SERIES).
KPI_VALUES_ROWS = """
SELECT j->>'metric' AS metric, j->>'grain' AS grain,
       CAST(j->>'period_start' AS date) AS date, j->>'dimension' AS dimension,
       j->>'dimension_value' AS dimension_value, CAST(j->>'value' AS numeric) AS value,
       CAST(j->>'complete' AS boolean) AS complete
FROM goalpost.rows_if_exists('{marts}.kpi_values') AS j
UNION ALL
SELECT metric, 'day', date, dimension, dimension_value, value, NULL
FROM {marts}.kpi_daily WHERE to_regclass('{marts}.kpi_values') IS NULL
"""
KPI_VALUES_SQL = ("SELECT * FROM (" + KPI_VALUES_ROWS + ") AS v WHERE "
                  + DISTINCT_SERIES.replace("dimension", "v.dimension", 2)
                  + " ORDER BY v.metric, v.grain, v.dimension, v.dimension_value, v.date")
GRAIN_FREQUENCY = {"day": "D", "week": "W-MON", "month": "MS"}


def values_frame(data: pd.DataFrame) -> pd.DataFrame:
    """KPI_VALUES_SQL's rows with float values, datetime64 dates and `complete` as a bool
    (True where the marts do not say: kpi_daily's rows, judged by the last complete day)."""
    columns = ["metric", "grain", "date", "dimension", "dimension_value", "value", "complete"]
    frame = data.copy() if not data.empty else pd.DataFrame(columns=columns)
    if "grain" not in frame:  # kpi_daily's shape: days, judged by the last complete day
        frame["grain"] = "day"
    if "complete" not in frame:
        frame["complete"] = None
    frame = frame[columns]
    frame["date"] = pd.to_datetime(frame["date"])
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
    frame["complete"] = frame["complete"].map(lambda v: True if v is None or pd.isna(v)
                                              else bool(v)).astype(bool)
    return frame


def daily_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The day-grain rows of a values_frame in kpi_frame's shape (what daily methods read)."""
    return frame.loc[frame["grain"] == "day",
                     ["metric", "date", "dimension", "dimension_value", "value"]]


def periodic(frame: pd.DataFrame, registry: dict[str, Any], end: pd.Timestamp | None
             ) -> Iterator[tuple[str, str, str, str, pd.Series]]:
    """(metric, grain, dimension, value, series) of every metric whose rhythm is a week or
    a month, at its rhythm: complete periods ending on or before `end`, indexed by their
    first day on a regular calendar (NaN for a period without a value)."""
    wanted = frame[frame["grain"] != "day"]
    for (metric, grain, dimension, value), rows in wanted.groupby(
            ["metric", "grain", "dimension", "dimension_value"], sort=True):
        spec = registry.get(metric)
        if spec is None or spec.rhythm != grain:
            continue
        rows = rows[rows["complete"]]
        if end is not None:
            rows = rows.loc[np.array([period_end(d, str(grain)) <= end for d in rows["date"]],
                                     dtype=bool)]
        if rows.empty:
            continue
        series = rows.set_index("date")["value"].sort_index()
        index = pd.date_range(series.index.min(), series.index.max(),
                              freq=GRAIN_FREQUENCY[str(grain)])
        yield str(metric), str(grain), str(dimension), str(value), series.reindex(index)


def period_end(start: pd.Timestamp, grain: str) -> pd.Timestamp:
    """The last day of the period of `grain` starting on `start`."""
    if grain == "week":
        return start + pd.Timedelta(days=6)
    if grain == "month":
        return start + pd.offsets.MonthEnd(0)
    return start


def last_complete_day(dates: pd.Series, now: datetime, timezone: str,
                      last_complete: date | None = None) -> pd.Timestamp | None:
    """The latest date with data before the client's today (today may still be selling) and
    not after `last_complete`, the last day the marts say is complete (JobContext)."""
    if dates.empty:
        return None
    aware = now if now.tzinfo else now.replace(tzinfo=ZoneInfo("UTC"))
    today = pd.Timestamp(aware.astimezone(ZoneInfo(timezone)).date())
    before = dates[dates < today]
    if last_complete is not None:
        before = before[before <= pd.Timestamp(last_complete)]
    return None if before.empty else pd.Timestamp(before.max())


def groups(frame: pd.DataFrame, dimensions: list[str]
           ) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """(dimension, value, rows) for the total ('all') and each value of the dimensions."""
    wanted = frame[frame["dimension"].isin(["all", *dimensions])]
    for (dimension, value), rows in wanted.groupby(["dimension", "dimension_value"], sort=True):
        yield str(dimension), str(value), rows


def settings_of(extension: str, settings: dict[str, Any], defaults: dict[str, Any],
                client: Client | None = None) -> dict[str, Any]:
    """The extension's settings over its defaults; unknown keys and wrong types are refused,
    and so are `dimensions` the client (location and channel without one) does not have."""
    unknown = sorted(set(settings) - set(defaults))
    if unknown:
        raise ConfigError(
            f"extension_settings.{extension}: unknown setting(s) {', '.join(unknown)}",
            hint=f"the settings of {extension} are {', '.join(sorted(defaults))}")
    merged = dict(defaults)
    for key, value in settings.items():
        default = defaults[key]
        if isinstance(default, list):
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        elif isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            raise ConfigError(
                f"extension_settings.{extension}.{key}: {value!r} is not valid",
                hint=f"expected a value like {default!r}")
        merged[key] = value
    if "dimensions" in merged:
        known = dimension_names(client.dimensions if client is not None else None)
        bad = [d for d in merged["dimensions"] if d not in known]
        if bad:
            raise ConfigError(
                f"extension_settings.{extension}.dimensions: unknown dimension(s) "
                f"{', '.join(bad)}", hint=f"use {', '.join(known)}")
    return merged


def benjamini_hochberg(pvalues: np.ndarray | list[float]) -> np.ndarray:
    """q-values controlling the false discovery rate over the finite p-values (NaN kept)."""
    p = np.asarray(pvalues, dtype=float)
    q = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        q[finite] = stats.false_discovery_control(p[finite], method="bh")
    return q
