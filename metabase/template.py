"""Dashboard templates: the YAML files in metabase/templates/, their validation, and their SQL.

One file is one dashboard, the same for every client; the client's schemas and metric targets
are filled in when it is provisioned (metabase.desired) or previewed (`goalpost report`).

    key: sales_overview            # stable key: never rename it once provisioned
    name: Sales overview
    description: ...               # optional
    filters:                       # the dashboard's filters, in display order
      - {key: date, name: Date, type: date, default: past90days}
      - {key: location, name: Location, type: text}
    cards:                         # laid out left to right, top to bottom, on a 24-column grid
      - key: revenue_per_day       # stable, unique within the dashboard
        name: Revenue per day
        description: ...           # optional
        display: line              # line, bar, area, combo, row, scalar, table, pie, progress
        size: [16, 6]              # width (1-24 columns) and height (grid rows)
        sql: |
          SELECT sales_date, SUM(revenue) AS revenue
          FROM {marts}.daily_sales
          WHERE {{date}} AND {{location}}
          GROUP BY sales_date ORDER BY sales_date
        filters:                   # dashboard filter -> the column it filters
          date: marts.daily_sales.sales_date
          location: marts.daily_sales.location_id
        visualization:
          dimensions: [sales_date]   # graph.dimensions
          metrics: [revenue]         # graph.metrics
          goal: revenue              # goal line at the client's target for metric `revenue`
          band: {lower: yhat_lower_80, upper: yhat_upper_80}   # forecast band series
          settings: {}               # any other Metabase visualization_settings, sent as is

Fitting a client (metabase.fit): `requires: [inventory_levels]` (canonical entities) leaves
a dashboard out by default for a client none of whose sources feeds them. A filter of type
`dimensions` stands for one text filter per dimension the client declares (country, category,
...); a card filters on them with `{{dimensions}}` in its SQL and `dimensions:
marts.<table>` in its `filters:` (the mart whose columns they are; a dimension that mart does
not carry is not applied). A card with `per_dimension: true` is repeated for each of the
client's dimensions its `dimensions` table carries: `{dimension}` in its SQL and
visualization is the dimension's column, `{dimension_name}` in its name and description how
dashboards name it, and its key gets `_<dimension>`. A card with `needs_values: location`
(or channel, or a dimension) is left out for a client whose data has a single value of it:
per shop, the one shop is the total. `{as_of}` in a description is the date the client's
data goes to.

SQL conventions:

- `{marts}` and `{insights}` stand for the client's schemas `<slug>_marts` and `<slug>_insights`.
- `{{name}}` is a Metabase field filter (template tag of type `dimension`) for the dashboard
  filter `name`; the card's `filters:` says which `layer.table.column` it filters. Metabase
  replaces the tag by a condition on the fully qualified column (`"panpan_marts"."daily_sales".
  "sales_date" BETWEEN ...`), so a table a filter binds to must appear in FROM without an
  alias. With no value the condition is TRUE.
- `[[ ... ]]` is an optional clause: left out when a tag inside it has no value.
- A filter of type `date` takes Metabase's date filter values (`past90days`, `past3months~`,
  `thismonth`, `2026-01-01~2026-03-31`, `2026-01-01~`, `~2026-03-31`, `2026-03-01`, `2026-03`);
  weeks start on Monday (bootstrap sets Metabase's `start-of-week` to match). A filter of type
  `text` takes one value or a list (any of them matches).

render_sql() turns a card into plain Postgres SQL for given filter values, exactly as the tags
above are meant, so the cards can be run without Metabase.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from goalpost.core.canonical import ENTITY_NAMES
from goalpost.core.errors import ConfigError, NotFoundError
from goalpost.core.identifiers import check_slug, schema_name
from goalpost.core.registry.store import display_path, parse_yaml_model

TEMPLATES_DIR = Path(str(resources.files("goalpost.metabase") / "templates"))
GRID_WIDTH = 24
KEY_RE = r"^[a-z][a-z0-9_]{0,39}$"
LAYERS = ("marts", "insights")

_PLACEHOLDER = re.compile(r"(?<!\{)\{(marts|insights)\}(?!\})")
_TABLE_REF = re.compile(r"^(marts|insights)\.([a-z_][a-z0-9_]*)$")
DIMENSIONS_FILTER = "dimensions"  # the filter type standing for the client's dimensions
_TAG = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_OPTIONAL = re.compile(r"\[\[(.*?)\]\]", re.S)
_COLUMN_REF = re.compile(r"^(marts|insights)\.([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)$")

Key = Annotated[str, Field(pattern=KEY_RE)]
Display = Literal["line", "bar", "area", "combo", "row", "scalar", "smartscalar", "table",
                  "pie", "progress", "gauge", "pivot", "funnel"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class FilterSpec(_Strict):
    """A dashboard filter: a date range, or a text value such as a location id."""

    key: Key
    name: str = Field(min_length=1)
    type: Literal["date", "text", "dimensions"]
    default: str | list[str] | None = None

    @model_validator(mode="after")
    def _default(self) -> FilterSpec:
        if self.type == DIMENSIONS_FILTER and self.key != DIMENSIONS_FILTER:
            raise ValueError("a filter of type dimensions has the key dimensions")
        if self.type == DIMENSIONS_FILTER and self.default is not None:
            raise ValueError("a filter of type dimensions has no default")
        if self.type == "date" and self.default is not None:
            if not isinstance(self.default, str):
                raise ValueError("default: a date filter takes one value, e.g. past90days")
            date_bounds(self.default, date(2000, 1, 1))  # ValueError names the problem
        return self

    def metabase_type(self) -> str:
        """The dashboard parameter type and the field filter's widget type in Metabase."""
        return "date/all-options" if self.type == "date" else "string/="


