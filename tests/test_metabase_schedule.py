"""Metabase alert schedules in Metabase's report time zone: the conversion of a client's run
times (the year's larger shift, so never early; weekdays shifted across midnight), bootstrap
setting report-timezone, and plan/apply for clients in different zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from croniter import croniter
from metabase_fixtures import make_client, standin  # noqa: F401 - fixture

from goalpost.core.errors import ConfigError
from goalpost.core.registry import load_client
from goalpost.core.registry.models import Client
from goalpost.metabase.alerts import RUN_MARGIN, alert_crons, zone_shift
from goalpost.metabase.api import MetabaseClient
from goalpost.metabase.apply import apply_plan
from goalpost.metabase.bootstrap import bootstrap
from goalpost.metabase.plan import compute_plan
from goalpost.metabase.timezone import metabase_timezone
from goalpost.sandbox.metabase_standin.server import StandinServer

WINTER = datetime(2025, 1, 15, 12, tzinfo=UTC)
SUMMER = datetime(2025, 7, 15, 12, tzinfo=UTC)
WEEKDAYS_AFTER = "TUE,WED,THU,FRI,SAT"
RULE = {"name": "low_stock", "kind": "threshold", "metric": "stock", "operator": "<",
        "value": "reorder_point", "recipients": ["owners"], "metabase": True}


def _crons(zone: str, schedule: str, metabase_zone: str, at: datetime) -> list[str]:
    return alert_crons(Client(name="X", timezone=zone, schedule=schedule), metabase_zone, at)


# -- the conversion ------------------------------------------------------------------------------

@pytest.mark.parametrize(("zone", "schedule", "metabase_zone", "crons"), [
    # 05:30 in Paris, checked at 06:30 Paris: 05:30 UTC in winter; in summer that is 07:30
    # in Paris (04:30 UTC would be 05:30 in Paris in winter: before the run is done).
    ("Europe/Paris", "30 5 * * *", "UTC", ["0 30 5 ? * *"]),
    # 23:30 MON-FRI in New York: 00:30 TUE-SAT there, 05:30 UTC TUE-SAT.
    ("America/New_York", "30 23 * * 1-5", "UTC", [f"0 30 5 ? * {WEEKDAYS_AFTER}"]),
    # Same zone: the client's hour after the run, summer or winter.
    ("Europe/Paris", "30 5 * * *", "Europe/Paris", ["0 30 6 ? * *"]),
    # Back across midnight: Monday 07:00 in Tokyo is Sunday 22:00 UTC (no summer time there).
    ("Asia/Tokyo", "0 6 * * 1", "UTC", ["0 0 22 ? * SUN"]),
    # Half-hour offset: 07:00 in Kolkata is 01:30 UTC.
    ("Asia/Kolkata", "0 6 * * *", "UTC", ["0 30 1 ? * *"]),
    # Metabase west of the client: Paris 06:30 is 00:30 in New York, or 01:30 in the weeks
    # when New York is on summer time and Paris not yet.
    ("Europe/Paris", "30 5 * * *", "America/New_York", ["0 30 1 ? * *"]),
    # Two runs a weekday that land on different UTC days: one cron each.
    ("America/New_York", "0 10,22 * * 1-5", "UTC",
     ["0 0 16 ? * MON,TUE,WED,THU,FRI", f"0 0 4 ? * {WEEKDAYS_AFTER}"]),
    # Monthly: checked daily an hour after the run's time, converted too.
    ("Europe/Paris", "0 6 1 * *", "UTC", ["0 0 6 ? * *"]),
])
def test_run_times_are_converted_once_for_the_whole_year(
        zone: str, schedule: str, metabase_zone: str, crons: list[str]) -> None:
    assert _crons(zone, schedule, metabase_zone, WINTER) == crons
    assert _crons(zone, schedule, metabase_zone, SUMMER) == crons


def test_the_offset_is_the_one_of_the_instant_given() -> None:
    """Paris goes to summer time at 01:00 UTC on 30 March 2025: the shift changes then."""
    assert zone_shift("Europe/Paris", "UTC", datetime(2025, 3, 30, 0, 59, tzinfo=UTC)) == \
        timedelta(hours=-1)
    assert zone_shift("Europe/Paris", "UTC", datetime(2025, 3, 30, 1, 0, tzinfo=UTC)) == \
        timedelta(hours=-2)
    # New York changes on 9 March, Paris on 30 March: for three weeks they are 5 hours apart.
    assert zone_shift("Europe/Paris", "America/New_York",
                      datetime(2025, 3, 20, tzinfo=UTC)) == timedelta(hours=-5)


def _fires(crons: list[str], zone: str, start: datetime, end: datetime) -> set[datetime]:
    """The instants Quartz crons (read in `zone`, as Metabase reads them) fire in [start, end)."""
    found = set()
    for cron in crons:
        seconds, minutes, hours, _, months, days = cron.split()
        assert seconds == "0"
        five = f"{minutes} {hours} * {months} {days.replace('?', '*')}"
        it = croniter(five, start.astimezone(ZoneInfo(zone)) - timedelta(seconds=1))
        while (fire := it.get_next(datetime)) < end:
            found.add(fire.astimezone(UTC))
    return found


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York", "Asia/Kolkata",
                                  "Pacific/Auckland", "UTC"])
@pytest.mark.parametrize("metabase_zone", ["UTC", "Europe/Paris", "America/Los_Angeles"])
@pytest.mark.parametrize("schedule", ["30 5 * * *", "30 23 * * 1-5", "0 10,22 * * 1-5",
                                      "0,30 0 * * 0,6", "45 */6 * * *"])
def test_every_alert_fires_an_hour_or_two_after_a_run(zone: str, metabase_zone: str,
                                                      schedule: str) -> None:
    """In a winter week and a summer week, Metabase fires once per run of the client: never
    before RUN_MARGIN after it, later only by the year's spread of the zones' shift (an hour
    while only one zone is on summer time, two for zones with opposite seasons)."""
    shifts = {zone_shift(zone, metabase_zone, WINTER + timedelta(days=d)) for d in range(367)}
    crons = _crons(zone, schedule, metabase_zone, WINTER)
    assert _crons(zone, schedule, metabase_zone, SUMMER) == crons  # one cron all year
    for at in (WINTER, SUMMER):
        runs = croniter(schedule, (at - timedelta(days=1)).astimezone(ZoneInfo(zone)))
        due = []
        while (run := runs.get_next(datetime)) < at + timedelta(days=8):
            due.append(run.astimezone(UTC) + RUN_MARGIN)
        fired = _fires(crons, metabase_zone, at, at + timedelta(days=7))
        # One lag for the whole week, from the shift of that week up to the year's largest.
        matches = [max(shifts) - shift for shift in shifts
                   if fired == {d + max(shifts) - shift for d in due
                                if at <= d + max(shifts) - shift < at + timedelta(days=7)}]
        assert matches, (at, crons)


# -- bootstrap and reading the zone ------------------------------------------------------------

def test_bootstrap_sets_the_report_time_zone(standin: StandinServer, project: Path,  # noqa: F811
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    state = standin.metabase.state
    assert "report-timezone" not in state.settings
    done = bootstrap()
    assert state.settings["report-timezone"] == "UTC"  # the default
    assert any("report time zone UTC (was unset)" in step for step in done.steps)
    mb = MetabaseClient.from_env()
    assert metabase_timezone(mb) == "UTC"
    # Another zone: set on the next bootstrap, and only then.
    monkeypatch.setenv("GOALPOST_METABASE_TIMEZONE", "America/New_York")
    before = len(standin.metabase.seen)
    bootstrap()
    puts = [r for r in standin.metabase.seen[before:] if r.path.startswith("/api/setting")
            and r.method == "PUT"]
    assert [r.body for r in puts] == [{"report-timezone": "America/New_York"}]
    assert metabase_timezone(mb) == "America/New_York"
    before = len(standin.metabase.seen)
    assert not any("report time zone" in step for step in bootstrap().steps)
    assert [r for r in standin.metabase.seen[before:] if r.method != "GET"] == []
    # Unset in Metabase (an admin cleared it): the JVM's zone is the one crons are read in.
    mb.put("/api/setting/report-timezone", {"value": None}, what="test")
    state.jvm_timezone = "Asia/Tokyo"
    assert metabase_timezone(mb) == "Asia/Tokyo"
    # A name that is not a zone (Java would read it as GMT) is refused; nothing is written.
    monkeypatch.setenv("GOALPOST_METABASE_TIMEZONE", "Paris")
    before = len(standin.metabase.seen)
    with pytest.raises(ConfigError, match="not an IANA time zone"):
        bootstrap()
    assert [r for r in standin.metabase.seen[before:] if r.method != "GET"] == []
    assert standin.metabase.violations == [] and standin.metabase.errors == []
    assert all(r.status < 400 for r in standin.metabase.seen)


# -- plan and apply -------------------------------------------------------------------------------

def _plan(slug: str, conn: psycopg.Connection, now: datetime):
    return compute_plan(slug, load_client(slug), MetabaseClient.from_env(), conn, now=now)


def _apply(slug: str, conn: psycopg.Connection, server: StandinServer, now: datetime) -> list:
    before = len(server.metabase.seen)
    apply_plan(_plan(slug, conn, now), MetabaseClient.from_env(), conn)
    return [r for r in server.metabase.seen[before:] if r.method != "GET"]


def _schedule(server: StandinServer, slug: str) -> list[str]:
    """The cron of the client's alert in the stand-in."""
    state = server.metabase.state
    collection = next(c["id"] for c in state.collections.values()
                      if c["name"] == f"{slug.title()} Shop")
    card = next(c["id"] for c in state.cards.values()
                if c["collection_id"] == collection and c["name"] == "Alert: low_stock")
    (notification,) = [n for n in state.notifications.values()
                       if n["payload"]["card_id"] == card]
    return [s["cron_schedule"] for s in notification["subscriptions"]]


