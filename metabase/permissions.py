"""Permission graphs that keep each client to its own database and collection.

Pure functions over the graphs' JSON (as GET /api/permissions/graph and
GET /api/collection/graph return them), so that what is sent can be asserted on. On the
open-source edition "view data" cannot be blocked, so isolation is by query rights
(`create-queries: no` on every database but the client's own) and by collections (no access
to any collection but the client's own); each client's cards live in its own collection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ALL_USERS = "All Users"
ADMINISTRATORS = "Administrators"

CLIENT_DATA = {"view-data": "unrestricted", "create-queries": "query-builder-and-native",
               "download": {"schemas": "full"}}
NO_DATA = {"view-data": "unrestricted", "create-queries": "no", "download": {"schemas": "none"}}
CLIENT_COLLECTION = "read"
NO_COLLECTION = "none"


def data_entries(group: int, database: int, all_users: int, other_groups: Iterable[int],
                 other_databases: Iterable[int]) -> dict[int, dict[int, dict[str, Any]]]:
    """What the data graph must say for one client: its group may query its database; All
    Users and every other client's group may not; its group may not query other clients'."""
    wanted: dict[int, dict[int, dict[str, Any]]] = {group: {database: CLIENT_DATA},
                                                    all_users: {database: NO_DATA}}
    for other in other_groups:
        if other != group:
            wanted.setdefault(other, {})[database] = NO_DATA
    for other in other_databases:
        if other != database:
            wanted[group][other] = NO_DATA
    return wanted


def collection_entries(group: int, collection: int, all_users: int,
                       other_groups: Iterable[int],
                       other_collections: Iterable[int]) -> dict[int, dict[str, str]]:
    """What the collection graph must say for one client: its group reads its collection and
    nothing else (not root); All Users and other clients' groups have no access to it."""
    wanted: dict[int, dict[str, str]] = {
        group: {str(collection): CLIENT_COLLECTION, "root": NO_COLLECTION},
        all_users: {str(collection): NO_COLLECTION}}
    for other in other_groups:
        if other != group:
            wanted.setdefault(other, {})[str(collection)] = NO_COLLECTION
    for other in other_collections:
        if other != collection:
            wanted[group][str(other)] = NO_COLLECTION
    return wanted


def lockdown_entries(all_users: int, databases: Iterable[int]) -> tuple[
        dict[int, dict[int, dict[str, Any]]], dict[int, dict[str, str]]]:
    """Bootstrap: All Users may query no database and sees no collection from root down."""
    return ({all_users: {db: NO_DATA for db in databases}},
            {all_users: {"root": NO_COLLECTION}})


def data_delta(graph: Mapping[str, Any],
               wanted: Mapping[int, Mapping[int, Mapping[str, Any]]]) -> dict[str, Any]:
    """The entries of `wanted` the graph does not already say (only the keys we set)."""
    groups = graph.get("groups") or {}
    delta: dict[str, dict[str, Any]] = {}
    for group, databases in wanted.items():
        current_group = groups.get(str(group)) or {}
        for database, perms in databases.items():
            current = current_group.get(str(database)) or {}
            if any(_norm(current.get(k)) != _norm(v) for k, v in perms.items()):
                delta.setdefault(str(group), {})[str(database)] = dict(perms)
    return delta


def collection_delta(graph: Mapping[str, Any],
                     wanted: Mapping[int, Mapping[str, str]]) -> dict[str, Any]:
    """The entries of `wanted` the collection graph does not already say (absent = none)."""
    groups = graph.get("groups") or {}
    delta: dict[str, dict[str, str]] = {}
    for group, collections in wanted.items():
        current = groups.get(str(group)) or {}
        for collection, level in collections.items():
            if current.get(collection, NO_COLLECTION) != level:
                delta.setdefault(str(group), {})[collection] = level
    return delta


def _norm(value: Any) -> Any:
    """`download: {schemas: none}` and an absent download mean the same."""
    return value if value is not None else "none"


def can_query(graph: Mapping[str, Any], group: int, database: int) -> bool:
    """Whether the graph lets the group write queries on the database."""
    perms = ((graph.get("groups") or {}).get(str(group)) or {}).get(str(database)) or {}
    return perms.get("create-queries", "no") != "no"


def collection_access(graph: Mapping[str, Any], group: int, collection: int | str) -> str:
    """read, write or none."""
    return ((graph.get("groups") or {}).get(str(group)) or {}).get(str(collection), "none")
