"""The metric map's layout and drawing (metabase/metric_map.py), from the rows of the Metric
map dashboard's cards."""

from __future__ import annotations

import re

from goalpost.metabase import metric_map

NODES = [
    {"metric": "revenue", "label": "Revenue", "category": "north_star", "status": "at-risk",
     "latest_value": 4012.5},
    {"metric": "orders", "label": "Orders", "category": "driver", "status": "on target",
     "latest_value": 630},
    {"metric": "average_ticket", "label": "Average ticket", "category": "driver",
     "status": None, "latest_value": 6.37},
    {"metric": "footfall", "label": "Footfall", "category": "input", "status": None,
     "latest_value": None},
    {"metric": "marketing_spend", "label": "Marketing spend", "category": "input",
     "status": None, "latest_value": 700},
    {"metric": "cac", "label": "Customer acquisition cost", "category": "guardrail",
     "status": "critical", "latest_value": 16.2},
]
EDGES = [
    {"source": "footfall", "target": "orders", "kind": "relationship",
     "verdict": "supported", "expected_rho": 0.71, "rho": 0.74},
    {"source": "marketing_spend", "target": "orders", "kind": "relationship",
     "verdict": "contradicted", "expected_rho": -0.4, "rho": -0.45},
    {"source": "orders", "target": "revenue", "kind": "driver", "verdict": None,
     "expected_rho": None, "rho": 0.93},
    {"source": "average_ticket", "target": "revenue", "kind": "driver", "verdict": None,
     "expected_rho": None, "rho": None},
    {"source": "marketing_spend", "target": "cac", "kind": "formula", "verdict": None,
     "expected_rho": None, "rho": 0.2},
    # The same pair from a second correlations row, and an edge to a metric not on the map.
    {"source": "orders", "target": "revenue", "kind": "driver", "verdict": None,
     "expected_rho": None, "rho": 0.5},
    {"source": "orders", "target": "gone", "kind": "formula", "verdict": None,
     "expected_rho": None, "rho": None},
]


def test_columns_follow_the_longest_path_from_the_inputs() -> None:
    nodes = metric_map.nodes_from(NODES)
    edges = metric_map.edges_from(EDGES, {n.metric for n in nodes})
    assert len(edges) == 5
    assert [e.rho for e in edges if (e.source, e.target) == ("orders", "revenue")] == [0.93]
    columns = metric_map.columns_of(nodes, edges)
    assert columns == {"footfall": 0, "marketing_spend": 0, "average_ticket": 0, "orders": 1,
                       "cac": 1, "revenue": 2}
    places = metric_map.positions(nodes, edges)
    for edge in edges:  # every edge runs left to right
        assert places[edge.source][0] < places[edge.target][0]
    boxes = sorted(places.values())
    for (x1, y1), (x2, y2) in zip(boxes, boxes[1:], strict=False):
        assert x1 != x2 or y2 - y1 >= metric_map.NODE_HEIGHT  # no two boxes overlap


def test_a_cycle_of_relationships_is_drawn_without_looping_for_ever() -> None:
    nodes = metric_map.nodes_from(NODES[:2])
    edges = metric_map.edges_from([
        {"source": "revenue", "target": "orders", "kind": "relationship", "verdict": None},
        {"source": "orders", "target": "revenue", "kind": "relationship", "verdict": None}],
        {"revenue", "orders"})
    columns = metric_map.columns_of(nodes, edges)
    assert sorted(columns.values()) == [0, 1]
    assert metric_map.render(nodes, edges).count('class="edge"') == 2


def test_the_drawing_marks_each_node_and_edge() -> None:
    nodes = metric_map.nodes_from(NODES)
    svg = metric_map.render(nodes, metric_map.edges_from(EDGES, {n.metric for n in nodes}))
    assert svg.startswith('<svg class="metric-map"') and svg.endswith("</svg>")
    drawn = dict(re.findall(r'data-metric="([^"]+)" data-category="[^"]+" '
                            r'data-status="([^"]*)"', svg))
    assert drawn == {n["metric"]: n["status"] or "" for n in NODES}
    assert svg.count('class="edge"') == 5
    # a declared edge by its verdict's colour, a formula's in grey; ringed by status
    supported = re.search(r'data-source="footfall"[^>]*>.*?<path [^>]*stroke="([^"]+)"', svg)
    assert supported.group(1) == metric_map.VERDICT_COLOURS["supported"]
    contradicted = re.search(r'data-source="marketing_spend" data-target="orders".*?</g>', svg)
    assert "contradicted · ρ -0.40" in contradicted.group(0)
    cac = re.search(r'data-metric="cac".*?</g>', svg).group(0)
    assert f'stroke="{metric_map.STATUS_COLOURS["bad"]}"' in cac and "16.2" in cac
    assert "no data" in re.search(r'data-metric="footfall".*?</g>', svg).group(0)
    assert "Customer acquisition…" in cac  # long labels cut to fit the box
