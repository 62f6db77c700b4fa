"""Metabase alerts for the client's alert rules that ask for one (`metabase: true`).

Each such rule becomes a native-SQL card in the client's collection returning the rows that
breach the rule now, and a card notification (`POST /api/notification/`, `send_condition:
has_result`) that emails them after each run: the cron is the client's schedule plus
RUN_MARGIN, so the marts the card reads are fresh, converted to Metabase's report time zone
(which Metabase reads crons in) at the offsets of the day the plan is made. The SQL means
what goalpost.alerts.evaluate means for the same rule (same day, same comparison, same
periods); the difference is that Metabase has no state, so it repeats an alert at every run
while it holds, where Goalpost's own emails tell each situation once.

Kinds that read Goalpost's control schema (stale_source, run_failed) are refused when the
client's YAML is validated: the client's read-only role cannot see it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from goalpost.core import schedules
from goalpost.core.errors import ConfigError
from goalpost.core.identifiers import schema_name
from goalpost.core.registry.alert_rules import (
    INVENTORY_METRICS,
    PERIOD_DAYS,
    SEVERITY_RANK,
    AnomalyRule,
    ChangeRule,
    GoalRule,
    ThresholdRule,
)
from goalpost.core.registry.models import Client

# Metabase checks the card this long after the client's run starts.
RUN_MARGIN = timedelta(hours=1)
CARD_PREFIX = "alerts."
_QUARTZ_DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def metabase_rules(client: Client) -> list[Any]:
    """The client's rules that ask for a Metabase alert."""
    return [rule for rule in client.alerts.rules if rule.metabase]


def card_key(rule: Any) -> str:
    return f"{CARD_PREFIX}{rule.name}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _number(value: float) -> str:
    return f"{value:g}" if float(value) != int(value) else str(int(value))


def _today(client: Client) -> str:
    """The client's today in SQL, whatever the session's time zone (Metabase's may differ)."""
    return f"CAST(now() AT TIME ZONE {_literal(client.timezone)} AS DATE)"


def _names(marts: str) -> str:
    """Location names as the marts have them (the reader cannot see staging)."""
    return (f"SELECT DISTINCT ON (location_id) location_id, location_name FROM {marts}.daily_sales"
            " ORDER BY location_id, sales_date DESC")


def _latest_day(marts: str, metric: str, client: Client) -> str:
    return (f"SELECT MAX(date) AS day FROM {marts}.kpi_daily WHERE metric = {_literal(metric)} "
            f"AND date < {_today(client)}")


def _dimension_columns(dimension: str) -> tuple[str, str]:
    """(select list, join) for a kpi_daily dimension: the location's name beside its id."""
    if dimension == "location":
        return ("k.dimension_value AS location_id, names.location_name, ",
                "LEFT JOIN names ON names.location_id = k.dimension_value ")
    if dimension == "channel":
        return "k.dimension_value AS channel, ", ""
    return "", ""


def threshold_sql(rule: ThresholdRule, slug: str, client: Client) -> str:
    marts = schema_name(slug, "marts")
    if rule.metric in INVENTORY_METRICS:
        column = INVENTORY_METRICS[rule.metric]
        limit = "reorder_point" if rule.value == "reorder_point" else _number(rule.value)
        return (f"SELECT location_id, location_name, product_id, product_name, "
                f"{column} AS {rule.metric}, {limit} AS threshold, as_of\n"
                f"FROM {marts}.inventory_status\n"
                f"WHERE {column} IS NOT NULL AND {limit} IS NOT NULL "
                f"AND {column} {rule.operator} {limit}\n"
                "ORDER BY location_id, product_id")
    columns, join = _dimension_columns(rule.dimension)
    names = f", names AS ({_names(marts)})" if join else ""
    operator, level = rule.limit(client.metric_registry().get(rule.metric))
    return (f"WITH latest AS ({_latest_day(marts, rule.metric, client)}){names}\n"
            f"SELECT k.date, {columns}k.value AS {rule.metric}, {_number(level)} AS "
            f"threshold\nFROM {marts}.kpi_daily AS k JOIN latest ON k.date = latest.day\n{join}"
            f"WHERE k.metric = {_literal(rule.metric)} AND k.dimension = "
            f"{_literal(rule.dimension)} AND k.value {operator} {_number(level)}\n"
            "ORDER BY k.dimension_value")


