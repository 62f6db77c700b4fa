"""Shopify's GraphQL Admin API, served from the PanPan data.

Held to Shopify's published Admin API reference (shopify.dev/docs/api/admin-graphql) and its
schema (shopify_schema.py: the 2025-01 introspection, with the later fields Goalpost reads).
One endpoint: `POST /admin/api/<version>/graphql.json` (`YYYY-01|04|07|10` or `unstable`; the
version is echoed in `X-Shopify-API-Version`, older versions are not forwarded), authenticated
by `X-Shopify-Access-Token`. The body is `{"query", "variables", "operationName"}` as JSON, or
the bare query as `application/graphql`. Any other path or method is 404 `{"errors":"Not Found"}`.

Queries are parsed, validated and executed by graphql-core against that schema: a query gets
exactly the fields it selects, argument defaults are the schema's (orders go by PROCESSED_AT
without a sortKey), an invalid query gets graphql-core's validation errors (HTTP 200, `errors`
only; Shopify words them as graphql-ruby does), custom scalars are checked on the way out, and
a field of the schema the emulator does not serve resolves to null: an error where the schema
says non-null, never a made-up value.

Root fields (connections take first/after/last/before/reverse, and query/sortKey where noted):
- `orders(query, sortKey: ID|CREATED_AT|UPDATED_AT|PROCESSED_AT)`, `order(id)`;
- `customers(query, sortKey: ID|CREATED_AT|UPDATED_AT)`, `customer(id)`;
- `products(query, sortKey: ID|CREATED_AT|UPDATED_AT|TITLE)`, `product(id)`;
- `locations(query, sortKey: ID|NAME)`, `location(id)`; `inventoryItems(query)`,
  `inventoryItem(id)`; `shop`.
Inventory levels are the nested `inventoryLevels(first, after, query)` connection of a Location
(tap-shopify's shape: page `locations`, then each `location(id:)`'s levels) or of an
InventoryItem, with `quantities(names: [...]) {name quantity updatedAt}`.

PanPan → Shopify:
- a shop is a Location; a product a Product with one variant and one InventoryItem (the
  catalogue exists from the start of time, `createdAt` = the first shop's opening);
- a sale is an Order named by its receipt number (POS orders: closed, paid, fulfilled,
  `sourceName` "pos", or "web" for deliveries; EUR, taxes included so no tax fields);
- a `RET-<receipt>` return is a Refund on the original order (`refunds[]` with `createdAt`,
  `note` = the return receipt, `totalRefundedSet`, `refundLineItems`), which moves the order's
  `updatedAt` to the refund time, `displayFinancialStatus` to (PARTIALLY_)REFUNDED and lowers
  `currentTotalPriceSet` — as Shopify shows a refund. A return whose original order is not in
  the data is dropped (kept in `orphan_returns`).
- a sale called off before payment (`cancelled_at`, once the clock reaches it) is a cancelled
  Order, as Shopify shows one whose payment was never captured: `cancelledAt` and
  `cancelReason` CUSTOMER set, `closedAt` the cancellation (Shopify archives it),
  `displayFinancialStatus` VOIDED, current totals and quantities 0, and `updatedAt` moved to
  the cancellation so an incremental pull sees it;
- a customer is a Customer (no account: `state` DISABLED; phone in E.164 as Shopify stores it,
  the email as exported, empty → null; loyalty members tagged "loyalty");
- an InventoryLevel exists once a stock count is known: `available` = `on_hand` = the last
  count, `updatedAt` = when it was counted. Levels are keyed by Shopify's own
  `gid://shopify/InventoryLevel/<location>?inventory_item_id=<item>` ids.
IDs are `gid://shopify/<Type>/<n>` with small stable numbers (orders numbered by sale time).

Clock and edits: records dated after `now` do not exist; `touch(resource, id, at)` moves a
record's `updatedAt` to `at` (whole seconds) once `at <= now`. Resources: "orders" (receipt
no), "customers" (customer id), "products" (SKU; also its variant and inventory item),
"inventory_levels" ("<shop id>/<SKU>").

Wire formats: DateTime is `2025-01-12T07:06:00Z` (UTC, whole seconds, as the GraphQL Admin API
writes it). Money is `{amount, currencyCode}` with the amount a decimal string written from
the Decimal as Shopify's Decimal scalar does: trailing zeros dropped, one decimal kept ("1.2",
"10.0", "3.85") [U: the exact trailing-zero form]; variant `price` is the same string.

Pagination: keyset cursors like Shopify's, base64 of `{"last_id", "last_value"}`, so a page is
stable while records change; `pageInfo {hasNextPage hasPreviousPage startCursor endCursor}`
(hasPreviousPage is simply "an `after` was given", as Relay allows); `edges` and `nodes` both.
Without first/last: "you must provide one of first or last". `first`/`last` above 250: an
error with the same shape whose text is [U] (graphql-ruby's range-validator wording). A bad
cursor (and the injected expired_cursor) gives "Invalid cursor for current pagination sort."
at the connection's path with `data: null` (HTTP 200) [U: no extensions.code].

Search (`query:`): `field:value` terms joined by spaces or AND; `-field:` negates; operators
`:`, `:>`, `:>=`, `:<`, `:<=`; values bare or in '…'/"…". Date fields (updated_at, created_at,
processed_at) take RFC 3339 or a date; without an offset they are the shop's time
(Europe/Paris). Also `id` (number) on all, `status` (any/closed match everything) on orders,
`sku` on inventory items. An unknown field is ignored with a warning in
`extensions.search`, as Shopify does; OR, NOT, parentheses and free text are refused with a
GraphQL error (the emulator does not do them).

Cost and throttling: every answer carries `extensions.cost {requestedQueryCost,
actualQueryCost, throttleStatus {maximumAvailable, currentlyAvailable, restoreRate}}` with
Shopify's rules (object 1, connection 2 + size × node, scalars 0); a query above
`max_query_cost` (1000) is refused with MAX_COST_EXCEEDED. A leaky bucket (`bucket_size`
points, default 2000, refilled at `restore_rate`/s, default 100: the Standard plan) is tracked
and reported; it refuses requests only with `enforce_bucket=True`. THROTTLED (bucket or
injected rate_limit) is `{"errors":[{"message":"Throttled","extensions":{"code":"THROTTLED",
…}}],"extensions":{"cost":{…,"actualQueryCost":null}}}` with HTTP `throttle_status` (200 by
default, or 429; Retry-After only on a 429 and only when the injected retry_after is not
None — Shopify's GraphQL status is [U]).
Other errors: 401 `{"errors":"[API] Invalid API key or access token (unrecognized login or
wrong password)"}`; 5xx `{"errors":[{"message":"Internal error. Looks like something went
wrong on our end.…","extensions":{"code":"INTERNAL_SERVER_ERROR","requestId":…}}]}`; a body
without a query: 400 `{"errors":{"query":"Required parameter missing or invalid"}}`.
Accounts that are not the simple case: `scopes` (currentAppInstallation.accessScopes; without
read_all_orders only orders of the last 60 days exist, as the Order reference says),
`protected_customer_data=False` (names, emails and phones null with an ACCESS_DENIED error
each, HTTP 200, the rest of the answer intact), `discount_order` (an order-level discount in
each line's discountAllocations, not in discountedTotalSet), `remove_units` (an order edit:
`quantity` stays, `currentQuantity` drops), `deactivate_location` (left out of `locations`
without includeInactive) and `set_product_status` (`products` lists ACTIVE ones unless the
query's status term names others).
Not emulated: mutations (bulk operations), introspection, the 25,000-object pagination cap.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import unicodedata
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLResolveInfo,
    OperationDefinitionNode,
    execute_sync,
    get_named_type,
    is_leaf_type,
    parse,
    validate,
)

from .base import Emulator, Request, Response, parse_time
from .panpan import PARIS, Order, PanPanData
from .shopify_schema import admin_schema, operation_of, requested_cost

CURRENCY = "EUR"
MAX_PAGE = 250
# The access scopes of an app that reads orders, customers, products, locations and stock,
# with read_all_orders (without it only the last 60 days of orders are visible: Order object
# reference, shopify.dev/docs/api/admin-graphql/latest/objects/Order).
SCOPES = ("read_orders", "read_all_orders", "read_customers", "read_products",
          "read_locations", "read_inventory")
ORDERS_WITHOUT_ALL = timedelta(days=60)
ACCESS_DENIED = ("This app is not approved to access the Customer object. See "
                 "https://partners.shopify.com/apps/customer_data for more details.")
DOCS = "https://shopify.dev/api/usage/rate-limits"
_PATH = re.compile(r"^/admin/api/(\d{4}-(?:01|04|07|10)|unstable)/graphql\.json$")
BAD_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"


# --- what the emulator serves of the schema ------------------------------------------------

SORT_KEYS = {
    "orders": ("OrderSortKeys", ("ID", "CREATED_AT", "UPDATED_AT", "PROCESSED_AT")),
    "customers": ("CustomerSortKeys", ("ID", "CREATED_AT", "UPDATED_AT")),
    "products": ("ProductSortKeys", ("ID", "CREATED_AT", "UPDATED_AT", "TITLE")),
    "locations": ("LocationSortKeys", ("ID", "NAME")),
}
SEARCH_FIELDS = {
    "orders": {"updated_at", "created_at", "processed_at", "id", "status"},
    "customers": {"updated_at", "created_at", "id"},
    "products": {"updated_at", "created_at", "id", "status"},
    "inventoryItems": {"updated_at", "created_at", "id", "sku"},
    "locations": {"id"},
    "levels": {"updated_at", "created_at", "id"},
}
QUANTITY_NAMES = ("available", "committed", "damaged", "incoming", "on_hand",
                  "quality_control", "reserved", "safety_stock")


# --- wire formats -------------------------------------------------------------------------

def amount(value: Decimal) -> str:
    """Shopify's Decimal scalar: exact, trailing zeros dropped, at least one decimal."""
    text = format(value.normalize(), "f")
    if text in ("-0", "-0.0"):
        text = "0"
    return text if "." in text else text + ".0"


