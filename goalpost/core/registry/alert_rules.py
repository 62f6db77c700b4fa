"""The `alerts:` key of a client's YAML: rules, recipients, quiet hours, reminders.

A rule names what needs someone's attention (a metric past a threshold, a change against the
previous period, an anomaly, a goal at risk, a stale source, a failed run). goalpost.alerts
evaluates the rules after each run; this module only says what a valid rule is, with messages
that name the field (goalpost.registry.store adds the file and line).
"""

from __future__ import annotations

import os
import re
from abc import abstractmethod
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from goalpost.core.identifiers import NAME_RE
from goalpost.core.metrics import Metric, standard_metrics

EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
Name = Annotated[str, Field(pattern=NAME_RE.pattern, max_length=40)]

# Metrics of the inventory marts (per location and product), beside kpi_daily's metrics:
# alert name -> column of <slug>_marts.inventory_status.
INVENTORY_METRICS = {"stock": "on_hand", "days_of_cover": "days_of_cover"}
SEVERITIES = ("info", "warning", "critical")
RECIPIENT_WORDS = ("owners", "consultant")
CONSULTANT_ENV = "GOALPOST_CONSULTANT_EMAIL"
# How far back a `change` rule compares, by its period.
PERIOD_DAYS = {"day": 1, "week": 7, "month": 28}
# Anomaly severities in order: a rule's min_severity takes that one and those above.
SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3}
# Translates a rule's description (goalpost.alerts.i18n); English by default.
Gettext = Callable[[str], str]
_DURATION = re.compile(r"^(\d+)\s*(m|h|d|w)$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class AlertContext:
    """What rules are checked against: the client's metrics, named goals, sources, owners.
    `metrics` is None when the client's metrics are themselves invalid (reported there)."""

    metrics: dict[str, Metric] | None = None
    goals: frozenset[str] = field(default_factory=frozenset)
    sources: frozenset[str] = field(default_factory=frozenset)
    has_owners: bool = True


# Set by Client's validator around the validation of one client; None: standard metrics,
# any goal or source name accepted.
ALERT_CONTEXT: ContextVar[AlertContext | None] = ContextVar("alert_context", default=None)


def _context() -> AlertContext:
    found = ALERT_CONTEXT.get()
    return found if found is not None else AlertContext(metrics=standard_metrics())


def _english(message: str) -> str:
    return message


def parse_duration(value: Any) -> timedelta:
    """'30m', '12h', '2d' or '1w' as a timedelta (ValueError otherwise)."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(str(value).strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{value!r} is not a duration: write a number and a unit, e.g. 30m, "
                         "12h, 2d or 1w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def check_recipient(value: str) -> str:
    """An email address, `owners` (the client's owners) or `consultant`."""
    text = value.strip()
    if text in RECIPIENT_WORDS:
        return text
    if EMAIL_RE.match(text):
        return text.lower()
    raise ValueError(f"{value!r} is not a recipient: use an email address (name@example.com), "
                     "`owners` (the client's owners) or `consultant`")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Rule(_Strict):
    """What every rule has: a name, a severity, who is told, and how often to remind."""

    name: Name
    description: str | None = Field(default=None, description="shown in the email")
    severity: Literal[SEVERITIES] = "warning"  # type: ignore[valid-type]
    recipients: list[str] | None = Field(
        default=None, validate_default=True,
        description="email addresses, `owners` or `consultant` (default: owners)")
    remind_after: timedelta | None = Field(
        default=None, description="remind while the situation lasts, e.g. 24h (default: the "
        "alerts' remind_after, else never)")
    metabase: bool = Field(
        default=False, description="also a Metabase alert: a card of the rows breaching the "
        "rule, emailed by Metabase after each run when it has rows (`goalpost metabase apply`)")

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            if not _context().has_owners and cls.default_recipients() == ["owners"]:
                raise ValueError("required: the client has no owners to tell (add owners, or "
                                 "list email addresses here)")
            return value
        if not value:
            raise ValueError("give at least one recipient, or leave the key out for the owners")
        return list(dict.fromkeys(check_recipient(item) for item in value))

    @field_validator("remind_after", mode="before")
    @classmethod
    def _remind(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @classmethod
    def default_recipients(cls) -> list[str]:
        return ["owners"]

    @field_validator("metabase")
    @classmethod
    def _metabase(cls, value: bool) -> bool:
        if value and cls.metabase_refusal:
            raise ValueError(f"{cls.metabase_refusal}; remove `metabase: true` (the email "
                             "alert still runs)")
        return value

    # Why the rule cannot be a Metabase alert ("" when it can): Metabase reads only the
    # client's marts and insights, through its read-only role.
    metabase_refusal: ClassVar[str] = ""

    @abstractmethod
    def describe(self, _: Gettext = _english) -> str:
        """The condition in words, for the CLI and the emails; `_` translates the words (the
        alert emails pass the client's language, goalpost.alerts.i18n)."""


def _known_metric(value: str, *, inventory: bool) -> str:
    metrics = _context().metrics
    known = list(metrics or ()) + (list(INVENTORY_METRICS) if inventory else [])
    if metrics is not None and value not in known:
        raise ValueError(f"unknown metric {value!r}; the client's metrics are "
                         f"{', '.join(known)}")
    return value


def _metric_dimension(metric: str | None, dimension: str) -> str:
    metrics = _context().metrics or {}
    if metric in INVENTORY_METRICS:
        if dimension not in ("product", "all"):
            raise ValueError(f"{metric} is known per location and product: use dimension "
                             "product")
        return "product"
    if dimension == "product":
        raise ValueError(f"dimension product goes with the inventory metrics "
                         f"({', '.join(INVENTORY_METRICS)}); {metric} is per location or "
                         "channel")
    if metric in metrics and dimension not in ("all", "any") \
            and dimension not in metrics[metric].dimensions:
        raise ValueError(f"metric {metric} is not computed per {dimension}")
    return dimension


def _per(dimension: str, _: Gettext) -> str:
    return {"all": _("in total"), "any": _("in total or per location or channel"),
            "product": _("per location and product"), "location": _("per location"),
            "channel": _("per channel")}[dimension]


class _MetricRule(_Rule):
    """A rule on a metric, optionally per dimension value: the metric must be one of the
    client's (or, where `inventory_metrics`, of the inventory marts), computed per that
    dimension. Subclasses declare `metric` before `dimension`."""

    inventory_metrics: ClassVar[bool] = False

    @field_validator("metric", check_fields=False)
    @classmethod
    def _metric(cls, value: str | None) -> str | None:
        return None if value is None else _known_metric(value, inventory=cls.inventory_metrics)

    @field_validator("dimension", check_fields=False)
    @classmethod
    def _dimension(cls, value: str, info: ValidationInfo) -> str:
        metric = info.data.get("metric")
        return value if metric is None else _metric_dimension(metric, value)


class ThresholdRule(_MetricRule):
    """A metric's latest value (of its latest complete period, at its rhythm) past a number
    or past the warning or critical level of its `thresholds` (their direction gives the
    operator: under a `min` level, over a `max` one), or (stock) under each product's reorder
    point."""

    kind: Literal["threshold"]
    inventory_metrics: ClassVar[bool] = True
    metric: str
    dimension: Literal["all", "location", "channel", "product"] = Field(
        default="all", validate_default=True,
        description="all (the total), location, channel; product (location x product) for "
        "the inventory metrics stock and days_of_cover")
    operator: Literal["<", "<=", ">", ">="] | None = None
    value: float | Literal["reorder_point", "warning", "critical"]

    @field_validator("value")
    @classmethod
    def _value(cls, value: float | str, info: ValidationInfo) -> float | str:
        metric = info.data.get("metric")
        if value == "reorder_point" and metric not in (None, "stock"):
            raise ValueError("reorder_point is a threshold for the stock metric only; give a "
                             "number")
        if value in ("warning", "critical"):
            metrics = _context().metrics or {}
            found = metrics.get(metric) if metric else None
            if metrics and (found is None or found.thresholds is None
                            or getattr(found.thresholds, value) is None):
                raise ValueError(f"metric {metric} has no {value} level: give it "
                                 f"`thresholds: {{direction: min or max, {value}: ...}}` in "
                                 "metrics:, or give a number")
            if info.data.get("operator") is not None:
                raise ValueError(f"the {value} level's direction gives the operator: leave "
                                 "`operator` out")
        elif info.data.get("operator") is None and "operator" in info.data:
            raise ValueError("a number needs an `operator` (<, <=, > or >=)")
        return value

    def limit(self, metric: Metric | None) -> tuple[str, float | str]:
        """(operator, value): the metric's level and its direction's operator for `warning`
        and `critical`."""
        if self.value in ("warning", "critical") and metric is not None \
                and metric.thresholds is not None:
            level = getattr(metric.thresholds, str(self.value))
            return ("<" if metric.thresholds.direction == "min" else ">"), float(level)
        return str(self.operator), self.value

    def describe(self, _: Gettext = _english) -> str:
        limits = {"reorder_point": _("the reorder point"), "warning": _("its warning level"),
                  "critical": _("its critical level")}
        limit = limits.get(str(self.value)) or f"{self.value:g}"
        operator = self.operator or _("past")
        return f"{self.metric} {operator} {limit}, {_per(self.dimension, _)}"


class ChangeRule(_MetricRule):
    """A metric's total over the latest period against the period before, in %, with an
    absolute floor so that small numbers do not alert on large percentages."""

    kind: Literal["change"]
    metric: str
    dimension: Literal["all", "location", "channel"] = Field(default="all",
                                                            validate_default=True)
    period: Literal["day", "week", "month"] = Field(
        default="week", description="the latest 1, 7 or 28 days against the ones before")
    change_pct: float = Field(description="negative: a fall of at least this much; positive: "
                              "a rise of at least this much")
    min_change: float = Field(default=0, ge=0, description="and at least this much in the "
                              "metric's unit (the absolute floor)")

    @field_validator("change_pct")
    @classmethod
    def _change(cls, value: float) -> float:
        if value == 0 or value <= -100:
            raise ValueError("give a fall (e.g. -20, above -100) or a rise (e.g. 30) in %")
        return value

    def describe(self, _: Gettext = _english) -> str:
        floor = _(" and by at least {change}").format(change=f"{self.min_change:g}") \
            if self.min_change else ""
        text = {("fall", "day"): _("{metric} falls by {pct}% or more{floor} over a day against "
                                   "the day before, {per}"),
                ("fall", "week"): _("{metric} falls by {pct}% or more{floor} over a week "
                                    "against the week before, {per}"),
                ("fall", "month"): _("{metric} falls by {pct}% or more{floor} over a month "
                                     "against the month before, {per}"),
                ("rise", "day"): _("{metric} rises by {pct}% or more{floor} over a day against "
                                   "the day before, {per}"),
                ("rise", "week"): _("{metric} rises by {pct}% or more{floor} over a week "
                                    "against the week before, {per}"),
                ("rise", "month"): _("{metric} rises by {pct}% or more{floor} over a month "
                                     "against the month before, {per}")}[
            ("fall" if self.change_pct < 0 else "rise", self.period)]
        return text.format(metric=self.metric, pct=f"{abs(self.change_pct):g}", floor=floor,
                           per=_per(self.dimension, _))


class AnomalyRule(_MetricRule):
    """An anomaly the anomalies extension found on a recent day."""

    kind: Literal["anomaly"]
    metric: str | None = Field(default=None, description="default: any metric")
    dimension: Literal["any", "all", "location", "channel"] = Field(default="any",
                                                                    validate_default=True)
    min_severity: Literal["low", "medium", "high"] = "medium"
    direction: Literal["any", "spike", "drop"] = "any"
    within_days: int = Field(default=1, ge=1, le=31, description="anomalies of the latest "
                             "N days of data")

    def describe(self, _: Gettext = _english) -> str:
        text = {"any": _("an anomaly of {metric} ({severity} severity or more) in the latest "
                         "{days} day(s), {per}"),
                "spike": _("a spike of {metric} ({severity} severity or more) in the latest "
                           "{days} day(s), {per}"),
                "drop": _("a drop of {metric} ({severity} severity or more) in the latest "
                          "{days} day(s), {per}")}[self.direction]
        severities = {"low": _("low"), "medium": _("medium"), "high": _("high")}
        return text.format(metric=self.metric or _("any metric"),
                           severity=severities[self.min_severity], days=self.within_days,
                           per=_per(self.dimension, _))


class GoalRule(_Rule):
    """A goal whose latest status (goals extension) is at risk or off track."""

    kind: Literal["goal"]
    goal: str | None = Field(default=None, description="a goal's name (default: every goal)")
    status: list[Literal["at-risk", "off-track"]] = Field(
        default_factory=lambda: ["at-risk", "off-track"], min_length=1)

    @field_validator("goal")
    @classmethod
    def _goal(cls, value: str | None) -> str | None:
        goals = _context().goals
        if value is not None and ALERT_CONTEXT.get() is not None and value not in goals:
            named = ", ".join(sorted(goals)) or "none: give the goal a `name`"
            raise ValueError(f"no goal named {value!r} (named goals: {named})")
        return value

    def describe(self, _: Gettext = _english) -> str:
        statuses = {"at-risk": _("at-risk"), "off-track": _("off-track")}
        return _("goal {goal} is {status}").format(
            goal=self.goal or _("(any)"),
            status=_(" or ").join(statuses[s] for s in self.status))


class StaleSourceRule(_Rule):
    """A source whose data is older than twice the client's schedule (goalpost.freshness)."""

    kind: Literal["stale_source"]
    metabase_refusal: ClassVar[str] = (
        "a stale_source rule cannot be a Metabase alert: a source's freshness is in "
        "Goalpost's control schema, which the client's read-only role (Metabase's "
        "connection) cannot see")
    source: str | None = Field(default=None, description="default: every source")

    @field_validator("source")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        sources = _context().sources
        if value is not None and ALERT_CONTEXT.get() is not None and value not in sources:
            raise ValueError(f"no source named {value!r} (sources: "
                             f"{', '.join(sorted(sources)) or 'none'})")
        return value

    def describe(self, _: Gettext = _english) -> str:
        return _("source {source} has no new data for twice the schedule's interval").format(
            source=self.source or _("(any)"))


class RunFailedRule(_Rule):
    """A run of the client failed (a step failed); for the consultant by default."""

    kind: Literal["run_failed"]
    metabase_refusal: ClassVar[str] = (
        "a run_failed rule cannot be a Metabase alert: runs are in Goalpost's control "
        "schema, which the client's read-only role (Metabase's connection) cannot see")

    @classmethod
    def default_recipients(cls) -> list[str]:
        return ["consultant"]

    def describe(self, _: Gettext = _english) -> str:
        return _("a run of the client failed")


RULE_KINDS = {"threshold": ThresholdRule, "change": ChangeRule, "anomaly": AnomalyRule,
              "goal": GoalRule, "stale_source": StaleSourceRule, "run_failed": RunFailedRule}
# Tags in pydantic's error locations (goalpost.registry.store leaves them out of messages).
RULE_TAGS = tuple(f"{kind}_rule" for kind in RULE_KINDS)


def _rule_tag(value: Any) -> str | None:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return f"{kind}_rule" if kind in RULE_KINDS else None


Rule = Annotated[
    Annotated[ThresholdRule, Tag("threshold_rule")] | Annotated[ChangeRule, Tag("change_rule")]
    | Annotated[AnomalyRule, Tag("anomaly_rule")] | Annotated[GoalRule, Tag("goal_rule")]
    | Annotated[StaleSourceRule, Tag("stale_source_rule")]
    | Annotated[RunFailedRule, Tag("run_failed_rule")],
    Discriminator(_rule_tag, custom_error_type="invalid_kind",
                  custom_error_message="`kind` must be one of " + ", ".join(RULE_KINDS),
                  custom_error_context={}),
]


class QuietHours(_Strict):
    """Hours (client's time zone) when deliveries wait, unless critical. Write them quoted:
    start: "21:00"."""

    start: time
    end: time

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        if isinstance(value, int):
            raise ValueError("quote the time (\"21:00\"): unquoted, YAML may read it as a "
                             "number")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are the same time: remove quiet_hours instead")
        return self


class Alerts(_Strict):
    """The client's alert rules and how their emails go out."""

    rules: list[Rule] = Field(default_factory=list)
    consultant: str | None = Field(
        default=None, description="the consultant's email for `consultant` recipients "
        "(default: GOALPOST_CONSULTANT_EMAIL)")
    quiet_hours: QuietHours | None = None
    remind_after: timedelta | None = Field(
        default=None, description="default reminder interval of the rules (default: never)")
    dashboard_url: str | None = Field(default=None, description="a link in every email, e.g. "
                                      "the client's Metabase dashboard")

    @field_validator("consultant")
    @classmethod
    def _consultant(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL_RE.match(value):
            raise ValueError(f"{value!r} is not an email address (expected name@example.com)")
        return None if value is None else value.lower()

    @field_validator("remind_after", mode="before")
    @classmethod
    def _remind(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @field_validator("dashboard_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s]+$", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    def consultant_email(self) -> str | None:
        """The consultant's address: `alerts.consultant`, else GOALPOST_CONSULTANT_EMAIL."""
        if self.consultant:
            return self.consultant
        return os.environ.get(CONSULTANT_ENV, "").strip().lower() or None

    @field_validator("rules")
    @classmethod
    def _unique(cls, value: list[Any]) -> list[Any]:
        names = [rule.name for rule in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(dupes)}")
        return value

    def rule(self, name: str) -> Any:
        return next((rule for rule in self.rules if rule.name == name), None)
