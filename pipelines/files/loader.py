"""Loading a file stream into its raw table: each new file whole, by COPY, or not at all.

A file is identified by the SHA-256 of its bytes: a file already loaded is skipped, an edited
or re-exported file loads again (staging keeps the latest record per primary key). One file is
one transaction: its rows, its quarantined rows and its `goalpost.source_files` entry commit
together, so a file that turns out truncated halfway leaves nothing behind, and the files
loaded before it stay. A full refresh reloads every file of the stream in one transaction.

Rows are streamed from the file to COPY in chunks; memory does not grow with the file.
"""

from __future__ import annotations

import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import contains, itemgetter
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

from goalpost.core.checksums import file_sha256
from goalpost.core.registry.models import FileStream
from goalpost.core.runs import check_deadline
from goalpost.pipelines.files import dialect as dialects
from goalpost.pipelines.files.checks import MAX_REMEMBERED, Check, build_checks
from goalpost.pipelines.files.readers import (
    FileProblem,
    OpenedFile,
    Unreadable,
    discover,
    display_path,
    open_table,
)
from goalpost.pipelines.raw import ensure_raw_table, raw_identifier

Progress = Callable[[str], None]
CHUNK_ROWS = 4000
PROGRESS_EVERY = 250_000
# A file where most rows fail is read with the wrong settings, not full of bad rows.
MAX_REJECTED_SHARE = 0.5
MIN_REJECTED_TO_REFUSE = 10


@dataclass
class FileStreamResult:
    """What one load of a stream did; `problems` are what a person must look at."""

    files_found: int = 0
    files_loaded: int = 0
    files_skipped: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    problems: list[str] = field(default_factory=list)
    new_columns: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class PreparedFile:
    """An open file with its resolved dialect, the checks its rows pass, and its key."""

    opened: OpenedFile
    dialect: dialects.Dialect
    checks: list[Check]
    key_columns: list[int]

    def row_problem(self, row: list[str]) -> str | None:
        """Why a row cannot be loaded (None when it can); the loader inlines this."""
        if isinstance(row, Unreadable):
            return row.reason
        width = len(self.dialect.header)
        if len(row) != width and not _trailing_blanks(row, width):
            return f"has {len(row)} fields, the header has {width}"
        reason = self.cell_problem(row)
        if reason is not None:
            return reason
        try:
            orjson.dumps(row)
        except orjson.JSONEncodeError:
            return _encoding_reason(row, self.dialect)
        return None


    def cell_problem(self, row: list[str]) -> str | None:
        """The first cell of the row that its field's check refuses, as a reason."""
        for check in self.checks:
            reason = check.reason(row[check.index])
            if reason is not None:
                return reason
        return None


def _trailing_blanks(row: list[str], width: int) -> bool:
    """True for a row longer than the header only by empty cells (a trailing delimiter)."""
    return len(row) > width and not any(cell.strip() for cell in row[width:])


def _encoding_reason(row: list[str], dialect: dialects.Dialect) -> str:
    for cell in row:
        bad = [ch for ch in cell if "\udc80" <= ch <= "\udcff"]
        if bad:
            raw = "".join(bad).encode("utf-8", "surrogateescape")
            return (f"has bytes that are not valid {dialect.encoding} ({raw.hex(' ')}): set "
                    "`encoding` on the stream if the file is in another encoding")
    return "cannot be encoded as JSON"