def money(value: Decimal) -> dict[str, str]:
    return {"amount": amount(value), "currencyCode": CURRENCY}


def money_bag(value: Decimal) -> dict[str, Any]:
    return {"shopMoney": money(value), "presentmentMoney": money(value)}


def timestamp(moment: datetime) -> str:
    """GraphQL Admin DateTime: UTC, whole seconds, Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def _search_time(text: str) -> datetime:
    """A search date: RFC 3339, or a local time/date in the shop's zone (Europe/Paris)."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)
    moment = parse_time(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=PARIS)).astimezone(UTC)


def _e164(phone: str) -> str | None:
    digits = re.sub(r"[^\d+]", "", phone)
    return digits or None


def _handle(title: str) -> str:
    plain = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")


# --- records --------------------------------------------------------------------------------

@dataclass
class _Row:
    """One record as a connection sees it: its sort values and how to build its node."""

    id: int
    created: datetime
    updated: datetime
    name: str
    build: Callable[[], dict[str, Any]]
    search: dict[str, Any] = field(default_factory=dict)


@dataclass
class _OrderRec:
    id: int
    order: Order
    refunds: list[tuple[int, Order]]  # (refund id, the RET- receipt)


@dataclass
class _Context:
    """One request's execution: the cost of what was built and the search notes."""

    cost: int = 0
    search: list[dict[str, Any]] = field(default_factory=list)


def _fail(message: str) -> GraphQLError:
    """An error of a field's resolution, answered in `errors` with the field's path."""
    return GraphQLError(message)


# --- the emulator ---------------------------------------------------------------------------

