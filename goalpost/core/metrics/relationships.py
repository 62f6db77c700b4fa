"""Declared relationships between metrics (`relationships:` in a client's YAML): what the
consultant expects one metric to do to another, beyond the drivers' exact formulas.

    relationships:
      - from: marketing_spend
        to: new_customers
        direction: positive        # more spend, more new customers (negative: fewer)
        lag: 1 month               # the effect shows a month later (0: the same period)
        confidence: medium
        notes: Instagram campaigns bring first visits the month after.
        comments: ["2026-02: spend moved from flyers to Instagram"]

The correlations extension measures each one on the data, at the two metrics' common grain
and at the expected lag, and says whether the data supports the expected direction.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from goalpost.core.metrics import Confidence, Metric, MetricError
from goalpost.core.metrics.grains import common_grain, lag_in, parse_lag


class Relationship(BaseModel):
    """One expected effect of a metric on another."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    source: str = Field(alias="from", description="the metric that moves first")
    target: str = Field(alias="to", description="the metric it moves")
    direction: Literal["positive", "negative"] = "positive"
    lag: str | int = Field(default=0, description="how long the effect takes: 0, 7 days, "
                           "2 weeks, 1 month")
    confidence: Confidence | None = None
    notes: str = ""
    comments: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _edge(cls, data: Any) -> Any:
        """`edge: "a -> b"` is another way to write from and to."""
        if isinstance(data, dict) and "edge" in data:
            data = dict(data)
            text = str(data.pop("edge"))
            left, arrow, right = text.partition("->")
            if not arrow or not left.strip() or not right.strip():
                raise ValueError(f"edge {text!r} is not `metric -> metric`")
            data.setdefault("from", left.strip())
            data.setdefault("to", right.strip())
        return data

    @model_validator(mode="after")
    def _lag(self) -> Relationship:
        parse_lag(self.lag)
        if self.source == self.target:
            raise ValueError(f"from and to are both {self.source}")
        return self

    @property
    def key(self) -> str:
        return f"{self.source} -> {self.target}"

    def grain(self, metrics: dict[str, Metric]) -> str | None:
        return common_grain(metrics[self.source].rhythm, metrics[self.target].rhythm)

    def lag_periods(self, metrics: dict[str, Metric]) -> int:
        """The expected lag in periods of the relationship's grain."""
        count, unit = parse_lag(self.lag)
        grain = self.grain(metrics)
        found = lag_in(count, unit, grain) if grain else None
        if found is None:
            raise ValueError(f"lag {self.lag} is not a whole number of {grain}s")
        return found


def check(relationships: list[Relationship], metrics: dict[str, Metric]) -> None:
    """MetricError (located at the relationship's index and field) for a relationship naming
    an unknown metric, metrics with no common grain, a lag that is no whole number of
    periods, or a pair declared twice."""
    seen: dict[frozenset[str], int] = {}
    for index, edge in enumerate(relationships):
        for field, name in (("from", edge.source), ("to", edge.target)):
            if name not in metrics:
                raise MetricError(f"unknown metric {name!r}; the client's metrics are "
                                  f"{', '.join(sorted(metrics))}", (index, field))
        grain = edge.grain(metrics)
        if grain is None:
            raise MetricError(
                f"{edge.source} is {metrics[edge.source].rhythm}ly and {edge.target} "
                f"{metrics[edge.target].rhythm}ly: weeks do not add up to months, so they "
                "cannot be compared", (index, "to"))
        try:
            edge.lag_periods(metrics)
        except ValueError as exc:
            raise MetricError(f"{exc} (the two metrics are compared by {grain})",
                              (index, "lag")) from None
        pair = frozenset((edge.source, edge.target))
        if pair in seen:
            raise MetricError(f"the relationship between {edge.source} and {edge.target} is "
                              f"already declared at [{seen[pair]}]", (index, "from"))
        seen[pair] = index
