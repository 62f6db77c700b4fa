"""Macros that turn the client registry (passed in config variables) into per-client SQL.

Config variables, set by goalpost.transform.sqlmesh_config, each keyed by client slug:
- `goalpost_clients`: {slug: {"connectors": [...]}}: who gets a blueprint.
- `goalpost_staging`: {slug: {entity: [connector, ...]}}: whose `stg_<connector>__<entity>`
  models a canonical entity unions.
- `goalpost_files`: {slug: {"currency", "streams": [{"source", "stream", "entity", "columns",
  "attributes"}]}}: the file streams, with the registry's column mapping {field: file column}
  and the file columns the client's dimensions read that no field holds (into `attributes`).
- `goalpost_api`: {slug: {connector: {stream: {"read": [source, ...], "fed": [source, ...]}}}}:
  the API sources selecting each stream, and those among them whose records feed the stream's
  canonical entity (a source may be the truth for some entities only).
- `goalpost_timezones`: {slug: IANA timezone}: vendor timestamps are UTC, staging shows local
  wall time.
- `goalpost_countries`: {slug: the client's country}: phone numbers written the national way
  are read in it (models/staging/phone_numbers.py).
- `goalpost_currencies`: {digits: [ISO 4217 codes]}: the currencies whose minor unit is not
  the hundredth (goalpost.core.money), for vendor amounts in minor units.
- `goalpost_metrics`: {slug: [{"name", "value", "dimensions": [[name, "order" or "line",
  column of staging.sales_receipts or dated_order_lines], ...]}]}: what kpi_daily computes.
- `goalpost_dimensions`: {slug: [{"name", "entity", "field", "column", "order_level"}]} and
  `goalpost_mart_columns`: {slug: {mart: [dimension names it adds a column for]}}: the
  client's own dimensions (goalpost.core.dimensions).
and `goalpost_entities`: {entity: [[field, type, derived SQL or ""], ...]}, goalpost.canonical
as data.

Each model's fingerprint covers the variables its macros read, so the variables are split by
use: a change to one client's file streams must not look like a direct change of the canonical
views (SQLMesh would then categorise the views as non-breaking and skip rebuilding `orders`).
The macros never import goalpost: SQLMesh serialises macro code into each model, and an import
would hide contract changes from the fingerprints.
"""

from __future__ import annotations

import typing as t

from sqlglot import exp
from sqlmesh.core.macros import MacroEvaluator, macro

