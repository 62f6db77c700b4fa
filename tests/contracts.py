"""Holding an emulator's traffic to a vendor's specification (the contract tests).

A contract test sets `emulator.exchanges = []`, runs the real connector against the emulator,
and checks every request the connector sent and every response the emulator answered with
these helpers. Specifications are strict about unknown keys: an object schema that lists its
properties and says nothing of others refuses them, so that an emulator cannot send a field
the vendor does not have.

- Square: its OpenAPI 3.0 document (../shared/vendor-specs/square-api-2025-08-20.json.gz),
  whose component schemas are read as JSON Schema (OpenAPI 3.0's `nullable` as a null type,
  siblings of a `$ref` ignored, as 3.0 ignores them).
- HubSpot, Zoho Inventory and Lightspeed X-Series publish no usable machine-readable spec
  here: their schemas are written in tests/vendor_schemas.py from the vendors' pages, cited
  there.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jsonschema import Draft202012Validator

from goalpost.sandbox.emulators.base import Request

# ../shared beside the checkout, wherever it is cloned; the workplace keeps it in /work.
_SPEC_DIR = Path("shared") / "vendor-specs"
SPECS = next((base / _SPEC_DIR for base in (Path(__file__).resolve().parents[2], Path("/work"))
              if (base / _SPEC_DIR).is_dir()), Path("/work") / _SPEC_DIR)
SQUARE_SPEC = SPECS / "square-api-2025-08-20.json.gz"


def strict(schema: Any) -> Any:
    """A JSON Schema whose object schemas with `properties` refuse any other key."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {name: strict(sub) for name, sub in out["properties"].items()}
        out.setdefault("additionalProperties", False)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = strict(out[key])
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(out.get(key), list):
            out[key] = [strict(sub) for sub in out[key]]
    for key in ("schemas", "$defs"):  # collections of named schemas (OpenAPI components)
        if isinstance(out.get(key), dict):
            out[key] = {name: strict(sub) for name, sub in out[key].items()}
    return out


def _from_openapi_30(schema: Any) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema 2020-12 (nullable, $ref siblings)."""
    if isinstance(schema, list):
        return [_from_openapi_30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        ref = {"$ref": schema["$ref"]}
        return {"anyOf": [ref, {"type": "null"}]} if schema.get("nullable") else ref
    out = {key: value for key, value in schema.items()
           if key not in ("nullable", "example", "x-release-status", "readOnly")}
    if isinstance(out.get("properties"), dict):
        out["properties"] = {name: _from_openapi_30(sub)
                             for name, sub in out["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _from_openapi_30(out[key])
    if schema.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def square_spec() -> dict[str, Any]:
    return json.loads(gzip.decompress(SQUARE_SPEC.read_bytes()))


@cache
def _square_components() -> dict[str, Any]:
    schemas = square_spec()["components"]["schemas"]
    return {"schemas": {name: strict(_from_openapi_30(schema))
                        for name, schema in schemas.items()}}


def square_validator(ref: str) -> Draft202012Validator:
    """A validator of one Square component schema (`#/components/schemas/SearchOrdersRequest`)."""
    return Draft202012Validator({"$ref": ref, "components": _square_components()})


def square_operation(method: str, path: str) -> dict[str, Any]:
    """The spec's operation for a concrete path (path parameters matched)."""
    for template, item in square_spec()["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return item[method.lower()]
    raise AssertionError(f"{method} {path} is not an operation of Square's spec")


def problems(validator: Draft202012Validator, instance: Any, where: str) -> list[str]:
    """Every way `instance` is off its schema, each naming where and what."""
    found = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.path)):
        location = "/".join(map(str, error.absolute_path)) or "(top)"
        found.append(f"{where}: {location}: {error.message[:300]}")
    return found


def body_of(payload: bytes) -> Any:
    return json.loads(payload) if payload.strip() else None


def query_of(request: Request) -> dict[str, list[str]]:
    return dict(request.query) or parse_qs("")


def exchanges(emulator: Any) -> Iterable[tuple[Request, int, bytes]]:
    """What the emulator kept: there must be some, or the test checked nothing."""
    kept = emulator.exchanges or []
    assert kept, "the emulator recorded no exchange: set emulator.exchanges = [] first"
    return kept
