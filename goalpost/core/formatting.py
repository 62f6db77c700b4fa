"""Numbers, money, percentages and dates as people read them, in a given language.

One formatter, Babel (CLDR's data), for everything an owner reads: the alert emails, the
preview report's cards and the weekly review. `locale` is a language tag such as "en" or
"fr_FR"; English is the default.
"""

from __future__ import annotations

from copy import copy
from datetime import date
from decimal import Decimal
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_interval, format_skeleton
from babel.numbers import (
    NumberPattern,
    format_compact_currency,
    format_compact_decimal,
    format_currency,
)

DEFAULT_LOCALE = "en"
Number = int | float | Decimal


def check_locale(tag: str) -> str:
    """The tag, or ValueError when CLDR has no such language (e.g. 'fr', 'fr_FR', 'de')."""
    try:
        Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        raise ValueError(f"unknown language {tag!r} (use a code such as en, fr, de, es, it)"
                         ) from None
    return tag.replace("-", "_")


def number(value: Number, locale: str = DEFAULT_LOCALE, *, decimals: int | None = None) -> str:
    """12, 12.50, 1,234.57 (en) or 1 234,57 (fr): whole numbers without decimals, others with
    two, unless `decimals` says how many."""
    if decimals is None:
        decimals = 0 if float(value) == int(float(value)) else 2
    return _apply(Locale.parse(locale).decimal_formats[None], value, locale, decimals)


def money(value: Number, currency: str, locale: str = DEFAULT_LOCALE, *,
          whole: bool = False) -> str:
    """€1,234.50 (en), 1 234,50 € (fr), with the currency's own minor unit (¥1,234); `whole`
    drops the minor unit (€1,235)."""
    if not whole:
        return format_currency(value, currency, locale=locale)
    pattern = Locale.parse(locale).currency_formats["standard"]
    return _apply(pattern, value, locale, 0, currency=currency)


def percent(fraction: Number, locale: str = DEFAULT_LOCALE, *, decimals: int = 1) -> str:
    """0.125 as 12.5% (en) or 12,5 % (fr)."""
    return _apply(Locale.parse(locale).percent_formats[None], fraction, locale, decimals)


def compact(value: Number, locale: str = DEFAULT_LOCALE) -> str:
    """1.2K, 3.4M (en), 1,2 k (fr): for axes and tight cells."""
    return format_compact_decimal(value, locale=locale, fraction_digits=1)


def compact_money(value: Number, currency: str, locale: str = DEFAULT_LOCALE) -> str:
    """€1.2K (en), 1,2 k € (fr)."""
    return format_compact_currency(value, currency, locale=locale, fraction_digits=1)


def signed(text: str, value: Number) -> str:
    """A formatted change with its sign: +€350.00, -2.5%."""
    return text if float(value) < 0 or text.startswith(("+", "-")) else "+" + text


def long_date(day: date, locale: str = DEFAULT_LOCALE) -> str:
    """Monday, December 7, 2026 (en); lundi 7 décembre 2026 (fr)."""
    return format_date(day, format="full", locale=locale)


def medium_date(day: date, locale: str = DEFAULT_LOCALE) -> str:
    """Dec 7, 2026 (en); 7 déc. 2026 (fr)."""
    return format_date(day, format="medium", locale=locale)


def date_range(start: date, end: date, locale: str = DEFAULT_LOCALE) -> str:
    """Dec 1 – 31, 2026 (en); 1–31 déc. 2026 (fr): CLDR's interval for the two days."""
    return format_interval(start, end, "yMMMd", locale=locale)


def month_year(day: date, locale: str = DEFAULT_LOCALE) -> str:
    """December 2026 (en); décembre 2026 (fr)."""
    return format_skeleton("yMMMM", day, locale=locale)


def plain(value: Any, locale: str = DEFAULT_LOCALE) -> str:
    """Any value for a sentence: numbers formatted, everything else as text."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return str(value)
    return number(value, locale)


def _apply(pattern: NumberPattern, value: Number, locale: str, decimals: int,
           **extra: Any) -> str:
    """The locale's pattern with exactly `decimals` fraction digits."""
    fixed = copy(pattern)
    fixed.frac_prec = (decimals, decimals)
    return fixed.apply(Decimal(str(value)), Locale.parse(locale), currency_digits=False,
                       **extra)
