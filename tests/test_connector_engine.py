"""The REST connector engine end to end, with a low-code source declared in a client's YAML
against a small emulator: paging, incremental runs, upserts, faults, full reads, secrets."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from goalpost.app.orchestrator import run_client
from goalpost.sandbox.emulators.base import Emulator, Request, Response, parse_time, rfc3339

START = datetime(2024, 3, 1, tzinfo=UTC)
TOKEN = "toy-secret-token-5f1c"


class ToyEmulator(Emulator):
    """GET /v1/items?updated_since=&limit=&cursor= -> {"items": [...], "next_cursor": ...}.

    Item i is created at START + i minutes; `edit(i, at)` changes its price and moves its
    updated_at. The cursor encodes the offset and the filter, and is refused for another
    filter, as real APIs do.
    """

    name = "toy"

    def __init__(self, count: int, **kwargs: object) -> None:
        super().__init__(token=TOKEN, **kwargs)
        self.items = {i: {"id": f"it-{i:04d}", "name": f"Item {i}", "price": "1.10",
                          "created_at": rfc3339(START + timedelta(minutes=i)),
                          "updated_at": rfc3339(START + timedelta(minutes=i))}
                      for i in range(count)}
        self.deleted: set[int] = set()

    def edit(self, i: int, at: datetime, price: str) -> None:
        self.items[i] = dict(self.items[i], price=price, updated_at=rfc3339(at))

    def route(self, request: Request) -> Response:
        if request.path != "/v1/items":
            return Response(404, {"error": {"code": "NOT_FOUND"}})
        since = request.param("updated_since", "1970-01-01T00:00:00Z")
        limit = int(request.param("limit", "50"))
        if limit > 100:
            return Response(400, {"error": {"code": "LIMIT_TOO_HIGH"}})
        offset = 0
        if request.param("cursor"):
            cursor = json.loads(base64.b64decode(request.param("cursor")))
            if cursor["since"] != since:
                return Response(400, {"error": {"code": "CURSOR_MISMATCH"}})
            offset = cursor["offset"]
        visible = sorted((item for i, item in self.items.items() if i not in self.deleted
                          and parse_time(item["created_at"]) <= self.now
                          and parse_time(item["updated_at"]) >= parse_time(since)),
                         key=lambda item: (item["updated_at"], item["id"]))
        page = visible[offset:offset + limit]
        body: dict = {"items": page}
        if offset + limit < len(visible):
            body["next_cursor"] = base64.b64encode(json.dumps(
                {"since": since, "offset": offset + limit}).encode()).decode()
        return Response(200, body)

    def expired_cursor(self, request: Request) -> Response:
        return Response(400, {"error": {"code": "CURSOR_EXPIRED"}})

    def unauthorized(self, request: Request) -> Response:
        return Response(401, {"error": {"code": "UNAUTHORIZED", "detail": "bad token"}})


def client_yaml(url: str, *, incremental: bool = True) -> str:
    stream = """\
        items:
          request:
            path: /v1/items
            params: {updated_since: "{cursor.start}"}
          records: items
          primary_key: [id]
          paginator: {type: body_cursor, token_path: next_cursor, field: cursor,
                      size_field: limit, size: 7}
          errors:
            - {status: [400], json_path: error.code, equals: CURSOR_EXPIRED, action: restart}
"""
    if incremental:
        stream += """\
          incremental:
            cursor_field: updated_at
            start_date: "2024-01-01T00:00:00Z"
            sorted: true
"""
    return f"""name: Toy Shop