SQL_TYPES = {
    "text": "TEXT",
    "integer": "BIGINT",
    "number": "NUMERIC",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
# Entities that carry money: their rows get the client's currency next to the amounts.
MONEY_ENTITIES = ("products", "order_lines")
LINEAGE = (("source", "TEXT"), ("_key", "TEXT"), ("_loaded_at", "TIMESTAMPTZ"))
# Every staging entity ends with `attributes`: the row's file columns that the client's
# dimensions read and no canonical field holds ({header: value}; NULL from API sources).
ATTRIBUTES = ("attributes", "JSONB")


def _name(value: t.Any) -> str:
    """A macro argument (literal, identifier or Python value) as a plain string."""
    return value.name if isinstance(value, exp.Expr) else str(value)


def _lit(value: str) -> str:
    return exp.Literal.string(value).sql(dialect="postgres")


def _ident(value: str) -> str:
    return exp.to_identifier(value, quoted=True).sql(dialect="postgres")


def _fields(evaluator: MacroEvaluator, entity: str) -> list[tuple[str, str]]:
    entities = evaluator.var("goalpost_entities") or {}
    if entity not in entities:
        raise ValueError(f"unknown canonical entity {entity!r}")
    return [(spec[0], spec[1]) for spec in entities[entity]]


def _derived(evaluator: MacroEvaluator, entity: str) -> dict[str, str]:
    """{field: SQL over the entity's other fields} for fields a source may not hold."""
    entities = evaluator.var("goalpost_entities") or {}
    return {spec[0]: spec[2] for spec in entities.get(entity, []) if len(spec) > 2 and spec[2]}


def _columns(evaluator: MacroEvaluator, entity: str) -> list[tuple[str, str]]:
    """The output columns of an entity at the staging layer, with their SQL types."""
    columns = list(LINEAGE)
    columns += [(name, SQL_TYPES[kind]) for name, kind in _fields(evaluator, entity)]
    if entity in MONEY_ENTITIES:
        columns.append(("currency", "TEXT"))
    columns.append(ATTRIBUTES)
    return columns


@macro()
def goalpost_blueprints(evaluator: MacroEvaluator, connector: t.Any = None) -> list[exp.Expr]:
    """One blueprint `(client := '<slug>')` per client of this context, so model files are
    written once and built per client. With `connector`, only the clients having a source of
    that connector: for `models/staging/<connector>/`, which goalpost.transform ignores in
    contexts where no client uses the connector (SQLMesh refuses an empty blueprint list)."""
    wanted = _name(connector) if connector is not None else None
    blueprints: list[exp.Expr] = []
    for slug, spec in sorted((evaluator.var("goalpost_clients") or {}).items()):
        if wanted and wanted not in spec.get("connectors", []):
            continue
        blueprints.append(
            exp.Tuple(
                expressions=[
                    exp.PropertyEQ(
                        this=exp.to_identifier("client"), expression=exp.Literal.string(slug)
                    )
                ]
            )
        )
    return blueprints


# An ISO 8601 cell whose time of day carries an offset (Z, +02, +0200, +02:00).
_OFFSET_PATTERN = "[0-9]:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"


def _parsed_stream(
    slug: str, stream: dict[str, t.Any], fields: list[tuple[str, str]], since: str | None = None,
    zone: str = "UTC",
) -> str:
    """One file stream's raw rows with every canonical field cast from the file's dialect.

    The dialect of each row comes from goalpost.source_files (the file it was read from): the
    positions of its columns, the decimal and thousands separators, the date formats and the
    file column of each field. A field is read from the column the registry maps it to when
    the row has that column (so a fixed mapping replays over files already loaded), else from
    the column recorded in the dialect, else from a column named like the field. Empty cells
    are NULL. With `since` (SQL giving a timestamp or NULL), only rows loaded after it are read.
    An ISO timestamp with an offset is an instant: it is shown as wall time in `zone`, the
    client's; one without is the wall time written.
    """
    source, name = stream["source"], stream["stream"]
    mapping: dict[str, str] = stream.get("columns") or {}
    inner = [
        "raw._key",
        "raw._loaded_at",
        "raw._file",
        "raw._file_id",
        "raw._row",
        "COALESCE(JSONB_EXTRACT_PATH_TEXT(f.dialect, 'thousands'), '') AS _thousands",
        "COALESCE(NULLIF(JSONB_EXTRACT_PATH_TEXT(f.dialect, 'decimal'), ''), '.') AS _decimal",
    ]
    outer = [f"{_lit(source)} AS source", "r._key", "r._loaded_at", "r._file", "r._file_id",
             "r._row"]
    def cell(column: str) -> str:
        # Raw file rows are arrays of cells; the file's header gives each column's position.
        return (f"JSONB_EXTRACT_PATH_TEXT(raw.data, "
                f"JSONB_EXTRACT_PATH_TEXT(f.dialect, 'positions', {column}))")

    extra = stream.get("attributes") or []
    pairs = ", ".join(f"{_lit(column)}, NULLIF(BTRIM({cell(_lit(column))}), '')"
                      for column in extra)
    inner.append(f"JSONB_STRIP_NULLS(JSONB_BUILD_OBJECT({pairs})) AS attributes" if extra
                 else "CAST(NULL AS JSONB) AS attributes")
    outer.append("r.attributes")
    for field, kind in fields:
        if mapping.get(field, "").startswith("="):
            # A constant the registry gives for a field the files do not hold.
            inner.append(f"{_lit(mapping[field][1:])} AS {_ident('v_' + field)}")
            outer.append(f"CAST(r.{_ident('v_' + field)} AS {SQL_TYPES[kind]}) AS "
                         f"{_ident(field)}")
            continue
        candidates = [
            cell(f"JSONB_EXTRACT_PATH_TEXT(f.dialect, 'columns', {_lit(field)})"),
            cell(_lit(field)),
        ]
        if field in mapping:
            candidates.insert(0, cell(_lit(mapping[field])))
        value = _ident("v_" + field)
        inner.append(f"NULLIF(BTRIM(COALESCE({', '.join(candidates)})), '') AS {value}")
        value = f"r.{value}"
        if kind in ("date", "timestamp"):
            inner.append(
                f"JSONB_EXTRACT_PATH_TEXT(f.dialect, 'date_formats', {_lit(field)}, 'postgres') "
                f"AS {_ident('f_' + field)}"
            )
            fmt = f"r.{_ident('f_' + field)}"
            # Parsed as UTC and read back in UTC: the wall time written in the file, whatever
            # the session's TimeZone (no DST gaps or shifts).
            parsed = f"TO_TIMESTAMP({value} || ' +00:00', {fmt} || ' TZH:TZM') AT TIME ZONE 'UTC'"
            typ = SQL_TYPES[kind]
            instant = (f"CAST(CAST({value} AS TIMESTAMPTZ) AT TIME ZONE {_lit(zone)} AS {typ})")
            typed = (
                f"CASE WHEN {fmt} IS NULL AND {value} ~ {_lit(_OFFSET_PATTERN)} THEN {instant} "
                f"WHEN {fmt} IS NULL THEN CAST({value} AS {typ}) "
                f"ELSE CAST({parsed} AS {typ}) END"
            )
        elif kind in ("number", "integer"):
            typed = f"CAST(REPLACE(REPLACE({value}, r._thousands, ''), r._decimal, '.') AS NUMERIC)"
            if kind == "integer":
                typed = f"CAST({typed} AS BIGINT)"
        else:
            typed = f"CAST({value} AS TEXT)"
        outer.append(f"{typed} AS {_ident(field)}")
    return (
        f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} "
        f"FROM {_ident(slug + '_raw')}.{_ident(source + '__' + name)} AS raw "
        "LEFT JOIN goalpost.source_files AS f "
        f"ON f.client = {_lit(slug)} AND f.source = {_lit(source)} "
        f"AND f.stream = {_lit(name)} AND f.id = raw._file_id"
        + (f" WHERE raw._loaded_at > COALESCE({since}, CAST('-infinity' AS TIMESTAMPTZ))"
           if since else "")
        + ") AS r"
    )


@macro()
def files_staging(evaluator: MacroEvaluator, client: t.Any, entity: t.Any,
                  since: exp.Expr | None = None) -> exp.Query:
    """The query of `stg_files__<entity>`: the client's file streams of that entity, typed,
    unioned and deduplicated by (source, _key) keeping the row of the file loaded last (the
    file's id in goalpost.source_files is the load order, which a full refresh keeps; within a
    file, the later row); an empty, typed result when the client has no such stream.
    `since` (a scalar subquery: an incremental model's latest _loaded_at) reads only the rows
    loaded after it."""
    slug, entity_name = _name(client), _name(entity)
    spec = (evaluator.var("goalpost_files") or {}).get(slug)
    if spec is None:
        raise ValueError(f"client {slug!r} is not in the goalpost_files variable")
    fields = _fields(evaluator, entity_name)
    columns = _columns(evaluator, entity_name)
    streams = [s for s in spec.get("streams", []) if s["entity"] == entity_name]
    currency = _lit(spec.get("currency", ""))

    derived = _derived(evaluator, entity_name)

    def output(column: str, typ: str, value: str) -> str:
        # Explicit casts give SQLMesh the column types it cannot infer from the raw tables.
        if column == "currency":
            value = currency
        elif column in derived and value != "NULL":
            value = f"COALESCE({value}, {derived[column]})"
        return f"CAST({value} AS {typ}) AS {_ident(column)}"

    if not streams:
        nulls = ", ".join(output(column, typ, "NULL") for column, typ in columns)
        return t.cast(exp.Query, evaluator.parse_one(f"SELECT {nulls} WHERE FALSE"))

    after = since.sql(dialect="postgres") if since is not None else None
    zone = (evaluator.var("goalpost_timezones") or {}).get(slug, "UTC")
    union = " UNION ALL ".join(_parsed_stream(slug, stream, fields, after, zone)
                               for stream in streams)
    parsed_columns = ", ".join(_ident(c) for c, _ in columns if c != "currency")
    sql = (
        f"SELECT {', '.join(output(c, typ, _ident(c)) for c, typ in columns)} FROM ("
        f"SELECT {parsed_columns}, ROW_NUMBER() OVER (PARTITION BY source, _key "
        "ORDER BY _file_id DESC NULLS LAST, _row DESC) AS _rank "
        f"FROM ({union}) AS parsed) AS ranked WHERE _rank = 1"
    )
    return t.cast(exp.Query, evaluator.parse_one(sql))


