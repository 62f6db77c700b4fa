"""What identifies a file row (its raw `_key`), and the keys that repeat within one file.

Staging keeps one record per key, the one loaded last, so a key decides what counts:

- Entities whose staging holds one row per record (shops, products, customers, a product's
  stock count at a location on a day): the cells of the fields that name the record
  (canonical.IDENTITY), so that a newer list or count replaces the older one. A declared
  `primary_key` must name those columns: any other key would let two rows of one record
  through, and staging's uniqueness audit would then stop every build. Such a file is refused.
- A declared `primary_key` on sales lines: its cells.
- No key on sales lines: the row's content, that is the cells of the columns that feed
  canonical fields, with its occurrence number among identical rows of the same file. Exact
  duplicate lines within one export stay distinct lines (occurrences 1, 2, ...), and an
  export that repeats rows of an earlier one (an overlapping period, the same export under
  another name or format) replaces them instead of adding them again.

A key must be unique within each file: a file where it repeats is refused whole (keeping one
row per key would drop the others). Key cells are read as staging reads them, spaces trimmed,
so `P1 ` and `P1` are one key.

Repeats are found without keeping the keys: a 64-bit hash per row (16 bytes with its row
number), sorted once at the end; only the rows whose hashes repeat are then looked at.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from goalpost.core.canonical import ENTITIES, IDENTITY, RECORD_NOUNS
from goalpost.core.registry.models import FileStream
from goalpost.pipelines.files.readers import FileProblem

MAX_EXAMPLES = 3


@dataclass(frozen=True)
class Identity:
    """How the rows of one file are keyed: by `columns` (the key's), or by content (the
    mapped columns' cells and an occurrence number)."""

    by: str  # "key" or "content"
    columns: list[str]
    declared: list[str]  # the stream's primary_key setting (empty: none)
    fields: tuple[str, ...] = ()  # the fields naming a record, when they are the key
    entity: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"by": self.by, "columns": self.columns, "primary_key": self.declared}

    def describe(self) -> str:
        if self.by == "content":
            return "the row's content"
        if self.fields and not self.declared:
            plural = "s" if len(self.fields) > 1 else ""
            return (f"the field{plural} {', '.join(self.fields)} (column{plural} "
                    f"{', '.join(map(repr, self.columns))})")
        return f"the primary key ({', '.join(self.columns)})"


def identity(stream: FileStream, columns: dict[str, str]) -> Identity:
    """The identity of a file's rows, from the stream's settings and the file's resolved
    columns ({canonical field: file column or `=constant`}). Raises FileProblem when a
    declared key is not the columns that name a record of the entity."""
    fields = IDENTITY.get(stream.entity, ())
    named = [columns[f] for f in fields if not columns.get(f, "=").startswith("=")]
    if stream.primary_key:
        if fields and sorted(stream.primary_key) != sorted(named):
            noun = RECORD_NOUNS[stream.entity]
            where = ", ".join(f"{f} (column {columns[f]!r})" for f in fields)
            raise FileProblem(
                f"has primary_key [{', '.join(stream.primary_key)}], but staging keeps one "
                f"{noun} per {where}: another key would let two rows of one {noun} through, "
                f"which staging refuses; set `primary_key: [{', '.join(named)}]` on the "
                "stream, or leave it out (the same by default)")
        return Identity("key", list(stream.primary_key), list(stream.primary_key),
                        tuple(fields), stream.entity)
    if named:
        return Identity("key", named, [], tuple(fields), stream.entity)
    content = [columns[f.name] for f in ENTITIES[stream.entity]
               if f.name in columns and not columns[f.name].startswith("=")]
    return Identity("content", content, [], entity=stream.entity)


def key_function(indexes: list[int]) -> Callable[[list[str]], bytes]:
    """The raw `_key` of a row keyed by the cells at `indexes`: their JSON array, cells
    trimmed of spaces as staging trims them. The common case (no cell starts or ends with a
    space, so no `" ` or ` "` in the JSON) costs one serialisation."""
    dumps = orjson.dumps
    if len(indexes) == 1:
        only = indexes[0]

        def cells(row: list[str]) -> list[str]:
            return [row[only]]
    else:
        def cells(row: list[str]) -> list[str]:
            return [row[i] for i in indexes]

    def key(row: list[str]) -> bytes:
        found = dumps(cells(row))
        if b'" ' in found or b' "' in found:
            return dumps([cell.strip(" ") for cell in cells(row)])
        return found

    return key


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
    if ident.fields:
        noun = RECORD_NOUNS.get(ident.entity, "record")
        return told + (f"a file should hold each {noun} once; remove the repeats (the "
                       "file loaded last wins for a record that several files hold)")
    return told + ("declare a longer key that tells every line apart (add a column such as a "
                   "line number), or no key (`primary_key: []`): every line then counts, "
                   "exact duplicates included, and re-exported lines are recognised by their "
                   "content")
