"""The metric registry: the standard metrics shipped in standard.yaml, merged with each
client's additions and overrides (its YAML's `metrics:`), as the marts compute them.

A metric is one of four kinds, by what defines it:
- `orders`: `value`, an aggregate over the sales receipts (revenue: SUM(total));
- `input`: nothing to compute: its values come from the client's files, APIs or hand
  (`metric_values`: footfall, marketing spend, staff hours);
- `formula`: `formula`, arithmetic over other metrics (cac: marketing_spend / new_customers);
- `sql`: `sql`, the consultant's own query over the client's marts.
Each has a rhythm (its natural grain: day, week or month), and the dictionary's fields: type
(kpi, input, output), category (north_star, driver, input, guardrail), confidence in the
data, hypothesis, value type, tags, owner, target and thresholds.
"""

from __future__ import annotations

import graphlib
import re
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML

from goalpost.core.dimensions import BUILT_IN
from goalpost.core.metrics import formulas, queries
from goalpost.core.metrics.grains import GRAINS, ROLLS_UP_TO, Grain

_SAFE_SQL = re.compile(r"^[A-Za-z0-9_ (),.*/+\-<>=!']+$")
Unit = Literal["currency", "count", "units", "hours", "ratio", "percent", "days"]
Aggregation = Literal["sum", "avg", "count_distinct", "ratio", "last", "min", "max"]
Kind = Literal["orders", "input", "formula", "sql"]
Category = Literal["north_star", "driver", "input", "guardrail"]
Confidence = Literal["high", "medium", "low"]
# How the values of an input or SQL metric's periods make a coarser period's value.
ROLLUPS = {"sum": "SUM", "avg": "AVG", "min": "MIN", "max": "MAX", "last": "LAST"}


