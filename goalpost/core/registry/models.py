"""The client registry's schema: what a `clients/<slug>.yaml` may say.

Validation errors are turned into messages naming the file, line and field by
goalpost.registry.store. Alert rules are in goalpost.registry.alert_rules; dashboards join
this schema in later versions; unknown keys are refused so that typos do not pass silently.
"""

from __future__ import annotations

import calendar
import re
from contextvars import ContextVar
from datetime import date, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from goalpost.core import countries, formatting, money, schedules, vocabulary
from goalpost.core.canonical import ENTITIES, ENTITY_NAMES
from goalpost.core.dimensions import Dimension, dimension_names
from goalpost.core.errors import GoalpostError
from goalpost.core.identifiers import NAME_RE
from goalpost.core.metrics import Metric, MetricOverride, resolve, standard_metrics
from goalpost.core.metrics import relationships as edges
from goalpost.core.metrics.relationships import Relationship
from goalpost.core.registry.alert_rules import (
    ALERT_CONTEXT,
    AlertContext,
    Alerts,
    check_recipient,
)

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# ISO 4217 codes that name no money a business is paid in.
NOT_MONEY = {"XXX": "transactions without a currency", "XTS": "testing"}

Name = Annotated[str, Field(pattern=NAME_RE.pattern, max_length=40)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Owner(_Strict):
    """Someone at the client who reads the dashboards and the alert emails."""

    name: str = Field(min_length=1)
    email: str

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not EMAIL_RE.match(value):
            raise ValueError(f"{value!r} is not an email address (expected name@example.com)")
        return value.lower()


class FileStream(_Strict):
    """One stream of a file source: the files of one kind (e.g. the monthly sales exports)."""

    name: Name
    path: str = Field(min_length=1, description="a file, a folder or a glob; relative paths "
                      "are relative to the project root")
    entity: Literal[ENTITY_NAMES]  # type: ignore[valid-type]
    primary_key: list[str] = Field(default_factory=list)
    columns: dict[str, str] = Field(default_factory=dict)
    format: Literal["auto", "csv", "xlsx"] = "auto"
    delimiter: str = "auto"
    encoding: str = "auto"
    decimal: Literal["auto", ".", ","] = "auto"
    date_format: str = "auto"
    sheet: str | None = None

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str) -> str:
        value = {"tab": "\t", "\\t": "\t"}.get(value, value)
        if value != "auto" and len(value) != 1:
            raise ValueError("use one character (, ; | or tab) or auto")
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        if value == "auto":
            return value
        import codecs

        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown encoding {value!r} (try utf-8, cp1252, latin-1)") from None

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        entity = info.data.get("entity")
        if entity is None:
            return value
        known = {field.name for field in ENTITIES[entity]}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(unknown)} for entity {entity}; the keys are "
                f"canonical fields ({', '.join(sorted(known))}), the values your file's columns"
            )
        return value


EntityName = Literal[ENTITY_NAMES]  # type: ignore[valid-type]
ENTITIES_HELP = (
    "the canonical entities this source feeds (default: every entity its streams carry); "
    "when two systems hold the same records (sales in both the POS exports and its API), "
    "name the one that is the truth for each entity, so nothing is counted twice"
)


def _check_entities(source: str, wanted: list[str] | None, carried: set[str]) -> None:
    extra = sorted(set(wanted or ()) - carried)
    if extra:
        raise ValueError(
            f"source {source} cannot feed {', '.join(extra)}: its streams carry "
            f"{', '.join(sorted(carried)) or 'no canonical entity'}")


