"""Finding a client's extensions, feeding them their inputs and writing their tables.

Writes are atomic: the new rows go to a fresh table that replaces the old one in the same
transaction, so a job that fails (or is stopped) leaves the previous output in place. Each
write is recorded in `goalpost.extension_runs` with a fingerprint of the inputs, the version
and the settings; a job whose fingerprint is unchanged is skipped, so a run with no new data
changes nothing.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
import psycopg
from psycopg import sql

from goalpost.core.errors import ConfigError, GoalpostError
from goalpost.core.identifiers import schema_name
from goalpost.core.registry.models import Client
from goalpost.extensions.api import DISTINCT_SERIES, SQL_TYPES, Extension, JobContext
from goalpost.extensions.vocabulary import module_names


def catalogue() -> dict[str, Extension]:
    """Every extension of the package (modules that define EXTENSION), by name."""
    found: dict[str, Extension] = {}
    for name in module_names():
        extension = getattr(importlib.import_module(f"goalpost.extensions.{name}"),
                            "EXTENSION", None)
        if isinstance(extension, Extension):
            found[extension.name] = extension
    return found


def enabled(client: Client, names: list[str] | None = None) -> list[Extension]:
    """The client's extensions (its YAML's `extensions`, else every built-in), in order;
    `names` picks among them."""
    available = catalogue()
    chosen = client.extensions if client.extensions is not None else sorted(
        name for name, ext in available.items() if ext.builtin)
    unknown = [name for name in [*chosen, *(names or [])] if name not in available]
    if unknown:
        raise ConfigError(f"unknown extension(s): {', '.join(unknown)}",
                          hint="`goalpost extensions list` shows them")
    if names:
        missing = [name for name in names if name not in chosen]
        if missing:
            raise ConfigError(f"extension(s) not switched on for this client: "
                              f"{', '.join(missing)}",
                              hint="add them to `extensions:` in the client's YAML")
        chosen = [name for name in chosen if name in names]
    return [available[name] for name in chosen]


def load_inputs(conn: psycopg.Connection, slug: str, extension: Extension) -> pd.DataFrame:
    """The extension's inputs from the client's marts."""
    marts = schema_name(slug, "marts")
    if extension.inputs.sql is not None:
        query = extension.inputs.sql.format(
            marts=sql.Identifier(marts).as_string(conn),
            insights=sql.Identifier(schema_name(slug, "insights")).as_string(conn))
        params: tuple = ()
    else:
        schema = sql.Identifier(marts).as_string(conn)
        query = (f"SELECT metric, date, dimension, dimension_value, value FROM "
                 f"{schema}.kpi_daily WHERE {DISTINCT_SERIES.format(marts=schema)}")
        params = ()
        if extension.inputs.metrics:
            query += " AND metric = ANY(%s)"
            params = (list(extension.inputs.metrics),)
        query += " ORDER BY metric, dimension, dimension_value, date"
    with conn.cursor() as cur:
        cur.execute(query, params)
        columns = [d.name for d in cur.description or ()]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def last_complete(conn: psycopg.Connection, slug: str) -> date | None:
    """The last day whose data is complete (`<slug>_marts.data_as_of`), None without it."""
    table = sql.Identifier(schema_name(slug, "marts"), "data_as_of")
    if conn.execute("SELECT to_regclass(%s)", (table.as_string(conn),)).fetchone()[0] is None:
        return None
    found = conn.execute(sql.SQL("SELECT last_complete_date FROM {}").format(table)).fetchone()
    return found[0] if found else None


def fingerprint(extension: Extension, data: pd.DataFrame, client: Client,
                complete: date | None = None) -> str:
    """What an output depends on: the inputs, the last complete day, the extension's version
    and the client's configuration (its settings, goals, metric definitions...)."""
    digest = hashlib.sha256(f"{extension.name}|{extension.version}|{complete}|".encode())
    digest.update(client.model_dump_json(exclude={"alerts"}).encode())  # alerts: no input
    digest.update(data.to_csv(index=False).encode())
    return digest.hexdigest()


@dataclass
class JobResult:
    name: str
    table: str
    status: str  # written, unchanged
    rows: int
    seconds: float


