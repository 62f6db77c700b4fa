"""The Shopify connector's queries and the emulator's answers held to Shopify's Admin GraphQL
schema (goalpost.sandbox.emulators.shopify_schema: the 2025-01 introspection and the later
fields Goalpost reads, cited there), with graphql-core:

- every query document a manifest sends (stream, nested connection and check queries) is
  valid and uses no deprecated field (graphql-core's NoDeprecatedCustomRule);
- every answer the emulator sent during a run is one the schema allows for that query: it is
  executed again over the answer itself, which checks each value's type, nullability, enum
  and scalar format, and must give the answer back unchanged (so no key the query did not
  select, and nothing missing)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import golden_data
import pytest
from contracts import body_of, exchanges
from graphql import GraphQLResolveInfo, execute_sync, parse, specified_rules, validate
from graphql.validation.rules.custom.no_deprecated import NoDeprecatedCustomRule

from goalpost.app.orchestrator import run_client
from goalpost.pipelines.connectors.manifest import load_manifest
from goalpost.sandbox.emulators.shopify import ShopifyEmulator
from goalpost.sandbox.emulators.shopify_schema import admin_schema

pytestmark = pytest.mark.e2e

TOKEN = "shpat_contract"


def manifest_documents() -> dict[str, str]:
    manifest = load_manifest("shopify")
    found = {f"check {c.name}": c.request.json_body["query"] for c in manifest.checks}
    for name, stream in manifest.streams.items():
        found[f"stream {name}"] = stream.request.json_body["query"]
        for nested in stream.nested:
            found[f"stream {name}, {nested.path}"] = nested.query
    return found


def invalid(document: str) -> list[str]:
    rules = [*specified_rules, NoDeprecatedCustomRule]
    return [e.message for e in validate(admin_schema(), parse(document), rules)]


@pytest.mark.parametrize("name", sorted(manifest_documents()))
def test_every_query_the_manifest_sends_is_valid_and_not_deprecated(name):
    assert invalid(manifest_documents()[name]) == []


def test_a_deprecated_field_is_refused():
    old = "query { orders(first: 1) { nodes { physicalLocation { id } customer { email } } } }"
    assert invalid(old) == [
        "The field Order.physicalLocation is deprecated. Use `fulfillmentOrders` to get the "
        "fulfillment location for the order",
        "The field Customer.email is deprecated. Use `defaultEmailAddress.emailAddress` "
        "instead."]


def _from_answer(source: Any, info: GraphQLResolveInfo, **_: Any) -> Any:
    key = info.field_nodes[0].alias.value if info.field_nodes[0].alias else info.field_name
    return source.get(key) if isinstance(source, dict) else None


def answer_problems(request_body: dict[str, Any], answer: dict[str, Any]) -> list[str]:
    """How an answer is off what the schema gives for the query (empty when it is on)."""
    if answer.get("data") is None:
        errors = answer.get("errors")
        ok = isinstance(errors, list) and all(isinstance(e, dict) and isinstance(
            e.get("message"), str) for e in errors)
        return [] if ok else [f"an answer without data needs errors with messages: {answer}"]
    result = execute_sync(admin_schema(), parse(request_body["query"]),
                          root_value=answer["data"], field_resolver=_from_answer,
                          variable_values=request_body.get("variables") or {},
                          operation_name=request_body.get("operationName"))
    denied = {tuple(e["path"]) for e in answer.get("errors") or () if "path" in e}
    found = [e.message for e in result.errors or () if tuple(e.path or ()) not in denied]
    if result.data != answer["data"]:
        found.append("the answer holds keys or values the query does not give")
    return found


def test_every_answer_of_a_run_is_on_the_schema(api_source):
    data = golden_data.golden_data()
    with ShopifyEmulator(data, token=TOKEN, now=golden_data.NOW) as shop:
        shop.exchanges = []
        shop.discount_order("T-0005", golden_data.D("1.62"), golden_data.NOW - timedelta(days=1))
        shop.deactivate_location("VIL-01", golden_data.NOW - timedelta(days=1))
        shop.inject("rate_limit")
        api_source("gold", "shop", "shopify", shop.url, {"access_token": TOKEN},
                   start_date=golden_data.START_DATE, page_size=2)
        assert run_client("gold").status == "succeeded"
        answered = list(exchanges(shop))
    assert len(answered) > 10
    found = [(body_of(r.body)["query"].split("(")[0], problem) for r, status, payload in answered
             for problem in answer_problems(body_of(r.body), body_of(payload))]
    assert found == []
    sent = {body_of(r.body)["query"] for r, _, _ in answered}
    assert all(invalid(document) == [] for document in sent)


def test_answers_without_protected_customer_data_are_on_the_schema(api_source):
    with ShopifyEmulator(golden_data.golden_data(), token=TOKEN, now=golden_data.NOW,
                         protected_customer_data=False) as shop:
        shop.exchanges = []
        api_source("gold", "shop", "shopify", shop.url, {"access_token": TOKEN},
                   start_date=golden_data.START_DATE, streams=["customers"])
        run_client("gold")
        answered = list(exchanges(shop))
    assert any(b'"ACCESS_DENIED"' in payload for _, _, payload in answered)
    assert [p for r, _, payload in answered
            for p in answer_problems(body_of(r.body), body_of(payload))] == []
