"""One review, end to end: the figures of a period, their words in the client's language,
the charts, and the page `goalpost review` writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from goalpost.alerts.i18n import language
from goalpost.alerts.review import message
from goalpost.alerts.review.figures import Figures, collect
from goalpost.alerts.review.period import Period, kind_of, last_closed
from goalpost.alerts.review.writing import Document, compose
from goalpost.core.errors import NotFoundError
from goalpost.core.identifiers import schema_name
from goalpost.core.paths import state_dir
from goalpost.core.registry.models import Client


@dataclass
class Review:
    figures: Figures
    document: Document
    charts: list[message.Chart]

    def text(self) -> str:
        return message.text(self.document, self.figures.client.name)

    def page(self) -> str:
        return message.page(self.document, self.figures.client.name, self.charts)

    def summary(self) -> dict[str, Any]:
        """The headline figures, for the command's output and the delivery history."""
        headline = self.figures.headline
        return {"period": self.figures.period.key, "start": self.figures.period.start,
                "end": self.figures.period.end, "subject": self.document.subject,
                "language": self.document.locale,
                "data_as_of": self.figures.quality.data_as_of,
                "headline": None if headline is None else {
                    "metric": headline.name, "current": headline.current,
                    "previous": headline.previous, "last_year": headline.last_year,
                    "target": headline.target},
                "sections": [s.key for s in self.document.sections],
                "anomalies": len(self.figures.anomalies), "goals": len(self.figures.goals)}


def require_marts(conn: psycopg.Connection, slug: str) -> None:
    """NotFoundError unless the client's marts are built (a review of nothing is not sent)."""
    marts = schema_name(slug, "marts")
    if not conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                        (f'"{marts}".kpi_daily',)).fetchone()[0]:
        raise NotFoundError(f"client {slug} has no data built yet ({marts}.kpi_daily is "
                            "missing)", hint=f"run `goalpost run {slug}` (or `goalpost demo` "
                                             "for PanPan)")


def default_period(client: Client, now: datetime) -> Period:
    """The client's latest closed week (or month, with `review.cadence: monthly`), in its
    time zone."""
    today = now.astimezone(ZoneInfo(client.timezone)).date()
    return last_closed(kind_of(client.review.cadence), today)


def build(conn: psycopg.Connection, slug: str, client: Client, period: Period,
          now: datetime | None = None) -> Review:
    """The review of `period` (conn: an autocommit connection to the warehouse)."""
    now = now or datetime.now(UTC)
    figures = collect(conn, slug, client, period, now)
    words = language(client.language)
    document = compose(figures, words)
    return Review(figures, document, message.draw_charts(figures, document, words))


def default_path(slug: str, period: Period) -> Path:
    return state_dir() / "reviews" / f"{slug}-{period.key}.html"


def write_page(review: Review, out: Path | None = None) -> Path:
    """Write the review's page (default .goalpost/reviews/<slug>-<period>.html) atomically."""
    path = (out or default_path(review.figures.slug, review.figures.period)).expanduser()
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(review.page(), encoding="utf-8")
    tmp.replace(path)
    return path
