"""Square (POS) emulator: the PanPan shops as Square locations, sales as Orders, loyalty
customers as Customers, products as catalog ITEMs and stock counts as InventoryCounts.

Contract: Square's API reference (developer.squareup.com/reference/square: Locations,
Orders SearchOrders, Customers SearchCustomers, Catalog SearchCatalogObjects, Inventory
BatchRetrieveInventoryCounts, OAuth ObtainToken and RetrieveTokenStatus; build-basics for
versioning, pagination and errors) and its OpenAPI document (square/connect-api-specification
api.json, Release 2025-08-20), which tests/test_contract_square.py holds every answer to:

- Auth: `Authorization: Bearer <token>`; the constructor's `token` is a personal access token
  (never expires). `POST /oauth2/token` (grant_type=refresh_token) issues OAuth access tokens
  that expire 30 days later on the emulator clock (then 401 ACCESS_TOKEN_EXPIRED) and rotates
  the refresh token: the old one stops working at once. Rotation is what Square does for PKCE
  clients (code-flow refresh tokens are long-lived); the brief asks for rotation.
  `POST /oauth2/token/status` (RetrieveTokenStatus) tells a token's scopes and, for an OAuth
  token, its expires_at.
- `Square-Version: YYYY-MM-DD` is echoed on every 2xx; absent, the app's pinned version
  (`square_version`) is used; a malformed or impossible date is 400
  INVALID_SQUARE_VERSION_FORMAT. Any real calendar date is accepted (we cannot list every
  release).
- Errors: `{"errors": [{"category", "code", "detail", "field"?}]}` with the matching status.
  Unknown body fields are 400 UNKNOWN_BODY_PARAMETER, unknown query parameters 400
  UNKNOWN_QUERY_PARAMETER, wrong JSON types EXPECTED_* (Square's codes). Known Square
  parameters the emulator does not implement are 400 BAD_REQUEST saying so, never ignored.
- Pagination: a top-level `cursor` only while more results remain. The cursor is opaque and
  keyset-based (it remembers the last sort key, so a page boundary survives inserts before it)
  and is bound to the request it came from: the same body without `cursor`/`limit` must come
  with it, else 400 INVALID_VALUE on `cursor`. A garbled cursor, or an injected
  `expired_cursor` fault, is 400 INVALID_REQUEST_ERROR / INVALID_CURSOR (our choice: Square
  documents the code, not when cursors expire). Empty results omit the list, as Square does
  (`{}`).
- Clock: orders exist from sold_at, customers from signed_up, inventory counts from
  counted_at, locations from opened_on; the catalog exists from the first shop's opening.
  A `RET-` receipt is a new order (returns[].source_order_id = the original's id); once the
  return exists (now >= its time) the original order's updated_at/version move to it and it
  shows the refund.
- 429 is `RATE_LIMITED` / `RATE_LIMIT_ERROR` with no Retry-After: Square never sends one, so
  an injected fault's retry_after is ignored.

Data mapping: location `description` = PanPan shop_id; order `reference_id` = receipt_no,
one `OTHER` tender per sale (the exports do not say cash or card), no taxes (prices are
VAT-inclusive and the exports carry no rate); customer `reference_id` = PanPan customer_id,
`creation_source` THIRD_PARTY, version 0 until edited; one ITEM per product with one
"Regular" variation (sku, price_money, reorder point as the LOW_QUANTITY alert threshold),
catalog versions are epoch milliseconds of updated_at. Ids are stable hashes of PanPan keys;
`locations`, `customer_ids`, `item_ids`, `variation_ids` and `order_id()` map them.

SearchCustomers reads an index that lags behind edits ("newly created or updated customer
profiles become available for the search operation in well under 30 seconds... can take
closer to one minute or longer", developer.squareup.com/reference/square/customers-api/
search-customers): `touch("customers", id, at, search_lag=...)` makes an edit show in
SearchCustomers that much later than in ListCustomers.

touch(resource, record_id, at) resources (edits take effect once now >= at):
  "orders"     Square order id or PanPan receipt_no
  "customers"  Square customer id or PanPan customer_id
  "catalog"    item id, variation id or sku (alias "items"); the item and its variation move
  "variations" the same ids: the variation alone moves (its version and updated_at; the
               item's stay, as when only a variation is edited); so does
               set_location_threshold(sku, shop_id, threshold, at), which gives the variation
               a location override with its own inventory_alert_threshold
  "inventory"  "<shop_id or location id>/<sku or variation id>": a recount, same quantity
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import heapq
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from .base import Emulator, Request, Response, parse_time, rfc3339
from .panpan import PARIS, Customer, Order, PanPanData, Product

CURRENCY = "EUR"
# The permissions a read-only connector needs (OAuth permissions reference): locations,
# orders, customers, the catalog and inventory.
READ_SCOPES = ("MERCHANT_PROFILE_READ", "ORDERS_READ", "CUSTOMERS_READ", "ITEMS_READ",
               "INVENTORY_READ")
TOKEN_LIFETIME = timedelta(days=30)  # [U] in the doc; Square's documented OAuth lifetime
ORDERS_LIMIT = (500, 1000)  # (default, max) for SearchOrders
CUSTOMERS_LIMIT = (100, 100)
CATALOG_LIMIT = (1000, 1000)  # out-of-range limits are ignored by Square, not rejected
INVENTORY_LIMIT = (1000, 1000)  # BatchRetrieveInventoryCounts: default and max 1000
SOURCE_NAMES = {"en_boutique": "Boutique", "livraison": "Livraison"}
ORDER_STATES = ("OPEN", "COMPLETED", "CANCELED", "DRAFT")
ORDER_SORT_FIELDS = ("CREATED_AT", "UPDATED_AT", "CLOSED_AT")
INVENTORY_STATES = (
    "CUSTOM", "IN_STOCK", "SOLD", "RETURNED_BY_CUSTOMER", "RESERVED_FOR_SALE", "SOLD_ONLINE",
    "ORDERED_FROM_VENDOR", "RECEIVED_FROM_VENDOR", "IN_TRANSIT_TO", "NONE", "WASTE",
    "UNLINKED_RETURN", "COMPOSED", "DECOMPOSED", "SUPPORTED_BY_NEWER_VERSION", "IN_TRANSIT",
)
CATALOG_TYPES = (
    "ITEM", "IMAGE", "CATEGORY", "ITEM_VARIATION", "TAX", "DISCOUNT", "MODIFIER_LIST",
    "MODIFIER", "PRICING_RULE", "PRODUCT_SET", "TIME_PERIOD", "MEASUREMENT_UNIT",
    "SUBSCRIPTION_PLAN", "ITEM_OPTION", "ITEM_OPTION_VAL", "CUSTOM_ATTRIBUTE_DEFINITION",
    "QUICK_AMOUNTS_SETTINGS", "SUBSCRIPTION_PLAN_VARIATION", "AVAILABILITY_PERIOD",
)
_CATEGORY = {400: "INVALID_REQUEST_ERROR", 401: "AUTHENTICATION_ERROR",
             403: "AUTHENTICATION_ERROR", 404: "INVALID_REQUEST_ERROR",
             405: "INVALID_REQUEST_ERROR", 429: "RATE_LIMIT_ERROR"}
_SERVER_CODES = {500: "INTERNAL_SERVER_ERROR", 501: "NOT_IMPLEMENTED", 502: "BAD_GATEWAY",
                 503: "SERVICE_UNAVAILABLE", 504: "GATEWAY_TIMEOUT"}
_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_END = "\U0010ffff"


class SquareError(Exception):
    """A request Square refuses: raised anywhere in routing, answered as its error envelope."""

    def __init__(self, status: int, code: str, detail: str, field: str | None = None,
                 category: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.field = status, code, detail, field
        self.category = category or _CATEGORY.get(status, "API_ERROR")

    def response(self) -> Response:
        error = {"category": self.category, "code": self.code, "detail": self.detail}
        if self.field:
            error["field"] = self.field
        return Response(self.status, {"errors": [error]})


def _bad(code: str, detail: str, field: str | None = None) -> SquareError:
    return SquareError(400, code, detail, field)


# --- ids, money and time ------------------------------------------------------------------

def _opaque(kind: str, key: str, length: int) -> str:
    """A stable Square-looking id (upper-case alphanumerics) for a PanPan key."""
    return hashlib.sha256(f"panpan:{kind}:{key}".encode()).hexdigest()[:length].upper()


def _order_id(receipt_no: str) -> str:
    """Order ids are mixed-case, 27 characters, like Square's."""
    digest = hashlib.sha256(f"panpan:order:{receipt_no}".encode()).digest()
    text = base64.b64encode(digest).decode()
    return text.replace("+", "x").replace("/", "y")[:27]


