"""Metric values entered by hand (`goalpost metrics record|import`): checked before anything
is written, every value kept with who and when, the latest one the point's value."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from csv_files import write_csv

CLIENT = {
    "name": "Shop",
    "metrics": {
        "footfall": {"label": "Footfall", "unit": "count", "aggregation": "sum",
                     "dimensions": ["location"]},
        "marketing_spend": {"label": "Spend", "unit": "currency", "aggregation": "sum",
                            "rhythm": "month", "dimensions": []},
        "staff_hours": {"label": "Staff hours", "unit": "hours", "aggregation": "sum",
                        "rhythm": "week"},
        "cac": {"label": "CAC", "formula": "marketing_spend / new_customers",
                "unit": "currency"},
    },
}


@pytest.fixture
def shop(project: Path, database_url: str) -> Path:
    (project / "clients" / "shop.yaml").write_bytes(orjson.dumps(CLIENT))
    return project


def points(conn) -> list[tuple]:
    return conn.execute("SELECT metric, period_start::text, dimension, dimension_value, "
                        "value::text, recorded_by, origin FROM goalpost.metric_points "
                        "ORDER BY id").fetchall()


def test_record_checks_the_point_and_keeps_every_value(shop, conn, run_cli):
    ok = run_cli("metrics", "record", "shop", "marketing_spend", "2025-03", "1200.50",
                 "--by", "Sam")
    assert ok.exit_code == 0, ok.output
    assert run_cli("metrics", "record", "shop", "marketing_spend", "2025-03-01", "1250",
                   "--by", "Alex").exit_code == 0
    assert run_cli("metrics", "record", "shop", "footfall", "2025-03-05", "31",
                   "--dimension", "location=LYO-01").exit_code == 0
    assert points(conn)[:2] == [
        ("marketing_spend", "2025-03-01", "", "", "1200.50", "Sam", "record"),
        ("marketing_spend", "2025-03-01", "", "", "1250", "Alex", "record")]
    assert points(conn)[2][:5] == ("footfall", "2025-03-05", "location", "LYO-01", "31")
    history = run_cli("metrics", "history", "shop", "--json")
    rows = orjson.loads(history.output)
    assert [(r["value"], r["current"]) for r in rows if r["metric"] == "marketing_spend"] == [
        ("1250", True), ("1200.50", False)]
    for args, words in [
        (("revenue", "2025-03-01", "10"), "revenue is computed from the sales receipts"),
        (("cac", "2025-03-01", "10"), "cac is computed by its formula"),
        (("nope", "2025-03-01", "10"), "unknown metric 'nope'"),
        (("marketing_spend", "2025-03-15", "10"),
         "2025-03-15 is not the first of a month: marketing_spend is monthly"),
        (("staff_hours", "2025-03-05", "10"), "2025-03-05 is not a Monday"),
        (("footfall", "05/03/2025", "10"), "'05/03/2025' is not a date"),
        (("footfall", "2025-03-05", "many"), "'many' is not a number"),
        (("footfall", "2025-03-05", "10", "--dimension", "channel=web"),
         "footfall is not computed per channel"),
        (("footfall", "2025-03-05", "10", "--dimension", "LYO-01"), "is not DIMENSION=VALUE"),
    ]:
        refused = run_cli("metrics", "record", "shop", *args)
        assert refused.exit_code == 2 and words in refused.output, (args, refused.output)
    assert len(points(conn)) == 3


def test_an_import_file_is_written_whole_or_not_at_all(shop, conn, run_cli):
    good = shop / "points.csv"
    write_csv(good, [
        {"metric": "footfall", "date": "03/03/2025", "dimension": "location",
         "dimension_value": "S1", "value": "20"},
        {"metric": "footfall", "date": "04/03/2025", "dimension": "location",
         "dimension_value": "S1", "value": "1 250,5"},
        {"metric": "marketing_spend", "date": "01/03/2025", "dimension": "",
         "dimension_value": "", "value": "900"},
    ])
    done = run_cli("metrics", "import", "shop", str(good), "--by", "Sam")
    assert done.exit_code == 0, done.output
    assert "recorded 3 values of footfall, marketing_spend from points.csv" in done.output
    assert [p[:5] for p in points(conn)] == [
        ("footfall", "2025-03-03", "location", "S1", "20"),
        ("footfall", "2025-03-04", "location", "S1", "1250.5"),
        ("marketing_spend", "2025-03-01", "", "", "900")]
    assert {p[6] for p in points(conn)} == {"import points.csv"}
    bad = shop / "bad.csv"
    write_csv(bad, [
        {"metric": "footfall", "date": "2025-03-03", "dimension": "location",
         "dimension_value": "S1", "value": "20"},
        {"metric": "footfal", "date": "2025-03-04", "dimension": "", "dimension_value": "",
         "value": "3"},
        {"metric": "marketing_spend", "date": "2025-03-04", "dimension": "",
         "dimension_value": "", "value": "3"},
        {"metric": "footfall", "date": "2025-03-03", "dimension": "location",
         "dimension_value": "S1", "value": "21"},
        {"metric": "footfall", "date": "2025-03-05", "dimension": "location",
         "dimension_value": "", "value": "4"},
        {"metric": "footfall", "date": "2025-03-06", "dimension": "", "dimension_value": "",
         "value": "n/a"},
    ])
    refused = run_cli("metrics", "import", "shop", str(bad))
    assert refused.exit_code == 2
    output = refused.output
    assert "5 row(s) cannot be imported; nothing was written" in output
    assert "row 3: unknown metric 'footfal'" in output
    assert "row 4: 2025-03-04 is not the first of a month" in output
    assert "row 5: footfall 2025-03-03 (location=S1) is already on row 2 of this file" in output
    assert "row 6: give both dimension and dimension_value" in output
    assert "row 7: 'n/a' is not a number" in output
    assert len(points(conn)) == 3
    missing = shop / "no_value.csv"
    write_csv(missing, [{"metric": "footfall", "date": "2025-03-03"}])
    refused = run_cli("metrics", "import", "shop", str(missing))
    assert refused.exit_code == 2 and "no column value" in refused.output
    one = shop / "spend.csv"
    write_csv(one, [{"date": "2025-04-01", "value": "700"}])
    assert run_cli("metrics", "import", "shop", str(one), "--metric",
                   "marketing_spend").exit_code == 0
    assert points(conn)[-1][:5] == ("marketing_spend", "2025-04-01", "", "", "700")
