"""PanPan from generated POS exports to marts, through the same code as `goalpost demo`."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import chromium
import httpx
import openpyxl
import pandas as pd
import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from goalpost.app.cli import cli
from goalpost.app.orchestrator import run_client
from goalpost.core import registry
from goalpost.core.errors import GoalpostError
from goalpost.core.warehouse import tenants
from goalpost.metabase import report
from goalpost.sandbox.demo import apis
from goalpost.sandbox.demo import run as demo_run
from goalpost.sandbox.demo.generator import generate_panpan

pytestmark = pytest.mark.e2e

END = date(2025, 1, 31)
DAYS = 75


@pytest.fixture
def panpan(project: Path, database_url: str) -> Iterator[Path]:
    demo_run.ensure_client_file()
    folder = demo_run.demo_data_dir()
    generate_panpan(folder, end=END, days=DAYS, scale=0.08, seed=3)
    with apis.demo_apis(folder):
        yield folder


def test_demo_registers_the_shipped_example_and_serves_it_on_free_ports(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    template = Path(__file__).resolve().parents[1] / "sandbox" / "demo" / "panpan.yaml"
    shipped = template.read_text(encoding="utf-8")
    path = demo_run.ensure_client_file()
    assert path.read_text(encoding="utf-8") == shipped
    client, _ = registry.parse_client(shipped, path)
    urls = {s.name: s.config["base_url"] for s in client.sources if s.connector != "files"}
    assert urls == {"pos_api": "env:PANPAN_SQUARE_URL", "crm": "env:PANPAN_HUBSPOT_URL",
                    "stock": "env:PANPAN_ZOHO_URL"}
    # The consultant's file is theirs: kept as it is.
    path.write_text(shipped + "# mine\n", encoding="utf-8")
    assert demo_run.ensure_client_file().read_text(encoding="utf-8") == shipped + "# mine\n"
    # No demo data: said plainly, nothing started.
    with pytest.raises(GoalpostError, match="there is none in"), apis.demo_apis(
            project / "nothing"):
        pass
    # Served on free ports; the variables are set for the length of the block only.
    folder = demo_run.demo_data_dir()
    generate_panpan(folder, end=END, days=7, scale=0.02, seed=3)
    monkeypatch.delenv("PANPAN_SQUARE_URL", raising=False)
    with apis.demo_apis(folder) as served:
        assert set(served) == {"square", "hubspot", "zoho_inventory"}
        assert os.environ["PANPAN_SQUARE_URL"] == served["square"]
        assert httpx.get(served["square"] + "/v2/locations").status_code == 401
    assert "PANPAN_SQUARE_URL" not in os.environ


def fingerprints(conn: psycopg.Connection) -> dict[str, tuple[int, str]]:
    """Row count and content hash of every table and view of the client."""
    result = {}
    names = conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema LIKE 'panpan\\_%' ORDER BY 1, 2").fetchall()
    for schema, table in names:
        query = sql.SQL(
            "SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') "
            "FROM {}.{} t").format(sql.Identifier(schema), sql.Identifier(table))
        result[f"{schema}.{table}"] = tuple(conn.execute(query).fetchone())
    return result


def test_second_run_loads_nothing_and_changes_nothing(panpan, conn):
    first = run_client("panpan")
    assert first.status == "succeeded", [s.error for s in first.steps]
    assert first.rows_loaded > 0 and first.rows_quarantined == 0
    before = fingerprints(conn)
    assert before["panpan_marts.daily_sales"][0] > 0

    second = run_client("panpan")
    assert second.status == "succeeded"
    assert second.rows_loaded == 0
    extracts = [s.details for s in second.steps if s.kind == "extract"]
    assert all(d["files_loaded"] == 0 for d in extracts if "files_loaded" in d)
    api = [d for d in extracts if "records" in d]
    assert len(api) == 13 and all(d["inserted"] == d["updated"] == d["deleted"] == 0
                                  for d in api)
    assert sum(d["records"] for d in api) > 0  # read again, changed nothing
    assert fingerprints(conn) == before
    runs = conn.execute("SELECT status FROM goalpost.runs ORDER BY id").fetchall()
    assert runs == [("succeeded",), ("succeeded",)]
    steps = conn.execute(
        "SELECT count(*) FROM goalpost.run_steps WHERE status = 'succeeded'").fetchone()[0]
    assert steps == len(first.steps) + len(second.steps)


def test_marts_match_figures_computed_from_the_files(panpan, conn):
    assert run_client("panpan").status == "succeeded"
    lines = pd.concat(
        pd.read_csv(path, sep=";", decimal=",", dtype=str)
        for path in sorted(panpan.glob("sales_*.csv.gz")))
    lines["amount"] = lines["line_total"].str.replace(",", ".").map(Decimal)
    lines["day"] = pd.to_datetime(lines["sold_at"], format="%d/%m/%Y %H:%M").dt.date
    sales = lines[~lines["receipt_no"].str.startswith("RET-")]
    keys = ["day", "shop_id", "channel"]
    expected_revenue = lines.groupby(keys)["amount"].sum()
    expected_orders = sales.groupby(keys)["receipt_no"].nunique()
    expected_customers = sales.dropna(subset=["customer_id"]).groupby(keys)[
        "customer_id"].nunique()

    rows = conn.execute(
        "SELECT sales_date, location_id, channel, revenue, orders, customers "
        "FROM panpan_marts.daily_sales").fetchall()
    assert len(rows) == len(expected_revenue)
    for day, shop, channel, revenue, orders, customers in rows:
        assert revenue == expected_revenue[(day, shop, channel)]
        assert orders == expected_orders.get((day, shop, channel), 0)
        assert customers == expected_customers.get((day, shop, channel), 0)

    monthly = dict(conn.execute(
        "SELECT sales_month, sum(revenue) FROM panpan_marts.monthly_sales GROUP BY 1"
    ).fetchall())
    by_month = lines.groupby(lines["day"].map(lambda d: d.replace(day=1)))["amount"].sum()
    assert monthly == by_month.to_dict()

    kpis = dict(((m, d), v) for m, d, v in conn.execute(
        "SELECT metric, date, value FROM panpan_marts.kpi_daily WHERE dimension = 'all'"))
    for day, revenue in lines.groupby("day")["amount"].sum().items():
        assert kpis[("revenue", day)] == revenue
        assert kpis[("orders", day)] == sales[sales["day"] == day]["receipt_no"].nunique()
    per_shop = dict(((d, v), r) for d, v, r in conn.execute(
        "SELECT date, dimension_value, value FROM panpan_marts.kpi_daily "
        "WHERE metric = 'revenue' AND dimension = 'location'"))
    assert per_shop == lines.groupby(["day", "shop_id"])["amount"].sum().to_dict()


def test_reader_reads_marts_only(panpan, conn, database_url):
    assert run_client("panpan").status == "succeeded"
    reader = psycopg.conninfo.make_conninfo(
        database_url, user="panpan_reader", password=tenants.reader_password("panpan"))
    with psycopg.connect(reader, autocommit=True) as as_reader:
        assert as_reader.execute("SELECT count(*) FROM panpan_marts.daily_sales").fetchone()[0]
        for forbidden in ("panpan_raw.pos__sales", "panpan_staging.orders"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                as_reader.execute(f"SELECT 1 FROM {forbidden}")


def test_demo_command_prints_a_summary(project, database_url):
    result = CliRunner().invoke(cli, ["demo", "--days", "40", "--scale", "0.05"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "PanPan demo: run 1 succeeded" in result.output
    assert "panpan_marts" in result.output
    assert "Revenue of the last 7 days per shop" in result.output
    assert "PanPan Croix-Rousse" in result.output
    again = CliRunner().invoke(cli, ["demo", "--days", "40", "--scale", "0.05"],
                               catch_exceptions=False)
    assert again.exit_code == 0 and "already in" in again.output
    assert "run 2 succeeded" in again.output


def test_customer_marts_match_pandas(panpan, conn):
    assert run_client("panpan").status == "succeeded"
    lines = pd.concat(
        pd.read_csv(path, sep=";", decimal=",", dtype=str)
        for path in sorted(panpan.glob("sales_*.csv.gz")))
    lines["amount"] = lines["line_total"].str.replace(",", ".").map(Decimal)
    lines["items"] = lines["quantity"].map(Decimal)
    lines["day"] = pd.to_datetime(lines["sold_at"], format="%d/%m/%Y %H:%M").dt.date
    orders = lines.groupby("receipt_no").agg(
        customer=("customer_id", "first"), day=("day", "min"), total=("amount", "sum"),
        items=("items", "sum"))
    sales = orders[orders["customer"].notna() & (orders["total"] >= 0)].copy()
    sales["month"] = sales["day"].map(lambda d: d.replace(day=1))
    first = sales.groupby("customer")["month"].min()
    sales["first"] = sales["customer"].map(first)

    got = {row[0]: row[1:] for row in conn.execute(
        "SELECT month, new_customers, active_customers, returning_customers "
        "FROM panpan_marts.customers_monthly")}
    for month, group in sales.groupby("month"):
        active = group["customer"].nunique()
        new = group.loc[group["first"] == month, "customer"].nunique()
        assert got[month] == (new, active, active - new)

    cohorts = {(c, m): (size, active) for c, m, size, active in conn.execute(
        "SELECT cohort_month, months_since, cohort_size, active_customers "
        "FROM panpan_marts.customer_cohorts")}
    sizes = first.value_counts()
    for (cohort, month), group in sales.groupby(["first", "month"]):
        since = (month.year - cohort.year) * 12 + month.month - cohort.month
        assert cohorts[(cohort, since)] == (sizes[cohort], group["customer"].nunique())
    assert len(cohorts) == sales.groupby(["first", "month"]).ngroups


@chromium.needed
def test_metrics_beyond_the_till_and_the_metric_map_in_chromium(panpan, conn, tmp_path):
    assert run_client("panpan").status == "succeeded"
    lines = pd.concat(
        pd.read_csv(path, sep=";", decimal=",", dtype=str)
        for path in sorted(panpan.glob("sales_*.csv.gz")))
    lines["day"] = pd.to_datetime(lines["sold_at"], format="%d/%m/%Y %H:%M").dt.date
    counter = lines[~lines["receipt_no"].str.startswith("RET-")
                    & (lines["channel"] == "en_boutique")]
    receipts = counter.groupby(["day", "shop_id"])["receipt_no"].nunique()
    visitors = pd.read_csv(panpan / "footfall.csv", dtype={"visitors": int})
    visitors["day"] = pd.to_datetime(visitors["day"]).dt.date
    visitors = visitors.set_index(["day", "shop_id"])["visitors"]
    # Footfall per shop and day as the door counters gave it; conversion = the counter's
    # receipts over those visitors, per shop day and for the whole business.
    got = {(m, d, v): float(x) for m, d, v, x in conn.execute(
        "SELECT metric, date, dimension_value, value FROM panpan_marts.kpi_daily "
        "WHERE metric IN ('footfall', 'conversion') AND dimension = 'location'")}
    assert len(visitors) > 100
    for (day, shop), count in visitors.items():
        assert got[("footfall", day, shop)] == count
        assert got[("conversion", day, shop)] == pytest.approx(
            receipts.get((day, shop), 0) / count, abs=1e-4)
    day = visitors.index[0][0]
    total = conn.execute("SELECT value FROM panpan_marts.kpi_daily WHERE metric = 'conversion' "
                         "AND dimension = 'all' AND date = %s", (day,)).fetchone()[0]
    assert float(total) == pytest.approx(
        receipts.xs(day, level="day").sum() / visitors.xs(day, level="day").sum(), abs=1e-4)
    # Marketing spend by month from the sheet; CAC = spend / new customers of the month.
    sheet = openpyxl.load_workbook(panpan / "marketing_spend.xlsx")["Spend"]
    spend = {month.date(): value for month, value in sheet.iter_rows(min_row=2,
                                                                      values_only=True)}
    monthly = {(m, d): v for m, d, v in conn.execute(
        "SELECT metric, period_start, value FROM panpan_marts.kpi_values WHERE grain = 'month' "
        "AND dimension = 'all' AND metric IN ('marketing_spend', 'new_customers', 'cac')")}
    assert {d: float(v) for (m, d), v in monthly.items() if m == "marketing_spend"} == spend
    for (metric, month), value in monthly.items():
        if metric == "cac" and value is not None:
            assert float(value) == pytest.approx(
                spend[month] / float(monthly[("new_customers", month)]), abs=1e-3)

    made = report.build_report("panpan", out=tmp_path / "panpan.html")
    metric_errors = [e for e in made.errors if e.dashboard == "Metric map"]
    assert metric_errors == []
    dom = chromium.layout(made.path).dom
    names = {row[0] for row in conn.execute("SELECT name FROM panpan_marts.metric_dictionary")}
    edges = set(conn.execute("SELECT source, target, kind FROM "
                             "panpan_marts.metric_relationships").fetchall())
    drawn_nodes = set(re.findall(r'<g class="node" data-metric="([^"]+)"', dom))
    drawn_edges = set(re.findall(r'<g class="edge" data-source="([^"]+)" data-target="([^"]+)" '
                                 r'data-kind="([^"]+)"', dom))
    assert {"footfall", "conversion", "marketing_spend", "cac"} <= names
    assert drawn_nodes == names
    assert drawn_edges == edges
    assert ("marketing_spend", "new_customers", "relationship") in edges
    verdict = re.search(r'data-source="marketing_spend" data-target="new_customers" '
                        r'data-kind="relationship" data-verdict="([^"]*)"', dom).group(1)
    measured = conn.execute("SELECT verdict FROM panpan_insights.correlations WHERE "
                            "relationship = 'marketing_spend -> new_customers' AND "
                            "dimension = 'all'").fetchone()[0]
    assert verdict == measured