def money(amount: Decimal) -> dict[str, Any]:
    """Square Money: integer minor units (cents for EUR) and the currency, exactly."""
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} EUR is not a whole number of cents")
    return {"amount": int(cents), "currency": CURRENCY}


def _us(moment: datetime) -> int:
    """Microseconds since the epoch: the exact, comparable form of a time in sort keys."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _ms(moment: datetime) -> datetime:
    """Square keeps milliseconds; trimming edits to them keeps filters and output consistent."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _qty(value: Decimal | int) -> str:
    """Quantities are decimal strings ("2", "1.5"), never numbers."""
    text = format(Decimal(value).normalize(), "f")
    return "0" if text in ("-0", "") else text


def _paris_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)


# --- request validation -------------------------------------------------------------------

def _object(value: Any, where: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad("EXPECTED_OBJECT", f"Expected an object for `{where or 'body'}`.", where)
    for key in value:
        if key not in allowed:
            name = f"{where}.{key}" if where else key
            raise _bad("UNKNOWN_BODY_PARAMETER", f"Unknown field `{name}`.", name)
    return value


def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = obj.get(key)
    name = f"{where}.{key}" if where else key
    if value is None:
        return None
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise _bad("EXPECTED_INTEGER", f"Expected an integer for `{name}`.", name)
    if kind is bool and not isinstance(value, bool):
        raise _bad("EXPECTED_BOOLEAN", f"Expected a boolean for `{name}`.", name)
    if kind is str and not isinstance(value, str):
        raise _bad("EXPECTED_STRING", f"Expected a string for `{name}`.", name)
    if kind is list:
        if not isinstance(value, list):
            raise _bad("EXPECTED_ARRAY", f"Expected an array for `{name}`.", name)
        if not all(isinstance(item, str) for item in value):
            raise _bad("INVALID_ARRAY_VALUE", f"Expected strings in `{name}`.", name)
    if kind is dict and not isinstance(value, dict):
        raise _bad("EXPECTED_OBJECT", f"Expected an object for `{name}`.", name)
    return value


def _limit(value: Any, bounds: tuple[int, int], name: str = "limit") -> int:
    default, maximum = bounds
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad("EXPECTED_INTEGER", f"Expected an integer for `{name}`.", name)
    if value > maximum:
        raise _bad("VALUE_TOO_HIGH",
                   f"The value of `{name}` must be at most {maximum}, got {value}.", name)
    if value < 1:
        raise _bad("VALUE_TOO_LOW", f"The value of `{name}` must be at least 1, got {value}.",
                   name)
    return value


def _time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise _bad("EXPECTED_STRING", f"Expected an RFC 3339 string for `{name}`.", name)
    try:
        moment = parse_time(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or "T" not in value:
        raise _bad("INVALID_TIME", f"`{name}` is not an RFC 3339 timestamp: {value!r}.", name)
    return moment.astimezone(UTC)


def _range(value: Any, name: str) -> tuple[datetime | None, datetime | None]:
    """A Square TimeRange {start_at, end_at}; either end may be missing."""
    obj = _object(value, name, ("start_at", "end_at"))
    start = _time(obj["start_at"], f"{name}.start_at") if obj.get("start_at") else None
    end = _time(obj["end_at"], f"{name}.end_at") if obj.get("end_at") else None
    if start and end and end < start:
        raise _bad("INVALID_TIME_RANGE", f"`{name}.end_at` is before `{name}.start_at`.", name)
    return start, end


def _enum(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise _bad("INVALID_ENUM_VALUE",
                   f"`{name}` must be one of {', '.join(allowed)}; got {value!r}.", name)
    return value


def _unsupported(name: str) -> SquareError:
    return _bad("BAD_REQUEST", f"`{name}` is a Square parameter this emulator does not "
                               "implement.", name)


# --- cursors ------------------------------------------------------------------------------

def _digest(request_body: dict[str, Any]) -> str:
    same = {k: v for k, v in request_body.items() if k not in ("cursor", "limit")}
    return hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()[:20]


def _encode_cursor(endpoint: str, digest: str, key: list[Any], anchor: int) -> str:
    raw = json.dumps({"e": endpoint, "q": digest, "k": key, "a": anchor},
                     separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass
class _Cursor:
    key: tuple[Any, ...] | None = None  # the last sort key served
    anchor: int | None = None  # microseconds: now at the chain's first request


def _decode_cursor(token: Any, endpoint: str, digest: str) -> _Cursor:
    if token is None:
        return _Cursor()
    if not isinstance(token, str) or not token:
        raise _bad("INVALID_CURSOR", "The pagination cursor is invalid.", "cursor")
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        key, anchor, issued_for, query = data["k"], int(data["a"]), data["e"], data["q"]
    except (ValueError, KeyError, TypeError):
        raise _bad("INVALID_CURSOR", "The pagination cursor is invalid.", "cursor") from None
    if issued_for != endpoint or not isinstance(key, list):
        raise _bad("INVALID_CURSOR", "The pagination cursor is invalid.", "cursor")
    if query != digest:
        raise _bad("INVALID_VALUE", "A cursor must come with the same query as the request "
                                    "that returned it.", "cursor")
    return _Cursor(tuple(key), anchor)


def _after(rows: list[tuple[tuple[Any, ...], Any]], cursor: _Cursor,
           desc: bool) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Rows (already in serving order) strictly past the cursor's key."""
    for key, row in rows:
        if cursor.key is None or (key < cursor.key if desc else key > cursor.key):
            yield key, row


# --- the emulator -------------------------------------------------------------------------

@dataclass
class _OrderInfo:
    order: Order
    id: str
    location_id: str
    sold_us: int
    returns: list[Order] = field(default_factory=list)  # RET- orders against this one


class SquareEmulator(Emulator):
    """Square's v2 API over PanPan data; see the module docstring for the contract."""

    name = "square"

    def __init__(self, data: PanPanData, *, token: str = "emulator-token",
                 now: datetime | None = None, square_version: str = "2025-01-23",
                 client_id: str = "sq0idp-panpan-emulator",
                 client_secret: str = "sq0csp-panpan-emulator-secret",
                 refresh_token: str = "EQAA-panpan-emulator-refresh",
                 scopes: tuple[str, ...] = READ_SCOPES) -> None:
        super().__init__(token=token, now=now)
        self.scopes = scopes
        self.data = data
        self._order_cache: dict[str, tuple[Any, bytes]] = {}
        self.square_version = square_version
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.merchant_id = "ML" + _opaque("merchant", "panpan", 11)
        self._state = threading.Lock()
        self._access_tokens: dict[str, datetime] = {}  # OAuth access token -> expires_at
        self._thresholds: dict[tuple[str, str], tuple[datetime, int]] = {}  # (sku, shop)
        self._touches: dict[tuple[str, str], list[datetime]] = {}
        # Customer edits reach SearchCustomers' index later than ListCustomers: edit -> when.
        self._indexed: dict[tuple[str, str, datetime], datetime] = {}

        self.locations = {s.shop_id: "L" + _opaque("location", s.shop_id, 12)
                          for s in data.shops}
        self._shop_of = {lid: shop for shop, lid in self.locations.items()}
        self._shops = {s.shop_id: s for s in data.shops}
        self.products = {p.sku: p for p in data.products}
        self.item_ids = {p.sku: _opaque("item", p.sku, 24) for p in data.products}
        self.variation_ids = {p.sku: _opaque("variation", p.sku, 24) for p in data.products}
        self._sku_of = {v: sku for sku, v in self.variation_ids.items()}
        self._sku_of.update({v: sku for sku, v in self.item_ids.items()})
        self.category_ids = {c: _opaque("category", c, 24)
                             for c in sorted({p.category for p in data.products})}
        # The catalog was set up when the first shop opened.
        self.catalog_created = _paris_midnight(min(s.opened_on for s in data.shops)) \
            if data.shops else datetime(2020, 1, 1, tzinfo=UTC)

        self.customer_ids = {c.customer_id: _opaque("customer", c.customer_id, 26)
                             for c in data.customers}
        self._customers = {self.customer_ids[c.customer_id]: c for c in data.customers}

        self._orders: dict[str, _OrderInfo] = {}
        self._receipt_ids: dict[str, str] = {}
        for order in data.orders:
            oid = _order_id(order.receipt_no)
            self._receipt_ids[order.receipt_no] = oid
            self._orders[oid] = _OrderInfo(order, oid, self.locations.get(order.shop_id, ""),
                                           _us(order.sold_at))
        for order in data.orders:
            if order.is_return:
                original = self._receipt_ids.get(order.receipt_no[4:])
                if original is not None:
                    self._orders[original].returns.append(order)
        self._by_sold = sorted((info.sold_us, oid) for oid, info in self._orders.items())
        self._updated_later = [oid for oid, info in self._orders.items()
                          if info.returns or info.order.cancelled_at is not None]
        if len({*self.item_ids.values(), *self.variation_ids.values()}) != 2 * len(
                self.products) or len(self._orders) != len(data.orders):
            raise ValueError("id collision in the Square emulator's derived ids")

        self._counts: dict[tuple[str, str], list[tuple[datetime, int]]] = {}
        for count in data.stock_counts:
            self._counts.setdefault((count.shop_id, count.sku), []).append(
                (count.counted_at, count.on_hand))
        for series in self._counts.values():
            series.sort()

    # --- public helpers -------------------------------------------------------------------

    def order_id(self, receipt_no: str) -> str:
        """The Square order id serving a PanPan receipt (also for unknown receipts)."""
        return self._receipt_ids.get(receipt_no) or _order_id(receipt_no)

    def touch(self, resource: str, record_id: str, at: datetime,
              search_lag: timedelta = timedelta(0)) -> None:
        """Edit a record at `at`: once now >= at its updated_at/version move and incremental
        queries return it again; SearchCustomers sees a customer edit `search_lag` later.
        Resources: see the module docstring."""
        kind, key = self._touch_key(resource, record_id)
        moment = _ms(at.astimezone(UTC))
        with self._state:
            self._touches.setdefault((kind, key), []).append(moment)
            self._indexed[(kind, key, moment)] = moment + search_lag

    def _touch_key(self, resource: str, record_id: str) -> tuple[str, str]:
        if resource == "orders":
            oid = self._receipt_ids.get(record_id, record_id)
            if oid in self._orders:
                return "orders", oid
        elif resource == "customers":
            cid = self.customer_ids.get(record_id, record_id)
            if cid in self._customers:
                return "customers", cid
        elif resource in ("catalog", "items", "variations"):
            sku = record_id if record_id in self.products else self._sku_of.get(record_id)
            if sku:
                return ("variation" if resource == "variations" else "catalog"), sku
        elif resource in ("inventory", "inventory_counts"):
            where, _, what = record_id.partition("/")
            shop = where if where in self.locations else self._shop_of.get(where)
            sku = what if what in self.products else self._sku_of.get(what)
            if shop and sku:
                return "inventory", f"{shop}/{sku}"
        else:
            raise ValueError(f"unknown resource {resource!r}; one of orders, customers, "
                             "catalog, variations, inventory")
        raise KeyError(f"no {resource} record {record_id!r}")

    def _edits(self, kind: str, key: str, search: bool = False) -> list[datetime]:
        """The edits of a record that have happened by now (that search has indexed)."""
        with self._state:
            return [t for t in self._touches.get((kind, key), ())
                    if (self._indexed.get((kind, key, t), t) if search else t) <= self.now]

    # --- auth and dispatch ----------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        if request.path == "/oauth2/token":
            return True  # authenticated by client_secret and refresh_token in the body
        token = self._bearer(request)
        if token is None:
            return False
        if token == self.token:
            return True
        with self._state:
            expires = self._access_tokens.get(token)
        return expires is not None and self.now < expires

    @staticmethod
    def _bearer(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def unauthorized(self, request: Request) -> Response:
        token = self._bearer(request)
        with self._state:
            expires = self._access_tokens.get(token or "")
        if expires is not None and self.now >= expires:
            return SquareError(401, "ACCESS_TOKEN_EXPIRED",
                               "The access token has expired.").response()
        if "authorization" not in request.headers:
            return SquareError(401, "UNAUTHORIZED", "Your request did not include an "
                               "`Authorization` http header with an access token.").response()
        return SquareError(401, "UNAUTHORIZED",
                           "This request could not be authorized.").response()

    def rate_limited(self, request: Request, retry_after: float | None) -> Response:
        # Square sends no Retry-After, whatever the fault asks for.
        return SquareError(429, "RATE_LIMITED",
                           "This request was rate limited. Please retry later.").response()

    def server_error(self, request: Request, status: int) -> Response:
        code = _SERVER_CODES.get(status, "INTERNAL_SERVER_ERROR")
        return SquareError(status, code, "An internal error has occurred, and the API was "
                           "unable to service your request.", category="API_ERROR").response()

    def expired_cursor(self, request: Request) -> Response:
        return _bad("INVALID_CURSOR", "The pagination cursor is invalid or has expired.",
                    "cursor").response()

    def route(self, request: Request) -> Response:
        try:
            version = self._version(request)
            response = self._dispatch(request)
        except SquareError as error:
            return error.response()
        if 200 <= response.status < 300:
            response.headers["Square-Version"] = version
        return response

    def _version(self, request: Request) -> str:
        version = request.headers.get("square-version")
        if version is None:
            return self.square_version
        try:
            ok = bool(_VERSION_RE.match(version)) and bool(date.fromisoformat(version))
        except ValueError:
            ok = False
        if not ok:
            raise _bad("INVALID_SQUARE_VERSION_FORMAT",
                       f"Invalid Square-Version format: {version!r}; expected YYYY-MM-DD.")
        return version

    def _dispatch(self, request: Request) -> Response:
        routes: dict[str, tuple[str, Callable[[Request], Response]]] = {
            "/v2/locations": ("GET", self._list_locations),
            "/v2/orders/search": ("POST", self._search_orders),
            "/v2/customers/search": ("POST", self._search_customers),
            "/v2/customers": ("GET", self._list_customers),
            "/v2/catalog/search": ("POST", self._search_catalog),
            "/v2/inventory/counts/batch-retrieve": ("POST", self._inventory_counts),
            "/oauth2/token": ("POST", self._obtain_token),
            "/oauth2/token/status": ("POST", self._token_status),
        }
        path = request.path.rstrip("/") or "/"
        if path.startswith("/v2/locations/") and path.count("/") == 3:
            method, handler = "GET", self._retrieve_location
        elif path in routes:
            method, handler = routes[path]
        else:
            raise SquareError(404, "NOT_FOUND", f"Resource not found: {request.path}.")
        if request.method != method:
            raise SquareError(405, "METHOD_NOT_ALLOWED",
                              f"{request.method} is not allowed on {request.path}.")
        return handler(request)

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.body) if request.body else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _bad("EXPECTED_JSON_BODY", "The request body is not a JSON object.")
        return body

    @staticmethod
    def _query(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
        for name in request.query:
            if name not in allowed:
                raise _bad("UNKNOWN_QUERY_PARAMETER", f"Unknown query parameter `{name}`.",
                           name)
        return {k: v[0] for k, v in request.query.items()}

    # --- OAuth ----------------------------------------------------------------------------

    def _obtain_token(self, request: Request) -> Response:
        """ObtainToken, refresh grant only. JSON as Square documents; a form-encoded body is
        accepted too since generic OAuth clients send one."""
        if request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"):
            body: dict[str, Any] = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        else:
            body = self._body(request)
        _object(body, "", ("client_id", "client_secret", "grant_type", "refresh_token",
                           "code", "redirect_uri", "scopes", "short_lived", "code_verifier",
                           "migration_token"))
        for name in ("client_id", "grant_type"):
            if not body.get(name):
                raise _bad("MISSING_REQUIRED_PARAMETER", f"Missing required parameter "
                                                         f"`{name}`.", name)
        grant = body["grant_type"]
        if grant != "refresh_token":
            if grant in ("authorization_code", "migration_token"):
                raise _unsupported(f"grant_type={grant}")
            raise _bad("INVALID_VALUE", f"Unsupported grant_type {grant!r}.", "grant_type")
        if not body.get("refresh_token"):
            raise _bad("MISSING_REQUIRED_PARAMETER",
                       "Missing required parameter `refresh_token`.", "refresh_token")
        if body["client_id"] != self.client_id or body.get("client_secret") != \
                self.client_secret:
            raise SquareError(401, "UNAUTHORIZED", "Invalid client_id or client_secret.")
        with self._state:
            if body["refresh_token"] != self.refresh_token:
                raise SquareError(401, "UNAUTHORIZED", "The refresh token is invalid, expired "
                                                       "or already used.")
            access = "EAAA" + secrets.token_urlsafe(45)
            expires = _ms(self.now) + TOKEN_LIFETIME
            self._access_tokens[access] = expires
            self.refresh_token = "EQAA" + secrets.token_urlsafe(45)
            refresh = self.refresh_token
        return Response(200, {
            "access_token": access, "token_type": "bearer",
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "merchant_id": self.merchant_id, "refresh_token": refresh,
            "short_lived": False,
            "refresh_token_expires_at": (_ms(self.now) + timedelta(days=90)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
        })

    def issue_access_token(self, expires_at: datetime) -> str:
        """An OAuth access token as ObtainToken would have issued it, expiring at `expires_at`
        on the emulator clock (a test's token that is already, or soon, expired)."""
        access = "EAAA" + secrets.token_urlsafe(45)
        with self._state:
            self._access_tokens[access] = _ms(expires_at.astimezone(UTC))
        return access

    def _token_status(self, request: Request) -> Response:
        """RetrieveTokenStatus: the token's scopes, and its expiry for an OAuth token (a
        personal access token has none)."""
        token = self._bearer(request) or ""
        with self._state:
            expires = self._access_tokens.get(token)
        answer: dict[str, Any] = {"scopes": list(self.scopes), "client_id": self.client_id,
                                  "merchant_id": self.merchant_id}
        if expires is not None:
            answer["expires_at"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        return Response(200, answer)

    # --- locations ------------------------------------------------------------------------

    def _location(self, shop_id: str) -> dict[str, Any]:
        shop = self._shops[shop_id]
        return {
            "id": self.locations[shop_id], "name": shop.name,
            "address": {"locality": shop.city, "country": "FR"},
            "timezone": "Europe/Paris", "capabilities": ["CREDIT_CARD_PROCESSING"],
            "status": "ACTIVE", "created_at": rfc3339(_paris_midnight(shop.opened_on)),
            "merchant_id": self.merchant_id, "country": "FR", "language_code": "fr-FR",
            "currency": CURRENCY, "business_name": "PanPan", "type": "PHYSICAL",
            "description": shop_id,
        }

    def _open_shops(self) -> list[str]:
        return [s.shop_id for s in self.data.shops
                if _paris_midnight(s.opened_on) <= self.now]

    def _list_locations(self, request: Request) -> Response:
        """ListLocations: every location in one response, no cursor."""
        self._query(request, ())
        return Response(200, {"locations": [self._location(s) for s in self._open_shops()]})

    def _retrieve_location(self, request: Request) -> Response:
        self._query(request, ())
        shop = self._shop_of.get(request.path.rstrip("/").rsplit("/", 1)[1])
        if shop is None or shop not in self._open_shops():
            raise SquareError(404, "NOT_FOUND", "Location not found.")
        return Response(200, {"location": self._location(shop)})

    def _location_filter(self, ids: list[str] | None, name: str) -> set[str]:
        if ids is None:
            return set(self._shop_of)
        open_ids = {self.locations[s] for s in self._open_shops()}
        for lid in ids:
            if lid not in open_ids:
                raise _bad("INVALID_VALUE", f"Location `{lid}` not found.", name)
        return set(ids)

    # --- orders ---------------------------------------------------------------------------

    def _order_updated(self, info: _OrderInfo) -> tuple[datetime, int]:
        """updated_at and version now: creation, then each return and edit that happened."""
        events = [r.sold_at for r in info.returns if r.sold_at <= self.now]
        if self._order_state(info) == "CANCELED":
            events.append(info.order.cancelled_at)  # type: ignore[arg-type]
        events += self._edits("orders", info.id)
        updated = max([info.order.sold_at, *events])
        return updated, 1 + len(events)

    def _search_orders(self, request: Request) -> Response:
        body = _object(self._body(request), "", ("location_ids", "cursor", "query", "limit",
                                                 "return_entries"))
        ids = _get(body, "location_ids", list, "")
        if ids is None:
            raise _bad("MISSING_REQUIRED_PARAMETER",
                       "Missing required parameter `location_ids`.", "location_ids")
        if not ids:
            raise _bad("ARRAY_EMPTY", "`location_ids` must not be empty.", "location_ids")
        if len(ids) > 10:
            raise _bad("ARRAY_LENGTH_TOO_LONG", "Cannot provide more than 10 location_ids.",
                       "location_ids")
        locations = self._location_filter(ids, "location_ids")
        limit = _limit(body.get("limit"), ORDERS_LIMIT)
        entries = bool(_get(body, "return_entries", bool, ""))
        query = _object(body.get("query") or {}, "query", ("filter", "sort"))
        filt = _object(query.get("filter") or {}, "query.filter",
                       ("state_filter", "date_time_filter", "customer_filter", "source_filter",
                        "fulfillment_filter"))
        if filt.get("fulfillment_filter") is not None:
            raise _unsupported("query.filter.fulfillment_filter")
        sort = _object(query.get("sort") or {}, "query.sort", ("sort_field", "sort_order"))
        sort_field = _enum(_get(sort, "sort_field", str, "query.sort") or "CREATED_AT",
                           ORDER_SORT_FIELDS, "query.sort.sort_field")
        desc = _enum(_get(sort, "sort_order", str, "query.sort") or "DESC", ("ASC", "DESC"),
                     "query.sort.sort_order") == "DESC"
        states = None
        if filt.get("state_filter") is not None:
            state_filter = _object(filt["state_filter"], "query.filter.state_filter",
                                   ("states",))
            states = _get(state_filter, "states", list, "query.filter.state_filter")
            if not states:
                raise _bad("MISSING_REQUIRED_PARAMETER", "`states` is required.",
                           "query.filter.state_filter.states")
            for state in states:
                _enum(state, ORDER_STATES, "query.filter.state_filter.states")
        if sort_field == "CLOSED_AT" and states and set(states) - {"COMPLETED", "CANCELED"}:
            raise _bad("INVALID_VALUE", "Sorting by CLOSED_AT needs a state_filter of "
                                        "COMPLETED or CANCELED orders only.", "query.sort")
        window: tuple[datetime | None, datetime | None] = (None, None)
        if filt.get("date_time_filter") is not None:
            dtf = _object(filt["date_time_filter"], "query.filter.date_time_filter",
                          ("created_at", "updated_at", "closed_at"))
            for name in ("created_at", "updated_at", "closed_at"):
                if dtf.get(name) is None:
                    continue
                if name.upper() != sort_field:
                    raise _bad("INVALID_VALUE", f"The date_time_filter field `{name}` must "
                               f"match query.sort.sort_field (got {sort_field}).",
                               "query.sort.sort_field")
                window = _range(dtf[name], f"query.filter.date_time_filter.{name}")
        customers = sources = None
        if filt.get("customer_filter") is not None:
            cf = _object(filt["customer_filter"], "query.filter.customer_filter",
                         ("customer_ids",))
            customers = set(_get(cf, "customer_ids", list, "query.filter.customer_filter")
                            or ())
        if filt.get("source_filter") is not None:
            sf = _object(filt["source_filter"], "query.filter.source_filter",
                         ("source_names",))
            sources = set(_get(sf, "source_names", list, "query.filter.source_filter") or ())

        digest = _digest(body)
        cursor = _decode_cursor(body.get("cursor"), "orders", digest)
        anchor = cursor.anchor if cursor.anchor is not None else _us(self.now)
        low = _us(window[0]) if window[0] else None
        # A missing end_at means "up to the chain's first request", so later orders wait.
        high = min(_us(window[1]) if window[1] else anchor, _us(self.now))

        page: list[tuple[tuple[Any, ...], _OrderInfo]] = []
        more = False
        for key, info in self._order_stream(sort_field, desc, low, high, cursor.key):
            order = info.order
            if info.location_id not in locations:
                continue
            if states is not None and self._order_state(info) not in states:
                continue
            cid = self.customer_ids.get(order.customer_id)
            if customers is not None and cid not in customers:
                continue
            if sources is not None and self._source(order) not in sources:
                continue
            if len(page) == limit:
                more = True
                break
            page.append((key, info))
        result: dict[str, Any] = {}
        if more:
            result["cursor"] = _encode_cursor("orders", digest, list(page[-1][0]), anchor)
        if page and entries:
            result["order_entries"] = [
                {"order_id": info.id, "version": self._order_updated(info)[1],
                 "location_id": info.location_id} for _, info in page]
        elif page:
            # Orders are rendered once per version and their JSON reused: a full sync of two
            # years of PanPan (400k orders) would otherwise spend most of its time here.
            orders = b",".join(self._order_json(info) for _, info in page)
            rest = json.dumps(result, separators=(",", ":")).encode()[1:]
            return Response(200, b'{"orders":[' + orders + b"]" +
                            (b"," + rest if result else b"}"))
        return Response(200, result)

    def _order_state(self, info: _OrderInfo) -> str:
        """A sale called off before payment is CANCELED (Square cannot cancel a paid order:
        that is a refund); every other PanPan sale is COMPLETED."""
        cancelled = info.order.cancelled_at
        return "CANCELED" if cancelled is not None and cancelled <= self.now else "COMPLETED"

    def _order_json(self, info: _OrderInfo) -> bytes:
        version = self._order_updated(info)
        cached = self._order_cache.get(info.id)
        if cached is None or cached[0] != version:
            cached = (version, json.dumps(self._order(info), separators=(",", ":")).encode())
            self._order_cache[info.id] = cached
        return cached[1]

    def _order_stream(self, sort_field: str, desc: bool, low: int | None, high: int,
                      after: tuple[Any, ...] | None) -> Iterator[tuple[tuple[Any, ...],
                                                                        _OrderInfo]]:
        """Orders within [low, high] on the sort field, past the cursor key, in serving order.

        created_at and closed_at are the sale time, served by bisecting the sale-time index;
        updated_at equals it except for orders edited or returned since, which are merged in.
        """
        changed: dict[str, int] = {}
        if sort_field == "UPDATED_AT":
            with self._state:
                edited = {key for kind, key in self._touches if kind == "orders"}
            candidates = edited.union(self._updated_later)
            for oid in candidates:
                info = self._orders[oid]
                if info.sold_us <= _us(self.now):
                    updated = _us(self._order_updated(info)[0])
                    if updated != info.sold_us:
                        changed[oid] = updated
        keys = self._by_sold

        def static() -> Iterator[tuple[tuple[Any, ...], _OrderInfo]]:
            if desc:
                i = bisect.bisect_right(keys, (high, _END)) - 1
                if after is not None:
                    i = min(i, bisect.bisect_left(keys, tuple(after)) - 1)
                while i >= 0 and (low is None or keys[i][0] >= low):
                    if keys[i][1] not in changed:
                        yield keys[i], self._orders[keys[i][1]]
                    i -= 1
            else:
                i = bisect.bisect_left(keys, (low, "")) if low is not None else 0
                if after is not None:
                    i = max(i, bisect.bisect_right(keys, tuple(after)))
                while i < len(keys) and keys[i][0] <= high:
                    if keys[i][1] not in changed:
                        yield keys[i], self._orders[keys[i][1]]
                    i += 1

        moved = sorted(((us, oid), self._orders[oid]) for oid, us in changed.items()
                       if (low is None or us >= low) and us <= high)
        if desc:
            moved.reverse()
        moved = list(_after(moved, _Cursor(after), desc))
        return heapq.merge(static(), moved, key=lambda pair: pair[0], reverse=desc)

    @staticmethod
    def _source(order: Order) -> str:
        return SOURCE_NAMES.get(order.channel, order.channel.replace("_", " ").title())

    def _line_uid(self, receipt_no: str, line_no: int) -> str:
        return _opaque("line", f"{receipt_no}#{line_no}", 22)

    def _catalog_refs(self, sku: str) -> dict[str, Any]:
        if sku not in self.products:
            return {}
        return {"catalog_object_id": self.variation_ids[sku],
                "catalog_version": _us(self.catalog_created) // 1000}

    def _order(self, info: _OrderInfo) -> dict[str, Any]:
        order = info.order
        updated, version = self._order_updated(info)
        zero = money(Decimal(0))
        total = order.total
        result: dict[str, Any] = {
            "id": info.id, "location_id": info.location_id, "reference_id": order.receipt_no,
            "source": {"name": self._source(order)},
        }
        cid = self.customer_ids.get(order.customer_id)
        if cid:
            result["customer_id"] = cid
        if order.is_return:
            return_total = -total
            discount = -sum((line.discount for line in order.lines), Decimal(0))
            original = self.order_id(order.receipt_no[4:])
            source_lines = {}
            if original in self._orders:
                source_lines = {line.sku: self._line_uid(self._orders[original].order.receipt_no,
                                                         line.line_no)
                                for line in self._orders[original].order.lines}
            items = []
            for line in order.lines:
                item = {
                    "uid": self._line_uid(order.receipt_no, line.line_no),
                    "name": line.name, "quantity": _qty(-line.quantity),
                    **self._catalog_refs(line.sku), "variation_name": "Regular",
                    "item_type": "ITEM",
                    "base_price_money": money(line.unit_price),
                    "gross_return_money": money(line.unit_price * -line.quantity),
                    "total_tax_money": zero, "total_discount_money": money(-line.discount),
                    "total_money": money(-line.line_total),
                }
                if line.sku in source_lines:
                    item["source_line_item_uid"] = source_lines[line.sku]
                items.append(item)
            result["returns"] = [{"uid": _opaque("return", order.receipt_no, 22),
                                  "source_order_id": original, "return_line_items": items}]
            result["return_amounts"] = self._amounts(return_total, discount)
            result["net_amounts"] = self._amounts(-return_total, -discount)
            totals = (Decimal(0), Decimal(0))
        else:
            result["line_items"] = [{
                "uid": self._line_uid(order.receipt_no, line.line_no),
                "name": line.name, "quantity": _qty(line.quantity),
                **self._catalog_refs(line.sku), "variation_name": "Regular",
                "item_type": "ITEM",
                "base_price_money": money(line.unit_price),
                "variation_total_price_money": money(line.unit_price * line.quantity),
                "gross_sales_money": money(line.unit_price * line.quantity),
                "total_tax_money": zero, "total_discount_money": money(line.discount),
                "total_money": money(line.line_total),
            } for line in order.lines]
            discount = sum((line.discount for line in order.lines), Decimal(0))
            totals = (total, discount)
            tender_id = _opaque("tender", order.receipt_no, 22)
            result["tenders"] = [{"id": tender_id, "location_id": info.location_id,
                                  "transaction_id": info.id, "created_at": rfc3339(order.sold_at),
                                  "amount_money": money(total), "type": "OTHER"}]
            returned = [r for r in info.returns if r.sold_at <= self.now]
            net = total
            if returned:
                refunded = sum((-r.total for r in returned), Decimal(0))
                refunded_discount = sum((-line.discount for r in returned for line in r.lines),
                                        Decimal(0))
                net -= refunded
                result["refunds"] = [{
                    "id": _opaque("refund", r.receipt_no, 22), "location_id": info.location_id,
                    "transaction_id": info.id, "tender_id": tender_id,
                    "created_at": rfc3339(r.sold_at), "reason": "Retour",
                    "amount_money": money(-r.total), "status": "APPROVED",
                } for r in returned]
                result["return_amounts"] = self._amounts(refunded, refunded_discount)
                result["net_amounts"] = self._amounts(net, discount - refunded_discount)
            else:
                result["net_amounts"] = self._amounts(net, discount)
        state = self._order_state(info)
        if state == "CANCELED":
            result.pop("tenders", None)
        result.update({
            "state": state, "version": version,
            "created_at": rfc3339(order.sold_at), "updated_at": rfc3339(updated),
            "closed_at": rfc3339(order.cancelled_at if state == "CANCELED" else order.sold_at),
            "total_money": money(totals[0]), "total_tax_money": zero,
            "total_discount_money": money(totals[1]), "total_tip_money": zero,
            "total_service_charge_money": zero, "net_amount_due_money": zero,
        })
        return result

    @staticmethod
    def _amounts(total: Decimal, discount: Decimal) -> dict[str, Any]:
        zero = money(Decimal(0))
        return {"total_money": money(total), "tax_money": zero,
                "discount_money": money(discount), "tip_money": zero,
                "service_charge_money": zero}

    # --- customers ------------------------------------------------------------------------

    def _customer_rows(self, sort_field: str, desc: bool,
                       keep: Callable[[Customer, datetime], bool], search: bool = False
                       ) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        rows = []
        for cid, customer in self._customers.items():
            if customer.signed_up > self.now:
                continue
            edits = self._edits("customers", cid, search)
            updated = max([customer.signed_up, *edits])
            if not keep(customer, updated):
                continue
            record = {
                "id": cid, "created_at": rfc3339(customer.signed_up),
                "updated_at": rfc3339(updated), "given_name": customer.first_name,
                "family_name": customer.last_name, "email_address": customer.email,
                "phone_number": customer.phone, "reference_id": customer.customer_id,
                "creation_source": "THIRD_PARTY", "version": len(edits),
            }
            if sort_field == "CREATED_AT":
                key: tuple[Any, ...] = (_us(customer.signed_up), cid)
            else:  # DEFAULT: by name, then email, then id
                key = (customer.first_name.casefold(), customer.last_name.casefold(),
                       customer.email.casefold(), cid)
            rows.append((key, record))
        rows.sort(key=lambda row: row[0], reverse=desc)
        return rows

    def _page(self, endpoint: str, digest: str, rows: list[tuple[tuple[Any, ...], Any]],
              cursor: _Cursor, desc: bool, limit: int, list_name: str,
              extra: dict[str, Any] | None = None) -> Response:
        remaining = list(_after(rows, cursor, desc))
        page = remaining[:limit]
        result: dict[str, Any] = {list_name: [row for _, row in page]} if page else {}
        if len(remaining) > limit:
            anchor = cursor.anchor if cursor.anchor is not None else _us(self.now)
            result["cursor"] = _encode_cursor(endpoint, digest, list(page[-1][0]), anchor)
        result.update(extra or {})
        return Response(200, result)

    def _search_customers(self, request: Request) -> Response:
        """SearchCustomers; time ranges include start_at and exclude end_at (as tap-square
        relies on); limit 1..100, default 100."""
        body = _object(self._body(request), "", ("cursor", "limit", "query", "count"))
        limit = _limit(body.get("limit"), CUSTOMERS_LIMIT)
        count = bool(_get(body, "count", bool, ""))
        query = _object(body.get("query") or {}, "query", ("filter", "sort"))
        filt = _object(query.get("filter") or {}, "query.filter",
                       ("created_at", "updated_at", "email_address", "phone_number",
                        "reference_id", "creation_source", "group_ids", "segment_ids",
                        "customer_ids"))
        for name in ("phone_number", "creation_source", "group_ids", "segment_ids",
                     "customer_ids"):
            if filt.get(name) is not None:
                raise _unsupported(f"query.filter.{name}")
        sort = _object(query.get("sort") or {}, "query.sort", ("field", "order"))
        sort_field = _enum(_get(sort, "field", str, "query.sort") or "DEFAULT",
                           ("DEFAULT", "CREATED_AT"), "query.sort.field")
        desc = _enum(_get(sort, "order", str, "query.sort") or "ASC", ("ASC", "DESC"),
                     "query.sort.order") == "DESC"
        created = _range(filt["created_at"], "query.filter.created_at") \
            if filt.get("created_at") is not None else (None, None)
        updated = _range(filt["updated_at"], "query.filter.updated_at") \
            if filt.get("updated_at") is not None else (None, None)
        text_filters = []
        for name, attribute in (("email_address", "email"), ("reference_id", "customer_id")):
            if filt.get(name) is not None:
                match = _object(filt[name], f"query.filter.{name}", ("exact", "fuzzy"))
                exact = _get(match, "exact", str, f"query.filter.{name}")
                fuzzy = _get(match, "fuzzy", str, f"query.filter.{name}")
                text_filters.append((attribute, exact, fuzzy))

        def within(moment: datetime, span: tuple[datetime | None, datetime | None]) -> bool:
            return (span[0] is None or moment >= span[0]) and (span[1] is None
                                                               or moment < span[1])

        def keep(customer: Customer, updated_at: datetime) -> bool:
            for attribute, exact, fuzzy in text_filters:
                value = str(getattr(customer, attribute))
                if exact is not None and value.casefold() != exact.casefold():
                    return False
                if fuzzy is not None and fuzzy.casefold() not in value.casefold():
                    return False
            return within(customer.signed_up, created) and within(updated_at, updated)

        digest = _digest(body)
        cursor = _decode_cursor(body.get("cursor"), "customers/search", digest)
        rows = self._customer_rows(sort_field, desc, keep, search=True)
        extra = {"count": len(rows)} if count else None
        return self._page("customers/search", digest, rows, cursor, desc, limit, "customers",
                          extra)

    def _list_customers(self, request: Request) -> Response:
        """ListCustomers: the same records, paged by query parameters."""
        params = self._query(request, ("cursor", "limit", "sort_field", "sort_order", "count"))
        raw_limit = params.get("limit")
        try:
            limit_value = int(raw_limit) if raw_limit is not None else None
        except ValueError:
            raise _bad("EXPECTED_INTEGER", "Expected an integer for `limit`.", "limit") \
                from None
        limit = _limit(limit_value, CUSTOMERS_LIMIT)
        sort_field = _enum(params.get("sort_field", "DEFAULT"), ("DEFAULT", "CREATED_AT"),
                           "sort_field")
        desc = _enum(params.get("sort_order", "ASC"), ("ASC", "DESC"), "sort_order") == "DESC"
        count = _enum(params.get("count", "false"), ("true", "false"), "count") == "true"
        same = {k: v for k, v in params.items() if k not in ("cursor", "limit")}
        digest = _digest(same)
        cursor = _decode_cursor(params.get("cursor"), "customers/list", digest)
        rows = self._customer_rows(sort_field, desc, lambda _c, _u: True)
        extra = {"count": len(rows)} if count else None
        return self._page("customers/list", digest, rows, cursor, desc, limit, "customers",
                          extra)

    # --- catalog --------------------------------------------------------------------------

    def _catalog_time(self, sku: str) -> datetime:
        """When the item was last edited (an edit of the item moves its variation too)."""
        return max([self.catalog_created, *self._edits("catalog", sku)])

    def _variation_time(self, sku: str) -> datetime:
        """When the variation was last edited: with its item, or on its own."""
        return max([self._catalog_time(sku), *self._edits("variation", sku)])

    def set_location_threshold(self, sku: str, shop_id: str, threshold: int,
                               at: datetime) -> None:
        """Give a variation its own stock alert threshold at one location (a location
        override), at `at`: an edit of the variation alone, which does not move its item."""
        if sku not in self.products or shop_id not in self.locations:
            raise KeyError(f"no variation {sku!r} or location {shop_id!r}")
        with self._state:
            self._thresholds[(sku, shop_id)] = (_ms(at.astimezone(UTC)), threshold)
        self.touch("variations", sku, at)

    def _overrides(self, sku: str) -> list[dict[str, Any]]:
        with self._state:
            known = sorted((shop, value) for (item, shop), (at, value) in
                           self._thresholds.items() if item == sku and at <= self.now)
        return [{"location_id": self.locations[shop], "track_inventory": True,
                 "inventory_alert_type": "LOW_QUANTITY", "inventory_alert_threshold": value}
                for shop, value in known]

    @staticmethod
    def _stamp(moment: datetime) -> dict[str, Any]:
        # Square catalog versions grow with each edit; epoch milliseconds do that.
        return {"updated_at": rfc3339(moment), "version": _us(moment) // 1000,
                "is_deleted": False, "present_at_all_locations": True}

    def _variation(self, product: Product, moment: datetime) -> dict[str, Any]:
        return {
            "type": "ITEM_VARIATION", "id": self.variation_ids[product.sku],
            **self._stamp(moment),
            "item_variation_data": {
                "item_id": self.item_ids[product.sku], "name": "Regular",
                "sku": product.sku, "ordinal": 0, "pricing_type": "FIXED_PRICING",
                "price_money": money(product.unit_price), "track_inventory": True,
                "inventory_alert_type": "LOW_QUANTITY",
                "inventory_alert_threshold": product.reorder_point,
                "sellable": True, "stockable": True,
                **({"location_overrides": overrides}
                   if (overrides := self._overrides(product.sku)) else {}),
            },
        }

    def _item(self, product: Product, moment: datetime) -> dict[str, Any]:
        category = self.category_ids[product.category]
        return {
            "type": "ITEM", "id": self.item_ids[product.sku], **self._stamp(moment),
            "item_data": {
                "name": product.name, "category_id": category,
                "categories": [{"id": category, "ordinal": 0}], "product_type": "REGULAR",
                "variations": [self._variation(product,
                                               self._variation_time(product.sku))],
            },
        }

    def _category(self, name: str) -> dict[str, Any]:
        return {"type": "CATEGORY", "id": self.category_ids[name],
                **self._stamp(self.catalog_created),
                "category_data": {"name": name}}

    def _search_catalog(self, request: Request) -> Response:
        """SearchCatalogObjects: begin_time is exclusive (objects modified after it); a limit
        outside 1..1000 is ignored as Square documents, not rejected."""
        body = _object(self._body(request), "", (
            "cursor", "object_types", "include_deleted_objects", "include_related_objects",
            "begin_time", "query", "limit", "include_category_path_to_root"))
        if body.get("query") is not None:
            raise _unsupported("query")
        types = _get(body, "object_types", list, "")
        for kind in types or ():
            _enum(kind, CATALOG_TYPES, "object_types")
        wanted = set(types) if types else set(CATALOG_TYPES)
        _get(body, "include_deleted_objects", bool, "")  # nothing is deleted
        related = bool(_get(body, "include_related_objects", bool, ""))
        _get(body, "include_category_path_to_root", bool, "")
        limit = body.get("limit")
        if isinstance(limit, bool) or (limit is not None and not isinstance(limit, int)):
            raise _bad("EXPECTED_INTEGER", "Expected an integer for `limit`.", "limit")
        if limit is None or not 1 <= limit <= CATALOG_LIMIT[1]:
            limit = CATALOG_LIMIT[0]
        begin = _time(body["begin_time"], "begin_time") if body.get("begin_time") else None
        if self.catalog_created > self.now:
            return Response(200, {})

        rank = {"CATEGORY": 0, "ITEM": 1, "ITEM_VARIATION": 2}
        rows: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        latest = self.catalog_created
        if "CATEGORY" in wanted:
            for name in self.category_ids:
                rows.append(((_us(self.catalog_created), rank["CATEGORY"],
                              self.category_ids[name]), self._category(name)))
        for product in self.products.values():
            moment = self._catalog_time(product.sku)
            latest = max(latest, moment)
            if "ITEM" in wanted:
                rows.append(((_us(moment), rank["ITEM"], self.item_ids[product.sku]),
                             self._item(product, moment)))
            if "ITEM_VARIATION" in wanted:
                changed = self._variation_time(product.sku)
                latest = max(latest, changed)
                rows.append(((_us(changed), rank["ITEM_VARIATION"],
                              self.variation_ids[product.sku]),
                             self._variation(product, changed)))
        if begin is not None:
            rows = [row for row in rows if row[0][0] > _us(begin)]
        rows.sort(key=lambda row: row[0])
        digest = _digest(body)
        cursor = _decode_cursor(body.get("cursor"), "catalog/search", digest)
        response = self._page("catalog/search", digest, rows, cursor, False, limit, "objects",
                              {"latest_time": rfc3339(latest)})
        objects = response.body.get("objects", [])
        if related and objects:
            shown = {o["item_data"]["category_id"] for o in objects if o["type"] == "ITEM"}
            response.body["related_objects"] = [self._category(name)
                                                for name, cid in self.category_ids.items()
                                                if cid in shown]
        return response

    # --- inventory ------------------------------------------------------------------------

    def _inventory_counts(self, request: Request) -> Response:
        """BatchRetrieveInventoryCounts: one IN_STOCK count per location and variation, the
        latest physical count at or before now; updated_after excludes its own instant."""
        body = _object(self._body(request), "", ("catalog_object_ids", "location_ids",
                                                 "updated_after", "cursor", "states", "limit"))
        objects = _get(body, "catalog_object_ids", list, "")
        locations = self._location_filter(_get(body, "location_ids", list, ""), "location_ids")
        states = _get(body, "states", list, "")
        for state in states or ():
            _enum(state, INVENTORY_STATES, "states")
        limit = _limit(body.get("limit"), INVENTORY_LIMIT)
        after = _time(body["updated_after"], "updated_after") \
            if body.get("updated_after") else None
        digest = _digest(body)
        cursor = _decode_cursor(body.get("cursor"), "inventory/counts", digest)

        rows: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        if not states or "IN_STOCK" in states:
            for (shop, sku), series in self._counts.items():
                lid, vid = self.locations.get(shop), self.variation_ids.get(sku)
                if lid is None or vid is None or lid not in locations:
                    continue
                if objects is not None and vid not in objects:
                    continue
                i = bisect.bisect_right(series, (self.now, 1 << 62)) - 1
                if i < 0:
                    continue
                counted_at, on_hand = series[i]
                calculated = max([counted_at, *self._edits("inventory", f"{shop}/{sku}")])
                if after is not None and calculated <= after:
                    continue
                rows.append(((lid, vid), {
                    "catalog_object_id": vid, "catalog_object_type": "ITEM_VARIATION",
                    "state": "IN_STOCK", "location_id": lid, "quantity": _qty(on_hand),
                    "calculated_at": rfc3339(calculated), "is_estimated": False,
                }))
        rows.sort(key=lambda row: row[0])
        return self._page("inventory/counts", digest, rows, cursor, False, limit, "counts")
