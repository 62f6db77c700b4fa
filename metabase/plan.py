"""The difference between what a client has in Metabase and what it should have.

Objects are matched by stable keys: ours are in goalpost.metabase_objects (with their
Metabase id), and a card is also found by its deterministic entity_id. For each desired
object the plan says create (new, or gone from Metabase), update (what we sent differs from
what we want now, or it was changed or archived in Metabase) or nothing; objects in our state
that the templates no longer have are deleted (archived). Anything not ours is never touched.
The permission graphs are compared entry by entry. Planning only reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from goalpost.core.registry.models import Client
from goalpost.metabase import alerts, permissions
from goalpost.metabase.api import MetabaseClient, MetabaseError, warehouse_details
from goalpost.metabase.desired import KINDS, Desired, desired_objects, resolve
from goalpost.metabase.fit import read_facts
from goalpost.metabase.state import Provisioned, ids_of_kind, load
from goalpost.metabase.timezone import metabase_timezone

SYMBOLS = {"create": "+", "update": "~", "delete": "-"}


@dataclass
class Change:
    """One object's fate: create, update, delete, or nothing to do."""

    action: str
    kind: str
    key: str
    name: str
    reason: str = ""
    desired: Desired | None = field(default=None, repr=False)
    current: Provisioned | None = field(default=None, repr=False)
    metabase_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "kind": self.kind, "key": self.key, "name": self.name,
                "reason": self.reason, "metabase_id": self.metabase_id}


@dataclass
class Plan:
    client: str
    url: str
    changes: list[Change]
    data_delta: dict[str, Any] = field(default_factory=dict)
    collection_delta: dict[str, Any] = field(default_factory=dict)
    permissions_pending: bool = False
    schedule_note: str | None = None

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != "none"]

    @property
    def empty(self) -> bool:
        return not self.pending and not self.data_delta and not self.collection_delta \
            and not self.permissions_pending

    def counts(self) -> dict[str, int]:
        found = {"create": 0, "update": 0, "delete": 0, "unchanged": 0}
        for change in self.changes:
            found["unchanged" if change.action == "none" else change.action] += 1
        return found

    def render(self) -> str:
        lines = [f"Metabase plan for {self.client} ({self.url}):"]
        if self.schedule_note:
            lines.append(f"  {self.schedule_note}")
        for change in self.pending:
            reason = f"  ({change.reason})" if change.reason else ""
            lines.append(f"  {SYMBOLS[change.action]} {change.kind:<11} {change.key:<40} "
                         f"{change.name}{reason}")
        if self.permissions_pending:
            lines.append("  ~ permissions data and collection graphs, once the objects exist")
        for what, delta in (("data", self.data_delta), ("collection", self.collection_delta)):
            for group, entries in sorted(delta.items()):
                for target, value in sorted(entries.items()):
                    shown = value.get("create-queries") if isinstance(value, dict) else value
                    lines.append(f"  ~ permission  {what} graph: group {group} on "
                                 f"{'database' if what == 'data' else 'collection'} {target}"
                                 f" -> {shown}")
        counts = self.counts()
        if self.empty:
            lines.append(f"  no changes ({counts['unchanged']} objects up to date)")
        else:
            lines.append(f"  {counts['create']} to create, {counts['update']} to update, "
                         f"{counts['delete']} to delete, {counts['unchanged']} unchanged")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"client": self.client, "url": self.url, "counts": self.counts(),
                "schedule_note": self.schedule_note,
                "changes": [c.to_json() for c in self.pending],
                "permissions": {"data": self.data_delta, "collection": self.collection_delta,
                                "pending": self.permissions_pending}}


class _Current:
    """Reads of Metabase made while planning, each at most once."""

    def __init__(self, mb: MetabaseClient) -> None:
        self.mb = mb
        self._groups: dict[int, dict[str, Any]] | None = None
        self._memberships: dict[int, dict[str, Any]] | None = None

    def _get_or_none(self, path: str, what: str, params: Any = None) -> Any:
        try:
            return self.mb.get(path, what=what, params=params)
        except MetabaseError as exc:
            if exc.status == 404:
                return None
            raise

    def groups(self) -> dict[int, dict[str, Any]]:
        if self._groups is None:
            found = self.mb.get("/api/permissions/group", what="listing groups")
            self._groups = {g["id"]: g for g in found}
        return self._groups

    def memberships(self) -> dict[int, dict[str, Any]]:
        if self._memberships is None:
            found = self.mb.get("/api/permissions/membership", what="listing memberships")
            self._memberships = {m["membership_id"]: m for items in found.values()
                                 for m in items}
        return self._memberships

    def database(self, db_id: int) -> Any:
        return self._get_or_none(f"/api/database/{db_id}", f"reading database {db_id}")

    def collection(self, coll_id: int) -> Any:
        return self._get_or_none(f"/api/collection/{coll_id}", f"reading collection {coll_id}")

    def card(self, ident: int | str) -> Any:
        return self._get_or_none(f"/api/card/{ident}", f"reading card {ident}",
                                 params={"legacy-mbql": "true"})

    def dashboard(self, dashboard_id: int) -> Any:
        return self._get_or_none(f"/api/dashboard/{dashboard_id}",
                                 f"reading dashboard {dashboard_id}")

    def notification(self, notification_id: int) -> Any:
        return self._get_or_none(f"/api/notification/{notification_id}",
                                 f"reading notification {notification_id}")


