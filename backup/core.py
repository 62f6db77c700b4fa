"""Backups of the warehouse: create, list, verify, restore and prune.

A backup is a folder `<backups>/<id>/` holding `dump.pgdump` (pg_dump custom format) and
`manifest.json`: what was dumped (the whole database, or one client's schemas plus its rows of
the control schema in `control.json`), each file's SHA-256 and size, and each table's row count
and content checksum. A file whose checksum no longer matches is refused before anything is
restored. `verify` restores into a scratch database and compares every table's count and
checksum with the manifest.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from goalpost.backup.tools import pg_tools
from goalpost.core.checksums import file_sha256
from goalpost.core.errors import ConfigError, GoalpostError, NotFoundError
from goalpost.core.identifiers import LAYERS, check_slug, schema_name
from goalpost.core.paths import state_dir
from goalpost.core.warehouse import tenants
from goalpost.core.warehouse.connection import redact

DUMP = "dump.pgdump"
CONTROL = "control.json"
MANIFEST = "manifest.json"
# The control tables that hold rows per client, restored with a client backup.
CONTROL_TABLES = ("clients", "sources", "extract_state", "source_files", "quarantine")


class BackupError(GoalpostError):
    exit_code = 1


def backups_dir() -> Path:
    return Path(os.environ.get("GOALPOST_BACKUP_DIR") or state_dir() / "backups")


@dataclass
class Backup:
    id: str
    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    # Why its manifest cannot be read (None: it can): such a backup is listed, never used.
    problem: str | None = None

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.manifest["created_at"])

    @property
    def client(self) -> str | None:
        return self.manifest.get("client")

    def summary(self) -> dict[str, Any]:
        if self.problem:
            return {"id": self.id, "created_at": None, "client": None, "size_bytes": 0,
                    "tables": 0, "rows": 0, "problem": self.problem}
        return {"id": self.id, "created_at": self.manifest.get("created_at"),
                "client": self.client, "size_bytes": sum(
                    f["size"] for f in self.manifest.get("files", {}).values()),
                "tables": len(self.manifest.get("tables", {})),
                "rows": sum(t["rows"] for t in self.manifest.get("tables", {}).values()),
                "problem": None}


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a backup folder, checked for what list, verify and restore rely on;
    BackupError saying what is wrong when it is unreadable (truncated, edited, not JSON)."""
    where = f"backup {folder.name}: {MANIFEST}"
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BackupError(f"{where} is unreadable ({exc}); the backup cannot be used",
                          hint="restore another backup (`goalpost backup list`); delete this "
                               "folder once you have looked at it") from None
    problems = []
    if not isinstance(manifest, dict):
        problems.append("it is not an object")
    else:
        try:
            datetime.fromisoformat(str(manifest.get("created_at")))
        except ValueError:
            problems.append("created_at is not a date and time")
        if manifest.get("client") is not None and not isinstance(manifest["client"], str):
            problems.append("client is not a name")
        for key, inner in (("files", ("sha256", "size")), ("tables", ("rows", "checksum"))):
            value = manifest.get(key)
            if not isinstance(value, dict) or not all(
                    isinstance(v, dict) and all(k in v for k in inner) for v in value.values()):
                problems.append(f"{key} is missing or incomplete")
        if not isinstance(manifest.get("schemas"), list):
            problems.append("schemas is missing")
    if problems:
        raise BackupError(f"{where} is damaged: {'; '.join(problems)}; the backup cannot be "
                          "used", hint="restore another backup (`goalpost backup list`)")
    return manifest


def _client_schemas(conn: psycopg.Connection, slug: str) -> list[str]:
    names = [schema_name(slug, layer) for layer in LAYERS] + tenants.physical_schemas(conn, slug)
    present = {row[0] for row in conn.execute("SELECT nspname FROM pg_namespace")}
    return [n for n in names if n in present]


