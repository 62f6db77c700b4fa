"""The client's metrics as SQLMesh variables: what kpi_values computes, what the metric values
of files, APIs and hand are checked against, and the rows of the metric dictionary and the
metric map's edges (marts metric_dictionary and metric_relationships).

Each variable feeds the macros of sqlmesh/macros/goalpost_macros.py (their docstrings say the
shapes) and is part of the fingerprint of the models that read it: a new formula rebuilds
kpi_values, not the staging of the metric values.
"""

from __future__ import annotations

from typing import Any

from goalpost.core.dimensions import BUILT_IN
from goalpost.core.identifiers import schema_name
from goalpost.core.metrics import Metric, formula_order, formulas, queries
from goalpost.core.registry.models import ApiSource, Client


def dimension_columns(client: Client) -> dict[str, list[str]]:
    """{dimension: ["order" or "line", its column in staging.sales_receipts or
    dated_order_lines]}."""
    columns = {name: ["order", column] for name, column in BUILT_IN.items()}
    columns.update({d.name: ["order" if d.order_level else "line", f"dim_{d.name}"]
                    for d in client.dimensions.values()})
    return columns


def metric_spec(metric: Metric, columns: dict[str, list[str]], slug: str) -> dict[str, Any]:
    """One metric as kpi_values computes it."""
    spec: dict[str, Any] = {
        "name": metric.name, "kind": metric.kind, "rhythm": metric.rhythm,
        "grains": list(metric.grains()), "aggregation": metric.aggregation,
        "dimensions": [[d, *columns[d]] for d in metric.dimensions or ()],
    }
    if metric.kind == "orders":
        spec["value"] = metric.value
    elif metric.kind == "formula":
        formula = formulas.parse(str(metric.formula))
        spec["parts"] = list(formula.names)
        spec["expression"] = formula.sql({name: f"p{i}.value"
                                          for i, name in enumerate(formula.names)})
    elif metric.kind == "sql":
        spec["query"] = queries.render(str(metric.sql), schema_name(slug, "marts"))
        spec["dimensioned"] = "dimension" in queries.columns(str(metric.sql))
    return spec


def metric_variables(slug: str, client: Client) -> dict[str, Any]:
    """goalpost_metrics (every metric, formulas in dependency order), goalpost_inputs (the
    input metrics: what metric values may name) and goalpost_dictionary (the dictionary's
    rows and the map's edges), each for this client."""
    registry = client.metric_registry()
    columns = dimension_columns(client)
    order = formula_order(registry)
    plain = sorted(name for name, m in registry.items() if m.kind != "formula")
    metrics = [metric_spec(registry[name], columns, slug) for name in [*plain, *order]]
    inputs = [{"name": m.name, "rhythm": m.rhythm, "dimensions": list(m.dimensions or ())}
              for m in sorted(registry.values(), key=lambda m: m.name) if m.kind == "input"]
    entries = []
    for metric in sorted(registry.values(), key=lambda m: m.name):
        entry = metric.dictionary()
        entry["tags"] = ", ".join(entry["tags"])
        entry["dimensions"] = ", ".join(entry["dimensions"])
        entry["parts"] = ", ".join(entry["parts"])
        thresholds = metric.thresholds
        entry.pop("thresholds")
        entry.update(threshold_direction=thresholds.direction if thresholds else None,
                     warning=thresholds.warning if thresholds else None,
                     critical=thresholds.critical if thresholds else None)
        entries.append(entry)
    return {
        "goalpost_metrics": {slug: metrics},
        "goalpost_inputs": {slug: inputs},
        "goalpost_dictionary": {slug: {"metrics": entries, "edges": edges(client, registry)}},
    }


def edges(client: Client, registry: dict[str, Metric]) -> list[dict[str, Any]]:
    """The metric map's edges: each declared relationship (from, to, expected direction and
    lag, confidence, notes), then a part to the metric its formula or drivers compute (a pair
    already declared is not repeated)."""
    found: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()

    def add(source: str, target: str, kind: str, **extra: Any) -> None:
        if (source, target) not in seen:
            seen.add((source, target))
            found.append({"source": source, "target": target, "kind": kind,
                          "direction": None, "lag": None, "confidence": None, "notes": None,
                          **extra})

    for edge in client.relationships:
        add(edge.source, edge.target, "relationship", direction=edge.direction,
            lag=str(edge.lag), confidence=edge.confidence,
            notes="; ".join(n for n in [edge.notes, *edge.comments] if n) or None)
    for name, metric in sorted(registry.items()):
        if metric.kind == "formula":
            for part in formulas.parse(str(metric.formula)).names:
                add(part, name, "formula", notes=f"{name} = {metric.formula}")
        if metric.drivers:
            for part in metric.drivers.parts:
                add(part, name, "driver", notes=f"{name} = {metric.drivers.formula}")
    return found


def rest_streams(client: Client) -> list[dict[str, Any]]:
    """The `connector: rest` streams feeding metric values, with each field's path in the
    records ({field: "dotted.path"} or "=constant")."""
    found = []
    for source in client.sources:
        if not isinstance(source, ApiSource) or source.connector != "rest" \
                or "metric_values" not in source.fed_entities():
            continue
        manifest = source.load_manifest()
        for name in source.stream_names():
            stream = manifest.streams[name]
            if stream.entity == "metric_values":
                found.append({"source": source.name, "stream": name,
                              "fields": dict(sorted(stream.fields.items()))})
    return found
