"""The digest email: everything that fired for one recipient, as text and HTML.

Each item shows what was seen, the value against the threshold and the recent values, as a
small chart (PNG, inline) and as a table for mail readers that hide images. Each item links
to the dashboard that shows it (goalpost.alerts.links); when every item has the same link
(the YAML's `dashboard_url`), it closes the message once instead.

Every message is built with `HEADERS`, the one place header values are made safe: what goes
into a header (a client's name, a rule's summary, a failed run's error with its hint) comes
from YAML, data and error messages, and may hold line breaks.
"""

from __future__ import annotations

import html
import io
import re
from datetime import datetime
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, make_msgid
from typing import Any

from goalpost.alerts.i18n import ENGLISH, Language
from goalpost.core.formatting import plain
from goalpost.core.masking import mask_data

# Charts per email: a digest of fifty low stocks keeps a table for the rest, not fifty images.
MAX_CHARTS = 10
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
SEVERITY_COLOUR = {"critical": "#b00020", "warning": "#b26a00", "info": "#2a5db0"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_SPACES = re.compile(r" {2,}")


def header_value(value: str) -> str:
    """A header value on one line: line breaks and other control characters become spaces
    (a newline would otherwise be refused, or start a header of the sender's choosing).
    Only ASCII spaces are collapsed: the no-break spaces of French punctuation stay."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip(" ")


class _SafeHeaders(EmailPolicy):
    """The default email policy, with every header value set through `header_value`."""

    def header_store_parse(self, name: str, value: object) -> tuple[str, object]:
        if isinstance(value, str):
            value = header_value(value)
        return super().header_store_parse(name, value)


HEADERS = _SafeHeaders()


def chart_png(recent: list[list[Any]], threshold: Any) -> bytes | None:
    """A small line chart of the recent values with the threshold dashed; None when there
    are fewer than two values."""
    if len(recent) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3.2, 1.0), dpi=100)
    axes = figure.add_subplot()
    values = [float(value) for _, value in recent]
    axes.plot(range(len(values)), values, color="#2a5db0", linewidth=1.5, marker="o",
              markersize=2.5)
    if isinstance(threshold, int | float):
        axes.axhline(float(threshold), color="#b00020", linewidth=1, linestyle="--")
    axes.set_xticks([0, len(values) - 1], [str(recent[0][0])[5:], str(recent[-1][0])[5:]])
    axes.tick_params(labelsize=7, length=2)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.tight_layout(pad=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def subject(client_name: str, items: list[dict[str, Any]], lang: Language = ENGLISH
            ) -> str:
    """One item: what it is; several: how many, and of which rules."""
    _ = lang.gettext
    urgent = _("[critical] ") if any(i["severity"] == "critical" for i in items) else ""
    test = _("[test] ") if all(i["reason"] == "test" for i in items) else ""
    if len(items) == 1:
        item = items[0]
        again = _("still: ") if item["reason"] == "reminded" else ""
        return test + urgent + _("{client}: {what}").format(client=client_name,
                                                              what=again + item["summary"])
    rules: dict[str, int] = {}
    for item in _ordered(items):
        rules[item["rule"]] = rules.get(item["rule"], 0) + 1
    named = ", ".join(f"{rule} ({n})" if n > 1 else rule for rule, n in rules.items())
    return test + urgent + _("{client}: {what}").format(
        client=client_name, what=_("{n} alerts: {rules}").format(n=len(items), rules=named))


def _severity(lang: Language, severity: str) -> str:
    _ = lang.gettext
    return {"critical": _("critical"), "warning": _("warning"), "info": _("info")}.get(
        severity, severity)


def _count(lang: Language, n: int) -> str:
    return lang.ngettext("{n} alert", "{n} alerts", n).format(n=n)


def _ordered(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda i: (SEVERITY_ORDER.get(i["severity"], 9), i["rule"],
                                        i["label"]))


def _recent_text(recent: list[list[Any]], locale: str) -> str:
    return ", ".join(f"{str(day)[5:]} {plain(value, locale)}" for day, value in recent)


def shared_link(items: list[dict[str, Any]]) -> str | None:
    """The one link every item has, if they all have the same (else None: links per item)."""
    links = {item.get("dashboard_url") for item in items}
    return links.pop() if len(links) == 1 else None


def _item_link(item: dict[str, Any], dashboard_url: str | None) -> str | None:
    """The item's own link, unless the message's closing link is the same."""
    link = item.get("dashboard_url")
    return link if link and link != dashboard_url else None


def text_body(client_name: str, slug: str, items: list[dict[str, Any]],
              dashboard_url: str | None, lang: Language = ENGLISH) -> str:
    _, locale = lang.gettext, lang.locale
    lines = [_("{client}: {what}").format(client=client_name, what=_count(lang, len(items))),
             ""]
    rule = None
    for item in _ordered(items):
        if item["rule"] != rule:
            rule = item["rule"]
            lines += [_("{rule} ({severity}): {description}").format(
                rule=rule, severity=_severity(lang, item["severity"]),
                description=item["description"])]
        again = _(" (reminder: still the case)") if item["reason"] == "reminded" else ""
        lines.append(f"  - {item['summary']}{again}")
        if item.get("value") is not None and item.get("threshold") is not None:
            lines.append("    " + _("value {value}, threshold {threshold}").format(
                value=plain(item["value"], locale), threshold=plain(item["threshold"], locale)))
        if item.get("recent"):
            lines.append("    " + _("recent: {values}").format(
                values=_recent_text(item["recent"], locale)))
        if item.get("since") and item["reason"] == "reminded":
            lines.append("    " + _("since {time}").format(time=item["since"]))
        if link := _item_link(item, dashboard_url):
            lines.append("    " + _("dashboard: {link}").format(link=link))
    lines.append("")
    if dashboard_url:
        lines.append(_("Dashboard: {link}").format(link=dashboard_url))
    rules = sorted({item["rule"] for item in items})
    lines.append(_("To pause a rule: goalpost alerts snooze {slug} {rule} --until <date> "
                   "(add --key <item> for one item only)").format(slug=slug, rule=rules[0]))
    return "\n".join(lines) + "\n"


def html_body(client_name: str, items: list[dict[str, Any]], dashboard_url: str | None,
              charts: dict[int, str], lang: Language = ENGLISH) -> str:
    esc = html.escape
    _, locale = lang.gettext, lang.locale
    recent_alt, reminder = esc(_("recent values")), esc(_("(reminder: still the case)"))
    opens_text, sent_by = esc(_("Open the dashboard")), esc(_("Sent by Goalpost."))
    heading = esc(_("{client}: {what}").format(client=client_name,
                                               what=_count(lang, len(items))))
    rows = []
    for index, item in enumerate(_ordered(items)):
        colour = SEVERITY_COLOUR.get(item["severity"], "#444")
        recent = item.get("recent") or []
        cells = "".join(f"<td style='padding:0 4px;font-size:11px'>{esc(str(day)[5:])}<br>"
                        f"<b>{esc(plain(value, locale))}</b></td>" for day, value in recent)
        table = (f"<table style='border-collapse:collapse;margin-top:4px'><tr>{cells}</tr>"
                 "</table>") if recent else ""
        image = (f"<img src='cid:{charts[index]}' alt='{recent_alt}' "
                 "width='320' height='100'><br>") if index in charts else ""
        again = (f" <i>{reminder}</i>"
                 if item["reason"] == "reminded" else "")
        link = _item_link(item, dashboard_url)
        opens = (f"<div><a href='{esc(link)}'>{opens_text}</a></div>"
                 if link else "")
        figures = ""
        if item.get("value") is not None and item.get("threshold") is not None:
            figures = "<div>" + esc(_("value {value}, threshold {threshold}")).format(
                value=f"<b>{esc(plain(item['value'], locale))}</b>",
                threshold=f"<b>{esc(plain(item['threshold'], locale))}</b>") + "</div>"
        rows.append(
            f"<tr><td style='padding:8px;border-top:1px solid #ddd;vertical-align:top'>"
            f"<span style='color:{colour};font-weight:bold'>"
            f"{esc(_severity(lang, item['severity']))}</span><br>"
            f"<span style='color:#666'>{esc(item['rule'])}</span></td>"
            f"<td style='padding:8px;border-top:1px solid #ddd'>"
            f"<div><b>{esc(item['summary'])}</b>{again}</div>"
            f"<div style='color:#666;font-size:12px'>{esc(item['description'])}</div>"
            f"{figures}{image}{table}{opens}</td></tr>")
    link = (f"<p><a href='{esc(dashboard_url)}'>{opens_text}</a></p>"
            if dashboard_url else "")
    return (f"<html><body style='font-family:sans-serif'>"
            f"<h2 style='font-size:16px'>{heading}</h2>"
            f"<table style='border-collapse:collapse'>{''.join(rows)}</table>{link}"
            f"<p style='color:#888;font-size:11px'>{sent_by}</p>"
            "</body></html>")


def digest(*, sender: str, recipient: str, client_name: str, slug: str,
           items: list[dict[str, Any]], now: datetime,
           lang: Language = ENGLISH) -> EmailMessage:
    """One email to one recipient grouping `items` (outbox payloads), in `lang`, secrets
    masked."""
    items = mask_data(items)
    dashboard_url = shared_link(items)
    message = EmailMessage(policy=HEADERS)
    message["Subject"] = subject(client_name, items, lang)
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain="goalpost.local")
    message["X-Goalpost-Client"] = slug
    message.set_content(text_body(client_name, slug, items, dashboard_url, lang))
    pictures: dict[int, tuple[str, bytes]] = {}
    for index, item in enumerate(_ordered(items)):
        if len(pictures) >= MAX_CHARTS:
            break
        png = chart_png(item.get("recent") or [], item.get("threshold"))
        if png:
            pictures[index] = (make_msgid(domain="goalpost.local")[1:-1], png)
    message.add_alternative(html_body(client_name, items, dashboard_url,
                                      {i: cid for i, (cid, _) in pictures.items()}, lang),
                            subtype="html")
    html_part = message.get_payload()[1]
    for cid, png in pictures.values():
        html_part.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>",
                              filename="chart.png")
    return message
