"""The owner's language: the message catalogs match the code, French is complete and keeps
every placeholder, the other languages fall back to English (and `client validate` says so),
and numbers, money and dates follow the locale (CLDR through Babel)."""

from __future__ import annotations

import ast
import re
from datetime import date
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file
from babel.messages.pofile import read_po
from click.testing import CliRunner
from pydantic import ValidationError

from goalpost.alerts import i18n
from goalpost.app.cli import cli
from goalpost.core import formatting
from goalpost.core.metrics import standard_metrics
from goalpost.core.registry.models import Client

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ROOT / "goalpost" / "alerts" / "locales"
GETTEXT = {"gettext", "ngettext", "pgettext", "_"}


def sources() -> list[Path]:
    """The Python files babel.cfg extracts from."""
    return [*sorted((ROOT / "goalpost" / "alerts").rglob("*.py")),
            ROOT / "goalpost" / "core" / "registry" / "alert_rules.py"]


def key(message_id: str | tuple[str, ...], context: str | None) -> tuple[str | None, str]:
    return context, message_id if isinstance(message_id, str) else message_id[0]


def test_the_template_is_what_the_code_marks() -> None:
    """goalpost.pot holds exactly the strings the code passes to gettext (regenerate it with
    the pybabel command in goalpost/alerts/i18n.py when this fails)."""
    found = set()
    for path in sources():
        for _line, message, _comments, context in extract_from_file(
                "python", str(path), keywords=DEFAULT_KEYWORDS):
            found.add(key(message, context))
    for _line, _func, message, _comments in i18n.extract_metric_labels(
            (ROOT / "goalpost/core/metrics/standard.yaml").open("rb"), None, None, None):
        found.add(key(message[1], message[0]))
    template = {key(m.id, m.context) for m in i18n.template() if m.id}
    assert found == template, (sorted(found - template)[:5], sorted(template - found)[:5])
    assert {("metric", m.label) for m in standard_metrics().values()} <= template


def test_no_translated_string_hides_in_an_f_string() -> None:
    """Babel does not read inside f-strings: a gettext call there would never be translated."""
    hidden = []
    for path in sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Call) and getattr(
                            inner.func, "attr", getattr(inner.func, "id", None)) in GETTEXT:
                        hidden.append(f"{path.name}:{inner.lineno}")
    assert hidden == []


@pytest.mark.parametrize("language", ["fr", "de", "es", "it"])
def test_translations_keep_every_placeholder(language: str) -> None:
    catalog = read_po((LOCALES / language / "LC_MESSAGES" / "goalpost.po").open("rb"))
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(re.findall(r"\{(\w+)\}", ids[-1]))
        for text in strings:
            if text:
                # A singular may leave the number out ("toutes les heures" for one hour).
                assert set(re.findall(r"\{(\w+)\}", text)) <= wanted | set(
                    re.findall(r"\{(\w+)\}", ids[0])), (message.id, text)
                if len(strings) == 1 or text == strings[-1]:
                    assert set(re.findall(r"\{(\w+)\}", text)) == wanted, (message.id, text)


def test_english_and_french_are_complete_the_others_fall_back() -> None:
    assert i18n.untranslated("en") == [] and i18n.untranslated("fr") == []
    assert i18n.untranslated("fr_FR") == [] and i18n.untranslated("fr-CA") == []
    total = len([m for m in i18n.template() if m.id])
    for language in ("de", "es", "it"):
        missing = i18n.untranslated(language)
        assert 0 < len(missing) < total
        assert "Weekly review" not in missing and "metric: Revenue" not in missing
    assert len(i18n.untranslated("pt")) == total  # no catalog: all English
    german = i18n.language("de")
    assert german.gettext("Weekly review") == "Wochenbericht"
    sentence = "No complete data for {period}."
    assert sentence in i18n.untranslated("de") and german.gettext(sentence) == sentence
    french = i18n.language("fr")
    assert french.gettext(sentence) == "Pas de données complètes pour {period}."
    assert [french.ngettext("{n} alert", "{n} alerts", n) for n in (0, 1, 2)] == [
        "{n} alerte", "{n} alerte", "{n} alertes"]
    revenue = standard_metrics()["revenue"]
    assert french.metric_label(revenue) == "Chiffre d’affaires"
    own = revenue.model_copy(update={"label": "Ventes"})  # the consultant's own label wins
    assert french.metric_label(own) == "Ventes"


def test_numbers_money_and_dates_follow_the_locale() -> None:
    assert formatting.money(1150, "EUR", "fr") == "1\u202f150,00\u00a0€"
    assert formatting.money(1150, "EUR", "en") == "€1,150.00"
    assert formatting.long_date(date(2026, 12, 7), "fr") == "lundi 7 décembre 2026"
    assert formatting.long_date(date(2026, 12, 7), "de") == "Montag, 7. Dezember 2026"
    assert formatting.signed(formatting.percent(0.042, "fr"), 0.042) == "+4,2\u00a0%"
    assert formatting.month_year(date(2026, 11, 3), "fr") == "novembre 2026"
    assert formatting.date_range(date(2026, 12, 1), date(2026, 12, 31), "fr") == \
        "1–31 déc. 2026"


def test_the_language_is_validated_and_validate_names_the_fallbacks(project: Path) -> None:
    assert Client.model_validate({"name": "A", "language": "fr-FR"}).language == "fr_FR"
    assert Client.model_validate({"name": "A"}).language == "en"
    with pytest.raises(ValidationError, match="unknown language 'xx'"):
        Client.model_validate({"name": "A", "language": "xx"})
    (project / "clients" / "berlin.yaml").write_text("name: Berlin\nlanguage: de\n")
    (project / "clients" / "lyon.yaml").write_text("name: Lyon\nlanguage: fr\n")
    (project / "clients" / "bad.yaml").write_text("name: Bad\nlanguage: klingon\n")
    done = CliRunner().invoke(cli, ["client", "validate"])
    assert done.exit_code == 2
    missing = len(i18n.untranslated("de"))
    assert (f"language de: {missing} strings of the review and alert emails read in English"
            in done.output)
    assert "ok       lyon.yaml\n" in done.output and "language fr" not in done.output
    assert "clients/bad.yaml:2: language: unknown language 'klingon'" in done.output