def run_extension(conn: psycopg.Connection, slug: str, client: Client, extension: Extension,
                  *, run_id: int | None, now: datetime | None = None,
                  force: bool = False) -> JobResult:
    """Run one extension for one client and write its table (unless nothing changed)."""
    started = datetime.now(UTC)
    now = now or started
    settings = dict(client.extension_settings.get(extension.name, {}))
    try:
        data = load_inputs(conn, slug, extension)
        complete = last_complete(conn, slug)
    except psycopg.Error as exc:
        raise GoalpostError(f"extension {extension.name} could not read its inputs: "
                            f"{str(exc).strip().splitlines()[0]}",
                            hint="build the client's marts first (`goalpost run`)") from None
    inputs_hash = fingerprint(extension, data, client, complete)
    table = sql.Identifier(schema_name(slug, "insights"), extension.table)
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                          (table.as_string(conn),)).fetchone()[0]
    last = conn.execute(
        "SELECT input_hash FROM goalpost.extension_runs WHERE client = %s AND extension = %s "
        "ORDER BY id DESC LIMIT 1", (slug, extension.name)).fetchone()
    if exists and last and last[0] == inputs_hash and not force:
        rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()[0]
        return JobResult(extension.name, extension.table, "unchanged", rows,
                         (datetime.now(UTC) - started).total_seconds())

    try:
        output = extension.run(JobContext(slug, client, data, now, settings, complete))
    except GoalpostError:
        raise
    except Exception as exc:  # a consultant's job failing must not stop the run
        raise GoalpostError(f"extension {extension.name} failed: {type(exc).__name__}: {exc}",
                            hint="the previous output is kept") from exc
    output = _checked(extension, output)
    _write(conn, slug, extension, output, run_id)
    conn.execute(
        "INSERT INTO goalpost.extension_runs (client, extension, run_id, version, input_hash, "
        "rows) VALUES (%s, %s, %s, %s, %s, %s)",
        (slug, extension.name, run_id, extension.version, inputs_hash, len(output)))
    return JobResult(extension.name, extension.table, "written", len(output),
                     (datetime.now(UTC) - started).total_seconds())


def _checked(extension: Extension, output: pd.DataFrame) -> pd.DataFrame:
    names = [c.name for c in extension.columns]
    missing = [n for n in names if n not in output.columns]
    extra = [n for n in output.columns if n not in names]
    if missing or extra:
        raise GoalpostError(
            f"extension {extension.name} returned the wrong columns"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; undeclared {', '.join(map(str, extra))}" if extra else ""),
            hint="its run function must return exactly the columns it declares")
    output = output[names]
    if extension.key and output.duplicated(list(extension.key)).any():
        dupes = output[output.duplicated(list(extension.key), keep=False)].head(3)
        raise GoalpostError(
            f"extension {extension.name} returned rows with the same key "
            f"({', '.join(extension.key)}), e.g. {dupes.to_dict('records')}")
    return output


def _write(conn: psycopg.Connection, slug: str, extension: Extension, output: pd.DataFrame,
           run_id: int | None) -> None:
    """Replace the table with the rows, in one transaction."""
    schema = schema_name(slug, "insights")
    fresh = f"{extension.table}__new"
    columns = [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(SQL_TYPES[c.type]))
               for c in extension.columns]
    columns += [sql.SQL("run_id bigint"), sql.SQL("model_version text NOT NULL"),
                sql.SQL("computed_at timestamptz NOT NULL DEFAULT now()")]
    names = [c.name for c in extension.columns]
    with conn.transaction():
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema, fresh)))
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(
            sql.Identifier(schema, fresh), sql.SQL(", ").join(columns)))
        copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(schema, fresh),
            sql.SQL(", ").join(sql.Identifier(n) for n in [*names, "run_id", "model_version"]))
        with conn.cursor() as cur, cur.copy(copy) as writer:
            for row in output.itertuples(index=False, name=None):
                writer.write_row([_cell(v) for v in row] + [run_id, extension.version])
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(
            sql.Identifier(schema, extension.table)))
        conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
            sql.Identifier(schema, fresh), sql.Identifier(extension.table)))


def _cell(value: object) -> object:
    """A DataFrame value as COPY takes it: missing values as NULL, dicts and lists as JSON."""
    if isinstance(value, dict | list):
        import orjson

        return orjson.dumps(value, default=str).decode()
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value