class MetricError(ValueError):
    """A problem with one metric or relationship; `loc` is where it is under the key being
    validated (`metrics:`: metric, field; `relationships:`: index, field), so that the
    message can name the file's line."""

    def __init__(self, message: str, loc: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.loc = loc


class Drivers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    formula: str
    parts: list[str] = Field(min_length=1)


class Thresholds(BaseModel):
    """Where a metric's value needs attention: `direction: min` (it should stay at or above
    them, e.g. conversion) or `max` (at or under, e.g. CAC), a warning and a critical level."""

    model_config = ConfigDict(extra="forbid")

    direction: Literal["min", "max"]
    warning: float | None = None
    critical: float | None = None

    @model_validator(mode="after")
    def _levels(self) -> Thresholds:
        if self.warning is None and self.critical is None:
            raise ValueError("give a warning level, a critical one, or both")
        if self.warning is not None and self.critical is not None:
            worse = (self.critical <= self.warning if self.direction == "min"
                     else self.critical >= self.warning)
            if not worse:
                side = "under" if self.direction == "min" else "over"
                raise ValueError(f"with direction {self.direction} the critical level is "
                                 f"{side} the warning one (got warning {self.warning:g}, "
                                 f"critical {self.critical:g})")
        return self

    def breached(self, value: float, level: str) -> bool:
        limit = self.warning if level == "warning" else self.critical
        if limit is None:
            return False
        return value < limit if self.direction == "min" else value > limit

    def level(self, value: float | None) -> str | None:
        """critical, warning or ok for a value; None for no value."""
        if value is None:
            return None
        for level in ("critical", "warning"):
            if self.breached(value, level):
                return level
        return "ok"


class Metric(BaseModel):
    """One metric: what it means, how it reads (unit, direction), how and at which grain it
    is computed, and what the business expects of it."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    label: str
    description: str = ""
    kind: Kind | None = Field(default=None, description="set from value, formula or sql "
                              "(input when none)")
    unit: Unit | None = None
    aggregation: Aggregation | None = None
    direction: Literal["up", "down", "neutral"] = "up"
    category: Category | None = None
    type: Literal["kpi", "input", "output"] | None = None
    confidence: Confidence | None = Field(default=None, description="how far the data can "
                                          "be trusted")
    hypothesis: str = Field(default="", description="why this metric matters")
    value_type: Literal["value", "percentage", "currency"] | None = None
    rhythm: Grain = "day"
    owner_role: str = "owner"
    owner: str | None = Field(default=None, description="who answers for it")
    tags: list[str] = Field(default_factory=list)
    value: str | None = None
    formula: str | None = None
    sql: str | None = None
    dimensions: list[str] | None = Field(
        default=None, description="the dimensions it is computed per (default: every "
        "dimension of the client; a formula's: those all its parts have)")
    drivers: Drivers | None = None
    target: float | None = None
    thresholds: Thresholds | None = None

    @field_validator("value")
    @classmethod
    def _plain_sql(cls, value: str | None) -> str | None:
        # An aggregate over the orders' columns, never a statement: it is pasted into SQL.
        if value is not None and (not _SAFE_SQL.match(value) or ";" in value or "--" in value):
            raise ValueError("must be an aggregate expression over the orders' columns, e.g. "
                             "SUM(total)")
        return value

    @field_validator("formula")
    @classmethod
    def _formula(cls, value: str | None) -> str | None:
        return None if value is None else formulas.parse(value).text

    @field_validator("sql")
    @classmethod
    def _query(cls, value: str | None) -> str | None:
        if value is not None:
            queries.check_query(value)
        return value

    @model_validator(mode="after")
    def _kind(self) -> Metric:
        given = [k for k, v in (("orders", self.value), ("formula", self.formula),
                                ("sql", self.sql)) if v is not None]
        if len(given) > 1:
            fields = {"orders": "value", "formula": "formula", "sql": "sql"}
            raise ValueError(f"give one of {', '.join(fields[k] for k in given)}: a metric is "
                             "computed one way")
        kind = given[0] if given else "input"
        self.kind = kind  # what defines it says its kind, whatever an older definition said
        if kind in ("orders", "input", "sql") and self.aggregation is None:
            what = {"orders": "over receipts", "input": "of its values",
                    "sql": "of its query's values"}[kind]
            extra = ", count_distinct, ratio" if kind == "orders" else ""
            raise ValueError(f"aggregation is required: how the {what} add up over a period "
                             f"(sum, avg, min, max, last{extra})")
        if kind in ("input", "sql") and self.aggregation in ("count_distinct", "ratio"):
            raise ValueError(f"aggregation {self.aggregation} needs the underlying rows; an "
                             f"{kind} metric's values are sums, averages, minima, maxima or "
                             "last values of its periods: use sum, avg, min, max or last (or a "
                             "formula for a ratio)")
        if kind == "orders" and self.unit is None:
            raise ValueError("unit is required (currency, count, units, hours, ratio, percent, "
                             "days)")
        if self.category is None:
            self.category = "input" if kind == "input" else "driver"
        if self.type is None:
            self.type = ("kpi" if self.category == "north_star" else
                         "input" if kind == "input" else "output")
        return self

    def grains(self) -> tuple[str, ...]:
        """The grains its values are known at: its rhythm and the coarser ones its periods add
        up to (recomputed for order, formula and rolled-up metrics)."""
        if self.kind in ("input", "sql") and self.aggregation not in ROLLUPS:
            return (self.rhythm,)
        return (self.rhythm, *ROLLS_UP_TO[self.rhythm])

    def shown_as(self) -> str:
        """value, percentage or currency: how dashboards show its values."""
        if self.value_type:
            return self.value_type
        return {"currency": "currency", "percent": "percentage"}.get(self.unit or "", "value")

    def technical(self) -> str:
        """How it is computed, in one line, from its definition."""
        if self.kind == "orders":
            return f"{self.value} over the sales and return receipts of each {self.rhythm}"
        if self.kind == "formula":
            return f"{self.formula}, on its parts' values of each period"
        if self.kind == "sql":
            return " ".join(str(self.sql).split())
        rollup = f", {self.aggregation} over coarser periods" if self.aggregation else ""
        return (f"values of each {self.rhythm} from the client's files, APIs or "
                f"`goalpost metrics record|import`{rollup}")

    def dictionary(self) -> dict[str, Any]:
        """The metric's dictionary entry (goalpost metrics show, the dictionary mart)."""
        return {
            "name": self.name, "label": self.label, "description": self.description,
            "kind": self.kind, "type": self.type, "category": self.category,
            "rhythm": self.rhythm, "unit": self.unit, "value_type": self.shown_as(),
            "aggregation": self.aggregation, "direction": self.direction,
            "confidence": self.confidence, "hypothesis": self.hypothesis,
            "technical": self.technical(), "tags": list(self.tags),
            "owner": self.owner, "owner_role": self.owner_role, "target": self.target,
            "thresholds": self.thresholds.model_dump() if self.thresholds else None,
            "dimensions": list(self.dimensions or ()),
            "parts": list(formulas.parse(self.formula).names) if self.formula else [],
        }


class MetricOverride(BaseModel):
    """What a client's YAML may say of a metric: override fields, or define a new one."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = None
    description: str | None = None
    unit: str | None = None
    aggregation: str | None = None
    direction: Literal["up", "down", "neutral"] | None = None
    category: Category | None = None
    type: Literal["kpi", "input", "output"] | None = None
    confidence: Confidence | None = None
    hypothesis: str | None = None
    value_type: Literal["value", "percentage", "currency"] | None = None
    rhythm: Grain | None = None
    owner_role: str | None = None
    owner: str | None = None
    tags: list[str] | None = None
    value: str | None = None
    formula: str | None = None
    sql: str | None = None
    dimensions: list[str] | None = None
    drivers: dict[str, Any] | None = None
    target: float | None = None
    thresholds: dict[str, Any] | None = None


@cache
def standard_metrics() -> dict[str, Metric]:
    text = resources.files("goalpost.core.metrics").joinpath("standard.yaml").read_text()
    data = YAML(typ="safe").load(text)
    return {name: Metric.model_validate(dict(spec, name=name)) for name, spec in data.items()}


def _problems(exc: ValidationError) -> tuple[str, str]:
    """(message, field) of a metric's validation errors: the first field named."""
    errors = exc.errors()
    text = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"]
                     else e["msg"].removeprefix("Value error, ") for e in errors)
    return text, str(errors[0]["loc"][0]) if errors and errors[0]["loc"] else ""


