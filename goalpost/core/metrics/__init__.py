"""The metric registry: the standard metrics shipped in standard.yaml, merged with each
client's additions and overrides (its YAML's `metrics:`), as kpi_daily computes them."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml import YAML

from goalpost.core.dimensions import BUILT_IN

_SAFE_SQL = re.compile(r"^[A-Za-z0-9_ (),.*/+\-<>=!']+$")


class Drivers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    formula: str
    parts: list[str] = Field(min_length=1)


class Metric(BaseModel):
    """One metric: what it means, how it reads (unit, direction) and how it is computed."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    label: str
    description: str = ""
    unit: Literal["currency", "count", "units", "ratio", "percent", "days"]
    aggregation: Literal["sum", "avg", "count_distinct", "ratio", "last"]
    direction: Literal["up", "down", "neutral"] = "up"
    category: Literal["north_star", "driver", "guardrail"] = "driver"
    owner_role: str = "owner"
    tags: list[str] = Field(default_factory=list)
    value: str
    dimensions: list[str] | None = Field(
        default=None, description="the dimensions it is computed per in kpi_daily (default: "
        "every dimension of the client)")
    drivers: Drivers | None = None
    target: float | None = None

    @field_validator("value")
    @classmethod
    def _plain_sql(cls, value: str) -> str:
        # An aggregate over the orders' columns, never a statement: it is pasted into SQL.
        if not _SAFE_SQL.match(value) or ";" in value or "--" in value:
            raise ValueError("must be an aggregate expression over the orders' columns, e.g. "
                             "SUM(total)")
        return value


class MetricOverride(BaseModel):
    """What a client's YAML may say of a metric: override fields, or define a new one."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = None
    description: str | None = None
    unit: str | None = None
    aggregation: str | None = None
    direction: Literal["up", "down", "neutral"] | None = None
    category: Literal["north_star", "driver", "guardrail"] | None = None
    owner_role: str | None = None
    tags: list[str] | None = None
    value: str | None = None
    dimensions: list[str] | None = None
    drivers: dict[str, Any] | None = None
    target: float | None = None


@cache
def standard_metrics() -> dict[str, Metric]:
    text = resources.files("goalpost.core.metrics").joinpath("standard.yaml").read_text()
    data = YAML(typ="safe").load(text)
    return {name: Metric.model_validate(dict(spec, name=name)) for name, spec in data.items()}


def resolve(overrides: dict[str, MetricOverride],
            dimensions: list[str] | None = None) -> dict[str, Metric]:
    """The client's metrics: the standard ones with its overrides, plus its own, each with
    the dimensions it is computed per (`dimensions`, the client's, when it names none).

    Raises ValueError naming the metric and field when a result is not a valid metric."""
    known = list(dimensions if dimensions is not None else BUILT_IN)
    metrics = dict(standard_metrics())
    for name, override in overrides.items():
        changes = override.model_dump(exclude_none=True)
        base = metrics[name].model_dump() if name in metrics else {"name": name}
        try:
            metrics[name] = Metric.model_validate({**base, **changes, "name": name})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                 for e in exc.errors())
            raise ValueError(f"metric {name}: {problems}") from None
    for name, metric in metrics.items():
        if metric.dimensions is None:
            metrics[name] = metric = metric.model_copy(update={"dimensions": known})
        unknown = [d for d in metric.dimensions or () if d not in known]
        if unknown:
            raise ValueError(f"metric {metric.name}: dimensions: unknown dimension(s) "
                             f"{', '.join(unknown)}; the client's are {', '.join(known)}")
        if metric.drivers:
            unknown = [p for p in metric.drivers.parts if p not in metrics]
            if unknown:
                raise ValueError(f"metric {metric.name}: drivers name unknown metric(s) "
                                 f"{', '.join(unknown)}")
    return metrics
