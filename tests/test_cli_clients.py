"""`goalpost client ...` against a real database: files written, tenants provisioned."""

from __future__ import annotations

import json

import psycopg
import pytest

from goalpost.core.warehouse import tenants


def schemas(conn, slug):
    return {r[0] for r in conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{slug}\\_%",))}


def test_add_list_show_remove(run_cli, conn, project):
    result = run_cli("client", "add", "bikes", "--name", "Bike Shop", "--timezone",
                     "Europe/London", "--currency", "GBP", "--country", "GB",
                     "--owner", "Sam Rider <sam@bikes.example>", "--yes")
    assert result.exit_code == 0, result.output
    text = (project / "clients" / "bikes.yaml").read_text()
    assert "Bike Shop" in text and "sam@bikes.example" in text
    assert schemas(conn, "bikes") == {"bikes_raw", "bikes_staging", "bikes_marts",
                                      "bikes_insights"}
    assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname='bikes_reader'").fetchone()
    assert conn.execute("SELECT name FROM goalpost.clients").fetchall() == [("Bike Shop",)]

    again = run_cli("client", "add", "bikes", "--name", "Other", "--yes")
    assert again.exit_code == 0 and "already exists" in again.output
    assert "Bike Shop" in (project / "clients" / "bikes.yaml").read_text()

    listed = json.loads(run_cli("client", "list", "--json").output)
    assert [(c["slug"], c["valid"]) for c in listed] == [("bikes", True)]
    shown = json.loads(run_cli("client", "show", "bikes", "--json").output)
    assert shown["currency"] == "GBP" and shown["owners"][0]["name"] == "Sam Rider"

    refused = run_cli("client", "remove", "bikes")
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert run_cli("client", "remove", "bikes", "--yes").exit_code == 0
    assert schemas(conn, "bikes") == set()
    assert not (project / "clients" / "bikes.yaml").exists()
    assert not conn.execute("SELECT 1 FROM pg_roles WHERE rolname='bikes_reader'").fetchone()


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["client", "add", "Bad-Slug", "--name", "x", "--yes"], 2, "invalid client slug"),
        (["client", "add", "shop", "--yes"], 2, "--name is required"),
        (["client", "add", "shop", "--name", "x", "--timezone", "Nowhere", "--yes"], 2,
         "unknown time zone"),
        (["client", "show", "ghost"], 3, "no client 'ghost'"),
        (["run", "ghost"], 3, "no client 'ghost'"),
    ],
)
def test_user_mistakes_get_messages_not_tracebacks(run_cli, args, code, words):
    result = run_cli(*args)
    assert result.exit_code == code
    assert words in result.output
    assert "Traceback" not in result.output


def test_validate_reports_every_file(run_cli, project):
    (project / "clients" / "good.yaml").write_text("name: Good\n")
    (project / "clients" / "bad.yaml").write_text("name: Bad\ncurrency: euros\n")
    result = run_cli("client", "validate")
    assert result.exit_code == 2
    assert "ok       good.yaml" in result.output
    assert "clients/bad.yaml:2: currency" in result.output


def test_reader_role_is_confined_to_its_client(run_cli, conn, database_url):
    for slug in ("alpha", "beta"):
        assert run_cli("client", "add", slug, "--name", slug, "--yes").exit_code == 0
        for layer in ("raw", "marts"):
            conn.execute(f"CREATE TABLE {slug}_{layer}.t AS SELECT 1 AS x")
    reader = psycopg.conninfo.make_conninfo(
        database_url, user="alpha_reader", password=tenants.reader_password("alpha"))
    with psycopg.connect(reader, autocommit=True) as as_reader:
        assert as_reader.execute("SELECT x FROM alpha_marts.t").fetchone() == (1,)
        for forbidden in ("alpha_raw.t", "beta_marts.t", "beta_raw.t", "goalpost.clients"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                as_reader.execute(f"SELECT * FROM {forbidden}")


def test_a_reader_cannot_hold_another_clients_run_lock(run_cli, conn, database_url):
    from goalpost.core.runs import RunRecorder

    for slug in ("alpha", "beta"):
        assert run_cli("client", "add", slug, "--name", slug, "--yes").exit_code == 0
    reader = psycopg.conninfo.make_conninfo(
        database_url, user="beta_reader", password=tenants.reader_password("beta"))
    with psycopg.connect(reader, autocommit=True) as as_reader:
        for call in ("pg_advisory_lock(hashtextextended('goalpost.run:alpha', 0))",
                     "pg_try_advisory_lock(hashtextextended('goalpost.run:alpha', 0))",
                     "pg_advisory_lock_shared(1)", "pg_advisory_lock(1, 2)",
                     "pg_advisory_xact_lock(hashtextextended('goalpost.alerts:alpha', 0))"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                as_reader.execute(f"SELECT {call}")
        RunRecorder(database_url, "alpha").finish({})  # not blocked
    assert "ok   isolation: readers cannot take advisory locks" in run_cli("doctor").output


def test_what_a_reader_changes_on_itself_is_put_back(run_cli, conn, database_url, project):
    from goalpost.app.scheduler import Scheduler

    assert run_cli("client", "add", "alpha", "--name", "Alpha", "--yes").exit_code == 0
    password = tenants.reader_password("alpha")
    reader = psycopg.conninfo.make_conninfo(database_url, user="alpha_reader",
                                            password=password)
    with psycopg.connect(reader, autocommit=True) as as_reader:
        # Postgres lets any role do this to itself (as Metabase's SQL editor would, for one).
        as_reader.execute("ALTER ROLE alpha_reader PASSWORD 'locked-out'")
        as_reader.execute("ALTER ROLE alpha_reader SET statement_timeout = 1")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(reader).close()
    scheduler = Scheduler(database_url, instance="t", backup_schedule=None)
    scheduler.sync_clients()
    scheduler.heartbeat()  # every few seconds while a scheduler runs, and at every run
    with psycopg.connect(reader, autocommit=True) as as_reader:
        assert as_reader.execute("SHOW statement_timeout").fetchone() == ("0",)
    assert tenants.repair_reader(conn, "alpha") == []