def _record_text(row: list[str], dialect: dialects.Dialect) -> str:
    """The row as text for the quarantine, with undecodable bytes shown as \\xNN."""
    text = (dialect.delimiter or ",").join(row).replace("\x00", "\\x00")
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def prepare(opened: OpenedFile, stream: FileStream, country: str) -> PreparedFile:
    """Resolve the file's dialect from the stream's settings and its first rows.

    Raises FileProblem when the file cannot be loaded as this stream (a required column or a
    key column missing, dates in no known format).
    """
    found = opened.dialect
    header = opened.header
    columns, problems = dialects.resolve_columns(stream.entity, header, stream.columns)
    missing_key = [c for c in stream.primary_key if c not in header]
    if missing_key:
        problems.append(f"primary key column(s) {', '.join(missing_key)} not in the file")
    if problems:
        hint = f"the file's columns are: {', '.join(header)}"
        if len(header) == 1 and found.format == "csv":
            other = dialects.detect_delimiter([header[0]])
            if other:
                hint = (f"the header reads as one column {header[0]!r}: the file looks "
                        f"{dialects.DELIMITER_NAMES[other]}-delimited; set `delimiter: auto` "
                        f"or {other!r} on the stream")
        raise FileProblem("; ".join(problems) + f" ({hint}; map fields with `columns:`)")

    typed = dialects.typed_fields(stream.entity, columns)
    position = {name: index for index, name in enumerate(header)}
    sample = [row for row in opened.sample if len(row) >= len(header)]

    def values(column: str) -> list[str]:
        return [row[position[column]] for row in sample if row[position[column]].strip()]

    numbers = [v for f, c in typed if f.type in ("number", "integer") for v in values(c)]
    decimal, thousands = dialects.detect_decimal(numbers, found.delimiter)
    if stream.decimal != "auto":
        decimal = stream.decimal
        thousands = "." if decimal == "," else ("," if found.delimiter != "," else "")
        thousands = thousands if any(thousands in v for v in numbers) else ""
    date_formats: dict[str, dict[str, str | None]] = {}
    for f, column in typed:
        if f.type not in ("date", "timestamp"):
            continue
        if stream.date_format != "auto":
            fmt: str | None = stream.date_format
        else:
            fmt = dialects.detect_date_format(values(column), country)
        if fmt is None:
            example = values(column)[0]
            raise FileProblem(
                f"column {column!r} ({f.name}) holds no date in a known format "
                f"(e.g. {example!r}): set `date_format` on the stream (strptime, e.g. %d/%m/%Y)"
            )
        date_formats[f.name] = dialects.date_format_entry(fmt)
    dialect = dialects.Dialect(
        format=found.format, encoding=found.encoding, compression=found.compression,
        delimiter=found.delimiter, decimal=decimal, thousands=thousands, header=header,
        columns=columns, date_formats=date_formats,
    )
    checks = build_checks(dialect, typed)
    return PreparedFile(opened, dialect, checks, [position[c] for c in stream.primary_key])


def open_prepared(path: Path, stream: FileStream, country: str) -> PreparedFile:
    opened = open_table(path, format=stream.format, encoding=stream.encoding,
                        delimiter=stream.delimiter, sheet=stream.sheet)
    try:
        return prepare(opened, stream, country)
    except BaseException:
        opened.close()
        raise