def test_clients_in_two_zones_get_their_hours_in_metabases(
        standin: StandinServer, project: Path, conn: psycopg.Connection,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    make_client(project, conn, "paris", schedule="30 5 * * *", alerts={"rules": [RULE]})
    make_client(project, conn, "newyork", timezone="America/New_York",
                schedule="30 23 * * 1-5", alerts={"rules": [RULE]})
    bootstrap()  # Metabase in UTC
    plan = _plan("paris", conn, WINTER)
    assert "from Europe/Paris (UTC+01:00) to Metabase's report time zone UTC (UTC+00:00)" \
        in plan.render()
    assert "never early, up to 1 h late in the months the zones' summer times differ" \
        in plan.render()
    for slug in ("paris", "newyork"):
        _apply(slug, conn, standin, WINTER)
    assert _schedule(standin, "paris") == ["0 30 5 ? * *"]
    assert _schedule(standin, "newyork") == [f"0 30 5 ? * {WEEKDAYS_AFTER}"]
    # Applied again the same day: nothing to write.
    for slug in ("paris", "newyork"):
        assert _plan(slug, conn, WINTER).empty
        assert _apply(slug, conn, standin, WINTER) == []
    # In summer the same crons hold (an hour later in local time): nothing to apply.
    for slug in ("paris", "newyork"):
        assert _plan(slug, conn, SUMMER).empty
    # Metabase moved to Paris time: the Paris client's alert is its own hour again, all year.
    monkeypatch.setenv("GOALPOST_METABASE_TIMEZONE", "Europe/Paris")
    bootstrap()
    plan = _plan("paris", conn, SUMMER)
    assert "Metabase's report time zone is the client's (Europe/Paris)" in plan.render()
    _apply("paris", conn, standin, SUMMER)
    assert _schedule(standin, "paris") == ["0 30 6 ? * *"]
    assert _plan("paris", conn, WINTER).empty
    _apply("newyork", conn, standin, SUMMER)
    assert _schedule(standin, "newyork") == [f"0 30 6 ? * {WEEKDAYS_AFTER}"]


def test_a_client_without_metabase_alerts_does_not_read_the_zone(
        standin: StandinServer, project: Path, conn: psycopg.Connection) -> None:  # noqa: F811
    make_client(project, conn, "plain")
    bootstrap()
    before = len(standin.metabase.seen)
    plan = _plan("plain", conn, WINTER)
    assert plan.schedule_note is None and "alert schedules" not in plan.render()
    assert not any(r.path == "/api/setting/" for r in standin.metabase.seen[before:])