RAW_COLUMNS = (("source", "TEXT"), ("_key", "TEXT"), ("_loaded_at", "TIMESTAMPTZ"),
               ("_deleted", "BOOLEAN"), ("data", "JSONB"))
def _raw_union(evaluator: MacroEvaluator, client: t.Any, connector: t.Any, stream: t.Any,
               which: str) -> exp.Expr:
    slug, connector_name, stream_name = _name(client), _name(connector), _name(stream)
    api = (evaluator.var("goalpost_api") or {}).get(slug, {})
    sources = api.get(connector_name, {}).get(stream_name, {}).get(which, [])
    columns = ", ".join(name for name, _ in RAW_COLUMNS[1:])
    parts = [
        f"SELECT {_lit(source)} AS source, {columns} FROM {_ident(slug + '_raw')}."
        f"{_ident(source + '__' + stream_name)}"
        for source in sources
    ]
    if not parts:
        nulls = ", ".join(f"CAST(NULL AS {typ}) AS {name}" for name, typ in RAW_COLUMNS)
        parts = [f"SELECT {nulls} WHERE FALSE"]
    return exp.paren(evaluator.parse_one(" UNION ALL ".join(parts)), copy=False)


@macro()
def raw_stream(evaluator: MacroEvaluator, client: t.Any, connector: t.Any,
               stream: t.Any) -> exp.Expr:
    """The raw records of one API stream, as a subquery (source, _key, _loaded_at, _deleted,
    data), from the client's sources of `connector` that feed the stream's entity: empty when
    none does, so a staging model always builds."""
    return _raw_union(evaluator, client, connector, stream, "fed")


@macro()
def raw_lookup(evaluator: MacroEvaluator, client: t.Any, connector: t.Any,
               stream: t.Any) -> exp.Expr:
    """Like raw_stream, from every source reading the stream, fed or not: for records that
    other records refer to (the catalog that maps an order line's variation to its SKU)."""
    return _raw_union(evaluator, client, connector, stream, "read")


@macro()
def local_time(evaluator: MacroEvaluator, client: t.Any, value: exp.Expr) -> exp.Expr:
    """An RFC 3339 timestamp (text or timestamptz) as the client's local wall time."""
    zone = (evaluator.var("goalpost_timezones") or {}).get(_name(client))
    if not zone:
        raise ValueError(f"client {_name(client)!r} is not in the goalpost_timezones variable")
    return evaluator.parse_one(
        f"CAST(CAST({value.sql(dialect='postgres')} AS TIMESTAMPTZ) AT TIME ZONE {_lit(zone)} "
        "AS TIMESTAMP)")


@macro()
def minor_units(evaluator: MacroEvaluator, money: exp.Expr) -> exp.Expr:
    """A vendor money object {amount: integer minor units, currency} as a decimal amount."""
    value = money.sql(dialect="postgres")
    cases = " ".join(
        f"WHEN {value} ->> 'currency' IN ({', '.join(_lit(c) for c in codes)}) THEN {digits}"
        for digits, codes in sorted((evaluator.var("goalpost_currencies") or {}).items()))
    return evaluator.parse_one(
        f"CAST({value} ->> 'amount' AS NUMERIC) / POWER(10, CASE {cases} ELSE 2 END)")


@macro()
def canonical_select(evaluator: MacroEvaluator, entity: t.Any, query: exp.Expr) -> exp.Query:
    """The query of a connector's staging model: `query` (in parentheses) with its columns
    named like the entity's fields, put in contract order and type; fields it does not give
    are NULL. Lineage (source, _key, _loaded_at) is required, and so is currency on entities
    with money, so every staging model unions with the others."""
    entity_name = _name(entity)
    inner = query.unnest() if isinstance(query, exp.Paren | exp.Subquery) else query
    if not isinstance(inner, exp.Query):
        raise ValueError(f"canonical_select of {entity_name} needs a query in parentheses")
    given = set(inner.named_selects)
    columns = _columns(evaluator, entity_name)
    unknown = sorted(given - {name for name, _ in columns})
    if unknown:
        raise ValueError(f"{entity_name} has no field {', '.join(unknown)}")
    required = [name for name, _ in LINEAGE] + (
        ["currency"] if entity_name in MONEY_ENTITIES else [])
    missing = [name for name in required if name not in given]
    if missing:
        raise ValueError(f"staging of {entity_name} must give {', '.join(missing)}")
    projection = ", ".join(
        f"CAST({'q.' + _ident(name) if name in given else 'NULL'} AS {typ}) AS {_ident(name)}"
        for name, typ in columns)
    return t.cast(exp.Query, evaluator.parse_one(
        f"SELECT {projection} FROM ({inner.sql(dialect='postgres')}) AS q"))


@macro()
def canonical_union(evaluator: MacroEvaluator, client: t.Any, entity: t.Any) -> exp.Query:
    """The query of a canonical entity: UNION ALL of `stg_<connector>__<entity>` over the
    connectors of the client that stage it (a new connector adds its staging model files,
    nothing here: goalpost.transform.staged_entities finds them)."""
    return t.cast(exp.Query, evaluator.parse_one(
        _union_sql(evaluator, _name(client), _name(entity))))


def _union_sql(evaluator: MacroEvaluator, slug: str, entity_name: str) -> str:
    connectors = (evaluator.var("goalpost_staging") or {}).get(slug, {}).get(entity_name, [])
    columns = ", ".join(_ident(column) for column, _ in _columns(evaluator, entity_name))
    parts = [
        f"SELECT {columns} FROM {_ident(slug + '_staging')}."
        f"{_ident('stg_' + connector + '__' + entity_name)}"
        for connector in connectors
    ]
    if not parts:
        raise ValueError(f"client {slug!r} has no staging model for {entity_name!r}")
    return " UNION ALL ".join(parts)


# The columns of staging.orders (orders.sql) a metric may read besides items, lines and total.
ORDER_COLUMNS = ("source", "order_id", "ordered_at", "order_date", "location_id", "channel",
                 "customer_id", "customer_key", "kind", "is_return", "returned_order_id",
                 "currency")


