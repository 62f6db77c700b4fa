"""Currencies by ISO 4217: which codes exist and how many digits their minor unit has.

One maintained source, the `iso4217` package (the standard's own tables): vendor APIs send
integer minor units (Square's cents, yen without decimals, Kuwaiti fils in thousandths), and
converting them needs the standard's exponent, not the display precision of a locale.
"""

from __future__ import annotations

from functools import cache

import iso4217


@cache
def _currencies() -> dict[str, iso4217.Currency]:
    return {currency.code: currency for currency in iso4217.Currency}


def check_currency(code: str) -> str:
    """The code in upper case, or ValueError naming it when ISO 4217 has no such currency."""
    upper = str(code).strip().upper()
    if upper not in _currencies():
        raise ValueError(f"{code!r} is not an ISO 4217 currency code (e.g. EUR, GBP, USD)")
    return upper


def minor_unit_digits(code: str) -> int:
    """Digits after the decimal point of the currency's minor unit (2 when ISO says none)."""
    exponent = _currencies()[check_currency(code)].exponent
    return 2 if exponent is None else exponent


def codes_by_digits() -> dict[int, list[str]]:
    """Every currency with a minor unit other than hundredths, by its number of digits."""
    grouped: dict[int, list[str]] = {}
    for code, currency in sorted(_currencies().items()):
        if currency.exponent is not None and currency.exponent != 2:
            grouped.setdefault(currency.exponent, []).append(code)
    return grouped