def table_fingerprints(conn: psycopg.Connection, schemas: list[str]) -> dict[str, dict]:
    """Row count and content checksum of every table in the schemas (views excluded)."""
    tables = conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND table_schema = ANY(%s) ORDER BY 1, 2",
        (schemas,)).fetchall()
    out = {}
    for schema, table in tables:
        query = sql.SQL(
            "SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '') FROM "
            "(SELECT md5(t::text) AS h FROM {}.{} t) s").format(
            sql.Identifier(schema), sql.Identifier(table))
        rows, checksum = conn.execute(query).fetchone()
        out[f"{schema}.{table}"] = {"rows": rows, "checksum": checksum}
    return out


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {redact(done.stderr.strip())[-2000:]}")


def _new_id(client: str | None) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{client}" if client else stamp
    candidate, n = base, 1
    while (backups_dir() / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def create_backup(conn: psycopg.Connection, url: str, *, client: str | None = None) -> Backup:
    """Dump the database (or one client) into a new backup folder, with its manifest."""
    if client is not None:
        check_slug(client)
        schemas = _client_schemas(conn, client)
        if not schemas:
            raise NotFoundError(f"client {client} has no schemas in the warehouse",
                                hint="see `goalpost client list`")
    else:
        schemas = [row[0] for row in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
            "AND nspname <> 'information_schema' ORDER BY 1")]
    backup_id = _new_id(client)
    folder = backups_dir() / backup_id
    partial = folder.with_name(folder.name + ".partial")
    partial.mkdir(parents=True)
    try:
        tools = pg_tools(conn)
        command = [str(tools / "pg_dump"), "--format=custom", "--no-owner",
                   f"--file={partial / DUMP}", f"--dbname={url}"]
        if client is not None:
            command += [f"--schema={s}" for s in schemas]
        # The fingerprints and the dump see the same data only if nothing writes meanwhile:
        # callers run backups between runs (the scheduler holds the client's lock).
        tables = table_fingerprints(conn, schemas)
        _run(command, "pg_dump")
        files = [DUMP]
        if client is not None:
            control = {table: [list(r) for r in conn.execute(
                sql.SQL("SELECT to_jsonb(t) FROM goalpost.{} t WHERE client = %s").format(
                    sql.Identifier(table)) if table != "clients" else
                "SELECT to_jsonb(t) FROM goalpost.clients t WHERE slug = %s", (client,))]
                for table in CONTROL_TABLES}
            (partial / CONTROL).write_text(json.dumps(control, default=str))
            files.append(CONTROL)
        manifest = {
            "id": backup_id, "created_at": datetime.now(UTC).isoformat(), "client": client,
            "database": redact(url), "schemas": schemas, "tables": tables,
            "server_version": conn.execute("SHOW server_version").fetchone()[0],
            "files": {name: {"sha256": file_sha256(partial / name),
                             "size": (partial / name).stat().st_size} for name in files},
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2))
        partial.rename(folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return Backup(backup_id, folder, manifest)


def list_backups() -> list[Backup]:
    """Every backup folder, oldest first; one whose manifest is damaged is listed with its
    `problem`, so that one bad folder hides neither itself nor the others."""
    out = []
    root = backups_dir()
    for folder in sorted(root.glob("*")) if root.exists() else []:
        if folder.is_dir() and not folder.name.endswith(".partial") and (
                folder / MANIFEST).exists():
            try:
                out.append(Backup(folder.name, folder, read_manifest(folder)))
            except BackupError as exc:
                out.append(Backup(folder.name, folder, problem=exc.message))
    return out


def load_backup(backup_id: str) -> Backup:
    folder = backups_dir() / backup_id
    if not (folder / MANIFEST).exists():
        raise NotFoundError(f"no backup {backup_id!r} in {backups_dir()}",
                            hint="see `goalpost backup list`")
    return Backup(backup_id, folder, read_manifest(folder))


def check_files(backup: Backup) -> None:
    """Refuse a backup whose files are missing or do not match their checksums."""
    for name, expected in backup.manifest.get("files", {}).items():
        path = backup.path / name
        if not path.exists():
            raise BackupError(f"backup {backup.id}: {name} is missing; it cannot be restored")
        if path.stat().st_size != expected["size"] or file_sha256(path) != expected["sha256"]:
            raise BackupError(
                f"backup {backup.id}: {name} does not match its checksum (corrupted or "
                "changed since it was made); refusing to restore it",
                hint="restore an older backup (`goalpost backup list`)")


def _database_url(url: str, database: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = database
    return make_conninfo(**params)


def restore_backup(conn: psycopg.Connection, url: str, backup: Backup, *,
                   into: str | None = None) -> str:
    """Restore into the warehouse (or into another database, created if needed); returns the
    URL restored into. A client backup replaces that client's schemas and control rows."""
    from goalpost.core.warehouse.migrations import migrate

    check_files(backup)
    target_url = url
    if into is not None:
        if not into.replace("_", "").isalnum():
            raise ConfigError(f"invalid database name {into!r}")
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (into,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(into)))
        target_url = _database_url(url, into)
    tools = pg_tools(conn)
    with psycopg.connect(target_url, autocommit=True) as target:
        if backup.client is not None:
            migrate(target)
            tenants.provision(target, backup.client)  # the reader role the grants name
            for schema in backup.manifest["schemas"]:
                target.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(schema)))
        _run([str(tools / "pg_restore"), "--no-owner", "--clean", "--if-exists",
              "--exit-on-error", f"--dbname={target_url}", str(backup.path / DUMP)],
             "pg_restore")
        if backup.client is not None:
            _restore_control(target, backup)
    return target_url


