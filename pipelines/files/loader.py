"""Loading a file stream into its raw table: each new file whole, by COPY, or not at all.

A file is identified by the SHA-256 of its bytes: a file already loaded is skipped, an edited
or re-exported file loads again, and its records replace the older ones by key (see `keys`).
Staging keeps, per key, the record of the file loaded last (`goalpost.source_files.id` is the
load order), in normal runs and full refreshes alike.

One file is one transaction: its rows, its quarantined rows and its `goalpost.source_files`
entry commit together, so a file that turns out truncated halfway, or whose key repeats,
leaves nothing behind, and the files loaded before it stay. A full refresh reads every file
of the stream again in one transaction; each keeps its place in the load order, and the rows
of a loaded file that is no longer found are kept as raw holds them (raw is sacred).

Rows are streamed from the file to COPY in chunks; memory does not grow with the file but for
16 bytes per row (a hash and a row number, to find keys that repeat).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import contains, itemgetter
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

from goalpost.core.canonical import IDENTITY
from goalpost.core.checksums import file_sha256
from goalpost.core.registry.models import FileStream
from goalpost.core.runs import check_deadline
from goalpost.pipelines.files import dialect as dialects
from goalpost.pipelines.files import keys
from goalpost.pipelines.files.checks import (
    MAX_REMEMBERED,
    Check,
    FileChecks,
    RowRule,
    Suspect,
    WrongDateOrder,
    build_checks,
    constant_problems,
)
from goalpost.pipelines.files.readers import (
    FileProblem,
    LineTooLong,
    OpenedFile,
    Unreadable,
    discover,
    display_path,
    file_errors,
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
    """What one load of a stream did; `problems` are what a person must look at (the step
    fails), `warnings` what they should know (it does not)."""

    files_found: int = 0
    files_loaded: int = 0
    files_skipped: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_released: int = 0
    full_refresh: bool = False
    files_missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    new_columns: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class PreparedFile:
    """An open file with its resolved dialect, the checks its rows pass, and its identity."""

    opened: OpenedFile
    dialect: dialects.Dialect
    checks: FileChecks
    identity: keys.Identity
    key_columns: list[int]

    def cell_problem(self, row: list[str]) -> str | None:
        """Why the row cannot be loaded as it is (None when it can): the first cell its
        field's check refuses, else the first whole-row rule it breaks, else the first cell
        that is only suspect (so a suspect row is one that is readable in every cell)."""
        suspect = None
        for check in self.checks.cells:
            reason = check.reason(row[check.index])
            if reason is not None:
                if type(reason) is not Suspect:
                    return reason
                suspect = suspect or reason
        return self.rule_problem(row) or suspect

    def rule_problem(self, row: list[str]) -> str | None:
        for rule in self.checks.rows:
            reason = rule(row)
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
    problems += constant_problems(stream.entity, columns)
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
    identity = keys.identity(stream, columns)
    dialect = dialects.Dialect(
        format=found.format, encoding=found.encoding, compression=found.compression,
        delimiter=found.delimiter, decimal=decimal, thousands=thousands, header=header,
        columns=columns, date_formats=date_formats, identity=identity.as_json(),
    )
    checks = build_checks(dialect, stream.entity, typed)
    return PreparedFile(opened, dialect, checks, identity,
                        [position[c] for c in identity.columns])


def open_prepared(path: Path, stream: FileStream, country: str) -> PreparedFile:
    with file_errors():
        opened = open_table(path, format=stream.format, encoding=stream.encoding,
                            delimiter=stream.delimiter, sheet=stream.sheet)
    try:
        with file_errors():
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
class ReadCounts:
    """What one pass over a file's rows found."""

    loaded: int = 0
    rejected: int = 0
    first_reason: str = ""
    wrong_order: int = 0
    first_wrong_order: str = ""
    header: list[str] = field(default_factory=list)
    repeats: keys.RepeatFinder = field(default_factory=keys.RepeatFinder)
    warnings: list[str] = field(default_factory=list)


class Discard:
    """A COPY stand-in that keeps nothing: for reading a file as a load would (probe)."""

    def write(self, chunk: bytes) -> None:
        return None


