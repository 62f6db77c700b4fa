"""What `goalpost review` calls: a client's review of one period as a page, and on request
sent by email (once per recipient, like the scheduler's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from goalpost.alerts.review.build import (
    Review,
    build,
    default_period,
    require_marts,
    write_page,
)
from goalpost.alerts.review.deliver import ReviewDelivery, send_review
from goalpost.alerts.review.period import parse
from goalpost.core import registry
from goalpost.core.errors import ConfigError
from goalpost.core.warehouse import ready


@dataclass
class ReviewRun:
    review: Review
    path: Path
    delivery: ReviewDelivery | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**self.review.summary(), "path": str(self.path),
                "delivery": self.delivery.as_dict() if self.delivery else None}


def make_review(slug: str, *, week: str | None = None, month: str | None = None,
                out: Path | None = None, send: bool = False,
                now: datetime | None = None) -> ReviewRun:
    """The review of `week` (2026-W49), `month` (2026-11) or the client's latest closed
    period, written as a page; `send` also emails it to whoever has not had it."""
    if week and month:
        raise ConfigError("give --week or --month, not both")
    client = registry.load_client(slug)
    now = now or datetime.now(UTC)
    period = parse(week, "week") if week else parse(month, "month") if month else \
        default_period(client, now)
    with ready() as conn:
        require_marts(conn, slug)
        delivery = send_review(conn, slug, client, period, now=now) if send else None
        review = delivery.review if delivery and delivery.review else build(
            conn, slug, client, period, now)
    return ReviewRun(review, write_page(review, out), delivery)