def _restore_control(conn: psycopg.Connection, backup: Backup) -> None:
    control = json.loads((backup.path / CONTROL).read_text())
    slug = backup.client
    with conn.transaction():
        for table in reversed(CONTROL_TABLES):
            key = "slug" if table == "clients" else "client"
            conn.execute(sql.SQL("DELETE FROM goalpost.{} WHERE {} = %s").format(
                sql.Identifier(table), sql.Identifier(key)), (slug,))
        for table in CONTROL_TABLES:
            for (row,) in control.get(table, []):
                conn.execute(sql.SQL(
                    "INSERT INTO goalpost.{t} SELECT * FROM jsonb_populate_record("
                    "NULL::goalpost.{t}, %s::jsonb)").format(t=sql.Identifier(table)),
                    (json.dumps(row),))


def verify_backup(conn: psycopg.Connection, url: str, backup: Backup) -> dict[str, Any]:
    """Restore into a scratch database and compare every table with the manifest."""
    check_files(backup)
    scratch = f"goalpost_verify_{secrets.token_hex(4)}"
    try:
        target_url = restore_backup(conn, url, backup, into=scratch)
        with psycopg.connect(target_url, autocommit=True) as target:
            found = table_fingerprints(target, backup.manifest["schemas"])
    finally:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(scratch)))
    expected = backup.manifest["tables"]
    differences = sorted(
        f"{name}: expected {want['rows']} rows ({want['checksum'][:8]}), found "
        + (f"{found[name]['rows']} rows ({found[name]['checksum'][:8]})" if name in found
           else "nothing")
        for name, want in expected.items() if found.get(name) != want)
    return {"id": backup.id, "tables": len(expected), "ok": not differences,
            "differences": differences}


def plan_prune(backups: list[Backup], *, daily: int, weekly: int, monthly: int,
               now: datetime | None = None) -> tuple[list[Backup], list[Backup]]:
    """(kept, deleted) under a daily/weekly/monthly retention, per scope (whole database or
    each client): the newest backup of each of the last `daily` days, `weekly` ISO weeks and
    `monthly` months that have one is kept."""
    now = now or datetime.now(UTC)
    # A backup whose manifest is damaged has no date or scope to judge it by: it is kept
    # (and listed) for someone to look at, never deleted by a rule.
    keep: set[str] = {item.id for item in backups if item.problem}
    scopes: dict[str | None, list[Backup]] = {}
    for item in backups:
        if not item.problem:
            scopes.setdefault(item.client, []).append(item)
    for items in scopes.values():
        items = sorted(items, key=lambda b: b.created_at, reverse=True)
        for count, bucket in ((daily, lambda d: d.date()),
                              (weekly, lambda d: tuple(d.isocalendar())[:2]),
                              (monthly, lambda d: (d.year, d.month))):
            seen: list[Any] = []
            for item in items:
                period = bucket(item.created_at)
                if period in seen:
                    continue
                if len(seen) == count:
                    break
                seen.append(period)
                keep.add(item.id)
        if items and items[0].created_at > now - timedelta(hours=1):
            keep.add(items[0].id)  # never delete the newest backup of a scope
    kept = [b for b in backups if b.id in keep]
    return kept, [b for b in backups if b.id not in keep]


