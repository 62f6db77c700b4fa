"""The quarantined rows of file sources: what they are, why, and releasing the suspect ones.

A row is quarantined as `invalid` when staging could not read it (a cell that is no number or
date of the file's format, a required value missing, a negative quantity that was paid for):
the way out is to fix the export, and an edited file loads again and replaces its rows. It is
`suspect` when it can be read but is probably wrong (a sale dated after tomorrow): a person
who knows better may release it, and the client's next run loads it into raw (so do later full
refreshes). Releasing writes nothing but that decision; runs do the loading, under their lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from goalpost.core.errors import ConfigError, NotFoundError


def summary(conn: psycopg.Connection, slug: str | None = None) -> list[dict[str, Any]]:
    """Per client, source, stream and kind: rows quarantined, released, files, and the
    first reason."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT client, source, stream, kind, count(*) AS rows,
                      count(released_at) AS released, count(DISTINCT file) AS files,
                      (array_agg(reason ORDER BY id))[1] AS first_reason,
                      max(created_at) AS last_at
               FROM goalpost.quarantine WHERE %(slug)s::text IS NULL OR client = %(slug)s
               GROUP BY client, source, stream, kind ORDER BY client, source, stream, kind""",
            {"slug": slug}).fetchall()


def rows(conn: psycopg.Connection, slug: str, *, source: str | None = None,
         stream: str | None = None, kind: str | None = None, file: str | None = None,
         limit: int = 50) -> list[dict[str, Any]]:
    """The quarantined rows of a client (newest files first, then in file order)."""
    if kind not in (None, "invalid", "suspect"):
        raise ConfigError(f"unknown kind {kind!r}", hint="invalid or suspect")
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT id, source, stream, file, row_number, kind, reason, record, released_at,
                      released_run_id, created_at
               FROM goalpost.quarantine
               WHERE client = %(slug)s AND (%(source)s::text IS NULL OR source = %(source)s)
                 AND (%(stream)s::text IS NULL OR stream = %(stream)s)
                 AND (%(kind)s::text IS NULL OR kind = %(kind)s)
                 AND (%(file)s::text IS NULL OR file = %(file)s)
               ORDER BY file_id DESC NULLS LAST, file, row_number LIMIT %(limit)s""",
            {"slug": slug, "source": source, "stream": stream, "kind": kind, "file": file,
             "limit": limit}).fetchall()


@dataclass
class Release:
    """What a release did: rows newly released, already released, refused with why."""

    released: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def release(conn: psycopg.Connection, slug: str, ids: list[int], *,
            all_suspect: bool = False, source: str | None = None,
            stream: str | None = None) -> Release:
    """Release suspect rows (by id, or every suspect row of the client, a source or a
    stream) so that the next run loads them. Invalid rows are refused: staging cannot read
    them, and releasing them would break every build."""
    if not ids and not all_suspect:
        raise ConfigError("name the rows to release", hint="give their ids (`goalpost "
                          "quarantine show`), or --all-suspect")
    with conn.transaction():
        found = conn.execute(
            """SELECT id, kind, released_at IS NOT NULL, file, row_number, reason
               FROM goalpost.quarantine
               WHERE client = %(slug)s AND (id = ANY(%(ids)s) OR (%(all)s AND kind = 'suspect'
                     AND (%(source)s::text IS NULL OR source = %(source)s)
                     AND (%(stream)s::text IS NULL OR stream = %(stream)s)))
               ORDER BY id FOR UPDATE""",
            {"slug": slug, "ids": ids, "all": all_suspect, "source": source,
             "stream": stream}).fetchall()
        unknown = sorted(set(ids) - {row[0] for row in found})
        if unknown:
            raise NotFoundError(f"{slug} has no quarantined row {', '.join(map(str, unknown))}",
                                hint=f"see `goalpost quarantine show {slug}`")
        outcome = Release()
        for row_id, kind, released, file, number, reason in found:
            if kind != "suspect":
                outcome.refused.append(
                    f"{row_id} ({file} row {number}: {reason}): staging cannot read it; fix the "
                    "file, and the edited file loads again and replaces its rows")
            elif released:
                outcome.already.append(row_id)
            else:
                outcome.released.append(row_id)
        conn.execute("UPDATE goalpost.quarantine SET released_at = now() WHERE id = ANY(%s)",
                     (outcome.released,))
    return outcome
