"""Names that reach SQL: client slugs, source and stream names, and the schemas built from them.

Every identifier is validated here and still quoted with psycopg.sql where it is used.
"""

from __future__ import annotations

import re

from goalpost.core.errors import ConfigError

SLUG_RE = re.compile(r"^[a-z][a-z0-9_]{1,29}$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESERVED_SLUGS = {"goalpost", "public", "sqlmesh", "information_schema", "metabase", "postgres"}
LAYERS = ("raw", "staging", "marts", "insights")


def check_slug(slug: str) -> str:
    """A client slug: lower-case letters, digits and underscores, 2-30 long, starting a letter."""
    if not isinstance(slug, str) or not SLUG_RE.match(slug) or "__" in slug:
        raise ConfigError(
            f"invalid client slug {slug!r}",
            hint="use 2-30 lower-case letters, digits or single underscores, starting with a "
            "letter (e.g. panpan, bike_shop)",
        )
    if slug in RESERVED_SLUGS or slug.startswith(("pg_", "sqlmesh")):
        raise ConfigError(f"client slug {slug!r} is reserved", hint="choose another slug")
    return slug


def check_name(name: str, what: str = "name") -> str:
    """A source or stream name; `__` is kept for separating source and stream in table names."""
    if not isinstance(name, str) or not NAME_RE.match(name) or "__" in name:
        raise ConfigError(
            f"invalid {what} {name!r}",
            hint="use lower-case letters, digits or single underscores, starting with a letter",
        )
    return name


def schema_name(slug: str, layer: str) -> str:
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}")
    return f"{check_slug(slug)}_{layer}"


def raw_table(source: str, stream: str) -> str:
    """The table of one source stream inside `<slug>_raw`."""
    return f"{check_name(source, 'source name')}__{check_name(stream, 'stream name')}"


def reader_role(slug: str) -> str:
    return f"{check_slug(slug)}_reader"
