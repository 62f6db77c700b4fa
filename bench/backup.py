"""Benchmark: backup and restore times and sizes for the demo warehouse.

    make demo && .venv/bin/python bench/backup.py

Uses the project's warehouse (GOALPOST_DATABASE_URL or the embedded server) after the PanPan
demo has run. Makes a full backup and a backup of panpan into a temporary folder, verifies
the client backup (restore into a scratch database and compare every table), then restores it
in place (drop the client's schemas first) and checks the tables against the manifest.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    folder = Path(tempfile.mkdtemp(prefix="goalpost-bench-backup-"))
    os.environ["GOALPOST_BACKUP_DIR"] = str(folder)

    from goalpost.backup.core import (
        create_backup,
        restore_backup,
        table_fingerprints,
        verify_backup,
    )
    from goalpost.core.warehouse import database_url, ready, tenants

    url = database_url()
    try:
        with ready(url) as conn:
            if conn.execute("SELECT to_regclass('panpan_marts.daily_sales')").fetchone()[0] is None:
                raise SystemExit("run the demo first (make demo): panpan has no marts here")
            rows = []

            def timed(label: str, action):  # noqa: ANN001, ANN202 - local helper
                started = time.perf_counter()
                result = action()
                rows.append((label, time.perf_counter() - started, result))
                return result

            full = timed("backup create (whole warehouse)", lambda: create_backup(conn, url))
            client = timed("backup create --client panpan",
                           lambda: create_backup(conn, url, client="panpan"))
            report = timed("backup verify panpan (scratch restore + compare)",
                           lambda: verify_backup(conn, url, client))
            if not report["ok"]:
                raise SystemExit(f"verify failed: {report['differences']}")
            timed("drop panpan's schemas + restore", lambda: (
                tenants.deprovision(conn, "panpan"), restore_backup(conn, url, client)))
            if table_fingerprints(conn, client.manifest["schemas"]) != client.manifest["tables"]:
                raise SystemExit("restored tables differ from the backup's manifest")

        print(f"{'step':52} {'seconds':>8}")
        for label, seconds, _ in rows:
            print(f"{label:52} {seconds:8.2f}")
        for made in (full, client):
            info = made.summary()
            print(f"{made.id:32} {info['tables']:>4} tables {info['rows']:>11,} rows "
                  f"{info['size_bytes'] / 1e6:8.1f} MB dump")
        print("restored panpan tables equal the manifest (row counts and checksums)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
