"""The metric registry: standard metrics, client overrides and additions, and their errors."""

from __future__ import annotations

import json

import pytest

from goalpost.core import registry
from goalpost.core.errors import ConfigError
from goalpost.core.metrics import standard_metrics


def test_standard_metrics_decompose_into_known_metrics():
    metrics = standard_metrics()
    assert metrics["revenue"].category == "north_star"
    for metric in metrics.values():
        for part in (metric.drivers.parts if metric.drivers else []):
            assert part in metrics


def test_client_overrides_and_adds_metrics(project, run_cli):
    (project / "clients" / "shop.yaml").write_text("""name: Shop
metrics:
  revenue: {label: Chiffre d'affaires, target: 125000}
  big_orders:
    label: Big orders
    unit: count
    aggregation: sum
    value: COUNT(*) FILTER (WHERE total > 100)
    dimensions: [location]
""")
    found = registry.load_client("shop").metric_registry()
    assert found["revenue"].label == "Chiffre d'affaires" and found["revenue"].target == 125000
    assert found["revenue"].unit == "currency"  # the rest is the standard definition
    assert found["big_orders"].dimensions == ["location"]
    listed = json.loads(run_cli("metrics", "list", "shop", "--json").output)
    assert {m["name"] for m in listed} >= {"revenue", "big_orders", "orders"}
    shown = run_cli("metrics", "show", "shop", "revenue")
    assert "orders * average_ticket" in shown.output
    assert run_cli("metrics", "show", "shop", "nope").exit_code == 3


@pytest.mark.parametrize(("text", "words"), [
    ("metrics:\n  revenue: {unit: euros}\n",
     "shop.yaml:3: metrics.revenue.unit: metric revenue: unit"),
    ("metrics:\n  new_one: {label: New}\n", "metric new_one"),
    ("metrics:\n  evil: {label: E, unit: count, aggregation: sum, value: '1; DROP TABLE x'}\n",
     "aggregate expression"),
    ("metrics:\n  revenue: {drivers: {formula: a * b, parts: [a, b]}}\n", "unknown metric"),
])
def test_bad_metrics_are_refused_naming_the_field(project, text, words):
    (project / "clients" / "shop.yaml").write_text("name: Shop\n" + text)
    with pytest.raises(ConfigError) as raised:
        registry.load_client("shop")
    assert "clients/shop.yaml" in str(raised.value) and words in str(raised.value)


MAPPED = """name: Shop
metrics:
  footfall: {label: Footfall, unit: count, aggregation: sum, dimensions: [location]}
  marketing_spend: {label: Spend, unit: currency, aggregation: sum, rhythm: month,
                    dimensions: []}
  staff_hours: {label: Staff hours, unit: hours, aggregation: sum, rhythm: week}
  cac:
    label: CAC
    unit: currency
    formula: marketing_spend / new_customers
  conversion:
    label: Conversion
    unit: ratio
    formula: orders / footfall
relationships:
  - {from: marketing_spend, to: new_customers, lag: 1 month}
"""


def test_formula_metrics_take_their_grain_unit_and_dimensions_from_their_parts(project):
    (project / "clients" / "shop.yaml").write_text(MAPPED)
    client = registry.load_client("shop")
    found = client.metric_registry()
    assert (found["cac"].kind, found["cac"].rhythm, found["cac"].aggregation) == (
        "formula", "month", "ratio")
    assert found["cac"].dimensions == []  # marketing spend is known in total only
    assert (found["conversion"].rhythm, found["conversion"].dimensions) == ("day", ["location"])
    assert found["footfall"].grains() == ("day", "week", "month")
    assert found["staff_hours"].grains() == ("week",)
    assert found["new_customers"].kind == "orders"
    assert client.relationships[0].lag_periods(found) == 1
    assert found["cac"].dictionary()["technical"].startswith("marketing_spend / new_customers")


