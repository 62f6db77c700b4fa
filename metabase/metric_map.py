"""The metric map: a client's metrics as a network, drawn as inline SVG for `goalpost report`.

Nodes are the metrics of the dictionary (marts.metric_dictionary), coloured by category
(north star, driver, input, guardrail) and ringed by their status against their goal, their
thresholds or their target; edges are the formulas', drivers' and declared relationships'
(marts.metric_relationships), each marked by what the correlations extension measured on it
(its verdict for a declared relationship, Spearman's rho for all). The rows are those of the
Metric map dashboard's two cards (metabase/templates/metric_map.yaml), so Metabase and the
report show the same network.

Layout: a metric sits one column right of the furthest metric that feeds it (inputs on the
left, the north star on the right), so every edge runs left to right except along a cycle of
declared relationships, drawn as a curve back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

CATEGORY_COLOURS = {"north_star": "#509EE3", "driver": "#88BF4D", "input": "#A989C5",
                    "guardrail": "#F9CF48"}
CATEGORY_NAMES = {"north_star": "north star", "driver": "driver", "input": "input",
                  "guardrail": "guardrail"}
CATEGORY_ORDER = ("north_star", "driver", "guardrail", "input")
STATUS_COLOURS = {"good": "#84BB4C", "warning": "#F2A86F", "bad": "#ED6E6E",
                  "unknown": "#C7CFD4"}
# goal_progress statuses, threshold levels and target comparisons, as the map judges them.
STATUS_KIND = {"achieved": "good", "on-track": "good", "ok": "good", "on target": "good",
               "at-risk": "warning", "warning": "warning", "below target": "warning",
               "above target": "warning", "off-track": "bad", "missed": "bad",
               "critical": "bad"}
VERDICT_COLOURS = {"supported": "#84BB4C", "contradicted": "#ED6E6E",
                   "not supported": "#A5B1BA", "too little data": "#C7CFD4"}
FORMULA_COLOUR = "#74838F"

NODE_WIDTH = 150
NODE_HEIGHT = 44
COLUMN_GAP = 90
ROW_GAP = 22
MARGIN = 16
LEGEND_HEIGHT = 28


@dataclass(frozen=True)
class Node:
    metric: str
    label: str
    category: str
    status: str | None  # a goal status, a threshold level or a target comparison
    value: str  # the latest value as shown

    @property
    def status_kind(self) -> str:
        return STATUS_KIND.get(self.status or "", "unknown")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # relationship, formula or driver
    verdict: str | None  # a declared relationship's verdict from the data
    rho: float | None  # Spearman's rho measured on the edge

    @property
    def colour(self) -> str:
        if self.kind != "relationship":
            return FORMULA_COLOUR
        return VERDICT_COLOURS.get(self.verdict or "", VERDICT_COLOURS["too little data"])

    @property
    def caption(self) -> str:
        rho = "" if self.rho is None else f"ρ {self.rho:+.2f}"
        if self.kind == "relationship":
            return f"{self.verdict or 'not measured'}{' · ' + rho if rho else ''}"
        return rho


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def nodes_from(rows: Sequence[Mapping[str, Any]]) -> list[Node]:
    """The Metric map card `metric_nodes`' rows as nodes (one per metric)."""
    found = []
    for row in rows:
        value = _number(row.get("latest_value"))
        shown = "no data" if value is None else f"{value:,.4g}" if abs(value) < 1000 \
            else f"{value:,.0f}"
        found.append(Node(str(row["metric"]), str(row.get("label") or row["metric"]),
                          str(row.get("category") or "driver"), row.get("status"), shown))
    return found


def edges_from(rows: Sequence[Mapping[str, Any]], metrics: set[str]) -> list[Edge]:
    """The card `metric_edges`' rows as edges between known metrics, one per pair."""
    found: dict[tuple[str, str], Edge] = {}
    for row in rows:
        source, target = str(row["source"]), str(row["target"])
        if source not in metrics or target not in metrics or (source, target) in found:
            continue
        rho = _number(row.get("expected_rho")) if row.get("kind") == "relationship" else None
        if rho is None:
            rho = _number(row.get("rho"))
        found[(source, target)] = Edge(source, target, str(row.get("kind") or "relationship"),
                                       row.get("verdict"), rho)
    return list(found.values())


def columns_of(nodes: Sequence[Node], edges: Sequence[Edge]) -> dict[str, int]:
    """Each metric's column: one right of the furthest metric feeding it (longest path; a
    cycle stops growing after as many rounds as there are metrics)."""
    column = {n.metric: 0 for n in nodes}
    for _ in range(len(nodes)):
        moved = False
        for edge in edges:
            wanted = column[edge.source] + 1
            if wanted > column[edge.target] and wanted < len(nodes):
                column[edge.target] = wanted
                moved = True
        if not moved:
            break
    return column


def positions(nodes: Sequence[Node], edges: Sequence[Edge]) -> dict[str, tuple[float, float]]:
    """The top-left corner of each node's box."""
    column = columns_of(nodes, edges)
    rank = {c: i for i, c in enumerate(CATEGORY_ORDER)}
    by_column: dict[int, list[Node]] = {}
    for node in sorted(nodes, key=lambda n: (rank.get(n.category, len(rank)), n.metric)):
        by_column.setdefault(column[node.metric], []).append(node)
    tallest = max((len(v) for v in by_column.values()), default=0)
    height = tallest * (NODE_HEIGHT + ROW_GAP) - ROW_GAP
    found = {}
    for index, members in by_column.items():
        used = len(members) * (NODE_HEIGHT + ROW_GAP) - ROW_GAP
        top = MARGIN + LEGEND_HEIGHT + (height - used) / 2
        for row, node in enumerate(members):
            found[node.metric] = (MARGIN + index * (NODE_WIDTH + COLUMN_GAP),
                                  top + row * (NODE_HEIGHT + ROW_GAP))
    return found


