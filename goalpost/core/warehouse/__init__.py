"""Warehouse access: connections, the embedded server, control-schema migrations, tenants."""

from goalpost.core.warehouse.connection import connect, database_url, ready

__all__ = ["connect", "database_url", "ready"]