def resolve(overrides: dict[str, MetricOverride],
            dimensions: list[str] | None = None) -> dict[str, Metric]:
    """The client's metrics: the standard ones with its overrides, plus its own, each with
    the dimensions it is computed per (`dimensions`, the client's, when it names none), and
    its formula metrics checked (known parts, no cycle, agreeing units and rhythms).

    Raises MetricError naming the metric and field when a result is not a valid metric."""
    known = list(dimensions if dimensions is not None else BUILT_IN)
    metrics = dict(standard_metrics())
    for name, override in overrides.items():
        changes = override.model_dump(exclude_none=True)
        base = metrics[name].model_dump() if name in metrics else {"name": name}
        if {"value", "formula", "sql"} & set(changes):  # a new definition replaces the old
            base = {k: v for k, v in base.items()
                    if k not in ("value", "formula", "sql", "kind", "drivers")}
            if "formula" in changes:
                base.pop("aggregation", None)
        try:
            metrics[name] = Metric.model_validate({**base, **changes, "name": name})
        except ValidationError as exc:
            text, where = _problems(exc)
            raise MetricError(f"metric {name}: {text}", (name, where) if where else (name,)) \
                from None
    for name, metric in metrics.items():
        if metric.dimensions is None and metric.kind != "formula":
            metrics[name] = metric = metric.model_copy(update={"dimensions": known})
        unknown = [d for d in metric.dimensions or () if d not in known]
        if unknown:
            raise MetricError(f"metric {metric.name}: dimensions: unknown dimension(s) "
                              f"{', '.join(unknown)}; the client's are {', '.join(known)}",
                              (name, "dimensions"))
        if metric.drivers:
            unknown = [p for p in metric.drivers.parts if p not in metrics]
            if unknown:
                raise MetricError(f"metric {metric.name}: drivers name unknown metric(s) "
                                  f"{', '.join(unknown)}", (name, "drivers"))
    _resolve_formulas(metrics)
    return metrics


