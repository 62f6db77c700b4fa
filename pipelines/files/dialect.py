"""How a file is written: encoding, delimiter, decimal mark, date formats and column mapping.

Each setting comes from the stream's registry entry when it is set there, else it is detected
from the first rows of the file. The result is stored with every loaded file (in
`goalpost.source_files.dialect`), and the staging models read the file's rows with it, so files
of one stream may differ (a new export format, a corrections file) and still load.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from goalpost.core.canonical import ENTITIES, Field

DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
ISO = "iso"

# Date layouts tried on a field's sample values, as strptime formats; ISO 8601 is tried first.
_DAY_FIRST = ("%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%d/%m/%y", "%d.%m.%y")
_MONTH_FIRST = ("%m/%d/%Y", "%m-%d-%Y", "%m/%d/%y")
_YEAR_FIRST = ("%Y/%m/%d", "%Y.%m.%d")
_TIMES = ("", " %H:%M", " %H:%M:%S", " %H:%M:%S.%f", "T%H:%M:%S")
_PG_CODES = {"%d": "DD", "%m": "MM", "%Y": "YYYY", "%y": "YY", "%H": "HH24", "%M": "MI",
             "%S": "SS", "%f": "US", "%I": "HH12", "%p": "AM", "%b": "Mon", "%B": "Month"}
_ISO = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,6}))?)?"
    r"(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?")

_FOLD = re.compile(r"[\s_\-.]+")
_COMMA_DECIMAL = re.compile(r"^[+-]?\d{1,3}(?:[. \u00a0\u202f]\d{3})*,\d+$|^[+-]?\d+,\d+$")
_DOT_DECIMAL = re.compile(r"^[+-]?\d{1,3}(?:[, \u00a0\u202f']\d{3})*\.\d+$|^[+-]?\d+\.\d+$")
_GROUPED = re.compile(r"^[+-]?\d{1,3}(?:([. ,'\u00a0\u202f])\d{3})+(?:[.,]\d+)?$")


@dataclass
class Dialect:
    """Everything needed to read one file's rows back, as stored with the file."""

    format: str
    encoding: str | None = None
    compression: str | None = None
    delimiter: str | None = None
    decimal: str = "."
    thousands: str = ""
    header: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    date_formats: dict[str, dict[str, str | None]] = field(default_factory=dict)
    # How the rows are keyed (keys.Identity.as_json): a full refresh compares it.
    identity: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "encoding": self.encoding,
            "compression": self.compression,
            "delimiter": self.delimiter,
            "decimal": self.decimal,
            "thousands": self.thousands,
            "header": self.header,
            "positions": {name: index for index, name in enumerate(self.header)},
            "columns": self.columns,
            "date_formats": self.date_formats,
            "identity": self.identity,
        }


def detect_encoding(head: bytes) -> str:
    """utf-8 (with or without BOM) when the bytes mostly read as UTF-8, else cp1252;
    UTF-16 and UTF-32 when the file starts with their byte-order mark.

    A file that is UTF-8 but for a few bad bytes stays UTF-8, so that its good rows load and
    the bad ones are quarantined, rather than every accent turning into mojibake.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        decoder.decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    text = head.decode("utf-8", errors="surrogateescape")
    invalid = sum(1 for ch in text if "\udc80" <= ch <= "\udcff")
    multibyte = sum(1 for ch in text if ch >= "\u0080" and not "\udc80" <= ch <= "\udcff")
    return "utf-8" if multibyte > invalid else "cp1252"


def detect_delimiter(lines: Sequence[str]) -> str | None:
    """The candidate that splits the header and the next lines into the same number of fields
    (more than one), preferring the one giving the most fields; None when none does."""
    best: tuple[float, str] | None = None
    sample = [line for line in lines if line.strip()][:50]
    if not sample:
        return None
    for delimiter in DELIMITERS:
        widths = [len(row) for row in csv.reader(sample, delimiter=delimiter)]
        if not widths or widths[0] < 2:
            continue
        consistent = sum(1 for w in widths if w == widths[0]) / len(widths)
        if consistent < 0.5:
            continue
        score = consistent * 1000 + widths[0]
        if best is None or score > best[0]:
            best = (score, delimiter)
    return best[1] if best else None


def clean_header(cells: Sequence[str]) -> list[str]:
    """Header names trimmed, blanks named `column_<n>` and repeats suffixed `_2`, `_3`..."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for index, cell in enumerate(cells, start=1):
        name = cell.strip().lstrip("\ufeff") or f"column_{index}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        names.append(name)
    return names


