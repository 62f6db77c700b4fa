"""The report page in a real browser: every kind of card drawn where the grid puts it.

The page is built from hand-made results (no warehouse), opened in headless Chromium, and the
screenshot is checked pixel by pixel inside each card's box: the colour of every series, the
goal line, the forecast band; nothing drawn in an empty or failed card.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import chromium
import numpy as np
from PIL import Image

from goalpost.metabase import charts, page
from goalpost.metabase.charts import GOAL_COLOUR, PALETTE, Formats, Result

DAYS = [date(2026, 9, 1) + timedelta(days=n) for n in range(60)]
BACKGROUND = "#FFFFFF"


def pixels(image: np.ndarray, box: tuple[float, ...], colour: str, tolerance: int = 10) -> int:
    """How many pixels inside `box` (left, top, width, height) are within `tolerance` of
    `colour` on every channel."""
    left, top, width, height = (round(v) for v in box)
    area = image[top:top + height, left:left + width, :3].astype(int)
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(area - rgb) <= tolerance).all(axis=2).sum())


def load(png: Path) -> np.ndarray:
    return np.asarray(Image.open(png).convert("RGB"))


def card(title: str, display: str, col: int, row: int, size: tuple[int, int], result: Result,
         settings: dict | None = None, currency: str = "EUR") -> page.CardView:
    width, height = page.body_size(*size)
    body = charts.render(result, display, settings, Formats(currency), width, height)
    return page.CardView(title, display, col, row, size[0], size[1], body=body)


def forecast_result() -> Result:
    rows = []
    for n, day in enumerate(DAYS):
        if n < 40:
            rows.append((day, 100.0 + 20 * (n % 7), None, None, None))
        else:
            rows.append((day, None, 110.0 + 10 * (n % 7), 80.0 + 10 * (n % 7),
                         140.0 + 10 * (n % 7)))
    return Result(["date", "actual", "forecast", "lower", "upper"], rows)


def build_page(tmp_path: Path) -> Path:
    weeks = [(DAYS[0] + timedelta(weeks=w), channel, 500.0 + 100 * w + (200 if i else 0))
             for w in range(6) for i, channel in enumerate(["shop", "delivery"])]
    cards = [
        card("Forecast", "line", 0, 0, (24, 6), forecast_result(),
             {"graph.dimensions": ["date"], "graph.metrics": ["actual", "forecast"],
              "graph.show_goal": True, "graph.goal_value": 170,
              "band": {"lower": "lower", "upper": "upper"}}),
        card("Weekly by channel", "bar", 0, 6, (12, 6), Result(["week", "channel", "revenue"],
             weeks), {"graph.dimensions": ["week", "channel"], "graph.metrics": ["revenue"],
                      "stackable.stack_type": "stacked"}),
        card("Shops", "row", 12, 6, (12, 6), Result(["shop", "revenue"],
             [("Croix-Rousse", 900.0), ("Villeurbanne", 500.0)])),
        card("Channels", "pie", 0, 12, (8, 5), Result(["channel", "orders"],
             [("shop", 60), ("delivery", 30), ("online", 10)])),
        card("Month goal", "progress", 8, 12, (8, 5), Result(["revenue"], [(7500,)]),
             {"progress.goal": 10000}, currency="GBP"),
        card("Revenue", "scalar", 16, 12, (8, 5), Result(["revenue"], [(12345.5,)])),
        card("Nothing yet", "line", 0, 17, (12, 4), Result(["date", "value"], [])),
        page.CardView("Broken", "bar", 12, 17, 12, 4,
                      error='relation "tiny_insights.forecasts" does not exist'),
    ]
    html = page.render_page("Tiny Bakery", [page.DashboardView(
        "Everything", "All displays at once", [("Date", "past90days"), ("Location", "All")],
        cards)], data_as_of=DAYS[39], generated_at=datetime(2026, 11, 1, tzinfo=UTC),
        currency="EUR")
    path = tmp_path / "page.html"
    path.write_text(html, encoding="utf-8")
    return path


def test_page_is_self_contained(tmp_path: Path) -> None:
    html = build_page(tmp_path).read_text(encoding="utf-8")
    # Nothing to fetch: no script, no link, no remote URL (the SVG namespace is not fetched).
    for forbidden in ("<script", "<link", "@import", "url(", "<img", "https://"):
        assert forbidden not in html
    assert html.count('xmlns="http://www.w3.org/2000/svg"') == 5


@chromium.needed
def test_screenshot_shows_every_chart_in_its_box(tmp_path: Path) -> None:
    path = build_page(tmp_path)
    layout = chromium.layout(path)
    image = load(chromium.screenshot(path, tmp_path / "page.png", layout.height))
    assert image.shape[0] == layout.height and layout.height > 1000
    boxes = {title: box.body for title, box in layout.cards.items()}
    assert set(boxes) == {"Forecast", "Weekly by channel", "Shops", "Channels", "Month goal",
                          "Revenue", "Nothing yet", "Broken"}

    # Cards sit on the grid: the row-6 cards side by side, below the forecast.
    forecast, weekly, shops = (layout.cards[t] for t in ("Forecast", "Weekly by channel",
                                                          "Shops"))
    assert weekly.top == shops.top > forecast.top + forecast.height - 1
    assert weekly.left < shops.left and abs(weekly.width - shops.width) < 1

    # Forecast: the actuals, the forecast, its band (a tint of the forecast's colour) and the
    # goal line, each clearly drawn.
    box = boxes["Forecast"]
    assert pixels(image, box, PALETTE[0]) > 300
    assert pixels(image, box, PALETTE[1]) > 300
    assert pixels(image, box, charts.tint(PALETTE[1])) > 2000
    assert pixels(image, box, GOAL_COLOUR) > 300
    # The band lies right of the actuals: none of its colour in the left half.
    left_half = (box[0], box[1], box[2] * 0.5, box[3])
    assert pixels(image, left_half, charts.tint(PALETTE[1])) == 0
    assert pixels(image, left_half, PALETTE[0]) > 300

    # Stacked bars of two channels; bars of the shops; a pie of three; progress at 75%.
    assert pixels(image, boxes["Weekly by channel"], PALETTE[0]) > 2000
    assert pixels(image, boxes["Weekly by channel"], PALETTE[1]) > 2000
    assert pixels(image, boxes["Shops"], PALETTE[0]) > 5000
    for colour in PALETTE[:3]:
        assert pixels(image, boxes["Channels"], colour) > 300, colour
    progress = pixels(image, boxes["Month goal"], PALETTE[0])
    track = pixels(image, boxes["Month goal"], charts.TRACK_COLOUR, tolerance=2)
    assert 2.5 < progress / track < 3.5  # 75% filled, 25% left
    assert pixels(image, boxes["Month goal"], GOAL_COLOUR) > 30

    # Empty and failed cards draw no chart.
    for title in ("Nothing yet", "Broken", "Revenue"):
        for colour in (*PALETTE[:3], GOAL_COLOUR):
            assert pixels(image, boxes[title], colour) == 0, (title, colour)

    # What the reader sees in words, after layout.
    dom = layout.dom
    assert "€12,345.50" in dom and "£7,500.00" in dom
    assert "No data" in dom
    assert "Query failed: relation" in dom and "does not exist" in dom
    assert 'class="as-of">2026-10-10<' in dom