sources:
  - name: toy
    connector: rest
    config:
      access_token: env:TOY_TOKEN
      base_url: {url}
    manifest:
      base_url: http://unused.invalid
      settings:
        access_token: {{required: true, secret: true}}
      auth: {{type: bearer, token: "{{config.access_token}}"}}
      retry: {{max_retries: 8, base_seconds: 0.01, max_seconds: 0.05, timeout_seconds: 0.5}}
      streams:
{stream}"""


@pytest.fixture
def toy(project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TOY_TOKEN", TOKEN)
    emulator = ToyEmulator(60, now=START + timedelta(minutes=29, seconds=30))
    emulator.start()
    (project / "clients" / "toy.yaml").write_text(client_yaml(emulator.url))
    yield emulator
    emulator.stop()


def table(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT _key, data FROM toy_raw.toy__items ORDER BY _key").fetchall()


def extract_step(run) -> dict:
    (step,) = [s for s in run.steps if s.kind == "extract"]
    return {"status": step.status, "error": step.error, **step.details}


@pytest.mark.e2e
def test_pages_incremental_runs_and_upserts(toy, conn):
    first = run_client("toy")
    step = extract_step(first)
    assert step["status"] == "succeeded", step["error"]
    assert (step["records"], step["inserted"], step["pages"]) == (30, 30, 5)
    assert step["cursor"] == {"*": "2024-03-01T00:29:00.000Z"}
    assert len(table(conn)) == 30

    toy.now = START + timedelta(minutes=45)
    toy.edit(3, START + timedelta(minutes=40), "2.35")
    second = extract_step(run_client("toy"))
    # Inclusive start: item 29 comes again, unchanged; 30..45 are new; item 3 was edited.
    assert (second["records"], second["inserted"], second["updated"]) == (18, 16, 1)
    assert second["cursor"] == {"*": "2024-03-01T00:45:00.000Z"}
    rows = dict(table(conn))
    assert len(rows) == 46 and rows['["it-0003"]']["price"] == "2.35"

    third = extract_step(run_client("toy"))
    assert (third["inserted"], third["updated"]) == (0, 0)


@pytest.mark.e2e
def test_faults_are_retried_and_the_result_equals_a_clean_run(toy, conn, monkeypatch):
    toy.inject("rate_limit", retry_after=0.05)
    toy.inject("rate_limit", retry_after=None)
    toy.inject("server_error", count=2, status=503)
    toy.inject("timeout", delay=1.0)
    toy.inject("cut")
    toy.inject("malformed")
    run = run_client("toy")
    step = extract_step(run)
    assert step["status"] == "succeeded", step["error"]
    assert step["retries"] == 7 and step["records"] == 30
    assert len(table(conn)) == 30


@pytest.mark.e2e
def test_expired_cursor_restarts_the_query(toy, conn):
    toy.inject("expired_cursor", path="/v1/items")
    toy.requests.clear()
    step = extract_step(run_client("toy"))
    assert step["status"] == "succeeded", step["error"]
    assert len(table(conn)) == 30


@pytest.mark.e2e
def test_rejected_token_fails_clearly_without_the_secret(toy, conn):
    toy.inject("bad_token", count=10)
    run = run_client("toy")
    step = extract_step(run)
    assert step["status"] == "failed"
    assert "rejected the credentials" in step["error"] and "UNAUTHORIZED" in step["error"]
    recorded = json.dumps(conn.execute(
        "SELECT r.error, r.summary, s.error, s.details FROM goalpost.runs r "
        "JOIN goalpost.run_steps s ON s.run_id = r.id").fetchall(), default=str)
    assert TOKEN not in recorded
    assert all(TOKEN not in str(r.headers) for r in toy.requests)


@pytest.mark.e2e
def test_giving_up_after_retries_keeps_loaded_pages_and_a_rerun_completes(toy, conn):
    toy.inject("server_error", count=9, path="/v1/items")
    toy.requests.clear()
    first = extract_step(run_client("toy"))
    assert first["status"] == "failed" and "still failing after 8 retries" in first["error"]
    again = extract_step(run_client("toy"))
    assert again["status"] == "succeeded" and len(table(conn)) == 30


@pytest.mark.e2e
def test_full_read_removes_vanished_records_but_not_on_an_empty_answer(toy, conn, project):
    (project / "clients" / "toy.yaml").write_text(client_yaml(toy.url, incremental=False))
    assert extract_step(run_client("toy"))["inserted"] == 30
    toy.deleted.update({1, 2})
    step = extract_step(run_client("toy"))
    assert (step["deleted"], len(table(conn))) == (2, 28)

    toy.deleted.update(range(60))
    step = extract_step(run_client("toy"))
    assert step["deleted"] == 0 and "returned no records" in step["warnings"][0]
    assert len(table(conn)) == 28
    forced = extract_step(run_client("toy", force=True))
    assert forced["deleted"] == 28 and table(conn) == []


@pytest.mark.e2e
def test_new_fields_are_reported(toy, conn):
    run_client("toy")
    toy.now = START + timedelta(minutes=35)
    toy.items[33]["loyalty_tier"] = "gold"
    step = extract_step(run_client("toy"))
    assert step["new_fields"] == ["loyalty_tier"]


def test_secret_written_in_the_yaml_is_refused(project, database_url):
    from goalpost.core import registry
    from goalpost.core.errors import ConfigError

    (project / "clients" / "toy.yaml").write_text(
        client_yaml("http://127.0.0.1:9").replace("env:TOY_TOKEN", TOKEN))
    with pytest.raises(ConfigError) as raised:
        registry.load_client("toy")
    assert "config.access_token is a secret and must not be written" in str(raised.value)
    assert TOKEN not in str(raised.value)


@pytest.mark.e2e
def test_runs_killed_at_random_points_then_rerun_equal_a_clean_run(project, database_url,
                                                                   monkeypatch, conn):
    import random
    import signal
    import subprocess
    import sys
    import time

    monkeypatch.setenv("TOY_TOKEN", TOKEN)
    with ToyEmulator(3000, now=START + timedelta(days=10)) as emulator:
        for slug in ("toy", "clean"):
            (project / "clients" / f"{slug}.yaml").write_text(client_yaml(emulator.url))
        command = [sys.executable, "-m", "goalpost", "run", "toy"]
        rng = random.Random(20)
        killed = 0
        for _ in range(20):
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.3, 2.5))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed += 1
            process.wait()
        assert killed >= 15  # most trials were cut in the middle of the run
        assert run_client("toy").status == "succeeded"
        assert run_client("clean").status == "succeeded"
    rows = conn.execute("SELECT _key, data FROM toy_raw.toy__items ORDER BY _key").fetchall()
    clean = conn.execute("SELECT _key, data FROM clean_raw.toy__items ORDER BY _key").fetchall()
    assert len(rows) == 3000 and rows == clean


@pytest.mark.e2e
def test_oauth_refresh_token_rotation_is_kept_for_the_next_run(project, database_url,
                                                                monkeypatch, panpan_api_data,
                                                                conn):
    from goalpost.core.paths import state_dir
    from goalpost.sandbox.emulators.square import SquareEmulator

    first_refresh = "EQAA-first-refresh-3c9d"
    with SquareEmulator(panpan_api_data, now=panpan_api_data.orders[-1].sold_at,
                        client_id="sq0idp-test", client_secret="sq0csp-secret-77",
                        refresh_token=first_refresh) as square:
        monkeypatch.setenv("SQ_CLIENT_SECRET", "sq0csp-secret-77")
        monkeypatch.setenv("SQ_REFRESH", first_refresh)
        (project / "clients" / "oauth.yaml").write_text(f"""name: OAuth Shop
