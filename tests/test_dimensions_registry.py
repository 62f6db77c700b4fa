"""A client's own dimensions as its YAML declares them: refused with messages that say what to
write, defaulted, given to every metric; and `source add` saying when a mapped field would
feed no mart (tests/test_dimensions.py builds them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from csv_files import write_csv

from goalpost.core.errors import ConfigError
from goalpost.core.registry.models import Client


def client(**changes: object) -> Client:
    return Client.model_validate({"name": "Shop", **changes})


@pytest.mark.parametrize(("dimensions", "message"), [
    ({"country": {"entity": "orders", "field": "pays"}},
     "order_lines has no field 'pays'"),
    ({"region": {"entity": "customers"}},
     "region is not a field of customers: say which one with `field:`"),
    ({"revenue": {"entity": "orders", "column": "Revenue"}},
     "'revenue' is already a column of daily_sales"),
    ({"all": {"entity": "orders", "column": "All"}}, "'all' is taken"),
    ({"location": {"entity": "locations", "column": "Shop"}}, "'location' is taken"),
    ({"country": {"entity": "orders", "field": "country", "column": "Country"}},
     "give `field` (a canonical field) or `column` (a file column), not both"),
])
def test_declarations_are_refused_saying_what_to_write(dimensions: dict, message: str) -> None:
    with pytest.raises(ValueError, match="dimensions") as caught:
        client(dimensions=dimensions)
    assert message in str(caught.value)


def test_a_declared_dimension_is_every_metrics_unless_it_says_otherwise() -> None:
    shop = client(dimensions={"country": {"entity": "orders"}, "category": {"entity": "products"}},
                  metrics={"returns": {"dimensions": ["location"]}})
    registry = shop.metric_registry()
    assert registry["revenue"].dimensions == ["location", "channel", "country", "category"]
    assert registry["returns"].dimensions == ["location"]
    assert shop.dimensions["country"].field == "country"
    assert shop.dimensions["country"].order_level and not shop.dimensions["category"].order_level
    # A dimension whose name is already the mart's column with the same meaning is that column.
    assert not shop.dimensions["category"].new_column("product_sales_daily")
    with pytest.raises(ValueError, match="unknown dimension"):
        client(metrics={"revenue": {"dimensions": ["country"]}})


def test_a_mapped_field_that_feeds_nothing_is_said(run_cli, project: Path) -> None:
    write_csv(project / "exports" / "sales.csv", [{
        "receipt": "R1", "sold_at": "2025-03-03 10:00", "shop": "S1", "sku": "P1",
        "qty": "1", "total": "2.00", "Country": "France"}])
    assert run_cli("client", "add", "shop", "--name", "Shop", "--yes").exit_code == 0
    added = run_cli("source", "add", "shop", "pos", "--stream", "sales", "--entity",
                    "order_lines", "--path", "exports/sales.csv", "--map", "order_id=receipt",
                    "--map", "ordered_at=sold_at", "--map", "location_id=shop",
                    "--map", "product_id=sku", "--map", "quantity=qty",
                    "--map", "line_total=total", "--map", "country=Country", "--yes")
    assert added.exit_code == 0, added.output
    assert ("warning: country (from column Country) feeds no mart: declare it as a dimension"
            in added.output)
    assert "dimensions: {country: {entity: orders, field: country}}" in added.output


def test_dimension_config_errors_name_the_file(project: Path) -> None:
    from goalpost.core import registry

    (project / "clients" / "bad.yaml").write_text(
        "name: Bad\ndimensions:\n  revenue: {entity: orders, column: Revenue}\n")
    with pytest.raises(ConfigError) as caught:
        registry.load_client("bad")
    assert "bad.yaml:3" in str(caught.value) and "already a column" in str(caught.value)
