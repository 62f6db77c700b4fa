"""`goalpost report <client>`: the client's dashboards as one HTML page, without Metabase.

Each card of the client's dashboard templates (its `dashboards:`, default all) runs with the
dashboards' filter values (their defaults, or --since/--until/--location) as plain SQL
(metabase.template.render_sql) on the client's schemas, logged in as the client's read-only
role: the same login Metabase uses, so a card that needs a grant the role lacks fails here
too. A card whose query fails shows its error in its place; the rest of the page is drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from goalpost.core import registry
from goalpost.core.errors import ConfigError, NotFoundError, WarehouseError
from goalpost.core.identifiers import reader_role, schema_name
from goalpost.core.paths import state_dir
from goalpost.core.registry.models import Client
from goalpost.core.warehouse import database_url
from goalpost.core.warehouse.connection import redact
from goalpost.core.warehouse.tenants import reader_password
from goalpost.metabase import charts, page
from goalpost.metabase.desired import dashboards_for
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
PAGE_ORDER = ("sales_overview", "customers", "inventory", "forecasts_anomalies", "goals_kpis")
STATEMENT_TIMEOUT_MS = 60_000
LOCATION_FILTER = "location"


@dataclass(frozen=True)
class Options:
    """Filter values the user gave: they replace every dashboard's defaults."""

    since: date | None = None
    until: date | None = None
    locations: tuple[str, ...] = ()


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

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "dashboards": self.dashboards, "cards": self.cards,
                "data_as_of": self.data_as_of, "empty_cards": self.empty,
                "errors": [e.__dict__ for e in self.errors]}


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
        values[spec.key] = value
    return values


def describe_filter(spec: FilterSpec, value: Any, today: date) -> str:
    """A filter as the page states it: 'past90days (2026-09-03 to 2026-11-30)', 'All'."""
    if value in (None, "", [], ()):
        return "All"
    if spec.type == "date":
        start, end = date_bounds(value, today)
        span = f"{start or '…'} to {end or '…'}"
        return span if value == f"{start or ''}~{end or ''}" else f"{value} ({span})"
    return ", ".join(value) if isinstance(value, list) else str(value)


def ordered(found: dict[str, DashboardTemplate]) -> list[DashboardTemplate]:
    rank = {key: index for index, key in enumerate(PAGE_ORDER)}
    return [found[k] for k in sorted(found, key=lambda k: (rank.get(k, len(rank)), k))]


def selected_dashboards(client: Client) -> list[DashboardTemplate]:
    """The dashboards Metabase gets for this client (its `dashboards:`, in that order; all of
    them by default, in reading order)."""
    chosen = dashboards_for(client)
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


def data_as_of(conn: psycopg.Connection, slug: str) -> date | None:
    """The latest day of the client's kpi_daily; NotFoundError when no marts are built yet."""
    marts = schema_name(slug, "marts")
    found = conn.execute("SELECT to_regclass(%s)", (f'"{marts}".kpi_daily',)).fetchone()
    conn.commit()
    if found is None or found[0] is None:
        raise NotFoundError(f"client {slug} has no data built yet ({marts}.kpi_daily is missing)",
                            hint=f"run `goalpost run {slug}` (or `goalpost demo` for PanPan)")
    latest = conn.execute(sql.SQL("SELECT MAX(date) FROM {}.kpi_daily").format(
        sql.Identifier(marts))).fetchone()
    conn.commit()
    return latest[0] if latest else None


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
                     report: Report) -> page.DashboardView:
    values = filter_values(dashboard, options)
    targets = {name: metric.target for name, metric in client.metric_registry().items()}
    view = page.DashboardView(
        dashboard.name, dashboard.description or "",
        [(spec.name, describe_filter(spec, values[spec.key], today))
         for spec in dashboard.filters])
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
        settings = card_settings(card, targets)
        formats = column_formats(card, settings, client)
        width, height = page.body_size(placed.size_x, placed.size_y)
        shown.body = charts.render(result, card.display, settings, formats, width, height)
        if not result.rows:
            report.empty.append(f"{dashboard.name} / {card.name}")
    return view


def build_report(slug: str, *, options: Options | None = None, out: Path | None = None,
                 url: str | None = None, today: date | None = None,
                 progress: Callable[[str], None] | None = None) -> Report:
    """Run every card of every template for client `slug` and write the page.

    `today` anchors relative date filters (past90days); default: today in the client's
    time zone, as Metabase would.
    """
    options = options or Options()
    if options.since and options.until and options.until < options.since:
        raise ConfigError(f"--until {options.until} is before --since {options.since}")
    client = registry.load_client(slug)
    today = today or datetime.now(ZoneInfo(client.timezone)).date()
    dashboards = selected_dashboards(client)
    path = (out or default_path(slug)).expanduser().resolve()
    report = Report(path, len(dashboards), 0, None)
    views: list[page.DashboardView] = []
    with reader_connection(slug, url) as conn:
        report.data_as_of = data_as_of(conn, slug)
        for dashboard in dashboards:
            if progress:
                progress(f"{dashboard.name}: {len(dashboard.cards)} cards")
            views.append(render_dashboard(conn, client, slug, dashboard, options, today, report))
    report.cards = sum(len(v.cards) for v in views)
    html = page.render_page(client.name, views, data_as_of=report.data_as_of,
                            generated_at=datetime.now(ZoneInfo(client.timezone)),
                            currency=client.currency)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return report


def parse_locations(values: Sequence[str]) -> tuple[str, ...]:
    """--location may repeat or hold a comma-separated list."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())