sources:
  - name: pos
    connector: rest
    config:
      client_id: sq0idp-test
      client_secret: env:SQ_CLIENT_SECRET
      refresh_token: env:SQ_REFRESH
      base_url: {square.url}
    manifest:
      base_url: http://unused.invalid
      settings:
        client_id: {{required: true}}
        client_secret: {{required: true, secret: true}}
        refresh_token: {{required: true, secret: true}}
      auth:
        type: oauth2_refresh
        token_url: /oauth2/token
        token_body: json
        client_id: "{{config.client_id}}"
        client_secret: "{{config.client_secret}}"
        refresh_token: "{{config.refresh_token}}"
        rotates: true
      headers: {{Square-Version: "2024-07-17"}}
      streams:
        locations:
          request: {{path: /v2/locations}}
          records: locations
          primary_key: [id]
""")
        first = run_client("oauth")
        assert first.status == "succeeded", [s.error for s in first.steps]
        stored = json.loads((state_dir() / "secrets" / "oauth__pos.json").read_text())
        rotated = stored["refresh_token"]
        assert rotated != first_refresh
        assert oct((state_dir() / "secrets" / "oauth__pos.json").stat().st_mode)[-3:] == "600"
        # The first refresh token no longer works: the second run must use the rotated one.
        second = run_client("oauth")
        assert second.status == "succeeded", [s.error for s in second.steps]
        assert conn.execute("SELECT count(*) FROM oauth_raw.pos__locations").fetchone() == (
            len(panpan_api_data.shops),)
    recorded = json.dumps(conn.execute(
        "SELECT s.error, s.details FROM goalpost.run_steps s").fetchall(), default=str)
    for secret in (first_refresh, rotated, "sq0csp-secret-77"):
        assert secret not in recorded


@pytest.mark.e2e
def test_step_timeout_stops_between_pages_and_a_rerun_completes(toy, conn):
    run = run_client("toy", step_timeout=0.001)
    step = extract_step(run)
    assert run.status == "failed" and step["status"] == "failed"
    assert "took longer than its limit" in step["error"]
    assert conn.execute("SELECT count(*) FROM toy_raw.toy__items").fetchone()[0] < 30
    assert extract_step(run_client("toy"))["status"] == "succeeded"
    assert len(table(conn)) == 30


@pytest.mark.e2e
def test_base_url_may_reference_the_environment(toy, conn, project, monkeypatch):
    monkeypatch.setenv("TOY_URL", toy.url)
    (project / "clients" / "toy.yaml").write_text(client_yaml("env:TOY_URL"))
    assert extract_step(run_client("toy"))["inserted"] == 30


@pytest.mark.e2e
def test_a_base_url_that_is_no_url_fails_at_once(toy, conn, project, monkeypatch):
    monkeypatch.setenv("TOY_URL", "localhost:8080")  # no scheme
    (project / "clients" / "toy.yaml").write_text(client_yaml("env:TOY_URL"))
    step = extract_step(run_client("toy"))
    assert step["status"] == "failed"
    assert "is not a URL it can call" in step["error"] and "base_url" in step["error"]
    assert "retries" not in step["error"]
    assert toy.requests == []
