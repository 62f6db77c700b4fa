"""What one client should have in Metabase, computed from its YAML and the templates.

Objects refer to each other symbolically ({"$ref": "collection"}, {"$field":
"panpan_marts.daily_sales.sales_date"}) because Metabase's ids exist only once the objects
do; apply resolves them. The payload with its references is what is fingerprinted and kept in
goalpost.metabase_objects, so a plan compares like with like whatever the ids. Secrets (the
reader's password) are kept out of payloads: only their hash enters the fingerprint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from goalpost.core.identifiers import reader_role, schema_name
from goalpost.core.registry.models import Client
from goalpost.core.warehouse.tenants import reader_password
from goalpost.metabase import alerts, fit
from goalpost.metabase.fit import DataFacts
from goalpost.metabase.template import (
    DashboardTemplate,
    FilterSpec,
    layout,
    native_sql,
    visualization_settings,
)

# Apply order: an object comes after what it refers to.
KINDS = ("database", "group", "collection", "membership", "card", "dashboard", "notification")


@dataclass
class Desired:
    """One object as Goalpost wants it."""

    kind: str
    key: str
    name: str
    payload: dict[str, Any]
    entity_id: str | None = None
    secret: str | None = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        text = json.dumps(self.payload, sort_keys=True)
        if self.secret is not None:
            text += hashlib.sha256(self.secret.encode()).hexdigest()
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def ref(self) -> str:
        return self.kind if self.kind in ("database", "group", "collection") else \
            f"{self.kind}:{self.key}"


def entity_id(slug: str, kind: str, key: str) -> str:
    """A stable 21-character NanoID-alphabet id for a client's object."""
    digest = hashlib.sha256(f"goalpost:{slug}:{kind}:{key}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:21]


def _tag_id(slug: str, card: str, tag: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"goalpost:{slug}:{card}:{tag}"))


def parameter_id(dashboard: str, filter_key: str) -> str:
    """Dashboard parameter ids are short hex strings in Metabase; ours are stable."""
    return hashlib.sha256(f"{dashboard}:{filter_key}".encode()).hexdigest()[:8]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": name}


def database_name(slug: str, client: Client) -> str:
    return f"{client.name} ({slug})"


