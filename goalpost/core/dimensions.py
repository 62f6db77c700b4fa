"""Dimensions: what a client's figures are split by, beside the total.

Every client has `location` and `channel`. A client adds its own in its YAML, on one of the
entities its figures come from:

    dimensions:
      country: {entity: orders}                     # the order's country, from its lines
      category: {entity: products}                  # the product's category, per line
      region: {entity: customers, column: Region}   # a column of the customer files
      payment: {entity: orders, column: Payment}    # a column of the sales files

- `orders`: a field (or column) of the sales lines, one value per order (its first line's
  when its lines differ); `customers`, `locations`: the person's or the shop's latest known
  value. These are order-level: an order has one value, so orders, customers and revenue per
  value add up to the total, and the sales marts carry them as columns.
- `order_lines`, `products`: per line (a line's own field, or its product's). An order
  counts in every value its lines have: revenue and items per value add up to the total,
  orders and customers per value do not.

`field` names a canonical field of the entity (default: the dimension's name when it is one);
`column` instead names a column of the entity's files that no canonical field holds (API
sources have no such column: their value is '(none)'). Values are text; an empty one is
'(none)' in kpi_daily.

This module is the contract between the registry, the transform (which computes them) and
the dashboards (which filter on them): which marts carry a dimension, and as which column.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from goalpost.core.canonical import ENTITIES

# Built-in dimensions: kpi_daily name -> column of staging.orders.
BUILT_IN = {"location": "location_id", "channel": "channel"}
DimensionEntity = Literal["orders", "order_lines", "customers", "products", "locations"]
ORDER_LEVEL = ("orders", "customers", "locations")
# The canonical entity whose fields a dimension of each entity reads.
FIELDS_OF = {"orders": "order_lines", "order_lines": "order_lines", "customers": "customers",
             "products": "products", "locations": "locations"}
# Words that cannot name a dimension: kpi_daily's own values and what SQL and the dashboards
# already use.
RESERVED = {"all", "none", "total", "date", "dimension", "dimensions", "value", "metric"}
# The columns of the marts that carry dimensions, with what each one already holds (entity,
# field) when it is a dimension's value: a dimension of that name and meaning is already
# there; any other dimension of a name in this list would clash with the mart's column.
MART_COLUMNS: dict[str, dict[str, tuple[str, str] | None]] = {
    "daily_sales": {
        "sales_date": None, "location_id": ("orders", "location_id"), "location_name": None,
        "channel": ("orders", "channel"), "orders": None, "revenue": None, "items": None,
        "items_returned": None, "customers": None, "average_ticket": None, "currency": None,
    },
    "monthly_sales": {
        "sales_month": None, "complete_month": None, "location_id": ("orders", "location_id"),
        "location_name": None, "channel": ("orders", "channel"), "orders": None,
        "revenue": None, "items": None, "items_returned": None, "customers": None,
        "average_ticket": None, "currency": None,
    },
    "product_sales_daily": {
        "sales_date": None, "location_id": ("orders", "location_id"), "location_name": None,
        "product_id": ("order_lines", "product_id"), "product_name": ("products", "name"),
        "category": ("products", "category"), "units_sold": None, "units_returned": None,
        "revenue": None, "sales_lines": None, "orders": None, "average_unit_price": None,
        "currency": None,
    },
    "customers": {
        "customer_key": None, "customer": None, "first_name": ("customers", "first_name"),
        "last_name": ("customers", "last_name"), "email": ("customers", "email"),
        "phone": ("customers", "phone"), "country": ("customers", "country"),
        "first_seen_on": None, "acquisition_source": None, "sources": None, "records": None,
        "first_order_on": None, "last_order_on": None, "orders": None, "revenue": None,
    },
    "customers_monthly": {
        "month": None, "complete_month": None, "acquisition_source": None,
        "new_customers": None, "active_customers": None, "returning_customers": None,
        "repeat_rate": None, "orders": None, "orders_per_customer": None,
        "items_per_order": None,
    },
}


class Dimension(BaseModel):
    """One of the client's own dimensions (its YAML's `dimensions:`)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    name: str = Field(default="", description="set from its key in `dimensions:`")
    label: str | None = Field(default=None, description="how dashboards name it (default: "
                              "the name, capitalised)")
    entity: DimensionEntity
    field: str | None = Field(default=None, description="a canonical field of the entity "
                              "(default: the dimension's name)")
    column: str | None = Field(default=None, min_length=1, description="a column of the "
                               "entity's files that no canonical field holds")

    @model_validator(mode="before")
    @classmethod
    def _field_by_name(cls, data: Any) -> Any:
        """No field nor column: the field named like the dimension, when there is one."""
        if isinstance(data, dict) and data.get("field") is None and data.get("column") is None:
            entity = FIELDS_OF.get(str(data.get("entity")))
            if entity and data.get("name") in {f.name for f in ENTITIES[entity]}:
                return {**data, "field": data["name"]}
        return data

    @model_validator(mode="after")
    def _source(self) -> Dimension:
        if self.field is not None and self.column is not None:
            raise ValueError("give `field` (a canonical field) or `column` (a file column), "
                             "not both")
        known = [f.name for f in ENTITIES[FIELDS_OF[self.entity]]]
        if self.field is not None and self.field not in known:
            raise ValueError(f"{FIELDS_OF[self.entity]} has no field {self.field!r}; its fields "
                             f"are {', '.join(known)} (a column of your files that none of "
                             "them holds: `column: <its header>`)")
        if not self.name:  # validated on its own, outside a client
            return self
        if self.field is None and self.column is None:
            raise ValueError(
                f"{self.name} is not a field of {FIELDS_OF[self.entity]}: say which one "
                f"with `field:` ({', '.join(known)}), or `column:` for a column of your files")
        if self.name in BUILT_IN or self.name in RESERVED:
            raise ValueError(f"{self.name!r} is taken ({', '.join([*BUILT_IN, *sorted(RESERVED)])}"
                             " are); name the dimension otherwise")
        for mart in self.marts():
            columns = MART_COLUMNS[mart]
            if self.name in columns and columns[self.name] != (self.entity, self.field):
                raise ValueError(f"{self.name!r} is already a column of {mart}; name the "
                                 f"dimension otherwise (e.g. "
                                 f"{self.entity.rstrip('s')}_{self.name})")
        return self

    @property
    def order_level(self) -> bool:
        """One value per order (orders, customers, locations) rather than per line."""
        return self.entity in ORDER_LEVEL

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def marts(self) -> list[str]:
        """The marts that carry this dimension as a column (kpi_daily carries every one in
        long form)."""
        found = ["product_sales_daily"]
        if self.order_level:
            found = ["daily_sales", "monthly_sales", *found]
        if self.entity == "customers":
            found += ["customers", "customers_monthly"]
        return found

    def mart_column(self, mart: str) -> str | None:
        """The column holding this dimension in `mart` (None when the mart lacks it)."""
        return self.name if mart in self.marts() else None

    def new_column(self, mart: str) -> bool:
        """Whether `mart` gets a column for it (False when the mart already has it)."""
        return mart in self.marts() and self.name not in MART_COLUMNS[mart]

    def spec(self) -> dict[str, str | bool | None]:
        """The dimension as the transform's variables carry it."""
        return {"name": self.name, "entity": self.entity, "field": self.field,
                "column": self.column, "order_level": self.order_level}


def dimension_names(declared: dict[str, Dimension] | None = None) -> list[str]:
    """Every dimension of a client: the built-in ones, then its own."""
    return [*BUILT_IN, *(declared or {})]
