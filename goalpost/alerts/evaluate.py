"""What each rule sees now: the dimension values (keys) whose condition holds.

A rule reads the client's marts and insights (or the control schema, for stale sources and
failed runs) and returns an Observation per key whose condition holds; keys it checked and
left out are fine. What to do about it (fire, remind, re-arm) is goalpost.alerts.state's job.
Metric values are those of the latest complete day (before the client's today), like the
goals extension reads them.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from goalpost.alerts.i18n import Language, language
from goalpost.alerts.tables import ClientTables
from goalpost.core.formatting import percent, plain, signed
from goalpost.core.freshness import SourceFreshness, source_freshness
from goalpost.core.registry.alert_rules import (
    INVENTORY_METRICS,
    PERIOD_DAYS,
    SEVERITY_RANK,
    AnomalyRule,
    ChangeRule,
    GoalRule,
    RunFailedRule,
    StaleSourceRule,
    ThresholdRule,
)
from goalpost.core.registry.models import Client

COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
RECENT_DAYS = 14


class RuleError(Exception):
    """A rule cannot be evaluated now (its table is missing, say); the others go on."""


@dataclass
class Observation:
    """One key of a rule whose condition holds, with what the email shows."""

    key: str
    label: str
    summary: str
    condition: str = "triggered"  # a change of condition is a new situation (fires again)
    value: Any = None
    threshold: Any = None
    as_of: date | None = None
    series: dict[str, str] = field(default_factory=dict)  # where its recent values are


@dataclass
class RuleResult:
    checked: int
    triggered: list[Observation]


@dataclass
class Context(ClientTables):
    conn: psycopg.Connection
    slug: str
    client: Client
    now: datetime
    # Within a run: the failed steps' errors ("" when none failed); None: read the last run.
    run_errors: str | None = None

    @property
    def lang(self) -> Language:
        """The client's language, which the summaries are written in."""
        return language(self.client.language)

    def num(self, value: Any) -> str:
        return plain(value, self.lang.locale)

    def today(self) -> date:
        return self.now.astimezone(ZoneInfo(self.client.timezone)).date()



def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def location_names(ctx: Context) -> dict[str, str]:
    if not ctx.exists("staging", "current_locations"):
        return {}
    return {k: v for k, v in ctx.rows(sql.SQL("SELECT location_id, name FROM {}").format(
        ctx.table("staging", "current_locations"))) if v}


def _latest_day(ctx: Context, metric: str) -> date | None:
    if not ctx.exists("marts", "kpi_daily"):
        raise RuleError("no kpi_daily mart yet: the client's models have not been built")
    return ctx.rows(sql.SQL("SELECT max(date) FROM {} WHERE metric = %s AND date < %s").format(
        ctx.table("marts", "kpi_daily")), (metric, ctx.today()))[0][0]


def _words(ctx: Context, operator_: str) -> str:
    _ = ctx.lang.gettext
    return {"<": _("under"), "<=": _("at or under"), ">": _("over"),
            ">=": _("at or over")}[operator_]


def _dimension_label(ctx: Context, dimension: str, value: str, names: dict[str, str]) -> str:
    if dimension == "all":
        return ctx.lang.gettext("total")
    if dimension == "location":
        return names.get(value, value)
    if dimension == "channel":
        return ctx.lang.gettext("channel {value}").format(value=value)
    return f"{dimension} {value}"


def threshold(ctx: Context, rule: ThresholdRule) -> RuleResult:
    if rule.metric in INVENTORY_METRICS:
        return _stock_threshold(ctx, rule)
    day = _latest_day(ctx, rule.metric)
    if day is None:
        return RuleResult(0, [])
    rows = ctx.rows(sql.SQL("SELECT dimension_value, value FROM {} WHERE metric = %s AND "
                            "dimension = %s AND date = %s ORDER BY dimension_value").format(
        ctx.table("marts", "kpi_daily")), (rule.metric, rule.dimension, day))
    names = location_names(ctx)
    metric = ctx.client.metric_registry()[rule.metric]
    label = ctx.lang.metric_label(metric)
    operator, limit = rule.limit(metric)  # `warning` or `critical`: the metric's levels
    found = []
    for value_of, value in rows:
        if value is None or not COMPARE[operator](float(value), float(limit)):
            continue
        where = _dimension_label(ctx, rule.dimension, value_of, names)
        found.append(Observation(
            key=value_of, label=where, value=float(value), threshold=float(limit),
            as_of=day,
            summary=ctx.lang.gettext("{metric} {value} on {day} is {comparison} {limit} "
                                     "({where})").format(
                metric=label, value=ctx.num(value), day=day,
                comparison=_words(ctx, operator), limit=ctx.num(limit),
                where=where),
            series={"metric": rule.metric, "dimension": rule.dimension, "value": value_of}))
    return RuleResult(len(rows), found)