@macro()
def kpi_daily(evaluator: MacroEvaluator, client: t.Any) -> exp.Query:
    """The query of `kpi_daily`: every metric of the client's registry per day, in total
    (dimension 'all') and per value of each of its dimensions, in long form, over the sales
    and return receipts (staging.sales_receipts).

    A metric is an aggregate over receipts. Per value of an order-level dimension (location,
    channel, the client's on orders, customers or locations) the receipts are grouped by
    their value. Per value of a line-level one (on order lines or products) each receipt
    counts with the part of it that has that value: its items, lines and total are those of
    its lines with the value, the rest (date, customer, kind) its own."""
    slug = _name(client)
    metrics = (evaluator.var("goalpost_metrics") or {}).get(slug, [])
    staging = _ident(slug + "_staging")
    orders = f"{staging}.{_ident('sales_receipts')}"
    line_level = sorted({column for metric in metrics
                         for _, level, column in metric["dimensions"] if level == "line"})
    ctes = []
    for column in line_level:
        dims = [f"o.{_ident('dim_' + d['name'])}"
                for d in _dimensions(evaluator, client, ORDER_LEVEL)]
        keys = ", ".join([*(f"o.{_ident(c)}" for c in ORDER_COLUMNS), *dims])
        ctes.append(
            f"{_ident('slices_' + column)} AS (SELECT {keys}, l.{_ident(column)} AS "
            "dimension_value, SUM(l.quantity) AS items, COUNT(*) AS lines, "
            f"SUM(l.line_total) AS total FROM {staging}.{_ident('dated_order_lines')} AS l "
            f"JOIN {orders} AS o ON o.source = l.source AND o.order_id = l.order_id "
            f"GROUP BY {keys}, l.{_ident(column)})")
    parts = []
    for metric in metrics:
        name, value = _lit(metric["name"]), metric["value"]
        parts.append(
            f"SELECT {name} AS metric, order_date AS date, 'all' AS dimension, 'all' AS "
            f"dimension_value, CAST({value} AS NUMERIC) AS value FROM {orders} GROUP BY "
            "order_date")
        for dimension, level, column in metric["dimensions"]:
            if level == "line":
                parts.append(
                    f"SELECT {name}, order_date, {_lit(dimension)}, COALESCE(dimension_value, "
                    f"'(none)'), CAST({value} AS NUMERIC) FROM {_ident('slices_' + column)} "
                    "GROUP BY order_date, dimension_value")
                continue
            col = _ident(column)
            parts.append(
                f"SELECT {name}, order_date, {_lit(dimension)}, COALESCE({col}, '(none)'), "
                f"CAST({value} AS NUMERIC) FROM {orders} GROUP BY order_date, {col}")
    if not parts:
        parts = ["SELECT CAST(NULL AS TEXT) AS metric, CAST(NULL AS DATE) AS date, "
                 "CAST(NULL AS TEXT) AS dimension, CAST(NULL AS TEXT) AS dimension_value, "
                 "CAST(NULL AS NUMERIC) AS value WHERE FALSE"]
    body = " UNION ALL ".join(parts)
    sql = (("WITH " + ", ".join(ctes) + " ") if ctes else "") + (
        "SELECT CAST(metric AS TEXT) AS metric, CAST(date AS DATE) AS date, "
        "CAST(dimension AS TEXT) AS dimension, CAST(dimension_value AS TEXT) AS "
        f"dimension_value, CAST(value AS NUMERIC) AS value FROM ({body}) AS kpis")
    return t.cast(exp.Query, evaluator.parse_one(sql))


# -- dimensions ----------------------------------------------------------------------------
# `goalpost_dimensions`: {slug: [{"name", "entity", "field", "column", "order_level"}]}, the
# client's own dimensions (goalpost.core.dimensions). Staging carries each as a text column
# `dim_<name>` (so no dimension name can clash with a staging column); the marts name it as
# the dimension, with '(none)' for no value.
ORDER_LEVEL = ("orders", "customers", "locations")


def _dimensions(evaluator: MacroEvaluator, client: t.Any,
                entities: t.Iterable[str] | None = None) -> list[dict[str, t.Any]]:
    slug = _name(client)
    found = (evaluator.var("goalpost_dimensions") or {}).get(slug, [])
    wanted = set(entities) if entities is not None else None
    return [d for d in found if wanted is None or d["entity"] in wanted]


def _entities(value: t.Any) -> list[str]:
    """A macro argument naming one entity or several ('orders', or ('orders', 'customers'))."""
    if isinstance(value, exp.Tuple | exp.Array):
        return [_name(v) for v in value.expressions]
    return [_name(value)]


def _dimension_expr(dimension: dict[str, t.Any], alias: str | None = None) -> str:
    """The dimension's value on a row of its entity's staging (text, NULL when empty)."""
    prefix = f"{_ident(alias)}." if alias else ""
    if dimension.get("column"):
        value = f"{prefix}attributes ->> {_lit(dimension['column'])}"
    else:
        value = f"CAST({prefix}{_ident(dimension['field'])} AS TEXT)"
    return f"NULLIF(BTRIM({value}), '')"


def _projections(evaluator: MacroEvaluator, items: list[str]) -> list[exp.Expr]:
    return [evaluator.parse_one(item) for item in items]


@macro()
def latest_dimensions(evaluator: MacroEvaluator, client: t.Any, entity: t.Any,
                      order_by: t.Any) -> list[exp.Expr]:
    """In a query grouping an entity's rows by their key: each of the client's dimensions on
    that entity as `dim_<name>`, the first non-empty value in `order_by` (a string of SQL:
    the latest load first for lists, the first line for an order)."""
    order = _name(order_by)
    return _projections(evaluator, [
        f"CAST((ARRAY_AGG({_dimension_expr(d)} ORDER BY {order}) FILTER (WHERE "
        f"{_dimension_expr(d)} IS NOT NULL))[1] AS TEXT) AS {_ident('dim_' + d['name'])}"
        for d in _dimensions(evaluator, client, [_name(entity)])])


@macro()
def line_dimensions(evaluator: MacroEvaluator, client: t.Any, alias: t.Any) -> list[exp.Expr]:
    """The client's dimensions on order lines, read from the line `alias`, as `dim_<name>`."""
    return _projections(evaluator, [
        f"CAST({_dimension_expr(d, _name(alias))} AS TEXT) AS {_ident('dim_' + d['name'])}"
        for d in _dimensions(evaluator, client, ["order_lines"])])


