"""Reading a file stream the way a load would, writing nothing: for `goalpost source add|test`.

Every row of every file goes through the loader's own row loop (into a COPY that keeps
nothing), so what a test reports is what a load would do: the rows it would quarantine, a
key that repeats anywhere in a file, dates in the other day/month order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson

from goalpost.core.registry.models import FileStream
from goalpost.pipelines.files import keys
from goalpost.pipelines.files.loader import (
    Discard,
    PreparedFile,
    open_prepared,
    read_rows,
    refusal,
)
from goalpost.pipelines.files.readers import (
    FileProblem,
    discover,
    display_path,
    file_errors,
    open_table,
)
from goalpost.pipelines.stream_check import StreamCheck

MAX_FILES = 50
MAX_EXAMPLES = 3


class _Rejections:
    """The quarantine spool of a probe: counts nothing itself, keeps the first reasons."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.examples: list[str] = []

    def write(self, line: bytes) -> None:
        if len(self.examples) < MAX_EXAMPLES:
            number, file_line, reason, *_ = orjson.loads(line)
            where = f"line {file_line:,}" if file_line else f"row {number:,}"
            self.examples.append(f"{self.label} {where}: {reason}")


def probe_stream(
    source: str, stream: FileStream, root: Path, *, country: str = "FR"
) -> StreamCheck:
    """Read each of the stream's files (up to MAX_FILES) whole, as a load would. The dialect
    and columns shown are the first file's."""
    check = StreamCheck(source=source, stream=stream.name, ok=True)
    files = discover(stream.path, root)
    check.files = [display_path(p, root) for p in files]
    if not files:
        check.problems.append(f"no file matches {stream.path!r} (relative to {root})")
    for path in files[:MAX_FILES]:
        label = display_path(path, root)
        try:
            prepared = open_prepared(path, stream, country)
        except FileProblem as exc:
            check.problems.append(f"{label} {exc}")
            if not check.columns:
                check.columns = _header_only(path, stream)
            continue
        try:
            if not check.dialect:
                check.dialect = prepared.dialect.as_json()
                check.columns = list(prepared.dialect.header)
                check.mapping = dict(prepared.dialect.columns)
            rejections = _Rejections(label)
            with file_errors():
                counts = read_rows(prepared, Discard(), run_id=0, file_label=label, file_id=0,
                                   spool=rejections)
            check.sample_rows += counts.loaded + counts.rejected
            check.sample_rejected += counts.rejected
            check.rejected_examples.extend(
                rejections.examples[:MAX_EXAMPLES - len(check.rejected_examples)])
            check.notes.extend(f"{label}: {warning}" for warning in counts.warnings)
            problem = refusal(counts, prepared)
            candidates = counts.repeats.candidates()
            if problem is None and candidates and prepared.identity.by == "key":
                repeats = keys.exact_repeats(_keys_of(path, stream, country, set(candidates)))
                if repeats:
                    problem = keys.repeat_problem(prepared.identity, repeats)
            if problem:
                check.problems.append(f"{label} {problem}")
        except FileProblem as exc:
            check.problems.append(f"{label} {exc}")
        finally:
            prepared.opened.close()
    if len(files) > MAX_FILES:
        check.notes.append(f"only the first {MAX_FILES} of {len(files)} files were read")
    check.ok = not check.problems
    return check


def _keys_of(path: Path, stream: FileStream, country: str,
             wanted: set[int]) -> Iterator[tuple[int, bytes]]:
    """(row number, key) of the wanted rows, numbered as the loader numbers them."""
    prepared: PreparedFile = open_prepared(path, stream, country)
    key = keys.key_function(prepared.key_columns)
    try:
        with file_errors():
            for number, row in enumerate(prepared.opened.rows, start=1):
                if number in wanted:
                    yield number, key(row)
    finally:
        prepared.opened.close()


def _header_only(path: Path, stream: FileStream) -> list[str]:
    """The file's columns when it opens but does not fit the stream (to suggest a mapping)."""
    try:
        with file_errors(), open_table(path, format=stream.format, encoding=stream.encoding,
                                       delimiter=stream.delimiter, sheet=stream.sheet) as opened:
            return list(opened.header)
    except FileProblem:
        return []