def read_rows(prepared: PreparedFile, copy: Any, *, run_id: int, file_label: str,
              file_id: int, spool: Any, released: frozenset[int] = frozenset(),
              progress: Progress | None = None) -> ReadCounts:
    """Stream the file's loadable rows to `copy` as COPY text lines; spool the others (with
    their reasons) for the quarantine.

    This is the hot loop of every file load: per row only the checks that are not already
    satisfied by a remembered value run, and rows go to COPY as pre-formatted text lines.
    Rows in `released` were quarantined as suspect and released by a person: they load.
    """
    opened, header = prepared.opened, prepared.dialect.header
    width = len(header)
    # Fast path: the typed cells are a combination already accepted (or each one is, and
    # the row rules pass on them), every required cell is filled, and each timestamp's date
    # and time of day were seen in readable cells; only other rows run the full checks.
    checks: list[Check] = prepared.checks.cells
    rules: list[RowRule] = prepared.checks.rows
    remembered = [c for c in checks if c.accepted is not None]
    accepted_sets = [c.accepted for c in remembered]
    typed_cells = _cells([c.index for c in remembered])
    known: set[tuple[str, ...]] = set()
    timestamps = [(c.index, c.timestamps) for c in checks if c.timestamps is not None]
    required_text = [c.index for c in checks if c.validate is None]
    required_cells = _cells(required_text)
    tallies = [(t.index, t) for t in prepared.checks.tallies]
    dumps, encode_error = orjson.dumps, orjson.JSONEncodeError
    middle = b"\t%d\t%s\t%d\t" % (run_id, _copy_field(file_label), file_id)
    by_content = prepared.identity.by == "content"
    key_cells = _cells(prepared.key_columns)
    row_key = keys.key_function(prepared.key_columns)
    content_key = keys.content_key
    counts = ReadCounts()
    hashes_append, rows_append = counts.repeats.hashes.append, counts.repeats.rows.append
    number = loaded = 0
    out: list[bytes] = []

    def reject(row: list[str], number: int, reason: str, *, at_line: bool = True) -> None:
        line = opened.line_number(number) if at_line else None
        where = f"line {line:,}" if line else f"row {number:,}"
        if type(reason) is WrongDateOrder:
            counts.wrong_order += 1
            if not counts.first_wrong_order:
                counts.first_wrong_order = f"{where}: {reason}"
        counts.rejected += 1
        if not counts.first_reason:
            counts.first_reason = f"{where}: {reason}"
        suspect = type(reason) is Suspect
        cells = row if suspect else None
        key = (_key(row) if suspect else None)
        spool.write(dumps([number, line, reason, _record_text(row, prepared.dialect),
                           suspect, cells, key]) + b"\n")

    def _key(row: list[str]) -> str:
        if by_content:
            return content_key(key_cells(row)).decode()
        return row_key(row).decode()

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
    try:
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
                    reason = prepared.rule_problem(row) if rules else None
                    if reason is None:
                        if len(known) >= MAX_REMEMBERED:
                            known.clear()
                        known.add(cells)
                else:
                    reason = prepared.cell_problem(row)
            # A cell starting below "!" is empty or starts with a space or a control
            # character: it may be blank, which staging reads as NULL.
            if reason is None and required_text and min(required_cells(row)) < "!":
                reason = prepared.cell_problem(row)
            if reason is None:
                for index, cache in timestamps:
                    day, _, clock = row[index].partition(cache.separator)
                    if day not in cache.dates or clock not in cache.times:
                        reason = prepared.cell_problem(row)
                        break
            if reason is not None and not (type(reason) is Suspect and number in released):
                reject(row, number, reason)
                continue
            for index, tally in tallies:
                tally.observe(row[index])
            try:
                data = dumps(row)
                key = b"%s:1" % content_key(key_cells(row)) if by_content else row_key(row)
            except encode_error:
                reject(row, number, _encoding_reason(row, prepared.dialect))
                continue
            hashes_append(hash(key))
            rows_append(number)
            out.append(b"%s%s%d\t%s\n" % (key, middle, number, data))
            if len(out) >= CHUNK_ROWS:
                loaded += send(out)
                if progress and loaded % PROGRESS_EVERY < CHUNK_ROWS:
                    progress(f"{file_label}: {loaded:,} rows")
        loaded += send(out)
    except LineTooLong as exc:
        raise FileProblem(exc.at(opened.line_number(number + 1))) from None
    counts.loaded = loaded
    counts.header = header
    counts.warnings = [w for _, tally in tallies if (w := tally.warning())]
    return counts


