"""Backups against a real Postgres: create, drop, restore, verify; corruption refused;
retention."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from goalpost.app import clients
from goalpost.backup.core import (
    Backup,
    BackupError,
    create_backup,
    list_backups,
    plan_prune,
    restore_backup,
    table_fingerprints,
    verify_backup,
)
from goalpost.core.registry.models import Client
from goalpost.core.warehouse import tenants


@pytest.fixture
def shop(conn, project: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GOALPOST_BACKUP_DIR", str(project / "backups"))
    clients.sync(conn, "shop", Client(name="Shop"))
    conn.execute("CREATE TABLE shop_raw.pos__sales AS SELECT g AS id, md5(g::text) AS note, "
                 "g * 1.5 AS amount FROM generate_series(1, 5000) g")
    conn.execute("CREATE TABLE shop_marts.daily AS SELECT g AS day, g * 2 AS revenue "
                 "FROM generate_series(1, 30) g")
    conn.execute("INSERT INTO goalpost.extract_state (client, source, stream, cursor) "
                 "VALUES ('shop', 'pos', 'sales', '{\"*\": 42}')")
    clients.sync(conn, "other", Client(name="Other"))
    conn.execute("CREATE TABLE other_marts.kept AS SELECT 1 AS x")
    return "shop"


def test_client_backup_drop_restore_verify(shop, conn, database_url):
    made = create_backup(conn, database_url, client="shop")
    assert made.manifest["tables"]["shop_raw.pos__sales"]["rows"] == 5000
    before = table_fingerprints(conn, made.manifest["schemas"])
    assert before == made.manifest["tables"]

    tenants.deprovision(conn, "shop")
    assert conn.execute("SELECT to_regclass('shop_raw.pos__sales')").fetchone() == (None,)
    restore_backup(conn, database_url, made)
    assert table_fingerprints(conn, made.manifest["schemas"]) == before
    assert conn.execute("SELECT cursor FROM goalpost.extract_state WHERE client = 'shop'"
                        ).fetchone() == ({"*": 42},)
    assert conn.execute("SELECT name FROM goalpost.clients WHERE slug = 'shop'").fetchone() \
        == ("Shop",)
    assert conn.execute("SELECT x FROM other_marts.kept").fetchone() == (1,)  # untouched
    role = conn.execute("SELECT has_table_privilege('shop_reader', 'shop_marts.daily', "
                        "'SELECT')").fetchone()
    assert role == (True,)

    report = verify_backup(conn, database_url, made)
    assert report["ok"] and report["tables"] == len(before)
    assert [b.id for b in list_backups()] == [made.id]


def test_corrupted_backup_is_refused(shop, conn, database_url):
    made = create_backup(conn, database_url, client="shop")
    dump = made.path / "dump.pgdump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    for action in (lambda: verify_backup(conn, database_url, made),
                   lambda: restore_backup(conn, database_url, made)):
        with pytest.raises(BackupError, match="does not match its checksum"):
            action()
    assert conn.execute("SELECT count(*) FROM shop_raw.pos__sales").fetchone() == (5000,)


def test_full_backup_verifies(shop, conn, database_url):
    made = create_backup(conn, database_url)
    assert "goalpost.extract_state" in made.manifest["tables"]
    assert verify_backup(conn, database_url, made)["ok"]


def backup_at(moment: datetime, client: str | None = None) -> Backup:
    return Backup(moment.strftime("%Y%m%dT%H%M%SZ") + (f"-{client}" if client else ""),
                  Path("."), {"created_at": moment.isoformat(), "client": client})


def test_retention_keeps_daily_weekly_monthly():
    now = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    backups = [backup_at(now - timedelta(days=d)) for d in range(0, 120)]
    backups += [backup_at(now - timedelta(days=d, hours=1)) for d in range(0, 3)]  # extras
    kept, deleted = plan_prune(backups, daily=7, weekly=4, monthly=3, now=now)
    kept_days = sorted({(now - b.created_at).days for b in kept})
    assert kept_days[:7] == list(range(7))
    assert len(kept) == len({b.id for b in kept}) and len(kept) + len(deleted) == len(backups)
    months = {(b.created_at.year, b.created_at.month) for b in kept}
    assert months == {(2026, 12), (2026, 11), (2026, 10)} | months  # the 3 newest months
    assert all(b.created_at > now - timedelta(days=100) for b in kept)
    assert len(kept) <= 7 + 4 + 3


def test_backup_commands(shop, run_cli):
    made = json.loads(run_cli("backup", "create", "--client", "shop", "--json").output)
    assert made["client"] == "shop" and made["rows"] == 5030
    listed = json.loads(run_cli("backup", "list", "--json").output)
    assert [b["id"] for b in listed] == [made["id"]]
    verified = run_cli("backup", "verify", made["id"])
    assert verified.exit_code == 0 and "ok" in verified.output
    refused = run_cli("backup", "restore", made["id"])
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert run_cli("backup", "restore", made["id"], "--yes").exit_code == 0
    missing = run_cli("backup", "verify", "nope")
    assert missing.exit_code == 3 and "no backup 'nope'" in missing.output
    pruned = run_cli("backup", "prune", "--dry-run")
    assert "kept 1 backup(s)" in pruned.output


@pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is not installed")
def test_backup_goes_to_an_rclone_remote_and_comes_back(shop, conn, database_url, project,
                                                        run_cli):
    remote = f":local:{project / 'remote'}"
    made = json.loads(run_cli("backup", "create", "--client", "shop", "--remote", remote,
                              "--json").output)
    assert (project / "remote" / made["id"] / "manifest.json").exists()
    shutil.rmtree(project / "backups" / made["id"])
    tenants.deprovision(conn, "shop")
    restored = run_cli("backup", "restore", made["id"], "--remote", remote, "--yes")
    assert restored.exit_code == 0, restored.output
    assert conn.execute("SELECT count(*) FROM shop_raw.pos__sales").fetchone() == (5000,)


def test_client_export_for_offboarding(shop, conn, project, run_cli):
    import zipfile

    (project / "clients" / "shop.yaml").write_text("name: Shop\n")
    target = project / "shop.zip"
    shown = json.loads(run_cli("client", "export", "shop", "--to", str(target), "--json").output)
    assert shown["tables"]["shop_raw.pos__sales"] == 5000
    with zipfile.ZipFile(target) as archive:
        names = set(archive.namelist())
        assert {"shop_raw/pos__sales.csv", "shop_marts/daily.csv", "clients/shop.yaml",
                "manifest.json"} <= names
        lines = archive.read("shop_marts/daily.csv").decode().splitlines()
        assert lines[0] == "day,revenue" and len(lines) == 31


def test_a_damaged_manifest_is_listed_and_refused_not_a_crash(shop, conn, database_url,
                                                              run_cli):
    good = create_backup(conn, database_url, client="shop")
    truncated = create_backup(conn, database_url, client="shop")
    edited = create_backup(conn, database_url)
    text = (truncated.path / "manifest.json").read_text()
    (truncated.path / "manifest.json").write_text(text[: len(text) // 2])
    (edited.path / "manifest.json").write_text(json.dumps({"id": edited.id, "tables": []}))

    listed = run_cli("backup", "list")
    assert listed.exit_code == 0, listed.output
    assert good.id in listed.output and "Traceback" not in listed.output
    assert f"{truncated.id:32} UNUSABLE: backup {truncated.id}: manifest.json is unreadable" \
        in listed.output
    assert f"{edited.id:32} UNUSABLE: backup {edited.id}: manifest.json is damaged: " \
           "created_at is not a date and time; files is missing or incomplete" in listed.output
    items = {item["id"]: item for item in json.loads(run_cli("backup", "list", "--json").output)}
    assert items[good.id]["problem"] is None and items[good.id]["rows"] == 5030
    assert items[truncated.id]["problem"] and items[edited.id]["problem"]

    for bad in (truncated.id, edited.id):
        for command in (("backup", "verify", bad), ("backup", "restore", bad, "--yes")):
            refused = run_cli(*command)
            assert refused.exit_code == 1 and "cannot be used" in refused.output
            assert "Traceback" not in refused.output
    pruned = run_cli("backup", "prune", "--keep-daily", "0", "--keep-weekly", "0",
                     "--keep-monthly", "0")
    assert f"kept {truncated.id}, unusable" in pruned.output
    assert truncated.path.exists() and edited.path.exists()


def test_restore_into_another_database_hides_the_password_and_the_client_can_go(
        shop, conn, database_url, run_cli):
    password = psycopg.conninfo.conninfo_to_dict(database_url)["password"]
    made = create_backup(conn, database_url, client="shop")
    try:
        restored = run_cli("backup", "restore", made.id, "--into", "shop_copy", "--yes")
        assert restored.exit_code == 0, restored.output
        assert password not in restored.output
        assert "password=***" in restored.output and "dbname=shop_copy" in restored.output
        removed = run_cli("client", "remove", "shop", "--yes")
        assert removed.exit_code == 0, removed.output
        assert "its grants in shop_copy" in removed.output
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'shop_reader'"
                            ).fetchone() is None
        copy = psycopg.conninfo.make_conninfo(database_url, dbname="shop_copy")
        with psycopg.connect(copy) as restored_copy:  # the copy's data is left as it was
            assert restored_copy.execute("SELECT count(*) FROM shop_raw.pos__sales"
                                         ).fetchone() == (5000,)
    finally:
        conn.execute("DROP DATABASE IF EXISTS shop_copy WITH (FORCE)")


def test_export_escapes_what_a_spreadsheet_would_run(shop, conn, project):
    import csv
    import io
    import zipfile

    from goalpost.backup.core import export_client

    cells = ["=cmd|' /C calc'!A0", "+1+2", "-2+3", "@SUM(A1)", "\tx", "\r=1", "plain", ""]
    conn.execute("CREATE TABLE shop_marts.notes (note text, amount numeric)")
    conn.cursor().executemany("INSERT INTO shop_marts.notes VALUES (%s, %s)",
                              [(cell, -5) for cell in cells])
    target = project / "shop.zip"
    export_client(conn, "shop", target, None)
    with zipfile.ZipFile(target) as archive:
        rows = list(csv.reader(io.StringIO(archive.read("shop_marts/notes.csv").decode(),
                                           newline="")))
        manifest = json.loads(archive.read("manifest.json"))
    assert rows[0] == ["note", "amount"]
    assert [row[0] for row in rows[1:]] == ["'=cmd|' /C calc'!A0", "'+1+2", "'-2+3",
                                            "'@SUM(A1)", "'\tx", "'\r=1", "plain", ""]
    assert {row[1] for row in rows[1:]} == {"-5"}  # numbers stay numbers
    assert "start with '" in manifest["formulas"]
