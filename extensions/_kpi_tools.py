"""Helpers shared by the correlations, trends, drivers and goals extensions: kpi_daily as
floats, the last complete day, per-dimension groups, settings checks and the
Benjamini-Hochberg correction (the pivot to one column per metric is
goalpost.core.decomposition.wide).

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


def kpi_frame(data: pd.DataFrame) -> pd.DataFrame:
    """kpi_daily rows with float values and datetime64 dates.

    Postgres numerics arrive as Decimal objects; NULL ratios (a day with returns only) as None.
    """
    frame = data[["metric", "date", "dimension", "dimension_value", "value"]].copy()
    frame["date"] = pd.to_datetime(frame["date"])
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
    return frame


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