def _rclone() -> str:
    found = shutil.which("rclone")
    if found is None:
        raise BackupError("rclone is not installed, so backups cannot go to a remote",
                          hint="install rclone (https://rclone.org) and configure the remote "
                               "with `rclone config`, or leave out --remote")
    return found


def upload_backup(backup: Backup, remote: str) -> str:
    """Copy a backup folder to an rclone remote (`name:path`); returns where it went."""
    target = f"{remote.rstrip('/')}/{backup.id}"
    _run([_rclone(), "copy", str(backup.path), target], f"rclone copy to {remote}")
    return target


def fetch_backup(backup_id: str, remote: str) -> Backup:
    """Bring a backup back from an rclone remote into the local backup folder."""
    folder = backups_dir() / backup_id
    if not (folder / MANIFEST).exists():
        partial = folder.with_name(folder.name + ".partial")
        _run([_rclone(), "copy", f"{remote.rstrip('/')}/{backup_id}", str(partial)],
             f"rclone copy from {remote}")
        partial.rename(folder)
    return load_backup(backup_id)


# What a spreadsheet reads as a formula at the start of a cell (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula (`=cmd|' /C calc'!A0`), made
    text by a leading apostrophe, as spreadsheets themselves write it; other values as they
    are (a negative number stays a number)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def export_client(conn: psycopg.Connection, slug: str, target: Path,
                  registry_file: Path | None) -> dict[str, int]:
    """Everything of one client as CSV files in a zip, for handing over when it leaves:
    every table and view of its layers, its registry file (secrets are only env: names
    there) and a manifest of row counts. Text cells that would run as formulas when the CSV
    is opened in a spreadsheet are escaped (`spreadsheet_safe`). Returns the row count per
    table."""
    import csv
    import io
    import zipfile

    check_slug(slug)
    schemas = [schema_name(slug, layer) for layer in LAYERS]
    tables = conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = "
        "ANY(%s) ORDER BY 1, 2", (schemas,)).fetchall()
    if not tables:
        raise NotFoundError(f"client {slug} has no tables to export")
    counts: dict[str, int] = {}
    partial = target.with_name(target.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for schema, table in tables:
                name = f"{schema}/{table}.csv"
                rows = 0
                with archive.open(name, "w") as raw, io.TextIOWrapper(
                        raw, encoding="utf-8", newline="") as text, conn.cursor() as cur:
                    query = sql.SQL("SELECT * FROM {}.{}").format(sql.Identifier(schema),
                                                                   sql.Identifier(table))
                    cur.execute(query)
                    writer = csv.writer(text)
                    writer.writerow([column.name for column in cur.description])
                    while batch := cur.fetchmany(5000):
                        writer.writerows([spreadsheet_safe(v) for v in row] for row in batch)
                        rows += len(batch)
                counts[f"{schema}.{table}"] = rows
            if registry_file is not None and registry_file.exists():
                archive.write(registry_file, f"clients/{registry_file.name}")
            archive.writestr("manifest.json", json.dumps(
                {"client": slug, "exported_at": datetime.now(UTC).isoformat(),
                 "tables": counts,
                 "formulas": "text cells starting with = + - @, a tab or a carriage return "
                             "start with ' (so that a spreadsheet shows them as text)"},
                indent=2))
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return counts
