"""SQL metrics: a metric computed by the consultant's own query over the client's marts, for
what neither an aggregate over receipts nor a formula can say.

The query is one SELECT over tables written `{marts}.<table>` (the client's marts schema),
giving a column `date` (the day, or any day of the period: it is read at the metric's
rhythm), a column `value`, and optionally `dimension` and `dimension_value` (rows of one
dimension's values beside the total). It is checked when the client is validated: one
statement, a query and nothing else, only the client's marts, none of the marts built from
the metrics themselves (that would be a cycle), and the columns named.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

PLACEHOLDER = "{marts}"
# A schema name no client can have, standing for {marts} while the query is parsed.
_STAND_IN = "goalpost_marts_placeholder"
# Marts built from the metrics: a metric reading them would read itself.
FROM_METRICS = ("kpi_daily", "kpi_values", "metric_dictionary", "metric_relationships")
REQUIRED = ("date", "value")
OPTIONAL = ("dimension", "dimension_value")
_WRITES = (exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.Alter, exp.Command,
           exp.Merge, exp.Into, exp.TruncateTable)
_FUNCTION_DENIED = re.compile(r"^(pg_|dblink|lo_|set_config|current_setting)", re.I)


def check_query(text: str) -> tuple[str, ...]:
    """The marts a SQL metric reads; ValueError saying what is wrong with the query."""
    source = str(text).strip().rstrip(";").strip()
    if PLACEHOLDER not in source:
        raise ValueError("a SQL metric reads the client's marts, written {marts}.<table> "
                         "(e.g. SELECT month AS date, SUM(new_customers) AS value FROM "
                         "{marts}.customers_monthly GROUP BY month)")
    try:
        parsed = sqlglot.parse(source.replace(PLACEHOLDER, _STAND_IN), read="postgres")
    except ParseError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ValueError(f"the query does not parse: {first}") from None
    if len(parsed) != 1 or parsed[0] is None:
        raise ValueError("give one query (one SELECT statement)")
    query = parsed[0]
    if not isinstance(query, exp.Query) or any(query.find_all(*_WRITES)):
        raise ValueError("a SQL metric is a SELECT: it may not write, create or change anything")
    for function in query.find_all(exp.Anonymous, exp.Func):
        name = function.name if isinstance(function, exp.Anonymous) else function.sql_name()
        if _FUNCTION_DENIED.match(name or ""):
            raise ValueError(f"function {name} is not allowed in a SQL metric")
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    marts = []
    for table in query.find_all(exp.Table):
        if not table.db and table.name in ctes:
            continue
        if table.db != _STAND_IN or table.catalog:
            raise ValueError(f"{table.sql(dialect='postgres').replace(_STAND_IN, PLACEHOLDER)}"
                             " is not one of the client's marts: write {marts}.<table>")
        if table.name in FROM_METRICS:
            raise ValueError(f"{{marts}}.{table.name} is built from the metrics themselves; a "
                             "SQL metric reads the other marts (daily_sales, customers_monthly, "
                             "...)")
        marts.append(table.name)
    columns = list(query.named_selects)
    missing = [c for c in REQUIRED if c not in columns]
    extra = [c for c in columns if c not in (*REQUIRED, *OPTIONAL)]
    if missing or extra or ("dimension" in columns) != ("dimension_value" in columns):
        raise ValueError(f"the query gives {', '.join(columns) or 'no named column'}; it must "
                         "give date and value (and dimension with dimension_value for values "
                         "per dimension), named so")
    return tuple(dict.fromkeys(marts))


def columns(text: str) -> list[str]:
    """The columns a (checked) SQL metric's query gives."""
    parsed = sqlglot.parse_one(str(text).strip().rstrip(";").replace(PLACEHOLDER, _STAND_IN),
                               read="postgres")
    return list(parsed.named_selects)


def render(text: str, marts_schema: str) -> str:
    """The query with {marts} as the client's quoted marts schema."""
    quoted = exp.to_identifier(marts_schema, quoted=True).sql(dialect="postgres")
    return str(text).strip().rstrip(";").strip().replace(PLACEHOLDER, quoted)
