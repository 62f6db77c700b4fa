"""Carry out a plan: create, update and archive the client's objects, then its permissions.

Each object is recorded in goalpost.metabase_objects as soon as Metabase has it, so an apply
cut short resumes where it stopped. Objects are written in dependency order (database,
group, collection, memberships, cards, dashboards); what a plan leaves alone is not written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from goalpost.core.errors import GoalpostError
from goalpost.core.warehouse.tenants import reader_password
from goalpost.metabase.api import MetabaseClient, MetabaseError
from goalpost.metabase.desired import field_refs
from goalpost.metabase.plan import Change, Plan, permission_deltas, resolved
from goalpost.metabase.state import Provisioned, forget, save

SYNC_TIMEOUT = 300.0


@dataclass
class Applied:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    permissions: int = 0

    def summary(self) -> str:
        return (f"{len(self.created)} created, {len(self.updated)} updated, "
                f"{len(self.deleted)} deleted, {self.permissions} permission entries set")


class _Applier:
    def __init__(self, plan: Plan, mb: MetabaseClient, conn: psycopg.Connection,
                 sync_timeout: float) -> None:
        self.plan, self.mb, self.conn = plan, mb, conn
        self.slug = plan.client
        self.sync_timeout = sync_timeout
        self.refs: dict[str, int] = {}
        self.fields: dict[str, int] | None = None
        self.result = Applied()
        for change in plan.changes:
            if change.desired and change.metabase_id is not None and change.action != "create":
                self.refs[change.desired.ref] = change.metabase_id

    def run(self) -> Applied:
        writes = [c for c in self.plan.changes if c.action in ("create", "update")]
        for change in writes:
            if change.kind == "card" and self.fields is None:
                self._sync_fields(writes)
            getattr(self, f"_{change.kind}")(change)
            label = f"{change.kind} {change.key}"
            (self.result.created if change.action == "create" else self.result.updated).append(
                label)
        self._permissions()
        for change in (c for c in self.plan.changes if c.action == "delete"):
            self._delete(change)
            self.result.deleted.append(f"{change.kind} {change.key}")
        return self.result

    def _record(self, change: Change, metabase_id: int, entity_id: str | None = None) -> None:
        desired = change.desired
        assert desired is not None
        self.refs[desired.ref] = metabase_id
        save(self.conn, self.slug, Provisioned(desired.kind, desired.key, metabase_id,
                                               entity_id or desired.entity_id,
                                               desired.fingerprint, desired.payload))

    def _payload(self, change: Change) -> dict[str, Any]:
        assert change.desired is not None
        try:
            return resolved(change.desired, self.refs, self.fields)
        except KeyError as exc:
            raise GoalpostError(
                f"{change.kind} {change.key}: column {exc.args[0]} is not in Metabase's copy "
                "of the client's schemas",
                hint=f"build the client first (`goalpost run {self.slug}`) so the table "
                "exists, then apply again") from None

    # -- objects ----------------------------------------------------------------------------

    def _database(self, change: Change) -> None:
        payload = self._payload(change)
        payload["details"]["password"] = reader_password(self.slug)
        what = f"database for {self.slug}"
        if change.action == "create":
            found = self.mb.post("/api/database/", payload, what=f"creating the {what}")
        else:
            found = self.mb.put(f"/api/database/{change.metabase_id}", {
                "name": payload["name"], "details": payload["details"],
                "is_full_sync": payload["is_full_sync"],
                "is_on_demand": payload["is_on_demand"]}, what=f"updating the {what}")
        self._wait_for_sync(found["id"])
        self._record(change, found["id"])

    def _wait_for_sync(self, db_id: int) -> None:
        deadline = time.monotonic() + self.sync_timeout
        while True:
            found = self.mb.get(f"/api/database/{db_id}", what="waiting for the first sync")
            status = found.get("initial_sync_status")
            if status == "complete":
                return
            if status == "aborted":
                raise MetabaseError(f"Metabase's first sync of database {db_id} was aborted",
                                    hint="check the connection in Metabase's admin, then "
                                    "apply again")
            if time.monotonic() > deadline:
                raise MetabaseError(f"Metabase's first sync of database {db_id} did not finish "
                                    f"in {self.sync_timeout:.0f}s", hint="apply again later")
            time.sleep(1.0)

    def _metadata(self) -> dict[str, int]:
        db_id = self.refs["database"]
        found = self.mb.get(f"/api/database/{db_id}/metadata",
                            what="reading tables and fields for the field filters")
        return {f"{table['schema']}.{table['name']}.{column['name']}": column["id"]
                for table in found.get("tables", []) for column in table.get("fields", [])}

    def _sync_fields(self, writes: list[Change]) -> None:
        """Field ids of every column the cards filter on; one re-sync if some are missing."""
        wanted = set().union(*(field_refs(c.desired.payload) for c in writes
                               if c.kind == "card" and c.desired))
        self.fields = self._metadata()
        if wanted <= set(self.fields):
            return
        db_id = self.refs["database"]
        self.mb.post(f"/api/database/{db_id}/sync_schema",
                     what="syncing the client's schemas (new tables)")
        deadline = time.monotonic() + min(self.sync_timeout, 60.0)
        while not wanted <= set(self.fields) and time.monotonic() < deadline:
            time.sleep(1.0)
            self.fields = self._metadata()

    def _group(self, change: Change) -> None:
        payload = self._payload(change)
        if change.action == "create":
            found = self.mb.post("/api/permissions/group", payload,
                                 what=f"creating the group of {self.slug}")
        else:
            found = self.mb.put(f"/api/permissions/group/{change.metabase_id}", payload,
                                what=f"renaming the group of {self.slug}")
        self._record(change, found["id"])

    def _collection(self, change: Change) -> None:
        payload = self._payload(change)
        if change.action == "create":
            found = self.mb.post("/api/collection/", payload,
                                 what=f"creating the collection of {self.slug}")
        else:
            found = self.mb.put(f"/api/collection/{change.metabase_id}",
                                dict(payload, archived=False),
                                what=f"updating the collection of {self.slug}")
        self._record(change, found["id"], found.get("entity_id"))

    def _membership(self, change: Change) -> None:
        desired = change.desired
        assert desired is not None
        email, group = desired.payload["email"], self.refs["group"]
        users = self.mb.get("/api/user/", params={"query": email},
                            what=f"looking up owner {email}")
        user = next((u for u in users.get("data", []) if u["email"].lower() == email), None)
        if user is None:
            first, _, last = desired.name.partition(" ")
            user = self.mb.post("/api/user/", {
                "email": email, "first_name": first or None, "last_name": last or None,
                "user_group_memberships": [{"id": group}]}, what=f"inviting owner {email}")
        else:
            self.mb.post("/api/permissions/membership",
                         {"group_id": group, "user_id": user["id"], "is_group_manager": False},
                         what=f"adding owner {email} to the group of {self.slug}")
        found = self.mb.get("/api/permissions/membership", what="reading memberships")
        membership = next(m for m in found.get(str(user["id"]), []) if m["group_id"] == group)
        self._record(change, membership["membership_id"])

    def _card(self, change: Change) -> None:
        desired = change.desired
        assert desired is not None
        payload = self._payload(change)
        if change.action == "create":
            found = self.mb.post("/api/card/", dict(payload, entity_id=desired.entity_id),
                                 what=f"creating card {desired.key}")
        else:
            found = self.mb.put(f"/api/card/{change.metabase_id}", dict(payload, archived=False),
                                what=f"updating card {desired.key}")
        self._record(change, found["id"], found.get("entity_id"))

    def _dashboard(self, change: Change) -> None:
        desired = change.desired
        assert desired is not None
        payload = self._payload(change)
        what = f"dashboard {desired.key}"
        if change.action == "create":
            found = self.mb.post("/api/dashboard/", {
                k: payload[k] for k in ("name", "description", "collection_id", "parameters")},
                what=f"creating {what}")
            existing: list[dict[str, Any]] = []
        else:
            found = self.mb.get(f"/api/dashboard/{change.metabase_id}", what=f"reading {what}")
            existing = found.get("dashcards") or []
        by_card = {d.get("card_id"): d["id"] for d in existing}
        dashcards = []
        for index, dashcard in enumerate(payload["dashcards"], start=1):
            dashcards.append(dict(dashcard, id=by_card.pop(dashcard["card_id"], -index)))
        body = dict(payload, dashcards=dashcards, archived=False)
        found = self.mb.put(f"/api/dashboard/{found['id']}", body,
                            what=f"laying out the cards of {what}")
        self._record(change, found["id"], found.get("entity_id"))

    def _notification(self, change: Change) -> None:
        desired = change.desired
        assert desired is not None
        payload = self._payload(change)
        what = f"the Metabase alert of rule {desired.key}"
        if change.action == "create":
            found = self.mb.post("/api/notification/", payload, what=f"creating {what}")
        else:
            found = self.mb.put(f"/api/notification/{change.metabase_id}",
                                dict(payload, active=True), what=f"updating {what}")
        self._record(change, found["id"])

    # -- permissions and deletions ------------------------------------------------------------

    def _permissions(self) -> None:
        if self.plan.permissions_pending or any(
                c.kind in ("database", "group", "collection") and c.action != "none"
                for c in self.plan.changes):
            data, collections = permission_deltas(self.slug, self.refs, self.mb, self.conn)
        else:
            data, collections = self.plan.data_delta, self.plan.collection_delta
        if data:
            graph = self.mb.get("/api/permissions/graph", what="reading the data permissions")
            self.mb.put("/api/permissions/graph", {"revision": graph["revision"], "groups": data},
                        params={"skip-graph": "true"},
                        what=f"isolating {self.slug}'s database")
        if collections:
            graph = self.mb.get("/api/collection/graph",
                                what="reading the collection permissions")
            self.mb.put("/api/collection/graph",
                        {"revision": graph["revision"], "groups": collections},
                        params={"skip-graph": "true"},
                        what=f"isolating {self.slug}'s collection")
        self.result.permissions = sum(len(v) for v in data.values()) + sum(
            len(v) for v in collections.values())

    def _delete(self, change: Change) -> None:
        mid, what = change.metabase_id, f"{change.kind} {change.key}"
        try:
            if change.kind == "card":
                self.mb.put(f"/api/card/{mid}", {"archived": True}, what=f"archiving {what}")
            elif change.kind == "dashboard":
                self.mb.put(f"/api/dashboard/{mid}", {"archived": True},
                            what=f"archiving {what}")
            elif change.kind == "notification":
                self._deactivate(mid, what)
            elif change.kind == "membership":
                self.mb.delete(f"/api/permissions/membership/{mid}", what=f"removing {what}")
            else:
                raise GoalpostError(f"{what}: Goalpost does not delete a client's {change.kind}",
                                    hint="remove it in Metabase's admin if it must go")
        except MetabaseError as exc:
            if exc.status != 404:  # already gone: nothing left to delete
                raise
        forget(self.conn, self.slug, change.kind, change.key)

    def _deactivate(self, notification_id: int | None, what: str) -> None:
        """Metabase deletes an alert by deactivating it (what its "Delete" button does):
        PUT the notification back with active false."""
        found = self.mb.get(f"/api/notification/{notification_id}", what=f"reading {what}")
        if found.get("active") is False:
            return
        self.mb.put(f"/api/notification/{notification_id}",
                    dict(spec_body(found), active=False), what=f"deactivating {what}")


def spec_body(notification: dict[str, Any]) -> dict[str, Any]:
    """A notification as Metabase returned it, cut down to what its PUT body takes."""
    payload = notification.get("payload") or {}
    return {
        "payload_type": notification["payload_type"],
        "payload": {k: payload[k] for k in ("card_id", "send_condition", "send_once")
                    if payload.get(k) is not None},
        "subscriptions": [{k: s[k] for k in ("type", "cron_schedule", "ui_display_type")
                           if s.get(k) is not None}
                          for s in notification.get("subscriptions") or []],
        "handlers": [{"channel_type": h["channel_type"],
                      "recipients": [{k: r[k] for k in ("type", "user_id",
                                                        "permissions_group_id", "details")
                                      if r.get(k) is not None}
                                     for r in h.get("recipients") or []]}
                     for h in notification.get("handlers") or []]}


def apply_plan(plan: Plan, mb: MetabaseClient, conn: psycopg.Connection, *,
               sync_timeout: float = SYNC_TIMEOUT) -> Applied:
    """Carry out the plan; objects are recorded as they are made."""
    return _Applier(plan, mb, conn, sync_timeout).run()