class FileSource(_Strict):
    """A system whose data arrives as exported files (CSV, CSV.gz, XLSX)."""

    name: Name
    connector: Literal["files"]
    streams: list[FileStream] = Field(min_length=1)
    entities: list[EntityName] | None = Field(default=None, description=ENTITIES_HELP)

    @model_validator(mode="after")
    def _unique_streams(self) -> FileSource:
        names = [stream.name for stream in self.streams]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"stream names must be unique; repeated: {', '.join(dupes)}")
        _check_entities(self.name, self.entities, self.carried_entities())
        return self

    def carried_entities(self) -> set[str]:
        return {stream.entity for stream in self.streams}

    def fed_entities(self) -> set[str]:
        """The canonical entities this source's records go into."""
        carried = self.carried_entities()
        return carried if self.entities is None else carried & set(self.entities)


class ApiSource(_Strict):
    """A system read through its REST API with a connector manifest.

    `connector` names a shipped manifest (see `goalpost connectors`), or is `rest` with the
    manifest written inline under `manifest:` (the low-code path). `config` holds the
    manifest's settings; secrets are written `env:NAME`, never as values. `streams` picks some
    of the manifest's streams (by default every stream not marked `default: false`).
    """

    name: Name
    connector: str
    config: dict[str, Any] = Field(default_factory=dict)
    streams: list[str] | None = None
    manifest: dict[str, Any] | None = None
    entities: list[EntityName] | None = Field(default=None, description=ENTITIES_HELP)

    @field_validator("connector")
    @classmethod
    def _connector(cls, value: str) -> str:
        known = vocabulary.connectors().names()
        if value != "rest" and value not in known:
            raise ValueError(f"unknown connector {value!r}; one of files, rest, "
                             + ", ".join(known))
        return value

    @model_validator(mode="after")
    def _known_connector(self) -> ApiSource:
        if self.connector == "rest":
            if self.manifest is None:
                raise ValueError("connector rest needs a `manifest:` (see the README)")
        elif self.manifest is not None:
            raise ValueError("`manifest:` goes with connector rest only")
        try:
            spec = self.load_manifest()
        except GoalpostError as exc:
            raise ValueError(exc.message) from None
        problems = vocabulary.connectors().settings_problems(spec, self.config)
        if problems:
            raise ValueError("; ".join(problems))
        unknown = sorted(set(self.streams or ()) - set(spec.streams))
        if unknown:
            raise ValueError(f"unknown stream(s) {', '.join(unknown)} of connector "
                             f"{self.connector}; it has {', '.join(spec.streams)}")
        _check_entities(self.name, self.entities, self.carried_entities())
        return self

    def carried_entities(self) -> set[str]:
        """The canonical entities of the selected streams (per the manifest)."""
        spec = self.load_manifest()
        return {spec.streams[name].entity for name in self.stream_names()
                if spec.streams[name].entity}

    def fed_entities(self) -> set[str]:
        """The canonical entities this source's records go into."""
        carried = self.carried_entities()
        return carried if self.entities is None else carried & set(self.entities)

    def load_manifest(self) -> Any:
        """The connector's manifest (goalpost.pipelines.connectors.manifest.Manifest)."""
        connectors = vocabulary.connectors()
        if self.connector == "rest":
            return connectors.parse(dict(self.manifest or {}, name=self.name),
                                    f"source {self.name}: manifest")
        return connectors.load(self.connector)

    def stream_names(self) -> list[str]:
        """The selected streams, parents first (a partitioned stream needs its parent)."""
        spec = self.load_manifest()
        wanted = set(self.streams or [n for n, s in spec.streams.items() if s.default])
        for name in list(wanted):
            partitions = spec.streams[name].partitions
            if partitions is not None and partitions.from_stream:
                wanted.add(partitions.from_stream)
        ordered = [n for n in spec.streams if n in wanted]
        return sorted(ordered, key=lambda n: 1 if spec.streams[n].partitions and
                      spec.streams[n].partitions.from_stream else 0)


def _source_kind(value: Any) -> str:
    connector = value.get("connector") if isinstance(value, dict) else getattr(
        value, "connector", None)
    return "files" if connector in (None, "files") else "api"


Source = Annotated[
    Annotated[FileSource, Tag("files")] | Annotated[ApiSource, Tag("api")],
    Discriminator(_source_kind),
]