def desired_objects(slug: str, client: Client, details: dict[str, Any], *,
                    metabase_zone: str, at: datetime,
                    facts: DataFacts | None = None) -> list[Desired]:
    """Every object the client should have, in apply order.

    `details` is how Metabase reaches the warehouse (metabase.api.warehouse_details()).
    Alert schedules are in `metabase_zone`, Metabase's report time zone, as the offsets are
    at `at`: the cron is part of what is compared, so a plan made after a change of offset
    shows the notifications to update. The dashboards are the templates fitted to the client
    and to `facts`, its data (metabase.fit): date defaults of a client whose data ends in the
    past are pinned to its last days, so a plan after new data shows them to update.
    """
    label = f"{client.name} ({slug})"
    schemas = [schema_name(slug, "marts"), schema_name(slug, "insights")]
    objects = [
        Desired("database", "database", label, {
            "name": label, "engine": "postgres", "is_full_sync": True, "is_on_demand": False,
            "details": {**details, "user": reader_role(slug),
                        "schema-filters-type": "inclusion",
                        "schema-filters-patterns": ",".join(schemas)}},
            secret=reader_password(slug)),
        Desired("group", "group", label, {"name": label}),
        Desired("collection", "collection", client.name, {
            "name": client.name, "description": f"Dashboards of {client.name}, provisioned by "
            "Goalpost from metabase/templates: edits here are overwritten."}),
    ]
    for owner in client.owners:
        objects.append(Desired("membership", owner.email, owner.name, {
            "email": owner.email, "group_id": _ref("group")}))
    targets = {name: metric.target for name, metric in client.metric_registry().items()}
    today = at.astimezone(ZoneInfo(client.timezone)).date()
    dashboards = fit.dashboards(client, facts or fit.DataFacts(), today=today, pin_dates=True)
    for dashboard in dashboards:
        for card in dashboard.cards:
            key = f"{dashboard.key}.{card.key}"
            tags = {}
            for filter_key in card.filters:
                spec = dashboard.filter(filter_key)
                column = card.column(filter_key)
                tags[filter_key] = {
                    "id": _tag_id(slug, key, filter_key), "name": filter_key,
                    "display-name": spec.name, "type": "dimension",
                    "dimension": ["field", {"$field": f"{schema_name(slug, column.layer)}."
                                                      f"{column.table}.{column.column}"}, None],
                    "widget-type": spec.metabase_type()}
            payload = {
                "name": card.name, "description": card.description, "display": card.display,
                "type": "question", "collection_id": _ref("collection"),
                "visualization_settings": visualization_settings(card, targets),
                "dataset_query": {"database": _ref("database"), "type": "native",
                                  "native": {"query": native_sql(card, slug),
                                             "template-tags": tags}}}
            objects.append(Desired("card", key, card.name, payload,
                                   entity_id=entity_id(slug, "card", key)))
    for rule in alerts.metabase_rules(client):
        key = alerts.card_key(rule)
        objects.append(Desired("card", key, f"Alert: {rule.name}",
                               alerts.card_payload(slug, client, rule),
                               entity_id=entity_id(slug, "card", key)))
    for dashboard in dashboards:
        objects.append(Desired("dashboard", dashboard.key, dashboard.name,
                               _dashboard_payload(dashboard)))
    for rule in alerts.metabase_rules(client):
        objects.append(Desired("notification", rule.name, f"Alert: {rule.name}",
                               alerts.notification_payload(client, rule, metabase_zone, at)))
    return objects


def _parameter(dashboard: DashboardTemplate, spec: FilterSpec) -> dict[str, Any]:
    parameter: dict[str, Any] = {"id": parameter_id(dashboard.key, spec.key), "name": spec.name,
                                 "slug": spec.key, "type": spec.metabase_type(),
                                 "sectionId": "date" if spec.type == "date" else "string"}
    if spec.default is not None:
        parameter["default"] = spec.default
    return parameter


def _dashboard_payload(dashboard: DashboardTemplate) -> dict[str, Any]:
    dashcards = []
    for place in layout(dashboard):
        card_ref = _ref(f"card:{dashboard.key}.{place.card.key}")
        dashcards.append({
            "card_id": card_ref, "row": place.row, "col": place.col,
            "size_x": place.size_x, "size_y": place.size_y,
            "parameter_mappings": [
                {"parameter_id": parameter_id(dashboard.key, key), "card_id": card_ref,
                 "target": ["dimension", ["template-tag", key]]}
                for key in place.card.filters]})
    return {"name": dashboard.name, "description": dashboard.description,
            "collection_id": _ref("collection"),
            "parameters": [_parameter(dashboard, f) for f in dashboard.filters],
            "dashcards": dashcards}


def resolve(value: Any, refs: dict[str, int], fields: dict[str, int] | None = None) -> Any:
    """The payload with symbolic references replaced by Metabase ids.

    A KeyError names a reference not resolvable yet (an object not created, a column not
    synced); apply reports it.
    """
    if isinstance(value, dict):
        if set(value) == {"$ref"}:
            return refs[value["$ref"]]
        if set(value) == {"$field"}:
            if fields is None or value["$field"] not in fields:
                raise KeyError(value["$field"])
            return fields[value["$field"]]
        return {k: resolve(v, refs, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, refs, fields) for v in value]
    return value


def field_refs(value: Any) -> set[str]:
    """The columns a payload's field filters refer to."""
    if isinstance(value, dict):
        if set(value) == {"$field"}:
            return {value["$field"]}
        return set().union(*(field_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(field_refs(v) for v in value)) if value else set()
    return set()