def formula_order(metrics: dict[str, Metric]) -> list[str]:
    """The formula metrics, each after the formula metrics it reads; MetricError on a cycle."""
    graph = {name: [p for p in formulas.parse(m.formula).names if p in metrics]
             for name, m in metrics.items() if m.kind == "formula"}
    try:
        ordered = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        cycle = list(exc.args[1])
        first = cycle[0]
        raise MetricError(f"metric {first}: formula: the formulas go round in a cycle "
                          f"({' -> '.join(cycle)}): a metric cannot be computed from itself",
                          (first, "formula")) from None
    return [name for name in ordered if name in graph]


def _resolve_formulas(metrics: dict[str, Metric]) -> None:
    """Each formula metric's parts known, then its unit, aggregation, rhythm and dimensions
    from its parts' (in dependency order, so a formula over formulas sees them resolved)."""
    for name, metric in metrics.items():
        if metric.kind == "formula":
            unknown = [p for p in formulas.parse(metric.formula).names if p not in metrics]
            if unknown:
                raise MetricError(
                    f"metric {name}: formula: unknown metric(s) {', '.join(unknown)}; the "
                    f"client's metrics are {', '.join(sorted(metrics))}", (name, "formula"))
    for name in formula_order(metrics):
        metric = metrics[name]
        formula = formulas.parse(metric.formula)
        parts = [metrics[p] for p in formula.names]
        try:
            found = formulas.unit_of(formula, {p.name: p.unit for p in parts})
        except formulas.FormulaError as exc:
            raise MetricError(f"metric {name}: formula: units do not agree: {exc}",
                              (name, "formula")) from None
        if metric.unit is not None and found is not None and not formulas.compatible(
                metric.unit, found):
            raise MetricError(
                f"metric {name}: unit: declared {metric.unit}, but {metric.formula} gives "
                f"{'a ratio (ratio or percent)' if found == 'ratio' else found} from its parts' "
                f"units ({', '.join(f'{p.name}: {p.unit}' for p in parts)})", (name, "unit"))
        if metric.aggregation is not None and "aggregation" in metric.model_fields_set:
            raise MetricError(f"metric {name}: aggregation: a formula metric has none: its value "
                              "over any period is its formula over its parts' values",
                              (name, "aggregation"))
        additive = formula.additive() and all(p.aggregation == "sum" for p in parts)
        shared = [g for g in GRAINS if all(g in p.grains() for p in parts)]
        if not shared:
            rhythms = ", ".join(f"{p.name}: {p.rhythm}" for p in parts)
            raise MetricError(f"metric {name}: formula: its parts have no common grain "
                              f"({rhythms}); weeks do not add up to months", (name, "formula"))
        rhythm = metric.rhythm if "rhythm" in metric.model_fields_set else shared[0]
        if rhythm not in shared:
            raise MetricError(f"metric {name}: rhythm: {rhythm} is not a grain all its parts are "
                              f"known at ({', '.join(shared)})", (name, "rhythm"))
        dims = [d for d in parts[0].dimensions or () if all(d in (p.dimensions or ())
                                                              for p in parts[1:])]
        if metric.dimensions is not None:
            missing = [d for d in metric.dimensions if d not in dims]
            if missing:
                raise MetricError(f"metric {name}: dimensions: {', '.join(missing)} is not a "
                                  "dimension of all its parts", (name, "dimensions"))
            dims = list(metric.dimensions)
        metrics[name] = metric.model_copy(update={
            "unit": metric.unit or found, "rhythm": rhythm, "dimensions": dims,
            "aggregation": "sum" if additive else "ratio"})
