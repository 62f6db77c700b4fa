"""One self-contained HTML page of a client's dashboards, laid out as Metabase lays them out.

Cards sit on Metabase's 24-column grid at their template position and size, on a fixed-width
page, so that the chart sizes are known when the SVG is drawn and the page looks the same in
any browser. The page has no script and fetches nothing: styles are inline, charts are SVG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from html import escape

from goalpost.metabase.charts import TABLE_HEAD_HEIGHT, TABLE_ROW_HEIGHT

GRID_COLUMNS = 24
PAGE_WIDTH = 1200
COLUMN_WIDTH = PAGE_WIDTH / GRID_COLUMNS
ROW_HEIGHT = 56
GAP = 8
CARD_PADDING = 10
TITLE_HEIGHT = 26

STYLE = """
* { box-sizing: border-box; }
body { margin: 0; background: #F9FBFC; color: #4C5773;
       font-family: Helvetica, Arial, sans-serif; font-size: 13px; }
header.report { width: @WIDTHpx; margin: 0 auto; padding: 18px 0 6px; }
header.report h1 { margin: 0 0 4px; font-size: 22px; color: #2E353B; }
.meta { color: #74838F; }
section.dashboard { width: @WIDTHpx; margin: 18px auto 28px; }
section.dashboard h2 { margin: 0 0 4px; font-size: 18px; color: #2E353B; }
.filters { margin: 6px 0 10px; }
.filter { display: inline-block; margin: 0 6px 4px 0; padding: 3px 8px; border-radius: 4px;
          background: #EEF3F9; }
.filter b { font-weight: 600; }
.grid { position: relative; }
.card { position: absolute; background: #FFFFFF; border: 1px solid #E6E9EE; border-radius: 8px;
        padding: @PADpx; overflow: hidden; }
.card h3 { margin: 0; height: @TITLEpx; font-size: 13px; font-weight: 700; color: #2E353B;
           white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.body { position: relative; }
.empty { color: #A5B1BA; font-size: 15px; text-align: center; padding-top: 14%; }
.error { color: #C0392B; background: #FDF0EF; border-radius: 4px; padding: 8px;
         font-family: monospace; font-size: 11px; white-space: pre-wrap; overflow: hidden; }
.scalar .big { font-size: 34px; font-weight: 700; color: #2E353B; margin-top: 4px; }
.scalar .change { margin-top: 4px; font-size: 12px; }
.scalar .change.up { color: #84BB4C; } .scalar .change.down { color: #ED6E6E; }
.table-wrap { overflow: hidden; height: 100%; }
table { border-collapse: collapse; width: 100%; font-size: 11px; }
th { text-align: left; color: #74838F; border-bottom: 1px solid #E6E9EE; padding: 0 6px;
     height: @HEADpx; white-space: nowrap; }
td { padding: 0 6px; height: @ROWpx; line-height: 13px; border-bottom: 1px solid #F0F2F5;
     white-space: nowrap; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; }
.more { color: #74838F; font-size: 11px; padding: 3px 6px; font-style: italic; }
figure.drawing { margin: 0 0 12px; background: #FFFFFF; border: 1px solid #E6E9EE;
                 border-radius: 8px; padding: @PADpx; overflow-x: auto; }
footer { width: @WIDTHpx; margin: 0 auto 24px; color: #A5B1BA; font-size: 11px; }
""".replace("@WIDTH", str(PAGE_WIDTH)).replace("@HEAD", str(TABLE_HEAD_HEIGHT)).replace(
    "@ROW", str(TABLE_ROW_HEIGHT)).replace("@PAD", str(CARD_PADDING)).replace(
    "@TITLE", str(TITLE_HEIGHT))


@dataclass
class CardView:
    """One card as the page shows it: its place on the grid and its rendered body (or error)."""

    title: str
    display: str
    col: int
    row: int
    size_x: int
    size_y: int
    body: str = ""
    error: str | None = None
    description: str = ""


@dataclass
class DashboardView:
    name: str
    description: str = ""
    filters: list[tuple[str, str]] = field(default_factory=list)
    cards: list[CardView] = field(default_factory=list)
    figure: str = ""  # a drawing above the cards (the metric map's SVG)


def card_box(col: int, row: int, size_x: int, size_y: int) -> tuple[float, float, float, float]:
    """Left, top, width and height in pixels of a card on the grid."""
    return (col * COLUMN_WIDTH + GAP / 2, row * ROW_HEIGHT + GAP / 2,
            size_x * COLUMN_WIDTH - GAP, size_y * ROW_HEIGHT - GAP)


def body_size(size_x: int, size_y: int) -> tuple[float, float]:
    """Room for a chart inside a card of that size (the size the SVG is drawn at)."""
    _, _, width, height = card_box(0, 0, size_x, size_y)
    return width - 2 * CARD_PADDING - 2, height - 2 * CARD_PADDING - TITLE_HEIGHT - 2


def _card(card: CardView) -> str:
    left, top, width, height = card_box(card.col, card.row, card.size_x, card.size_y)
    _, body_height = body_size(card.size_x, card.size_y)
    if card.error:
        body = f'<div class="error">Query failed: {escape(card.error)}</div>'
    else:
        body = card.body
    tip = f' title="{escape(card.description)}"' if card.description else ""
    return (f'<div class="card" data-display="{escape(card.display)}" '
            f'data-title="{escape(card.title)}"{tip} style="left:{left:.0f}px;top:{top:.0f}px;'
            f'width:{width:.0f}px;height:{height:.0f}px">'
            f"<h3>{escape(card.title)}</h3>"
            f'<div class="body" style="height:{body_height:.0f}px">{body}</div></div>')


def _dashboard(dashboard: DashboardView) -> str:
    rows = max((c.row + c.size_y for c in dashboard.cards), default=1)
    filters = "".join(f'<span class="filter">{escape(name)}: <b>{escape(value)}</b></span>'
                      for name, value in dashboard.filters)
    description = (f'<div class="meta">{escape(dashboard.description)}</div>'
                   if dashboard.description else "")
    cards = "".join(_card(card) for card in dashboard.cards)
    figure = (f'<figure class="drawing" data-title="{escape(dashboard.name)} drawing">'
              f'<div class="body">{dashboard.figure}</div></figure>' if dashboard.figure else "")
    return (f'<section class="dashboard" data-name="{escape(dashboard.name)}">'
            f"<h2>{escape(dashboard.name)}</h2>{description}"
            f'<div class="filters">{filters}</div>{figure}'
            f'<div class="grid" style="height:{rows * ROW_HEIGHT:.0f}px">{cards}</div></section>')


def render_page(client_name: str, dashboards: list[DashboardView], *, data_as_of: date | None,
                generated_at: datetime, currency: str) -> str:
    """The whole page: a header (client, data date, currency), then each dashboard."""
    as_of = data_as_of.isoformat() if data_as_of else "no data yet"
    cards = sum(len(d.cards) for d in dashboards)
    failed = sum(1 for d in dashboards for c in d.cards if c.error)
    summary = f"{len(dashboards)} dashboards, {cards} cards" + (
        f", {failed} failed" if failed else "")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(client_name)}: dashboards</title><style>{STYLE}</style></head><body>"
        f'<header class="report"><h1>{escape(client_name)}</h1>'
        f'<div class="meta">Data as of <b class="as-of">{escape(as_of)}</b> · amounts in '
        f"{escape(currency)} · {escape(summary)} · generated "
        f"{generated_at.strftime('%Y-%m-%d %H:%M %Z').strip()}</div></header>"
        + "".join(_dashboard(d) for d in dashboards)
        + "<footer>Preview rendered by goalpost report from the Metabase dashboard templates."
        "</footer></body></html>\n"
    )
