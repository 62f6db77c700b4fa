"""The client registry: `clients/<slug>.yaml`, validated, and editable by the CLI."""

from goalpost.core.registry.models import Client, FileStream, Owner, Source
from goalpost.core.registry.store import (
    client_path,
    list_slugs,
    load_client,
    load_document,
    new_document,
    parse_client,
    save_document,
)

__all__ = [
    "Client", "FileStream", "Owner", "Source", "client_path", "list_slugs", "load_client",
    "load_document", "new_document", "parse_client", "save_document",
]
