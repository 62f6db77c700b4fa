"""Which rows of a file can be loaded: the contract between the loader and the staging models.

The staging models cast every mapped field with the file's dialect (`NULLIF(BTRIM(cell), '')`,
then NUMERIC, BIGINT, DATE or TIMESTAMP) and audit the sales lines (required fields not NULL,
no negative quantity that was paid for). A value they could not cast, or a row an audit
refuses, would fail every build from then on, so such rows are stopped here and quarantined
with a reason: each check accepts only what Postgres reads the same way (ASCII digits, the
ISO 8601 forms Postgres takes, numbers within NUMERIC's and BIGINT's ranges). Nothing the
loader accepts can break staging.

Some rows can be read but are probably wrong (a sale dated after tomorrow): they are
quarantined as `Suspect`, and may be released into raw by a person who knows better. A date
that reads only in the other day/month order is a `WrongDateOrder`: the file's date format
was detected wrong, so the whole file is refused.

Checks remember what they have accepted, which keeps them cheap on million-row files: numbers
and dates repeat a lot (prices, days), so the cell itself is remembered; timestamps rarely
repeat, so their date and their time of day are remembered apart. Memory stays bounded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from goalpost.core.canonical import ENTITIES, Field
from goalpost.core.countries import is_country
from goalpost.pipelines.files.dialect import ISO, Dialect, parse_iso

MAX_REMEMBERED = 50_000
# Business figures have at most this many digits before the decimal point (a quadrillion):
# more is a corrupt cell (1e400000), not a quantity or an amount.
MAX_INTEGER_DIGITS = 15
MAX_DECIMALS = 1000
BIGINT = (-(2**63), 2**63 - 1)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,6})?")
_TIME_CODES = ("%H", "%I", "%M", "%S", "%f", "%p")


class Suspect(str):
    """Why a readable row is probably wrong: quarantined, and releasable by a person."""


class WrongDateOrder(str):
    """A date that reads only with day and month swapped: the file's format is wrong."""


def _remember(seen: set[str], value: str) -> None:
    if len(seen) >= MAX_REMEMBERED:
        seen.clear()
    seen.add(value)


def blank(value: str) -> bool:
    """Whether staging reads the cell as NULL: `NULLIF(BTRIM(cell), '')` trims spaces only."""
    return not value.strip(" ")


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
        stripped = value.strip(" ")
        if not stripped:
            if self.required:
                return f"column {self.column!r} ({self.field.name}) is empty but required"
            return None
        if self.validate is None:
            return None
        problem = self.validate(stripped)
        if problem is not None:
            return type(problem)(f"column {self.column!r} ({self.field.name}): {value!r} "
                                 f"{problem}")
        if self.accepted is not None:
            _remember(self.accepted, value)
        elif self.timestamps is not None:
            if self.timestamps.separator == " " and stripped[10:11] == "T":
                self.timestamps.separator = "T"  # ISO 8601 written with a T
            self.timestamps.learn(value)
        return None


def parse_number(value: str, decimal: str, thousands: str) -> Decimal | None:
    """The number a trimmed cell holds, read as staging reads it (thousands separators
    removed, the decimal mark made a point), or None when Postgres would not read it."""
    text = value.replace(thousands, "") if thousands else value
    if decimal != ".":
        text = text.replace(decimal, ".")
    if not _NUMBER.fullmatch(text):
        return None
    return Decimal(text)


def number_validator(decimal: str, thousands: str, *,
                     integer: bool = False) -> Callable[[str], str | None]:
    mark = "decimal comma" if decimal == "," else "decimal point"

    def validate(value: str) -> str | None:
        number = parse_number(value, decimal, thousands)
        if number is None:
            return f"is not a number (this file uses a {mark}, and digits 0-9)"
        if number and number.adjusted() >= MAX_INTEGER_DIGITS:
            return (f"is too large for a quantity or an amount (more than "
                    f"{MAX_INTEGER_DIGITS} digits before the decimal point)")
        if -number.as_tuple().exponent > MAX_DECIMALS:  # type: ignore[operator]
            return f"has more than {MAX_DECIMALS} decimals"
        if integer and not BIGINT[0] <= round(number) <= BIGINT[1]:
            return "is out of the range of a whole number"
        return None

    return validate


