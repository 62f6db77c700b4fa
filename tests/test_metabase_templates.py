"""Dashboard templates: validation names file, line and field; cards render to plain SQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from goalpost.core.errors import ConfigError
from goalpost.metabase.template import date_bounds, layout, load_template, render_sql, templates

GOOD = """\
key: demo
name: Demo
filters:
  - {key: date, name: Date, type: date, default: past90days}
  - {key: location, name: Location, type: text}
cards:
  - key: revenue
    name: Revenue
    display: line
    size: [16, 6]
    sql: |
      SELECT sales_date, SUM(revenue) AS revenue FROM {marts}.daily_sales
      WHERE {{date}} [[AND {{location}}]] GROUP BY 1
    filters:
      date: marts.daily_sales.sales_date
      location: marts.daily_sales.location_id
    visualization: {dimensions: [sales_date], metrics: [revenue], goal: revenue}
  - key: table
    name: Table
    display: table
    size: [12, 4]
    sql: SELECT 1
"""


def _write(tmp_path: Path, text: str, name: str = "demo") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.mark.e2e
@pytest.mark.parametrize(("change", "expected"), [
    (("type: date,", "type: daterange,"), "demo.yaml:4: filters[0].type: must be one of"),
    (("size: [16, 6]", "size: [30, 6]"), "demo.yaml:10: cards[0].size: [width, height]"),
    (("display: line", "display: sparkle"), "demo.yaml:9: cards[0].display"),
    (("      location: marts.daily_sales.location_id\n", ""),
     "demo.yaml:7: cards[0]: sql uses {{location}} but `filters:` does not say"),
    (("date: marts.daily_sales.sales_date", "date: daily_sales.sales_date"),
     "is not a column reference"),
    (("name: Table", "nom: Table"), "demo.yaml:19: cards[1].nom: unknown key"),
    (("{marts}.daily_sales", "{mart}.daily_sales"), "unknown placeholder {mart}"),
])
def test_errors_name_file_line_and_field(tmp_path: Path, change: tuple[str, str],
                                         expected: str) -> None:
    path = _write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_template(path)
    assert expected in str(caught.value), str(caught.value)


@pytest.mark.e2e
def test_key_must_match_the_file_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="key 'demo' differs from the file name"):
        load_template(_write(tmp_path, GOOD, "other"))


@pytest.mark.e2e
def test_render_sql_fills_filters_and_drops_empty_ones(tmp_path: Path) -> None:
    dashboard = load_template(_write(tmp_path, GOOD))
    card = dashboard.card("revenue")
    today = date(2026, 3, 15)
    sql = render_sql(card, "acme", {"date": "past7days", "location": ["LYO-01", "O'Neil"]},
                     filters=dashboard.filters, today=today)
    assert 'FROM "acme_marts".daily_sales' in sql
    assert ('"acme_marts"."daily_sales"."sales_date" BETWEEN DATE \'2026-03-08\' AND '
            "DATE '2026-03-14'") in sql
    assert "AND \"acme_marts\".\"daily_sales\".\"location_id\" IN ('LYO-01', 'O''Neil')" in sql
    bare = render_sql(card, "acme", {}, filters=dashboard.filters, today=today)
    assert "WHERE TRUE  GROUP BY 1" in bare and "{{" not in bare and "[[" not in bare
    assert [(p.row, p.col) for p in layout(dashboard)] == [(0, 0), (6, 0)]


@pytest.mark.parametrize(("value", "bounds"), [
    ("past90days", (date(2025, 12, 15), date(2026, 3, 14))),
    ("past3months~", (date(2025, 12, 1), date(2026, 3, 31))),
    ("next2weeks", (date(2026, 3, 16), date(2026, 3, 29))),
    ("thismonth", (date(2026, 3, 1), date(2026, 3, 31))),
    ("thisweek", (date(2026, 3, 9), date(2026, 3, 15))),
    ("2026-01-01~2026-01-31", (date(2026, 1, 1), date(2026, 1, 31))),
    ("2026-01-01~", (date(2026, 1, 1), None)),
    ("2026-02", (date(2026, 2, 1), date(2026, 2, 28))),
])
def test_date_filter_values(value: str, bounds: tuple) -> None:
    assert date_bounds(value, date(2026, 3, 15)) == bounds


def test_shipped_templates_are_valid_and_cover_the_seven_dashboards() -> None:
    found = templates()
    assert set(found) == {"sales_overview", "customers", "inventory", "forecasts_anomalies",
                          "goals_kpis", "weekly_review", "metric_map"}
    for dashboard in found.values():
        # date and location, and the client's dimensions where the cards' marts carry them;
        # the metric map is of the registry and its latest periods: no filter
        expected = set() if dashboard.key == "metric_map" else {"date", "location"}
        assert {f.key for f in dashboard.filters} - {"dimensions"} == expected
        for card in dashboard.cards:
            assert "{{" not in render_sql(card, "acme", {}, filters=dashboard.filters)
