"""`goalpost report <client>`: the client's dashboards as one HTML page, without Metabase.

Each card of the client's dashboards (the templates fitted to it and its data, as Metabase
gets them: metabase.fit) runs with the dashboards' filter values (their defaults, or
--since/--until/--location/--filter) as plain SQL (metabase.template.render_sql) on the
client's schemas, logged in as the client's read-only role: the same login Metabase uses, so
a card that needs a grant the role lacks fails here too. Relative date defaults
(`past90days`) count back from the data's latest day when it is before yesterday, and the
page says so. A card whose query fails shows its error in its place; the rest of the page is
drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from goalpost.core import registry
from goalpost.core.errors import ConfigError, NotFoundError, WarehouseError
from goalpost.core.identifiers import reader_role, schema_name
from goalpost.core.paths import state_dir
from goalpost.core.registry.models import Client
from goalpost.core.warehouse import database_url
from goalpost.core.warehouse.connection import redact
from goalpost.core.warehouse.tenants import reader_password
from goalpost.metabase import charts, fit, metric_map, page
from goalpost.metabase.template import (
    CardSpec,
    DashboardTemplate,
    FilterSpec,
    date_bounds,
    layout,
    render_sql,
    visualization_settings,
)

# Dashboards in the order a reader meets them; templates not listed follow by name.
PAGE_ORDER = ("sales_overview", "customers", "inventory", "forecasts_anomalies", "goals_kpis",
              "metric_map")
MAP_DASHBOARD, MAP_NODES, MAP_EDGES = "metric_map", "metric_nodes", "metric_edges"
STATEMENT_TIMEOUT_MS = 60_000
LOCATION_FILTER = "location"


@dataclass(frozen=True)
class Options:
    """Filter values the user gave: they replace every dashboard's defaults. `values` gives
    text filters by key (a dimension such as country): (key, value) pairs, a key repeated
    for several values."""

    since: date | None = None
    until: date | None = None
    locations: tuple[str, ...] = ()
    values: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CardError:
    dashboard: str
    card: str
    error: str


@dataclass
class Report:
    path: Path
    dashboards: int
    cards: int
    data_as_of: date | None
    errors: list[CardError] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    dates_counted_from: date | None = None  # the data's latest day, when dates count from it

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "dashboards": self.dashboards, "cards": self.cards,
                "data_as_of": self.data_as_of, "dates_counted_from": self.dates_counted_from,
                "empty_cards": self.empty, "errors": [e.__dict__ for e in self.errors]}


def default_path(slug: str) -> Path:
    return state_dir() / "reports" / f"{slug}.html"


def filter_values(dashboard: DashboardTemplate, options: Options) -> dict[str, Any]:
    """Each filter's value: the user's when given, else the template's default."""
    values: dict[str, Any] = {}
    for spec in dashboard.filters:
        value: Any = spec.default
        if spec.type == "date" and (options.since or options.until):
            value = f"{options.since or ''}~{options.until or ''}"
        elif spec.key == LOCATION_FILTER and options.locations:
            value = list(options.locations)
        elif spec.type == "text" and any(key == spec.key for key, _ in options.values):
            value = [text for key, text in options.values if key == spec.key]
        values[spec.key] = value
    return values


def describe_filter(spec: FilterSpec, value: Any, today: date,
                    data_as_of: date | None = None) -> str:
    """A filter as the page states it: 'past90days (2026-09-03 to 2026-11-30)', 'All'; with
    `data_as_of`, a relative date counted back from that day says so."""
    if value in (None, "", [], ()):
        return "All"
    if spec.type == "date":
        start, end = date_bounds(value, today)
        span = f"{start or '…'} to {end or '…'}"
        if value == f"{start or ''}~{end or ''}":
            return span
        counted = f", counted back from {data_as_of}, the data's latest day" if data_as_of else ""
        return f"{value} ({span}{counted})"
    return ", ".join(value) if isinstance(value, list) else str(value)


