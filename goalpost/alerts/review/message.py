"""The review as an email (a text part, an HTML part and its charts inline) and as a page.

The HTML is one column at most 600 pixels wide that narrows with the screen: no table, no
fixed width wider than a phone (charts are images that scale down), inline styles only (mail
readers drop style sheets), long words allowed to break. The page (`goalpost review --out`)
is the same HTML with the charts as data URIs, so it opens offline or as an attachment.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import textwrap
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from babel.dates import format_date

from goalpost.alerts.i18n import Language
from goalpost.alerts.review import charts
from goalpost.alerts.review.figures import Figures
from goalpost.alerts.review.writing import Document, Section, Words
from goalpost.core import formatting

TEXT_WIDTH = 76
FONT = "Helvetica,Arial,sans-serif"


@dataclass(frozen=True)
class Chart:
    key: str
    png: bytes
    alt: str


def draw_charts(figures: Figures, document: Document, language: Language) -> list[Chart]:
    """The charts the document's sections ask for (those there is data for)."""
    words = Words(language, figures.client.currency)
    _ = language.gettext
    week = figures.period.kind == "week"
    wanted = {s.chart for s in document.sections if s.chart}

    def axis(value: float) -> str:
        headline = figures.headline
        if headline is not None and headline.metric.unit == "currency":
            return formatting.compact_money(value, figures.client.currency, language.locale)
        return formatting.compact(value, language.locale)

    out = []
    headline = figures.headline
    if "daily" in wanted and headline is not None:
        labels = (_("This week"), _("The week before")) if week else \
            (_("This month"), _("The month before"))
        png = charts.daily(
            figures.daily,
            (lambda day: format_date(day, "EEE", locale=language.locale)) if week
            else (lambda day: str(day.day)), axis, labels)
        if png:
            out.append(Chart("daily", png, _("{metric} per day").format(
                metric=words.label(headline.metric))))
    split = next(iter(figures.splits.get("previous", [])), None)
    if "split" in wanted and split is not None:
        top = split.children(split.metric.name)
        before, now = (_("Week before"), _("This week")) if week else \
            (_("Month before"), _("This month"))
        out.append(Chart("split", charts.split(
            (before, split.baseline), [(words.label(p.metric), p.contribution) for p in top],
            (now, split.current), axis), _("{metric}: what changed").format(
            metric=words.label(split.metric))))
    return out


def _wrap(text: str, indent: str = "") -> list[str]:
    """Lines of at most TEXT_WIDTH, broken at spaces only (never inside Part-Dieu or -€12)."""
    return textwrap.wrap(text, TEXT_WIDTH, subsequent_indent=indent, break_on_hyphens=False,
                         break_long_words=False)


def text(document: Document, client_name: str) -> str:
    """The plain-text part."""
    lines = [f"{client_name}: {document.title}", document.period_text, document.written_text,
             ""]
    for section in document.sections:
        lines += [section.title.upper(), ""]
        if section.sentences:
            lines += _wrap(" ".join(section.sentences)) + [""]
        for line in section.scoreboard:
            lines += _wrap(f"- {line.text}", "  ")
        for item in section.items:
            lines += _wrap(f"- {item}", "  ")
        if section.scoreboard or section.items:
            lines.append("")
    lines.append(document.footer)
    return "\n".join(lines) + "\n"


# A sign before an amount or a number: a line must not break between them ("-" then
# "€522.13" on the next line). The word joiner is invisible and only forbids that break.
_SIGN = re.compile(r"(?<![\w\u2060])([+\-\u2212])(?=[\d€$£¥])")


def _esc(text: str) -> str:
    return _SIGN.sub("\\1\u2060", html.escape(text))


