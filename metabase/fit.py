"""Dashboard templates fitted to one client: the dashboards it gets, its dimensions as filters
and cards, and date filters that count back from its data rather than from the clock.

A template is the same for every client (metabase.template); what a client's Metabase and
`goalpost report` show is the template fitted here:

- dashboards whose `requires` no source of the client feeds (Inventory without stock counts)
  are left out unless the client's `dashboards:` names them; so are cards whose `requires`
  no source feeds (the review's stock card), whatever `dashboards:` says;
- the `dimensions` filter becomes one text filter per dimension the client declares, applied
  to the cards whose mart carries it; `per_dimension` cards are repeated per dimension;
- cards about a dimension with a single value in the data (`needs_values: location` for a
  one-shop client) are left out: that value is the total, shown already;
- with `pin_dates`, a relative date default (`past90days`) of a client whose data ends before
  yesterday becomes the same span ending on the data's latest day, and the dashboard says so;
  `{as_of}` in descriptions is that day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg import sql

from goalpost.core.dimensions import Dimension
from goalpost.core.identifiers import schema_name
from goalpost.core.registry.models import Client
from goalpost.metabase.template import (
    DIMENSIONS_FILTER,
    CardSpec,
    DashboardTemplate,
    date_bounds,
    templates,
)

_RELATIVE_PREFIXES = ("past", "next", "this")


@dataclass(frozen=True)
class DataFacts:
    """What a client's built marts say that its dashboards must fit."""

    as_of: date | None = None  # the newest business date (marts.data_as_of.as_of_date)
    last_complete: date | None = None  # the last day whose data is complete
    single_valued: frozenset[str] = field(default_factory=frozenset)  # one value in kpi_daily


def read_facts(conn: psycopg.Connection, slug: str) -> DataFacts:
    """The client's DataFacts from its marts (empty when they are not built yet)."""
    marts = schema_name(slug, "marts")

    def exists(table: str) -> bool:
        found = conn.execute("SELECT to_regclass(%s)", (f'"{marts}".{table}',)).fetchone()
        return found is not None and found[0] is not None

    as_of = last_complete = None
    single: frozenset[str] = frozenset()
    if exists("data_as_of"):
        row = conn.execute(sql.SQL("SELECT as_of_date, last_complete_date FROM {}.data_as_of")
                           .format(sql.Identifier(marts))).fetchone()
        if row:
            as_of, last_complete = row
    if exists("kpi_daily"):
        single = frozenset(name for (name,) in conn.execute(sql.SQL(
            "SELECT dimension FROM {}.kpi_daily WHERE dimension <> 'all' GROUP BY dimension "
            "HAVING COUNT(DISTINCT dimension_value) = 1").format(sql.Identifier(marts))))
        if as_of is None:  # marts built before data_as_of existed
            as_of = conn.execute(sql.SQL("SELECT MAX(date) FROM {}.kpi_daily").format(
                sql.Identifier(marts))).fetchone()[0]
    return DataFacts(as_of, last_complete, single)


def anchor(facts: DataFacts, today: date) -> date:
    """The day relative date filters count back from: today, or the day after the data's
    latest day when the data ends before yesterday (`past90days` then ends on that day)."""
    if facts.as_of is None:
        return today
    return min(today, facts.as_of + timedelta(days=1))


def chosen(client: Client) -> list[DashboardTemplate]:
    """The templates the client gets: its `dashboards:`, else every template whose required
    entities one of its sources feeds."""
    found = templates()
    if client.dashboards is not None:
        return [found[key] for key in client.dashboards]
    fed = fed_entities(client)
    return [t for t in found.values() if set(t.requires) <= fed]


def fed_entities(client: Client) -> set[str]:
    """The canonical entities one of the client's sources feeds."""
    return {entity for source in client.sources for entity in source.fed_entities()}


def dashboards(client: Client, facts: DataFacts, *, today: date,
               pin_dates: bool = False) -> list[DashboardTemplate]:
    """The client's dashboards, fitted (see the module docstring)."""
    return [fit(t, client, facts, today=today, pin_dates=pin_dates) for t in chosen(client)]


def fit(dashboard: DashboardTemplate, client: Client, facts: DataFacts, *, today: date,
        pin_dates: bool = False) -> DashboardTemplate:
    """One template fitted to the client."""
    declared = list(client.dimensions.values())
    start = anchor(facts, today)
    notes: list[str] = []
    filters: list[dict[str, Any]] = []
    for spec in dashboard.filters:
        if spec.type == DIMENSIONS_FILTER:
            filters += [{"key": d.name, "name": d.title, "type": "text"} for d in declared]
            continue
        item = spec.model_dump(exclude_none=True)
        if (pin_dates and spec.type == "date" and isinstance(spec.default, str)
                and start < today and spec.default.startswith(_RELATIVE_PREFIXES)):
            first, last = date_bounds(spec.default, start)
            item["default"] = f"{first or ''}~{last or ''}"
            notes.append(f"{spec.name} defaults to {first} to {last} ({spec.default} counted "
                         f"back from {facts.as_of}, the day the data goes to)")
        filters.append(item)
    cards: list[dict[str, Any]] = []
    fed = fed_entities(client)
    for card in dashboard.cards:
        if card.needs_values and card.needs_values in facts.single_valued:
            continue
        if not set(card.requires) <= fed:
            continue
        if card.per_dimension:
            table = card.dimensions_table()
            cards += [_card(card, declared, facts, d) for d in declared
                      if table is not None and d.mart_column(table)]
        else:
            cards.append(_card(card, declared, facts))
    description = _as_of(dashboard.description or "", facts)
    if notes:
        description = " ".join([description, *(f"{note}." for note in notes)]).strip()
    data = dashboard.model_dump(exclude_none=True)
    data.update(description=description or None, filters=filters, cards=cards)
    return DashboardTemplate.model_validate(data)


def _as_of(text: str, facts: DataFacts) -> str:
    return text.replace("{as_of}", str(facts.as_of) if facts.as_of else "its latest day")


def _card(card: CardSpec, declared: list[Dimension], facts: DataFacts,
          dimension: Dimension | None = None) -> dict[str, Any]:
    """A card with its `{{dimensions}}` made the client's, for one dimension if per_dimension."""
    data = card.model_dump(exclude_none=True)
    data.pop("per_dimension", None)
    data.pop("needs_values", None)
    data.pop("requires", None)
    table = card.dimensions_table()
    filters = dict(card.filters)
    filters.pop(DIMENSIONS_FILTER, None)
    text = card.sql
    if table is not None:
        layer = card.filters[DIMENSIONS_FILTER].split(".")[0]
        carried = [d for d in declared if d.mart_column(table)]
        tags = " AND ".join(f"{{{{{d.name}}}}}" for d in carried) or "TRUE"
        text = text.replace(f"{{{{{DIMENSIONS_FILTER}}}}}", tags)
        filters.update({d.name: f"{layer}.{table}.{d.mart_column(table)}" for d in carried})
    if dimension is not None:
        column = dimension.mart_column(table or "") or dimension.name
        text = text.replace("{dimension}", column)
        data["key"] = f"{card.key}_{dimension.name}"[:40]
        data["name"] = card.name.replace("{dimension_name}", dimension.title.lower())
        if card.description:
            data["description"] = card.description.replace("{dimension_name}",
                                                           dimension.title.lower())
        viz = data.get("visualization") or {}
        viz["dimensions"] = [column if d == "{dimension}" else d
                             for d in viz.get("dimensions", [])]
        data["visualization"] = viz
    if data.get("description"):
        data["description"] = _as_of(data["description"], facts)
    data.update(sql=text, filters=filters)
    return data
