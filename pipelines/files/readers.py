"""Finding a stream's files and reading them as rows of strings, whatever their format.

CSV (plain or gzip'd, told apart by their first bytes rather than their names) and XLSX both
come out as: a header, the first rows (for detecting the dialect) and an iterator over every
row, read as a stream so that memory does not grow with the file.

Whatever the bytes, reading ends in rows or in a FileProblem naming what is wrong: a line or
a cell longer than MAX_LINE_CHARS (a file that is not a table export, or a quote never
closed) is refused as soon as it is seen, so reading stays linear, and the step's time limit
is checked at every block read.
"""

from __future__ import annotations

import codecs
import csv
import glob
import gzip
import io
import itertools
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import psycopg

from goalpost.core.errors import GoalpostError
from goalpost.core.runs import check_deadline
from goalpost.pipelines.files.dialect import (
    Dialect,
    clean_header,
    detect_delimiter,
    detect_encoding,
)

SUFFIXES = (".csv", ".tsv", ".txt", ".gz", ".xlsx", ".xlsm")
SAMPLE_ROWS = 1000
HEAD_BYTES = 1 << 20
# A line (or a quoted cell) of a table export is at most a few kilobytes; a mebibyte is a
# file that is something else, or a quote that is never closed.
MAX_LINE_CHARS = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003 (.xls) and other OLE files

csv.field_size_limit(MAX_LINE_CHARS)


class FileProblem(Exception):
    """A file that cannot be read at all (empty, truncated, not a table): nothing of it loads."""


class LineTooLong(FileProblem):
    """A line or a cell longer than MAX_LINE_CHARS; `at` says where it starts."""

    def __init__(self, what: str = "line") -> None:
        self.what = what
        super().__init__(self.at(None))

    def at(self, line: int | None) -> str:
        where = f" at line {line:,}" if line else ""
        return (f"has a {self.what} longer than {MAX_LINE_CHARS:,} characters{where}: this is "
                "not a table export (or a quote is never closed, or lines end with a lone "
                "carriage return); nothing of it was loaded")


@contextmanager
def file_errors() -> Iterator[None]:
    """Whatever a reader raises on a file's bytes becomes a FileProblem naming the error, so
    one odd file is reported as such and never stops the files and steps after it; the
    warehouse's own errors and a step's time limit pass through."""
    try:
        yield
    except (FileProblem, GoalpostError, psycopg.Error, KeyboardInterrupt):
        raise
    except (PermissionError, FileNotFoundError, IsADirectoryError) as exc:
        raise FileProblem(f"cannot be opened ({exc.strerror}); nothing of it was loaded") \
            from None
    except (EOFError, OSError, zlib.error) as exc:
        raise FileProblem(f"is truncated or corrupt ({exc}); nothing of it was loaded") \
            from None
    except Exception as exc:
        raise FileProblem(f"cannot be read ({type(exc).__name__}: {exc}); nothing of it was "
                          "loaded") from None