def _stock_threshold(ctx: Context, rule: ThresholdRule) -> RuleResult:
    if not ctx.exists("marts", "inventory_status"):
        raise RuleError("no inventory_status mart yet: the client's models have not been built")
    column = INVENTORY_METRICS[rule.metric]
    rows = ctx.rows(sql.SQL(
        "SELECT location_id, location_name, product_id, product_name, {}, reorder_point, "
        "as_of FROM {} ORDER BY location_id, product_id").format(
        sql.Identifier(column), ctx.table("marts", "inventory_status")))
    _ = ctx.lang.gettext
    what = _("stock") if rule.metric == "stock" else _("days of cover")
    found = []
    for location, location_name, product, product_name, value, reorder_point, as_of in rows:
        limit = reorder_point if rule.value == "reorder_point" else rule.value
        if value is None or limit is None:
            continue
        if not COMPARE[rule.operator](float(value), float(limit)):
            continue
        label = _("{product} at {location}").format(product=product_name or product,
                                                    location=location_name or location)
        shown = _("the reorder point {value}").format(value=ctx.num(limit)) \
            if rule.value == "reorder_point" else ctx.num(limit)
        found.append(Observation(
            key=f"{location}/{product}", label=label, value=float(value),
            threshold=float(limit), as_of=as_of,
            summary=_("{item}: {what} {value} is {comparison} {limit} (as of {day})").format(
                item=label, what=what, value=ctx.num(value),
                comparison=_words(ctx, rule.operator), limit=shown, day=as_of),
            series={"stock": rule.metric, "location": location, "product": product}))
    return RuleResult(len(rows), found)


def change(ctx: Context, rule: ChangeRule) -> RuleResult:
    day = _latest_day(ctx, rule.metric)
    if day is None:
        return RuleResult(0, [])
    metric = ctx.client.metric_registry()[rule.metric]
    days = PERIOD_DAYS[rule.period]
    # Totals for metrics that add up; other metrics (ratios, averages) by their daily mean.
    agg = sql.SQL("sum" if metric.aggregation == "sum" else "avg")
    rows = ctx.rows(sql.SQL(
        "SELECT dimension_value, {agg}(value) FILTER (WHERE date > %(day)s - %(n)s::int), "
        "{agg}(value) FILTER (WHERE date <= %(day)s - %(n)s::int) FROM {table} "
        "WHERE metric = %(metric)s AND dimension = %(dimension)s AND date <= %(day)s AND "
        "date > %(day)s - 2 * %(n)s::int GROUP BY dimension_value ORDER BY dimension_value").format(
        agg=agg, table=ctx.table("marts", "kpi_daily")),
        {"day": day, "n": days, "metric": rule.metric, "dimension": rule.dimension})
    names = location_names(ctx)
    found, checked = [], 0
    for value_of, current, previous in rows:
        if previous is None or float(previous) == 0:
            continue  # no previous period to compare with
        checked += 1
        current = float(current or 0)
        delta = current - float(previous)
        pct = 100 * delta / abs(float(previous))
        moved = pct <= rule.change_pct if rule.change_pct < 0 else pct >= rule.change_pct
        if not moved or abs(delta) < rule.min_change:
            continue
        where = _dimension_label(ctx, rule.dimension, value_of, names)
        _ = ctx.lang.gettext
        text = _("{metric} {value} over the day to {day}, {pct} against {previous} the day "
                 "before ({where})") if days == 1 else \
            _("{metric} {value} over the {days} days to {day}, {pct} against {previous} the "
              "{days} days before ({where})")
        found.append(Observation(
            key=value_of, label=where, value=round(pct, 1), threshold=rule.change_pct,
            condition="fall" if pct < 0 else "rise", as_of=day,
            summary=text.format(
                metric=ctx.lang.metric_label(metric), value=ctx.num(current), day=day,
                days=days, pct=signed(percent(round(pct, 1) / 100, ctx.lang.locale),
                                      round(pct, 1)),
                previous=ctx.num(previous), where=where),
            series={"metric": rule.metric, "dimension": rule.dimension, "value": value_of}))
    return RuleResult(checked, found)


