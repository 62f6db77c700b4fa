"""Cron schedules (5 fields, standard cron semantics), read by one library: croniter.

Clients' run schedules, the backup schedule, freshness and the Metabase alert crons all go
through here, so that a schedule means the same thing everywhere (APScheduler's own cron
trigger, for one, numbers the days of the week from Monday).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

# How far ahead a schedule must fire at least once: a leap day (29 February) fires within
# eight years; 30 February never does.
HORIZON_YEARS = 8


def check_cron(expression: str) -> str:
    """The expression, or ValueError saying why it is not a schedule that ever runs."""
    example = "e.g. '0 6 * * *' for 06:00 daily"
    if not isinstance(expression, str) or len(expression.split()) != 5 or not croniter.is_valid(
            expression):
        raise ValueError(f"{expression!r} is not a 5-field cron expression ({example})")
    start = datetime(2024, 1, 1)
    try:
        first = croniter(expression, start).get_next(datetime)
    except CroniterBadDateError:
        first = None
    if first is None or first > start.replace(year=start.year + HORIZON_YEARS):
        raise ValueError(f"{expression!r} never runs (no such date: check the day and "
                         f"month fields; {example})")
    return expression


def next_time(expression: str, timezone: str, after: datetime) -> datetime:
    """The first time after `after` that the schedule names in `timezone`, in UTC."""
    local = after.astimezone(ZoneInfo(timezone))
    return croniter(expression, local).get_next(datetime).astimezone(UTC)


def wall_times(expression: str, start: datetime) -> Iterator[datetime]:
    """The schedule's times after `start` (naive: wall time), in order, without end."""
    return croniter(expression, start).all_next(datetime)


def interval(expression: str, timezone: str, now: datetime) -> timedelta:
    """The time between the schedule's next two runs after `now`."""
    first = next_time(expression, timezone, now)
    return next_time(expression, timezone, first) - first
