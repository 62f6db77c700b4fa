"""The canonical entities every source is normalised into, and their typed fields.

This is the contract between the loaders (which check typed fields before landing a record)
and the SQLMesh staging models (which cast them). A source maps its own columns onto these
fields (or a constant, written `=value`, for a field its files do not hold); unmapped fields
fall back to a source column of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldType = Literal["text", "integer", "number", "date", "timestamp"]


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    required: bool = False
    description: str = ""
    # SQL over other fields of the entity, used when the source has no column for this one
    # (a required derived field is satisfied when the fields it reads are there).
    derived: str | None = None
    derived_from: tuple[str, ...] = ()
    # A date that cannot lie ahead of the load (a sale, a count, a sign-up): a later one is a
    # typo or a misread date, and the files loader quarantines it.
    past_only: bool = False
    # False for a field no mart reads (it stays in staging, which the reader role and
    # Metabase cannot see) unless the client declares it as a dimension.
    in_marts: bool = True
    # The values a text field may take (compared trimmed and in lower case, as staging
    # reads them); empty: any.
    choices: tuple[str, ...] = ()


# What an order (a receipt) is, in staging.orders: only sales and returns reach the sales
# marts and kpi_daily; an adjustment (a stock write-off, a bad-debt entry) moves no goods for
# money and is kept out of every sales figure.
ORDER_KINDS = ("sale", "return", "adjustment")


ENTITIES: dict[str, tuple[Field, ...]] = {
    "locations": (
        Field("location_id", "text", True, "the source's id of the shop or site"),
        Field("name", "text", True),
        Field("city", "text", in_marts=False),
        Field("opened_on", "date", in_marts=False),
    ),
    "products": (
        Field("product_id", "text", True, "SKU or the source's product id"),
        Field("name", "text", True),
        Field("category", "text"),
        Field("unit_price", "number", description="list price, tax included", in_marts=False),
        Field("unit_cost", "number"),
        Field("reorder_point", "number", description="units under which to reorder"),
    ),
    "customers": (
        Field("customer_id", "text", True),
        Field("first_name", "text"),
        Field("last_name", "text"),
        Field("email", "text"),
        Field("phone", "text"),
        Field("country", "text"),
        Field("created_at", "timestamp", description="when the customer was first recorded",
              past_only=True),
    ),
    "order_lines": (
        Field("order_id", "text", True, "receipt or order number"),
        Field("line_number", "integer"),
        Field("ordered_at", "timestamp", True, "local wall time of the sale", past_only=True),
        Field("location_id", "text", True),
        Field("channel", "text", description="e.g. in-store, delivery, online"),
        Field("customer_id", "text", description="empty for anonymous sales"),
        Field("country", "text", description="the customer's or delivery country",
              in_marts=False),
        Field("product_id", "text", True),
        Field("product_name", "text"),
        Field("quantity", "number", True, "negative for returns"),
        Field("unit_price", "number"),
        Field("discount", "number", in_marts=False),
        Field("line_total", "number", True, "amount paid for the line, after discount",
              derived="quantity * unit_price", derived_from=("quantity", "unit_price")),
        Field("returned_order_id", "text",
              description="on a return, the order whose goods came back (when the source says)",
              in_marts=False),
        Field("order_kind", "text",
              description="sale, return or adjustment, when the source says (the same on every "
                          "line of an order); else the receipt is classified by its money and "
                          "goods: money in (or priced goods given away) is a sale, money out "
                          "with goods back a return, anything else (goods at price 0, money "
                          "without goods) an adjustment",
              choices=ORDER_KINDS),
    ),
    "inventory_levels": (
        Field("counted_on", "date", True, past_only=True),
        Field("location_id", "text", True),
        Field("product_id", "text", True),
        Field("on_hand", "number", True),
        Field("reorder_point", "number",
              description="units under which this location reorders, when the source sets "
                          "one per location (it overrides the product's)"),
    ),
    "metric_values": (
        Field("metric", "text", True, "the metric's name in the client's registry (an input "
              "metric: `goalpost metrics list <client>`)"),
        Field("period_start", "date", True, "the day, or the first day of the week (Monday) or "
              "month, at the metric's rhythm"),
        Field("dimension", "text", description="location, channel or one of the client's "
              "dimensions; empty for the total"),
        Field("dimension_value", "text", description="the location's id, the channel... "
              "(with dimension)"),
        Field("value", "number", True),
    ),
}

ENTITY_NAMES = tuple(ENTITIES)

# The fields that name a record of an entity whose staging holds one row per record (a shop,
# a product, a customer, a product's count at a location on a day): what identifies a file
# row of it, so that a newer export replaces the older record rather than adding a second one
# (which staging's uniqueness audits would refuse, stopping every build).
IDENTITY: dict[str, tuple[str, ...]] = {
    "locations": ("location_id",),
    "products": ("product_id",),
    "customers": ("customer_id",),
    "inventory_levels": ("counted_on", "location_id", "product_id"),
}

# What one record of each such entity is, for messages.
RECORD_NOUNS = {"locations": "shop", "products": "product", "customers": "customer",
                "inventory_levels": "stock count"}


def fields(entity: str) -> tuple[Field, ...]:
    return ENTITIES[entity]
