"""The owner's language for what Goalpost emails (the review, the alert digests): gettext
message catalogs, read with Babel.

The English text is in the code, marked with `gettext`, `ngettext` and `pgettext` calls on a
Language; the catalogs are `goalpost/alerts/locales/<language>/LC_MESSAGES/goalpost.po`, made
from the template `goalpost.pot` that Babel extracts from the code:

    pybabel extract -F goalpost/alerts/locales/babel.cfg --no-location --sort-output \\
        -o goalpost/alerts/locales/goalpost.pot .
    pybabel update -i goalpost/alerts/locales/goalpost.pot -d goalpost/alerts/locales \\
        -D goalpost --no-fuzzy-matching

(tests/test_i18n.py fails when the template no longer matches the code, or when the French
catalog lacks a string). A string a catalog does not translate reads in English, gettext's
fallback: `untranslated()` lists them, and `goalpost client validate` says how many there are
for the client's language. Numbers, money and dates are not in the catalogs: they are
formatted for the locale by goalpost.core.formatting (CLDR).
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from typing import IO, Any

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from ruamel.yaml import YAML

from goalpost.core.formatting import DEFAULT_LOCALE
from goalpost.core.metrics import Metric, standard_metrics

DOMAIN = "goalpost"


def _locales() -> Traversable:
    return resources.files("goalpost.alerts") / "locales"


def _catalog_path(language: str) -> Traversable | None:
    """The .po file for a language tag (fr_FR falls back to fr), None when there is none."""
    parsed = Locale.parse(language.replace("-", "_"))
    for name in (str(parsed), parsed.language):
        path = _locales() / name / "LC_MESSAGES" / f"{DOMAIN}.po"
        if path.is_file():
            return path
    return None


@cache
def _read(language: str) -> Catalog | None:
    path = _catalog_path(language)
    if path is None:
        return None
    with path.open("rb") as handle:
        return read_po(handle, locale=Locale.parse(language.replace("-", "_")).language,
                       domain=DOMAIN)


@cache
def template() -> Catalog:
    """Every string there is to translate (goalpost.pot)."""
    with (_locales() / f"{DOMAIN}.pot").open("rb") as handle:
        return read_po(handle, domain=DOMAIN)


@cache
def _translations(language: str) -> gettext.NullTranslations:
    catalog = _read(language)
    if catalog is None:
        return gettext.NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@dataclass(frozen=True)
class Language:
    """Text in one language: `locale` also formats numbers and dates (goalpost.core.formatting)."""

    locale: str = DEFAULT_LOCALE

    def gettext(self, message: str) -> str:
        return _translations(self.locale).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return _translations(self.locale).ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        return _translations(self.locale).pgettext(context, message)

    def metric_label(self, metric: Metric) -> str:
        """A metric's label: a standard one translated, a client's own as its YAML writes it
        (the consultant writes it in the owner's language)."""
        standard = standard_metrics().get(metric.name)
        if standard is not None and standard.label == metric.label:
            return self.pgettext("metric", metric.label)
        return metric.label


ENGLISH = Language()


def language(tag: str | None) -> Language:
    """The Language of a client's `language:` (English when None)."""
    return Language(tag or DEFAULT_LOCALE)


def _translated(catalog: Catalog, message_id: str | tuple[str, ...],
                context: str | None) -> bool:
    found = catalog.get(message_id, context=context)
    if found is None or found.fuzzy:
        return False
    strings = found.string if isinstance(found.string, tuple | list) else (found.string,)
    return all(strings)


def untranslated(tag: str) -> list[str]:
    """The strings that read in English in language `tag` (none for English)."""
    if Locale.parse(tag.replace("-", "_")).language == "en":
        return []
    catalog = _read(tag)
    missing = []
    for message in template():
        if not message.id:
            continue
        if catalog is None or not _translated(catalog, message.id, message.context):
            text = message.id if isinstance(message.id, str) else message.id[0]
            missing.append(f"{message.context}: {text}" if message.context else text)
    return missing


def catalog_languages() -> list[str]:
    """The languages with a catalog, English first."""
    found = sorted(entry.name for entry in _locales().iterdir()
                   if entry.is_dir() and (entry / "LC_MESSAGES" / f"{DOMAIN}.po").is_file())
    return [DEFAULT_LOCALE, *found]


def extract_metric_labels(fileobj: IO[bytes], keywords: Any, comment_tags: Any,
                          options: Any) -> Iterator[tuple[int, str, tuple[str, str], list[str]]]:
    """A Babel extraction method (babel.cfg) for goalpost/core/metrics/standard.yaml: the
    standard metrics' labels, in the context `metric`, as Words.label translates them."""
    for spec in (YAML(typ="safe").load(fileobj.read()) or {}).values():
        yield 0, "pgettext", ("metric", spec["label"]), []
