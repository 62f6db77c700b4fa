"""Metabase's report time zone: the one bootstrap sets and the one alert schedules are in.

Metabase reads a notification's Quartz cron in its `report-timezone` setting, or in the JVM's
zone when that is unset; the same setting is the session time zone of its queries (what
`now()` and relative date filters such as "past 30 days" count from, how `timestamptz`
values are shown). Goalpost sets it from GOALPOST_METABASE_TIMEZONE at bootstrap and converts
each client's run times to it when planning.
"""

from __future__ import annotations

import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from goalpost.core.errors import ConfigError
from goalpost.metabase.api import MetabaseClient, MetabaseError

VARIABLE = "GOALPOST_METABASE_TIMEZONE"
DEFAULT = "UTC"
SETTING = "report-timezone"


def known_zone(name: str) -> bool:
    """Is `name` an IANA zone? (Java turns an unknown id into GMT without a word.)"""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def wanted_timezone() -> str:
    """The report time zone bootstrap gives Metabase: GOALPOST_METABASE_TIMEZONE, else UTC."""
    name = os.environ.get(VARIABLE, "").strip() or DEFAULT
    if not known_zone(name):
        raise ConfigError(f"{VARIABLE}={name!r} is not an IANA time zone",
                          hint="use a name such as UTC or Europe/Paris")
    return name


def metabase_timezone(mb: MetabaseClient) -> str:
    """The zone Metabase reads notification crons in: `report-timezone`, else the JVM's.

    Read from the settings list: `GET /api/setting/{key}` answers a string as a bare body,
    not JSON. When the setting is unset, the public `report-timezone-long` property is the
    zone Metabase falls back to.
    """
    settings = {s["key"]: s.get("value")
                for s in mb.get("/api/setting/", what="reading Metabase's report time zone")}
    name = settings.get(SETTING)
    if not name:
        props = mb.get("/api/session/properties", what="reading Metabase's default time zone")
        name = props.get("report-timezone-long")
    if not name:
        raise MetabaseError("Metabase tells neither its report time zone nor its default one",
                            hint="run `goalpost metabase bootstrap` to set report-timezone")
    if not known_zone(name):
        raise MetabaseError(f"Metabase's report time zone {name!r} is not an IANA time zone",
                            hint=f"set {VARIABLE} and run `goalpost metabase bootstrap`")
    return name
