"""The review in words: the figures (goalpost.alerts.review.figures) as sections of sentences
in the owner's language, with numbers, money and dates formatted for its locale.

Every sentence states figures: the scoreboard gives every metric with data in one line each,
the change split is told only when the headline moved (by MOVED_PCT or more), a section
without facts is left out, and a comparison the data cannot make says so ("no data for the
week before") rather than showing zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from babel.lists import format_list

from goalpost.alerts.i18n import Language
from goalpost.alerts.review.figures import (
    AnomalyEvent,
    DriverPart,
    Figures,
    GoalFigures,
    MetricFigures,
    Mover,
    Split,
)
from goalpost.core import formatting
from goalpost.core.metrics import Metric, standard_metrics

# A change smaller than this (in %, against the period before and a year before) is not news.
MOVED_PCT = 2.0
# A driver's own drivers are told when it explains at least this share of the change.
NESTED_SHARE = 0.25
# The slices named behind an anomaly, per dimension (channels, products, ...).
CONTRIBUTORS_PER_DIMENSION = 2


@dataclass
class ScoreLine:
    """One metric of the scoreboard: its value and how it compares."""

    metric: str
    label: str
    value: str
    comparisons: list[str]
    text: str  # all of it on one line, for the text part


@dataclass
class Section:
    key: str
    title: str
    sentences: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    scoreboard: list[ScoreLine] = field(default_factory=list)
    chart: str | None = None  # "daily" or "split": drawn by goalpost.alerts.review.charts


@dataclass
class Document:
    locale: str
    subject: str
    title: str
    period_text: str
    written_text: str
    sections: list[Section]
    footer: str


class Words:
    """Numbers, money, dates and labels in one language and currency."""

    def __init__(self, language: Language, currency: str) -> None:
        self.language, self.currency, self.locale = language, currency, language.locale
        self._ = language.gettext

    def money(self, value: float) -> str:
        return formatting.money(round(value, 2), self.currency, self.locale)

    def signed_money(self, value: float) -> str:
        return formatting.signed(self.money(value), round(value, 2))

    def percent(self, fraction: float, decimals: int = 1) -> str:
        return formatting.percent(fraction, self.locale, decimals=decimals)

    def signed_percent(self, fraction: float) -> str:
        return formatting.signed(self.percent(fraction), round(fraction, 3))

    def number(self, value: float, decimals: int | None = None) -> str:
        return formatting.number(value, self.locale, decimals=decimals)

    def day(self, value: date) -> str:
        return formatting.long_date(value, self.locale)

    def value(self, metric: Metric, value: float) -> str:
        """A metric's value in its unit."""
        if metric.unit == "currency":
            return self.money(value)
        if metric.unit == "percent":
            return self.percent(value / 100)
        if metric.unit == "ratio":
            return self.number(value, 2)
        if metric.unit == "days":
            return self.number(value, 1)
        return self.number(value, 0 if float(value).is_integer() else 1)

    def signed_value(self, metric: Metric, value: float) -> str:
        text = self.value(metric, abs(value))
        return ("-" if value < 0 else "+") + text

    def label(self, metric: Metric) -> str:
        return self.language.metric_label(metric)

    def lower_label(self, metric: Metric) -> str:
        text = self.label(metric)
        return text[:1].lower() + text[1:] if text[1:2].islower() else text

    def join(self, items: list[str]) -> str:
        return format_list(items, locale=self.locale)


def _capital(text: str) -> str:
    """A sentence starts with a capital, whatever its first word (a weekday in French)."""
    return text[:1].upper() + text[1:]


def _pct(current: float | None, baseline: float | None) -> float | None:
    if current is None or not baseline:
        return None
    return (current - baseline) / abs(baseline)