def _section_html(section: Section, images: dict[str, tuple[str, str]]) -> str:
    esc = _esc
    out = [f"<h2 style='font-size:16px;margin:22px 0 8px;padding-bottom:4px;"
           f"border-bottom:1px solid #e4e7eb'>{esc(section.title)}</h2>"]
    if section.sentences:
        out.append(f"<p style='margin:0 0 10px'>{esc(' '.join(section.sentences))}</p>")
    if section.chart in images:
        src, alt = images[section.chart]
        out.append(f"<img src='{esc(src)}' alt='{esc(alt)}' width='{charts.WIDTH_PX}' "
                   f"style='display:block;width:100%;max-width:{charts.WIDTH_PX}px;"
                   "height:auto;margin:4px 0 10px'>")
    for line in section.scoreboard:
        out.append(
            "<div style='padding:6px 0;border-top:1px solid #eef0f2'>"
            f"<div><span style='color:#3e4c59'>{esc(line.label)}</span> "
            f"<b style='white-space:nowrap'>{esc(line.value)}</b></div>"
            f"<div style='font-size:12px;color:#616e7c'>{esc(' · '.join(line.comparisons))}"
            "</div></div>")
    if section.items:
        items = "".join(f"<li style='margin:0 0 6px'>{esc(item)}</li>" for item in section.items)
        out.append(f"<ul style='margin:0 0 10px;padding-left:18px'>{items}</ul>")
    return "".join(out)


def page_html(document: Document, client_name: str,
              images: dict[str, tuple[str, str]]) -> str:
    """The HTML of the email (images: chart key -> (src, alt): cid: or data: URIs)."""
    esc = html.escape
    body = "".join(_section_html(section, images) for section in document.sections)
    lang = document.locale.split("_")[0]
    return (
        f"<!DOCTYPE html><html lang='{esc(lang)}'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(document.subject)}</title></head>"
        "<body style='margin:0;padding:0;background:#f4f5f7'>"
        f"<div style='max-width:600px;margin:0 auto;padding:16px;background:#ffffff;"
        f"font-family:{FONT};font-size:14px;line-height:1.45;color:#1f2933;"
        "overflow-wrap:break-word;word-wrap:break-word'>"
        f"<div style='font-size:12px;color:#616e7c'>{esc(client_name)}</div>"
        f"<h1 style='font-size:20px;margin:2px 0 4px'>{esc(document.title)}</h1>"
        f"<div style='color:#3e4c59'>{esc(document.period_text)}</div>"
        f"<div style='font-size:12px;color:#616e7c'>{esc(document.written_text)}</div>"
        f"{body}"
        f"<p style='font-size:11px;color:#9aa5b1;margin-top:24px'>{esc(document.footer)}</p>"
        "</div></body></html>")


def page(document: Document, client_name: str, drawn: list[Chart]) -> str:
    """The self-contained page: charts as data URIs."""
    images = {c.key: ("data:image/png;base64," + base64.b64encode(c.png).decode(), c.alt)
              for c in drawn}
    return page_html(document, client_name, images)


def message_id(slug: str, period: str, recipient: str) -> str:
    """The same Message-ID for every try of one review to one recipient: a mail reader shows
    a resent copy (after a crash between sending and recording) as the same message."""
    token = hashlib.sha256(f"{slug}|{period}|{recipient}".encode()).hexdigest()[:20]
    return f"<{token}.review.{slug}.{period}@goalpost.local>"


def email(document: Document, *, client_name: str, slug: str, period: str, sender: str,
          recipient: str, drawn: list[Chart], now: datetime) -> EmailMessage:
    """One recipient's email of the review."""
    message = EmailMessage()
    # A line break (from a client's name) would end the header; no-break spaces stay.
    message["Subject"] = re.sub(r"\s*[\r\n]+\s*", " ", document.subject)
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id(slug, period, recipient)
    message["X-Goalpost-Client"] = slug
    message["X-Goalpost-Review"] = period
    message.set_content(text(document, client_name))
    cids = {c.key: f"review-{c.key}-{hashlib.sha256(c.png).hexdigest()[:12]}@goalpost.local"
            for c in drawn}
    message.add_alternative(page_html(document, client_name, {
        c.key: (f"cid:{cids[c.key]}", c.alt) for c in drawn}), subtype="html")
    html_part = message.get_payload()[1]
    for chart in drawn:
        html_part.add_related(chart.png, maintype="image", subtype="png",
                              cid=f"<{cids[chart.key]}>", filename=f"{chart.key}.png")
    # Last: setting the content clears Content-* headers.
    message["Content-Language"] = document.locale.split("_")[0]
    return message

