"""The client registry: validation messages name the file, line and field; edits round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from goalpost.core import registry
from goalpost.core.errors import ConfigError, NotFoundError
from goalpost.core.identifiers import check_slug

VALID = """\
# a comment that edits must keep
name: Bike Shop
timezone: Europe/London
currency: gbp
country: gb
schedule: "0 5 * * *"
owners:
  - name: Sam
    email: Sam@Example.com
sources:
  - name: pos
    connector: files
    streams:
      - name: sales
        path: data/*.csv
        entity: order_lines
        columns: {order_id: invoice}
"""


def write(project: Path, slug: str, text: str) -> Path:
    path = project / "clients" / f"{slug}.yaml"
    path.write_text(text)
    return path


def test_valid_client_is_normalised(project):
    write(project, "bikes", VALID)
    client = registry.load_client("bikes")
    assert client.currency == "GBP" and client.country == "GB"
    assert client.owners[0].email == "sam@example.com"
    assert client.sources[0].streams[0].columns == {"order_id": "invoice"}


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("Europe/London", "Europe/Londn", 3, "timezone", "unknown time zone"),
        ("gbp", "pounds", 4, "currency", "ISO 4217"),
        ('"0 5 * * *"', '"every day"', 6, "schedule", "cron"),
        ("Sam@Example.com", "sam-at-example", 9, "owners[0].email", "not an email"),
        ("entity: order_lines", "entity: sales", 16, "sources[0].streams[0].entity", "one of"),
        ("{order_id: invoice}", "{receipt: invoice}", 17, "sources[0].streams[0].columns",
         "unknown field"),
        ("connector: files", "connector: sftp", 12, "sources[0].connector", "files"),
        ("name: Bike Shop", "nme: Bike Shop", 2, "nme", "unknown key"),
    ],
)
def test_invalid_field_names_file_line_and_field(project, old, new, line, field, words):
    write(project, "bikes", VALID.replace(old, new))
    with pytest.raises(ConfigError) as info:
        registry.load_client("bikes")
    message = str(info.value)
    assert f"clients/bikes.yaml:{line}: {field}" in message
    assert words in message


def test_broken_yaml_names_the_line(project):
    write(project, "bikes", "name: [unclosed\ntimezone: UTC\n")
    with pytest.raises(ConfigError, match=r"clients/bikes.yaml:\d+: not valid YAML"):
        registry.load_client("bikes")


def test_missing_name_is_required(project):
    write(project, "bikes", "timezone: UTC\n")
    with pytest.raises(ConfigError, match="name: required"):
        registry.load_client("bikes")


def test_unknown_client_lists_known_ones(project):
    write(project, "bikes", VALID)
    with pytest.raises(NotFoundError, match=r"known: bikes"):
        registry.load_client("cakes")


@pytest.mark.parametrize("slug", ["A", "1shop", "shop-1", "x", "goalpost", "pg_shop", "a__b",
                                  "a" * 31, "drop table;"])
def test_bad_slugs_are_refused(slug):
    with pytest.raises(ConfigError):
        check_slug(slug)


def test_edits_keep_comments_and_refuse_invalid_documents(project):
    path = write(project, "bikes", VALID)
    document = registry.load_document("bikes")
    document["schedule"] = "15 4 * * *"
    registry.save_document("bikes", document)
    text = path.read_text()
    assert "# a comment that edits must keep" in text and "15 4 * * *" in text
    document["timezone"] = "Mars/Olympus"
    with pytest.raises(ConfigError):
        registry.save_document("bikes", document)
    assert "Mars/Olympus" not in path.read_text()
