"""The stand-in refuses what Metabase's spec refuses, so that its approval means something."""

from __future__ import annotations

import httpx
import pytest

from goalpost.sandbox.metabase_standin.server import StandinServer
from goalpost.sandbox.metabase_standin.spec import SpecViolation, load_spec


@pytest.fixture
def server():
    with StandinServer() as running:
        yield running


def _admin_session(url: str) -> str:
    props = httpx.get(f"{url}/api/session/properties").json()
    response = httpx.post(f"{url}/api/setup/", json={
        "token": props["setup-token"], "user": {"email": "ops@example.com",
                                                "password": "correct9horse"},
        "prefs": {"site_name": "Test"}})
    assert response.status_code == 200, response.text
    return response.json()["id"]


@pytest.mark.parametrize(("method", "path", "body", "expected"), [
    ("PATCH", "/api/card/", None, "method not in the spec"),
    ("GET", "/api/cards/", None, "no such path"),
    ("POST", "/api/card/", {"name": "x", "display": "table", "visualization_settings": {}},
     "'dataset_query' is a required property"),
    ("POST", "/api/collection/", {"name": ""}, "name"),
    ("GET", "/api/database/abc", None, "path parameter id='abc'"),
    ("GET", "/api/collection/1/items?models=cards", None, "'cards' is not one of"),
    ("GET", "/api/user/?colour=blue", None, "unknown query parameter 'colour'"),
    ("PUT", "/api/dashboard/1", {"dashcards": [{"id": -1, "card_id": 1, "row": 0, "col": -2,
                                                "size_x": 4, "size_y": 3}]},
     "dashcards/0/col"),
    ("POST", "/api/permissions/membership", {"group_id": 3}, "'user_id' is a required"),
])
def test_requests_off_the_spec_are_refused_and_recorded(server: StandinServer, method: str,
                                                        path: str, body: object,
                                                        expected: str) -> None:
    session = _admin_session(server.url)
    response = httpx.request(method, f"{server.url}{path}", json=body,
                             headers={"X-Metabase-Session": session})
    assert response.status_code == 400
    assert expected in response.json()["message"]
    assert len(server.metabase.violations) == 1 and expected in server.metabase.violations[0]


def test_auth_and_setup_behave_like_metabase(server: StandinServer) -> None:
    assert httpx.get(f"{server.url}/api/permissions/group").status_code == 401
    props = httpx.get(f"{server.url}/api/session/properties").json()
    assert props["has-user-setup"] is False and len(props["setup-token"]) == 36
    bad = httpx.post(f"{server.url}/api/setup/", json={
        "token": "wrong", "user": {"email": "a@b.example", "password": "x1234567"},
        "prefs": {"site_name": "T"}})
    assert bad.status_code == 403
    session = _admin_session(server.url)
    assert httpx.get(f"{server.url}/api/session/properties").json()["setup-token"] is None
    key = httpx.post(f"{server.url}/api/api-key/", json={"group_id": 2, "name": "k"},
                     headers={"X-Metabase-Session": session}).json()["unmasked_key"]
    groups = httpx.get(f"{server.url}/api/permissions/group", headers={"x-api-key": key})
    assert {g["name"] for g in groups.json()} == {"All Users", "Administrators"}
    # Stale revisions are refused; the open-source edition has no sandboxes.
    graph = httpx.get(f"{server.url}/api/permissions/graph", headers={"x-api-key": key}).json()
    stale = httpx.put(f"{server.url}/api/permissions/graph", headers={"x-api-key": key},
                      json={"revision": graph["revision"] - 1, "groups": {}})
    assert stale.status_code == 409
    paid = httpx.put(f"{server.url}/api/permissions/graph", headers={"x-api-key": key},
                     json={"revision": graph["revision"], "groups": {}, "sandboxes": []})
    assert paid.status_code == 402
    assert server.metabase.violations == []


def test_spec_reads_oneof_as_malli_does() -> None:
    spec = load_spec()
    body = (b'{"dashcards": [{"id": -1, "card_id": 2, "row": 0, "col": 0, "size_x": 4, '
            b'"size_y": 3, "parameter_mappings": [{"parameter_id": "p", "card_id": 2, '
            b'"target": ["dimension", ["template-tag", "date"]]}]}]}')
    assert spec.check("PUT", "/api/dashboard/5", "", body).name == "PUT /api/dashboard/{id}"
    # Two paths share a shape; the value picks one.
    assert spec.check("GET", "/api/database/3/metadata", "", None).path == \
        "/api/database/{id}/metadata"
    with pytest.raises(SpecViolation, match="no such path"):
        spec.check("GET", "/api/nothing", "", None)