def size(nodes: Sequence[Node], edges: Sequence[Edge]) -> tuple[float, float]:
    """The drawing's width and height in pixels."""
    places = positions(nodes, edges)
    if not places:
        return 2 * MARGIN, 2 * MARGIN + LEGEND_HEIGHT
    return (max(x for x, _ in places.values()) + NODE_WIDTH + MARGIN,
            max(y for _, y in places.values()) + NODE_HEIGHT + MARGIN)


def _edge(edge: Edge, places: dict[str, tuple[float, float]]) -> str:
    sx, sy = places[edge.source]
    tx, ty = places[edge.target]
    x1, y1 = sx + NODE_WIDTH, sy + NODE_HEIGHT / 2
    x2, y2 = tx, ty + NODE_HEIGHT / 2
    if x2 <= x1:  # back along a cycle, or within a column: around below the boxes
        x1, x2 = sx + NODE_WIDTH / 2, tx + NODE_WIDTH / 2
        y1, y2 = sy + NODE_HEIGHT, ty + NODE_HEIGHT
        low = max(y1, y2) + ROW_GAP
        path = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{low:.1f} {x2:.1f},{low:.1f} {x2:.1f},{y2:.1f}"
        mid_x, mid_y = (x1 + x2) / 2, low - 2
    else:
        bend = (x2 - x1) / 2
        path = (f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} "
                f"{x2:.1f},{y2:.1f}")
        mid_x, mid_y = (x1 + x2) / 2, (y1 + y2) / 2 - 4
    width = 1.2 + 2.8 * abs(edge.rho) if edge.rho is not None else 1.2
    dash = ' stroke-dasharray="5 4"' if edge.kind == "relationship" and edge.verdict in (
        None, "not supported", "too little data") else ""
    caption = (f'<text x="{mid_x:.1f}" y="{mid_y:.1f}" text-anchor="middle" font-size="10" '
               f'fill="{edge.colour}">{escape(edge.caption)}</text>' if edge.caption else "")
    return (f'<g class="edge" data-source="{escape(edge.source)}" '
            f'data-target="{escape(edge.target)}" data-kind="{escape(edge.kind)}" '
            f'data-verdict="{escape(edge.verdict or "")}">'
            f"<title>{escape(edge.source)} → {escape(edge.target)} ({escape(edge.kind)})"
            f"{': ' + escape(edge.caption) if edge.caption else ''}</title>"
            f'<path d="{path}" fill="none" stroke="{edge.colour}" stroke-width="{width:.1f}"'
            f'{dash} marker-end="url(#metric-map-arrow)"/>{caption}</g>')


def _node(node: Node, x: float, y: float) -> str:
    fill = CATEGORY_COLOURS.get(node.category, "#DCE1E4")
    ring = STATUS_COLOURS[node.status_kind]
    label = node.label if len(node.label) <= 22 else node.label[:21].rstrip() + "…"
    status = node.status or "no goal or threshold"
    return (f'<g class="node" data-metric="{escape(node.metric)}" '
            f'data-category="{escape(node.category)}" data-status="{escape(node.status or "")}">'
            f"<title>{escape(node.label)} ({escape(node.metric)}): "
            f"{escape(CATEGORY_NAMES.get(node.category, node.category))}, {escape(status)}, "
            f"latest {escape(node.value)}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="8" '
            f'fill="{fill}" fill-opacity="0.25" stroke="{ring}" stroke-width="3"/>'
            f'<text x="{x + NODE_WIDTH / 2:.1f}" y="{y + 18:.1f}" text-anchor="middle" '
            f'font-size="12" font-weight="700" fill="#2E353B">{escape(label)}</text>'
            f'<text x="{x + NODE_WIDTH / 2:.1f}" y="{y + 34:.1f}" text-anchor="middle" '
            f'font-size="10" fill="#4C5773">{escape(node.value)} · {escape(status)}</text></g>')


def _legend() -> str:
    parts, x = [], MARGIN
    for category in CATEGORY_ORDER:
        parts.append(f'<rect x="{x}" y="{MARGIN}" width="12" height="12" rx="3" '
                     f'fill="{CATEGORY_COLOURS[category]}" fill-opacity="0.5"/>'
                     f'<text x="{x + 16}" y="{MARGIN + 10}" font-size="11">'
                     f"{CATEGORY_NAMES[category]}</text>")
        x += 90
    for verdict, colour in VERDICT_COLOURS.items():
        parts.append(f'<line x1="{x}" y1="{MARGIN + 6}" x2="{x + 18}" y2="{MARGIN + 6}" '
                     f'stroke="{colour}" stroke-width="2.5"/>'
                     f'<text x="{x + 22}" y="{MARGIN + 10}" font-size="11">{verdict}</text>')
        x += 36 + 7 * len(verdict)
    return f'<g class="legend">{"".join(parts)}</g>'


def render(nodes: Sequence[Node], edges: Sequence[Edge]) -> str:
    """The map as one <svg> element, at its natural size."""
    places = positions(nodes, edges)
    width, height = size(nodes, edges)
    marker = ('<defs><marker id="metric-map-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
              'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
              '<path d="M0,0 L10,5 L0,10 z" fill="#74838F"/></marker></defs>')
    body = "".join(_edge(e, places) for e in edges) + "".join(
        _node(n, *places[n.metric]) for n in nodes)
    return (f'<svg class="metric-map" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
            f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
            f'font-family="Helvetica, Arial, sans-serif" aria-label="Metric map: '
            f'{len(nodes)} metrics, {len(edges)} links">{marker}{_legend()}{body}</svg>')
