"""Splitting a metric's change between two periods among its drivers, exactly.

The registry says how a metric decomposes (`drivers: {formula: orders * average_ticket}`;
average_ticket in turn is items_per_order * average_item_price). A formula is a product (or
quotient) of its parts, or a sum (or difference) of them.

Period values come from the parts that add up, never from means of daily ratios: revenue and
orders are summed over the period, and the last ratio of a product is implied by it
(average_ticket = revenue / orders over the period), so the formula holds exactly on period
totals. Other ratios of a product are weighted by what they are per: in
revenue = orders * average_ticket, average_ticket is per order, so in
average_ticket = items_per_order * average_item_price, items_per_order is the orders-weighted
mean of its daily values (items over orders) and average_item_price is implied
(average_ticket / items_per_order: revenue net of returns per item sold).

Products are split with the additive log-mean Divisia index (LMDI-I): for M = A * B,
contribution(A) = L(M1, M0) * ln(A1 / A0), with L(x, y) = (x - y) / (ln x - ln y). The
contributions add up to M1 - M0 exactly, for any number of factors, and nest: a driver's own
drivers split its contribution the same way, so items_per_order and average_item_price add up
to average_ticket's share of the revenue change. Sums are split by the parts' changes. LMDI
needs positive values: a period where a factor is zero or negative (a shop closed all week) is
left out rather than given a made-up split.

In the core because two stages use the same maths: the drivers extension over its standard
periods (<client>_insights.driver_attribution) and the weekly review over any week or month.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from goalpost.core.errors import ConfigError

SUMMABLE = ("sum", "count_distinct")  # count_distinct summed over days: customer-days
_TERM = re.compile(r"\s*([+\-*/]?)\s*([A-Za-z_][A-Za-z0-9_]*)\s*")


@dataclass(frozen=True)
class Formula:
    kind: Literal["product", "sum"]
    terms: tuple[tuple[str, int], ...]  # (part, +1 or -1: exponent of a product, sign of a sum)


def parse_formula(metric: str, formula: str, parts: list[str]) -> Formula:
    """A driver formula as a product/quotient or a sum/difference of the metric's parts."""
    terms, operators, position = [], set(), 0
    while position < len(formula):
        match = _TERM.match(formula, position)
        if not match or match.end() == position or (terms and not match.group(1)) or (
                not terms and match.group(1) not in ("", "+")):
            raise ConfigError(
                f"metric {metric}: drivers formula {formula!r} is not a product or a sum of "
                "its parts", hint="write it like `orders * average_ticket` or `a + b - c`")
        operator, name = match.group(1) or "*", match.group(2)
        if terms:
            operators.add(operator)
        terms.append((name, -1 if operator in "/-" else 1))
        position = match.end()
    kind: Literal["product", "sum"] = "sum" if operators & {"+", "-"} else "product"
    if operators & {"+", "-"} and operators & {"*", "/"}:
        raise ConfigError(f"metric {metric}: drivers formula {formula!r} mixes products and "
                          "sums", hint="give the inner part its own metric with drivers")
    names = [name for name, _ in terms]
    if sorted(names) != sorted(parts) or len(set(names)) != len(names):
        raise ConfigError(f"metric {metric}: drivers formula {formula!r} must name each of "
                          f"its parts ({', '.join(parts)}) once")
    return Formula(kind, tuple(terms))


@dataclass
class Node:
    """A metric in a decomposition tree; `sign` is its exponent (or sign) in its parent."""

    metric: str
    sign: int = 1
    parent: str | None = None
    level: int = 0
    formula: Formula | None = None
    children: list[Node] = field(default_factory=list)

    def walk(self) -> list[Node]:
        return [self, *(node for child in self.children for node in child.walk())]


def tree(metric: str, registry: dict, sign: int = 1, parent: str | None = None,
         level: int = 0, seen: tuple[str, ...] = ()) -> Node:
    """The decomposition of `metric` through the registry's drivers, recursively."""
    if metric in seen:
        raise ConfigError(f"metric {metric}: its drivers lead back to it "
                          f"({' -> '.join([*seen, metric])})")
    spec = registry[metric]
    node = Node(metric, sign, parent, level)
    if spec.drivers:
        node.formula = parse_formula(metric, spec.drivers.formula, spec.drivers.parts)
        node.children = [tree(part, registry, part_sign, metric, level + 1, (*seen, metric))
                         for part, part_sign in node.formula.terms]
    names = [n.metric for n in node.walk()]
    if level == 0 and len(set(names)) != len(names):
        raise ConfigError(f"metric {metric}: a metric appears twice in its drivers tree")
    return node


def roots(registry: dict) -> list[str]:
    """Metrics with drivers that no other metric decomposes into, whose period value is a
    sum (or a formula of sums)."""
    parts = {p for m in registry.values() if m.drivers for p in m.drivers.parts}
    found = []
    for name, metric in registry.items():
        if not metric.drivers or name in parts:
            continue
        if metric.aggregation in SUMMABLE or all(
                registry[p].aggregation in SUMMABLE for p in metric.drivers.parts):
            found.append(name)
    return found


def _log_mean(x: float, y: float) -> float:
    return x if math.isclose(x, y, rel_tol=1e-12) else (x - y) / (math.log(x) - math.log(y))


def _power(x: float, sign: int) -> float:
    """x or 1/x (NaN for 1/0: the ratio is undefined over the period)."""
    return x if sign == 1 else (1 / x if x else math.nan)


def _weighted_mean(values: pd.Series, weights: pd.Series) -> float:
    usable = values.notna() & weights.notna() & (weights > 0)
    total = float(weights[usable].sum())
    return float((values[usable] * weights[usable]).sum() / total) if total > 0 else math.nan


