"""What identifies a file row (its raw `_key`), and the keys that repeat within one file.

Staging keeps one record per key, the one loaded last, so a key decides what counts:

- A declared `primary_key`: the key is its cells. It must be unique within each file (a file
  whose key repeats is refused whole: keeping one row per key would drop the others); a
  later file's row replaces the earlier one with the same key (a re-export, a correction).
- No key, for entities that list things (shops, products, customers): their id field is the
  key, so a newer list replaces the older one.
- No key otherwise (sales lines, stock counts): the row's content, that is the cells of the
  columns that feed canonical fields, with its occurrence number among identical rows of the
  same file. Exact duplicate lines within one export stay distinct lines (occurrences 1, 2,
  ...), and an export that repeats rows of an earlier one (an overlapping period, the same
  export under another name or format) replaces them instead of adding them again.

Repeats are found without keeping the keys: a 64-bit hash per row (16 bytes with its row
number), sorted once at the end; only the rows whose hashes repeat are then looked at.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from goalpost.core.canonical import ENTITIES, IDENTITY
from goalpost.core.registry.models import FileStream

MAX_EXAMPLES = 3


@dataclass(frozen=True)
class Identity:
    """How the rows of one file are keyed: by `columns` (the key's), or by content (the
    mapped columns' cells and an occurrence number)."""

    by: str  # "key" or "content"
    columns: list[str]
    declared: list[str]  # the stream's primary_key setting (empty: none)
    field: str | None = None  # the id field, when it is the key by default

    def as_json(self) -> dict[str, Any]:
        return {"by": self.by, "columns": self.columns, "primary_key": self.declared}

    def describe(self) -> str:
        if self.by == "content":
            return "the row's content"
        if self.field and not self.declared:
            return f"the field {self.field} (column {self.columns[0]!r})"
        return f"the primary key ({', '.join(self.columns)})"


def identity(stream: FileStream, columns: dict[str, str]) -> Identity:
    """The identity of a file's rows, from the stream's settings and the file's resolved
    columns ({canonical field: file column or `=constant`})."""
    if stream.primary_key:
        return Identity("key", list(stream.primary_key), list(stream.primary_key))
    named = IDENTITY.get(stream.entity)
    column = columns.get(named or "", "=")
    if named and not column.startswith("="):
        return Identity("key", [column], [], field=named)
    content = [columns[f.name] for f in ENTITIES[stream.entity]
               if f.name in columns and not columns[f.name].startswith("=")]
    return Identity("content", content, [])


def content_key(cells: tuple[str, ...]) -> bytes:
    """The fingerprint of a row's content (cells trimmed of spaces, as staging reads them)."""
    digest = hashlib.blake2b(orjson.dumps([c.strip(" ") for c in cells]), digest_size=12)
    return digest.hexdigest().encode()


class RepeatFinder:
    """Collects a hash per row; `candidates()` are the rows whose hash another row shares
    (every repeated key among them, and rarely a row whose hash merely collides)."""

    def __init__(self) -> None:
        self.hashes = array("q")
        self.rows = array("q")

    def candidates(self) -> list[int]:
        if len(self.hashes) < 2:
            return []
        hashes = np.frombuffer(self.hashes, dtype=np.int64)
        ordered = np.sort(hashes)
        if not (ordered[1:] == ordered[:-1]).any():
            return []
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        same = ordered[1:] == ordered[:-1]
        mask = np.zeros(len(ordered), dtype=bool)
        mask[1:] |= same
        mask[:-1] |= same
        return sorted(np.frombuffer(self.rows, dtype=np.int64)[order[mask]].tolist())


Repeat = tuple[str, int, list[int]]  # key (as stored), rows having it, the first rows


def exact_repeats(pairs: Iterable[tuple[int, bytes]]) -> list[Repeat]:
    """The keys that really repeat among (row, key) pairs, in the order they first appear."""
    seen: dict[bytes, list[int]] = {}
    for row, key in pairs:
        seen.setdefault(key, []).append(row)
    return [(key.decode(), len(rows), rows[:2]) for key, rows in seen.items() if len(rows) > 1]


def repeat_problem(ident: Identity, repeats: list[Repeat]) -> str:
    """The message refusing a file whose key repeats: the key, how many rows, examples, and
    what to do."""
    rows = sum(count for _, count, _ in repeats)
    examples = "; ".join(
        f"{key} on rows {' and '.join(f'{r:,}' for r in first)}"
        + (f" and {count - 2:,} more" if count > 2 else "")
        for key, count, first in repeats[:MAX_EXAMPLES])
    told = (f"{ident.describe()} is not unique in the file: {rows:,} rows share their key "
            f"with another row ({len(repeats):,} key{'s' if len(repeats) != 1 else ''} "
            f"repeat), e.g. {examples}; the file was not loaded (what was loaded before is "
            "kept): ")
    if ident.field and not ident.declared:
        return told + (f"each {ident.field} should appear once per file; remove the "
                       "repeats, or declare a `primary_key` that tells the rows apart")
    return told + ("declare a longer key that tells every line apart (add a column such as a "
                   "line number), or no key (`primary_key: []`): every line then counts, "
                   "exact duplicates included, and re-exported lines are recognised by their "
                   "content")