def refusal(counts: ReadCounts, prepared: PreparedFile) -> str | None:
    """Why the file as a whole must not load, from what reading it found."""
    if counts.wrong_order:
        fmt = ", ".join(f"{name} {entry['python']}"
                        for name, entry in prepared.dialect.date_formats.items())
        return (f"has dates in the other day/month order: {counts.wrong_order:,} row(s) like "
                f"{counts.first_wrong_order}; the dates were detected as {fmt} from the first "
                "rows, so the rows that read both ways would be misdated: set `date_format` on "
                "the stream to the file's real format; nothing of it was loaded")
    total = counts.loaded + counts.rejected
    if counts.rejected >= MIN_REJECTED_TO_REFUSE and counts.rejected > MAX_REJECTED_SHARE * total:
        return (f"{counts.rejected:,} of {total:,} rows cannot be read (first: "
                f"{counts.first_reason}); the file was not loaded: check the stream's "
                "delimiter, encoding and column mapping with `goalpost source test`")
    return None


def _table_repeats(conn: psycopg.Connection, table: sql.Composed, file_id: int,
                   rows: list[int]) -> list[keys.Repeat]:
    """The keys that repeat among the given rows of one file, as loaded in this
    transaction."""
    found = conn.execute(sql.SQL(
        "SELECT _key, count(*), (array_agg(_row ORDER BY _row))[1:2] FROM {} WHERE _file_id = "
        "%s AND _row = ANY(%s::bigint[]) GROUP BY _key HAVING count(*) > 1 ORDER BY min(_row)"
    ).format(table), (file_id, rows)).fetchall()
    return [(key, count, list(first)) for key, count, first in found]


def _number_occurrences(conn: psycopg.Connection, table: sql.Composed, file_id: int,
                        rows: list[int]) -> None:
    """Identical rows of one file (content keys `<fingerprint>:1`) become `:1`, `:2`, ... in
    file order, so each is a line of its own. The row numbers go as bigint[]: `_row =
    ANY(int[])` is a cross-type comparison that Postgres cannot hash, and compares every row
    of the table with every number. Without nested loops: the planner's statistics of the
    raw table predate this file, so it expects one row of it and would compare each repeated
    row with the whole table (minutes on a second half-million-line export)."""
    conn.execute("SET LOCAL enable_nestloop = off")
    conn.execute(sql.SQL(
        "UPDATE {t} AS raw SET _key = split_part(raw._key, ':', 1) || ':' || d.n "
        "FROM (SELECT _row, row_number() OVER (PARTITION BY _key ORDER BY _row) AS n FROM {t} "
        "WHERE _file_id = %(f)s AND _row = ANY(%(rows)s::bigint[])) AS d "
        "WHERE raw._file_id = %(f)s AND raw._row = d._row AND d.n > 1").format(t=table),
        {"f": file_id, "rows": rows})
    conn.execute("SET LOCAL enable_nestloop TO DEFAULT")


