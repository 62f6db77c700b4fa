"""The raw layer: one table per source stream in `<slug>_raw`, holding records as extracted.

Every raw table has the same shape whatever the source, so loaders, staging models and
operations (backups, resets) treat them alike:

- `_key`: the record's primary key as a JSON array of its values (or a file position when the
  stream declares no key); staging keeps the latest record per key.
- `_loaded_at`, `_run_id`: when and by which run the record landed.
- `_file`, `_file_id`, `_row`: for file sources, the file (relative path and its entry in
  `goalpost.source_files`) and the record's number in it; NULL for API sources.
- `_deleted`: the source reports the record deleted (API sources that show deletions).
- `data`: the record as one jsonb value. File rows are stored as the array of their cells in
  file order (the file's header is in `goalpost.source_files.dialect`): an array is what the
  file holds, and it loads at twice the rate of an object with the header repeated per row.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from goalpost.core.identifiers import raw_table, schema_name

RAW_COLUMNS = ("_key", "_loaded_at", "_run_id", "_file", "_file_id", "_row", "_deleted", "data")


def raw_identifier(slug: str, source: str, stream: str) -> sql.Composed:
    """`"<slug>_raw"."<source>__<stream>"`, quoted."""
    return sql.SQL("{}.{}").format(
        sql.Identifier(schema_name(slug, "raw")), sql.Identifier(raw_table(source, stream))
    )


def ensure_raw_table(conn: psycopg.Connection, slug: str, source: str, stream: str,
                     *, unique_key: bool = False) -> None:
    """Create the stream's raw table if it does not exist (idempotent).

    API streams (`unique_key`) keep one row per key, upserted; file streams keep every row of
    every file, and staging picks the latest per key.
    """
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            "_key text NOT NULL, "
            "_loaded_at timestamptz NOT NULL DEFAULT now(), "
            "_run_id bigint, "
            "_file text, "
            "_file_id bigint, "
            "_row bigint, "
            "_deleted boolean NOT NULL DEFAULT false, "
            "data jsonb NOT NULL)"
        ).format(raw_identifier(slug, source, stream))
    )
    if unique_key:
        conn.execute(sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} (_key)").format(
            sql.Identifier(f"{raw_table(source, stream)}__key"),
            raw_identifier(slug, source, stream)))