def period_values(node: Node, daily: pd.DataFrame, registry: dict, value: float | None = None,
                  weights: pd.Series | None = None, out: dict[str, float] | None = None
                  ) -> dict[str, float]:
    """Every node's value over the period whose days are `daily` (one column per metric).

    `weights` says what a ratio node is per, day by day (None: the node is a sum). Parts
    that add up are summed; ratios of a product but the last are weighted means; the last is
    implied, so that the formula holds exactly on the period's values."""
    out = {} if out is None else out

    def column(name: str) -> pd.Series:
        return daily[name] if name in daily else pd.Series(np.nan, index=daily.index)

    if value is None:  # the root: a sum, or a formula of sums
        if registry[node.metric].aggregation in SUMMABLE:
            value = float(column(node.metric).sum())
        else:
            sums = [float(column(c.metric).sum()) for c in node.children]
            if node.formula.kind == "sum":
                value = sum(c.sign * s for c, s in zip(node.children, sums, strict=True))
            else:
                value = math.prod(_power(s, c.sign)
                                  for c, s in zip(node.children, sums, strict=True))
    out[node.metric] = value
    if not node.children:
        return out
    summable = [registry[c.metric].aggregation in SUMMABLE for c in node.children]
    if node.formula.kind == "sum" and not all(summable):
        raise ConfigError(f"metric {node.metric}: a sum of drivers needs parts that add up "
                          "over days (aggregation sum)")
    base = weights if weights is not None else pd.Series(1.0, index=daily.index)
    ratios = [i for i, s in enumerate(summable) if not s]
    child_weights: dict[int, pd.Series | None] = {}
    values: dict[int, float] = {}
    running = base.copy()
    for i, child in enumerate(node.children):
        daily_value = column(child.metric)
        if summable[i]:
            values[i], child_weights[i] = float(daily_value.sum()), None
        else:
            child_weights[i] = running.copy()
            if i != ratios[-1]:
                values[i] = _weighted_mean(daily_value, running)
        running = running * (daily_value if child.sign == 1 else 1 / daily_value.replace(0, np.nan))
    if ratios:
        last = ratios[-1]
        others = math.prod(_power(values[i], c.sign) for i, c in enumerate(node.children)
                           if i != last)
        values[last] = _power(value / others, node.children[last].sign) if others else math.nan
    else:
        implied = (math.prod(_power(values[i], c.sign) for i, c in enumerate(node.children))
                   if node.formula.kind == "product"
                   else sum(values[i] * c.sign for i, c in enumerate(node.children)))
        if math.isfinite(implied) and math.isfinite(value) and not math.isclose(
                implied, value, rel_tol=1e-9, abs_tol=1e-9):
            formula = registry[node.metric].drivers.formula
            raise ConfigError(
                f"metric {node.metric}: its drivers formula {formula!r} does not hold on "
                f"period totals ({implied:.6g} against {value:.6g})",
                hint="a product of parts that add up over days needs a ratio among them")
    for i, child in enumerate(node.children):
        period_values(child, daily, registry, values[i], child_weights[i], out)
    return out


def contributions(node: Node, baseline: dict[str, float], current: dict[str, float],
                  coefficient: float = 1.0, out: dict[str, float] | None = None
                  ) -> dict[str, float] | None:
    """Each node's contribution to the root's change: coefficient * (its own change), where
    the coefficient is how much of the root one unit of the node moves (LMDI for products).
    None when a product meets a value that is not positive."""
    out = {} if out is None else out
    old, new = baseline[node.metric], current[node.metric]
    if not (math.isfinite(old) and math.isfinite(new)):
        return None
    out[node.metric] = coefficient * (new - old)
    for child in node.children:
        if node.formula.kind == "product":
            values = (old, new, baseline[child.metric], current[child.metric])
            if not all(math.isfinite(v) and v > 0 for v in values):
                return None
            child_coefficient = (coefficient * _log_mean(new, old) * child.sign
                                 / _log_mean(values[3], values[2]))
        else:
            child_coefficient = coefficient * child.sign
        if contributions(child, baseline, current, child_coefficient, out) is None:
            return None
    return out


def attribute(daily: pd.DataFrame, root: Node, registry: dict,
              current: tuple[pd.Timestamp, pd.Timestamp],
              baseline: tuple[pd.Timestamp, pd.Timestamp]) -> list[dict] | None:
    """The rows of one comparison: the root's change and each driver's contribution, or None
    when the decomposition does not apply (a factor not positive in one of the periods)."""
    now = period_values(root, daily.loc[current[0]:current[1]], registry)
    then = period_values(root, daily.loc[baseline[0]:baseline[1]], registry)
    parts = contributions(root, then, now)
    if parts is None:
        return None
    total = parts[root.metric]
    rows = []
    for node in root.walk():
        old, new = then[node.metric], now[node.metric]
        parent = next((n for n in root.walk() if n.metric == node.parent), None)
        rows.append({
            "driver": node.metric, "parent": node.parent, "level": node.level,
            "method": ("additive" if (parent or node).formula.kind == "sum" else "lmdi"),
            "baseline_value": old, "current_value": new,
            "change_pct": (new / old - 1) * 100 if old else math.nan,
            "contribution": parts[node.metric],
            "share": parts[node.metric] / total if total else math.nan,
        })
    return rows


def wide(rows: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """kpi_daily rows (metric, date, value) as one column per metric, one row per day from
    start to end (NaN where no row): what period_values reads."""
    table = rows.pivot_table(index="date", columns="metric", values="value", aggfunc="sum")
    return table.reindex(pd.date_range(start, end, freq="D"))
