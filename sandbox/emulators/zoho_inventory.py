"""Zoho Inventory v1 emulator: items, locations (or legacy warehouses) over the PanPan data.

What it serves follows Zoho's Inventory API reference (zoho.com/inventory/api/v1: introduction
for data centres, organization_id, errors and rate limits; items, locations and
organizations, as Zoho's OpenAPI documents mirrored in api-evangelist/zoho-inventory have
them) and Zoho accounts' OAuth pages (zoho.com/accounts/protocol/oauth):

- locations (or, for an organisation not yet on Locations, `stock_by="warehouses"`, the
  legacy warehouses) = the PanPan shops (the first one is primary); items = the PanPan
  products, with
  `rate` (selling price) and `purchase_rate` (unit cost) as JSON numbers written from the
  Decimal's exact text (1.20 stays `1.20`), `reorder_level` and `stock_on_hand`, the sum over
  the warehouses of each one's latest stock count at `now` (0 before its first count).
- Ids are Zoho-style numeric strings: warehouses 4600000000000001.., items 4600000000100001..
  in the PanPan file order.
- Times are written as Zoho writes them, in the organization's time zone (Europe/Paris by
  default) with a colon-less offset: `2025-01-12T08:06:00+0100`.
- Items are created at midnight (Paris) of the first shop's opening day. `last_modified_time`
  is the creation time or the latest `touch()` the clock has reached; stock moves do not
  change it [U: a stock count in Zoho is a separate transaction, not an edit of the item].

Endpoints: the API under `/inventory/v1` needs `Authorization: Zoho-oauthtoken <token>`, and
every path but `/organizations` needs `organization_id`; the token endpoint needs neither.

- `GET /organizations`: the one organization (`organization_id`, name, time zone,
  `currency_code`: the base currency, in which Zoho records every item price).
- `GET /organizations/{organization_id}`: `{code:0, message:"success", organization:{...}}`
  (Zoho Books' "Get an organization", which Inventory shares [U]); another id gives the 403
  code 6041 below.
- `GET /items`: `page` (1-based, default 1), `per_page` (default 200, 1..200), `sort_column`
  (name [default], sku, rate, purchase_rate, reorder_level, stock_on_hand, created_time,
  last_modified_time), `sort_order` (A [default] or D), `filter_by` (Status.All [default],
  Status.Active, Status.Inactive). Ties are broken by item_id, so pages are stable. Answer
  `{code:0, message:"success", items:[...], page_context:{page, per_page, has_more_page,
  report_name, applied_filter, sort_column, sort_order}}`; a page past the end is empty with
  has_more_page false. `last_modified_time` (yyyy-MM-ddTHH:mm:ssZ, e.g.
  2025-01-12T08:06:00+0100) keeps the items modified after it (the list's documented filter).
- `GET /items/{item_id}`: `{code:0, message:"success", item:{..., locations:[{location_id,
  location_name, status, is_primary, location_stock_on_hand, location_available_stock,
  location_actual_available_stock}]}}` with the quantities as decimal strings, as the items
  reference's `locations` schema has them; on a warehouses organisation `warehouses:
  [{warehouse_id, warehouse_name, ..., warehouse_stock_on_hand: a number}]` instead. An
  unknown id gives 404 code 1002.
- `GET /locations`: `{code:0, message:"success", locations:[{location_id, location_name, type,
  address{...}, ...}]}` (List all locations), not paginated; on a warehouses organisation
  400 code 2 (Locations not enabled [U: wording]).
- `GET /settings/warehouses`: `{code:0, message:"success", warehouses:[...]}`, not paginated
  (settings lists are not), on a warehouses organisation; on a Locations one 400 code 2 [U].
  `/inventory/v1/warehouses` is not served (404 code 5): the doc and Airbyte's manifest name
  `settings/warehouses`.
- `POST /oauth/v2/token` (the accounts server, here on the same host): grant_type=
  refresh_token with client_id, client_secret and refresh_token, read from the query string
  (Zoho's documented style), a form body or a JSON body. Answer `{access_token, api_domain,
  token_type:"Bearer", expires_in:3600}` (api_domain: this server, or `api_domain` when
  given, as an EU organisation's answer names https://www.zohoapis.eu); Zoho does not
  rotate refresh tokens, so none is
  returned. Issued access tokens expire `expires_in` seconds later on the emulator clock; the
  constructor's `token` never expires. Failures follow Zoho accounts: HTTP 200 [U] with
  `{"error": "invalid_client" | "invalid_code" | "unsupported_grant_type"}`.

Errors (Zoho's `{code, message}` envelope; the codes are [U] where the doc is silent):

- bad or missing token, or `Bearer` instead of `Zoho-oauthtoken`: 401 code 57 "You are not
  authorized to perform this operation".
- missing organization_id: 400 code 6042 with Zoho's "belongs to multiple organizations"
  message (the emulated user is taken to belong to several, so Zoho cannot pick); an unknown
  organization_id: 403 code 6041 "This user is not associated with the CompanyID/CompanyName"
  (Zoho's 403: not a user of the respective organization).
- a malformed or out-of-range page, per_page, sort_column, sort_order or filter_by: 400
  code 2 "Invalid value passed for <name>". Other unknown parameters are ignored, as Zoho
  ignores them.
- unknown path: 404 code 5 "Invalid URL Passed"; wrong method: 405 code 37.
- rate limit: 429 code 45 "API call limit exceeded", Retry-After only when one is given.
  With `per_minute_limit` (Zoho: 100 requests a minute per organisation, on `clock`) a call
  past it gets 429 code 44; with `daily_limit` (the plan's daily cap, on the emulator clock's
  organisation-local day) 429 code 45 [U: the codes]. `api_calls` counts the API calls.
- server error: the status asked for with code 1000 "Internal error".
- expired cursor: Zoho pages have no cursor to expire, so the `expired_cursor` fault answers
  what Zoho says of a page it cannot serve: 400 code 2 "Invalid value passed for page".

`touch("items", id, at)` and `deactivate("items", id, at)` accept the Zoho item_id or the
PanPan sku and take effect once the clock reaches `at`. Deactivating marks the item inactive
(Zoho's "Mark as Inactive"): it stays in the default list (Status.All), moves to
Status.Inactive, and its last_modified_time moves to `at`.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from goalpost.sandbox.emulators.base import Emulator, Request, Response
from goalpost.sandbox.emulators.base import exact_json as dumps
from goalpost.sandbox.emulators.panpan import PARIS, PanPanData, Product, Shop

PREFIX = "/inventory/v1"
PER_PAGE_MAX = 200
TOKEN_TTL = 3600
WAREHOUSE_BASE = 4600000000000000
ITEM_BASE = 4600000000100000
SORT_COLUMNS = ("name", "sku", "rate", "purchase_rate", "reorder_level", "stock_on_hand",
                "created_time", "last_modified_time")
FILTERS = ("Status.All", "Status.Active", "Status.Inactive")


def zoho_time(moment: datetime, zone: ZoneInfo = PARIS) -> str:
    """Zoho's timestamp: local time in the organization's zone, offset without a colon."""
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S%z")


def _error(status: int, code: int, message: str, headers: dict[str, str] | None = None
           ) -> Response:
    return Response(status, dumps({"code": code, "message": message}), headers or {})


def _invalid(name: str) -> Response:
    return _error(400, 2, f"Invalid value passed for {name}")


class ZohoInventoryEmulator(Emulator):
    """Zoho Inventory's items and warehouses, with the accounts server's refresh grant."""

    name = "zoho_inventory"

    def __init__(self, data: PanPanData, *, token: str = "emulator-token",
                 now: datetime | None = None, organization_id: str = "10234695",
                 client_id: str = "1000.EMULATORCLIENT", client_secret: str = "emulator-secret",
                 refresh_token: str = "1000.emulator.refresh",
                 time_zone: str = "Europe/Paris", stock_by: str = "locations",
                 per_minute_limit: int | None = None, daily_limit: int | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 api_domain: str | None = None) -> None:
        super().__init__(token=token, now=now)
        if stock_by not in ("locations", "warehouses"):
            raise ValueError("stock_by is locations (the current API) or warehouses (legacy)")
        self.stock_by = stock_by
        self.api_domain = api_domain  # what the token answer names (default: this server)
        self.per_minute_limit, self.daily_limit, self.clock = per_minute_limit, daily_limit, clock
        self.api_calls = 0  # calls to the Inventory API (not the accounts server)
        self._minute: deque[float] = deque()
        self._daily: dict[str, int] = {}  # organisation-local date -> calls
        self.data = data
        self.organization_id = organization_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.zone = ZoneInfo(time_zone)
        first = min(shop.opened_on for shop in data.shops)
        self.created = datetime(first.year, first.month, first.day, tzinfo=PARIS).astimezone(UTC)
        self.warehouses = {str(WAREHOUSE_BASE + i + 1): shop for i, shop in enumerate(data.shops)}
        self.items = {str(ITEM_BASE + i + 1): product for i, product in enumerate(data.products)}
        self._item_by_sku = {p.sku: item_id for item_id, p in self.items.items()}
        self._touches: dict[str, list[datetime]] = {}
        self._inactive: dict[str, datetime] = {}  # item_id -> when it was marked inactive
        self._issued: dict[str, datetime] = {}  # access token -> expiry (emulator clock)
        self._issue_lock = threading.Lock()
        self._counted_at = [count.counted_at for count in data.stock_counts]

    # --- the vendor's state at `now` ------------------------------------------------------

    def _item_id(self, resource: str, record_id: str) -> str:
        if resource != "items":
            raise ValueError(f"unknown resource {resource!r}; Zoho Inventory has items")
        item_id = self._item_by_sku.get(record_id, record_id)
        if item_id not in self.items:
            raise KeyError(f"no item {record_id!r}")
        return item_id

    def touch(self, resource: str, record_id: str, at: datetime) -> None:
        """Edit an item at `at`: its last_modified_time moves there once the clock does."""
        item_id = self._item_id(resource, record_id)
        with self._lock:
            self._touches.setdefault(item_id, []).append(at)

    def deactivate(self, resource: str, record_id: str, at: datetime) -> None:
        """Mark an item inactive at `at` (an edit too: last_modified_time moves there)."""
        item_id = self._item_id(resource, record_id)
        with self._lock:
            self._inactive[item_id] = at
            self._touches.setdefault(item_id, []).append(at)

    def _status(self, item_id: str) -> str:
        at = self._inactive.get(item_id)
        return "inactive" if at is not None and at <= self.now else "active"

    def stock(self) -> dict[tuple[str, str], int]:
        """(shop_id, sku) -> the latest count's on-hand quantity the clock has reached."""
        visible = bisect_right(self._counted_at, self.now)
        levels: dict[tuple[str, str], int] = {}
        for count in self.data.stock_counts[:visible]:  # by date: later counts win
            levels[(count.shop_id, count.sku)] = count.on_hand
        return levels

    def _modified(self, item_id: str) -> datetime:
        times = [t for t in self._touches.get(item_id, ()) if t <= self.now]
        return max([self.created, *times])

    def _item(self, item_id: str, levels: dict[tuple[str, str], int]) -> dict[str, Any]:
        product: Product = self.items[item_id]
        on_hand = sum(levels.get((shop.shop_id, product.sku), 0) for shop in self.data.shops)
        return {
            "item_id": item_id, "name": product.name, "sku": product.sku,
            "status": self._status(item_id),
            "description": "", "unit": "pcs", "item_type": "inventory",
            "product_type": "goods", "category_name": product.category,
            "rate": product.unit_price, "purchase_rate": product.unit_cost,
            "reorder_level": product.reorder_point, "stock_on_hand": on_hand,
            "available_stock": on_hand, "actual_available_stock": on_hand,
            "created_time": zoho_time(self.created, self.zone),
            "last_modified_time": zoho_time(self._modified(item_id), self.zone),
        }

    def _warehouse(self, warehouse_id: str, shop: Shop) -> dict[str, Any]:
        return {"warehouse_id": warehouse_id, "warehouse_name": shop.name,
                "is_primary": warehouse_id == next(iter(self.warehouses)), "status": "active",
                "attention": "", "address": "", "city": shop.city, "country": "France",
                "email": "", "phone": ""}

    # --- auth -----------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        if request.path == "/oauth/v2/token":
            return True  # the accounts server authenticates with the client secret instead
        header = request.headers.get("authorization", "")
        if not header.startswith("Zoho-oauthtoken "):
            return False
        token = header.removeprefix("Zoho-oauthtoken ").strip()
        if token == self.token:
            return True
        expiry = self._issued.get(token)
        return expiry is not None and self.now < expiry

    def _token(self, request: Request) -> Response:
        params = dict(request.query)
        content_type = request.headers.get("content-type", "")
        if request.body and "json" in content_type:
            body = request.json()
            if isinstance(body, dict):
                params.update({k: [str(v)] for k, v in body.items()})
        elif request.body:
            params.update(parse_qs(request.body.decode()))

        def get(name: str) -> str | None:
            values = params.get(name)
            return values[0] if values else None

        if get("grant_type") != "refresh_token":
            return Response(200, dumps({"error": "unsupported_grant_type"}))
        if get("client_id") != self.client_id or get("client_secret") != self.client_secret:
            return Response(200, dumps({"error": "invalid_client"}))
        if get("refresh_token") != self.refresh_token:
            return Response(200, dumps({"error": "invalid_code"}))
        with self._issue_lock:
            serial = len(self._issued) + 1
            digest = hashlib.sha256(f"{self.token}:{serial}".encode()).hexdigest()
            access = f"1000.{digest[:32]}.{digest[32:64]}"
            self._issued[access] = self.now + timedelta(seconds=TOKEN_TTL)
        return Response(200, dumps({"access_token": access,
                                    "api_domain": self.api_domain or self.url,
                                    "token_type": "Bearer", "expires_in": TOKEN_TTL}))

    # --- routing --------------------------------------------------------------------------

    def route(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if path == "/oauth/v2/token":
            if request.method != "POST":
                return _error(405, 37, "The HTTP method GET is not allowed for the requested "
                                       "resource")
            return self._token(request)
        refused = self._count_call()
        if refused is not None:
            return refused
        if not path.startswith(PREFIX + "/"):
            return _error(404, 5, "Invalid URL Passed")
        resource = path.removeprefix(PREFIX + "/")
        known = resource in ("organizations", "items", "settings/warehouses", "locations") or \
            re.fullmatch(r"(items|organizations)/[^/]+", resource) is not None
        if not known:
            return _error(404, 5, "Invalid URL Passed")
        if request.method != "GET":
            return _error(405, 37, f"The HTTP method {request.method} is not allowed for the "
                                   "requested resource")
        if resource == "organizations":
            return self._ok("organizations", [self._organization()])
        if resource.startswith("organizations/"):
            org_id = resource.removeprefix("organizations/")
            if org_id != self.organization_id:
                return _error(403, 6041, "This user is not associated with the "
                                         f"CompanyID/CompanyName:{org_id}.")
            return self._ok("organization", self._organization())
        org = request.param("organization_id")
        if not org:
            return _error(400, 6042, "This user belongs to multiple organizations, hence the "
                                     "parameter CompanyID/CompanyName is required for "
                                     "associating this user to a specific organization.")
        if org != self.organization_id:
            return _error(403, 6041, "This user is not associated with the "
                                     f"CompanyID/CompanyName:{org}.")
        if resource == "settings/warehouses":
            if self.stock_by == "locations":
                return _error(400, 2, "Warehouses are replaced by Locations in this "
                                      "organization: use the Locations API")
            return self._ok("warehouses", [self._warehouse(wid, shop)
                                           for wid, shop in self.warehouses.items()])
        if resource == "locations":
            if self.stock_by == "warehouses":
                return _error(400, 2, "Locations are not enabled for this organization")
            return self._ok("locations", [self._location(wid, shop)
                                          for wid, shop in self.warehouses.items()])
        if resource == "items":
            return self._list_items(request)
        return self._get_item(resource.removeprefix("items/"))

    def _count_call(self) -> Response | None:
        """Count an API call against the per-minute and daily limits; the refusal if over."""
        with self._lock:
            self.api_calls += 1
            moment = self.clock()
            while self._minute and self._minute[0] <= moment - 60.0:
                self._minute.popleft()
            day = self.now.astimezone(self.zone).date().isoformat()
            if self.daily_limit is not None and self._daily.get(day, 0) >= self.daily_limit:
                return _error(429, 45, "API call limit for the day exceeded for this "
                                       "organization")
            if self.per_minute_limit is not None and len(self._minute) >= \
                    self.per_minute_limit:
                return _error(429, 44, "Too many requests within a minute for this "
                                       "organization")
            self._minute.append(moment)
            self._daily[day] = self._daily.get(day, 0) + 1
        return None

    def _location(self, location_id: str, shop: Shop) -> dict[str, Any]:
        return {"location_id": location_id, "location_name": shop.name, "type": "general",
                "email": "", "phone": "", "parent_location_id": "",
                "address": {"attention": "", "street_address1": "", "street_address2": "",
                            "city": shop.city, "state": "", "state_code": "",
                            "country": "France"}}

    def _organization(self) -> dict[str, Any]:
        return {"organization_id": self.organization_id, "name": "PanPan",
                "time_zone": self.zone.key, "currency_code": "EUR", "currency_symbol": "€",
                "is_default_org": True, "country": "France"}

    def _ok(self, key: str, value: Any, **extra: Any) -> Response:
        return Response(200, dumps({"code": 0, "message": "success", key: value, **extra}))

    def _get_item(self, item_id: str) -> Response:
        if item_id not in self.items:
            return _error(404, 1002, "Item does not exist.")
        levels = self.stock()
        item = self._item(item_id, levels)
        sku = self.items[item_id].sku
        primary = next(iter(self.warehouses))
        if self.stock_by == "locations":
            # Location stock is a decimal string (the items reference's `locations` schema).
            item["locations"] = [
                {"location_id": wid, "location_name": shop.name, "status": "active",
                 "is_primary": wid == primary,
                 "location_stock_on_hand": str(levels.get((shop.shop_id, sku), 0)),
                 "location_available_stock": str(levels.get((shop.shop_id, sku), 0)),
                 "location_actual_available_stock": str(levels.get((shop.shop_id, sku), 0))}
                for wid, shop in self.warehouses.items()]
        else:
            item["warehouses"] = [
                {"warehouse_id": wid, "warehouse_name": shop.name, "status": "active",
                 "is_primary": wid == primary,
                 "warehouse_stock_on_hand": levels.get((shop.shop_id, sku), 0),
                 "warehouse_available_stock": levels.get((shop.shop_id, sku), 0),
                 "warehouse_actual_available_stock": levels.get((shop.shop_id, sku), 0)}
                for wid, shop in self.warehouses.items()]
        return self._ok("item", item)

    def _list_items(self, request: Request) -> Response:
        page = _positive(request.param("page", "1"))
        if page is None:
            return _invalid("page")
        per_page = _positive(request.param("per_page", str(PER_PAGE_MAX)))
        if per_page is None or per_page > PER_PAGE_MAX:
            return _invalid("per_page")
        column = request.param("sort_column", "name")
        if column not in SORT_COLUMNS:
            return _invalid("sort_column")
        order = request.param("sort_order", "A")
        if order not in ("A", "D"):
            return _invalid("sort_order")
        applied = request.param("filter_by", "Status.All")
        if applied not in FILTERS:
            return _invalid("filter_by")
        since = request.param("last_modified_time")
        after: datetime | None = None
        if since is not None:
            try:
                after = datetime.strptime(since, "%Y-%m-%dT%H:%M:%S%z")
            except ValueError:
                return _invalid("last_modified_time")
        levels = self.stock()
        items = [self._item(item_id, levels) for item_id in self.items
                 if after is None or self._modified(item_id) > after]
        if applied != "Status.All":
            wanted = applied.removeprefix("Status.").lower()
            items = [i for i in items if i["status"] == wanted]
        sort_key = {"created_time": lambda i: self.created,
                    "last_modified_time": lambda i: self._modified(i["item_id"])}.get(
            column, lambda i: i[column])
        items.sort(key=lambda i: int(i["item_id"]))
        items.sort(key=sort_key, reverse=order == "D")
        start = (page - 1) * per_page
        chunk = items[start:start + per_page]
        context = {"page": page, "per_page": per_page,
                   "has_more_page": start + per_page < len(items), "report_name": "Items",
                   "applied_filter": applied, "sort_column": column, "sort_order": order}
        return self._ok("items", chunk, page_context=context)

    # --- Zoho's error shapes --------------------------------------------------------------

    def unauthorized(self, request: Request) -> Response:
        return _error(401, 57, "You are not authorized to perform this operation")

    def rate_limited(self, request: Request, retry_after: float | None) -> Response:
        headers = {} if retry_after is None else {
            "Retry-After": str(int(retry_after)) if float(retry_after).is_integer()
            else f"{retry_after:.1f}"}
        return _error(429, 45, "API call limit exceeded", headers)

    def server_error(self, request: Request, status: int) -> Response:
        return _error(status, 1000, "Internal error")

    def expired_cursor(self, request: Request) -> Response:
        return _invalid("page")


def _positive(text: str | None) -> int | None:
    if text is None or not text.isdigit():
        return None
    value = int(text)
    return value if value >= 1 else None
