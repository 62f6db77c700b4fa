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
    ("metrics:\n  revenue: {unit: euros}\n", "shop.yaml:3: metrics.revenue.unit: metric revenue: unit"),
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