class Unreadable(list):
    """A row the CSV parser gave up on; it is quarantined with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


def discover(spec: str, root: Path) -> list[Path]:
    """The files a stream's `path` names: one file, every table file in a folder, or a glob.

    Relative paths are relative to the project root; results are sorted by name so that files
    load in the order they were exported.
    """
    base = Path(spec).expanduser()
    if not base.is_absolute():
        base = root / base
    if any(ch in spec for ch in "*?["):
        found = [Path(p) for p in glob.glob(str(base), recursive=True)]
    elif base.is_dir():
        found = [p for p in base.iterdir() if p.name.lower().endswith(SUFFIXES)]
    else:
        found = [base] if base.exists() else []
    return sorted(p for p in found if p.is_file() and not p.name.startswith((".", "~$")))


def display_path(path: Path, root: Path) -> str:
    """The path as stored and shown: relative to the project root when inside it."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def sniff_format(path: Path) -> tuple[str, str | None]:
    """(format, compression) from the file's first bytes."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic.startswith(GZIP_MAGIC):
        return "csv", "gzip"
    if magic.startswith(ZIP_MAGIC):
        return "xlsx", None
    if magic == OLE_MAGIC[:4]:
        return "xls", None
    return "csv", None


@dataclass
class OpenedFile:
    """A file open for reading: its dialect (format and text settings), header and rows."""

    path: Path
    dialect: Dialect
    header: list[str]
    sample: list[list[str]]
    rows: Iterator[list[str]]
    extra_lines: Any = None
    _closers: list[Any] = field(default_factory=list)

    def line_number(self, record: int) -> int | None:
        """The line of the file where the given record (1 = first after the header) ends, for
        messages (CSV only): records are lines, but for quoted fields spanning lines."""
        return 1 + record + self.extra_lines() if self.extra_lines else None

    def close(self) -> None:
        for closer in reversed(self._closers):
            closer()

    def __enter__(self) -> OpenedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _binary(path: Path, compression: str | None) -> io.BufferedIOBase:
    raw = open(path, "rb", buffering=HEAD_BYTES)  # noqa: SIM115 - closed by OpenedFile
    if compression == "gzip":
        return io.BufferedReader(gzip.GzipFile(fileobj=raw, mode="rb"), HEAD_BYTES)
    return raw


class _Lines:
    """The lines of a text stream without their line breaks, read in large blocks.

    The row reader walks `parts` (the current block's lines) itself; the CSV parser, used only
    for lines with quotes, pulls lines through `__next__`, which reads the next block when a
    quoted field runs past the end of this one.
    """

    def __init__(self, text: io.TextIOBase) -> None:
        self._text = text
        self._tail = ""
        self.parts: Iterator[str] = iter(())
        self.pending: str | None = None
        self.extra_lines = 0  # lines the parser pulled beyond the first line of a record

    def refill(self) -> bool:
        check_deadline()
        block = self._text.read(HEAD_BYTES)
        if not block:
            if not self._tail:
                return False
            lines, self._tail = [self._tail], ""
        else:
            lines = (self._tail + block).split("\n")
            self._tail = lines.pop()
            # Only the first line can span blocks, and only the tail can keep growing.
            if len(self._tail) > MAX_LINE_CHARS or (lines and len(lines[0]) > MAX_LINE_CHARS):
                raise LineTooLong()
        self.parts = iter(lines)
        return True

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pending is not None:
            line, self.pending = self.pending, None
            return line
        self.extra_lines += 1
        for line in self.parts:
            return line + "\n"
        if self.refill():
            self.extra_lines -= 1
            return next(self)
        self.extra_lines -= 1
        raise StopIteration


def _csv_rows(lines: _Lines, delimiter: str) -> Iterator[list[str]]:
    """The rows of a CSV stream, as csv.reader gives them, but faster on the usual lines.

    A line with no quote and no stray carriage return is split on the delimiter directly,
    several times faster than the CSV parser; other lines go through csv.reader, which pulls
    the following lines of a quoted field that spans lines. Parser errors become Unreadable
    rows.
    """
    parser = csv.reader(lines, delimiter=delimiter)
    while True:
        parts = lines.parts
        for line in parts:
            if '"' not in line:
                if line.endswith("\r"):
                    line = line[:-1]
                if "\r" not in line:
                    yield line.split(delimiter) if line else []
                    continue
            lines.pending = line + "\n"
            try:
                yield next(parser)
            except csv.Error as exc:
                lines.pending = None
                if "field larger than field limit" in str(exc):
                    raise LineTooLong("cell") from None
                yield Unreadable(f"cannot be parsed as CSV: {exc}")
            except StopIteration:
                return
        if lines.parts is parts and not lines.refill():
            return


def _refuse_binary(head: bytes, encoding: str) -> None:
    """A FileProblem for bytes that are not text in a single-byte or UTF-8 encoding: UTF-16
    without a byte-order mark (a NUL beside every ASCII character) names the encoding to set;
    other NULs mean a binary file."""
    if encoding.startswith("utf-16") or encoding.startswith("utf-32") or b"\x00" not in head:
        return
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if max(even, odd) > 0.3 * (len(head) / 2) and min(even, odd) < 0.05 * (len(head) / 2):
        order = "utf-16-le" if odd > even else "utf-16-be"
        raise FileProblem(f"is encoded in UTF-16 ({order.upper()[7:]}, without a byte-order "
                          f"mark): set `encoding: {order}` on the stream, or export it as "
                          "UTF-8")
    if head.count(0) > max(16, len(head) // 100):  # a stray NUL only quarantines its row
        raise FileProblem(f"is not a text table: it holds binary data ({head.count(0):,} NUL "
                          "bytes in its first MiB); export the table as CSV or XLSX")


def open_csv(path: Path, *, encoding: str, delimiter: str, compression: str | None) -> OpenedFile:
    """Open a CSV file; encoding and delimiter may be "auto"."""
    try:
        with _binary(path, compression) as binary:
            head = binary.read(HEAD_BYTES)
    except (EOFError, OSError, gzip.BadGzipFile) as exc:
        raise FileProblem(f"is truncated or corrupt ({exc})") from None
    if not head.strip():
        raise FileProblem("is empty")
    if encoding == "auto":
        encoding = detect_encoding(head)
        _refuse_binary(head, encoding)
    else:
        encoding = codecs.lookup(encoding).name
        if encoding == "utf-8" and head.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
    if delimiter == "auto":
        text = head.decode(encoding, errors="replace")
        lines = text.splitlines()[:60]
        if len(head) == HEAD_BYTES and len(lines) > 1:
            lines = lines[:-1]  # the last line of the head may be cut in the middle
        detected = detect_delimiter(lines)
        if detected is None:
            raise FileProblem(
                "has a single column: its delimiter is none of , ; tab | "
                "(set `delimiter` on the stream if it uses another)"
            )
        delimiter = detected
    binary = _binary(path, compression)
    text_stream = io.TextIOWrapper(binary, encoding=encoding, errors="surrogateescape", newline="")
    lines = _Lines(text_stream)
    reader = _csv_rows(lines, delimiter)
    sample: list[list[str]] = []
    try:
        header = next(reader)
        while not header:
            header = next(reader)  # blank lines before the header
        if isinstance(header, Unreadable):
            raise FileProblem(f"has a header that {header.reason}")
        sample.extend(itertools.islice(reader, SAMPLE_ROWS))
    except LineTooLong as exc:
        text_stream.close()
        raise FileProblem(exc.at(2 + len(sample) + lines.extra_lines)) from None
    except StopIteration:
        text_stream.close()
        raise FileProblem("is empty") from None
    except (EOFError, OSError, gzip.BadGzipFile) as exc:
        text_stream.close()
        raise FileProblem(f"is truncated or corrupt ({exc})") from None
    except BaseException:
        text_stream.close()
        raise
    dialect = Dialect(format="csv", encoding=encoding, compression=compression,
                      delimiter=delimiter, header=clean_header(header))
    return OpenedFile(path, dialect, dialect.header, sample, itertools.chain(sample, reader),
                      extra_lines=lambda: lines.extra_lines, _closers=[text_stream.close])


def _cell(value: Any) -> str:
    """An XLSX cell as the text a CSV export of it would hold (ISO dates, plain numbers)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.time() == time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def _xlsx_rows(sheet: Any, width: int) -> Iterator[list[str]]:
    try:
        for values in sheet.iter_rows(min_row=2, values_only=True):
            row = [_cell(v) for v in values]
            while len(row) > width and row[-1] == "":
                row.pop()
            if not any(row):
                yield []
                continue
            if len(row) < width:
                row.extend([""] * (width - len(row)))
            yield row
    except Exception as exc:  # openpyxl raises many kinds on a damaged sheet
        raise _not_a_workbook(exc) from None


def _not_a_workbook(exc: Exception) -> FileProblem:
    return FileProblem(f"is not a readable XLSX workbook ({type(exc).__name__}: {exc}); "
                       "open it in a spreadsheet and save it again as .xlsx or CSV")


def open_xlsx(path: Path, *, sheet: str | None) -> OpenedFile:
    """Open an XLSX workbook's sheet (the first one unless named) in streaming mode.

    The workbook is read from an open file, so its name does not matter (a workbook saved
    as `sales.csv` reads as what it is)."""
    from openpyxl import load_workbook

    handle = open(path, "rb")  # noqa: SIM115 - closed by OpenedFile
    try:
        workbook = load_workbook(handle, read_only=True, data_only=True)
    except Exception as exc:  # a ZIP that is no workbook: KeyError, BadZipFile, XML errors...
        handle.close()
        raise _not_a_workbook(exc) from None
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            raise FileProblem(f"has no sheet {sheet!r} (sheets: {', '.join(workbook.sheetnames)})")
        worksheet = workbook[sheet] if sheet else workbook.worksheets[0]
        first = next(worksheet.iter_rows(max_row=1, values_only=True), None)
        cells = [_cell(v) for v in (first or ())]
        while cells and cells[-1] == "":
            cells.pop()
        if not cells:
            raise FileProblem("is empty (its first sheet has no header row)")
        header = clean_header(cells)
        rows = _xlsx_rows(worksheet, len(header))
        sample = list(itertools.islice(rows, SAMPLE_ROWS))
    except FileProblem:
        workbook.close()
        handle.close()
        raise
    except Exception as exc:
        workbook.close()
        handle.close()
        raise _not_a_workbook(exc) from None
    dialect = Dialect(format="xlsx", header=header)
    return OpenedFile(path, dialect, header, sample, itertools.chain(sample, rows),
                      _closers=[handle.close, workbook.close])


def open_table(path: Path, *, format: str = "auto", encoding: str = "auto",
               delimiter: str = "auto", sheet: str | None = None) -> OpenedFile:
    """Open any supported file; raises FileProblem when it cannot be read at all."""
    if path.stat().st_size == 0:
        raise FileProblem("is empty (0 bytes)")
    detected, compression = sniff_format(path)
    if detected == "xls":
        raise FileProblem("is an Excel 97-2003 workbook (.xls), which Goalpost does not read: "
                          "save it as .xlsx or CSV")
    if format == "auto":
        format = detected
    if format == "xlsx":
        if detected != "xlsx":
            raise FileProblem("is not an XLSX workbook (set `format: csv` if it is a CSV)")
        return open_xlsx(path, sheet=sheet)
    if detected == "xlsx":
        raise FileProblem("is an XLSX workbook, not a CSV: set `format: auto` (or xlsx) on the "
                          "stream, or export the sheet as CSV")
    return open_csv(path, encoding=encoding, delimiter=delimiter, compression=compression)
