"""The Square emulator and connector held to Square's OpenAPI spec (Release 2025-08-20): every
request body the connector sends and every response the emulator answers, over a golden run
with an expired OAuth token, a second incremental run and the faults the connector handles,
validate against the operation's component schemas, refusing keys the spec does not have."""

from __future__ import annotations

from datetime import timedelta

import golden_data
import pytest
from contracts import body_of, exchanges, problems, square_operation, square_validator

from goalpost.app.orchestrator import run_client
from goalpost.sandbox.emulators.square import SquareEmulator

pytestmark = pytest.mark.e2e

OAUTH = {"client_secret": "sq-contract-secret", "refresh_token": "sq-contract-refresh"}


def schema_ref(content: dict) -> str:
    return content["application/json"]["schema"]["$ref"]


def off_spec(emulator: SquareEmulator) -> list[str]:
    found = []
    for request, status, payload in exchanges(emulator):
        operation = square_operation(request.method, request.path)
        where = f"{request.method} {request.path}"
        if request.method == "POST" and request.body:
            body = body_of(request.body)
            ref = schema_ref(operation["requestBody"]["content"])
            found += problems(square_validator(ref), body, f"request of {where}")
        # Every response schema of the spec carries its `errors`: one schema per operation.
        ref = schema_ref(operation["responses"]["200"]["content"])
        found += problems(square_validator(ref), body_of(payload),
                          f"{status} response of {where}")
    return found


@pytest.fixture
def square():
    emulator = SquareEmulator(golden_data.golden_data(), token="personal-token",
                              now=golden_data.NOW, client_id="sq0idp-contract", **OAUTH)
    emulator.exchanges = []
    with emulator:
        yield emulator


def test_every_square_exchange_of_a_run_is_on_the_spec(square, api_source):
    expired = square.issue_access_token(golden_data.NOW - timedelta(days=1))
    api_source("gold", "pos", "square", square.url, {"access_token": expired, **OAUTH},
               client_id="sq0idp-contract", start_date=golden_data.START_DATE, page_size=2)
    square.inject("rate_limit", path="/v2/orders/search")
    square.inject("expired_cursor", path="/v2/customers/search")
    assert run_client("gold").status == "succeeded"
    square.now += timedelta(days=1)
    square.touch("customers", "C0001", square.now - timedelta(hours=2))
    square.set_location_threshold("PAI-001", "LYO-01", 12, square.now - timedelta(hours=1))
    assert run_client("gold").status == "succeeded"
    paths = {request.path for request, _, _ in square.exchanges}
    assert paths >= {"/oauth2/token", "/v2/locations", "/v2/orders/search",
                     "/v2/customers/search", "/v2/catalog/search",
                     "/v2/inventory/counts/batch-retrieve"}
    assert {status for _, status, _ in square.exchanges} >= {200, 400, 401, 429}
    assert off_spec(square) == []


def test_token_status_answers_are_on_the_spec(square):
    import httpx

    for token in (square.token, square.issue_access_token(golden_data.NOW + timedelta(days=9))):
        httpx.post(square.url + "/oauth2/token/status", headers={
            "Authorization": f"Bearer {token}"}).raise_for_status()
    assert off_spec(square) == []
