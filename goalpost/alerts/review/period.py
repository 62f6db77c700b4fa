"""The periods a review covers: ISO weeks (2026-W49, Monday to Sunday) or calendar months
(2026-11), with the periods each is compared with.

The week before is the previous ISO week; the same week last year is the one 364 days
earlier, which starts on a Monday too (so a Saturday is compared with a Saturday) and is the
same ISO week in all but 53-week years. A month is compared with the month before and the
same month a year earlier.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from goalpost.core.errors import ConfigError

Kind = Literal["week", "month"]
_WEEK = re.compile(r"^(\d{4})-W(\d{1,2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")


@dataclass(frozen=True)
class Period:
    kind: Kind
    start: date
    end: date

    @property
    def key(self) -> str:
        """2026-W49 or 2026-11: how the CLI and the control schema name it."""
        if self.kind == "week":
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.start:%Y-%m}"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def previous(self) -> Period:
        if self.kind == "week":
            return week_of(self.start - timedelta(days=7))
        return month_of(self.start - timedelta(days=1))

    def last_year(self) -> Period:
        if self.kind == "week":
            return week_of(self.start - timedelta(days=364))
        return month_of(self.start.replace(year=self.start.year - 1))

    def next_start(self) -> date:
        """The first day after the period: when it has closed."""
        return self.end + timedelta(days=1)


def week_of(day: date) -> Period:
    """The ISO week (Monday to Sunday) holding `day`."""
    start = day - timedelta(days=day.weekday())
    return Period("week", start, start + timedelta(days=6))


def month_of(day: date) -> Period:
    """The calendar month holding `day`."""
    last = calendar.monthrange(day.year, day.month)[1]
    return Period("month", day.replace(day=1), day.replace(day=last))


def parse(text: str, kind: Kind) -> Period:
    """'2026-W49' (kind week) or '2026-11' (kind month); ConfigError saying the form."""
    value = text.strip()
    if kind == "week":
        match = _WEEK.match(value)
        try:
            if match:
                return week_of(date.fromisocalendar(int(match[1]), int(match[2]), 1))
        except ValueError:
            pass
        raise ConfigError(f"--week {text!r} is not an ISO week",
                          hint="write the year, W and the week number, e.g. 2026-W49")
    match = _MONTH.match(value)
    if match and 1 <= int(match[2]) <= 12:
        return month_of(date(int(match[1]), int(match[2]), 1))
    raise ConfigError(f"--month {text!r} is not a month", hint="write it like 2026-11")


def last_closed(kind: Kind, today: date) -> Period:
    """The latest period that ended before `today` (the client's local date)."""
    current = week_of(today) if kind == "week" else month_of(today)
    return current.previous()


def kind_of(cadence: str) -> Kind:
    """The period of a client's `review.cadence` (weekly, monthly)."""
    return "week" if cadence == "weekly" else "month"