def change_sql(rule: ChangeRule, slug: str, client: Client) -> str:
    marts = schema_name(slug, "marts")
    metric = client.metric_registry()[rule.metric]
    agg = "SUM" if metric.aggregation == "sum" else "AVG"  # as evaluate.change: totals or means
    days = PERIOD_DAYS[rule.period]
    columns, join = _dimension_columns(rule.dimension)
    names = f", names AS ({_names(marts)})" if join else ""
    moved = "<=" if rule.change_pct < 0 else ">="
    change = "100 * (COALESCE(k.current, 0) - k.previous) / ABS(k.previous)"
    return (f"WITH latest AS ({_latest_day(marts, rule.metric, client)}){names},\n"
            f"periods AS (SELECT dimension_value, latest.day,\n"
            f"  {agg}(value) FILTER (WHERE date > latest.day - {days}) AS current,\n"
            f"  {agg}(value) FILTER (WHERE date <= latest.day - {days}) AS previous\n"
            f"  FROM {marts}.kpi_daily JOIN latest ON date <= latest.day "
            f"AND date > latest.day - {2 * days}\n"
            f"  WHERE metric = {_literal(rule.metric)} AND dimension = "
            f"{_literal(rule.dimension)}\n  GROUP BY dimension_value, latest.day)\n"
            f"SELECT k.day AS date, {columns}k.current, k.previous, "
            f"ROUND(CAST({change} AS NUMERIC), 1) AS change_pct\n"
            f"FROM periods AS k {join}\n"
            f"WHERE k.previous IS NOT NULL AND k.previous <> 0 AND {change} {moved} "
            f"{_number(rule.change_pct)}\n"
            f"  AND ABS(COALESCE(k.current, 0) - k.previous) >= {_number(rule.min_change)}\n"
            "ORDER BY k.dimension_value")


def anomaly_sql(rule: AnomalyRule, slug: str, client: Client) -> str:
    insights = schema_name(slug, "insights")
    wanted = [s for s, rank in SEVERITY_RANK.items() if rank >= SEVERITY_RANK[rule.min_severity]]
    where = [f"date > (SELECT MAX(date) FROM {insights}.anomalies) - {rule.within_days}",
             f"severity IN ({', '.join(_literal(s) for s in wanted)})"]
    if rule.direction != "any":
        where.append(f"direction = {_literal(rule.direction)}")
    if rule.metric is not None:
        where.append(f"metric = {_literal(rule.metric)}")
    if rule.dimension != "any":
        where.append(f"dimension = {_literal(rule.dimension)}")
    return ("SELECT DISTINCT ON (metric, dimension, dimension_value) date, metric, dimension, "
            "dimension_value, ROUND(CAST(value AS NUMERIC), 2) AS value, "
            "ROUND(CAST(expected AS NUMERIC), 2) AS expected, severity, direction\n"
            f"FROM {insights}.anomalies\nWHERE " + "\n  AND ".join(where) + "\n"
            "ORDER BY metric, dimension, dimension_value, date DESC")


def goal_sql(rule: GoalRule, slug: str, client: Client) -> str:
    insights = schema_name(slug, "insights")
    which = f"WHERE goal = {_literal(rule.goal)} " if rule.goal else ""
    return ("SELECT goal, status, as_of, ROUND(CAST(target AS NUMERIC), 2) AS target, "
            "ROUND(CAST(actual_to_date AS NUMERIC), 2) AS actual_to_date, "
            "ROUND(CAST(forecast_at_deadline AS NUMERIC), 2) AS forecast_at_deadline, deadline\n"
            "FROM (SELECT DISTINCT ON (goal) * FROM "
            f"{insights}.goal_progress {which}ORDER BY goal, as_of DESC) AS latest\n"
            f"WHERE status IN ({', '.join(_literal(s) for s in rule.status)})\n"
            "ORDER BY goal")


SQL = {"threshold": threshold_sql, "change": change_sql, "anomaly": anomaly_sql,
       "goal": goal_sql}


def alert_sql(rule: Any, slug: str, client: Client) -> str:
    """The rows breaching `rule` now, as plain Postgres SQL on the client's marts/insights."""
    return SQL[rule.kind](rule, slug, client)


def zone_shift(client_zone: str, metabase_zone: str, at: datetime) -> timedelta:
    """What to add to the client's wall time to get Metabase's, at the instant `at`.

    A fixed offset: Quartz applies Metabase's zone rules, not the client's (see alert_shift).
    """
    instant = at if at.tzinfo else at.replace(tzinfo=UTC)
    client_offset = instant.astimezone(ZoneInfo(client_zone)).utcoffset()
    metabase_offset = instant.astimezone(ZoneInfo(metabase_zone)).utcoffset()
    assert client_offset is not None and metabase_offset is not None
    return metabase_offset - client_offset


def alert_shift(client_zone: str, metabase_zone: str, at: datetime) -> timedelta:
    """The shift the alert crons use: the largest of the year from `at` (one sample a day).

    A cron cannot follow the client's summer time when Metabase's zone does not change with
    it; with the largest shift an alert is never early (it could fire before the run has
    rebuilt the marts), only later than RUN_MARGIN in the months the shifts differ (an hour
    when one zone has summer time, two for opposite seasons), and the cron stays the same all
    year, so nothing needs applying after a clock change.
    """
    start = at if at.tzinfo else at.replace(tzinfo=UTC)
    return max(zone_shift(client_zone, metabase_zone, start + timedelta(days=day))
               for day in range(367))