@macro()
def carried_dimensions(evaluator: MacroEvaluator, client: t.Any, entities: t.Any,
                       alias: t.Any) -> list[exp.Expr]:
    """The `dim_<name>` columns of the dimensions on `entities`, taken from `alias`."""
    return _projections(evaluator, [
        f"CAST({_ident(_name(alias))}.{_ident('dim_' + d['name'])} AS TEXT) AS "
        f"{_ident('dim_' + d['name'])}"
        for d in _dimensions(evaluator, client, _entities(entities))])


def _mart_dimensions(evaluator: MacroEvaluator, client: t.Any, mart: str
                     ) -> list[dict[str, t.Any]]:
    carried = {
        "daily_sales": ORDER_LEVEL, "monthly_sales": ORDER_LEVEL,
        "product_sales_daily": (*ORDER_LEVEL, "order_lines", "products"),
        "customers": ("customers",), "customers_monthly": ("customers",),
    }
    if mart not in carried:
        raise ValueError(f"mart {mart!r} carries no dimensions")
    new = (evaluator.var("goalpost_mart_columns") or {}).get(_name(client), {}).get(mart)
    return [d for d in _dimensions(evaluator, client, carried[mart])
            if new is None or d["name"] in new]


@macro()
def mart_dimensions(evaluator: MacroEvaluator, client: t.Any, mart: t.Any,
                    alias: t.Any) -> list[exp.Expr]:
    """The columns a mart adds for the client's dimensions: each named as the dimension,
    '(none)' for no value, from the `dim_<name>` columns of `alias`."""
    return _projections(evaluator, [
        f"CAST(COALESCE({_ident(_name(alias))}.{_ident('dim_' + d['name'])}, '(none)') AS TEXT)"
        f" AS {_ident(d['name'])}"
        for d in _mart_dimensions(evaluator, client, _name(mart))])


@macro()
def mart_dimension_keys(evaluator: MacroEvaluator, client: t.Any, mart: t.Any,
                        alias: t.Any) -> list[exp.Expr]:
    """What a mart's GROUP BY adds for the client's dimensions (see mart_dimensions)."""
    return _projections(evaluator, [
        f"COALESCE({_ident(_name(alias))}.{_ident('dim_' + d['name'])}, '(none)')"
        for d in _mart_dimensions(evaluator, client, _name(mart))])


@macro()
def mart_grain(evaluator: MacroEvaluator, client: t.Any, mart: t.Any,
               *columns: t.Any) -> exp.Tuple:
    """A mart's grain: its own key `columns` and the columns it adds for dimensions."""
    names = [_name(c) for c in columns] + [
        d["name"] for d in _mart_dimensions(evaluator, client, _name(mart))]
    return exp.Tuple(expressions=[exp.column(name) for name in names])


@macro()
def dimension_source(evaluator: MacroEvaluator, client: t.Any, entity: t.Any) -> exp.Expr:
    """What a query joins for the client's dimensions on `entity` (customers, locations or
    products): a subquery of the entity's key and its `dim_<name>` columns, one row per key;
    without such a dimension an empty one, so that the query does not read (and is not
    rebuilt for) an entity none of its columns comes from."""
    slug, name = _name(client), _name(entity)
    keys = {"customers": ("customer_key", "current_customers"),
            "locations": ("location_id", "current_locations"),
            "products": ("product_id", "current_products")}
    if name not in keys:
        raise ValueError(f"no dimension source for {name!r}")
    key, view = keys[name]
    found = _dimensions(evaluator, client, [name])
    if not found:
        return exp.paren(evaluator.parse_one(
            f"SELECT CAST(NULL AS TEXT) AS {_ident(key)} WHERE FALSE"), copy=False)
    columns = ", ".join(_ident("dim_" + d["name"]) for d in found)
    return exp.paren(evaluator.parse_one(
        f"SELECT {_ident(key)}, {columns} FROM {_ident(slug + '_staging')}.{_ident(view)}"),
        copy=False)


# -- metrics at their grain -----------------------------------------------------------------
# `goalpost_metrics`: {slug: [{"name", "kind" (orders, input, formula, sql), "rhythm", "grains"
# (its rhythm and the coarser grains it is known at), "aggregation", "dimensions": [[name,
# "order" or "line", column], ...]} with "value" (orders: an aggregate over sales_receipts),
# "parts" and "expression" (formula: SQL over p0.value, p1.value... of its parts, in that
# order) or "query" (sql: the consultant's query, its {marts} filled in)]}, formulas after
# the metrics they read. `goalpost_inputs`: {slug: [{"name", "rhythm", "dimensions"}]}, the
# input metrics metric values may name. `goalpost_rest`: {slug: [{"source", "stream",
# "fields": {field: dotted record path or "=constant"}}]}, the `connector: rest` streams of
# metric values. `goalpost_dictionary`: {slug: {"metrics": [dictionary rows], "edges":
# [{"source", "target", "kind", "direction", "lag", "confidence", "notes"}]}}.
BY_HAND = "goalpost metrics"  # the source of values entered with `goalpost metrics record|import`
GRAIN_ORDER = ("day", "week", "month")


def _metrics_of(evaluator: MacroEvaluator, client: t.Any) -> list[dict[str, t.Any]]:
    return (evaluator.var("goalpost_metrics") or {}).get(_name(client), [])


def _text_array(values: t.Iterable[str]) -> str:
    items = ", ".join(_lit(v) for v in values)
    return f"CAST(ARRAY[{items}] AS TEXT[])"


def _period_end(grain: str, start: str) -> str:
    """SQL for the last day of the period of `grain` (SQL giving the grain) from `start`."""
    return (f"CAST(CASE {grain} WHEN 'day' THEN {start} WHEN 'week' THEN {start} + 6 "
            f"ELSE CAST({start} + INTERVAL '1 month' - INTERVAL '1 day' AS DATE) END AS DATE)")