# The metrics of the client being validated, for its goals (a goal names one of them). None
# outside a client: the standard metrics; UNCHECKED when the client's metrics are invalid
# (their own error is reported).
_GOAL_METRICS: ContextVar[dict[str, Metric] | None | str] = ContextVar("goal_metrics",
                                                                    default=None)
_UNCHECKED = "unchecked"


def _goal_metrics() -> dict[str, Metric] | None:
    found = _GOAL_METRICS.get()
    if found is None:
        return standard_metrics()
    return None if found == _UNCHECKED else found  # type: ignore[return-value]


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _add_months(day: date, months: int) -> date:
    """The first day of the month `months` after day's month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def _not_before_start(value: date | None, info: ValidationInfo) -> date | None:
    start = info.data.get("start")
    if value is not None and start is not None and value < start:
        raise ValueError(f"{value} is before start ({start})")
    return value


class DateRange(_Strict):
    """Days from start to end, both included."""

    start: date
    end: date

    _after_start = field_validator("end")(_not_before_start)


class GoalDates(_Strict):
    """A goal's period by its dates; the end is the deadline (give one of them)."""

    start: date
    end: date | None = None

    _after_start = field_validator("end")(_not_before_start)


GoalPeriod = Annotated[
    Annotated[GoalDates, Tag("dates_form")]
    | Annotated[Literal["month", "quarter"], Tag("keyword_form")],
    Discriminator(lambda value: "keyword_form" if isinstance(value, str) else "dates_form"),
]
GoalBaseline = Annotated[
    Annotated[DateRange, Tag("dates_form")]
    | Annotated[Literal["previous_period", "previous_year"], Tag("keyword_form")],
    Discriminator(lambda value: "keyword_form" if isinstance(value, str) else "dates_form"),
]