def compose(figures: Figures, language: Language) -> Document:
    """The review of `figures` in `language`."""
    words = Words(language, figures.client.currency)
    _ = language.gettext
    period = figures.period
    kind = period.kind
    title = {"week": _("Weekly review"), "month": _("Monthly review")}[kind]
    period_text = _("From {start} to {end}").format(start=words.day(period.start),
                                                    end=words.day(period.end))
    today = figures.now.astimezone(ZoneInfo(figures.client.timezone)).date()
    data_day = figures.quality.data_as_of
    written = _("Written on {today}, from the data up to {day}.").format(
        today=words.day(today), day=words.day(data_day)) if data_day else \
        _("Written on {today}; there is no data yet.").format(today=words.day(today))
    sections = [s for s in (_headline(figures, words), _drivers(figures, words),
                            _movers(figures, words), _anomalies(figures, words),
                            _goals(figures, words), _stock(figures, words),
                            _quality(figures, words)) if s is not None]
    return Document(language.locale, _subject(figures, words), title, period_text,
                    written, sections,
                    _("Sent by Goalpost for {client}.").format(client=figures.client.name))


def _subject(figures: Figures, words: Words) -> str:
    _ = words._
    start = formatting.medium_date(figures.period.start, words.locale)
    what = {"week": _("week of {day}").format(day=start),
            "month": formatting.month_year(figures.period.start, words.locale)}[
        figures.period.kind]
    headline = figures.headline
    if headline is None:
        return _("{client}, {period}: no data").format(client=figures.client.name,
                                                       period=what)
    change = _pct(headline.current, headline.previous)
    figure = words.value(headline.metric, headline.current)
    if change is not None:
        figure = f"{figure} ({words.signed_percent(change)})"
    return _("{client}, {period}: {metric} {figure}").format(
        client=figures.client.name, period=what, metric=words.lower_label(headline.metric),
        figure=figure)


def _compared(words: Words, kind: str, which: str) -> str:
    _ = words._
    return {("week", "previous"): _("the week before"),
            ("month", "previous"): _("the month before"),
            ("week", "last_year"): _("the same week last year"),
            ("month", "last_year"): _("the same month last year")}[(kind, which)]


def _headline(figures: Figures, words: Words) -> Section:
    _ = words._
    kind = figures.period.kind
    section = Section("headline", {"week": _("The week"), "month": _("The month")}[kind])
    if figures.span is None:
        section.sentences.append(_("No sales were recorded from {start} to {end}.").format(
            start=words.day(figures.period.start), end=words.day(figures.period.end)))
        if figures.first_day and figures.quality.data_as_of:
            section.sentences.append(_("The data runs from {first} to {last}.").format(
                first=words.day(figures.first_day), last=words.day(figures.quality.data_as_of)))
        return section
    if figures.span.end < figures.period.end:
        section.sentences.append(_(
            "The data stops on {day}: the figures cover the days up to it, compared with the "
            "same days of the periods before.").format(day=words.day(figures.span.end)))
    headline = figures.headline
    if headline is not None:
        section.chart = "daily" if figures.daily else None
        section.sentences.append(_("{metric}: {value}.").format(
            metric=words.label(headline.metric), value=words.value(headline.metric,
                                                                   headline.current)))
        for which, then in (("previous", headline.previous), ("last_year", headline.last_year)):
            compared = _compared(words, kind, which)
            if then is None:
                section.sentences.append(_("No complete data for {period}.").format(
                    period=compared))
                continue
            pct = _pct(headline.current, then)
            section.sentences.append(_("{change} ({pct}) on {period} ({value}).").format(
                change=words.signed_value(headline.metric, headline.current - then),
                pct=words.signed_percent(pct) if pct is not None else "-",
                period=compared, value=words.value(headline.metric, then)))
        if headline.target:
            section.sentences.append(_("{share} of the target of {target}.").format(
                share=words.percent(headline.current / headline.target, 0),
                target=words.value(headline.metric, headline.target)))
    for line in figures.metrics:
        section.scoreboard.append(_score_line(line, words, kind))
    return section