def _load_file(conn: psycopg.Connection, *, slug: str, source: str, stream: FileStream,
               path: Path, label: str, sha: str, run_id: int, country: str,
               progress: Progress, reuse_id: int | None = None,
               released: frozenset[int] = frozenset()) -> ReadCounts | None:
    """Load one file inside the caller's transaction; None when its content is already in.

    With `reuse_id` (a full refresh) the file keeps its entry in goalpost.source_files, and
    so its place in the load order. Raises FileProblem (after which the caller rolls the
    transaction back) when the file cannot be read whole, its key repeats or most of its rows
    are unreadable.
    """
    prepared = open_prepared(path, stream, country)
    table = raw_identifier(slug, source, stream.name)
    dialect_json = orjson.dumps(prepared.dialect.as_json()).decode()
    try:
        if reuse_id is None:
            found = conn.execute(
                "INSERT INTO goalpost.source_files (client, source, stream, sha256, path, "
                "size_bytes, rows_loaded, rows_quarantined, dialect, run_id) VALUES (%s, %s, "
                "%s, %s, %s, %s, 0, 0, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
                (slug, source, stream.name, sha, label, path.stat().st_size, dialect_json,
                 run_id),
            ).fetchone()
            if found is None:
                return None
            file_id = found[0]
        else:
            file_id = reuse_id
            conn.execute("UPDATE goalpost.source_files SET path = %s, size_bytes = %s, "
                         "dialect = %s, run_id = %s WHERE id = %s",
                         (label, path.stat().st_size, dialect_json, run_id, file_id))
        statement = sql.SQL(
            "COPY {} (_key, _run_id, _file, _file_id, _row, data) FROM STDIN").format(table)
        with tempfile.TemporaryFile() as spool, conn.cursor() as cur:
            try:
                with file_errors(), cur.copy(statement) as copy:
                    counts = read_rows(prepared, copy, run_id=run_id, file_label=label,
                                       file_id=file_id, spool=spool, released=released,
                                       progress=progress)
            except psycopg.DataError as exc:
                raise FileProblem(f"holds data the warehouse refused ({exc}); nothing of it "
                                  "was loaded") from None
            refused = refusal(counts, prepared)
            if refused:
                raise FileProblem(refused)
            candidates = counts.repeats.candidates()
            if candidates and prepared.identity.by == "content":
                _number_occurrences(conn, table, file_id, candidates)
            elif candidates:
                repeats = _table_repeats(conn, table, file_id, candidates)
                if repeats:
                    raise FileProblem(keys.repeat_problem(prepared.identity, repeats))
            spool.seek(0)
            with cur.copy("COPY goalpost.quarantine (client, source, stream, run_id, file, "
                          "file_id, row_number, reason, record, kind, cells, row_key) "
                          "FROM STDIN") as copy:
                for line in spool:
                    number, file_line, reason, record, suspect, cells, key = orjson.loads(line)
                    where = f"line {file_line}: " if file_line else ""
                    copy.write_row((slug, source, stream.name, run_id, label, file_id, number,
                                    where + reason, record, "suspect" if suspect else "invalid",
                                    orjson.dumps(cells).decode() if cells else None, key))
        conn.execute(
            "UPDATE goalpost.source_files SET rows_loaded = %s, rows_quarantined = %s "
            "WHERE id = %s", (counts.loaded, counts.rejected, file_id))
        return counts
    finally:
        prepared.opened.close()


def _stored_files(conn: psycopg.Connection, slug: str, source: str,
                  stream: str) -> list[tuple[int, str, str, dict[str, Any]]]:
    """(id, sha256, path, dialect) of the stream's loaded files, in load order."""
    return conn.execute(
        "SELECT id, sha256, path, dialect FROM goalpost.source_files WHERE client = %s AND "
        "source = %s AND stream = %s ORDER BY id", (slug, source, stream)).fetchall()


def _load_released(conn: psycopg.Connection, slug: str, source: str, stream: FileStream,
                   run_id: int) -> int:
    """Put into raw the suspect rows a person released since the last run (`goalpost
    quarantine release`); returns how many. Inside the caller's transaction."""
    table = raw_identifier(slug, source, stream.name)
    pending = conn.execute(
        "SELECT q.id, q.file, q.file_id, q.row_number, q.cells, q.row_key, f.dialect "
        "FROM goalpost.quarantine AS q JOIN goalpost.source_files AS f ON f.id = q.file_id "
        "WHERE q.client = %s AND q.source = %s AND q.stream = %s AND q.released_at IS NOT "
        "NULL AND q.released_run_id IS NULL ORDER BY q.file_id, q.row_number",
        (slug, source, stream.name)).fetchall()
    for quarantine_id, label, file_id, number, cells, key, dialect in pending:
        if (dialect.get("identity") or {}).get("by") == "content":
            taken = conn.execute(sql.SQL(
                "SELECT count(*) FROM {} WHERE _file_id = %s AND split_part(_key, ':', 1) = %s"
            ).format(table), (file_id, key)).fetchone()[0]
            key = f"{key}:{taken + 1}"
        conn.execute(sql.SQL("INSERT INTO {} (_key, _run_id, _file, _file_id, _row, data) "
                             "VALUES (%s, %s, %s, %s, %s, %s)").format(table),
                     (key, run_id, label, file_id, number, orjson.dumps(cells).decode()))
        conn.execute("UPDATE goalpost.quarantine SET released_run_id = %s WHERE id = %s",
                     (run_id, quarantine_id))
        conn.execute("UPDATE goalpost.source_files SET rows_loaded = rows_loaded + 1, "
                     "rows_quarantined = rows_quarantined - 1 WHERE id = %s", (file_id,))
    return len(pending)