@macro()
def rest_staging(evaluator: MacroEvaluator, client: t.Any, entity: t.Any) -> exp.Query:
    """The query of `stg_rest__<entity>`: the records of the client's `connector: rest`
    streams of that entity, each field read at its record path (or a constant), typed; an
    empty, typed result when it has none."""
    slug, entity_name = _name(client), _name(entity)
    columns = _columns(evaluator, entity_name)
    kinds = dict(_fields(evaluator, entity_name))
    parts = []
    for stream in (evaluator.var("goalpost_rest") or {}).get(slug, []):
        selected = [f"{_lit(stream['source'])} AS source", "r._key", "r._loaded_at"]
        for field, kind in kinds.items():
            path = stream["fields"].get(field)
            if path is None:
                value = "NULL"
            elif path.startswith("="):
                value = _lit(path[1:])
            else:
                value = f"NULLIF(BTRIM(r.data #>> {_lit('{' + ','.join(path.split('.')) + '}')})," \
                        " '')"
            selected.append(f"CAST({value} AS {SQL_TYPES[kind]}) AS {_ident(field)}")
        selected.append("CAST(NULL AS JSONB) AS attributes")
        parts.append(f"SELECT {', '.join(selected)} FROM {_ident(slug + '_raw')}."
                     f"{_ident(stream['source'] + '__' + stream['stream'])} AS r "
                     "WHERE NOT r._deleted")
    if not parts:
        nulls = ", ".join(f"CAST(NULL AS {typ}) AS {_ident(c)}" for c, typ in columns)
        return t.cast(exp.Query, evaluator.parse_one(f"SELECT {nulls} WHERE FALSE"))
    return t.cast(exp.Query, evaluator.parse_one(" UNION ALL ".join(parts)))


@macro()
def checked_metric_values(evaluator: MacroEvaluator, client: t.Any) -> exp.Query:
    """The query of staging.metric_values: every source's metric values (files, APIs, by
    hand), names and dimensions trimmed, each with `problem`: NULL, or why the value cannot
    count (a metric that is not one of the client's input metrics, a date that does not start
    the metric's period, a dimension it is not computed per, a dimension without its value)."""
    slug = _name(client)
    union = _union_sql(evaluator, slug, "metric_values")
    inputs = (evaluator.var("goalpost_inputs") or {}).get(slug, [])
    spec = " UNION ALL ".join(
        f"SELECT {_lit(m['name'])} AS metric, {_lit(m['rhythm'])} AS rhythm, "
        f"{_text_array(m['dimensions'])} AS dimensions" for m in inputs) or (
        "SELECT CAST(NULL AS TEXT) AS metric, CAST(NULL AS TEXT) AS rhythm, "
        "CAST(NULL AS TEXT[]) AS dimensions WHERE FALSE")
    sql = (
        "SELECT v.source, v._key, v._loaded_at, v.metric, v.period_start, v.dimension, "
        "v.dimension_value, v.value, s.rhythm, CAST(CASE "
        "WHEN v.metric IS NULL THEN 'no metric' "
        "WHEN v.period_start IS NULL THEN 'no date' "
        "WHEN v.value IS NULL THEN 'no value' "
        "WHEN s.metric IS NULL THEN 'not an input metric of the client (goalpost metrics "
        "list)' "
        "WHEN v.period_start <> CAST(DATE_TRUNC(s.rhythm, v.period_start) AS DATE) THEN "
        "'not the first day of its ' || s.rhythm || ' (' || CAST(CAST(DATE_TRUNC(s.rhythm, "
        "v.period_start) AS DATE) AS TEXT) || ')' "
        "WHEN (v.dimension IS NULL) <> (v.dimension_value IS NULL) THEN 'a dimension without "
        "its value, or a value without its dimension' "
        "WHEN v.dimension IS NOT NULL AND NOT v.dimension = ANY(s.dimensions) THEN "
        "'the metric is not computed per ' || v.dimension END AS TEXT) AS problem "
        "FROM (SELECT u.source, u._key, u._loaded_at, NULLIF(BTRIM(u.metric), '') AS metric, "
        "u.period_start, NULLIF(BTRIM(u.dimension), '') AS dimension, "
        "NULLIF(BTRIM(u.dimension_value), '') AS dimension_value, u.value "
        f"FROM ({union}) AS u) AS v LEFT JOIN ({spec}) AS s ON s.metric = v.metric")
    return t.cast(exp.Query, evaluator.parse_one(sql))


def _receipt_values(evaluator: MacroEvaluator, client: t.Any,
                    metrics: list[dict[str, t.Any]]) -> tuple[list[str], list[str]]:
    """(CTEs, SELECTs) of the metrics over receipts: per dimension (the total first), one
    pass over the receipts (or a line-level dimension's slices) at every grain they need,
    then one row per metric."""
    slug = _name(client)
    staging = _ident(slug + "_staging")
    receipts = f"{staging}.{_ident('sales_receipts')}"
    groups: dict[tuple[str, str, str], list[dict[str, t.Any]]] = {("all", "total", ""): metrics}
    for metric in metrics:
        for dimension, level, column in metric["dimensions"]:
            groups.setdefault((dimension, level, column), []).append(metric)
    ctes, selects = [], []
    for column in sorted({c for d, level, c in groups if level == "line"}):
        dims = [f"o.{_ident('dim_' + d['name'])}"
                for d in _dimensions(evaluator, client, ORDER_LEVEL)]
        keys = ", ".join([*(f"o.{_ident(c)}" for c in ORDER_COLUMNS), "o.first_sale", *dims])
        ctes.append(
            f"{_ident('slices_' + column)} AS (SELECT {keys}, l.{_ident(column)} AS "
            "dimension_value, SUM(l.quantity) AS items, COUNT(*) AS lines, "
            f"SUM(l.line_total) AS total FROM {staging}.{_ident('dated_order_lines')} AS l "
            f"JOIN {receipts} AS o ON o.source = l.source AND o.order_id = l.order_id "
            f"GROUP BY {keys}, l.{_ident(column)})")
    for (dimension, level, column), members in groups.items():
        grains = [g for g in GRAIN_ORDER if any(g in m["grains"] for m in members)]
        source = (receipts if level == "total" else
                  _ident("slices_" + column) if level == "line" else receipts)
        value_of = ("'all'" if level == "total" else "COALESCE(dimension_value, '(none)')"
                    if level == "line" else f"COALESCE({_ident(column)}, '(none)')")
        values = ", ".join(f"CAST({m['value']} AS NUMERIC) AS {_ident('v' + str(i))}"
                           for i, m in enumerate(members))
        grain_list = ", ".join(f"({_lit(g)})" for g in grains)
        unpivot = ", ".join(
            f"({_lit(m['name'])}, a.{_ident('v' + str(i))}, a.grain IN "
            f"({', '.join(_lit(g) for g in m['grains'])}))" for i, m in enumerate(members))
        selects.append(
            f"SELECT m.metric, a.grain, a.period_start, {_lit(dimension)} AS dimension, "
            "a.dimension_value, m.value, "
            f"{_period_end('a.grain', 'a.period_start')} <= (SELECT last_complete_date FROM "
            f"{_ident(slug + '_marts')}.{_ident('data_as_of')}) AS complete "
            f"FROM (SELECT g.grain, CAST(DATE_TRUNC(g.grain, order_date) AS DATE) AS "
            f"period_start, {value_of} AS dimension_value, {values} FROM {source} "
            f"CROSS JOIN (VALUES {grain_list}) AS g(grain) GROUP BY 1, 2, 3) AS a "
            f"CROSS JOIN LATERAL (VALUES {unpivot}) AS m(metric, value, kept) WHERE m.kept")
    return ctes, selects