class Goal(_Strict):
    """A goal on a metric over a period, judged at the deadline: a target for the total of a
    metric that adds up over days (a value, or a change in % against a baseline period), or a
    bound (`max`, `min`) on the metric's value: its total over the period for a metric that
    adds up, else its value in the period that ends at the deadline, at the metric's rhythm
    ("CAC under 12 by the end of the quarter": the last month's CAC at most 12).

    `period: month` or `quarter` without a deadline is a standing goal: it applies to every
    month (quarter) in turn, and is tracked for the one the data has reached."""

    name: Name | None = None
    metric: Name
    dimension: Name | None = Field(default=None, description="location, channel or one of "
                                   "the client's dimensions the metric is computed per")
    value: str | None = Field(default=None, min_length=1, validate_default=True,
                              description="the location or channel, e.g. LYO-01")
    maximum: float | None = Field(default=None, alias="max", description="at most this")
    minimum: float | None = Field(default=None, alias="min", description="at least this")
    target: float | None = None
    change_pct: float | None = Field(default=None, validate_default=True)
    baseline: GoalBaseline | None = Field(default=None, validate_default=True)
    period: GoalPeriod
    deadline: date | None = Field(default=None, validate_default=True)

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        metrics = _goal_metrics()
        if metrics is not None and value not in metrics:
            raise ValueError(f"unknown metric {value!r}; the client's metrics are "
                             f"{', '.join(metrics)}")
        return value

    @field_validator("dimension")
    @classmethod
    def _dimension(cls, value: str | None, info: ValidationInfo) -> str | None:
        metrics, metric = _goal_metrics(), info.data.get("metric")
        if value and metrics and metric in metrics and value not in metrics[metric].dimensions:
            raise ValueError(f"metric {metric} is not computed per {value}")
        return value

    @field_validator("value")
    @classmethod
    def _value(cls, value: str | None, info: ValidationInfo) -> str | None:
        dimension = info.data.get("dimension")
        if dimension and value is None:
            raise ValueError(f"required with dimension {dimension}: which {dimension}")
        if value is not None and not dimension and "dimension" in info.data:
            raise ValueError("needs a `dimension` (location or channel)")
        return value

    @field_validator("change_pct")
    @classmethod
    def _change(cls, value: float | None, info: ValidationInfo) -> float | None:
        target = info.data.get("target")
        bounds = [info.data.get(k) for k in ("maximum", "minimum")]
        given = [v for v in (target, value, *bounds) if v is not None]
        if not given and "target" in info.data:
            raise ValueError("give a `target` (the period's total), a `change_pct` (against a "
                             "baseline period), or a bound: `max` or `min`")
        if len(given) > 1:
            raise ValueError("give one of target, change_pct, max and min")
        if value is not None and value <= -100:
            raise ValueError("must be above -100 (a total cannot fall by 100% or more)")
        metrics, metric = _goal_metrics(), info.data.get("metric")
        if (target is not None or value is not None) and metrics and metric in metrics \
                and metrics[metric].aggregation != "sum":
            raise ValueError(
                f"{metric} is a {metrics[metric].aggregation} metric; a target or change_pct "
                "is a total over the period, for metrics that add up (aggregation sum, e.g. "
                f"revenue or orders): give a bound instead (`max: ...` or `min: ...`: "
                f"{metric}'s value at the deadline)")
        return value

    @field_validator("baseline")
    @classmethod
    def _baseline(cls, value: object, info: ValidationInfo) -> object:
        change = info.data.get("change_pct")
        if change is not None and value is None:
            raise ValueError("required with change_pct: {start, end}, previous_period or "
                             "previous_year")
        if value is not None and change is None and "change_pct" in info.data:
            raise ValueError("goes with change_pct only")
        return value

    @field_validator("deadline")
    @classmethod
    def _deadline(cls, value: date | None, info: ValidationInfo) -> date | None:
        period = info.data.get("period")
        if period is None:
            return value
        if isinstance(period, str):
            if value is None:
                return None  # a standing goal: every month (quarter) in turn
            last_of_quarter = value.month % 3 == 0
            if value != _month_end(value) or (period == "quarter" and not last_of_quarter):
                raise ValueError(f"{value} is not the last day of a {period}")
            return value
        if value is None and period.end is None:
            raise ValueError("required: the last day of the period (or give period.end)")
        if value is not None and period.end is not None and value != period.end:
            raise ValueError(f"differs from period.end ({period.end}); give one of them")
        deadline = value or period.end
        if deadline < period.start:
            raise ValueError(f"{deadline} is before the period's start ({period.start})")
        return deadline

    @property
    def bound(self) -> tuple[str, float] | None:
        """("max", 12.0) or ("min", 0.7) for a bound; None for a target."""
        if self.maximum is not None:
            return "max", self.maximum
        if self.minimum is not None:
            return "min", self.minimum
        return None

    @property
    def standing(self) -> bool:
        """True for a goal that applies to every month (quarter) in turn."""
        return self.deadline is None

    def window(self, as_of: date | None = None) -> tuple[date, date]:
        """The first and last day of the period measured (the last is the deadline); for a
        standing goal, the month (quarter) that contains `as_of`."""
        deadline = self.deadline
        if deadline is None:
            if as_of is None:
                raise ValueError(f"goal {self.key()} applies every {self.period}: "
                                 "say which day's period")
            months = 1 if self.period == "month" else 3 - (as_of.month - 1) % 3
            deadline = _add_months(as_of, months) - timedelta(days=1)
        if self.period == "month":
            return deadline.replace(day=1), deadline
        if self.period == "quarter":
            return _add_months(deadline, -2), deadline
        return self.period.start, deadline  # type: ignore[union-attr]

    def baseline_window(self, as_of: date | None = None) -> tuple[date, date] | None:
        """The baseline period of a change_pct goal (for a standing goal, of the period
        that contains `as_of`)."""
        if isinstance(self.baseline, DateRange):
            return self.baseline.start, self.baseline.end
        start, end = self.window(as_of)
        if self.baseline == "previous_year":
            if isinstance(self.period, str):
                first = _add_months(start, -12)
                return first, _month_end(_add_months(end, -12))
            return _year_before(start), _year_before(end)
        if self.baseline == "previous_period":
            if isinstance(self.period, str):
                months = 1 if self.period == "month" else 3
                first = _add_months(start, -months)
                return first, start - timedelta(days=1)
            days = (end - start).days + 1
            return start - timedelta(days=days), start - timedelta(days=1)
        return None

    def key(self) -> str:
        """The goal's name, or one made of what it is about."""
        if self.name:
            return self.name
        if self.deadline is None:
            return f"{self.metric} {self.value or 'all'} every {self.period}"
        start, end = self.window()
        return f"{self.metric} {self.value or 'all'} {start}..{end}"


