"""A stand-in Metabase: a loopback HTTP server that keeps state and checks every request.

Every request is matched against Metabase's OpenAPI spec (metabase.spec: method, path, path
and query parameters, JSON body); one that does not conform gets a 400 naming the problem
and is recorded in `violations`, so tests can assert that Goalpost sent none. Requests that
conform are served from in-memory state that behaves like Metabase for what Goalpost calls:

- first-run setup (setup token, first admin), sessions (`X-Metabase-Session`) and API keys
  (`x-api-key`, with the permissions of the key's group); everything else needs one of them;
- databases: creating one connects to it with the details sent (a real Postgres, through
  psycopg) and syncs it: the tables and columns of the schemas the filter allows become
  tables and fields with ids, which field filters refer to;
- collections (entity ids, items), cards (entity id settable on create, read by entity id),
  dashboards (PUT with the full set of dashcards, negative ids for new ones), groups, users,
  memberships, the data and collection permission graphs (revisions, 409 when stale; the
  open-source edition's limits: only `unrestricted` view-data, no sandboxes), notifications,
  settings (report-timezone among them; `report-timezone-long` in the session properties
  falls back to the JVM's zone, `State.jvm_timezone`) and email settings.

Run it by hand with `goalpost metabase standin` (or `python -m metabase.standin`).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import fnmatch
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg

from goalpost.sandbox.http_server import Incoming, LoopbackServer, Reply
from goalpost.sandbox.metabase_standin.spec import Spec, SpecViolation, load_spec

ALL_USERS, ADMINISTRATORS = 1, 2
PUBLIC = {("GET", "/api/session/properties"), ("POST", "/api/setup/"), ("POST", "/api/session/")}
_NANO = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
VIEW_DATA = {"unrestricted", "blocked", "sandboxed", "impersonated", "legacy-no-self-service"}
CREATE_QUERIES = {"query-builder-and-native", "query-builder", "no"}


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _nanoid() -> str:
    return "".join(secrets.choice(_NANO) for _ in range(21))


def _check_quartz(cron: str) -> None:
    """What Metabase's Quartz scheduler refuses: not 6-7 fields, or both day fields set
    (one of day-of-month and day-of-week must be `?`)."""
    fields = cron.split()
    if len(fields) not in (6, 7):
        raise HttpError(400, f"cron_schedule {cron!r}: Quartz cron has 6 or 7 fields "
                        "(seconds first)")
    if (fields[3] == "?") == (fields[5] == "?"):
        raise HttpError(400, f"cron_schedule {cron!r}: exactly one of day-of-month and "
                        "day-of-week must be '?'")


def _truthy(value: str | None) -> bool:
    return value in ("true", "1")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    user: dict[str, Any] | None = None

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Seen:
    """One request the stand-in received: what tests count and look into."""

    method: str
    path: str
    query: str
    body: Any
    status: int


@dataclass
class State:
    """Everything the stand-in Metabase knows; guarded by `lock`."""

    setup_token: str | None = field(default_factory=lambda: str(uuid.uuid4()))
    settings: dict[str, Any] = field(default_factory=lambda: {"site-name": "Metabase"})
    # The JVM's zone: what Metabase reads notification crons in while report-timezone is unset.
    jvm_timezone: str = "UTC"
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    passwords: dict[int, str] = field(default_factory=dict)
    sessions: dict[str, int] = field(default_factory=dict)
    api_keys: dict[int, dict[str, Any]] = field(default_factory=dict)
    key_secrets: dict[str, int] = field(default_factory=dict)
    groups: dict[int, dict[str, Any]] = field(default_factory=lambda: {
        ALL_USERS: {"id": ALL_USERS, "name": "All Users"},
        ADMINISTRATORS: {"id": ADMINISTRATORS, "name": "Administrators"}})
    memberships: dict[int, dict[str, Any]] = field(default_factory=dict)
    databases: dict[int, dict[str, Any]] = field(default_factory=dict)
    db_passwords: dict[int, str] = field(default_factory=dict)
    tables: dict[int, dict[str, Any]] = field(default_factory=dict)
    fields: dict[int, dict[str, Any]] = field(default_factory=dict)
    collections: dict[int, dict[str, Any]] = field(default_factory=dict)
    cards: dict[int, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[int, dict[str, Any]] = field(default_factory=dict)
    notifications: dict[int, dict[str, Any]] = field(default_factory=dict)
    email: dict[str, Any] = field(default_factory=dict)
    data_graph: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)
    data_revision: int = 0
    collection_graph: dict[int, dict[str, str]] = field(default_factory=lambda: {
        ALL_USERS: {"root": "write"}, ADMINISTRATORS: {"root": "write"}})
    collection_revision: int = 0
    next_ids: dict[str, int] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def new_id(self, kind: str) -> int:
        self.next_ids[kind] = self.next_ids.get(kind, 0) + 1
        return self.next_ids[kind]


def _route(method: str, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        function.route = (method, path)  # type: ignore[attr-defined]
        return function
    return mark


class StandinMetabase:
    """The stand-in's behaviour, independent of HTTP: handle(method, path, query, body)."""

    def __init__(self, spec: Spec | None = None) -> None:
        self.spec = spec or load_spec()
        self.state = State()
        self.seen: list[Seen] = []
        self.violations: list[str] = []
        self.errors: list[str] = []
        self.routes: dict[tuple[str, str], Callable[..., Any]] = {}
        for name in dir(self):
            handler = getattr(self, name)
            route = getattr(handler, "route", None)
            if route:
                self.routes[route] = handler

    # -- dispatch ---------------------------------------------------------------------------

    def handle(self, method: str, target: str, body: bytes | None,
               headers: dict[str, str]) -> tuple[int, Any]:
        parts = urlsplit(target)
        try:
            op = self.spec.check(method, parts.path, parts.query, body)
        except SpecViolation as exc:
            self.violations.append(str(exc))
            self._record(method, parts, body, 400)
            return 400, {"message": f"request does not conform to Metabase's API: {exc}"}
        payload = json.loads(body) if body and body.strip() else None
        request = Request(method.upper(), parts.path, parse_qs(parts.query), payload)
        handler = self.routes.get((op.method.upper(), op.path))
        try:
            with self.state.lock:
                if (request.method, op.path) not in PUBLIC:
                    request.user = self._authenticate(headers)
                if handler is None:
                    raise HttpError(501, f"the stand-in does not implement {op.name}")
                params = dict(zip(_param_names(op.path),
                                  op.pattern.match(parts.path).groups(), strict=True))
                status, result = 200, handler(request, **params)
                if isinstance(result, tuple):
                    status, result = result
        except Exception as exc:  # noqa: BLE001 - a bug of the stand-in: answer 500, keep it
            if not isinstance(exc, HttpError):
                self.errors.append(f"{op.name}: 500 {exc!r}")
                self._record(method, parts, payload, 500)
                return 500, {"message": f"stand-in error: {exc!r}"}
            if exc.status not in (401, 404):
                self.errors.append(f"{op.name}: {exc.status} {exc.message}")
            self._record(method, parts, payload, exc.status)
            return exc.status, {"message": exc.message}
        self._record(method, parts, payload, status)
        return status, result

    def _record(self, method: str, parts: Any, body: Any, status: int) -> None:
        self.seen.append(Seen(method.upper(), parts.path, parts.query, body, status))

    def writes(self) -> list[Seen]:
        """Requests that could change state (not GET), in order."""
        return [r for r in self.seen if r.method != "GET"]

    def _authenticate(self, headers: dict[str, str]) -> dict[str, Any]:
        state = self.state
        key = headers.get("x-api-key")
        if key and key in state.key_secrets:
            return state.users[state.api_keys[state.key_secrets[key]]["user_id"]]
        session = headers.get("x-metabase-session")
        if session and session in state.sessions:
            return state.users[state.sessions[session]]
        raise HttpError(401, "Unauthenticated")

    def _admin(self, request: Request) -> None:
        if not (request.user or {}).get("is_superuser"):
            raise HttpError(403, "You don't have permissions to do that.")

    # -- setup, session, settings -------------------------------------------------------------

    @_route("GET", "/api/session/properties")
    def session_properties(self, request: Request) -> Any:
        state = self.state
        return dict(state.settings, **{"setup-token": state.setup_token,
                                       "has-user-setup": bool(state.users),
                                       "report-timezone-long": self.schedule_timezone()})

    @_route("POST", "/api/setup/")
    def setup(self, request: Request) -> Any:
        state, body = self.state, request.body
        if state.users or state.setup_token is None:
            raise HttpError(403, "The /api/setup route can only be used to create the first user, "
                            "however a user currently exists.")
        if body["token"] != state.setup_token:
            raise HttpError(403, "Token does not match the setup token.")
        _check_password(body["user"]["password"])
        user = self._new_user(body["user"], superuser=True)
        state.passwords[user["id"]] = body["user"]["password"]
        state.settings["site-name"] = body["prefs"]["site_name"]
        if body["prefs"].get("site_locale"):
            state.settings["site-locale"] = body["prefs"]["site_locale"]
        state.setup_token = None
        return {"id": self._new_session(user["id"])}

    @_route("POST", "/api/session/")
    def login(self, request: Request) -> Any:
        state = self.state
        for user in state.users.values():
            if (user["email"] == request.body["username"].lower() and user["is_active"]
                    and state.passwords.get(user["id"]) == request.body["password"]):
                return {"id": self._new_session(user["id"])}
        raise HttpError(401, "Password: did not match stored password.")

    def _new_session(self, user_id: int) -> str:
        session = str(uuid.uuid4())
        self.state.sessions[session] = user_id
        return session

    def schedule_timezone(self) -> str:
        """The zone notification crons fire in: report-timezone, else the JVM's."""
        return self.state.settings.get("report-timezone") or self.state.jvm_timezone

    @_route("GET", "/api/setting/")
    def list_settings(self, request: Request) -> Any:
        self._admin(request)
        return [{"key": k, "value": v} for k, v in sorted(self.state.settings.items())]

    @_route("PUT", "/api/setting/")
    def put_settings(self, request: Request) -> Any:
        self._admin(request)
        self.state.settings.update(request.body)
        return 204, None

    @_route("GET", "/api/setting/{key}")
    def get_setting(self, request: Request, key: str) -> Any:
        self._admin(request)
        return self.state.settings.get(key)

    @_route("PUT", "/api/setting/{key}")
    def put_setting(self, request: Request, key: str) -> Any:
        self._admin(request)
        self.state.settings[key] = request.body["value"]
        return 204, None

    @_route("PUT", "/api/email/")
    def put_email(self, request: Request) -> Any:
        self._admin(request)
        security = request.body.get("email-smtp-security")
        if security not in (None, "none", "ssl", "tls", "starttls"):
            raise HttpError(400, f"email-smtp-security: invalid value {security!r}")
        if not request.body.get("email-smtp-host"):
            raise HttpError(400, "email-smtp-host: value must be a non-blank string")
        self.state.email = dict(request.body)
        self.state.settings.update({k: ("**********" if k == "email-smtp-password" and v else v)
                                    for k, v in request.body.items()})
        return {k: v for k, v in request.body.items() if k != "email-smtp-password"}

    # -- api keys, users, groups ------------------------------------------------------------

    @_route("GET", "/api/api-key/")
    def list_keys(self, request: Request) -> Any:
        self._admin(request)
        return [self._key_view(k) for k in self.state.api_keys.values()]

    @_route("POST", "/api/api-key/")
    def create_key(self, request: Request) -> Any:
        self._admin(request)
        state, body = self.state, request.body
        if body["group_id"] not in state.groups:
            raise HttpError(400, f"group {body['group_id']} does not exist")
        if any(k["name"] == body["name"] for k in state.api_keys.values()):
            raise HttpError(400, "An API key with this name already exists.")
        user = self._new_user({"email": f"api-key-user-{uuid.uuid4()}@api-key.invalid",
                               "first_name": body["name"]},
                              superuser=body["group_id"] == ADMINISTRATORS, kind="api-key")
        if body["group_id"] not in (ALL_USERS, ADMINISTRATORS):
            self._add_member(user["id"], body["group_id"])
        key_id = state.new_id("api_key")
        secret = "mb_" + secrets.token_urlsafe(32)
        state.api_keys[key_id] = {"id": key_id, "name": body["name"], "user_id": user["id"],
                                  "group_id": body["group_id"], "masked_key": secret[:7] + "..."}
        state.key_secrets[secret] = key_id
        return dict(self._key_view(state.api_keys[key_id]), unmasked_key=secret)

    @_route("PUT", "/api/api-key/{id}/regenerate")
    def regenerate_key(self, request: Request, id: str) -> Any:  # noqa: A002 - spec's name
        self._admin(request)
        key = self._get(self.state.api_keys, id, "API key")
        for secret, key_id in list(self.state.key_secrets.items()):
            if key_id == key["id"]:
                del self.state.key_secrets[secret]
        secret = "mb_" + secrets.token_urlsafe(32)
        self.state.key_secrets[secret] = key["id"]
        key["masked_key"] = secret[:7] + "..."
        return dict(self._key_view(key), unmasked_key=secret)

    def _key_view(self, key: dict[str, Any]) -> dict[str, Any]:
        group = self.state.groups[key["group_id"]]
        return {"id": key["id"], "name": key["name"], "masked_key": key["masked_key"],
                "group": {"id": group["id"], "name": group["name"]}}

    def _new_user(self, body: dict[str, Any], *, superuser: bool = False,
                  kind: str = "personal") -> dict[str, Any]:
        state = self.state
        email = body["email"].lower()
        if any(u["email"] == email for u in state.users.values()):
            raise HttpError(400, "Email address already in use.")
        user_id = state.new_id("user")
        state.users[user_id] = {"id": user_id, "email": email, "is_active": True,
                                "first_name": body.get("first_name"),
                                "last_name": body.get("last_name"), "is_superuser": superuser,
                                "type": kind, "common_name": " ".join(
                                    p for p in (body.get("first_name"), body.get("last_name"))
                                    if p) or email}
        self._add_member(user_id, ALL_USERS)
        if superuser:
            self._add_member(user_id, ADMINISTRATORS)
        return state.users[user_id]

    def _add_member(self, user_id: int, group_id: int, manager: bool = False) -> dict[str, Any]:
        for membership in self.state.memberships.values():
            if membership["user_id"] == user_id and membership["group_id"] == group_id:
                return membership
        membership_id = self.state.new_id("membership")
        self.state.memberships[membership_id] = {
            "membership_id": membership_id, "user_id": user_id, "group_id": group_id,
            "is_group_manager": manager}
        return self.state.memberships[membership_id]

    def _user_view(self, user: dict[str, Any]) -> dict[str, Any]:
        groups = [{"id": m["group_id"]} for m in self.state.memberships.values()
                  if m["user_id"] == user["id"]]
        return dict(user, user_group_memberships=groups)

    @_route("GET", "/api/user/")
    def list_users(self, request: Request) -> Any:
        needle = (request.arg("query") or "").lower()
        found = [self._user_view(u) for u in self.state.users.values()
                 if u["type"] == "personal"
                 and (u["is_active"] or _truthy(request.arg("include_deactivated")))
                 and (needle in u["email"] or needle in (u["common_name"] or "").lower())]
        return {"data": found, "total": len(found)}

    @_route("POST", "/api/user/")
    def create_user(self, request: Request) -> Any:
        self._admin(request)
        body = request.body
        for membership in body.get("user_group_memberships") or []:
            self._get(self.state.groups, membership["id"], "group")
        user = self._new_user(body)
        for membership in body.get("user_group_memberships") or []:
            self._add_member(user["id"], membership["id"],
                             bool(membership.get("is_group_manager")))
        return self._user_view(user)

    @_route("GET", "/api/user/{id}")
    def get_user(self, request: Request, id: str) -> Any:  # noqa: A002
        return self._user_view(self._get(self.state.users, id, "user"))

    @_route("GET", "/api/permissions/group")
    def list_groups(self, request: Request) -> Any:
        counts: dict[int, int] = {}
        for membership in self.state.memberships.values():
            counts[membership["group_id"]] = counts.get(membership["group_id"], 0) + 1
        return [dict(g, member_count=counts.get(g["id"], 0)) for g in self.state.groups.values()]

    @_route("POST", "/api/permissions/group")
    def create_group(self, request: Request) -> Any:
        self._admin(request)
        state, name = self.state, request.body["name"]
        if any(g["name"] == name for g in state.groups.values()):
            raise HttpError(400, "A group with that name already exists.")
        group_id = state.new_id("group") + ADMINISTRATORS
        state.groups[group_id] = {"id": group_id, "name": name}
        for db_id in state.databases:  # a new group has no data access
            state.data_graph.setdefault(group_id, {})[db_id] = _no_access()
        return state.groups[group_id]

    @_route("PUT", "/api/permissions/group/{group-id}")
    def rename_group(self, request: Request, **params: str) -> Any:
        self._admin(request)
        group = self._get(self.state.groups, params["group-id"], "group")
        if group["id"] in (ALL_USERS, ADMINISTRATORS):
            raise HttpError(400, "You cannot edit or delete the 'All Users' or "
                            "'Administrators' groups.")
        group["name"] = request.body["name"]
        return group

    @_route("GET", "/api/permissions/membership")
    def list_memberships(self, request: Request) -> Any:
        result: dict[str, list[dict[str, Any]]] = {}
        for membership in self.state.memberships.values():
            result.setdefault(str(membership["user_id"]), []).append(membership)
        return result

    @_route("POST", "/api/permissions/membership")
    def add_membership(self, request: Request) -> Any:
        self._admin(request)
        body = request.body
        self._get(self.state.users, body["user_id"], "user")
        group = self._get(self.state.groups, body["group_id"], "group")
        if group["id"] == ALL_USERS:
            raise HttpError(400, "You cannot add or remove users to/from the 'All Users' group.")
        self._add_member(body["user_id"], group["id"], bool(body.get("is_group_manager")))
        return [m for m in self.state.memberships.values() if m["group_id"] == group["id"]]

    @_route("DELETE", "/api/permissions/membership/{id}")
    def remove_membership(self, request: Request, id: str) -> Any:  # noqa: A002
        self._admin(request)
        membership = self._get(self.state.memberships, id, "membership")
        if membership["group_id"] == ALL_USERS:
            raise HttpError(400, "You cannot add or remove users to/from the 'All Users' group.")
        del self.state.memberships[membership["membership_id"]]
        return 204, None

    # -- databases --------------------------------------------------------------------------

    @_route("GET", "/api/database/")
    def list_databases(self, request: Request) -> Any:
        found = [self._db_view(db) for db in self.state.databases.values()]
        return {"data": found, "total": len(found)}

    @_route("POST", "/api/database/")
    def create_database(self, request: Request) -> Any:
        self._admin(request)
        body, state = request.body, self.state
        if body["engine"] != "postgres":
            raise HttpError(400, f"the stand-in speaks only to postgres, not {body['engine']}")
        details = dict(body["details"])
        tables = _introspect(details)
        db_id = state.new_id("database")
        state.db_passwords[db_id] = details.pop("password", "")
        state.databases[db_id] = {
            "id": db_id, "name": body["name"], "engine": "postgres", "details": details,
            "is_full_sync": body.get("is_full_sync", True),
            "is_on_demand": body.get("is_on_demand", False), "initial_sync_status": "complete",
            "schedules": body.get("schedules") or {}, "description": None}
        self._sync(db_id, tables)
        for group_id in state.groups:
            state.data_graph.setdefault(group_id, {})[db_id] = (
                _full_access() if group_id in (ALL_USERS, ADMINISTRATORS) else _no_access())
        state.data_revision += 1
        return self._db_view(state.databases[db_id])

    def _sync(self, db_id: int, found: dict[tuple[str, str], list[tuple[str, str]]]) -> None:
        """Make tables and fields match what was found; ids of those kept do not change."""
        state = self.state
        existing = {(t["schema"], t["name"]): t for t in state.tables.values()
                    if t["db_id"] == db_id}
        for (schema, name), columns in found.items():
            table = existing.get((schema, name))
            if table is None:
                table_id = state.new_id("table")
                table = {"id": table_id, "db_id": db_id, "schema": schema, "name": name,
                         "display_name": name.replace("_", " ").title(), "active": True}
                state.tables[table_id] = table
            table["active"] = True
            known = {f["name"]: f for f in state.fields.values() if f["table_id"] == table["id"]}
            for column, pg_type in columns:
                if column not in known:
                    field_id = state.new_id("field")
                    state.fields[field_id] = {
                        "id": field_id, "table_id": table["id"], "name": column,
                        "display_name": column.replace("_", " ").title(),
                        "database_type": pg_type, "base_type": _base_type(pg_type)}
        for key, table in existing.items():
            if key not in found:
                table["active"] = False

    def _db_view(self, db: dict[str, Any], include: str | None = None) -> dict[str, Any]:
        view = copy.deepcopy(db)
        if self.state.db_passwords.get(db["id"]):
            view["details"]["password"] = "**MetabasePass**"
        if include:
            view["tables"] = [self._table_view(t, include == "tables.fields")
                              for t in self.state.tables.values()
                              if t["db_id"] == db["id"] and t["active"]]
        return view

    def _table_view(self, table: dict[str, Any], fields: bool) -> dict[str, Any]:
        view = {k: v for k, v in table.items() if k != "active"}
        if fields:
            view["fields"] = [f for f in self.state.fields.values() if f["table_id"] == table["id"]]
        return view

    @_route("GET", "/api/database/{id}")
    def get_database(self, request: Request, id: str) -> Any:  # noqa: A002
        return self._db_view(self._get(self.state.databases, id, "database"),
                             request.arg("include"))

    @_route("GET", "/api/database/{id}/metadata")
    def database_metadata(self, request: Request, id: str) -> Any:  # noqa: A002
        return self._db_view(self._get(self.state.databases, id, "database"), "tables.fields")

    @_route("PUT", "/api/database/{id}")
    def update_database(self, request: Request, id: str) -> Any:  # noqa: A002
        self._admin(request)
        db = self._get(self.state.databases, id, "database")
        body = request.body
        if body.get("details") is not None:
            details = dict(body["details"])
            if details.get("password") in (None, "**MetabasePass**"):
                details["password"] = self.state.db_passwords.get(db["id"], "")
            tables = _introspect(details)
            self.state.db_passwords[db["id"]] = details.pop("password")
            db["details"] = details
            self._sync(db["id"], tables)
        for key in ("name", "description", "schedules", "is_full_sync", "is_on_demand"):
            if body.get(key) is not None:
                db[key] = body[key]
        return self._db_view(db)

    @_route("POST", "/api/database/{id}/sync_schema")
    def sync_schema(self, request: Request, id: str) -> Any:  # noqa: A002
        self._admin(request)
        db = self._get(self.state.databases, id, "database")
        details = dict(db["details"], password=self.state.db_passwords.get(db["id"], ""))
        self._sync(db["id"], _introspect(details))
        return {"status": "ok"}

    @_route("DELETE", "/api/database/{id}")
    def delete_database(self, request: Request, id: str) -> Any:  # noqa: A002
        self._admin(request)
        db = self._get(self.state.databases, id, "database")
        del self.state.databases[db["id"]]
        for graph in self.state.data_graph.values():
            graph.pop(db["id"], None)
        return 204, None

    # -- permissions ------------------------------------------------------------------------

    def _data_graph_view(self, groups: list[int] | None = None) -> dict[str, Any]:
        state = self.state
        return {"revision": state.data_revision, "groups": {
            str(g): {str(db): copy.deepcopy(v) for db, v in dbs.items()}
            for g, dbs in state.data_graph.items() if groups is None or g in groups}}

    @_route("GET", "/api/permissions/graph")
    def get_data_graph(self, request: Request) -> Any:
        self._admin(request)
        return self._data_graph_view()

    @_route("PUT", "/api/permissions/graph")
    def put_data_graph(self, request: Request) -> Any:
        self._admin(request)
        state, body = self.state, request.body
        if "sandboxes" in body:
            raise HttpError(402, "Sandboxes are a paid feature not currently available to your "
                            "instance.")
        if not _truthy(request.arg("force")) and body.get("revision") != state.data_revision:
            raise HttpError(409, "Looks like someone else edited the permissions and your data "
                            "is out of date. Please fetch new data and try again.")
        changes: dict[int, dict[int, dict[str, Any]]] = {}
        for group_key, dbs in (body.get("groups") or {}).items():
            group_id = _int(group_key, "group")
            self._get(state.groups, group_id, "group")
            if group_id == ADMINISTRATORS:
                raise HttpError(400, "You cannot change the permissions of the Administrators "
                                "group.")
            for db_key, perms in dbs.items():
                db_id = _int(db_key, "database")
                self._get(state.databases, db_id, "database")
                changes.setdefault(group_id, {})[db_id] = _check_data_perms(perms)
        for group_id, dbs in changes.items():
            for db_id, perms in dbs.items():
                state.data_graph.setdefault(group_id, {}).setdefault(db_id, {}).update(perms)
        state.data_revision += 1
        if _truthy(request.arg("skip-graph")):
            return {"revision": state.data_revision}
        return self._data_graph_view()

    def _collection_graph_view(self) -> dict[str, Any]:
        state = self.state
        return {"revision": state.collection_revision, "groups": {
            str(g): {c: v for c, v in colls.items() if v != "none"}
            for g, colls in state.collection_graph.items()}}

    @_route("GET", "/api/collection/graph")
    def get_collection_graph(self, request: Request) -> Any:
        self._admin(request)
        return self._collection_graph_view()

    @_route("PUT", "/api/collection/graph")
    def put_collection_graph(self, request: Request) -> Any:
        self._admin(request)
        state, body = self.state, request.body
        if not _truthy(request.arg("force")) and body.get("revision") is not None \
                and body["revision"] != state.collection_revision:
            raise HttpError(409, "Looks like someone else edited the permissions and your data "
                            "is out of date. Please fetch new data and try again.")
        updates: list[tuple[int, str, str]] = []
        for group_key, colls in body["groups"].items():
            group_id = _int(group_key, "group")
            self._get(state.groups, group_id, "group")
            if group_id == ADMINISTRATORS:
                raise HttpError(400, "You cannot change the permissions of the Administrators "
                                "group.")
            for coll_key, level in colls.items():
                if coll_key != "root":
                    self._get(state.collections, coll_key, "collection")
                if level not in ("read", "write", "none"):
                    raise HttpError(400, f"invalid collection permission {level!r}")
                updates.append((group_id, str(coll_key), level))
        for group_id, coll_key, level in updates:
            state.collection_graph.setdefault(group_id, {})[coll_key] = level
        state.collection_revision += 1
        if _truthy(request.arg("skip-graph")):
            return {"revision": state.collection_revision}
        return self._collection_graph_view()

    # -- collections ------------------------------------------------------------------------

    @_route("GET", "/api/collection/")
    def list_collections(self, request: Request) -> Any:
        return [c for c in self.state.collections.values() if not c["archived"]
                or _truthy(request.arg("archived"))]

    @_route("POST", "/api/collection/")
    def create_collection(self, request: Request) -> Any:
        state, body = self.state, request.body
        parent = body.get("parent_id")
        location = "/"
        if parent is not None:
            parent_coll = self._get(state.collections, parent, "collection")
            location = f"{parent_coll['location']}{parent_coll['id']}/"
        coll_id = state.new_id("collection")
        state.collections[coll_id] = {
            "id": coll_id, "entity_id": _nanoid(), "name": body["name"],
            "description": body.get("description"), "location": location, "archived": False,
            "namespace": body.get("namespace"), "type": None}
        source = str(parent) if parent is not None else "root"
        for colls in state.collection_graph.values():  # a new collection copies its parent's
            if source in colls:
                colls[str(coll_id)] = colls[source]
        state.collection_graph.setdefault(ADMINISTRATORS, {})[str(coll_id)] = "write"
        state.collection_revision += 1
        return state.collections[coll_id]

    def _collection(self, id_or_entity: str | int) -> dict[str, Any]:
        return self._by_id_or_entity(self.state.collections, id_or_entity, "collection")

    @_route("GET", "/api/collection/{id}")
    def get_collection(self, request: Request, id: str) -> Any:  # noqa: A002
        return self._collection(id)

    @_route("PUT", "/api/collection/{id}")
    def update_collection(self, request: Request, id: str) -> Any:  # noqa: A002
        coll = self._collection(id)
        for key in ("name", "description", "archived"):
            if request.body.get(key) is not None:
                coll[key] = request.body[key]
        if request.body.get("parent_id") is not None:
            parent = self._get(self.state.collections, request.body["parent_id"], "collection")
            coll["location"] = f"{parent['location']}{parent['id']}/"
        return coll

    @_route("GET", "/api/collection/{id}/items")
    def collection_items(self, request: Request, id: str) -> Any:  # noqa: A002
        coll = self._collection(id)
        models = set(request.query.get("models") or ["card", "dashboard", "collection"])
        archived = _truthy(request.arg("archived"))
        items = []
        if "collection" in models:
            items += [dict(c, model="collection") for c in self.state.collections.values()
                      if c["location"] == f"{coll['location']}{coll['id']}/"
                      and c["archived"] == archived]
        for model, objects in (("card", self.state.cards), ("dashboard", self.state.dashboards)):
            if model in models:
                items += [{"id": o["id"], "entity_id": o["entity_id"], "name": o["name"],
                           "model": model, "description": o.get("description")}
                          for o in objects.values()
                          if o["collection_id"] == coll["id"] and o["archived"] == archived]
        return {"data": items, "total": len(items), "models": sorted(models)}

    # -- cards ------------------------------------------------------------------------------

    @_route("GET", "/api/card/")
    def list_cards(self, request: Request) -> Any:
        return [c for c in self.state.cards.values() if not c["archived"]]

    @_route("POST", "/api/card/")
    def create_card(self, request: Request) -> Any:
        state, body = self.state, request.body
        entity_id = body.get("entity_id") or _nanoid()
        if any(c["entity_id"] == entity_id for c in state.cards.values()):
            raise HttpError(400, f"a card with entity_id {entity_id} already exists")
        card_id = state.new_id("card")
        card = {"id": card_id, "entity_id": entity_id, "archived": False, "type": "question",
                "description": None, "collection_id": None, "parameters": [],
                "dashboard_id": None}
        self._apply_card(card, body)
        state.cards[card_id] = card
        return card

    def _apply_card(self, card: dict[str, Any], body: dict[str, Any]) -> None:
        if body.get("collection_id") is not None:
            card["collection_id"] = self._collection(body["collection_id"])["id"]
        if body.get("dataset_query") is not None:
            self._check_query(body["dataset_query"])
        for key in ("name", "description", "display", "visualization_settings", "dataset_query",
                    "type", "archived", "parameters", "parameter_mappings"):
            if key in body and (body[key] is not None or key == "description"):
                card[key] = copy.deepcopy(body[key])
        if "dataset_query" in body and body["dataset_query"] is not None:
            card["database_id"] = body["dataset_query"].get("database")

    def _check_query(self, query: dict[str, Any]) -> None:
        """What Metabase checks of a native query: its database, its tags' fields."""
        db_id = query.get("database")
        self._get(self.state.databases, db_id, "database")
        if query.get("type") != "native":
            raise HttpError(400, "the stand-in takes native queries only")
        native = query.get("native") or {}
        if not isinstance(native.get("query"), str) or not native["query"].strip():
            raise HttpError(400, "dataset_query.native.query: a non-blank string is required")
        for name, tag in (native.get("template-tags") or {}).items():
            if tag.get("name") != name:
                raise HttpError(400, f"template tag {name}: name must equal its key")
            if "{{" + name not in native["query"].replace("{{ ", "{{"):
                raise HttpError(400, f"template tag {name} is not used in the query")
            if tag.get("type") == "dimension":
                ref = tag.get("dimension")
                if not (isinstance(ref, list) and len(ref) == 3 and ref[0] == "field"):
                    raise HttpError(400, f"template tag {name}: dimension must be "
                                    "[\"field\", <id>, null]")
                target = self.state.fields.get(ref[1])
                if target is None or self.state.tables[target["table_id"]]["db_id"] != db_id:
                    raise HttpError(400, f"template tag {name}: field {ref[1]} is not a field of "
                                    f"database {db_id}")
                if not tag.get("widget-type"):
                    raise HttpError(400, f"template tag {name}: a field filter needs a "
                                    "widget-type")

    def _card(self, id_or_entity: str | int) -> dict[str, Any]:
        return self._by_id_or_entity(self.state.cards, id_or_entity, "card")

    @_route("GET", "/api/card/{id}")
    def get_card(self, request: Request, id: str) -> Any:  # noqa: A002
        return self._card(id)

    @_route("PUT", "/api/card/{id}")
    def update_card(self, request: Request, id: str) -> Any:  # noqa: A002
        card = self._get(self.state.cards, id, "card")
        self._apply_card(card, request.body)
        if card["archived"]:  # as Metabase: archiving a question ends its alerts
            for notification in self.state.notifications.values():
                if notification["payload"].get("card_id") == card["id"]:
                    notification["active"] = False
        return card

    @_route("DELETE", "/api/card/{id}")
    def delete_card(self, request: Request, id: str) -> Any:  # noqa: A002
        card = self._get(self.state.cards, id, "card")
        del self.state.cards[card["id"]]
        for dashboard in self.state.dashboards.values():
            dashboard["dashcards"] = [d for d in dashboard["dashcards"]
                                      if d["card_id"] != card["id"]]
        return 204, None

    # -- dashboards -------------------------------------------------------------------------

    @_route("POST", "/api/dashboard/")
    def create_dashboard(self, request: Request) -> Any:
        state, body = self.state, request.body
        dashboard_id = state.new_id("dashboard")
        dashboard = {"id": dashboard_id, "entity_id": _nanoid(), "name": body["name"],
                     "description": body.get("description"), "archived": False,
                     "collection_id": None, "parameters": [], "dashcards": [], "tabs": [],
                     "width": "fixed"}
        if body.get("collection_id") is not None:
            dashboard["collection_id"] = self._collection(body["collection_id"])["id"]
        if body.get("parameters") is not None:
            dashboard["parameters"] = _check_parameters(body["parameters"])
        state.dashboards[dashboard_id] = dashboard
        return dashboard

    @_route("GET", "/api/dashboard/{id}")
    def get_dashboard(self, request: Request, id: str) -> Any:  # noqa: A002
        return self._by_id_or_entity(self.state.dashboards, id, "dashboard")

    @_route("PUT", "/api/dashboard/{id}")
    def update_dashboard(self, request: Request, id: str) -> Any:  # noqa: A002
        dashboard = self._get(self.state.dashboards, id, "dashboard")
        body = request.body
        parameters = dashboard["parameters"]
        if body.get("parameters") is not None:
            parameters = _check_parameters(body["parameters"])
        if body.get("collection_id") is not None:
            self._collection(body["collection_id"])
        dashcards = dashboard["dashcards"]
        if body.get("dashcards") is not None:
            dashcards = self._dashcards(dashboard, body["dashcards"], parameters)
        dashboard["parameters"], dashboard["dashcards"] = parameters, dashcards
        for key in ("name", "description", "archived", "collection_id", "width"):
            if key in body and (body[key] is not None or key == "description"):
                dashboard[key] = body[key]
        return dashboard

    def _dashcards(self, dashboard: dict[str, Any], items: list[dict[str, Any]],
                   parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        existing = {d["id"]: d for d in dashboard["dashcards"]}
        parameter_ids = {p["id"] for p in parameters}
        result = []
        for item in items:
            if item["id"] >= 0 and item["id"] not in existing:
                raise HttpError(404, f"dashcard {item['id']} is not on dashboard "
                                f"{dashboard['id']} (new dashcards take negative ids)")
            card_id = item.get("card_id")
            if card_id is not None:
                self._get(self.state.cards, card_id, "card")
            for mapping in item.get("parameter_mappings") or []:
                if mapping["parameter_id"] not in parameter_ids:
                    raise HttpError(400, f"parameter_mappings: unknown parameter "
                                    f"{mapping['parameter_id']!r}")
                if mapping.get("card_id") not in (None, card_id):
                    raise HttpError(400, "parameter_mappings: card_id differs from the "
                                    "dashcard's card")
                if card_id is not None:
                    self._check_target(card_id, mapping["target"])
            if item["col"] + item["size_x"] > 24:
                raise HttpError(400, f"dashcard {item['id']}: col + size_x exceeds 24 columns")
            dashcard_id = item["id"] if item["id"] >= 0 else self.state.new_id("dashcard")
            result.append(dict(copy.deepcopy(item), id=dashcard_id,
                               dashboard_id=dashboard["id"]))
        return result

    def _check_target(self, card_id: int, target: Any) -> None:
        card = self.state.cards[card_id]
        tags = ((card.get("dataset_query") or {}).get("native") or {}).get("template-tags") or {}
        if (isinstance(target, list) and len(target) == 2 and isinstance(target[1], list)
                and target[1][:1] == ["template-tag"]):
            tag = tags.get(target[1][1])
            if tag is None:
                raise HttpError(400, f"card {card_id} has no template tag {target[1][1]!r}")
            wanted = "dimension" if tag.get("type") == "dimension" else "variable"
            if target[0] != wanted:
                raise HttpError(400, f"template tag {target[1][1]} of card {card_id} is a "
                                f"{tag.get('type')}: the target must be [\"{wanted}\", ...]")

    @_route("DELETE", "/api/dashboard/{id}")
    def delete_dashboard(self, request: Request, id: str) -> Any:  # noqa: A002
        dashboard = self._get(self.state.dashboards, id, "dashboard")
        del self.state.dashboards[dashboard["id"]]
        return 204, None

    # -- notifications ----------------------------------------------------------------------

    @_route("GET", "/api/notification/")
    def list_notifications(self, request: Request) -> Any:
        card_id = request.arg("card_id")
        return [n for n in self.state.notifications.values()
                if (n["active"] or _truthy(request.arg("include_inactive")))
                and (card_id is None or n["payload"].get("card_id") == int(card_id))]

    @_route("POST", "/api/notification/")
    def create_notification(self, request: Request) -> Any:
        notification_id = self.state.new_id("notification")
        notification = {"id": notification_id, "active": True,
                        "creator_id": (request.user or {}).get("id")}
        self._apply_notification(notification, request.body)
        self.state.notifications[notification_id] = notification
        return notification

    def _apply_notification(self, notification: dict[str, Any], body: dict[str, Any]) -> None:
        if body.get("payload_type") != "notification/card":
            raise HttpError(400, "the stand-in keeps card notifications only")
        card = self._get(self.state.cards, body["payload"]["card_id"], "card")
        condition = body["payload"].get("send_condition", "has_result")
        if condition in ("goal_above", "goal_below") and not (
                card.get("visualization_settings") or {}).get("graph.goal_value") is not None:
            raise HttpError(400, f"card {card['id']} has no goal line: a goal alert needs one")
        for subscription in body.get("subscriptions") or []:
            if subscription["type"] == "notification-subscription/cron":
                _check_quartz(subscription["cron_schedule"])
        for handler in body.get("handlers", []):
            for recipient in handler.get("recipients", []):
                if recipient["type"] == "notification-recipient/group":
                    self._get(self.state.groups, recipient["permissions_group_id"], "group")
                if recipient["type"] == "notification-recipient/user":
                    self._get(self.state.users, recipient["user_id"], "user")
        for key in ("payload_type", "payload", "subscriptions", "handlers", "active"):
            if key in body and body[key] is not None:
                notification[key] = copy.deepcopy(body[key])

    @_route("GET", "/api/notification/{id}")
    def get_notification(self, request: Request, id: str) -> Any:  # noqa: A002
        return self._get(self.state.notifications, id, "notification")

    @_route("PUT", "/api/notification/{id}")
    def update_notification(self, request: Request, id: str) -> Any:  # noqa: A002
        notification = self._get(self.state.notifications, id, "notification")
        self._apply_notification(notification, request.body)
        return notification

    # -- helpers ----------------------------------------------------------------------------

    def _get(self, table: dict[int, dict[str, Any]], key: Any, what: str) -> dict[str, Any]:
        try:
            found = table.get(int(key))
        except (TypeError, ValueError):
            found = None
        if found is None:
            raise HttpError(404, f"Not found: {what} {key}")
        return found

    def _by_id_or_entity(self, table: dict[int, dict[str, Any]], key: Any,
                         what: str) -> dict[str, Any]:
        if isinstance(key, str) and len(key) == 21 and not key.isdigit():
            for item in table.values():
                if item.get("entity_id") == key:
                    return item
            raise HttpError(404, f"Not found: {what} {key}")
        return self._get(table, key, what)


def _param_names(path: str) -> list[str]:
    return re.findall(r"\{([^}]+)\}", path)


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise HttpError(400, f"invalid {what} id {text!r} in the graph") from None


def _full_access() -> dict[str, Any]:
    return {"view-data": "unrestricted", "create-queries": "query-builder-and-native",
            "download": {"schemas": "full"}, "data-model": {"schemas": "none"},
            "details": "no"}


def _no_access() -> dict[str, Any]:
    return {"view-data": "unrestricted", "create-queries": "no",
            "download": {"schemas": "none"}, "data-model": {"schemas": "none"},
            "details": "no"}


def _check_data_perms(perms: Any) -> dict[str, Any]:
    """The open-source edition's data permissions: anything else is refused."""
    if not isinstance(perms, dict):
        raise HttpError(400, f"database permissions must be a map, got {perms!r}")
    view = perms.get("view-data")
    if view is not None and view not in VIEW_DATA:
        raise HttpError(400, f"invalid view-data {view!r}")
    if view not in (None, "unrestricted"):
        raise HttpError(402, f"view-data {view!r} is a Pro/Enterprise feature")
    create = perms.get("create-queries")
    if create is not None and create not in CREATE_QUERIES:
        raise HttpError(400, f"invalid create-queries {create!r}")
    for key in ("download", "data-model"):
        if key in perms and not (isinstance(perms[key], dict) and
                                 perms[key].get("schemas") in ("full", "limited", "none")):
            raise HttpError(400, f"invalid {key} {perms[key]!r}")
    unknown = set(perms) - {"view-data", "create-queries", "download", "data-model", "details"}
    if unknown:
        raise HttpError(400, f"unknown permission(s) {sorted(unknown)}")
    return copy.deepcopy(perms)


def _check_parameters(parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = [p["id"] for p in parameters]
    if len(ids) != len(set(ids)):
        raise HttpError(400, "dashboard parameters must have unique ids")
    return copy.deepcopy(parameters)


def _check_password(password: str) -> None:
    """Metabase's default complexity: 6 characters with a digit and a letter... and common
    passwords refused; the stand-in asks for 8 with letters and digits."""
    if len(password) < 8 or password.isalpha() or password.isdigit():
        raise HttpError(400, "password: Insufficient password strength")


def _base_type(pg_type: str) -> str:
    return {"date": "type/Date", "timestamp with time zone": "type/DateTimeWithLocalTZ",
            "timestamp without time zone": "type/DateTime", "text": "type/Text",
            "integer": "type/Integer", "bigint": "type/BigInteger", "numeric": "type/Decimal",
            "double precision": "type/Float", "boolean": "type/Boolean",
            "jsonb": "type/SerializedJSON"}.get(pg_type, "type/*")


def _introspect(details: dict[str, Any]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Tables and columns the connection can see, honouring the schema filter (a sync)."""
    try:
        conn = psycopg.connect(host=details.get("host"), port=details.get("port") or 5432,
                               dbname=details.get("dbname"), user=details.get("user"),
                               password=details.get("password"), connect_timeout=5)
    except psycopg.Error as exc:
        raise HttpError(400, f"Couldn't connect to the database: {exc}".strip()) from None
    with conn:
        rows = conn.execute(
            """SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
               FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
                                  AND NOT a.attisdropped
               WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
                 AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                 AND has_schema_privilege(n.oid, 'USAGE')
                 AND has_table_privilege(c.oid, 'SELECT')
               ORDER BY n.nspname, c.relname, a.attnum""").fetchall()
    kind = details.get("schema-filters-type", "all")
    patterns = [p.strip() for p in (details.get("schema-filters-patterns") or "").split(",")
                if p.strip()]
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, pg_type in rows:
        matched = any(_glob(p, schema) for p in patterns)
        if (kind == "inclusion" and not matched) or (kind == "exclusion" and matched):
            continue
        found.setdefault((schema, table), []).append((column, pg_type))
    return found


def _glob(pattern: str, name: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)


# -- HTTP ------------------------------------------------------------------------------------

class StandinServer:
    """The stand-in on a loopback port; use as a context manager or start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False) -> None:
        self.metabase = StandinMetabase()
        self._server = LoopbackServer(self._serve, host=host, port=port,
                                      name="metabase-standin", verbose=verbose)

    @property
    def url(self) -> str:
        return self._server.url

    def _serve(self, incoming: Incoming) -> Reply:
        status, result = self.metabase.handle(incoming.method, incoming.target,
                                              incoming.body or None, incoming.headers)
        return Reply(status, b"" if status == 204 else json.dumps(result).encode())

    def start(self) -> StandinServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    server = StandinServer(args.host, args.port, verbose=True)
    print(f"stand-in Metabase on {server.url} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
