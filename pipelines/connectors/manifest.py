"""The declarative connector manifest: what a REST source is, as YAML.

A manifest says how to call an API (base URL, auth, headers), which streams it has and, per
stream, how to request a page, where the records are, what identifies a record, how to page,
how to ask only for what changed since the last run, how to split the work (partitions, date
windows), what an error looks like (even inside a 200) and how deleted records show. The five
vendor manifests need no Python of their own: what looked odd (GraphQL connections, a version
feed, per-item detail calls, a search ceiling, errors inside a 200) is in the vocabulary.
They live in `pipelines/connectors/manifests/`; a consultant can declare a custom REST
source with the same vocabulary inside a client's YAML (`connector: rest`, `manifest: {...}`).

Strings may hold placeholders filled at request time: `{config.x}` (the source's settings,
secrets resolved), `{partition.value}` / `{partition.values}`, `{cursor.start}` /
`{cursor.end}` (the incremental window), `{page.token}` and `{page.size}`. A string that is
only a placeholder takes the value's type (a list of location ids stays a list).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML

from goalpost.core.canonical import ENTITIES
from goalpost.core.errors import ConfigError, NotFoundError

MANIFEST_DIR = Path(str(resources.files("goalpost.pipelines.connectors") / "manifests"))
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def duration_seconds(text: str) -> float:
    """An ISO 8601 duration of days, hours, minutes and seconds (P3D, PT72H, P1DT12H)."""
    match = _DURATION.match(text or "")
    if not match or text in ("P", "PT"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as P3D or PT6H")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


class Setting(_Strict):
    """A setting a source of this connector takes (asked for by `goalpost source add`)."""

    description: str = ""
    required: bool = False
    secret: bool = False
    default: Any = None
    # The values allowed, each with the defaults it gives other settings (a data centre and
    # its hosts): a setting the source does not give takes the chosen value's.
    choices: dict[str, dict[str, Any]] | None = None


class Auth(_Strict):
    """How requests prove who they are."""

    type: Literal["none", "bearer", "header", "query", "basic", "oauth2_refresh"] = "none"
    # bearer, header, query: the credential (a template); oauth2_refresh: an access token to
    # use first, when the source has one (renewed from the refresh token once refused)
    token: str | None = None
    header: str = "Authorization"  # header: the header's name
    prefix: str = ""  # header: written before the token, e.g. "Zoho-oauthtoken "
    param: str | None = None  # query: the parameter's name
    username: str | None = None  # basic
    password: str | None = None  # basic
    token_url: str | None = None  # oauth2_refresh: where to trade the refresh token
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    token_body: Literal["form", "json"] = "form"
    rotates: bool = False  # the token endpoint returns a new refresh token to keep
    access_token_path: str = "access_token"
    refresh_token_path: str = "refresh_token"
    scheme: str = "Bearer"  # oauth2_refresh: how the access token is sent
    scheme_header: str = "Authorization"
    expires_at_path: str = "expires_at"  # oauth2_refresh: the token answer's expiry (RFC 3339)
    expires_in_path: str = "expires_in"  # ... or its lifetime in seconds
    # oauth2_refresh: where the token answer names the API host to use (Zoho's api_domain)
    api_domain_path: str | None = None
    # oauth2_refresh: an endpoint telling an access token's expiry (Square's token status,
    # POST), for `source test` to say when a token that cannot be renewed stops working
    status_url: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Auth:
        needs = {
            "bearer": ("token",), "header": ("token",), "query": ("token", "param"),
            "basic": ("username",),
            "oauth2_refresh": ("token_url", "client_id", "client_secret", "refresh_token"),
        }.get(self.type, ())
        missing = [name for name in needs if getattr(self, name) in (None, "")]
        if missing:
            raise ValueError(f"auth type {self.type} needs {', '.join(missing)}")
        return self

    def refresh_settings(self) -> list[str]:
        """The source settings an OAuth refresh needs (named in its templates)."""
        return [name for template in (self.client_id, self.client_secret, self.refresh_token)
                for name in setting_names(template)]


def setting_names(template: str | None) -> list[str]:
    """The settings a template reads ({config.x})."""
    return re.findall(r"\{config\.([A-Za-z0-9_]+)\}", template or "")


class Retry(_Strict):
    """Retries with exponential backoff and full jitter; Retry-After is obeyed when sent."""

    max_retries: int = 8
    base_seconds: float = 0.5
    max_seconds: float = 60.0
    timeout_seconds: float = 30.0
    retry_after_header: str = "Retry-After"
    # A vendor budget header ("used/size", or remaining calls): wait before it runs out.
    budget_header: str | None = None
    budget_format: Literal["used/size", "remaining"] = "used/size"
    budget_min_free: int = 1
    budget_wait_seconds: float = 1.0


class Budget(_Strict):
    """A vendor's call allowance: paced per minute; a run stops before the day's is spent."""

    per_minute: int | None = None
    per_day: str | None = None  # a template giving the calls allowed per day (a setting)


class ErrorRule(_Strict):
    """What to do with a response that matches: checked in order before the defaults."""

    status: list[int] = Field(default_factory=list)  # empty: any status
    json_path: str | None = None  # a dotted path in the body (e.g. errors.0.extensions.code)
    equals: Any = None
    contains: str | None = None  # the body text contains this
    action: Literal["retry", "rate_limited", "refresh_token", "restart", "split_window",
                    "ignore", "fail", "warn"]
    message: str | None = None  # said when the action is fail or warn (warn: load, and say)


class Request(_Strict):
    method: Literal["GET", "POST"] = "GET"
    path: str
    params: dict[str, Any] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)


class Paginator(_Strict):
    """How the next page is asked for, and when there is none."""

    type: Literal["none", "body_cursor", "link_header", "header_token", "offset", "page",
                  "version", "graphql"] = "none"
    token_path: str | None = None  # body_cursor/version: where the next token is in the body
    token_header: str | None = None  # header_token
    inject: Literal["params", "json", "graphql"] = "params"
    field: str | None = None  # the parameter or body path the token (or offset/page) goes to
    size_field: str | None = None  # where the page size goes
    size: int | None = None  # the page size asked for
    start: int = 0  # offset: first offset; page: first page number (set 1 for 1-based)
    has_more_path: str | None = None  # page: stop when this is false
    page_info_path: str | None = None  # graphql: path of pageInfo {hasNextPage, endCursor}
    # A search that pages through at most `max_total` results: when the first page's total
    # (at `total_path`) says more matched, the time window is split before paging past it.
    total_path: str | None = None
    max_total: int | None = None


class Incremental(_Strict):
    """Asking only for what changed: the cursor field of a record and how the start is sent."""

    cursor_field: str  # dotted path in the record, e.g. updated_at or properties.hs_lastmodified
    type: Literal["datetime", "number"] = "datetime"
    format: Literal["rfc3339", "rfc3339_ms", "epoch_ms", "epoch_s", "raw"] = "rfc3339"
    start_date: str = "2000-01-01T00:00:00Z"  # a template; the first run starts here
    lookback: str | None = None  # ISO duration taken off the cursor on every run
    window: str | None = None  # ISO duration: ask window by window up to the sync start
    sorted: bool = False  # records come in ascending cursor order: checkpoint every page
    send_end: bool = False  # the window's end is sent too (cursor.end), capped at sync start


class Nested(_Strict):
    """A connection inside each record (GraphQL: lineItems of an order) that has more than the
    first page: the rest is asked for by the record's id and added to the record."""

    path: str  # the connection in the record: {nodes, pageInfo {hasNextPage endCursor}}
    query: str  # a GraphQL query taking $id and $after
    records: str  # where the connection is in its answer, e.g. data.order.lineItems
    id_field: str = "id"