def ordered(found: dict[str, DashboardTemplate]) -> list[DashboardTemplate]:
    rank = {key: index for index, key in enumerate(PAGE_ORDER)}
    return [found[k] for k in sorted(found, key=lambda k: (rank.get(k, len(rank)), k))]


def selected_dashboards(client: Client, facts: fit.DataFacts | None = None,
                        today: date | None = None) -> list[DashboardTemplate]:
    """The dashboards Metabase gets for this client, fitted to it and to `facts` (its
    `dashboards:`, in that order; by default those its sources can fill, in reading order).
    """
    chosen = fit.dashboards(client, facts or fit.DataFacts(), today=today or date.today())
    if client.dashboards is not None:
        return chosen
    return ordered({d.key: d for d in chosen})


def reader_connection(slug: str, url: str | None = None) -> psycopg.Connection:
    """A connection to the warehouse as `<slug>_reader`, read-only, with a statement timeout."""
    target = url or database_url()
    try:
        conn = psycopg.connect(target, user=reader_role(slug), password=reader_password(slug),
                               connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise WarehouseError(
            f"cannot log in to {redact(target)} as {reader_role(slug)}: "
            f"{str(exc).strip().splitlines()[-1]}",
            hint=f"`goalpost run {slug}` (re)creates the role with the password derived from "
                 "this installation's secret key (GOALPOST_SECRET_KEY or .goalpost/secret_key)",
        ) from None
    conn.execute("SET default_transaction_read_only = on")
    conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS:d}")
    conn.commit()
    return conn


def data_facts(conn: psycopg.Connection, slug: str) -> fit.DataFacts:
    """How far the client's data goes (metabase.fit.read_facts); NotFoundError when no marts
    are built yet."""
    marts = schema_name(slug, "marts")
    found = conn.execute("SELECT to_regclass(%s)", (f'"{marts}".kpi_daily',)).fetchone()
    conn.commit()
    if found is None or found[0] is None:
        raise NotFoundError(f"client {slug} has no data built yet ({marts}.kpi_daily is missing)",
                            hint=f"run `goalpost run {slug}` (or `goalpost demo` for PanPan)")
    facts = fit.read_facts(conn, slug)
    conn.commit()
    return facts


def run_card(conn: psycopg.Connection, query: str) -> charts.Result:
    """One card's rows; on error the transaction is rolled back and the error raised."""
    try:
        cursor = conn.execute(query)
        columns = [c.name for c in cursor.description or []]
        rows = cursor.fetchall() if cursor.description else []
        conn.commit()
    except psycopg.Error:
        conn.rollback()
        raise
    return charts.Result(columns, rows)


def card_settings(card: CardSpec, targets: dict[str, float | None]) -> dict[str, Any]:
    """The card's Metabase visualization settings, plus its band for the renderer."""
    settings = visualization_settings(card, targets)
    band = card.visualization.band
    if band is not None:
        settings["band"] = {"lower": band.lower, "upper": band.upper}
    return settings


def column_formats(card: CardSpec, settings: dict[str, Any], client: Client) -> charts.Formats:
    """How the card's numbers read: a column named after a metric takes its unit, a chart
    with a goal metric reads all its series in that metric's unit, and the card's
    `column_settings` have the last word."""
    metrics = client.metric_registry()
    styles = {name: "currency" if metric.unit == "currency" else "number"
              for name, metric in metrics.items() if metric.unit != "percent"}
    viz = card.visualization
    goal = metrics.get(viz.goal) if viz.goal else None
    if goal is not None and goal.unit != "percent":
        band = [viz.band.lower, viz.band.upper] if viz.band else []
        for column in [*viz.metrics, *band]:
            styles[column] = styles[goal.name]
    styles.update(charts.column_styles(settings))
    return charts.Formats(client.currency, styles)


