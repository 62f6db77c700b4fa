"""The extension API: a Python job that reads a client's marts and writes one insights table.

An extension declares what it reads (metrics of `kpi_daily`, or SQL over the client's marts),
the table it writes and its columns, and a run function that turns the inputs into rows. The
runner (extensions.runner) gives it its inputs, and writes its rows to
`<slug>_insights.<table>` atomically, with the run id and the extension's version beside them.
A job whose inputs and version did not change since it last wrote is not run again.

A consultant's own extension is a module in `extensions/` that defines `EXTENSION`; the
client's YAML switches it on (`extensions: [my_extension]`). Built-ins run for every client
unless its YAML lists the ones it wants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import pandas as pd

from goalpost.core.registry.models import Client

ColumnType = Literal["text", "integer", "number", "date", "timestamp", "boolean", "jsonb"]
SQL_TYPES: dict[str, str] = {
    "text": "text", "integer": "bigint", "number": "double precision", "date": "date",
    "timestamp": "timestamp", "boolean": "boolean", "jsonb": "jsonb",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    description: str = ""


# A condition on kpi_daily's rows keeping the total and the dimensions that have more than one
# value: a dimension with a single value (one shop, one channel) is the total again, and a
# forecast, anomaly or trend of it would only repeat the total's. kpi_daily keeps those rows
# (goals, alerts and dashboards name a shop); what an extension judges leaves them out.
DISTINCT_SERIES = ("(dimension = 'all' OR dimension IN (SELECT dimension FROM {marts}.kpi_daily "
                   "WHERE dimension <> 'all' GROUP BY dimension "
                   "HAVING COUNT(DISTINCT dimension_value) > 1))")


@dataclass(frozen=True)
class Inputs:
    """What an extension reads: metrics of kpi_daily (all of the client's when `metrics` is
    empty and `sql` is None: the total and each dimension with more than one value, see
    DISTINCT_SERIES), or one SQL query over the client's marts and insights, where
    `{marts}` and `{insights}` name the schemas (an extension may read what an earlier one in
    name order wrote)."""

    metrics: tuple[str, ...] = ()
    sql: str | None = None


@dataclass
class JobContext:
    """What a run function gets: the client, its inputs as a DataFrame, and where it stands:
    `last_complete` is the last day whose data is complete (`<slug>_marts.data_as_of`; None
    when the marts do not say), the newest day an extension may judge."""

    slug: str
    client: Client
    data: pd.DataFrame
    now: datetime
    settings: dict[str, Any] = field(default_factory=dict)
    last_complete: date | None = None


@dataclass(frozen=True)
class Extension:
    name: str
    description: str
    version: str  # bump when the method changes: the output is recomputed
    table: str
    columns: tuple[Column, ...]
    run: Callable[[JobContext], pd.DataFrame]
    inputs: Inputs = Inputs()
    key: tuple[str, ...] = ()  # columns that identify a row (checked unique before writing)
    builtin: bool = False

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        reserved = {"run_id", "model_version", "computed_at"} & set(names)
        if reserved:
            raise ValueError(f"extension {self.name}: {', '.join(sorted(reserved))} are added "
                             "by the runner")
        unknown = set(self.key) - set(names)
        if unknown:
            raise ValueError(f"extension {self.name}: key {', '.join(sorted(unknown))} is not "
                             "a column")