@pytest.mark.parametrize(("old", "new", "line", "field", "words"), [
    # a cycle, through two formulas
    ("new_customers\n  conversion:\n    label: Conversion\n    unit: ratio\n    formula: orders",
     "conversion\n  conversion:\n    label: Conversion\n    unit: ratio\n    formula: cac",
     10, "metrics.cac.formula", "the formulas go round in a cycle (cac -> conversion -> cac)"),
    ("formula: orders / footfall", "formula: orders / footfall * conversion", 14,
     "metrics.conversion.formula", "cycle (conversion -> conversion)"),
    # units that do not agree
    ("formula: orders / footfall", "formula: revenue - footfall", 14,
     "metrics.conversion.formula", "revenue - footfall subtracts count from currency"),
    ("unit: currency\n    formula: marketing", "unit: count\n    formula: marketing", 9,
     "metrics.cac.unit", "declared count, but marketing_spend / new_customers gives currency"),
    ("formula: orders / footfall", "formula: orders / footfal", 14,
     "metrics.conversion.formula", "unknown metric(s) footfal"),
    ("formula: orders / footfall",
     "formula: staff_hours / staff_hours * marketing_spend / marketing_spend", 14,
     "metrics.conversion.formula", "no common grain"),
    ("formula: orders / footfall", "formula: __import__('os')", 14,
     "metrics.conversion.formula", "call is not allowed in a formula"),
    ("formula: orders / footfall", "formula: orders / footfall\n    aggregation: sum", 15,
     "metrics.conversion.aggregation", "a formula metric has none"),
    ("footfall: {label: Footfall, unit: count, aggregation: sum,",
     "footfall: {label: Footfall, unit: count,", 3, "metrics.footfall",
     "aggregation is required"),
    ("to: new_customers, lag: 1 month", "to: new_customer, lag: 1 month", 16,
     "relationships[0].to", "unknown metric 'new_customer'"),
    ("to: new_customers, lag: 1 month", "to: new_customers, lag: 10 days", 16,
     "relationships[0].lag", "lag 10 days is not a whole number of months"),
    ("to: new_customers, lag: 1 month", "to: staff_hours, lag: 1 month", 16,
     "relationships[0].to", "weeks do not add up to months"),
])
def test_formula_and_relationship_errors_name_the_line(project, old, new, line, field, words):
    assert old in MAPPED
    (project / "clients" / "shop.yaml").write_text(MAPPED.replace(old, new))
    with pytest.raises(ConfigError) as raised:
        registry.load_client("shop")
    message = str(raised.value)
    assert f"clients/shop.yaml:{line}: {field}: " in message, message
    assert words in message, message


@pytest.mark.parametrize(("query", "words"), [
    ("SELECT month AS date, SUM(new_customers) AS value FROM {marts}.customers_monthly "
     "GROUP BY month", None),
    ("SELECT month AS date, SUM(new_customers) AS value FROM panpan_marts.customers_monthly "
     "GROUP BY month", "written {marts}.<table>"),
    ("SELECT date, value FROM {marts}.kpi_daily", "built from the metrics themselves"),
    ("SELECT month AS date FROM {marts}.customers_monthly", "it must give date and value"),
    ("DELETE FROM {marts}.customers_monthly", "a SQL metric is a SELECT"),
    ("SELECT 1 AS date, 2 AS value FROM {marts}.x; SELECT 1", "give one query"),
    ("SELECT pg_sleep(10) AS date, 1 AS value FROM {marts}.x", "pg_sleep is not allowed"),
])
def test_sql_metrics_are_checked_at_validation(project, query, words):
    (project / "clients" / "shop.yaml").write_bytes(json.dumps({
        "name": "Shop", "metrics": {"won": {"label": "Won", "aggregation": "sum",
                                            "rhythm": "month", "sql": query}}}).encode())
    if words is None:
        assert registry.load_client("shop").metric_registry()["won"].kind == "sql"
        return
    with pytest.raises(ConfigError) as raised:
        registry.load_client("shop")
    assert "metrics.won.sql" in str(raised.value) and words in str(raised.value)