def resolve_columns(
    entity: str, header: Sequence[str], mapping: dict[str, str]
) -> tuple[dict[str, str], list[str]]:
    """{canonical field: file column or `=constant`} and the problems: required fields with
    no column (and no way to derive them).

    A field is read from the column the registry maps it to, else from a column of its own
    name; header names match exactly, else ignoring case, spaces, underscores, hyphens and
    dots (`Customer ID` is customer_id), unless two columns then look alike. A mapping
    `=value` gives the field that constant for every row (a single-shop export has no shop
    column).
    """
    folded: dict[str, str | None] = {}
    for name in header:
        key = fold(name)
        folded[key] = None if key in folded else name  # None: two columns fold alike
    present = set(header)
    columns: dict[str, str] = {}
    for f in ENTITIES[entity]:
        wanted = mapping.get(f.name, f.name)
        if wanted.startswith("="):
            columns[f.name] = wanted
            continue
        found = wanted if wanted in present else folded.get(fold(wanted))
        if found is not None:
            columns[f.name] = found
    problems: list[str] = []
    for f in missing_fields(entity, columns):
        wanted = mapping.get(f.name, f.name)
        via = f"column {wanted!r}" if f.name in mapping else f"a column named {f.name!r}"
        problems.append(f"no {via} for required field {f.name}")
    return columns, problems


def missing_fields(entity: str, columns: dict[str, str]) -> list[Field]:
    """The required fields of the entity that `columns` (as resolve_columns gives them)
    leaves without a value: no column, no constant, and no way to compute them."""
    return [f for f in ENTITIES[entity]
            if f.required and f.name not in columns
            and not (f.derived_from and all(name in columns for name in f.derived_from))]


def fold(name: str) -> str:
    """A column name compared loosely: `Customer ID`, `customer_id` and `CUSTOMER-ID` match."""
    return _FOLD.sub("", name.strip().lower())


def detect_decimal(values: Sequence[str], delimiter: str | None) -> tuple[str, str]:
    """(decimal mark, thousands separator) from sample values of the number fields."""
    comma = sum(1 for v in values if _COMMA_DECIMAL.match(v.strip()))
    dot = sum(1 for v in values if _DOT_DECIMAL.match(v.strip()))
    decimal = "," if comma > dot else "."
    thousands = ""
    for value in values:
        match = _GROUPED.match(value.strip())
        if match and match.group(1) != decimal:
            thousands = match.group(1)
            break
    if decimal == "," and not thousands:
        # With a decimal comma a dot can only group thousands (1.250,00).
        thousands = "."
    if thousands == "," and delimiter == ",":
        thousands = ""
    return decimal, thousands


def postgres_format(python_format: str) -> str:
    """The TO_TIMESTAMP pattern for a strptime format (ISO has none: it is CAST)."""
    out, i = [], 0
    while i < len(python_format):
        code = python_format[i:i + 2]
        if code in _PG_CODES:
            out.append(_PG_CODES[code])
            i += 2
        elif python_format[i].isalpha():
            out.append(f'"{python_format[i]}"')
            i += 1
        else:
            out.append(python_format[i])
            i += 1
    return "".join(out)


def parse_iso(value: str) -> datetime | None:
    """The local date and time an ISO 8601 cell gives, in the forms Postgres casts to DATE
    and TIMESTAMP (None otherwise): a date, optionally a time of day (minutes at least), and
    after it optionally an offset, which is checked but not applied (staging converts it)."""
    match = _ISO.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if offset and offset != "Z":
        digits = offset[1:].replace(":", "")
        if int(digits[:2]) > 15 or (len(digits) > 2 and int(digits[2:]) > 59):
            return None
    try:
        return datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                        int(second or 0), int((fraction or "0").ljust(6, "0")))
    except ValueError:
        return None


def is_iso(value: str) -> bool:
    return parse_iso(value) is not None


def parses(value: str, python_format: str) -> bool:
    if python_format == ISO:
        return is_iso(value)
    try:
        datetime.strptime(value, python_format)
    except ValueError:
        return False
    return True


def date_candidates(country: str) -> list[str]:
    """Formats in the order they are preferred when several read every sample value."""
    dates = [*_DAY_FIRST, *_MONTH_FIRST] if country != "US" else [*_MONTH_FIRST, *_DAY_FIRST]
    dates += list(_YEAR_FIRST)
    return [ISO] + [d + t for d in dates for t in _TIMES]


def detect_date_format(values: Sequence[str], country: str) -> str | None:
    """The preferred format reading the most sample values (None when none reads any)."""
    values = [v.strip() for v in values if v.strip()]
    if not values:
        return ISO
    best, best_count = None, 0
    # Only formats that read one of the first values are counted over the whole sample.
    head = values[:5]
    candidates = date_candidates(country)
    survivors = [c for c in candidates if any(parses(v, c) for v in head)] or candidates
    for candidate in survivors:
        count = sum(1 for v in values if parses(v, candidate))
        if count > best_count:
            best, best_count = candidate, count
            if count == len(values):
                break
    return best


def date_format_entry(python_format: str) -> dict[str, str | None]:
    return {"python": python_format,
            "postgres": None if python_format == ISO else postgres_format(python_format)}


def typed_fields(entity: str, columns: dict[str, str]) -> list[tuple[Field, str]]:
    """The entity's fields that have a column in the file (not a constant), with it."""
    return [(f, columns[f.name]) for f in ENTITIES[entity]
            if f.name in columns and not columns[f.name].startswith("=")]