def _score_line(line: MetricFigures, words: Words, kind: str) -> ScoreLine:
    _ = words._
    value = words.value(line.metric, line.current)
    if line.reading == "daily_average":
        value = _("{value} a day").format(value=value)
    comparisons = []
    for which, then in (("previous", line.previous), ("last_year", line.last_year)):
        pct = _pct(line.current, then)
        if pct is not None:
            comparisons.append(_("{pct} on {period}").format(
                pct=words.signed_percent(pct), period=_compared(words, kind, which)))
        else:
            comparisons.append(_("no complete data for {period}").format(
                period=_compared(words, kind, which)))
    if line.target:
        comparisons.append(_("{share} of the target of {target}").format(
            share=words.percent(line.current / line.target, 0),
            target=words.value(line.metric, line.target)))
    return ScoreLine(line.name, words.label(line.metric), value, comparisons,
                     _("{metric}: {value} ({comparisons})").format(
                         metric=words.label(line.metric), value=value,
                         comparisons=_("; ").join(comparisons)))


def _driver_phrase(words: Words, part: DriverPart, root: Metric) -> str:
    """'+€800.00 from more orders': a driver's contribution (in the root metric's unit) and
    which way the driver moved."""
    pgettext = words.language.pgettext
    up = part.current >= part.baseline
    phrases = {
        "orders": (pgettext("driver up", "more orders"), pgettext("driver down", "fewer orders")),
        "average_ticket": (pgettext("driver up", "a higher average ticket"),
                           pgettext("driver down", "a lower average ticket")),
        "items_per_order": (pgettext("driver up", "more items per order"),
                            pgettext("driver down", "fewer items per order")),
        "average_item_price": (pgettext("driver up", "a higher average item price"),
                               pgettext("driver down", "a lower average item price")),
        "items": (pgettext("driver up", "more items sold"),
                  pgettext("driver down", "fewer items sold")),
        "returns": (pgettext("driver up", "more returns"),
                    pgettext("driver down", "fewer returns")),
    }
    standard = standard_metrics().get(part.metric.name)
    if part.metric.name in phrases and standard is not None and \
            standard.label == part.metric.label:
        what = phrases[part.metric.name][0 if up else 1]
    else:
        pct = _pct(part.current, part.baseline)
        what = words._("{metric} ({pct})").format(
            metric=words.lower_label(part.metric),
            pct=words.signed_percent(pct) if pct is not None else "-")
    return words._("{amount} from {what}").format(
        amount=words.signed_value(root, part.contribution), what=what)


def _split_sentences(split: Split, words: Words, kind: str, which: str) -> list[str]:
    _ = words._
    pct = _pct(split.current, split.baseline)
    if pct is None or abs(pct) * 100 < MOVED_PCT:
        return []
    top = split.children(split.metric.name)
    sentences = [_("Against {period}, {metric} {change} ({pct}): {parts}.").format(
        period=_compared(words, kind, which), metric=words.lower_label(split.metric),
        change=words.signed_value(split.metric, split.change),
        pct=words.signed_percent(pct),
        parts=words.join([_driver_phrase(words, p, split.metric) for p in top]))]
    for part in top:
        inner = split.children(part.metric.name)
        if inner and split.change and abs(part.contribution / split.change) >= NESTED_SHARE:
            sentences.append(_("{metric}, in detail: {parts}.").format(
                metric=words.label(part.metric),
                parts=words.join([_driver_phrase(words, p, split.metric) for p in inner])))
    return sentences


def _drivers(figures: Figures, words: Words) -> Section | None:
    _ = words._
    section = Section("drivers", _("What drove it"))
    for which in ("previous", "last_year"):
        for split in figures.splits.get(which, []):
            section.sentences += _split_sentences(split, words, figures.period.kind, which)
            if which == "previous" and section.sentences:
                section.chart = "split"
    return section if section.sentences else None


def _dimension_title(words: Words, dimension: str) -> str:
    _ = words._
    titled = {"location": _("By location"), "channel": _("By channel"),
              "product": _("By product")}
    return titled.get(dimension) or _("By {dimension}").format(dimension=dimension)


def _mover_text(mover: Mover, words: Words, metric: Metric) -> str:
    _ = words._
    change = words.signed_value(metric, mover.change)
    if not mover.previous:
        return _("{name} {change} (none the period before)").format(name=mover.label,
                                                                     change=change)
    return _("{name} {change} ({pct})").format(
        name=mover.label, change=change,
        pct=words.signed_percent(mover.change / abs(mover.previous)))