def alert_crons(client: Client, metabase_zone: str, at: datetime) -> list[str]:
    """Quartz crons (seconds first, `?` for the day of month) firing at least RUN_MARGIN after
    each of the client's runs in a week, in Metabase's report time zone (see alert_shift).

    The runs are converted one by one, so a run shifted across midnight moves to the next or
    previous weekday; runs that no longer share days after the shift get a cron of their own
    (a notification takes several subscriptions). Schedules naming days of the month or
    months cannot be said beside weekdays: they are checked daily after the first run.
    """
    start = datetime(2024, 1, 1)  # a Monday, in the client's wall time
    shift = alert_shift(client.timezone, metabase_zone, at)
    runs = schedules.wall_times(client.schedule, start)
    slots: set[tuple[int, int, int]] = set()
    for run in runs:
        if run >= start + timedelta(days=7):
            break
        moment = run + RUN_MARGIN + shift
        slots.add((moment.weekday(), moment.hour, moment.minute))
    if not slots or _month_bound(client.schedule):
        first = next(schedules.wall_times(client.schedule, start)) + RUN_MARGIN + shift
        return [f"0 {first.minute} {first.hour} ? * *"]
    days_of: dict[tuple[int, int], set[int]] = {}
    for day, hour, minute in slots:
        days_of.setdefault((hour, minute), set()).add(day)
    # Same days -> the hours and minutes run on them; hours grouped by their minutes.
    by_days: dict[frozenset[int], dict[int, set[int]]] = {}
    for (hour, minute), days in days_of.items():
        by_days.setdefault(frozenset(days), {}).setdefault(hour, set()).add(minute)
    crons = []
    for days, hours in by_days.items():
        day_field = "*" if len(days) == 7 else ",".join(_QUARTZ_DAYS[d] for d in sorted(days))
        by_minutes: dict[frozenset[int], list[int]] = {}
        for hour, minutes in hours.items():
            by_minutes.setdefault(frozenset(minutes), []).append(hour)
        for minutes, hour_list in by_minutes.items():
            crons.append(f"0 {','.join(map(str, sorted(minutes)))} "
                         f"{','.join(map(str, sorted(hour_list)))} ? * {day_field}")
    return sorted(crons)


def _month_bound(schedule: str) -> bool:
    """Does the schedule name days of the month or months (not expressible beside weekdays)?"""
    fields = schedule.split()
    return fields[2] != "*" or fields[3] != "*"


def alert_recipients(client: Client, rule: Any) -> list[dict[str, Any]]:
    """The email handler's recipients: the client's group for `owners` (the owners are its
    members), addresses as raw values, the consultant's address."""
    found: list[dict[str, Any]] = []
    for item in rule.recipients or rule.default_recipients():
        if item == "owners":
            found.append({"type": "notification-recipient/group",
                          "permissions_group_id": {"$ref": "group"}})
            continue
        address = client.alerts.consultant_email() if item == "consultant" else item
        if not address:
            raise ConfigError(f"rule {rule.name} is for the consultant but no address is known",
                              hint="set GOALPOST_CONSULTANT_EMAIL or alerts.consultant")
        found.append({"type": "notification-recipient/raw-value",
                      "details": {"value": address}})
    unique = {repr(r): r for r in found}
    return list(unique.values())


def notification_payload(client: Client, rule: Any, metabase_zone: str,
                         at: datetime) -> dict[str, Any]:
    """The notification, its schedule in Metabase's zone `metabase_zone` as at `at`."""
    return {"payload_type": "notification/card",
            "payload": {"card_id": {"$ref": f"card:{card_key(rule)}"},
                        "send_condition": "has_result", "send_once": False},
            "subscriptions": [{"type": "notification-subscription/cron",
                               "cron_schedule": cron, "ui_display_type": "cron/raw"}
                              for cron in alert_crons(client, metabase_zone, at)],
            "handlers": [{"channel_type": "channel/email",
                          "recipients": alert_recipients(client, rule)}]}


def card_payload(slug: str, client: Client, rule: Any) -> dict[str, Any]:
    return {"name": f"Alert: {rule.name}",
            "description": f"Rows breaching alert rule {rule.name} "
                           f"({rule.description or rule.describe()}); emailed by the alert on "
                           "this question when there are any.",
            "display": "table", "type": "question", "collection_id": {"$ref": "collection"},
            "visualization_settings": {},
            "dataset_query": {"database": {"$ref": "database"}, "type": "native",
                              "native": {"query": alert_sql(rule, slug, client),
                                         "template-tags": {}}}}
