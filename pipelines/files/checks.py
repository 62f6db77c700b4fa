"""Which rows of a file can be read: required fields present, numbers and dates parseable.

The staging models cast every mapped field with the file's dialect; a value they could not
cast would fail the whole build, so such rows are stopped here and quarantined with a reason.
Checks remember the values they have accepted (cells repeat a lot: prices, dates, shop ids),
which keeps them cheap on million-row files.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from goalpost.canonical import Field
from pipelines.files.dialect import ISO, Dialect, is_iso

_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
MAX_REMEMBERED = 200_000


@dataclass
class Check:
    """One field's check: the column position, what it accepts, and how to say why not."""

    index: int
    field: Field
    column: str
    required: bool
    validate: Callable[[str], str | None] | None
    accepted: set[str] | None

    def reason(self, value: str) -> str | None:
        """None when the cell is readable, else why not (and remember readable cells)."""
        stripped = value.strip()
        if not stripped:
            if self.required:
                return f"column {self.column!r} ({self.field.name}) is empty but required"
            return None
        if self.validate is None:
            return None
        problem = self.validate(stripped)
        if problem is not None:
            return f"column {self.column!r} ({self.field.name}): {value!r} {problem}"
        if self.accepted is not None:
            if len(self.accepted) >= MAX_REMEMBERED:
                self.accepted.clear()
            self.accepted.add(value)
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


def build_checks(dialect: Dialect, fields: list[tuple[Field, str]]) -> list[Check]:
    """The checks a row of this file must pass, typed fields first for cheap rejection."""
    position = {name: index for index, name in enumerate(dialect.header)}
    checks: list[Check] = []
    for f, column in fields:
        validate: Callable[[str], str | None] | None = None
        if f.type in ("number", "integer"):
            validate = number_validator(dialect.decimal, dialect.thousands)
        elif f.type in ("date", "timestamp"):
            fmt = dialect.date_formats.get(f.name, {}).get("python") or ISO
            validate = date_validator(fmt)
        if validate is None and not f.required:
            continue
        accepted = {""} if not f.required else set()
        checks.append(Check(position[column], f, column, f.required, validate,
                            accepted if validate is not None else None))
    return checks
