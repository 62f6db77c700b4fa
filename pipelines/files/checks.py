"""Which rows of a file can be read: required fields present, numbers and dates parseable.

The staging models cast every mapped field with the file's dialect; a value they could not
cast would fail the whole build, so such rows are stopped here and quarantined with a reason.

Checks remember what they have accepted, which keeps them cheap on million-row files: numbers
and dates repeat a lot (prices, days), so the cell itself is remembered; timestamps rarely
repeat, so their date and their time of day are remembered apart. Memory stays bounded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from goalpost.core.canonical import Field
from goalpost.pipelines.files.dialect import ISO, Dialect, is_iso

_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
MAX_REMEMBERED = 50_000
_TIME_CODES = ("%H", "%I", "%M", "%S", "%f", "%p")


def _remember(seen: set[str], value: str) -> None:
    if len(seen) >= MAX_REMEMBERED:
        seen.clear()
    seen.add(value)


@dataclass
class Check:
    """One field's check on one column.

    `accepted` (numbers, dates) is the set of cells already accepted; `timestamps` remembers
    readable timestamps by parts; text fields have neither and only need to be filled when
    required.
    """

    index: int
    field: Field
    column: str
    required: bool
    validate: Callable[[str], str | None] | None = None
    accepted: set[str] | None = None
    timestamps: TimestampCache | None = None

    def reason(self, value: str) -> str | None:
        """None when the cell is readable, else why not (and remember readable cells)."""
        stripped = value.strip()
        # A blank text cell counts as filled (staging reads it as NULL), as in the fast path.
        if not stripped if self.validate is not None else not value:
            if self.required:
                return f"column {self.column!r} ({self.field.name}) is empty but required"
            return None
        if self.validate is None:
            return None
        problem = self.validate(stripped)
        if problem is not None:
            return f"column {self.column!r} ({self.field.name}): {value!r} {problem}"
        if self.accepted is not None:
            _remember(self.accepted, value)
        elif self.timestamps is not None:
            if self.timestamps.separator == " " and stripped[10:11] == "T":
                self.timestamps.separator = "T"  # ISO 8601 written with a T
            self.timestamps.learn(value)
        return None


def number_validator(decimal: str, thousands: str) -> Callable[[str], str | None]:
    def validate(value: str) -> str | None:
        text = value.replace(thousands, "") if thousands else value
        if decimal != ".":
            text = text.replace(decimal, ".")
        if _NUMBER.match(text):
            return None
        mark = "decimal comma" if decimal == "," else "decimal point"
        return f"is not a number (this file uses a {mark})"

    return validate


def date_validator(python_format: str) -> Callable[[str], str | None]:
    if python_format == ISO:
        def validate_iso(value: str) -> str | None:
            return None if is_iso(value) else "is not an ISO 8601 date (YYYY-MM-DD)"

        return validate_iso

    def validate(value: str) -> str | None:
        try:
            datetime.strptime(value, python_format)
        except ValueError:
            return f"is not a date in the file's format {python_format}"
        return None

    return validate


@dataclass
class TimestampCache:
    """Readable timestamps remembered as their date and their time of day, both few in
    number: a cell whose two parts were each seen in a readable cell is readable."""

    separator: str
    dates: set[str] = field(default_factory=set)
    times: set[str] = field(default_factory=set)

    def learn(self, value: str) -> None:
        day, _, clock = value.partition(self.separator)
        _remember(self.dates, day)
        _remember(self.times, clock)

    def knows(self, value: str) -> bool:
        day, _, clock = value.partition(self.separator)
        return day in self.dates and clock in self.times


def _time_separator(python_format: str) -> str | None:
    """The character between the date and the time of day in this format (None when the
    format has no time part or no separator); ISO formats may use either."""
    if python_format == ISO:
        return " "
    cut = min((python_format.find(code) for code in _TIME_CODES if code in python_format),
              default=-1)
    if cut <= 0 or python_format[cut - 1].isalnum() or python_format[cut - 1] == "%":
        return None
    return python_format[cut - 1]


def build_checks(dialect: Dialect, fields: list[tuple[Field, str]]) -> list[Check]:
    """The checks a row of this file must pass."""
    position = {name: index for index, name in enumerate(dialect.header)}
    checks: list[Check] = []
    for f, column in fields:
        check = Check(position[column], f, column, f.required)
        if f.type in ("number", "integer"):
            check.validate = number_validator(dialect.decimal, dialect.thousands)
            check.accepted = set() if f.required else {""}
        elif f.type in ("date", "timestamp"):
            fmt = dialect.date_formats.get(f.name, {}).get("python") or ISO
            check.validate = date_validator(fmt)
            separator = _time_separator(fmt) if f.type == "timestamp" else None
            if separator is None:
                check.accepted = set() if f.required else {""}
            else:
                check.timestamps = TimestampCache(separator)
        elif not f.required:
            continue
        checks.append(check)
    return checks