def _movers(figures: Figures, words: Words) -> Section | None:
    _ = words._
    headline = figures.headline
    if not figures.movers or headline is None:
        return None
    section = Section("movers", _("What moved the most, against {period}").format(
        period=_compared(words, figures.period.kind, "previous")))
    order = ["location", "channel", "product"]
    for dimension in sorted(figures.movers, key=lambda d: (order.index(d) if d in order
                                                          else len(order), d)):
        movers = figures.movers[dimension]
        section.items.append(_("{dimension}: {movers}.").format(
            dimension=_dimension_title(words, dimension),
            movers=words.join([_mover_text(m, words, headline.metric) for m in movers])))
    return section


def _anomaly_text(event: AnomalyEvent, words: Words) -> str:
    _ = words._
    where = event.label if event.dimension != "all" else _("the whole business")
    kind = {"drop": {"high": _("a high-severity drop"), "medium": _("a drop")},
            "spike": {"high": _("a high-severity spike"), "medium": _("a spike")}}[
        event.direction][event.severity]
    pct = _pct(event.actual, event.expected)
    text = _("{day}, {where}: {metric} {value} against about {expected} expected ({pct}), "
             "{kind}.").format(
        day=words.day(event.day), where=where, metric=words.lower_label(event.metric),
        value=words.value(event.metric, event.actual),
        expected=words.value(event.metric, event.expected),
        pct=words.signed_percent(pct) if pct is not None else "-", kind=kind)
    if event.also:
        also = words.join([words.lower_label(m) for m in event.also])
        text += " " + _capital((_("{metrics} dropped too.") if event.direction == "drop" else
                                _("{metrics} rose too.")).format(metrics=also))
    by_dimension: dict[str, list[str]] = {}
    for contributor in event.behind:
        named = by_dimension.setdefault(contributor.dimension, [])
        if len(named) < CONTRIBUTORS_PER_DIMENSION:
            named.append(_("{name} ({share})").format(
                name=contributor.label, share=words.percent(contributor.share, 0)))
    if by_dimension:
        text += " " + _("Behind it, {contributors}.").format(contributors=_("; ").join(
            _("{dimension}: {names}").format(
                dimension=_dimension_title(words, dimension).lower(), names=words.join(names))
            for dimension, names in by_dimension.items()))
    return text


def _anomalies(figures: Figures, words: Words) -> Section | None:
    _ = words._
    if not figures.anomalies:
        return None
    return Section("anomalies", _("Unusual days"),
                   items=[_capital(_anomaly_text(event, words)) for event in figures.anomalies])


def _goal_text(goal: GoalFigures, words: Words) -> str:
    _ = words._
    statuses = {"on-track": _("on track"), "at-risk": _("at risk"),
                "off-track": _("off track"), "achieved": _("achieved"), "missed": _("missed"),
                "unknown": _("cannot be judged yet")}
    what = words.lower_label(goal.metric)
    if goal.label:
        what = _("{metric} at {place}").format(metric=what, place=goal.label)
    text = _("Goal {goal} ({metric}, {dates}): {status}.").format(
        goal=goal.name, metric=what,
        dates=formatting.date_range(goal.period_start, goal.deadline, words.locale),
        status=statuses.get(goal.status, goal.status))
    metric = goal.metric
    if goal.status in ("achieved", "missed") and goal.actual is not None and goal.target:
        return text + " " + _("{actual} against a target of {target}.").format(
            actual=words.value(metric, goal.actual), target=words.value(metric, goal.target))
    if goal.status == "unknown" or goal.actual is None or not goal.target:
        return text
    text += " " + _("{actual} as of {day} ({share} of the target of {target}).").format(
        actual=words.value(metric, goal.actual), day=words.day(goal.as_of),
        share=words.percent(goal.actual / goal.target, 0),
        target=words.value(metric, goal.target))
    if goal.forecast is not None:
        text += " " + _("Forecast for {deadline}: {forecast}").format(
            deadline=words.day(goal.deadline), forecast=words.value(metric, goal.forecast))
        if goal.lower_80 is not None and goal.upper_80 is not None:
            text += " " + _("(80% range {lower} to {upper})").format(
                lower=words.value(metric, goal.lower_80),
                upper=words.value(metric, goal.upper_80))
        text += "."
    return text


