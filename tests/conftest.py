"""Test fixtures: one real PostgreSQL server for the session, a fresh database per test.

The server is the same embedded server Goalpost uses, started in a temporary folder; each
test gets its own migrated database, its own project root (clients/) and state folder.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from goalpost.app.cli import cli
from goalpost.core.warehouse import connection
from goalpost.core.warehouse.embedded import EmbeddedPostgres
from goalpost.core.warehouse.migrations import migrate
from goalpost.sandbox.emulators.base import Emulator
from goalpost.transform import build as transform_build

_counter = itertools.count()
DATABASE_FIXTURES = {"pg_server", "database_url", "conn", "run_cli"}


@pytest.fixture(autouse=True)
def _tier_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that is not marked e2e may not build SQLMesh models nor serve a vendor
    emulator: `make test-fast` leaves e2e tests out, so a missing mark would make it slow
    (and its tiers untrue)."""
    if request.node.get_closest_marker("e2e"):
        return

    def refuse(*args: object, **kwargs: object) -> None:
        pytest.fail(f"{request.node.nodeid} builds SQLMesh models or serves a vendor "
                    "emulator: mark it `@pytest.mark.e2e`", pytrace=False)

    monkeypatch.setattr(transform_build, "build_client", refuse)
    monkeypatch.setattr(Emulator, "start", refuse)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test's tier: e2e where its module says so, else integration when it uses the
    database, else unit (`make test-fast` runs the first two)."""
    for item in items:
        if item.get_closest_marker("e2e"):
            continue
        uses_database = DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
        item.add_marker(pytest.mark.integration if uses_database else pytest.mark.unit)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of the session's server (its `goalpost` database)."""
    external = os.environ.get("GOALPOST_TEST_DATABASE_URL")
    if external:
        yield external
        return
    folder = Path(tempfile.mkdtemp(prefix="goalpost-test-pg-"))
    os.chmod(folder, 0o755)
    server = EmbeddedPostgres(folder)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _roles(admin: psycopg.Connection) -> set[str]:
    return {row[0] for row in admin.execute("SELECT rolname FROM pg_roles")}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project root with a clients/ folder and its own state folder."""
    root = tmp_path / "project"
    (root / "clients").mkdir(parents=True)
    monkeypatch.setenv("GOALPOST_HOME", str(root))
    monkeypatch.setenv("GOALPOST_STATE_DIR", str(root / ".goalpost"))
    return root


@pytest.fixture
def database_url(pg_server: str, project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated database; GOALPOST_DATABASE_URL points at it for the test."""
    name = f"t{os.getpid()}_{next(_counter)}"
    base, _ = pg_server.rsplit("/", 1)
    with psycopg.connect(pg_server, autocommit=True) as admin:
        roles_before = _roles(admin)
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{base}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
    monkeypatch.setenv("GOALPOST_DATABASE_URL", url)
    monkeypatch.setattr(connection, "_cached_url", None)
    try:
        yield url
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for role in sorted(_roles(admin) - roles_before):
                admin.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as connection_:
        yield connection_


@pytest.fixture
def run_cli(database_url: str):
    """Invoke the `goalpost` CLI in-process against the test's database."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def panpan_api_data(tmp_path_factory: pytest.TempPathFactory):
    """A small PanPan data set (20 days) as the vendor emulators serve it."""
    from datetime import date

    from goalpost.sandbox.demo.generator import generate_panpan
    from goalpost.sandbox.emulators.panpan import PanPanData

    folder = tmp_path_factory.mktemp("panpan-api")
    generate_panpan(folder, end=date(2025, 1, 31), days=20, scale=0.05, seed=3)
    return PanPanData.load(folder)


@pytest.fixture
def api_source(project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):
    """Write clients/<slug>.yaml with one REST source pointing at an emulator's URL; the
    secret settings go through environment variables, as in production."""
    import orjson

    def write(slug: str, source: str, connector: str, url: str | None, secrets: dict[str, str],
              streams: list[str] | None = None, **settings: object) -> None:
        config: dict[str, object] = {"base_url": url, **settings} if url else dict(settings)
        for name, value in secrets.items():
            variable = f"TEST_{slug}_{source}_{name}".upper()
            monkeypatch.setenv(variable, value)
            config[name] = f"env:{variable}"
        entry: dict[str, object] = {"name": source, "connector": connector, "config": config}
        if streams:
            entry["streams"] = streams
        document = {"name": slug.title(), "timezone": "Europe/Paris", "sources": [entry]}
        # JSON is YAML: no need for a YAML writer here.
        (project / "clients" / f"{slug}.yaml").write_bytes(orjson.dumps(document))

    return write


@pytest.fixture
def golden_square(api_source):
    """The hand-made month of tests/golden_data.py served by the Square emulator, as the source
    `pos` of the client `gold`."""
    import golden_data

    from goalpost.sandbox.emulators.square import SquareEmulator

    token = "EAAAl-golden-square"
    emulator = SquareEmulator(golden_data.golden_data(), token=token, now=golden_data.NOW)
    emulator.start()
    api_source("gold", "pos", "square", emulator.url, {"access_token": token},
               start_date=golden_data.START_DATE)
    yield emulator
    emulator.stop()


@pytest.fixture
def raw_rows(conn: psycopg.Connection):
    """(key, data) of a raw table, by key: what two runs are compared on."""

    def rows(slug: str, source: str, stream: str) -> list[tuple[str, object]]:
        return conn.execute(
            f'SELECT _key, data FROM "{slug}_raw"."{source}__{stream}" ORDER BY _key').fetchall()

    return rows