def _cells(indexes: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """A function returning the cells at `indexes` as a tuple (itemgetter, for any length)."""
    if len(indexes) > 1:
        return itemgetter(*indexes)
    if len(indexes) == 1:
        only = indexes[0]
        return lambda row: (row[only],)
    return lambda row: ()


def _copy_field(value: str) -> bytes:
    """A constant cell for COPY's text format, before the per-chunk backslash doubling (so
    only the characters that would break the line are replaced here)."""
    return value.replace("\t", " ").replace("\n", " ").replace("\r", " ").encode()


@dataclass
class _Counts:
    loaded: int = 0
    rejected: int = 0
    first_reason: str = ""
    header: list[str] = field(default_factory=list)


def _copy_rows(cur: psycopg.Cursor, table: sql.Composed, prepared: PreparedFile, *, run_id: int,
               file_label: str, file_id: int, sha: str, spool: Any,
               progress: Progress) -> _Counts:
    """Stream the file's readable rows into the raw table; spool the others for quarantine.

    This is the hot loop of every file load: per row only the checks that are not already
    satisfied by a remembered value run, and rows go to COPY as pre-formatted text lines.
    """
    opened, header = prepared.opened, prepared.dialect.header
    width = len(header)
    # Fast path: the typed cells are a combination already accepted (or each one is), every
    # required cell is filled, and each timestamp's date and time of day were seen in readable
    # cells; only other rows run the full checks.
    remembered = [c for c in prepared.checks if c.accepted is not None]
    accepted_sets = [c.accepted for c in remembered]
    typed_cells = _cells([c.index for c in remembered])
    known: set[tuple[str, ...]] = set()
    timestamps = [(c.index, c.timestamps) for c in prepared.checks if c.timestamps is not None]
    required_cells = _cells([c.index for c in prepared.checks if c.validate is None])
    dumps, encode_error = orjson.dumps, orjson.JSONEncodeError
    middle = b"\t%d\t%s\t%d\t" % (run_id, _copy_field(file_label), file_id)
    keys = prepared.key_columns
    key_of: Callable[[list[str]], Any] | None
    if not keys:
        key_of = None
        anonymous = sha[:16].encode()
    elif len(keys) == 1:
        only = keys[0]

        def key_of(row: list[str]) -> tuple[str]:
            return (row[only],)
    else:
        key_of = itemgetter(*keys)
    counts = _Counts()
    number = loaded = 0
    out: list[bytes] = []
    statement = sql.SQL(
        "COPY {} (_key, _run_id, _file, _file_id, _row, data) FROM STDIN"
    ).format(table)

    def reject(row: list[str], number: int, reason: str, *, at_line: bool = True) -> None:
        counts.rejected += 1
        if not counts.first_reason:
            counts.first_reason = f"row {number}: {reason}"
        line = opened.line_number(number) if at_line else None
        spool.write(dumps([number, line, reason, _record_text(row, prepared.dialect)]) + b"\n")

    def send(lines: list[bytes]) -> int:
        """COPY a chunk of lines, escaping backslashes for COPY's text format; returns the
        number of rows sent. Checked per chunk, not per row: backslashes are rare."""
        if not lines:
            return 0
        check_deadline()
        chunk = b"".join(lines)
        lines.clear()
        if b"\\" in chunk:
            if b"\\u0000" in chunk:
                chunk = b"".join(_without_nul(chunk.splitlines(keepends=True)))
            chunk = chunk.replace(b"\\", b"\\\\")
        copy.write(chunk)
        return chunk.count(b"\n")

    def _without_nul(lines: list[bytes]) -> list[bytes]:
        # jsonb cannot hold U+0000: such rows go to the quarantine instead.
        kept = []
        for line in lines:
            if b"\\u0000" in line:
                fields = line.rstrip(b"\n").split(b"\t")
                reject(orjson.loads(fields[-1]), int(fields[-2]), "contains a NUL character",
                       at_line=False)
            else:
                kept.append(line)
        return kept

    rows = opened.rows
    with cur.copy(statement) as copy:
        for row in rows:
            number += 1
            if len(row) != width:
                if not row and not isinstance(row, Unreadable):
                    continue  # a blank line
                if isinstance(row, Unreadable):
                    reject(row, number, row.reason)
                    continue
                if not _trailing_blanks(row, width):
                    reject(row, number, f"has {len(row)} fields, the header has {width}")
                    continue
                row = row[:width]
            reason = None
            cells = typed_cells(row)
            if cells not in known:
                if all(map(contains, accepted_sets, cells)):
                    if len(known) >= MAX_REMEMBERED:
                        known.clear()
                    known.add(cells)
                else:
                    reason = prepared.cell_problem(row)
            if reason is None and "" in required_cells(row):
                reason = prepared.cell_problem(row)
            if reason is None:
                for index, cache in timestamps:
                    day, _, clock = row[index].partition(cache.separator)
                    if day not in cache.dates or clock not in cache.times:
                        reason = prepared.cell_problem(row)
                        break
            if reason is not None:
                reject(row, number, reason)
                continue
            try:
                data = dumps(row)
                key = dumps(key_of(row)) if key_of else b"%s:%d" % (anonymous, number)
            except encode_error:
                reject(row, number, _encoding_reason(row, prepared.dialect))
                continue
            out.append(b"%s%s%d\t%s\n" % (key, middle, number, data))
            if len(out) >= CHUNK_ROWS:
                loaded += send(out)
                if loaded % PROGRESS_EVERY < CHUNK_ROWS:
                    progress(f"{file_label}: {loaded:,} rows")
        loaded += send(out)
    counts.loaded = loaded
    return counts


def _load_file(conn: psycopg.Connection, *, slug: str, source: str, stream: FileStream,
               path: Path, label: str, sha: str, run_id: int, country: str,
               progress: Progress) -> _Counts | None:
    """Load one file inside the caller's transaction; None when its content is already in.

    Raises FileProblem (after which the caller rolls the transaction back) when the file
    cannot be read whole or most of its rows are unreadable.
    """
    prepared = open_prepared(path, stream, country)
    try:
        file_id = conn.execute(
            "INSERT INTO goalpost.source_files (client, source, stream, sha256, path, size_bytes, "
            "rows_loaded, rows_quarantined, dialect, run_id) VALUES (%s, %s, %s, %s, %s, %s, 0, "
            "0, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
            (slug, source, stream.name, sha, label, path.stat().st_size,
             orjson.dumps(prepared.dialect.as_json()).decode(), run_id),
        ).fetchone()
        if file_id is None:
            return None
        with tempfile.TemporaryFile() as spool, conn.cursor() as cur:
            try:
                counts = _copy_rows(cur, raw_identifier(slug, source, stream.name), prepared,
                                    run_id=run_id, file_label=label, file_id=file_id[0], sha=sha,
                                    spool=spool, progress=progress)
            except (EOFError, OSError, zlib.error, zipfile.BadZipFile) as exc:
                raise FileProblem(f"is truncated or corrupt ({exc}); nothing of it was "
                                  "loaded") from None
            total = counts.loaded + counts.rejected
            if (counts.rejected >= MIN_REJECTED_TO_REFUSE
                    and counts.rejected > MAX_REJECTED_SHARE * total):
                raise FileProblem(
                    f"{counts.rejected:,} of {total:,} rows cannot be read (first: "
                    f"{counts.first_reason}); the file was not loaded: check the stream's "
                    "delimiter, encoding and column mapping with `goalpost source test`")
            spool.seek(0)
            with cur.copy("COPY goalpost.quarantine (client, source, stream, run_id, file, "
                          "row_number, reason, record) FROM STDIN") as copy:
                for line in spool:
                    number, file_line, reason, record = orjson.loads(line)
                    where = f"line {file_line}: " if file_line else ""
                    copy.write_row((slug, source, stream.name, run_id, label, number,
                                    where + reason, record))
        counts.header = prepared.dialect.header
        conn.execute(
            "UPDATE goalpost.source_files SET rows_loaded = %s, rows_quarantined = %s "
            "WHERE id = %s", (counts.loaded, counts.rejected, file_id[0]))
        return counts
    finally:
        prepared.opened.close()


def _known_columns(conn: psycopg.Connection, slug: str, source: str, stream: str) -> set[str]:
    rows = conn.execute(
        "SELECT DISTINCT jsonb_array_elements_text(dialect -> 'header') FROM goalpost.source_files "
        "WHERE client = %s AND source = %s AND stream = %s", (slug, source, stream)).fetchall()
    return {row[0] for row in rows}


def _loaded_hashes(conn: psycopg.Connection, slug: str, source: str, stream: str) -> set[str]:
    rows = conn.execute(
        "SELECT sha256 FROM goalpost.source_files WHERE client = %s AND source = %s "
        "AND stream = %s", (slug, source, stream)).fetchall()
    return {row[0] for row in rows}


class _RefreshFailed(Exception):
    pass


def _quiet(_: str) -> None:
    return None


def load_file_stream(
    conn: psycopg.Connection,
    *,
    slug: str,
    source: str,
    stream: FileStream,
    root: Path,
    run_id: int,
    country: str = "FR",
    full_refresh: bool = False,
    progress: Progress | None = None,
) -> FileStreamResult:
    """Load the stream's new files into `<slug>_raw.<source>__<stream>`.

    `conn` must be in autocommit mode: each file (or, with `full_refresh`, the whole reload)
    gets its own transaction. Problems with a file are reported in the result, never raised:
    the other files still load.
    """
    say = progress or _quiet
    result = FileStreamResult()
    files = discover(stream.path, root)
    result.files_found = len(files)
    if not files:
        result.problems.append(
            f"no file matches {stream.path!r} (relative to {root}): check the stream's `path`")
        return result
    ensure_raw_table(conn, slug, source, stream.name)
    known = _known_columns(conn, slug, source, stream.name)
    lock = f"goalpost.files:{slug}/{source}/{stream.name}"

    def load(path: Path, sha: str) -> _Counts | None:
        label = display_path(path, root)
        counts = _load_file(conn, slug=slug, source=source, stream=stream, path=path,
                            label=label, sha=sha, run_id=run_id, country=country, progress=say)
        if counts is None:
            result.files_skipped += 1
            return None
        result.files_loaded += 1
        result.rows_loaded += counts.loaded
        result.rows_quarantined += counts.rejected
        say(f"{label}: {counts.loaded:,} rows loaded"
            + (f", {counts.rejected:,} quarantined" if counts.rejected else ""))
        new = [c for c in counts.header if known and c not in known]
        if new:
            result.new_columns[label] = new
        known.update(counts.header)
        return counts

    if full_refresh:
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock,))
                conn.execute(sql.SQL("TRUNCATE {}").format(
                    raw_identifier(slug, source, stream.name)))
                for table in ("source_files", "quarantine"):
                    conn.execute(sql.SQL("DELETE FROM goalpost.{} WHERE client = %s AND "
                                         "source = %s AND stream = %s").format(
                        sql.Identifier(table)), (slug, source, stream.name))
                known.clear()
                for path in files:
                    try:
                        load(path, file_sha256(path))
                    except FileProblem as exc:
                        raise _RefreshFailed(f"{display_path(path, root)} {exc}") from None
        except _RefreshFailed as exc:
            result.files_loaded = result.rows_loaded = result.rows_quarantined = 0
            result.files_skipped = 0
            result.new_columns.clear()
            result.problems.append(f"{exc}; the full refresh was rolled back and the stream "
                                   "keeps what it had")
        return result

    loaded = _loaded_hashes(conn, slug, source, stream.name)
    for path in files:
        sha = file_sha256(path)
        if sha in loaded:
            result.files_skipped += 1
            continue
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock,))
                load(path, sha)
        except FileProblem as exc:
            result.problems.append(f"{display_path(path, root)} {exc}")
    return result