def choice_validator(choices: tuple[str, ...]) -> Callable[[str], str | None]:
    """A text cell that must be one of `choices`, read as staging reads it (LOWER(TRIM()))."""
    allowed = frozenset(choices)

    def validate(value: str) -> str | None:
        if value.isascii() and value.lower() in allowed:
            return None
        return f"is not one of {', '.join(choices)}"

    return validate


def _strptime(value: str, python_format: str) -> datetime | None:
    try:
        return datetime.strptime(value, python_format)
    except ValueError:
        return None


def swapped_format(python_format: str) -> str | None:
    """The format with day and month swapped (%d/%m/%Y -> %m/%d/%Y), None without both."""
    if python_format == ISO or "%d" not in python_format or "%m" not in python_format:
        return None
    return python_format.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def date_validator(python_format: str, latest: date | None) -> Callable[[str], str | None]:
    """A date or timestamp cell in the file's format; with `latest`, a date after it is
    Suspect (a sale cannot lie ahead of the load)."""
    swapped = swapped_format(python_format)
    expected = ("an ISO 8601 date (YYYY-MM-DD, optionally THH:MM[:SS] and an offset)"
                if python_format == ISO else f"a date in the file's format {python_format}")

    def validate(value: str) -> str | None:
        if not (value.isascii() and value.isprintable()):
            return f"is not {expected}"
        parsed = parse_iso(value) if python_format == ISO else _strptime(value, python_format)
        if parsed is None:
            if swapped and _strptime(value, swapped) is not None:
                return WrongDateOrder(f"reads only as {swapped}, not as the file's format "
                                      f"{python_format}")
            return f"is not {expected}"
        if latest is not None and parsed.date() > latest:
            return Suspect(f"is in the future (after {latest - timedelta(days=1)}): a typo, "
                           "or a date read in the wrong format")
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


RowRule = Callable[[list[str]], str | None]


def _paid_negative_rule(dialect: Dialect, position: dict[str, int]) -> RowRule | None:
    """Sales lines: a negative quantity that brought money in (a positive total, given or
    quantity x unit_price) is a sign error, which the staging audit refuses."""
    columns = dialect.columns
    quantity = position.get(columns.get("quantity", ""))
    if quantity is None:
        return None
    total = position.get(columns.get("line_total", ""))
    price = position.get(columns.get("unit_price", ""))
    if total is None and price is None:
        return None
    decimal, thousands = dialect.decimal, dialect.thousands

    def number(row: list[str], index: int | None) -> Decimal | None:
        if index is None or blank(row[index]):
            return None
        return parse_number(row[index].strip(" "), decimal, thousands)

    def rule(row: list[str]) -> str | None:
        if row[quantity].lstrip(" ")[:1] != "-":
            return None
        count = number(row, quantity)
        amount = number(row, total)
        if amount is None and count is not None:
            unit = number(row, price)
            amount = None if unit is None else count * unit
        if count is not None and count < 0 and amount is not None and amount > 0:
            return (f"quantity {row[quantity].strip()} was paid for (total {amount}): a "
                    "negative quantity is goods coming back, with money going back; fix the "
                    "sign in the export")
        return None

    return rule


def _derivation_rules(dialect: Dialect, fields: list[tuple[Field, str]],
                      position: dict[str, int]) -> list[RowRule]:
    """A required field computed when its cell is empty (line_total = quantity x unit_price)
    needs the cells it is computed from on those rows."""
    rules: list[RowRule] = []
    for f, column in fields:
        if not (f.required and f.derived_from):
            continue
        sources = [(name, dialect.columns[name]) for name in f.derived_from
                   if name in dialect.columns and not dialect.columns[name].startswith("=")]
        if len(sources) != len(f.derived_from):
            continue
        index = position[column]
        needed = [(position[c], name, c) for name, c in sources]

        def rule(row: list[str], index: int = index, needed: list = needed,
                 f: Field = f, column: str = column) -> str | None:
            if not blank(row[index]):
                return None
            empty = [f"{c!r} ({name})" for i, name, c in needed if blank(row[i])]
            if empty:
                return (f"column {column!r} ({f.name}) is empty and cannot be computed: "
                        f"{', '.join(empty)} empty too")
            return None

        rules.append(rule)
    return rules