def render_dashboard(conn: psycopg.Connection, client: Client, slug: str,
                     dashboard: DashboardTemplate, options: Options, today: date,
                     report: Report, counted_from: date | None = None) -> page.DashboardView:
    """One dashboard's cards run and drawn; `today` anchors relative dates, `counted_from`
    (the data's latest day, when `today` is the day after it) is said beside them."""
    values = filter_values(dashboard, options)
    targets = {name: metric.target for name, metric in client.metric_registry().items()}
    view = page.DashboardView(
        dashboard.name, dashboard.description or "",
        [(spec.name, describe_filter(spec, values[spec.key], today, counted_from))
         for spec in dashboard.filters])
    results: dict[str, charts.Result] = {}
    for placed in layout(dashboard):
        card = placed.card
        shown = page.CardView(card.name, card.display, placed.col, placed.row, placed.size_x,
                              placed.size_y, description=card.description or "")
        view.cards.append(shown)
        try:
            query = render_sql(card, slug, values, filters=dashboard.filters, today=today)
            result = run_card(conn, query)
        except psycopg.Error as exc:
            shown.error = str(exc).strip().splitlines()[0]
            report.errors.append(CardError(dashboard.name, card.name, shown.error))
            continue
        results[card.key] = result
        settings = card_settings(card, targets)
        formats = column_formats(card, settings, client)
        width, height = page.body_size(placed.size_x, placed.size_y)
        shown.body = charts.render(result, card.display, settings, formats, width, height)
        if not result.rows:
            report.empty.append(f"{dashboard.name} / {card.name}")
    if dashboard.key == MAP_DASHBOARD and MAP_NODES in results and MAP_EDGES in results:
        view.figure = draw_map(results[MAP_NODES], results[MAP_EDGES])
    return view


def draw_map(nodes: charts.Result, edges: charts.Result) -> str:
    """The metric map's SVG from the rows of the Metric map dashboard's two cards."""
    def records(result: charts.Result) -> list[dict[str, Any]]:
        return [dict(zip(result.columns, row, strict=True)) for row in result.rows]

    found = metric_map.nodes_from(records(nodes))
    return metric_map.render(found, metric_map.edges_from(records(edges),
                                                          {n.metric for n in found}))


def build_report(slug: str, *, options: Options | None = None, out: Path | None = None,
                 url: str | None = None, today: date | None = None,
                 progress: Callable[[str], None] | None = None) -> Report:
    """Run every card of every template for client `slug` and write the page.

    `today` is the client's today (default: in its time zone, as Metabase would); relative
    date filters (past90days) count back from it, or from the data's latest day when that is
    before yesterday (metabase.fit.anchor), which the page then says.
    """
    options = options or Options()
    if options.since and options.until and options.until < options.since:
        raise ConfigError(f"--until {options.until} is before --since {options.since}")
    client = registry.load_client(slug)
    today = today or datetime.now(ZoneInfo(client.timezone)).date()
    path = (out or default_path(slug)).expanduser().resolve()
    views: list[page.DashboardView] = []
    with reader_connection(slug, url) as conn:
        facts = data_facts(conn, slug)
        anchor = fit.anchor(facts, today)
        counted_from = facts.as_of if anchor < today else None
        dashboards = selected_dashboards(client, facts, today)
        report = Report(path, len(dashboards), 0, facts.as_of,
                        dates_counted_from=counted_from)
        for dashboard in dashboards:
            if progress:
                progress(f"{dashboard.name}: {len(dashboard.cards)} cards")
            views.append(render_dashboard(conn, client, slug, dashboard, options, anchor,
                                          report, counted_from))
    report.cards = sum(len(v.cards) for v in views)
    html = page.render_page(client.name, views, data_as_of=report.data_as_of,
                            generated_at=datetime.now(ZoneInfo(client.timezone)),
                            currency=client.currency)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return report


def parse_filters(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """--filter KEY=VALUE (repeatable: several values of one key are any of them)."""
    found = []
    for text in values:
        key, sep, value = text.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--filter {text!r} is not KEY=VALUE",
                              hint="e.g. --filter country=France (a dashboard's text filter, "
                                   "such as one of the client's dimensions)")
        found.append((key.strip(), value.strip()))
    return tuple(found)


def parse_locations(values: Sequence[str]) -> tuple[str, ...]:
    """--location may repeat or hold a comma-separated list."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())