class Band(_Strict):
    """A forecast's prediction interval, drawn as two dashed series around the forecast."""

    lower: str
    upper: str


class Visualization(_Strict):
    dimensions: list[str] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=list)
    goal: str | None = Field(default=None, description="the metric whose target is the goal "
                             "line; no line when the client has no target for it")
    band: Band | None = None
    settings: dict[str, Any] = Field(default_factory=dict)


class ColumnRef(_Strict):
    layer: Literal["marts", "insights"]
    table: str
    column: str

    def qualified(self, slug: str) -> str:
        """The column as Metabase writes it in place of a field filter tag."""
        return f'"{schema_name(slug, self.layer)}"."{self.table}"."{self.column}"'


def _known_entities(value: list[str]) -> list[str]:
    """`requires:` names canonical entities only."""
    unknown = sorted(set(value) - set(ENTITY_NAMES))
    if unknown:
        raise ValueError(f"unknown entit(y/ies) {', '.join(unknown)}; the canonical "
                         f"entities are {', '.join(ENTITY_NAMES)}")
    return value


class CardSpec(_Strict):
    """One native-SQL question on the dashboard."""

    key: Key
    name: str = Field(min_length=1)
    description: str | None = None
    display: Display
    size: tuple[int, int]
    sql: str = Field(min_length=1)
    filters: dict[str, str] = Field(default_factory=dict)
    visualization: Visualization = Field(default_factory=Visualization)
    per_dimension: bool = Field(default=False, description="one card per dimension of the "
                                "client that its `dimensions` table carries")
    needs_values: str | None = Field(default=None, description="location, channel or a "
                                     "dimension: left out when the data has one value of it")
    requires: list[str] = Field(default_factory=list, description="canonical entities a "
                                "client's sources must feed for it to get this card")

    @field_validator("size")
    @classmethod
    def _size(cls, value: tuple[int, int]) -> tuple[int, int]:
        width, height = value
        if not 1 <= width <= GRID_WIDTH or height < 1:
            raise ValueError(f"[width, height]: width 1-{GRID_WIDTH} columns, height at least 1")
        return value

    @field_validator("filters")
    @classmethod
    def _refs(cls, value: dict[str, str]) -> dict[str, str]:
        for name, ref in value.items():
            if name == DIMENSIONS_FILTER:
                if not _TABLE_REF.match(ref):
                    raise ValueError(f"{name}: {ref!r} is not a table: write marts.<table>, "
                                     "the mart whose columns the dimensions are")
            elif not _COLUMN_REF.match(ref):
                raise ValueError(f"{name}: {ref!r} is not a column reference: write "
                                 "marts.<table>.<column> or insights.<table>.<column>")
        return value

    @model_validator(mode="after")
    def _tags_match(self) -> CardSpec:
        allowed = {*LAYERS, "dimension"} if self.per_dimension else set(LAYERS)
        for placeholder in re.findall(r"(?<!\{)\{([A-Za-z_]+)\}(?!\})", self.sql):
            if placeholder not in allowed:
                raise ValueError(f"sql: unknown placeholder {{{placeholder}}}; use {{marts}} "
                                 "or {insights}" + (", and {dimension} in a per_dimension card"
                                                    if placeholder == "dimension" else ""))
        if self.per_dimension and DIMENSIONS_FILTER not in self.filters:
            raise ValueError("a per_dimension card says in `filters:` which mart its "
                             "dimensions are columns of (dimensions: marts.<table>)")
        used = set(_TAG.findall(self.sql))
        missing = sorted(used - set(self.filters))
        if missing:
            raise ValueError(f"sql uses {{{{{missing[0]}}}}} but `filters:` does not say "
                             "which column it filters")
        unused = sorted(set(self.filters) - used)
        if unused:
            raise ValueError(f"filters.{unused[0]} is not used in sql: add {{{{{unused[0]}}}}} "
                             "where its condition goes, or remove it")
        for clause in _OPTIONAL.findall(self.sql):
            if not _TAG.search(clause):
                raise ValueError(f"sql: optional clause [[{clause.strip()}]] has no {{{{tag}}}}")
        return self

    @field_validator("requires")
    @classmethod
    def _entities(cls, value: list[str]) -> list[str]:
        return _known_entities(value)

    def column(self, filter_key: str) -> ColumnRef:
        layer, table, column = _COLUMN_REF.match(self.filters[filter_key]).groups()  # type: ignore[union-attr]
        return ColumnRef(layer=layer, table=table, column=column)

    def dimensions_table(self) -> str | None:
        """The mart whose columns the client's dimensions are, for `{{dimensions}}`."""
        ref = self.filters.get(DIMENSIONS_FILTER)
        return _TABLE_REF.match(ref).group(2) if ref else None  # type: ignore[union-attr]


