"""How fresh each source of a client is: when its data last arrived, against its schedule.

A file stream is fresh when a new file was loaded recently (a successful run that found no new
export is exactly the staleness to report); an API stream when an extract last succeeded (the
vendor was asked and said what is new). A source is as fresh as its stalest stream, and stale
when that is older than twice the interval of the client's schedule. Stale data is reported
with each run, never blocks it (the alerts read the same figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from goalpost.core import schedules
from goalpost.core.registry.models import Client, FileSource


@dataclass(frozen=True)
class SourceFreshness:
    source: str
    stream: str  # the stalest stream
    last_data_at: datetime | None  # None: never arrived
    max_age: timedelta
    stale: bool

    def describe(self, now: datetime) -> str:
        if self.last_data_at is None:
            return f"source {self.source}: no data has arrived yet from {self.stream}"
        age = now - self.last_data_at
        return (f"source {self.source} is stale: no new data from {self.stream} for "
                f"{_span(age)} (expected at least every {_span(self.max_age)})")


def schedule_interval(client: Client, now: datetime) -> timedelta:
    """The time between the client's next two scheduled runs (its cron, in its time zone)."""
    return schedules.interval(client.schedule, client.timezone, now)


def source_freshness(conn: psycopg.Connection, slug: str, client: Client,
                     now: datetime | None = None) -> list[SourceFreshness]:
    """The freshness of every source of the client, in the order of the client file."""
    now = now or datetime.now(UTC)
    max_age = 2 * schedule_interval(client, now)
    files = dict(((source, stream), at) for source, stream, at in conn.execute(
        "SELECT source, stream, max(loaded_at) FROM goalpost.source_files WHERE client = %s "
        "GROUP BY source, stream", (slug,)))
    extracts = dict(conn.execute(
        "SELECT s.name, max(s.finished_at) FROM goalpost.run_steps AS s "
        "JOIN goalpost.runs AS r ON r.id = s.run_id "
        "WHERE r.client = %s AND s.kind = 'extract' AND s.status = 'succeeded' GROUP BY s.name",
        (slug,)))
    report = []
    for source in client.sources:
        if isinstance(source, FileSource):
            arrivals = {s.name: files.get((source.name, s.name)) for s in source.streams}
        else:
            arrivals = {name: extracts.get(f"extract {source.name}.{name}")
                        for name in source.stream_names()}
        if not arrivals:
            continue
        stream = min(arrivals, key=lambda name: (arrivals[name] is not None,
                                                 arrivals[name] or now))
        last = arrivals[stream]
        report.append(SourceFreshness(source.name, stream, last, max_age,
                                      last is None or now - last > max_age))
    return report


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 72:
        return f"{hours:.0f} hour{'s' if round(hours) != 1 else ''}"
    return f"{hours / 24:.0f} days"
