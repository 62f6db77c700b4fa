"""A metric's rhythm (its natural grain) and how grains relate: which periods nest in which,
where a period starts, and a lag written in words ("1 month") in periods of a grain.

Grains are `day`, `week` (Monday to Sunday, as Postgres's date_trunc and ISO 8601 have it)
and `month`. Days nest in weeks and months; weeks do not nest in months (a week may straddle
two), so a weekly metric and a monthly one have no common grain: comparing them would mean
spreading a week over two months, which Goalpost refuses rather than guesses.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Literal

Grain = Literal["day", "week", "month"]
GRAINS: tuple[Grain, ...] = ("day", "week", "month")
# The coarser grains each grain's periods add up to exactly.
ROLLS_UP_TO: dict[str, tuple[Grain, ...]] = {"day": ("week", "month"), "week": (),
                                             "month": ()}
# Seasonal cycle in periods of each grain (a week of days, a year of weeks or months).
SEASON: dict[str, int] = {"day": 7, "week": 52, "month": 12}
_LAG = re.compile(r"^\s*(\d+)\s*(day|week|month)s?\s*$")


def grains_of(rhythm: str) -> tuple[str, ...]:
    """The grains a metric of this rhythm is known at: its own and those it adds up to."""
    return (rhythm, *ROLLS_UP_TO[rhythm])


def common_grain(first: str, second: str) -> str | None:
    """The finest grain both rhythms are known at (None: week against month)."""
    shared = [g for g in GRAINS if g in grains_of(first) and g in grains_of(second)]
    return shared[0] if shared else None


def period_start(day: date, grain: str) -> date:
    """The first day of the period of `grain` that contains `day`."""
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day


def is_period_start(day: date, grain: str) -> bool:
    return period_start(day, grain) == day


def next_period(start: date, grain: str) -> date:
    """The first day of the period after the one starting on `start`."""
    if grain == "week":
        return start + timedelta(days=7)
    if grain == "month":
        return date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return start + timedelta(days=1)


def period_end(start: date, grain: str) -> date:
    return next_period(start, grain) - timedelta(days=1)


def parse_lag(text: str | int) -> tuple[int, str]:
    """A lag as (count, unit): "1 month", "2 weeks", "7 days", or 0. ValueError otherwise."""
    if isinstance(text, int) and not isinstance(text, bool) and text == 0:
        return 0, "day"
    match = _LAG.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a lag: write a number and a unit, e.g. 1 month, "
                         "2 weeks, 7 days (or 0)")
    return int(match.group(1)), match.group(2)


def lag_in(count: int, unit: str, grain: str) -> int | None:
    """The lag in periods of `grain`, None when it is not a whole number of them (a month is
    no whole number of days or weeks; a lag of days at a month's grain is none either)."""
    if count == 0:
        return 0
    days = {"day": 1, "week": 7}
    if grain == "month":
        return count if unit == "month" else None
    if unit == "month":
        return None
    total = count * days[unit]
    return total // days[grain] if total % days[grain] == 0 else None
