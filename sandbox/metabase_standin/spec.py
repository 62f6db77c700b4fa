"""Metabase's OpenAPI spec, and checking a request against it.

The spec is Metabase's own `docs/api.json` (metabase/metabase at commit
001e7eaa6d520f3fab0134e18f3e7bd926eb74aa), shipped gzipped beside this module. The stand-in
(goalpost.sandbox.metabase_standin.server) refuses every request
this module finds wrong, so that what Goalpost sends is shown to be what Metabase accepts.

The spec is generated from Metabase's Malli schemas, and two readings follow Metabase rather
than the letter of JSON Schema:

- a parameter or body property the spec marks required but gives a default (`is_full_sync`,
  `include_hidden`, ...) may be left out, as Metabase fills the default in;
- `oneOf` is read as `anyOf`: it stands for Malli's `:or`/`:multi`, which take the first
  schema that matches. Read strictly it refuses valid requests: a dashcard's
  `parameter_mappings` target `["dimension", ...]` matches both the `{}` dimension schema
  and the legacy field-ref schema.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jsonschema import Draft202012Validator, ValidationError, validators

SPEC_PATH = Path(str(resources.files("goalpost.sandbox.metabase_standin") / "openapi.json.gz"))
SPEC_SHA256 = "02a5f60504ead4bf46a680b33b60e3bd5097abe8505fbd83f50d8cb3152a7c94"
METHODS = ("get", "post", "put", "delete", "patch")


def _one_of_as_any_of(validator: Any, subschemas: list[Any], instance: Any,
                      schema: dict[str, Any]) -> Any:
    errors = []
    for index, subschema in enumerate(subschemas):
        found = list(validator.descend(instance, subschema, schema_path=index))
        if not found:
            return
        errors.extend(found)
    yield ValidationError(f"{_short(instance)} is not valid under any of the given schemas",
                          context=errors)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


MetabaseValidator = validators.extend(Draft202012Validator, {"oneOf": _one_of_as_any_of})


@dataclass
class Operation:
    """One operation of the spec: `PUT /api/card/{id}` and what it accepts."""

    method: str
    path: str
    pattern: re.Pattern[str]
    params: list[dict[str, Any]]
    body_schema: dict[str, Any] | None
    _body_validator: Any = field(default=None, repr=False)
    _param_validators: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.path}"


class SpecViolation(Exception):
    """A request the spec does not allow; the message says which part and why."""


def _relax_required(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop from the top-level `required` the properties that have a default."""
    required = schema.get("required")
    if not required or not isinstance(schema.get("properties"), dict):
        return schema
    props = schema["properties"]
    kept = [name for name in required if "default" not in props.get(name, {})]
    return dict(schema, required=kept)


