"""The report's chart renderer: query results and Metabase display settings to SVG/HTML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from goalpost.metabase import charts, page
from goalpost.metabase.charts import GOAL_COLOUR, PALETTE, Formats, Result

SVG = "{http://www.w3.org/2000/svg}"
DAYS = [date(2025, 3, 1) + timedelta(days=n) for n in range(10)]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def y_of(root: ET.Element, value: float) -> float:
    """Where `value` sits on the chart's y axis, from two of its grid lines."""
    grid = [(float(g.get("data-value")), float(g.get("y1")))
            for g in root.iter(f"{SVG}line") if g.get("class") == "grid"]
    (v0, y0), (v1, y1) = grid[0], grid[-1]
    return y0 + (value - v0) * (y1 - y0) / (v1 - v0)


def points(element: ET.Element) -> list[tuple[float, float]]:
    return [tuple(map(float, p.split(","))) for p in element.get("points").split()]


def test_line_with_breakout_draws_one_series_per_value_in_palette_order() -> None:
    rows = [(d, shop, Decimal(100 + n * (i + 1))) for n, d in enumerate(DAYS)
            for i, shop in enumerate(["Croix-Rousse", "Villeurbanne", "Online"])]
    result = Result(["sales_date", "location_name", "revenue"], rows)
    svg = charts.render(result, "line", {"graph.dimensions": ["sales_date", "location_name"],
                                         "graph.metrics": ["revenue"]}, Formats(), 500, 220)
    lines = [e for e in parse(svg).iter(f"{SVG}polyline") if e.get("class") == "series"]
    assert [(e.get("data-series"), e.get("stroke")) for e in lines] == [
        ("Croix-Rousse", PALETTE[0]), ("Villeurbanne", PALETTE[1]), ("Online", PALETTE[2])]
    root = parse(svg)
    # Each series has its ten days, left to right, and its last value where the axis says.
    online = points(lines[2])
    assert len(online) == 10 and online == sorted(online)
    assert online[-1][1] == pytest.approx(y_of(root, 100 + 9 * 3), abs=0.1)
    # The legend names the shops; amounts on the axis carry the currency.
    assert "Villeurbanne" in svg and "€" in svg


def test_goal_line_sits_at_the_goal_value_and_the_axis_makes_room_for_it() -> None:
    result = Result(["month", "revenue"], [(date(2025, m, 1), 1000.0 * m) for m in (1, 2, 3)])
    svg = charts.render(result, "bar", {"graph.dimensions": ["month"],
                                        "graph.metrics": ["revenue"],
                                        "graph.show_goal": True, "graph.goal_value": 4500},
                        Formats(currency="GBP"), 400, 200)
    root = parse(svg)
    goal = next(e for e in root.iter(f"{SVG}line") if e.get("class") == "goal")
    assert goal.get("stroke") == GOAL_COLOUR
    assert float(goal.get("y1")) == pytest.approx(y_of(root, 4500), abs=0.05)
    # 4500 is above every bar: the axis goes up to it.
    grid = [float(g.get("data-value")) for g in root.iter(f"{SVG}line")
            if g.get("class") == "grid"]
    assert max(grid) >= 4500
    bars = [e for e in root.iter(f"{SVG}rect") if e.get("class") == "series"]
    assert len(bars) == 3
    tops = [float(b.get("y")) for b in bars]
    assert tops[0] > tops[1] > tops[2] > float(goal.get("y1"))
    assert "£" in svg


def test_goal_hidden_when_show_goal_is_false() -> None:
    result = Result(["d", "v"], [(d, 1.0) for d in DAYS])
    svg = charts.render(result, "line", {"graph.goal_value": 5, "graph.show_goal": False},
                        Formats(), 300, 150)
    assert 'class="goal"' not in svg


def test_forecast_band_is_a_polygon_from_upper_to_lower_bounds() -> None:
    frame = pd.DataFrame({
        "date": DAYS,
        "actual": [10.0 + n for n in range(5)] + [None] * 5,
        "forecast": [None] * 4 + [14.0 + n for n in range(6)],
        "lower": [None] * 4 + [12.0 + n for n in range(6)],
        "upper": [None] * 4 + [16.0 + 2 * n for n in range(6)],
    })
    settings = {"graph.dimensions": ["date"], "graph.metrics": ["actual", "forecast"],
                "band": {"lower": "lower", "upper": "upper", "series": "forecast"}}
    svg = charts.render(Result.from_frame(frame), "line", settings, Formats(), 500, 220)
    root = parse(svg)
    band = next(e for e in root.iter(f"{SVG}polygon") if e.get("class") == "band")
    assert band.get("data-series") == "forecast"
    assert band.get("fill") == charts.tint(PALETTE[1])
    corners = points(band)
    assert len(corners) == 12  # six upper points, then six lower ones back
    assert corners[0][1] == pytest.approx(y_of(root, 16.0), abs=0.1)
    assert corners[5][1] == pytest.approx(y_of(root, 26.0), abs=0.1)
    assert corners[6][1] == pytest.approx(y_of(root, 17.0), abs=0.1)
    assert corners[-1][1] == pytest.approx(y_of(root, 12.0), abs=0.1)
    # Both series are drawn, each only where it has values; the band lies under them.
    lines = {e.get("data-series"): points(e) for e in root.iter(f"{SVG}polyline")}
    assert len(lines["actual"]) == 5 and len(lines["forecast"]) == 6
    assert svg.index('class="band"') < svg.index('class="series"')