def _rolled_up(rows: str, grains: list[str]) -> list[str]:
    """SELECTs of `rows` (metric, rhythm, aggregation, period_start, dimension,
    dimension_value, value; a subquery) at each coarser grain their rhythm adds up to: by
    each metric's aggregation, complete when every period of the rhythm in it has a value
    (a month of days, a week of days)."""
    found = []
    for grain in grains:
        length = ("7" if grain == "week" else
                  "EXTRACT(DAY FROM DATE_TRUNC('month', r.period_start) + INTERVAL '1 month' "
                  "- INTERVAL '1 day')")
        found.append(
            f"SELECT r.metric, {_lit(grain)} AS grain, CAST(DATE_TRUNC({_lit(grain)}, "
            "r.period_start) AS DATE) AS period_start, r.dimension, r.dimension_value, "
            "CAST(CASE MIN(r.aggregation) WHEN 'sum' THEN SUM(r.value) WHEN 'avg' THEN "
            "AVG(r.value) WHEN 'min' THEN MIN(r.value) WHEN 'max' THEN MAX(r.value) WHEN "
            "'last' THEN (ARRAY_AGG(r.value ORDER BY r.period_start DESC))[1] END AS NUMERIC)"
            f", COUNT(*) = MIN({length}) AS complete FROM {rows} AS r "
            f"WHERE r.rhythm = 'day' AND r.aggregation IN ('sum', 'avg', 'min', 'max', 'last') "
            f"GROUP BY r.metric, 3, r.dimension, r.dimension_value")
    return found


def _given_values(evaluator: MacroEvaluator, client: t.Any,
                  metrics: list[dict[str, t.Any]]) -> tuple[list[str], list[str]]:
    """(CTEs, SELECTs) of input and SQL metrics: their values at their rhythm (an input
    metric's sum-total from the values of its one dimension when no total is given), then
    rolled up to coarser grains."""
    slug = _name(client)
    staging = _ident(slug + "_staging")
    given = [m for m in metrics if m["kind"] in ("input", "sql")]
    if not given:
        return [], []
    spec = " UNION ALL ".join(
        f"SELECT {_lit(m['name'])} AS metric, {_lit(m['rhythm'])} AS rhythm, "
        f"{_lit(m['aggregation'])} AS aggregation, "
        f"{_text_array(d for d, _, _ in m['dimensions'])} AS dimensions" for m in given)
    parts = [
        "SELECT p.metric, p.period_start, COALESCE(p.dimension, 'all') AS dimension, "
        "COALESCE(p.dimension_value, 'all') AS dimension_value, p.value "
        f"FROM {staging}.{_ident('current_metric_values')} AS p"]
    for m in given:
        if m["kind"] != "sql":
            continue
        rhythm = _lit(m["rhythm"])
        agg = {"sum": "SUM(q.value)", "avg": "AVG(q.value)", "min": "MIN(q.value)",
               "max": "MAX(q.value)",
               "last": "(ARRAY_AGG(q.value ORDER BY q.date DESC))[1]"}[m["aggregation"]]
        has_dimensions = bool(m.get("dimensioned"))
        dimension = ("COALESCE(CAST(q.dimension AS TEXT), 'all')" if has_dimensions
                     else "'all'")
        value_of = ("COALESCE(CAST(q.dimension_value AS TEXT), 'all')" if has_dimensions
                    else "'all'")
        parts.append(
            f"SELECT {_lit(m['name'])}, CAST(DATE_TRUNC({rhythm}, CAST(q.date AS DATE)) AS "
            f"DATE), {dimension}, {value_of}, CAST({agg} AS NUMERIC) FROM ({m['query']}) AS q "
            "WHERE q.date IS NOT NULL GROUP BY 2, 3, 4")
    ctes = [
        f"given_spec AS ({spec})",
        f"given_points AS ({' UNION ALL '.join(parts)})",
        # At the rhythm: the values, and for a sum metric the total of a period that has
        # values of one dimension only, when no total is given.
        "given AS (SELECT g.metric, s.rhythm, s.aggregation, g.period_start, g.dimension, "
        "g.dimension_value, g.value FROM given_points AS g JOIN given_spec AS s ON "
        "s.metric = g.metric WHERE g.dimension = 'all' OR g.dimension = ANY(s.dimensions) "
        "UNION ALL SELECT g.metric, MIN(s.rhythm), MIN(s.aggregation), g.period_start, 'all', "
        "'all', SUM(g.value) FROM given_points AS g JOIN given_spec AS s ON s.metric = "
        "g.metric WHERE s.aggregation = 'sum' AND g.dimension = ANY(s.dimensions) AND NOT "
        "EXISTS (SELECT 1 FROM given_points AS t WHERE t.metric = g.metric AND "
        "t.period_start = g.period_start AND t.dimension = 'all') GROUP BY g.metric, "
        "g.period_start HAVING COUNT(DISTINCT g.dimension) = 1)",
    ]
    selects = ["SELECT metric, rhythm AS grain, period_start, dimension, dimension_value, "
               "value, TRUE AS complete FROM given",
               *_rolled_up("given", ["week", "month"])]
    return ctes, selects