class Expectation(_Strict):
    value: str  # a value the check's answer should list
    message: str  # what it means when it does not, and what to do


class Check(_Strict):
    """A question asked of the account once per run and by `goalpost source test`: what access
    or setting it lacks (a missing scope). A miss is a warning on the streams it concerns."""

    name: str
    request: Request
    values: str  # a list in the answer
    field: str | None = None  # each item's field to compare (the item itself when None)
    streams: list[str] = Field(default_factory=list)
    expect: list[Expectation]


class Partitions(_Strict):
    """Run the stream once per partition: values from a config list or a parent stream."""

    values: str | None = None  # a template giving a list, e.g. "{config.location_ids}"
    from_stream: str | None = None  # another stream of the source, loaded first
    field: str = "id"  # the parent record's field
    chunk: int = 1  # partition.values holds up to this many values at once
    # Only the parent records loaded (new or changed) since this stream last read them, in
    # load order, with a cursor in the stream's state: a run stopped midway goes on from there.
    changed_only: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> Partitions:
        if (self.values is None) == (self.from_stream is None):
            raise ValueError("partitions need exactly one of values or from_stream")
        return self


class Deletes(_Strict):
    """How a deleted record shows: a field that is set (deleted_at) or equals a value."""

    field: str
    equals: Any = None  # None: deleted when the field is present and not null