class DashboardTemplate(_Strict):
    """A dashboard: its filters and its cards, the same for every client."""

    key: Key
    name: str = Field(min_length=1)
    description: str | None = None
    requires: list[str] = Field(default_factory=list, description="canonical entities a "
                                "client's sources must feed for it to get this dashboard")
    filters: list[FilterSpec] = Field(default_factory=list)
    cards: list[CardSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> DashboardTemplate:
        for what, keys in (("filters", [f.key for f in self.filters]),
                           ("cards", [c.key for c in self.cards])):
            dupes = sorted({k for k in keys if keys.count(k) > 1})
            if dupes:
                raise ValueError(f"{what}: key {dupes[0]} is used twice; keys must be unique")
        known = {f.key for f in self.filters}
        for index, card in enumerate(self.cards):
            unknown = sorted(set(card.filters) - known)
            if unknown:
                raise ValueError(f"cards[{index}] ({card.key}): filter {unknown[0]} is not one "
                                 f"of the dashboard's filters ({', '.join(sorted(known))})")
        return self

    @field_validator("requires")
    @classmethod
    def _entities(cls, value: list[str]) -> list[str]:
        return _known_entities(value)

    def filter(self, key: str) -> FilterSpec:
        return next(f for f in self.filters if f.key == key)

    def card(self, key: str) -> CardSpec:
        for card in self.cards:
            if card.key == key:
                return card
        raise NotFoundError(f"dashboard {self.key} has no card {key!r}")


@dataclass(frozen=True)
class Placement:
    """Where a card sits on the dashboard grid (Metabase's dashcard row, col, size)."""

    card: CardSpec
    row: int
    col: int
    size_x: int
    size_y: int


def layout(dashboard: DashboardTemplate) -> list[Placement]:
    """Cards in order, left to right, a new row when the next one does not fit in 24 columns."""
    placed, row, col, row_height = [], 0, 0, 0
    for card in dashboard.cards:
        width, height = card.size
        if col + width > GRID_WIDTH:
            row, col, row_height = row + row_height, 0, 0
        placed.append(Placement(card, row, col, width, height))
        col += width
        row_height = max(row_height, height)
    return placed


# -- loading -------------------------------------------------------------------------------

def parse_template(text: str, path: Path) -> DashboardTemplate:
    """Validate one template; ConfigError lists every problem as file:line: field: what."""
    shown = display_path(path)
    template, _ = parse_yaml_model(text, path, DashboardTemplate, what="dashboard template",
                                   keys="key:, name:, filters:, cards:",
                                   hint="see metabase/templates/README.md for the format")
    if template.key != path.stem:
        raise ConfigError(f"{shown}: key {template.key!r} differs from the file name",
                          hint=f"name the file {template.key}.yaml or set key: {path.stem}")
    return template


def load_template(path: Path) -> DashboardTemplate:
    return parse_template(path.read_text(encoding="utf-8"), path)


_loaded: dict[tuple[Path, int, int], DashboardTemplate] = {}


def templates(folder: Path | None = None) -> dict[str, DashboardTemplate]:
    """Every template in the folder (default metabase/templates), by key (the file name).

    Parsed files are kept while unchanged (same modification time and size): parsing YAML
    with line numbers is slow, and plan and apply ask more than once.
    """
    found = {}
    for path in sorted((folder or TEMPLATES_DIR).glob("*.yaml")):
        stat = path.stat()
        key = (path.resolve(), stat.st_mtime_ns, stat.st_size)
        if key not in _loaded:
            _loaded[key] = load_template(path)
        found[_loaded[key].key] = _loaded[key]
    return found


def template_keys() -> list[str]:
    return list(templates())


# -- SQL -----------------------------------------------------------------------------------

def native_sql(card: CardSpec, slug: str) -> str:
    """The card's SQL for Metabase: the client's schemas filled in, tags left for Metabase."""
    check_slug(slug)
    return _PLACEHOLDER.sub(lambda m: f'"{schema_name(slug, m.group(1))}"', card.sql)


def render_sql(card: CardSpec, slug: str, values: Mapping[str, Any] | None = None, *,
               filters: Iterable[FilterSpec] = (), today: date | None = None) -> str:
    """The card as plain Postgres SQL, with each filter's condition in place of its tag.

    `values` maps dashboard filter keys to values (see the module docstring); a filter with
    no value (absent, None, empty) makes its condition TRUE, and an optional clause holding
    it is dropped. `filters` gives the filters' types (a dashboard's `filters`); a value for
    a filter not listed is read as text. `today` anchors relative dates (past90days), in the
    client's time zone; default: the machine's date.
    """
    values = dict(values or {})
    types = {f.key: f.type for f in filters}
    today = today or date.today()

    def condition(key: str) -> str | None:
        value = values.get(key)
        if value in (None, "", [], ()) or key == DIMENSIONS_FILTER:
            return None  # (`{{dimensions}}` of a template not fitted to a client: none)
        column = card.column(key).qualified(slug)
        if types.get(key, "text") == "date":
            if not isinstance(value, str):
                raise ConfigError(f"filter {key}: a date filter takes one value such as "
                                  f"past90days, got {value!r}")
            try:
                start, end = date_bounds(value, today)
            except ValueError as exc:
                raise ConfigError(f"filter {key}: {exc}") from None
            if start and end:
                return f"{column} BETWEEN DATE '{start}' AND DATE '{end}'"
            return f"{column} >= DATE '{start}'" if start else f"{column} <= DATE '{end}'"
        items = [value] if isinstance(value, str | int | float) else list(value)
        return f"{column} IN ({', '.join(_literal(str(item)) for item in items)})"

    def optional(match: re.Match[str]) -> str:
        clause = match.group(1)
        if any(condition(tag) is None for tag in _TAG.findall(clause)):
            return ""
        return clause

    text = _OPTIONAL.sub(optional, native_sql(card, slug))
    return _TAG.sub(lambda m: condition(m.group(1)) or "TRUE", text)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_RELATIVE = re.compile(r"^(past|next)(\d+)(day|week|month|quarter|year)s(~)?$")
_THIS = re.compile(r"^this(day|week|month|quarter|year)$")
_DAY = r"\d{4}-\d{2}-\d{2}"


def _unit_start(day: date, unit: str) -> date:
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def _shift(start: date, unit: str, count: int) -> date:
    """The start of the unit `count` units after the unit starting at `start`."""
    if unit == "day":
        return start + timedelta(days=count)
    if unit == "week":
        return start + timedelta(weeks=count)
    months = {"month": 1, "quarter": 3, "year": 12}[unit] * count
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def date_bounds(value: str, today: date) -> tuple[date | None, date | None]:
    """First and last day (inclusive; None when open) of a Metabase date filter value.

    `pastNunits` is the N whole units before the current one (`~` adds the current one),
    `nextNunits` the N after it; `thisunit` the current one; `A~B`, `A~`, `~B` a range;
    `YYYY-MM-DD` one day; `YYYY-MM` one month.
    """
    text = value.strip()
    if match := _RELATIVE.match(text):
        direction, count, unit, include = match.groups()
        current = _unit_start(today, unit)
        if direction == "past":
            end = _shift(current, unit, 1) - timedelta(days=1) if include else \
                current - timedelta(days=1)
            return _shift(current, unit, -int(count)), end
        start = current if include else _shift(current, unit, 1)
        return start, _shift(current, unit, int(count) + 1) - timedelta(days=1)
    if match := _THIS.match(text):
        start = _unit_start(today, match.group(1))
        return start, _shift(start, match.group(1), 1) - timedelta(days=1)
    try:
        if re.fullmatch(rf"({_DAY})?~({_DAY})?", text) and text != "~":
            first, last = text.split("~")
            start = date.fromisoformat(first) if first else None
            end = date.fromisoformat(last) if last else None
            if start and end and end < start:
                raise ValueError(f"date range {value!r} ends before it starts")
            return start, end
        if re.fullmatch(_DAY, text):
            day = date.fromisoformat(text)
            return day, day
        if re.fullmatch(r"\d{4}-\d{2}", text):
            year, month = map(int, text.split("-"))
            return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
    except ValueError as exc:
        if "ends before" in str(exc):
            raise
        raise ValueError(f"{value!r} is not a valid date") from None
    raise ValueError(f"{value!r} is not a date filter value (e.g. past90days, thismonth, "
                     "2026-01-01~2026-03-31)")


# -- visualisation -------------------------------------------------------------------------

def visualization_settings(card: CardSpec, targets: Mapping[str, float | None]) -> dict[str, Any]:
    """Metabase visualization_settings for the card; `targets` are the client's metric targets
    (Client.metric_registry()[name].target), which become the goal line."""
    viz = card.visualization
    settings: dict[str, Any] = {}
    if viz.dimensions:
        settings["graph.dimensions"] = list(viz.dimensions)
    if viz.metrics:
        settings["graph.metrics"] = list(viz.metrics)
    if viz.goal is not None and targets.get(viz.goal) is not None:
        settings.update({"graph.show_goal": True, "graph.goal_value": targets[viz.goal],
                         "graph.goal_label": "Target"})
    if viz.band is not None:
        band_style = {"display": "line", "line.style": "dashed", "line.size": "S",
                      "color": "#A7B4C2"}
        settings["series_settings"] = {
            viz.band.lower: dict(band_style, title="Lower bound"),
            viz.band.upper: dict(band_style, title="Upper bound"),
        }
    settings.update(viz.settings)
    return settings