def _released_rows(conn: psycopg.Connection, slug: str, source: str,
                   stream: str) -> dict[int, frozenset[int]]:
    """{file id: row numbers} of the stream's quarantined rows that a person released."""
    found: dict[int, set[int]] = {}
    for file_id, number in conn.execute(
            "SELECT file_id, row_number FROM goalpost.quarantine WHERE client = %s AND "
            "source = %s AND stream = %s AND released_at IS NOT NULL",
            (slug, source, stream)):
        found.setdefault(file_id, set()).add(number)
    return {file_id: frozenset(rows) for file_id, rows in found.items()}


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
    result = FileStreamResult(full_refresh=full_refresh)
    files = discover(stream.path, root)
    result.files_found = len(files)
    ensure_raw_table(conn, slug, source, stream.name)
    lock = f"goalpost.files:{slug}/{source}/{stream.name}"
    if not files:
        result.problems.append(
            f"no file matches {stream.path!r} (relative to {root}): check the stream's `path`"
            + ("; nothing was reloaded" if full_refresh else ""))
        return result
    stored = _stored_files(conn, slug, source, stream.name)
    known = {column for *_, dialect in stored for column in dialect.get("header", [])}

    def load(path: Path, sha: str, reuse_id: int | None = None,
             released: frozenset[int] = frozenset()) -> None:
        label = display_path(path, root)
        counts = _load_file(conn, slug=slug, source=source, stream=stream, path=path,
                            label=label, sha=sha, run_id=run_id, country=country,
                            progress=say, reuse_id=reuse_id, released=released)
        if counts is None:
            result.files_skipped += 1
            return
        result.files_loaded += 1
        result.rows_loaded += counts.loaded
        result.rows_quarantined += counts.rejected
        say(f"{label}: {counts.loaded:,} rows " + ("reloaded" if reuse_id else "loaded")
            + (f", {counts.rejected:,} quarantined" if counts.rejected else ""))
        new = [c for c in counts.header if known and c not in known]
        if new and reuse_id is None:
            result.new_columns[label] = new
        known.update(counts.header)
        result.warnings.extend(f"{label}: {warning}" for warning in counts.warnings)

    if full_refresh:
        _full_refresh(conn, result, slug=slug, source=source, stream=stream, root=root,
                      files=files, stored=stored, lock=lock, run_id=run_id, load=load)
    else:
        loaded = {sha for _, sha, _, _ in stored}
        released = conn.execute(
            "SELECT count(*) FROM goalpost.quarantine WHERE client = %s AND source = %s AND "
            "stream = %s AND released_at IS NOT NULL AND released_run_id IS NULL",
            (slug, source, stream.name)).fetchone()[0]
        if released:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock,))
                result.rows_released = _load_released(conn, slug, source, stream, run_id)
                result.rows_loaded += result.rows_released
            say(f"{result.rows_released:,} released row(s) loaded")
        for path in files:
            sha = file_sha256(path)
            if sha in loaded:
                result.files_skipped += 1
                continue
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                                 (lock,))
                    load(path, sha)
                loaded.add(sha)
            except FileProblem as exc:
                result.problems.append(f"{display_path(path, root)} {exc}")
    return result