class Stream(_Strict):
    request: Request
    records: str = ""  # dotted path of the record list in the body ("" = the body itself)
    record_path: str = ""  # path of the record inside each list item (GraphQL edges: node)
    primary_key: list[str] = Field(min_length=1)
    paginator: Paginator = Field(default_factory=Paginator)
    incremental: Incremental | None = None
    partitions: Partitions | None = None
    deletes: Deletes | None = None
    errors: list[ErrorRule] = Field(default_factory=list)
    nested: list[Nested] = Field(default_factory=list)
    description: str = ""
    entity: str | None = None  # the canonical entity its staging model feeds, if any
    # For a `connector: rest` stream feeding metric_values: each canonical field's dotted path
    # in the record, or `=value` for a constant (metric: "=google_rating").
    fields: dict[str, str] = Field(default_factory=dict)
    default: bool = True  # read unless the source lists its streams (false: only if listed)

    @model_validator(mode="after")
    def _fields(self) -> Stream:
        if self.fields and self.entity != "metric_values":
            raise ValueError("`fields` maps the records of a metric_values stream (entity: "
                             "metric_values)")
        if self.entity == "metric_values":
            known = {f.name for f in ENTITIES["metric_values"]}
            required = {f.name for f in ENTITIES["metric_values"] if f.required}
            unknown = sorted(set(self.fields) - known)
            missing = sorted(required - set(self.fields))
            if unknown or missing:
                raise ValueError(
                    "fields of a metric_values stream: "
                    + (f"unknown {', '.join(unknown)}; " if unknown else "")
                    + (f"missing {', '.join(missing)}; " if missing else "")
                    + f"give each of {', '.join(sorted(known))} a record path or =constant")
        return self


class Manifest(_Strict):
    name: str
    title: str = ""
    description: str = ""
    base_url: str
    settings: dict[str, Setting] = Field(default_factory=dict)
    auth: Auth = Field(default_factory=Auth)
    headers: dict[str, str] = Field(default_factory=dict)
    retry: Retry = Field(default_factory=Retry)
    budget: Budget | None = None
    errors: list[ErrorRule] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    streams: dict[str, Stream]

    @model_validator(mode="after")
    def _parents_known(self) -> Manifest:
        for name, stream in self.streams.items():
            parent = stream.partitions.from_stream if stream.partitions else None
            if parent is not None and parent not in self.streams:
                raise ValueError(f"stream {name}: partitions.from_stream {parent!r} is not a "
                                 "stream of this manifest")
        return self


def parse_manifest(data: dict[str, Any], origin: str) -> Manifest:
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors())
        raise ConfigError(f"{origin}: invalid connector manifest: {problems}") from None


@cache
def load_manifest(name: str) -> Manifest:
    """A shipped vendor manifest by name (square, shopify, hubspot, ...)."""
    path = MANIFEST_DIR / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(catalogue()) or "none"
        raise NotFoundError(f"no connector {name!r} (connectors: files, rest, {known})",
                            hint="see `goalpost connectors`")
    return parse_manifest(YAML(typ="safe").load(path.read_text()), str(path))


def catalogue() -> list[str]:
    return sorted(p.stem for p in MANIFEST_DIR.glob("*.yaml"))