def _changed_fields(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if "subscriptions" in keys and _schedules(old) != _schedules(new):
        keys[keys.index("subscriptions")] = (f"schedule {' | '.join(_schedules(old))} -> "
                                             f"{' | '.join(_schedules(new))}")
    return ", ".join(keys) or "secret"


def _utc_offset(zone: str, at: datetime) -> str:
    offset = at.astimezone(ZoneInfo(zone)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def schedule_note(client: Client, zone: str, at: datetime) -> str:
    """How the client's alert schedules were converted (see metabase.alerts.alert_shift)."""
    if client.timezone == zone:
        return f"alert schedules: Metabase's report time zone is the client's ({zone})"
    shifts = {alerts.zone_shift(client.timezone, zone, at + timedelta(days=day))
              for day in range(367)}
    note = (f"alert schedules: from {client.timezone} ({_utc_offset(client.timezone, at)}) "
            f"to Metabase's report time zone {zone} ({_utc_offset(zone, at)})")
    if len(shifts) == 1:
        return note
    spread = int((max(shifts) - min(shifts)).total_seconds() // 60)
    late = f"{spread // 60} h" + (f" {spread % 60:02d} min" if spread % 60 else "")
    return (note + f", with the largest shift of the year: never early, up to {late} late "
            "in the months the zones' summer times differ")


def _card_drift(found: dict[str, Any], payload: dict[str, Any]) -> str | None:
    """What was changed in Metabase on a card since we sent `payload`, if anything."""
    query = ((found.get("dataset_query") or {}).get("native") or {}).get("query")
    if found.get("archived"):
        return "archived in Metabase"
    differs = [k for k in ("name", "description", "display", "visualization_settings")
               if found.get(k) != payload.get(k)]
    if query != payload["dataset_query"]["native"]["query"]:
        differs.append("query")
    return f"changed in Metabase: {', '.join(differs)}" if differs else None


def _schedules(notification: dict[str, Any]) -> list[str]:
    return sorted(s.get("cron_schedule") or "" for s in notification.get("subscriptions") or [])


def _recipients(notification: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Who a notification's email handlers write to, whatever else Metabase adds."""
    found = set()
    for handler in notification.get("handlers") or []:
        if handler.get("channel_type") != "channel/email" or handler.get("active") is False:
            continue
        for recipient in handler.get("recipients") or []:
            found.add((recipient.get("type"), recipient.get("permissions_group_id"),
                       recipient.get("user_id"), (recipient.get("details") or {}).get("value")))
    return sorted(found, key=repr)


def notification_drift(found: dict[str, Any], payload: dict[str, Any],
                       refs: dict[str, int]) -> str | None:
    """What differs between a notification in Metabase and ours (`payload` with references),
    if anything: deactivated, on another card, another schedule or other recipients."""
    if found.get("active") is False:
        return "deactivated in Metabase"
    try:
        wanted = resolve(payload, refs)
    except KeyError:
        return "its card is new"
    if (found.get("payload") or {}).get("card_id") != wanted["payload"]["card_id"]:
        return "its card is new"
    differs = [what for what, ours, theirs in (
        ("send_condition", wanted["payload"]["send_condition"],
         (found.get("payload") or {}).get("send_condition")),
        ("schedule", _schedules(wanted), _schedules(found)),
        ("recipients", _recipients(wanted), _recipients(found))) if ours != theirs]
    return f"changed in Metabase: {', '.join(differs)}" if differs else None


def _check(change: Change, current: _Current, refs: dict[str, int]) -> Change:
    """Is our object still in Metabase, as we left it?"""
    item, desired = change.current, change.desired
    assert item is not None and desired is not None
    kind, mid = change.kind, item.metabase_id
    gone, drift = False, None
    if kind == "database":
        found = current.database(mid)
        gone = found is None or found.get("name") != item.payload.get("name")
    elif kind == "group":
        gone = mid not in current.groups()
    elif kind == "collection":
        found = current.collection(mid)
        gone = found is None or found.get("entity_id") != item.entity_id
        if not gone and found.get("archived"):
            drift = "archived in Metabase"
    elif kind == "membership":
        found = current.memberships().get(mid)
        gone = found is None or found["group_id"] != refs.get("group")
    elif kind == "card":
        found = current.card(item.entity_id or mid)
        gone = found is None
        if not gone:
            change.metabase_id = found["id"]
            drift = _card_drift(found, item.payload)
    elif kind == "dashboard":
        found = current.dashboard(mid)
        gone = found is None or found.get("entity_id") != item.entity_id
        if not gone and found.get("archived"):
            drift = "archived in Metabase"
    elif kind == "notification":
        found = current.notification(mid)
        gone = found is None
        if not gone:
            drift = notification_drift(found, item.payload, refs)
    if gone:
        change.action, change.reason, change.metabase_id = "create", "gone from Metabase", None
    elif drift and change.action == "update":
        change.reason += f"; {drift}"
    elif drift:
        change.action, change.reason = "update", drift
    return change


def compute_plan(slug: str, client: Client, mb: MetabaseClient,
                 conn: psycopg.Connection, *, now: datetime | None = None) -> Plan:
    """Compare the client's desired objects with Metabase and our state; read only.

    Alert schedules are converted to Metabase's report time zone at the offsets of `now`
    (the time of planning, by default), which is when apply writes them.
    """
    now = now or datetime.now(UTC)
    zone = metabase_timezone(mb) if alerts.metabase_rules(client) else None
    desired = desired_objects(slug, client, warehouse_details(),
                              metabase_zone=zone or client.timezone, at=now,
                              facts=read_facts(conn, slug))
    state = load(conn, slug)
    current = _Current(mb)
    changes: list[Change] = []
    refs: dict[str, int] = {}
    for kind in KINDS:
        for want in (d for d in desired if d.kind == kind):
            item = state.get((want.kind, want.key))
            if item is None:
                change = Change("create", kind, want.key, want.name, desired=want)
                if kind == "card":
                    found = current.card(want.entity_id)  # ours, made before state was lost
                    if found is not None:
                        change.action, change.reason = "update", "found by its entity_id"
                        change.metabase_id = found["id"]
            else:
                change = Change("none", kind, want.key, want.name, desired=want, current=item,
                                metabase_id=item.metabase_id)
                if item.fingerprint != want.fingerprint:
                    change.action = "update"
                    change.reason = _changed_fields(item.payload, want.payload)
                change = _check(change, current, refs)
            if change.metabase_id is not None and change.action != "create":
                refs[want.ref] = change.metabase_id
            changes.append(change)
    wanted_keys = {(d.kind, d.key) for d in desired}
    for kind in reversed(KINDS):
        for (item_kind, key), item in sorted(state.items()):
            if item_kind == kind and (kind, key) not in wanted_keys:
                changes.append(Change("delete", kind, key, item.payload.get("name") or key,
                                      reason="no longer in the templates or the client's YAML",
                                      current=item, metabase_id=item.metabase_id))
    plan = Plan(slug, mb.url, changes,
                schedule_note=schedule_note(client, zone, now) if zone else None)
    if all(name in refs for name in ("database", "group", "collection")):
        plan.data_delta, plan.collection_delta = permission_deltas(slug, refs, mb, conn)
    else:
        plan.permissions_pending = True
    return plan


def permission_deltas(slug: str, refs: dict[str, int], mb: MetabaseClient,
                      conn: psycopg.Connection) -> tuple[dict[str, Any], dict[str, Any]]:
    """The entries of both graphs that differ from what keeps the client isolated."""
    all_users = all_users_group(mb)
    others = {kind: [mid for client, mid in ids_of_kind(conn, kind).items() if client != slug]
              for kind in ("group", "database", "collection")}
    data_graph = mb.get("/api/permissions/graph", what="reading the data permissions")
    wanted = permissions.data_entries(refs["group"], refs["database"], all_users,
                                      others["group"], others["database"])
    coll_graph = mb.get("/api/collection/graph", what="reading the collection permissions")
    wanted_coll = permissions.collection_entries(refs["group"], refs["collection"], all_users,
                                                 others["group"], others["collection"])
    return (permissions.data_delta(data_graph, wanted),
            permissions.collection_delta(coll_graph, wanted_coll))


def all_users_group(mb: MetabaseClient) -> int:
    for group in mb.get("/api/permissions/group", what="listing groups"):
        if group["name"] == permissions.ALL_USERS:
            return group["id"]
    raise MetabaseError("Metabase has no 'All Users' group")


def resolved(desired: Desired, refs: dict[str, int],
             fields: dict[str, int] | None = None) -> dict[str, Any]:
    return resolve(desired.payload, refs, fields)