def anomaly(ctx: Context, rule: AnomalyRule) -> RuleResult:
    if not ctx.exists("insights", "anomalies"):
        raise RuleError("no anomalies table: the anomalies extension has not written one for "
                        "this client (is it in `extensions:`?)")
    wanted = [s for s, rank in SEVERITY_RANK.items() if rank >= SEVERITY_RANK[rule.min_severity]]
    rows = ctx.rows(sql.SQL(
        "SELECT DISTINCT ON (metric, dimension, dimension_value) metric, dimension, "
        "dimension_value, date, value, expected, severity, direction FROM {} "
        "WHERE date > (SELECT max(date) FROM {}) - %(days)s::int AND severity = ANY(%(severity)s) "
        "AND (%(direction)s = 'any' OR direction = %(direction)s) "
        "AND (%(metric)s::text IS NULL OR metric = %(metric)s) "
        "AND (%(dimension)s = 'any' OR dimension = %(dimension)s) "
        "ORDER BY metric, dimension, dimension_value, date DESC").format(
        ctx.table("insights", "anomalies"), ctx.table("insights", "anomalies")),
        {"days": rule.within_days, "severity": wanted, "direction": rule.direction,
         "metric": rule.metric, "dimension": rule.dimension})
    names = location_names(ctx)
    metrics = ctx.client.metric_registry()
    _ = ctx.lang.gettext
    kinds = {("low", "drop"): _("a low drop"), ("medium", "drop"): _("a medium drop"),
             ("high", "drop"): _("a high drop"), ("low", "spike"): _("a low spike"),
             ("medium", "spike"): _("a medium spike"), ("high", "spike"): _("a high spike")}
    found = []
    for metric, dimension, value_of, day, value, expected, severity, direction in rows:
        where = _dimension_label(ctx, dimension, value_of, names)
        label = ctx.lang.metric_label(metrics[metric]) if metric in metrics else metric
        found.append(Observation(
            key=f"{metric}/{dimension}/{value_of}", label=f"{label}, {where}",
            value=_number(value), threshold=_number(expected), condition=direction,
            as_of=day,
            summary=_("{metric} {value} on {day}: {kind} (expected about {expected}; "
                      "{where})").format(
                metric=label, value=ctx.num(value), day=day,
                kind=kinds.get((severity, direction), f"{severity} {direction}"),
                expected=ctx.num(expected), where=where),
            series={"metric": metric, "dimension": dimension, "value": value_of}))
    return RuleResult(len(rows), found)


def goal(ctx: Context, rule: GoalRule) -> RuleResult:
    if not ctx.exists("insights", "goal_progress"):
        raise RuleError("no goal_progress table: the goals extension has not written one for "
                        "this client (is it in `extensions:`?)")
    rows = ctx.rows(sql.SQL(
        "SELECT DISTINCT ON (goal) goal, status, as_of, target, actual_to_date, "
        "forecast_at_deadline, deadline FROM {} WHERE (%(goal)s::text IS NULL OR goal = "
        "%(goal)s) ORDER BY goal, as_of DESC").format(ctx.table("insights", "goal_progress")),
        {"goal": rule.goal})
    _ = ctx.lang.gettext
    statuses = {"at-risk": _("at-risk"), "off-track": _("off-track")}
    found = []
    for name, status, as_of, target, actual, forecast, deadline in rows:
        if status not in rule.status:
            continue
        found.append(Observation(
            key=name, label=_("goal {goal}").format(goal=name), value=_number(forecast),
            threshold=_number(target), condition=status, as_of=as_of,
            summary=_("goal {goal} is {status}: {actual} to date, {forecast} forecast by "
                      "{deadline} against a target of {target}").format(
                goal=name, status=statuses.get(status, status), actual=ctx.num(actual),
                forecast=ctx.num(forecast), deadline=deadline, target=ctx.num(target))))
    return RuleResult(len(rows), found)