class Spec:
    """The operations of an OpenAPI document, matched by method and concrete path."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.components = document.get("components", {})
        self.operations: list[Operation] = []
        for path, item in document["paths"].items():
            regex = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(path))
            for method in METHODS:
                op = item.get(method)
                if op is None:
                    continue
                body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
                self.operations.append(Operation(
                    method=method, path=path, pattern=re.compile(f"^{regex}$"),
                    params=op.get("parameters", []), body_schema=body.get("schema")))
        # Literal segments win over parameters: /api/collection/graph before /{id}.
        self.operations.sort(key=lambda o: (o.path.count("{"), -len(o.path)))

    def match(self, method: str, path: str) -> list[tuple[Operation, dict[str, str]]]:
        """The operations a request could be, with their path parameters, best first.

        Three paths exist twice (`/api/database/{id}/metadata` and `.../{virtual-db}/...`);
        the one whose parameter schema the value fits wins (check() tries them in order).
        """
        found = []
        for op in self.operations:
            hit = op.pattern.match(path)
            if hit:
                names = re.findall(r"\{([^}]+)\}", op.path)
                found.append((op, dict(zip(names, hit.groups(), strict=True))))
        if not found:
            raise SpecViolation(f"{method.upper()} {path}: no such path in the spec")
        same = [item for item in found if item[0].method == method.lower()]
        if not same:
            allowed = sorted({op.method.upper() for op, _ in found})
            raise SpecViolation(f"{method.upper()} {path}: method not in the spec "
                                f"(allowed: {', '.join(allowed)})")
        declared = lambda op: sum(p.get("in") == "path" for p in op.params)  # noqa: E731
        return sorted(same, key=lambda item: -declared(item[0]))

    def _validator(self, schema: dict[str, Any]) -> Any:
        root = {"$ref": "#/x-schema", "x-schema": schema, "components": self.components}
        return MetabaseValidator(root)

    def check(self, method: str, path: str, query: str, body: bytes | None) -> Operation:
        """Validate a whole request; returns its operation or raises SpecViolation."""
        candidates = self.match(method, path)
        problem: SpecViolation | None = None
        for op, path_values in candidates:
            try:
                self._check_params(op, path_values, query)
            except SpecViolation as exc:
                problem = problem or exc
                continue
            return self._check_body(op, body)
        assert problem is not None
        raise problem

    def _check_params(self, op: Operation, path_values: dict[str, str], query: str) -> None:
        where = op.name
        query_values = parse_qs(query, keep_blank_values=True)
        declared = {p["name"]: p for p in op.params}
        for name in query_values:
            if declared.get(name, {}).get("in") != "query":
                raise SpecViolation(f"{where}: unknown query parameter {name!r}")
        for param in op.params:
            name, schema = param["name"], param.get("schema", {})
            if param["in"] == "path":
                raw: list[str] | None = [path_values[name]]
            elif param["in"] == "query":
                raw = query_values.get(name)
            else:
                continue
            if raw is None:
                if param.get("required") and "default" not in schema:
                    raise SpecViolation(f"{where}: query parameter {name!r} is required")
                continue
            shape = self._deref(schema)
            value: Any = [_coerce(v, self._deref(shape.get("items", {}))) for v in raw] \
                if _allows(shape, "array") else _coerce(raw[-1], shape)
            if name not in op._param_validators:
                op._param_validators[name] = self._validator(schema)
            errors = list(op._param_validators[name].iter_errors(value))
            if errors:
                raise SpecViolation(f"{where}: {param['in']} parameter {name}={raw[-1]!r}: "
                                    f"{_best(errors)}")

    def _deref(self, schema: dict[str, Any]) -> dict[str, Any]:
        """A parameter schema with $refs into components replaced, for reading its types."""
        ref = schema.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            return self._deref(self.components["schemas"][ref.rsplit("/", 1)[1]])
        out = dict(schema)
        for key in ("oneOf", "anyOf"):
            if key in out:
                out[key] = [self._deref(s) for s in out[key]]
        return out

    def _check_body(self, op: Operation, body: bytes | None) -> Operation:
        where = op.name
        if op.body_schema is None:
            if body and body.strip():
                raise SpecViolation(f"{where}: takes no request body")
            return op
        if not body or not body.strip():
            raise SpecViolation(f"{where}: a JSON body is required")
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise SpecViolation(f"{where}: body is not JSON: {exc}") from None
        if op._body_validator is None:
            op._body_validator = self._validator(_relax_required(op.body_schema))
        errors = list(op._body_validator.iter_errors(payload))
        if errors:
            raise SpecViolation(f"{where}: body: {_best(errors)}")
        return op


def _allows(schema: dict[str, Any], kind: str) -> bool:
    """Whether a parameter schema admits a JSON type (directly or in oneOf/anyOf)."""
    if schema.get("type") == kind:
        return True
    return any(_allows(s, kind) for s in schema.get("oneOf", []) + schema.get("anyOf", []))


def _coerce(text: str, schema: dict[str, Any]) -> Any:
    """A query or path string as the JSON value the schema expects, when it reads as one."""
    if _allows(schema, "integer") and re.fullmatch(r"-?\d+", text):
        return int(text)
    if _allows(schema, "boolean") and text in ("true", "false"):
        return text == "true"
    return text


def _best(errors: list[Any]) -> str:
    """The most specific error, with where it is in the value."""
    error = min(errors, key=lambda e: (-len(list(e.absolute_path)), len(e.message)))
    while error.context:  # the deepest of the alternatives explains it best
        error = max(error.context, key=lambda e: len(list(e.absolute_path)))
    where = "/".join(str(p) for p in error.absolute_path)
    message = error.message if len(error.message) < 300 else error.message[:300] + "..."
    return f"{where or '(top level)'}: {message}"


@cache
def load_spec(path: str | None = None) -> Spec:
    """The spec shipped with Goalpost, or GOALPOST_METABASE_OPENAPI (a JSON file) instead."""
    chosen = Path(path or os.environ.get("GOALPOST_METABASE_OPENAPI") or SPEC_PATH)
    data = chosen.read_bytes()
    if chosen.suffix == ".gz":
        data = gzip.decompress(data)
    return Spec(json.loads(data))