def _identity_of(dialect: dict[str, Any]) -> tuple[str, list[str]]:
    """How a loaded file's rows were keyed: by key or content, and the declared key."""
    identity = dialect.get("identity") or {}
    return identity.get("by", "key"), identity.get("primary_key", [])


def _keyed_as(stream: FileStream) -> tuple[str, list[str]]:
    """How the stream keys its rows now, as `_identity_of` reads it of a loaded file."""
    if stream.primary_key:
        return "key", list(stream.primary_key)
    return ("key" if stream.entity in IDENTITY else "content"), []


def _full_refresh(conn: psycopg.Connection, result: FileStreamResult, *, slug: str,
                  source: str, stream: FileStream, root: Path, files: list[Path],
                  stored: list[tuple[int, str, str, dict[str, Any]]], lock: str, run_id: int,
                  load: Callable[..., None]) -> None:
    """Read every file of the stream again, in one transaction: a loaded file keeps its
    entry (its place in the load order), new files come after in name order, and the rows
    of loaded files that are no longer found stay as loaded, unless the stream's key changed
    since (their rows could not be matched with the others): then nothing changes."""
    present = {}
    for path in files:
        present.setdefault(file_sha256(path), path)
    by_sha = {sha: (file_id, label, dialect) for file_id, sha, label, dialect in stored}
    missing = [(file_id, label, dialect) for file_id, sha, label, dialect in stored
               if sha not in present]
    result.files_missing = [label for _, label, _ in missing]
    keyed_now = _keyed_as(stream)
    rekeyed = [label for _, label, dialect in missing
               if _identity_of(dialect) != keyed_now]
    if rekeyed:
        result.problems.append(
            f"cannot refresh: {len(rekeyed)} loaded file(s) are no longer found "
            f"({', '.join(rekeyed[:5])}{', ...' if len(rekeyed) > 5 else ''}) and were keyed "
            "otherwise than the stream is now, so their rows cannot be kept beside the others: "
            "put the files back where the stream's `path` finds them, or restore the stream's "
            "primary_key; nothing was changed")
        return
    table = raw_identifier(slug, source, stream.name)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock,))
            released = _released_rows(conn, slug, source, stream.name)
            reread = [by_sha[sha][0] for sha in present if sha in by_sha]
            if missing:
                conn.execute(sql.SQL("DELETE FROM {} WHERE _file_id = ANY(%s::bigint[])")
                             .format(table), (reread,))
            else:
                conn.execute(sql.SQL("TRUNCATE {}").format(table))
            conn.execute("DELETE FROM goalpost.quarantine WHERE client = %s AND source = %s "
                         "AND stream = %s AND released_at IS NULL AND (file_id = "
                         "ANY(%s::bigint[]) OR file_id IS NULL)",
                         (slug, source, stream.name, reread))
            conn.execute("UPDATE goalpost.quarantine SET released_run_id = %s WHERE file_id = "
                         "ANY(%s::bigint[]) AND released_at IS NOT NULL", (run_id, reread))
            order = sorted(present, key=lambda sha: (sha not in by_sha,
                                                     by_sha.get(sha, (0,))[0],
                                                     present[sha].name))
            for sha in order:
                path = present[sha]
                reuse = by_sha[sha][0] if sha in by_sha else None
                try:
                    load(path, sha, reuse, released.get(reuse or -1, frozenset()))
                except FileProblem as exc:
                    raise _RefreshFailed(f"{display_path(path, root)} {exc}") from None
            result.rows_released = _load_released(conn, slug, source, stream, run_id)
            result.rows_loaded += result.rows_released
            result.files_skipped += len(files) - len(present)
    except _RefreshFailed as exc:
        result.files_loaded = result.rows_loaded = result.rows_quarantined = 0
        result.files_skipped = result.rows_released = 0
        result.new_columns.clear()
        result.warnings.clear()
        result.problems.append(f"{exc}; the full refresh was rolled back and the stream "
                               "keeps what it had")
        return
    if missing:
        result.warnings.append(
            f"{len(missing)} loaded file(s) are no longer found: "
            f"{', '.join(result.files_missing[:5])}{', ...' if len(missing) > 5 else ''}; "
            "their rows are kept as loaded (raw keeps what was received)")
