"""The extension runner: inputs from kpi_daily, atomic writes, nothing redone without news."""

from __future__ import annotations

from datetime import date

import pandas as pd
import psycopg
import pytest

from goalpost.core.errors import GoalpostError
from goalpost.core.registry.models import Client
from goalpost.core.warehouse import tenants
from goalpost.extensions.api import Column, Extension, Inputs, JobContext
from goalpost.extensions.runner import run_extension

CLIENT = Client.model_validate({"name": "Shop", "extensions": []})


def weekly_totals(job: JobContext) -> pd.DataFrame:
    data = job.data.assign(week=pd.to_datetime(job.data["date"]).dt.to_period("W").dt.start_time)
    totals = data.groupby(["metric", "week"], as_index=False)["value"].sum()
    return totals.assign(week=totals["week"].dt.date, value=totals["value"].astype(float))


WEEKLY = Extension(
    name="weekly", description="weekly totals", version="1", table="weekly_totals",
    columns=(Column("metric", "text"), Column("week", "date"), Column("value", "number")),
    inputs=Inputs(metrics=("revenue",)), key=("metric", "week"), run=weekly_totals)


@pytest.fixture
def shop(conn: psycopg.Connection) -> psycopg.Connection:
    tenants.provision(conn, "shop")
    conn.execute("CREATE TABLE shop_marts.kpi_daily (metric text, date date, dimension text, "
                 "dimension_value text, value numeric)")
    conn.execute("INSERT INTO shop_marts.kpi_daily VALUES "
                 "('revenue', '2025-01-06', 'all', 'all', 10), "
                 "('revenue', '2025-01-07', 'all', 'all', 5), "
                 "('orders', '2025-01-07', 'all', 'all', 2), "
                 "('revenue', '2025-01-13', 'all', 'all', 7)")
    return conn


def table(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT metric, week, value, run_id, model_version "
                        "FROM shop_insights.weekly_totals ORDER BY week").fetchall()


def test_writes_reads_only_its_metrics_and_skips_when_nothing_changed(shop) -> None:
    first = run_extension(shop, "shop", CLIENT, WEEKLY, run_id=1)
    assert (first.status, first.rows) == ("written", 2)
    assert table(shop) == [("revenue", date(2025, 1, 6), 15.0, 1, "1"),
                           ("revenue", date(2025, 1, 13), 7.0, 1, "1")]
    # The reader sees the insights.
    assert shop.execute("SELECT has_table_privilege('shop_reader', "
                        "'shop_insights.weekly_totals', 'SELECT')").fetchone() == (True,)

    again = run_extension(shop, "shop", CLIENT, WEEKLY, run_id=2)
    assert again.status == "unchanged" and table(shop)[0][3] == 1
    # A change of the client's configuration (its settings, goals...) is a change of inputs.
    edited = CLIENT.model_copy(update={"extension_settings": {"weekly": {"weeks": 2}}})
    assert run_extension(shop, "shop", edited, WEEKLY, run_id=2).status == "written"

    shop.execute("INSERT INTO shop_marts.kpi_daily VALUES ('revenue', '2025-01-14', 'all', "
                 "'all', 1)")
    assert run_extension(shop, "shop", edited, WEEKLY, run_id=3).status == "written"
    assert table(shop)[-1] == ("revenue", date(2025, 1, 13), 8.0, 3, "1")


def test_a_failed_job_keeps_the_previous_output(shop) -> None:
    run_extension(shop, "shop", CLIENT, WEEKLY, run_id=1)
    before = table(shop)

    def broken(job: JobContext) -> pd.DataFrame:
        raise ZeroDivisionError("division by zero")

    def wrong_columns(job: JobContext) -> pd.DataFrame:
        return weekly_totals(job).rename(columns={"value": "total"})

    def duplicated(job: JobContext) -> pd.DataFrame:
        rows = weekly_totals(job)
        return pd.concat([rows, rows])

    shop.execute("INSERT INTO shop_marts.kpi_daily VALUES ('revenue', '2025-01-20', 'all', "
                 "'all', 1)")
    for run, message in ((broken, "extension weekly failed: ZeroDivisionError"),
                         (wrong_columns, "missing value; undeclared total"),
                         (duplicated, "rows with the same key (metric, week)")):
        failing = Extension(**{**WEEKLY.__dict__, "run": run})
        with pytest.raises(GoalpostError, match=message.replace("(", r"\(").replace(")", r"\)")):
            run_extension(shop, "shop", CLIENT, failing, run_id=9)
        assert table(shop) == before