class ShopifyEmulator(Emulator):
    """Shopify's GraphQL Admin API over PanPan's shops, catalogue, customers, sales and stock."""

    name = "shopify"

    def __init__(self, data: PanPanData, *, token: str = "shpat_emulator",
                 now: datetime | None = None, shop: str = "panpan",
                 throttle_status: int = 200, max_query_cost: int | None = 1000,
                 bucket_size: float = 2000.0, restore_rate: float = 100.0,
                 enforce_bucket: bool = False, scopes: tuple[str, ...] = SCOPES,
                 protected_customer_data: bool = True) -> None:
        super().__init__(token=token, now=now)
        self.scopes = scopes
        self.protected_customer_data = protected_customer_data
        # Order edits and order-level discounts: receipt -> ...; locations deactivated;
        # product statuses other than ACTIVE.
        self._order_discounts: dict[str, tuple[Decimal, datetime]] = {}
        self._removed: dict[tuple[str, int], tuple[int, datetime]] = {}
        self._deactivated: dict[str, datetime] = {}
        self._statuses: dict[str, tuple[str, datetime]] = {}
        if throttle_status not in (200, 429):
            raise ValueError("throttle_status is 200 or 429")
        self.data, self.shop = data, shop
        self.throttle_status, self.max_query_cost = throttle_status, max_query_cost
        self.bucket_size, self.restore_rate = bucket_size, restore_rate
        self.enforce_bucket = enforce_bucket
        self._available, self._refilled = bucket_size, time.monotonic()
        self._work = threading.RLock()
        self._touches: dict[tuple[str, str], list[datetime]] = {}
        self._version = 0
        self._cache: dict[tuple, tuple[list, list[_Row]]] = {}
        self._context = _Context()  # the request being answered (search warnings)
        self._index()

    def _index(self) -> None:
        data = self.data
        self.epoch = min((datetime(s.opened_on.year, s.opened_on.month, s.opened_on.day,
                                   tzinfo=PARIS).astimezone(UTC) for s in data.shops),
                         default=datetime(2000, 1, 1, tzinfo=UTC))
        self._locations = {s.shop_id: (n, s) for n, s in enumerate(data.shops, 1)}
        self._products = {p.sku: (n, p) for n, p in enumerate(data.products, 1)}
        self._customers = {c.customer_id: (n, c) for n, c in enumerate(data.customers, 1)}
        sales = [o for o in data.orders if not o.is_return]
        self._orders: list[_OrderRec] = [_OrderRec(n, o, []) for n, o in enumerate(sales, 1)]
        by_receipt = {rec.order.receipt_no: rec for rec in self._orders}
        self.orphan_returns: list[Order] = []
        refund_no = 0
        for ret in (o for o in data.orders if o.is_return):
            original = by_receipt.get(ret.receipt_no.removeprefix("RET-"))
            if original is None:
                self.orphan_returns.append(ret)
                continue
            refund_no += 1
            original.refunds.append((refund_no, ret))
        self._order_ids = {rec.id: rec for rec in self._orders}
        self._counts: dict[tuple[str, str], list] = {}
        for count in data.stock_counts:
            self._counts.setdefault((count.shop_id, count.sku), []).append(count)
        for counts in self._counts.values():
            counts.sort(key=lambda c: c.counted_at)

    # --- clock and edits --------------------------------------------------------------------

    def touch(self, resource: str, record_id: str, at: datetime) -> None:
        """Record an edit at `at`: the record's updatedAt moves there once `at <= now`."""
        known = {"orders": {r.order.receipt_no for r in self._orders},
                 "customers": self._customers, "products": self._products,
                 "inventory_levels": {f"{shop}/{sku}" for shop, sku in self._counts}}
        if resource not in known:
            raise ValueError(f"unknown resource {resource!r}; one of {', '.join(known)}")
        if record_id not in known[resource]:
            raise KeyError(f"no {resource} record {record_id!r}")
        with self._work:
            self._touches.setdefault((resource, record_id), []).append(
                at.astimezone(UTC).replace(microsecond=0))
            self._version += 1

    def discount_order(self, receipt_no: str, amount: Decimal, at: datetime) -> None:
        """An order-level discount of `amount` on the whole order (a code or a manual
        discount on the cart), allocated across its lines by their value after line
        discounts, as Shopify allocates it; an edit of the order at `at`."""
        self.touch("orders", receipt_no, at)
        with self._work:
            self._order_discounts[receipt_no] = (Decimal(amount), at)

    def remove_units(self, receipt_no: str, line_no: int, quantity: int, at: datetime) -> None:
        """An order edit that takes `quantity` units off a line: the line keeps its
        `quantity`, its `currentQuantity` drops, as Shopify shows an edited order."""
        self.touch("orders", receipt_no, at)
        with self._work:
            self._removed[(receipt_no, line_no)] = (quantity, at)

    def deactivate_location(self, shop_id: str, at: datetime) -> None:
        """Deactivate a location at `at`: `locations` then leaves it out unless
        includeInactive is true."""
        if shop_id not in self._locations:
            raise KeyError(f"no location {shop_id!r}")
        with self._work:
            self._deactivated[shop_id] = at
            self._version += 1

    def set_product_status(self, sku: str, status: str, at: datetime) -> None:
        """Set a product's status (ACTIVE, ARCHIVED or DRAFT) at `at`, an edit of it:
        `products` lists only ACTIVE ones unless the query's status term says otherwise."""
        if status not in ("ACTIVE", "ARCHIVED", "DRAFT"):
            raise ValueError(f"unknown product status {status!r}")
        self.touch("products", sku, at)
        with self._work:
            self._statuses[sku] = (status, at)

    def _order_discount(self, order: Order) -> dict[int, Decimal]:
        """The order-level discount allocated to each line by its value after line
        discounts, to the cent, the last line taking the rounding."""
        discount = self._order_discounts.get(order.receipt_no)
        if discount is None or discount[1] > self.now:
            return {}
        amount, _ = discount
        base = sum((line.line_total for line in order.lines), Decimal("0"))
        shares: dict[int, Decimal] = {}
        for line in order.lines[:-1]:
            shares[line.line_no] = (amount * line.line_total / base).quantize(Decimal("0.01"))
        shares[order.lines[-1].line_no] = amount - sum(shares.values(), Decimal("0"))
        return shares

    def _removed_units(self, receipt_no: str, line_no: int) -> int:
        removed = self._removed.get((receipt_no, line_no))
        return removed[0] if removed is not None and removed[1] <= self.now else 0

    def _status(self, sku: str) -> str:
        status = self._statuses.get(sku)
        return status[0] if status is not None and status[1] <= self.now else "ACTIVE"

    def _inactive_since(self, shop_id: str) -> datetime | None:
        at = self._deactivated.get(shop_id)
        return at if at is not None and at <= self.now else None

    def _edited(self, resource: str, record_id: str, base: datetime) -> datetime:
        edits = [t for t in self._touches.get((resource, record_id), ()) if t <= self.now]
        return max([base, *edits])

    def _order_updated(self, rec: _OrderRec) -> datetime:
        times = [rec.order.sold_at] + [r.sold_at for _, r in rec.refunds if r.sold_at <= self.now]
        cancelled = self._cancelled(rec)
        if cancelled is not None:
            times.append(cancelled)
        return self._edited("orders", rec.order.receipt_no, max(times))

    def _cancelled(self, rec: _OrderRec) -> datetime | None:
        """When the sale was called off, once the clock has reached it; else None."""
        cancelled = rec.order.cancelled_at
        return cancelled if cancelled is not None and cancelled <= self.now else None

    def _level(self, shop_id: str, sku: str) -> tuple[Any, datetime] | None:
        """The last stock count known at `now` and the level's updatedAt, or None."""
        counts = self._counts.get((shop_id, sku), [])
        i = bisect_right([c.counted_at for c in counts], self.now)
        if i == 0:
            return None
        last = counts[i - 1]
        return last, self._edited("inventory_levels", f"{shop_id}/{sku}", last.counted_at)

    # --- rows per connection ----------------------------------------------------------------

    def _rows(self, resource: str) -> list[_Row]:
        now = self.now
        if resource == "orders":
            # Without read_all_orders an app sees the last 60 days of orders only.
            oldest = None if "read_all_orders" in self.scopes else now - ORDERS_WITHOUT_ALL
            return [_Row(rec.id, rec.order.sold_at, self._order_updated(rec),
                         rec.order.receipt_no, _bind(self._order_node, rec),
                         {"processed_at": rec.order.sold_at})
                    for rec in self._orders if rec.order.sold_at <= now
                    and (oldest is None or rec.order.sold_at >= oldest)]
        if resource == "customers":
            return [_Row(n, c.signed_up, self._edited("customers", c.customer_id, c.signed_up),
                         f"{c.last_name} {c.first_name}", _bind(self._customer_node, c.customer_id))
                    for n, c in self._customers.values() if c.signed_up <= now]
        if resource in ("products", "inventoryItems"):
            node = self._product_node if resource == "products" else self._item_node
            return [_Row(n, self.epoch, self._edited("products", p.sku, self.epoch), p.name,
                         _bind(node, p.sku), {"sku": p.sku, "status": self._status(p.sku)})
                    for n, p in self._products.values()]
        if resource == "locations":
            return [_Row(n, self.epoch, self.epoch, s.name, _bind(self._location_node, s.shop_id),
                         {"active": self._inactive_since(s.shop_id) is None})
                    for n, s in self._locations.values()]
        raise KeyError(resource)

    def _level_rows(self, shop_id: str | None, sku: str | None) -> list[_Row]:
        rows = []
        for (shop, item), counts in self._counts.items():
            if (shop_id and shop != shop_id) or (sku and item != sku):
                continue
            level = self._level(shop, item)
            if level is None or item not in self._products or shop not in self._locations:
                continue
            # Within a location the levels go by item, within an item by location.
            number = self._products[item][0] if shop_id else self._locations[shop][0]
            rows.append(_Row(number, counts[0].counted_at, level[1], item,
                             _bind(self._level_node, shop, item)))
        return sorted(rows, key=lambda r: r.id)

    def _sorted(self, resource: str, sort: str) -> tuple[list, list[_Row]]:
        key = (resource, sort, self.now, self._version)
        if key not in self._cache:
            rows = self._rows(resource)
            if len(self._cache) > 32:
                self._cache.clear()
            self._cache[key] = _order_rows(rows, sort)
        return self._cache[key]

    # --- nodes ------------------------------------------------------------------------------

    def _location_node(self, shop_id: str) -> dict[str, Any]:
        number, shop = self._locations[shop_id]
        inactive = self._inactive_since(shop_id)
        return {"id": gid("Location", number), "legacyResourceId": str(number),
                "name": shop.name, "isActive": inactive is None,
                "deactivatedAt": timestamp(inactive) if inactive else None,
                "address": {"address1": None, "city": shop.city, "zip": None,
                            "country": "France", "countryCode": "FR"},
                "inventoryLevels": lambda args, path: self._connection(
                    self._level_rows(shop_id, None), "ID", args, path)}

    def _customer_node(self, customer_id: str) -> dict[str, Any]:
        number, c = self._customers[customer_id]
        email, phone = c.email or None, _e164(c.phone)
        node = {"id": gid("Customer", number), "legacyResourceId": str(number),
                "firstName": c.first_name or None, "lastName": c.last_name or None,
                "displayName": f"{c.first_name} {c.last_name}".strip(), "email": email,
                "phone": phone, "state": "DISABLED",
                "tags": ["loyalty"] if c.loyalty_opt_in else [],
                "createdAt": timestamp(c.signed_up),
                "updatedAt": timestamp(self._edited("customers", customer_id, c.signed_up)),
                "defaultEmailAddress": {"emailAddress": email} if email else None,
                "defaultPhoneNumber": {"phoneNumber": phone} if phone else None}
        if not self.protected_customer_data:
            # An app not approved for protected customer data gets 200, these fields null
            # and an error per field (Shopify's protected customer data requirements).
            for name in PROTECTED_FIELDS:
                node[name] = _denied
        return node

    def _product_node(self, sku: str) -> dict[str, Any]:
        number, p = self._products[sku]
        updated = timestamp(self._edited("products", sku, self.epoch))
        variant = _bind(self._variant_node, sku)
        return {"id": gid("Product", number), "legacyResourceId": str(number),
                "title": p.name, "handle": _handle(p.name), "productType": p.category,
                "vendor": "PanPan", "status": self._status(sku),
                "createdAt": timestamp(self.epoch),
                "updatedAt": updated,
                "variants": lambda args, path: self._connection(
                    [_Row(number, self.epoch, self.epoch, sku, variant)], "ID", args, path)}

    def _variant_node(self, sku: str) -> dict[str, Any]:
        number, p = self._products[sku]
        return {"id": gid("ProductVariant", number), "legacyResourceId": str(number),
                "sku": sku, "title": "Default Title", "price": amount(p.unit_price),
                "createdAt": timestamp(self.epoch),
                "updatedAt": timestamp(self._edited("products", sku, self.epoch)),
                "product": lambda args, path: self._product_node(sku),
                "inventoryItem": lambda args, path: self._item_node(sku)}

    def _item_node(self, sku: str) -> dict[str, Any]:
        number, p = self._products[sku]
        return {"id": gid("InventoryItem", number), "legacyResourceId": str(number),
                "sku": sku, "tracked": True, "createdAt": timestamp(self.epoch),
                "updatedAt": timestamp(self._edited("products", sku, self.epoch)),
                "unitCost": money(p.unit_cost),
                "variant": lambda args, path: self._variant_node(sku),
                "inventoryLevels": lambda args, path: self._connection(
                    self._level_rows(None, sku), "ID", args, path)}

    def _level_node(self, shop_id: str, sku: str) -> dict[str, Any]:
        location, item = self._locations[shop_id][0], self._products[sku][0]
        level = self._level(shop_id, sku)
        assert level is not None
        count, updated = level
        first = self._counts[(shop_id, sku)][0].counted_at

        def quantities(args: dict[str, Any], path: list) -> list[dict[str, Any]]:
            names = args["names"] if isinstance(args["names"], list) else [args["names"]]
            for name in names:
                if name not in QUANTITY_NAMES:
                    raise _fail(f"'{name}' is not a valid inventory quantity name.")
            return [{"id": f"gid://shopify/InventoryQuantity/{location}?inventory_item_id="
                           f"{item}&name={name}", "name": name,
                     "quantity": count.on_hand if name in ("available", "on_hand") else 0,
                     "updatedAt": timestamp(updated) if name in ("available", "on_hand")
                     else None}
                    for name in names]

        return {"id": f"gid://shopify/InventoryLevel/{location}?inventory_item_id={item}",
                "createdAt": timestamp(first), "updatedAt": timestamp(updated),
                "location": lambda args, path: self._location_node(shop_id),
                "item": lambda args, path: self._item_node(sku), "quantities": quantities}

    def _order_node(self, rec: _OrderRec) -> dict[str, Any]:
        order, now = rec.order, self.now
        refunds = [(n, r) for n, r in rec.refunds if r.sold_at <= now]
        refunded = sum((-r.total for _, r in refunds), Decimal("0"))
        total = order.total
        cancelled = self._cancelled(rec)
        line_ids = {line.line_no: rec.id * 1000 + line.line_no for line in order.lines}
        returned: dict[int, int] = {}
        matches: dict[tuple[int, int], Any] = {}
        for n, ret in refunds:
            for ret_line in ret.lines:
                line = next((x for x in order.lines if x.sku == ret_line.sku), None)
                matches[(n, ret_line.line_no)] = line
                if line is not None:
                    returned[line.line_no] = returned.get(line.line_no, 0) - int(ret_line.quantity)

        order_discount = self._order_discount(order)

        def line_node(line: Any) -> dict[str, Any]:
            sku = line.sku
            known = sku in self._products
            removed = self._removed_units(order.receipt_no, line.line_no)
            allocations = []
            if line.discount:
                allocations.append(_allocation(line.discount, "LINE_ITEM", "EXPLICIT", "ONE"))
            if order_discount.get(line.line_no):
                allocations.append(_allocation(order_discount[line.line_no], "LINE_ITEM",
                                               "ALL", "ACROSS"))
            return {"id": gid("LineItem", line_ids[line.line_no]), "sku": sku or None,
                    "name": line.name, "title": line.name, "variantTitle": None,
                    "vendor": "PanPan", "quantity": int(line.quantity),
                    "currentQuantity": 0 if cancelled else
                    int(line.quantity) - returned.get(line.line_no, 0) - removed,
                    "originalUnitPriceSet": money_bag(line.unit_price),
                    "originalTotalSet": money_bag(line.unit_price * line.quantity),
                    # Line-level discounts only: an order-level one is in discountAllocations.
                    "discountedTotalSet": money_bag(line.line_total),
                    "totalDiscountSet": money_bag(line.discount),
                    "discountAllocations": allocations,
                    "product": (lambda a, p: self._product_node(sku)) if known else None,
                    "variant": (lambda a, p: self._variant_node(sku)) if known else None}

        def refund_node(number: int, ret: Order) -> dict[str, Any]:
            rows = [_Row(number * 1000 + rl.line_no, ret.sold_at, ret.sold_at, rl.sku,
                         _bind(refund_line, number, ret, rl)) for rl in ret.lines]
            return {"id": gid("Refund", number), "legacyResourceId": str(number),
                    "createdAt": timestamp(ret.sold_at), "updatedAt": timestamp(ret.sold_at),
                    "note": ret.receipt_no, "totalRefundedSet": money_bag(-ret.total),
                    "refundLineItems": lambda args, path: self._connection(rows, "ID", args,
                                                                           path)}

        def refund_line(number: int, ret: Order, rl: Any) -> dict[str, Any]:
            line = matches.get((number, rl.line_no))
            return {"id": gid("RefundLineItem", number * 1000 + rl.line_no),
                    "quantity": -int(rl.quantity), "restockType": "RETURN", "restocked": True,
                    "lineItem": line_node(line) if line is not None else None,
                    "location": self._location_node(ret.shop_id)
                    if ret.shop_id in self._locations else None,
                    "priceSet": money_bag(rl.unit_price), "subtotalSet": money_bag(-rl.line_total)}

        customer = self._customers.get(order.customer_id)
        status = "PAID" if not refunds else \
            ("REFUNDED" if refunded >= total else "PARTIALLY_REFUNDED")
        # Called off before payment: the authorization is voided, nothing remains to pay.
        cart_discount = sum(order_discount.values(), Decimal("0"))
        edited_off = sum((line.line_total / line.quantity
                          * self._removed_units(order.receipt_no, line.line_no)
                          for line in order.lines if line.quantity), Decimal("0"))
        total -= cart_discount
        current = Decimal("0") if cancelled else (total - refunded - edited_off).quantize(
            Decimal("0.01"))
        if cancelled:
            status = "VOIDED"
        location = (lambda a, p: self._location_node(order.shop_id)) \
            if order.shop_id in self._locations else None
        line_rows = [_Row(line_ids[line.line_no], order.sold_at, order.sold_at, line.sku,
                          _bind(line_node, line)) for line in order.lines]
        return {
            "id": gid("Order", rec.id), "legacyResourceId": str(rec.id),
            "name": order.receipt_no,
            "email": (customer[1].email or None) if customer else None,
            "createdAt": timestamp(order.sold_at), "processedAt": timestamp(order.sold_at),
            "updatedAt": timestamp(self._order_updated(rec)),
            "closedAt": timestamp(cancelled or order.sold_at), "closed": True,
            "cancelledAt": timestamp(cancelled) if cancelled else None,
            "cancelReason": "CUSTOMER" if cancelled else None, "test": False,
            "currencyCode": CURRENCY,
            "presentmentCurrencyCode": CURRENCY, "taxesIncluded": True,
            "displayFinancialStatus": status, "displayFulfillmentStatus": "FULFILLED",
            "sourceName": "web" if order.channel == "livraison" else "pos",
            "totalPriceSet": money_bag(total), "subtotalPriceSet": money_bag(total),
            "totalDiscountsSet": money_bag(sum((x.discount for x in order.lines),
                                               Decimal("0")) + cart_discount),
            "cartDiscountAmountSet": money_bag(cart_discount) if cart_discount else None,
            "totalRefundedSet": money_bag(refunded),
            "currentTotalPriceSet": money_bag(current),
            "currentSubtotalPriceSet": money_bag(current),
            "customer": (lambda a, p: self._customer_node(order.customer_id))
            if customer else None,
            "physicalLocation": location, "retailLocation": location,
            "lineItems": lambda args, path: self._connection(line_rows, "ID", args, path),
            "refunds": lambda args, path: [refund_node(n, r) for n, r in refunds][
                :args.get("first")],
        }

    def _root(self) -> dict[str, Any]:
        def connection(resource: str) -> Callable[[dict[str, Any], list], dict[str, Any]]:
            def resolve(args: dict[str, Any], path: list) -> dict[str, Any]:
                sort = args.get("sortKey") or "ID"
                enum, allowed = SORT_KEYS.get(resource, ("", ("ID",)))
                if sort not in allowed:
                    raise _fail(f"sortKey {sort} of {enum} is not one the emulator serves "
                                f"({', '.join(allowed)})")
                keys, rows = self._sorted(resource, sort)
                if resource == "products" and "status:" not in (args.get("query") or ""):
                    # `products` lists ACTIVE products unless the query names statuses (the
                    # query argument's `status` filter defaults to ACTIVE).
                    args = dict(args, query=" AND ".join(
                        filter(None, [args.get("query"), "status:ACTIVE"])))
                if resource == "locations" and not args.get("includeInactive"):
                    kept = [i for i, row in enumerate(rows) if row.search["active"]]
                    keys, rows = [keys[i] for i in kept], [rows[i] for i in kept]
                return self._connection(rows, sort, args, path, keys=keys, resource=resource)
            return resolve

        def one(resource: str, kind: str) -> Callable[[dict[str, Any], list], Any]:
            def resolve(args: dict[str, Any], path: list) -> Any:
                match = re.fullmatch(rf"gid://shopify/{kind}/(\d+)", str(args["id"]))
                if match is None:
                    raise _fail(f"Invalid global id '{args['id']}'")
                _, rows = self._sorted(resource, "ID")
                row = next((r for r in rows if r.id == int(match.group(1))), None)
                return row.build() if row else None
            return resolve

        installation = {"id": "gid://shopify/AppInstallation/1",
                        "accessScopes": [{"handle": h, "description": h.replace("_", " ")}
                                         for h in self.scopes]}
        return {"currentAppInstallation": installation,
                "shop": {"id": gid("Shop", 1), "name": "PanPan", "currencyCode": CURRENCY,
                         "ianaTimezone": "Europe/Paris", "taxesIncluded": True,
                         "myshopifyDomain": f"{self.shop}.myshopify.com"},
                **{name: connection(name) for name in ("orders", "customers", "products",
                                                        "locations", "inventoryItems")},
                "order": one("orders", "Order"), "customer": one("customers", "Customer"),
                "product": one("products", "Product"), "location": one("locations", "Location"),
                "inventoryItem": one("inventoryItems", "InventoryItem")}

    # --- connections, cursors and search ----------------------------------------------------

    def _connection(self, rows: list[_Row], sort: str, args: dict[str, Any], path: list, *,
                    keys: list | None = None, resource: str | None = None) -> dict[str, Any]:
        """A page of `rows` (sorted by `sort` unless `keys` says they are) per the arguments.

        Cursors and range terms on the sort field narrow the sorted list by bisection; the
        other search terms are tested only until the page is full, so a page costs about its
        size however large the shop. hasPreviousPage is true after an `after` cursor (and
        hasNextPage before a `before` one) without looking, as Relay allows.
        """
        first, last = args.get("first"), args.get("last")
        if first is None and last is None:
            raise _fail("you must provide one of first or last")
        for label, size in (("first", first), ("last", last)):
            if size is not None and size > MAX_PAGE:
                raise _fail(f"{label} must be less than or equal to {MAX_PAGE}")
            if size is not None and size < 0:
                raise _fail(f"{label} must be greater than or equal to 0")
        if keys is None:
            keys, rows = _order_rows(rows, sort)
        wanted: Callable[[_Row], bool] = _always
        lo, hi = 0, len(keys)
        if args.get("query"):
            wanted, ranges = self._search(resource or "levels", args["query"], path)
            for field_name, op, value in ranges:
                if _SORT_FIELD.get(sort) != field_name:
                    continue
                if op in (">", ">="):
                    mark = (value, _HIGH if op == ">" else -1)
                    lo = max(lo, bisect_right(keys, mark) if op == ">" else bisect_left(keys, mark))
                else:
                    mark = (value, -1 if op == "<" else _HIGH)
                    hi = min(hi, bisect_left(keys, mark) if op == "<" else bisect_right(keys, mark))
        reverse = bool(args.get("reverse"))
        after, before = args.get("after"), args.get("before")
        if after is not None:
            mark = _decode_cursor(after, sort, path)
            if reverse:
                hi = min(hi, bisect_left(keys, mark))
            else:
                lo = max(lo, bisect_right(keys, mark))
        if before is not None:
            mark = _decode_cursor(before, sort, path)
            if reverse:
                lo = max(lo, bisect_right(keys, mark))
            else:
                hi = min(hi, bisect_left(keys, mark))
        forward = range(lo, hi) if not reverse else range(hi - 1, lo - 1, -1)
        if first is not None:
            picked = _take(forward, rows, wanted, first + 1)
            has_next, has_previous = len(picked) > first, after is not None
            picked = picked[:first]
            if last is not None:
                has_previous = has_previous or len(picked) > last
                picked = picked[len(picked) - last:] if last else []
        else:
            picked = _take(reversed(forward), rows, wanted, last + 1)[::-1]
            has_previous, has_next = len(picked) > last, before is not None
            picked = picked[len(picked) - last:] if last else []
        edges = [{"cursor": _encode_cursor(keys[i], sort), "node": rows[i].build()}
                 for i in picked]
        return {"edges": edges, "nodes": [edge["node"] for edge in edges],
                "pageInfo": {"hasNextPage": has_next, "hasPreviousPage": has_previous,
                             "startCursor": edges[0]["cursor"] if edges else None,
                             "endCursor": edges[-1]["cursor"] if edges else None}}

    def _search(self, resource: str, text: str,
                path: list) -> tuple[Callable[[_Row], bool], list[tuple[str, str, Any]]]:
        """Shopify search syntax, the part connectors use (see the module docstring).

        Gives the test every term makes, and the plain range terms (field, op, value) that
        the caller may answer by bisection instead.
        """
        tests: list[Callable[[_Row], bool]] = []
        ranges: list[tuple[str, str, Any]] = []
        warnings: list[dict[str, str]] = []
        fields = SEARCH_FIELDS.get(resource, SEARCH_FIELDS["levels"])
        term = re.compile(r"""(-?)(\w+):(<=|>=|<|>)?('[^']*'|"[^"]*"|[^\s()]+)""")
        pos = 0
        while pos < len(text):
            if text[pos].isspace():
                pos += 1
                continue
            if text.startswith("AND", pos) and text[pos + 3:pos + 4] in ("", " "):
                pos += 3
                continue
            match = term.match(text, pos)
            if match is None:
                word = text[pos:].split()[0]
                raise _fail(f"Search syntax not supported by the emulator near '{word}' "
                            "(only field:value terms joined by AND)")
            pos = match.end()
            negate, name, op, value = match.groups()
            value = value[1:-1] if value[:1] in ("'", '"') else value
            if name not in fields:
                warnings.append({"field": name,
                                 "message": "Invalid search field for this query."})
                continue
            parsed = _term(name, op or "", value)
            if parsed is None:
                warnings.append({"field": name, "message": f"Invalid value: {value}"})
                continue
            test, bound = parsed
            tests.append((lambda t: lambda r: not t(r))(test) if negate else test)
            if bound is not None and op and not negate:
                ranges.append((name, op, bound))
        if warnings:
            self._context.search.append({"path": path, "query": text, "warnings": warnings})
        if not tests:
            return _always, ranges
        return (tests[0] if len(tests) == 1 else lambda row: all(t(row) for t in tests)), ranges

    # --- HTTP -------------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        return request.headers.get("x-shopify-access-token") == self.token

    def _headers(self, request: Request) -> dict[str, str]:
        match = _PATH.match(request.path)
        headers = {"X-Request-Id": str(uuid.uuid4())}
        if match:
            headers["X-Shopify-API-Version"] = match.group(1)
        return headers

    def unauthorized(self, request: Request) -> Response:
        return Response(401, {"errors": BAD_TOKEN}, self._headers(request))

    def server_error(self, request: Request, status: int) -> Response:
        headers = self._headers(request)
        request_id = headers["X-Request-Id"]
        return Response(status, {"errors": [{
            "message": "Internal error. Looks like something went wrong on our end.\n"
                       f"Request ID: {request_id} (include this in support requests).",
            "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}}]},
            headers)

    def rate_limited(self, request: Request, retry_after: float | None) -> Response:
        try:
            requested = self._requested_for(request)
        except Exception:  # an injected throttle answers whatever the body was
            requested = 0
        return self._throttled(request, requested, retry_after)

    def _throttled(self, request: Request, requested: int,
                   retry_after: float | None) -> Response:
        headers = self._headers(request)
        if self.throttle_status == 429 and retry_after is not None:
            headers["Retry-After"] = str(int(retry_after)) if float(retry_after).is_integer() \
                else f"{retry_after:.1f}"
        return Response(self.throttle_status, {
            "errors": [{"message": "Throttled",
                        "extensions": {"code": "THROTTLED", "documentation": DOCS}}],
            "extensions": {"cost": self._cost(requested, None)}}, headers)

    def expired_cursor(self, request: Request) -> Response:
        """The cursor error, at the query's first root field, whatever the body was."""
        error: dict[str, Any] = {"message": "Invalid cursor for current pagination sort."}
        requested = 0
        try:
            document, operation, variables = _read_body(request.json())
            first = next(f for f in operation.selection_set.selections
                         if isinstance(f, FieldNode))
            error["locations"] = [{"line": first.loc.start_token.line,
                                   "column": first.loc.start_token.column}]
            error["path"] = [(first.alias or first.name).value]
            requested = requested_cost(admin_schema(), document, operation, variables)
        except (GraphQLError, ValueError, StopIteration, AttributeError, TypeError):
            pass
        return Response(200, {"errors": [error], "data": None,
                              "extensions": {"cost": self._cost(requested, requested)}},
                        self._headers(request))

    def _refill(self) -> None:
        moment = time.monotonic()
        self._available = min(self.bucket_size, self._available
                              + (moment - self._refilled) * self.restore_rate)
        self._refilled = moment

    def _cost(self, requested: int, actual: int | None) -> dict[str, Any]:
        self._refill()
        return {"requestedQueryCost": requested, "actualQueryCost": actual,
                "throttleStatus": {"maximumAvailable": float(self.bucket_size),
                                   "currentlyAvailable": int(max(0.0, self._available)),
                                   "restoreRate": float(self.restore_rate)}}

    def route(self, request: Request) -> Response:
        headers = self._headers(request)
        if request.method != "POST" or not _PATH.match(request.path):
            return Response(404, {"errors": "Not Found"}, headers)
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        if content_type == "application/graphql":
            body: Any = {"query": request.body.decode("utf-8", "replace")}
        else:
            try:
                body = request.json()
            except ValueError:
                body = None
        if not isinstance(body, dict) or not isinstance(body.get("query"), str) \
                or not body["query"].strip():
            return Response(400, {"errors": {"query": "Required parameter missing or invalid"}},
                            headers)
        with self._work:
            answer = self._answer(body)
        if _is_throttled(answer):
            return self._throttled(request, answer["extensions"]["cost"]["requestedQueryCost"],
                                   None)
        return Response(200, answer, headers)

    def _requested_for(self, request: Request) -> int:
        document, operation, variables = _read_body(request.json())
        return requested_cost(admin_schema(), document, operation, variables)

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """Parse, validate, cost and run a query against Shopify's Admin schema."""
        schema = admin_schema()
        try:
            document, operation, variables = _read_body(body)
        except GraphQLError as error:
            return {"errors": [error.formatted]}
        errors = validate(schema, document)
        if errors:
            return {"errors": [e.formatted for e in errors]}
        if operation.operation.value != "query":
            return {"errors": [{"message": f"The emulator answers queries only, not "
                                           f"{operation.operation.value}s"}]}
        requested = requested_cost(schema, document, operation, variables)
        if self.max_query_cost is not None and requested > self.max_query_cost:
            return {"errors": [{
                "message": f"Query cost is {requested}, which exceeds the single query max cost "
                           f"limit ({self.max_query_cost}).\n\nSee {DOCS} for more information "
                           "on how the\ncost of a query is calculated.\n\nTo query larger "
                           "amounts of data with fewer limits, bulk operations should be used "
                           "instead.",
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested,
                               "maxCost": self.max_query_cost, "documentation": DOCS}}]}
        self._refill()
        if self.enforce_bucket and requested > self._available:
            return {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                    "extensions": {"cost": {"requestedQueryCost": requested}}}
        context = self._context = _Context()
        result = execute_sync(schema, document, root_value=self._root(),
                              variable_values=variables, operation_name=body.get(
                                  "operationName"), field_resolver=_resolver(context))
        actual = requested if result.errors and result.data is None else context.cost
        self._available -= actual
        answer: dict[str, Any] = {}
        if result.errors:
            answer["errors"] = [e.formatted for e in result.errors]
        answer["data"] = result.data
        extensions: dict[str, Any] = {"cost": self._cost(requested, actual)}
        if context.search:
            extensions["search"] = context.search
        answer["extensions"] = extensions
        return answer


# --- helpers ---------------------------------------------------------------------------------

def _bind(function: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    return lambda: function(*args)


PROTECTED_FIELDS = ("firstName", "lastName", "email", "phone", "defaultEmailAddress",
                    "defaultPhoneNumber")


def _denied(args: dict[str, Any], path: list) -> Any:
    raise GraphQLError(ACCESS_DENIED, extensions={"code": "ACCESS_DENIED"})


def _allocation(amount: Decimal, target: str, selection: str, method: str) -> dict[str, Any]:
    """A DiscountAllocation with its (manual) DiscountApplication."""
    return {"allocatedAmountSet": money_bag(amount),
            "discountApplication": {"__typename": "ManualDiscountApplication",
                                    "targetType": target, "targetSelection": selection,
                                    "allocationMethod": method, "index": 0,
                                    "title": "Remise", "description": None,
                                    "value": {"__typename": "MoneyV2", **money(amount)}}}


def _read_body(body: Any) -> tuple[DocumentNode, OperationDefinitionNode, dict[str, Any]]:
    """The parsed query of a request body, its operation and variables."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise GraphQLError("Required parameter missing or invalid")
    document = parse(body["query"])
    variables = body.get("variables") or {}
    if isinstance(variables, str):
        variables = json.loads(variables or "{}")
    if not isinstance(variables, dict):
        raise GraphQLError("Variables must be an object")
    return document, operation_of(document, body.get("operationName")), variables


def _resolver(context: _Context) -> Callable[..., Any]:
    """graphql-core's field resolver over the emulator's nodes: dicts whose lazy fields are
    callables taking (arguments, path); it tallies Shopify's actual cost as it goes (an object
    1, a connection 2; edges and pageInfo nothing)."""
    def resolve(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
        value = source.get(info.field_name) if isinstance(source, dict) else None
        if callable(value):
            value = value(args, info.path.as_list())
        kind = get_named_type(info.return_type)
        if value is not None and not is_leaf_type(kind):
            if kind.name.endswith("Connection"):
                context.cost += 2
            elif not kind.name.endswith("Edge") and kind.name != "PageInfo":
                context.cost += len(value) if isinstance(value, list) else 1
        return value
    return resolve


def _is_throttled(body: dict[str, Any]) -> bool:
    errors = body.get("errors")
    return isinstance(errors, list) and bool(errors) and isinstance(errors[0], dict) and \
        errors[0].get("extensions", {}).get("code") == "THROTTLED"


_HIGH = float("inf")
_SORT_FIELD = {"ID": "id", "CREATED_AT": "created_at", "PROCESSED_AT": "processed_at",
               "UPDATED_AT": "updated_at"}
_SORT_KIND = {"ID": "id", "CREATED_AT": "time", "UPDATED_AT": "time", "PROCESSED_AT": "time",
              "NAME": "text", "TITLE": "text"}


def _sort_value(row: _Row, sort: str) -> Any:
    if sort in ("CREATED_AT", "PROCESSED_AT"):
        return row.created
    if sort == "UPDATED_AT":
        return row.updated
    if sort in ("NAME", "TITLE"):
        return row.name
    return row.id


def _order_rows(rows: list[_Row], sort: str) -> tuple[list, list[_Row]]:
    keyed = sorted(((_sort_value(r, sort), r.id), r) for r in rows)
    return [k for k, _ in keyed], [r for _, r in keyed]


def _encode_cursor(key: tuple[Any, int], sort: str) -> str:
    value, number = key
    if isinstance(value, datetime):
        text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    else:
        text = str(value)
    raw = json.dumps({"last_id": number, "last_value": text}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def _decode_cursor(cursor: Any, sort: str, path: list) -> tuple[Any, int]:
    try:
        raw = json.loads(base64.b64decode(str(cursor), validate=True))
        number, text = raw["last_id"], raw["last_value"]
        if not isinstance(number, int) or not isinstance(text, str):
            raise ValueError
        kind = _SORT_KIND.get(sort, "id")
        if kind == "id":
            if int(text) != number:
                raise ValueError
            return number, number
        if kind == "time":
            return parse_time(text), number
        return text, number
    except (ValueError, KeyError, TypeError):
        raise _fail("Invalid cursor for current pagination sort.") from None


def _term(name: str, op: str,
          value: str) -> tuple[Callable[[_Row], bool], Any] | None:
    """One search term as (test, the value it compares with), or None when it won't parse."""
    compare = {"": lambda a, b: a == b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
               "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}[op]
    if name == "status":
        wanted = {part.strip().upper() for part in value.split(",")}
        everything = value.lower() in ("any", "closed")
        # A product's status is one of a list; an order's any/closed matches every order.
        return (lambda row: row.search["status"] in wanted if "status" in row.search
                else everything), None
    if name == "sku":
        return (lambda row: compare(row.search.get("sku"), value)), None
    if name == "id":
        if not value.isdigit():
            return None
        number = int(value)
        return (lambda row: compare(row.id, number)), number
    try:
        moment = _search_time(value)
    except ValueError:
        return None
    if name == "updated_at":
        return (lambda row: compare(row.updated, moment)), moment
    return (lambda row: compare(row.created, moment)), moment


def _always(row: _Row) -> bool:
    return True


def _take(positions: range | Any, rows: list[_Row], wanted: Callable[[_Row], bool],
          count: int) -> list[int]:
    """The first `count` positions whose row is wanted."""
    out: list[int] = []
    if count <= 0:
        return out
    for i in positions:
        if wanted(rows[i]):
            out.append(i)
            if len(out) >= count:
                break
    return out