@macro()
def kpi_values(evaluator: MacroEvaluator, client: t.Any) -> exp.Query:
    """The query of `kpi_values`: every metric of the client at each grain it is known at
    (its rhythm, and the coarser ones its periods add up to), in total (dimension 'all') and
    per value of its dimensions, with `complete` (a period all in: sales up to the marts'
    last complete day, every day of a month of values) and the metric's rhythm.

    Metrics over receipts are computed from the receipts at each grain (a month's average
    ticket is its revenue over its orders); input and SQL metrics come at their rhythm and
    roll up by their aggregation; a formula is computed per period from its parts' values at
    that grain, per dimension value where all its parts have one."""
    metrics = _metrics_of(evaluator, client)
    receipts = [m for m in metrics if m["kind"] == "orders"]
    ctes, selects = _receipt_values(evaluator, client, receipts) if receipts else ([], [])
    given_ctes, given_selects = _given_values(evaluator, client, metrics)
    ctes += given_ctes
    selects += given_selects
    if not selects:
        selects = ["SELECT CAST(NULL AS TEXT) AS metric, CAST(NULL AS TEXT) AS grain, "
                   "CAST(NULL AS DATE) AS period_start, CAST(NULL AS TEXT) AS dimension, "
                   "CAST(NULL AS TEXT) AS dimension_value, CAST(NULL AS NUMERIC) AS value, "
                   "CAST(NULL AS BOOLEAN) AS complete WHERE FALSE"]
    ctes.append(f"base AS ({' UNION ALL '.join(selects)})")
    formula_names = set()
    for metric in metrics:
        if metric["kind"] != "formula":
            continue
        sources = []
        for i, part in enumerate(metric["parts"]):
            table = _ident("f_" + part) if part in formula_names else "base"
            sources.append(f"(SELECT * FROM {table} WHERE metric = {_lit(part)}) AS p{i}")
        joins = " ".join(
            f"JOIN {source} ON p{i}.grain = p0.grain AND p{i}.period_start = p0.period_start "
            f"AND p{i}.dimension = p0.dimension AND p{i}.dimension_value = p0.dimension_value"
            for i, source in enumerate(sources) if i)
        complete = " AND ".join(f"p{i}.complete" for i in range(len(sources)))
        dims = ", ".join(_lit(d) for d, _, _ in metric["dimensions"])
        keep_dims = f"p0.dimension = 'all' OR p0.dimension IN ({dims})" if dims else (
            "p0.dimension = 'all'")
        ctes.append(
            f"{_ident('f_' + metric['name'])} AS (SELECT {_lit(metric['name'])} AS metric, "
            "p0.grain, p0.period_start, p0.dimension, p0.dimension_value, "
            f"CAST({metric['expression']} AS NUMERIC) AS value, {complete} AS complete "
            f"FROM {sources[0]} {joins} WHERE p0.grain IN "
            f"({', '.join(_lit(g) for g in metric['grains'])}) AND ({keep_dims}))")
        formula_names.add(metric["name"])
    everything = " UNION ALL ".join(["SELECT * FROM base", *(
        f"SELECT * FROM {_ident('f_' + name)}" for name in sorted(formula_names))])
    rhythm = " ".join(f"WHEN {_lit(m['name'])} THEN {_lit(m['rhythm'])}" for m in metrics)
    rhythm_sql = f"CASE k.metric {rhythm} END" if rhythm else "CAST(NULL AS TEXT)"
    sql = (
        f"WITH {', '.join(ctes)} SELECT CAST(k.metric AS TEXT) AS metric, CAST(k.grain AS "
        "TEXT) AS grain, CAST(k.period_start AS DATE) AS period_start, "
        f"{_period_end('k.grain', 'k.period_start')} AS period_end, CAST(k.dimension AS TEXT) "
        "AS dimension, CAST(k.dimension_value AS TEXT) AS dimension_value, CAST(k.value AS "
        "NUMERIC) AS value, CAST(COALESCE(k.complete, FALSE) AS BOOLEAN) AS complete, "
        f"CAST({rhythm_sql} AS TEXT) AS rhythm FROM ({everything}) AS k")
    return t.cast(exp.Query, evaluator.parse_one(sql))


def _values_table(rows: list[dict[str, t.Any]], columns: list[tuple[str, str]]) -> str:
    """A VALUES list of `rows` as typed columns (an empty, typed result without rows)."""
    def literal(value: t.Any, typ: str) -> str:
        if value is None:
            return f"CAST(NULL AS {typ})"
        if typ == "NUMERIC":
            return f"CAST({float(value)!r} AS NUMERIC)"
        return f"CAST({_lit(str(value))} AS {typ})"

    names = ", ".join(_ident(name) for name, _ in columns)
    if not rows:
        nulls = ", ".join(f"CAST(NULL AS {typ}) AS {_ident(name)}" for name, typ in columns)
        return f"SELECT {nulls} WHERE FALSE"
    values = ", ".join("(" + ", ".join(literal(row.get(name), typ) for name, typ in columns)
                       + ")" for row in rows)
    return f"SELECT {names} FROM (VALUES {values}) AS v({names})"


DICTIONARY_COLUMNS = [
    ("name", "TEXT"), ("label", "TEXT"), ("description", "TEXT"), ("kind", "TEXT"),
    ("type", "TEXT"), ("category", "TEXT"), ("rhythm", "TEXT"), ("unit", "TEXT"),
    ("value_type", "TEXT"), ("aggregation", "TEXT"), ("direction", "TEXT"),
    ("confidence", "TEXT"), ("hypothesis", "TEXT"), ("technical", "TEXT"), ("tags", "TEXT"),
    ("owner", "TEXT"), ("owner_role", "TEXT"), ("target", "NUMERIC"),
    ("threshold_direction", "TEXT"), ("warning", "NUMERIC"), ("critical", "NUMERIC"),
    ("dimensions", "TEXT"), ("parts", "TEXT")]
EDGE_COLUMNS = [("source", "TEXT"), ("target", "TEXT"), ("kind", "TEXT"),
                ("direction", "TEXT"), ("lag", "TEXT"), ("confidence", "TEXT"),
                ("notes", "TEXT")]


@macro()
def metric_dictionary(evaluator: MacroEvaluator, client: t.Any) -> exp.Query:
    """The query of `metric_dictionary`: one row per metric of the client's registry."""
    found = (evaluator.var("goalpost_dictionary") or {}).get(_name(client), {})
    return t.cast(exp.Query, evaluator.parse_one(
        _values_table(found.get("metrics", []), DICTIONARY_COLUMNS)))


@macro()
def metric_edges(evaluator: MacroEvaluator, client: t.Any) -> exp.Query:
    """The query of `metric_relationships`: the metric map's edges."""
    found = (evaluator.var("goalpost_dictionary") or {}).get(_name(client), {})
    return t.cast(exp.Query, evaluator.parse_one(
        _values_table(found.get("edges", []), EDGE_COLUMNS)))
