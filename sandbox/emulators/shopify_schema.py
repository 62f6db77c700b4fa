"""Shopify's Admin GraphQL schema, as the Shopify emulator serves it and the tests check queries.

The schema is Shopify's own: the 2025-01 Admin API as an introspection result (Shopify/dev-mcp
`data/admin_schema_2025-01.json.gz` at 441a0deaa19323159366139e07994d7b5bbc6a83, ISC licence in
`shopify-admin-LICENSE.txt` beside it), built with graphql-core. 2025-01 is past its support
window and the newest schema at hand: the few fields Goalpost reads that later versions added
are declared in `EXTENSIONS`, each with the reference page that documents it, so that nothing
else of a newer version is assumed.

Shopify's custom scalars are strings on the wire; here each one checks what it serialises
(`SCALARS`), so a value off Shopify's format fails the query instead of reaching a client.
`requested_cost` is Shopify's calculated query cost (shopify.dev/docs/api/usage/
rate-limits#cost-calculation): an object costs 1, a connection 2 plus its page size times the
cost of one node, scalars and enums nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_client_schema,
    extend_schema,
    get_named_type,
    is_leaf_type,
    parse,
    value_from_ast_untyped,
)

SCHEMA_PATH = Path(str(resources.files("goalpost.sandbox.emulators")
                       / "shopify-admin-2025-01.introspection.json.gz"))
SCHEMA_SHA256 = "1057c5bca68fafa831bad094d0c42a236eebc255d74347eca8f9d2670ff60608"

# Fields of versions after 2025-01 that Goalpost reads. Customer.email is deprecated in 2025-01
# "Use `defaultEmailAddress.emailAddress` instead"; the Customer reference
# (shopify.dev/docs/api/admin-graphql/latest/objects/Customer) lists both fields below.
EXTENSIONS = '''
extend type Customer {
  "The customer's default email address."
  defaultEmailAddress: CustomerEmailAddress
  "The customer's default phone number."
  defaultPhoneNumber: CustomerPhoneNumber
}
'''

_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
_DIGITS = re.compile(r"^\d+$")


def _string_matching(name: str, pattern: re.Pattern[str] | None) -> Callable[[Any], str]:
    def serialize(value: Any) -> str:
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            raise GraphQLError(f"{name} cannot represent {value!r}: Shopify sends a string"
                               + (f" like {pattern.pattern}" if pattern is not None else ""))
        return value
    return serialize


# Shopify's custom scalars and their wire form (scalar reference pages under
# shopify.dev/docs/api/admin-graphql/latest/scalars): DateTime is ISO 8601 in UTC, Decimal and
# Money decimal strings, UnsignedInt64 a string of digits.
SCALARS: dict[str, Callable[[Any], str]] = {
    "DateTime": _string_matching("DateTime", _DATETIME),
    "Decimal": _string_matching("Decimal", _DECIMAL),
    "Money": _string_matching("Money", _DECIMAL),
    "UnsignedInt64": _string_matching("UnsignedInt64", _DIGITS),
    "URL": _string_matching("URL", None),
    "HTML": _string_matching("HTML", None),
    "FormattedString": _string_matching("FormattedString", None),
}


@cache
def admin_schema() -> GraphQLSchema:
    """The Admin schema (2025-01 and EXTENSIONS), built once per process."""
    raw = SCHEMA_PATH.read_bytes()
    if hashlib.sha256(raw).hexdigest() != SCHEMA_SHA256:
        raise RuntimeError(f"{SCHEMA_PATH} is not the Shopify 2025-01 schema it should be")
    document = json.loads(gzip.decompress(raw))
    schema = extend_schema(build_client_schema(document.get("data", document)),
                           parse(EXTENSIONS))
    for name, serialize in SCALARS.items():
        schema.type_map[name].serialize = serialize  # type: ignore[union-attr]
    return schema


def operation_of(document: DocumentNode, name: str | None) -> OperationDefinitionNode:
    """The operation a request runs: the one named, else the only one."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name:
        chosen = [op for op in operations if op.name and op.name.value == name]
        if not chosen:
            raise GraphQLError(f"Unknown operation named '{name}'.")
        return chosen[0]
    if len(operations) != 1:
        raise GraphQLError("Must provide operation name if query contains multiple operations.")
    return operations[0]


def requested_cost(schema: GraphQLSchema, document: DocumentNode,
                   operation: OperationDefinitionNode, variables: dict[str, Any]) -> int:
    """Shopify's calculated cost of a valid operation, before it runs."""
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    root = schema.mutation_type if operation.operation.value == "mutation" else \
        schema.query_type
    return _cost(schema, root, operation.selection_set, fragments, variables)


def _fields(schema: GraphQLSchema, parent: Any, selections: SelectionSetNode | None,
            fragments: dict[str, FragmentDefinitionNode]) -> list[tuple[Any, FieldNode]]:
    """(the type a field belongs to, the field) of a selection set, fragments flattened."""
    out: list[tuple[Any, FieldNode]] = []
    for selection in selections.selections if selections else ():
        if isinstance(selection, FieldNode):
            out.append((parent, selection))
        elif isinstance(selection, InlineFragmentNode):
            kind = schema.get_type(selection.type_condition.name.value) \
                if selection.type_condition else parent
            out.extend(_fields(schema, kind, selection.selection_set, fragments))
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments[selection.name.value]
            kind = schema.get_type(fragment.type_condition.name.value)
            out.extend(_fields(schema, kind, fragment.selection_set, fragments))
    return out


def _cost(schema: GraphQLSchema, parent: Any, selections: SelectionSetNode | None,
          fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any]) -> int:
    total = 0
    for owner, node in _fields(schema, parent, selections, fragments):
        if not isinstance(owner, GraphQLObjectType) or node.name.value not in owner.fields:
            continue  # __typename, or a field of an interface's other implementations
        kind = get_named_type(owner.fields[node.name.value].type)
        if is_leaf_type(kind) or kind.name == "PageInfo":
            continue
        if kind.name.endswith("Connection") and isinstance(kind, GraphQLObjectType):
            args = {a.name.value: value_from_ast_untyped(a.value, variables)
                    for a in node.arguments}
            size = args.get("first") if args.get("first") is not None else args.get("last")
            size = size if isinstance(size, int) and not isinstance(size, bool) else 0
            one = 0
            for _, inner in _fields(schema, kind, node.selection_set, fragments):
                if inner.name.value == "nodes":
                    node_type = get_named_type(kind.fields["nodes"].type)
                    one += 1 + _cost(schema, node_type, inner.selection_set, fragments,
                                     variables)
                elif inner.name.value == "edges":
                    edge = get_named_type(kind.fields["edges"].type)
                    node_type = get_named_type(edge.fields["node"].type)
                    for _, deeper in _fields(schema, edge, inner.selection_set, fragments):
                        if deeper.name.value == "node":
                            one += 1 + _cost(schema, node_type, deeper.selection_set,
                                             fragments, variables)
            total += 2 + size * one
        else:
            total += 1 + _cost(schema, kind, node.selection_set, fragments, variables)
    return total