def stale_source(ctx: Context, rule: StaleSourceRule) -> RuleResult:
    report = [f for f in source_freshness(ctx.conn, ctx.slug, ctx.client, ctx.now)
              if rule.source in (None, f.source)]
    found = [Observation(
        key=f.source, label=ctx.lang.gettext("source {source}").format(source=f.source),
        summary=_stale(ctx, f),
        value=f.last_data_at.isoformat(timespec="minutes") if f.last_data_at else "never",
        threshold=f"{f.max_age.total_seconds() / 3600:g} hours")
        for f in report if f.stale]
    return RuleResult(len(report), found)


def _span(ctx: Context, delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 72:
        return ctx.lang.ngettext("{n} hour", "{n} hours", round(hours)).format(n=round(hours))
    return ctx.lang.ngettext("{n} day", "{n} days", round(hours / 24)).format(
        n=round(hours / 24))


def _stale(ctx: Context, freshness: SourceFreshness) -> str:
    """What SourceFreshness.describe says, in the client's language."""
    _ = ctx.lang.gettext
    if freshness.last_data_at is None:
        return _("source {source}: no data has arrived yet from {stream}").format(
            source=freshness.source, stream=freshness.stream)
    return _("source {source} is stale: no new data from {stream} for {age} (expected at "
             "least every {max_age})").format(
        source=freshness.source, stream=freshness.stream,
        age=_span(ctx, ctx.now - freshness.last_data_at), max_age=_span(ctx, freshness.max_age))


def run_failed(ctx: Context, rule: RunFailedRule) -> RuleResult:
    errors, run = ctx.run_errors, None
    if errors is None:
        last = ctx.rows(sql.SQL("SELECT id, status, error FROM goalpost.runs WHERE client = %s "
                                "AND status <> 'running' ORDER BY id DESC LIMIT 1"),
                        (ctx.slug,))
        if not last:
            return RuleResult(0, [])
        run, status, error = last[0]
        errors = (error or "failed") if status == "failed" else ""
    if not errors:
        return RuleResult(1, [])
    _ = ctx.lang.gettext
    return RuleResult(1, [Observation(
        key="run", label=_("run of {client}").format(client=ctx.slug), condition="failed",
        value=run, summary=_("the run of {client} failed: {errors}").format(
            client=ctx.client.name, errors=errors))])


EVALUATORS = {"threshold": threshold, "change": change, "anomaly": anomaly, "goal": goal,
              "stale_source": stale_source, "run_failed": run_failed}


def evaluate(ctx: Context, rule: Any) -> RuleResult:
    """The keys of `rule` whose condition holds now; RuleError when it cannot be evaluated."""
    return EVALUATORS[rule.kind](ctx, rule)


def recent_values(ctx: Context, observation: Observation) -> list[tuple[date, float]]:
    """The series behind an observation, for the email's chart: the last stock counts of a
    product, or the metric's last days (ending at the observed day)."""
    series = observation.series
    if "stock" in series:
        if series["stock"] != "stock" or not ctx.exists("staging", "stock_counts"):
            return []
        rows = ctx.rows(sql.SQL(
            "SELECT counted_on, on_hand FROM {} WHERE location_id = %s AND product_id = %s "
            "ORDER BY counted_on DESC LIMIT %s").format(ctx.table("staging", "stock_counts")),
            (series["location"], series["product"], RECENT_DAYS))
    elif "metric" in series and observation.as_of is not None:
        rows = ctx.rows(sql.SQL(
            "SELECT date, value FROM {} WHERE metric = %s AND dimension = %s AND "
            "dimension_value = %s AND date > %s AND date <= %s ORDER BY date DESC").format(
            ctx.table("marts", "kpi_daily")),
            (series["metric"], series["dimension"], series["value"],
             observation.as_of - timedelta(days=RECENT_DAYS), observation.as_of))
    else:
        return []
    return [(day, float(value)) for day, value in reversed(rows) if value is not None]
