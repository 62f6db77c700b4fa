"""The dashboard an alert email links to, for each rule.

The YAML's `alerts.dashboard_url` wins when set. Otherwise, once `goalpost metabase apply`
has provisioned the client's dashboards (their ids are in goalpost.metabase_objects) and
Metabase's public address is known (GOALPOST_METABASE_SITE_URL, as bootstrap sets Metabase's
site URL, else GOALPOST_METABASE_URL), each item links to the dashboard that shows what
fired: stock to Inventory, anomalies to Forecasts and anomalies, goals to Goals and KPIs,
a metric to Sales overview when it has a card there, else Goals and KPIs.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg

from goalpost.core.registry.alert_rules import INVENTORY_METRICS
from goalpost.core.registry.models import Client

# The metrics with a card of their own on the Sales overview template.
SALES_OVERVIEW_METRICS = ("revenue", "orders", "average_ticket", "items")


def metabase_site_url() -> str | None:
    """Metabase's address as owners reach it; None when neither variable is set (the
    default localhost address means nothing in an owner's inbox)."""
    for name in ("GOALPOST_METABASE_SITE_URL", "GOALPOST_METABASE_URL"):
        value = os.environ.get(name, "").strip().rstrip("/")
        if value:
            return value
    return None


def dashboards_for_rule(rule: Any) -> tuple[str, ...]:
    """Dashboard template keys showing what `rule` watches, best first."""
    metric = getattr(rule, "metric", None)
    if rule.kind == "threshold" and metric in INVENTORY_METRICS:
        return ("inventory",)
    if rule.kind == "anomaly":
        return ("forecasts_anomalies", "goals_kpis")
    if rule.kind == "goal":
        return ("goals_kpis",)
    if rule.kind in ("threshold", "change"):
        if metric in SALES_OVERVIEW_METRICS:
            return ("sales_overview", "goals_kpis")
        return ("goals_kpis", "sales_overview")
    return ()


def dashboard_link(conn: psycopg.Connection, slug: str, client: Client, rule: Any) -> str | None:
    """The link an item of `rule` carries: the YAML's dashboard_url, else the provisioned
    dashboard showing it, else None."""
    if client.alerts.dashboard_url:
        return client.alerts.dashboard_url
    wanted = dashboards_for_rule(rule)
    site = metabase_site_url()
    if not wanted or site is None:
        return None
    ids = dict(conn.execute(
        "SELECT key, metabase_id FROM goalpost.metabase_objects WHERE client = %s "
        "AND kind = 'dashboard' AND key = ANY(%s)", (slug, list(wanted))).fetchall())
    found = next((key for key in wanted if key in ids), None)
    return f"{site}/dashboard/{ids[found]}" if found else None