def _goals(figures: Figures, words: Words) -> Section | None:
    _ = words._
    if not figures.goals:
        return None
    return Section("goals", _("Goals"), items=[_goal_text(g, words) for g in figures.goals])


def _stock(figures: Figures, words: Words) -> Section | None:
    _ = words._
    if not figures.stock and not figures.stockouts:
        return None
    section = Section("stock", _("Stock"))
    if figures.stock and figures.stock_as_of:
        section.sentences.append(words.language.ngettext(
            "As of {day}, {n} product is under its reorder point.",
            "As of {day}, {n} products are under their reorder point.",
            figures.stock_at_risk).format(day=words.day(figures.stock_as_of),
                                          n=figures.stock_at_risk))
        for item in figures.stock:
            text = _("{product} at {location}: {on_hand} in stock, reorder point "
                     "{reorder_point}").format(
                product=item.product, location=item.location,
                on_hand=words.number(item.on_hand), reorder_point=words.number(
                    item.reorder_point))
            if item.days_of_cover is not None:
                text += _(", about {days} days of sales").format(
                    days=words.number(item.days_of_cover, 1))
            section.items.append(text + ".")
    for out in figures.stockouts:
        if out.ended_on is None:
            text = _("{product} at {location} has been out of stock since {start} "
                     "({days} days)").format(product=out.product, location=out.location,
                                             start=words.day(out.started_on), days=out.days)
        else:
            text = _("{product} at {location} was out of stock from {start} to {end} "
                     "({days} days)").format(product=out.product, location=out.location,
                                             start=words.day(out.started_on),
                                             end=words.day(out.ended_on), days=out.days)
        if out.units_lost:
            text += _(", about {units} units not sold").format(
                units=words.number(out.units_lost, 0))
        section.items.append(text + ".")
    return section


def _quality(figures: Figures, words: Words) -> Section | None:
    _ = words._
    ngettext = words.language.ngettext
    quality = figures.quality
    section = Section("quality", _("About the data"))
    if quality.missing_days and figures.span is not None:
        section.items.append(ngettext(
            "The data stops on {day}: {n} day of the period has no figures yet.",
            "The data stops on {day}: {n} days of the period have no figures yet.",
            quality.missing_days).format(day=words.day(quality.data_as_of),
                                         n=quality.missing_days))
    for stale in quality.stale:
        hours = round(stale.max_age.total_seconds() / 3600)
        if stale.last_data_at is None:
            section.items.append(_("Source {source} has sent no data yet.").format(
                source=stale.source))
        else:
            local = stale.last_data_at.astimezone(ZoneInfo(figures.client.timezone)).date()
            section.items.append(ngettext(
                "Source {source} has sent nothing new since {day} (expected at least every "
                "{hours} hour).",
                "Source {source} has sent nothing new since {day} (expected at least every "
                "{hours} hours).", hours).format(source=stale.source, day=words.day(local),
                                                 hours=hours))
    for count in quality.quarantined:
        section.items.append(ngettext(
            "{n} row of {source}.{stream} could not be read since {day} and was set aside.",
            "{n} rows of {source}.{stream} could not be read since {day} and were set aside.",
            count.rows).format(n=words.number(count.rows), source=count.source,
                               stream=count.stream, day=words.day(quality.since)))
    for failed in quality.failed:
        section.items.append(ngettext(
            "{step} failed {n} time since {day}; the last error: {error}",
            "{step} failed {n} times since {day}; the last error: {error}",
            failed.failures).format(step=failed.step, n=failed.failures,
                                    day=words.day(quality.since), error=failed.error))
    return section if section.items else None