class Review(_Strict):
    """The business review: what happened over the last week (or month), why, and what is
    coming, emailed once per period after it closes (goalpost.alerts.review)."""

    cadence: Literal["weekly", "monthly"] = Field(
        default="weekly", description="weekly: ISO weeks, sent on Monday after the morning "
        "run; monthly: calendar months, sent on the 1st")
    send: bool = Field(default=True, description="email it on the schedule (false: only "
                       "`goalpost review` makes it, on demand)")
    recipients: list[str] = Field(
        default_factory=lambda: ["owners"], min_length=1,
        description="email addresses, `owners` or `consultant` (default: owners)")

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(check_recipient(item) for item in value))


def _names(items: Any) -> frozenset[str]:
    return frozenset(str(item["name"]) for item in items or ()
                     if isinstance(item, dict) and item.get("name"))


def _alert_context(data: Any, metrics: dict[str, Metric] | str | None) -> AlertContext:
    """What the alert rules of `data` (a client's raw document) may name."""
    if not isinstance(data, dict):
        return AlertContext(metrics=None)
    known = None if metrics == _UNCHECKED else metrics or standard_metrics()
    goals, sources = data.get("goals"), data.get("sources")
    return AlertContext(metrics=known,  # type: ignore[arg-type]
                        goals=_names(goals if isinstance(goals, list) else ()),
                        sources=_names(sources if isinstance(sources, list) else ()),
                        has_owners=bool(data.get("owners")))