def test_row_pie_progress_and_scalars() -> None:
    products = Result(["product_name", "revenue"],
                      [("Croissant", 900.0), ("Baguette", 600.0), ("Tarte", 300.0)])
    row = parse(charts.render(products, "row", {}, Formats(), 400, 200))
    widths = [float(e.get("width")) for e in row.iter(f"{SVG}rect")]
    assert widths[0] == pytest.approx(widths[1] * 1.5, rel=0.01)
    assert widths[0] == pytest.approx(widths[2] * 3, rel=0.01)

    many = Result(["channel", "orders"], [(f"c{n}", 10 - n) for n in range(10)])
    pie = parse(charts.render(many, "pie", {}, Formats(), 400, 200))
    slices = [e.get("data-series") for e in pie.iter(f"{SVG}path")]
    assert len(slices) == charts.MAX_PIE_SLICES and slices[-1] == "Other"

    progress = parse(charts.render(Result(["revenue"], [(750,)]), "progress",
                                   {"progress.goal": 1000}, Formats(), 400, 120))
    track, bar = list(progress.iter(f"{SVG}rect"))
    assert float(bar.get("width")) == pytest.approx(float(track.get("width")) * 0.75)

    monthly = Result(["month", "revenue"], [(date(2025, 1, 1), 1000), (date(2025, 2, 1), 1250)])
    smart = charts.render(monthly, "smartscalar", {}, Formats(), 200, 100)
    assert "€1,250.00" in smart and "▲ 25.0%" in smart
    assert "€1,000.00" in charts.render(monthly, "scalar", {}, Formats(), 200, 100)


def test_table_formats_numbers_and_empty_results_say_no_data() -> None:
    result = Result(["product_name", "on_hand", "retention_rate", "revenue"],
                    [("Croissant", 12, Decimal("0.35"), Decimal("1234.5"))])
    html = charts.render(result, "table", {}, Formats(currency="USD"), 400, 200)
    assert "<td class=\"\">Croissant</td>" in html
    assert ">12<" in html and ">35.0%<" in html and ">$1,234.50<" in html
    empty = Result(["a", "b"], [])
    for display in charts.DISPLAYS:
        assert "No data" in charts.render(empty, display, {}, Formats(), 300, 100), display
    nulls = Result(["d", "v"], [(DAYS[0], None)])
    assert "No data" in charts.render(nulls, "line", {}, Formats(), 300, 100)


def test_column_settings_override_the_names() -> None:
    settings = {"column_settings": {'["name","value"]': {"number_style": "currency"},
                                    '["name","revenue"]': {"number_style": "decimal"}}}
    formats = Formats(currency="EUR", styles=charts.column_styles(settings))
    assert formats.number(12.5, "value") == "€12.50"
    assert formats.number(12.5, "revenue") == "12.50"
    assert formats.number(-1500, "revenue", compact=True) == "-1.5K"
    assert formats.number(-3.2, "value") == "-€3.20"


def test_nice_ticks_cover_the_range() -> None:
    assert charts.nice_ticks(0, 4500) == [0, 1000, 2000, 3000, 4000, 5000]
    ticks = charts.nice_ticks(-3, 17)
    assert ticks[0] <= -3 and ticks[-1] >= 17
    assert charts.nice_ticks(5, 5)[0] <= 5 <= charts.nice_ticks(5, 5)[-1]


def test_decimals_keep_their_scale_up_to_two_places() -> None:
    formats = Formats()
    assert [formats.number(Decimal(v), "days_of_cover") for v in ("1.0", "0.4", "12")] == \
        ["1.0", "0.4", "12"]
    assert formats.number(Decimal("2.333333333"), "items_per_order") == "2.33"
    assert formats.number(2.5, "items_per_order") == "2.50"
    assert formats.number(1234567, "orders") == "1,234,567"


def test_a_table_shows_the_rows_that_fit_and_says_how_many_it_leaves_out() -> None:
    result = Result(["name", "revenue"], [(f"customer {i}", 100.0 - i) for i in range(50)])
    _, height = page.body_size(24, 8)
    html = charts.render(result, "table", {}, Formats(), 1000, height)
    shown = html.count("<tr>") - 1  # the header row
    assert shown == charts.table_rows_fitting(height) - 1
    assert f"Showing {shown} of 50 rows" in html
    # Room for every row: all of them, no note.
    html = charts.render(Result(result.columns, result.rows[:5]), "table", {}, Formats(), 1000,
                         height)
    assert html.count("<tr>") == 6 and "Showing" not in html


def test_forecast_cards_read_in_the_clients_currency() -> None:
    from goalpost.core.registry.models import Client
    from goalpost.metabase.report import card_settings, column_formats
    from goalpost.metabase.template import templates

    dashboard = templates()["forecasts_anomalies"]
    client = Client(name="X", currency="EUR")
    for key, column in (("monthly_revenue_forecast", "forecast"),
                        ("monthly_revenue_forecast", "actual"),
                        ("forecast_per_shop", "forecast")):
        card = dashboard.card(key)
        formats = column_formats(card, card_settings(card, {}), client)
        assert formats.number(1234.5, column) == "€1,234.50", (key, column)
