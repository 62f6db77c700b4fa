"""Reading a file stream the way a load would, writing nothing: for `source add` and `test`."""

from __future__ import annotations

from pathlib import Path

from goalpost.core.registry.models import FileStream
from goalpost.pipelines.files.loader import open_prepared
from goalpost.pipelines.files.readers import FileProblem, discover, display_path, open_table
from goalpost.pipelines.stream_check import StreamCheck

MAX_FILES = 50
MAX_EXAMPLES = 3


def probe_stream(
    source: str, stream: FileStream, root: Path, *, country: str = "FR"
) -> StreamCheck:
    """Open each of the stream's files (up to MAX_FILES), resolve its dialect and run the
    row checks on its first rows. The dialect and columns shown are the first file's."""
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
            for row in prepared.opened.sample:
                if not row:
                    continue
                check.sample_rows += 1
                reason = prepared.row_problem(row)
                if reason is not None:
                    check.sample_rejected += 1
                    if len(check.rejected_examples) < MAX_EXAMPLES:
                        check.rejected_examples.append(f"{label}: {reason}")
        finally:
            prepared.opened.close()
    if len(files) > MAX_FILES:
        check.notes.append(f"only the first {MAX_FILES} of {len(files)} files were read")
    check.ok = not check.problems
    return check


def _header_only(path: Path, stream: FileStream) -> list[str]:
    """The file's columns when it opens but does not fit the stream (to suggest a mapping)."""
    try:
        with open_table(path, format=stream.format, encoding=stream.encoding,
                        delimiter=stream.delimiter, sheet=stream.sheet) as opened:
            return list(opened.header)
    except FileProblem:
        return []
