"""The `goalpost metabase` commands, and the remaining calls: renames, a removed owner, a lost
API key, a table built after the first apply."""

from __future__ import annotations

from pathlib import Path

import orjson
import psycopg
import pytest
from metabase_fixtures import SOURCES, make_client, standin  # noqa: F401 - fixture

from goalpost.metabase.api import key_path
from goalpost.metabase.template import templates
from goalpost.sandbox.metabase_standin.server import StandinServer


def test_bootstrap_plan_apply_commands(standin: StandinServer, project: Path,  # noqa: F811
                                       conn: psycopg.Connection, run_cli) -> None:  # noqa: ANN001
    make_client(project, conn, "acme")
    result = run_cli("metabase", "plan", "acme")
    assert result.exit_code == 2 and "no Metabase API key" in result.output
    assert "Traceback" not in result.output
    result = run_cli("metabase", "bootstrap")
    assert result.exit_code == 0, result.output
    assert f"saved to {key_path()}" in result.output
    result = run_cli("metabase", "plan", "acme")
    assert result.exit_code == 0, result.output
    assert "+ database    database" in result.output
    assert "+ dashboard   sales_overview" in result.output
    result = run_cli("metabase", "apply", "acme", "--json")
    assert result.exit_code == 0, result.output
    applied = orjson.loads(result.output)
    assert applied["plan"]["counts"]["create"] == len(applied["created"])
    assert applied["permission_entries"] > 0
    result = run_cli("metabase", "plan", "acme", "--json")
    assert orjson.loads(result.output)["changes"] == []
    result = run_cli("metabase", "apply", "acme")
    assert "no changes" in result.output and "0 created, 0 updated, 0 deleted" in result.output


def test_unreachable_metabase_is_a_message(project: Path, database_url: str, run_cli,  # noqa: ANN001
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOALPOST_METABASE_URL", "http://127.0.0.1:9")
    result = run_cli("metabase", "bootstrap")
    assert result.exit_code == 4
    assert "cannot reach Metabase at http://127.0.0.1:9 (reading Metabase's setup state)" \
        in result.output


def test_renames_removed_owner_lost_key_and_new_tables(standin: StandinServer,  # noqa: F811
                                                       project: Path, conn: psycopg.Connection,
                                                       run_cli) -> None:  # noqa: ANN001
    owners = [{"name": "Ann Owner", "email": "ann@acme.example"},
              {"name": "Bob Owner", "email": "bob@acme.example"}]
    make_client(project, conn, "acme", owners=owners, dashboards=["sales_overview"])
    conn.execute("ALTER TABLE acme_marts.stockouts RENAME TO stockouts_later")
    assert run_cli("metabase", "bootstrap").exit_code == 0
    assert run_cli("metabase", "apply", "acme").exit_code == 0
    state = standin.metabase.state
    assert len(state.dashboards) == 1
    # A renamed client, one owner fewer, and a new column a card filters on.
    (project / "clients" / "acme.yaml").write_bytes(orjson.dumps({
        "name": "Acme Bakery", "owners": owners[:1], "dashboards": ["sales_overview"],
        "sources": SOURCES}))
    result = run_cli("metabase", "apply", "acme")
    assert result.exit_code == 0, result.output
    assert "- membership  bob@acme.example" in result.output
    seen = {(r.method, r.path.rsplit("/", 1)[0] if r.path[-1].isdigit() else r.path)
            for r in standin.metabase.writes()}
    assert {("PUT", "/api/database"), ("PUT", "/api/permissions/group"),
            ("PUT", "/api/collection"), ("DELETE", "/api/permissions/membership")} <= seen
    assert {d["name"] for d in state.databases.values()} == {"Acme Bakery (acme)"}
    bob = next(u for u in state.users.values() if u["email"] == "bob@acme.example")
    assert bob["is_active"]  # the user stays; only the membership goes
    assert run_cli("metabase", "plan", "acme").output.count("no changes") == 1
    # The API key is lost: bootstrap logs in with the admin's password and regenerates it.
    key_path().unlink()
    result = run_cli("metabase", "bootstrap")
    assert result.exit_code == 0, result.output
    assert "logged in as admin@goalpost.invalid" in result.output
    assert ("PUT", "/api/api-key/1/regenerate") in {(r.method, r.path)
                                                    for r in standin.metabase.writes()}
    assert "no changes" in run_cli("metabase", "plan", "acme").output
    # The inventory dashboard needs a table built after the first sync: apply re-syncs.
    conn.execute("ALTER TABLE acme_marts.stockouts_later RENAME TO stockouts")
    (project / "clients" / "acme.yaml").write_bytes(orjson.dumps({
        "name": "Acme Bakery", "owners": owners[:1], "sources": SOURCES}))
    before = len(standin.metabase.seen)
    result = run_cli("metabase", "apply", "acme")
    assert result.exit_code == 0, result.output
    assert len(state.dashboards) == len(templates())
    assert any(r.path.endswith("/sync_schema") for r in standin.metabase.seen[before:])
    assert "no changes" in run_cli("metabase", "plan", "acme").output


def test_standin_on_a_busy_port_says_so(standin: StandinServer, run_cli) -> None:  # noqa: F811,ANN001
    port = int(standin.url.rsplit(":", 1)[1])
    result = run_cli("metabase", "standin", "--port", str(port))
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "pick another with --port" in result.output and "Traceback" not in result.output