@dataclass
class ValueTally:
    """A column whose values are kept as written but should name something known (a
    country): the others are counted, for a warning of the run."""

    index: int
    field: Field
    column: str
    known: Callable[[str], bool]
    good: set[str] = field(default_factory=set)
    unknown: dict[str, int] = field(default_factory=dict)

    def observe(self, cell: str) -> None:
        if cell in self.good:
            return
        if blank(cell) or self.known(cell):
            _remember(self.good, cell)
        elif cell in self.unknown or len(self.unknown) < MAX_REMEMBERED:
            self.unknown[cell] = self.unknown.get(cell, 0) + 1

    def warning(self) -> str | None:
        if not self.unknown:
            return None
        worst = sorted(self.unknown.items(), key=lambda item: (-item[1], item[0]))
        shown = ", ".join(f"{value.strip()!r} ({count:,} rows)" for value, count in worst[:5])
        more = f" and {len(worst) - 5:,} more" if len(worst) > 5 else ""
        return (f"column {self.column!r} ({self.field.name}): {len(worst):,} value(s) are "
                f"neither ISO 3166 codes nor English country names: {shown}{more}; kept as "
                "written (fix them in the export to count them under their country)")


@dataclass
class FileChecks:
    """What the rows of one file are held to: cell checks, whole-row rules (run once the
    cells pass) and the columns whose unknown values are only reported."""

    cells: list[Check]
    rows: list[RowRule]
    tallies: list[ValueTally]


def build_checks(dialect: Dialect, entity: str, fields: list[tuple[Field, str]], *,
                 today: date | None = None) -> FileChecks:
    """The checks a row of this file must pass. `today` (default: the machine's) bounds
    past-only dates, with a day's grace for time zones ahead and exports made late in the
    day."""
    latest = (today or datetime.now().date()) + timedelta(days=1)
    position = {name: index for index, name in enumerate(dialect.header)}
    mapped = {f.name for f, _ in fields}
    checks: list[Check] = []
    for f, column in fields:
        required = f.required
        if f.derived_from and all(name in mapped for name in f.derived_from):
            required = False  # an empty cell is computed (the derivation rule checks it)
        needed_by = [g for g in ENTITIES[entity] if g.required and f.name in g.derived_from
                     and g.name not in dialect.columns]
        required = required or bool(needed_by)
        check = Check(position[column], f, column, required)
        if f.type in ("number", "integer"):
            check.validate = number_validator(dialect.decimal, dialect.thousands,
                                              integer=f.type == "integer")
            check.accepted = set() if required else {""}
        elif f.type in ("date", "timestamp"):
            fmt = dialect.date_formats.get(f.name, {}).get("python") or ISO
            check.validate = date_validator(fmt, latest if f.past_only else None)
            separator = _time_separator(fmt) if f.type == "timestamp" else None
            if separator is None:
                check.accepted = set() if required else {""}
            else:
                check.timestamps = TimestampCache(separator)
        elif f.choices:
            check.validate = choice_validator(f.choices)
            check.accepted = set() if required else {""}
        elif not required:
            continue
        checks.append(check)
    rules = _derivation_rules(dialect, fields, position)
    paid = _paid_negative_rule(dialect, position)
    if paid is not None:
        rules.append(paid)
    tallies = [ValueTally(position[column], f, column, is_country)
               for f, column in fields if f.name == "country"]
    return FileChecks(checks, rules, tallies)


def constant_problems(entity: str, columns: dict[str, str], *,
                      today: date | None = None) -> list[str]:
    """Why the constants a stream gives fields (`location_id: "=online"`) cannot be read as
    their fields' types: staging casts a constant on every row, so one it cannot read would
    fail every build. Numbers take a decimal point, dates ISO 8601."""
    latest = (today or datetime.now().date()) + timedelta(days=1)
    problems = []
    for f in ENTITIES[entity]:
        given = columns.get(f.name, "")
        if not given.startswith("="):
            continue
        value = given[1:].strip(" ")
        if f.type in ("number", "integer"):
            validate = number_validator(".", "", integer=f.type == "integer")
        elif f.type in ("date", "timestamp"):
            validate = date_validator(ISO, latest if f.past_only else None)
        elif f.choices:
            validate = choice_validator(f.choices)
        else:
            validate = None
        if not value and (f.required or validate is not None):
            problems.append(f"the constant {f.name}: {given!r} is empty: give a value after "
                            "the `=`, or map a column")
        elif value and validate is not None and (reason := validate(value)) is not None:
            problems.append(f"the constant {f.name}: {given!r} {reason}")
    return problems