class Client(_Strict):
    """A client of the consultancy, as declared in clients/<slug>.yaml."""

    name: str = Field(min_length=1)
    timezone: str = "UTC"
    currency: str = "EUR"
    country: str = "FR"
    language: str = Field(default="en", description="the language of the review and the "
                          "alert emails, and how their numbers and dates read: en, fr, de, "
                          "es, it (de, es and it fall back to English for some text)")
    schedule: str = "0 6 * * *"
    owners: list[Owner] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    dimensions: dict[Name, Dimension] = Field(
        default_factory=dict, description="the client's own dimensions beside location and "
        "channel (country, category, region, payment method...): on orders, order_lines, "
        "customers, products or locations, from a canonical `field` or a file `column`")
    metrics: dict[Name, MetricOverride] = Field(
        default_factory=dict, description="overrides of standard metrics (label, direction, "
        "target, ...) and the client's own metrics")
    relationships: list[Relationship] = Field(
        default_factory=list, description="expected effects of a metric on another "
        "(from, to, direction, lag, confidence, notes, comments), measured by the "
        "correlations extension")
    extensions: list[Name] | None = Field(
        default=None, description="the extensions to run after each build, built-in or the "
        "consultant's own (default: every built-in)")
    extension_settings: dict[Name, dict[str, Any]] = Field(
        default_factory=dict, description="settings per extension, e.g. "
        "{forecast: {horizon_days: 60}}")
    goals: list[Goal] = Field(
        default_factory=list, description="targets for a metric's total over a period, "
        "tracked daily against the forecast (the goals extension)")
    dashboards: list[Name] | None = Field(
        default=None, description="the Metabase dashboard templates to provision "
        "(metabase/templates/<name>.yaml; default: all of them)")
    alerts: Alerts = Field(
        default_factory=Alerts, description="alert rules evaluated after each run, their "
        "recipients, quiet hours and reminders (emails)")
    review: Review = Field(default_factory=Review, description="the weekly (or monthly) "
                           "business review emailed to the owners")

    @model_validator(mode="wrap")
    @classmethod
    def _with_metrics(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Client:
        """Validate with the client's own metrics at hand: its goals must name one."""
        metrics: dict[str, Metric] | str | None = None
        if isinstance(data, dict):
            try:
                declared = data.get("dimensions") or {}
                metrics = resolve({name: MetricOverride.model_validate(spec or {})
                                   for name, spec in (data.get("metrics") or {}).items()},
                                  dimension_names(dict(declared)))
            except (ValueError, ValidationError, AttributeError, TypeError):
                metrics = _UNCHECKED
        token = _GOAL_METRICS.set(metrics)
        alert_token = ALERT_CONTEXT.set(_alert_context(data, metrics))
        try:
            return handler(data)
        finally:
            ALERT_CONTEXT.reset(alert_token)
            _GOAL_METRICS.reset(token)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)"
            ) from None
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        code = money.check_currency(value)
        if code in NOT_MONEY:
            raise ValueError(f"{value!r} is ISO 4217's code for {NOT_MONEY[code]}, not a "
                             "currency a business is paid in (e.g. EUR, GBP, USD)")
        return code

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        code = value.strip().upper()
        if code not in countries.countries():
            raise ValueError(f"{value!r} is not an ISO 3166 country code (e.g. FR, GB, US)")
        return code

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        return formatting.check_locale(value)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        return schedules.check_cron(value)

    @model_validator(mode="after")
    def _unique_sources(self) -> Client:
        names = [source.name for source in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        return self

    @field_validator("extensions")
    @classmethod
    def _extensions(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        known = vocabulary.extensions().names()
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(f"unknown extension(s) {', '.join(unknown)}; the extensions are "
                             f"{', '.join(known)} (`goalpost extensions list`)")
        return list(dict.fromkeys(value))

    @field_validator("dimensions", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        """Each dimension knows its name (its key), which its validation checks."""
        if isinstance(value, dict):
            return {name: dict(spec, name=name) if isinstance(spec, dict) else spec
                    for name, spec in value.items()}
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: dict[str, MetricOverride],
                 info: ValidationInfo) -> dict[str, MetricOverride]:
        # ValueError naming the metric and its field
        resolve(value, dimension_names(info.data.get("dimensions")))
        return value

    @field_validator("relationships")
    @classmethod
    def _relationships(cls, value: list[Relationship],
                       info: ValidationInfo) -> list[Relationship]:
        if "metrics" in info.data:  # else the metrics' own error is reported
            edges.check(value, resolve(info.data["metrics"],
                                       dimension_names(info.data.get("dimensions"))))
        return value

    @field_validator("goals")
    @classmethod
    def _unique_goals(cls, value: list[Goal]) -> list[Goal]:
        keys = [goal.key() for goal in value]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"two goals are both {', '.join(dupes)}: give each a distinct "
                             "`name`")
        return value

    @field_validator("dashboards")
    @classmethod
    def _dashboards(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        known = vocabulary.dashboards().names()
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(f"unknown dashboard template(s) {', '.join(unknown)}; the "
                             f"templates are {', '.join(known)}")
        return list(dict.fromkeys(value))

    def metric_registry(self) -> dict[str, Metric]:
        """The client's metrics: standard ones with its overrides, plus its own."""
        return resolve(self.metrics, dimension_names(self.dimensions))

    def source(self, name: str) -> Source | None:
        return next((source for source in self.sources if source.name == name), None)
