"""ISO 3166 countries (alpha-2 codes with their English names, from Babel's CLDR data).

Currencies are in goalpost.core.money (ISO 4217).
"""

from __future__ import annotations

from functools import cache

from babel import Locale

# CLDR territories that are not countries: the European Union, the euro area, the United
# Nations, "outlying Oceania", pseudo-locales and "unknown region".
_NOT_COUNTRIES = {"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"}


@cache
def countries() -> dict[str, str]:
    """{ISO 3166 alpha-2 code: English name}."""
    return {code: name for code, name in Locale("en").territories.items()
            if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES}


@cache
def _country_words() -> frozenset[str]:
    known = countries()
    return frozenset({code.casefold() for code in known}
                     | {name.casefold() for name in known.values()})


def is_country(value: str) -> bool:
    """Whether a cell names a country: an ISO 3166 alpha-2 code or its English name, in any
    case."""
    return value.strip().casefold() in _country_words()
