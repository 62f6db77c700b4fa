"""Lightspeed Retail X-Series (formerly Vend) API 2.0 emulator over the PanPan demo data.

What it serves follows the X-Series API reference (x-series-api.lightspeedhq.com/docs:
pagination, rate_limiting, authorization; /reference for the 2.0 collections' records):

- outlets = the PanPan shops, registers = one per outlet, products = the PanPan catalog,
  customers = the PanPan customers, sales = the PanPan receipts, inventory = one record per
  (product, outlet) that changes with each stock count.
- Ids are uuid-like and deterministic (uuid5 of the PanPan key), so every run agrees.
- One global `version` counter orders every change, as the real one does: a record's version
  is the one of its latest change the clock has reached. Changes happen at: outlet and
  register creation (the shop's opening day, midnight Paris), product creation (the first
  shop's opening day: the start of time), customer signup, sale `sold_at` (and its void at
  `cancelled_at`), each stock count's
  `counted_at` for inventory, and each `touch()` or `delete()`. A version is
  `unix seconds x 1,000,000 + the change's rank within that second`, so it is monotonic in
  time, unique, not contiguous (the doc warns it is not), and stable when the clock moves.
  A touch or delete at `at` is ranked after every change already visible when it is made
  (versions are handed out at write time), so it always gets a new, higher version.
- Money is a JSON number written from the Decimal's exact text (never a float). X-Series
  prices exclude tax, with the tax beside them: the emulated retailer is tax-inclusive at
  `tax_rate` (default 5.5%, French bakery VAT; 0 turns tax off). Per line, `tax_total` is the
  VAT included in the PanPan line total, rounded half-up to the cent; `price_total` is the
  line total minus it; so `total_price + total_tax` equals the PanPan receipt total exactly.
  Unit `price` (after discount), `tax` and `discount` are ex-tax with 5 decimals.
- A return (`RET-` receipt) is a sale with negative quantities and negative totals, status
  CLOSED, with `return_for` set to the original sale's id (as X-Series links a refund).
- A sale's `state` (closed, voided) comes with its legacy `status` and its `attributes`: a
  delivery (channel livraison) is closed with the `delivery` attribute, legacy status
  DISPATCHED_CLOSED; a sale rung at the register is CLOSED without attributes. A sale called
  off before payment (`cancelled_at`) is voided at that time, as X-Series voids a sale: state
  voided, status VOIDED, a new version and `updated_at` at the void, its lines kept.
- Times are RFC 3339 with `+00:00` (`2025-01-12T07:06:00+00:00`), as 2.0 writes them.
  Inventory records have no `created_at` or `updated_at` (the 2.0 inventory reference lists
  none): a level is known to have changed only by its new `version`.

Endpoints, all `GET /api/2.0/{outlets,registers,products,customers,sales,inventory}` with
`Authorization: Bearer <token>`:

- `after` (a version, default 0; records with version > after, by version), `page_size`
  (default 1000, 1..5000: [U], the doc only has 0.x's 200 and a community report of 5000),
  `deleted` (true includes soft-deleted records, which carry `deleted_at`; default false
  leaves them out [U]: the doc is unsure whether the feed includes them, and 2.0 collections
  take this flag). Other parameters are ignored, as the doc says date filters are.
- Answer `{"data": [...], "version": {"min", "max"}}`; next request `after=version.max`.
  An empty page ends the feed: `{"data": [], "version": {"min": null, "max": null}}`.
- Malformed `after`, `page_size` or `deleted`, or a `page_size` out of range: 400.
- `history` (a timedelta, default None: everything is retained): an `after` other than 0 below
  the first version of `now - history` gives the expired-cursor 400; so does the
  `expired_cursor` fault. The connector restarts from after=0.

Errors are `{"error": <title>, "details": <text>}` [U: the doc gives no envelope]: 400 Bad
Request, 401 Unauthorized (missing or wrong bearer token), 404 Not Found, 405, 429 Too Many
Requests, 5xx. The 429 carries Retry-After when one is given (X-Series sends it, per a
secondary source), none otherwise. `enforce_rate_limit=True` applies the documented budget,
300 x registers + 50 requests per 5-minute window (real time, fixed window), with
X-RateLimit-Limit / X-RateLimit-Remaining on every response and Retry-After (seconds to the
window's end) on the 429.

OAuth: `POST /api/1.0/token` (x-series-api.lightspeedhq.com/docs/authorization) takes the
refresh grant as a form (grant_type=refresh_token, client_id, client_secret, refresh_token)
and answers `{access_token, token_type, expires, expires_in, refresh_token, domain_prefix}`:
the access token lasts a day on the emulator clock (then 401), and the refresh token rotates:
the one used stops working at once. The constructor's `token` is a personal token (never
expires).

`touch(resource, id, at)` and `delete(resource, id, at)` accept outlets, registers, products,
customers, sales and inventory, with the X-Series id or the PanPan key (shop_id, sku,
customer_id, receipt_no; `sku@shop_id` for inventory). Both take effect once the clock
reaches `at`.
"""

from __future__ import annotations

import hashlib
import heapq
import re
import secrets
import threading
import time
import unicodedata
import uuid
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from goalpost.sandbox.emulators.base import SECRET_HEADERS, Emulator, Fault, Request, Response
from goalpost.sandbox.emulators.base import exact_json as dumps
from goalpost.sandbox.emulators.panpan import PARIS, Order, PanPanData

PREFIX = "/api/2.0/"
TOKEN_PATH = "/api/1.0/token"
TOKEN_TTL = timedelta(days=1)  # [T]: access tokens last about a day
RESOURCES = ("outlets", "registers", "products", "customers", "sales", "inventory")
PAGE_SIZE_DEFAULT = 1000
PAGE_SIZE_MAX = 5000
SLOTS = 1_000_000  # versions per second
RATE_WINDOW = 300.0
_NAMESPACE_BYTES = uuid.uuid5(uuid.NAMESPACE_DNS, "panpan.retail.lightspeed.app").bytes
CENT = Decimal("0.01")
UNIT = Decimal("0.00001")


@lru_cache(maxsize=65536)
def ls_id(kind: str, key: str) -> str:
    """The deterministic uuid-like X-Series id of a PanPan record (a name-based uuid5)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{kind}:{key}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def ls_time(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC to the second, with +00:00 as 2.0 writes it."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _error(status: int, title: str, details: str, headers: dict[str, str] | None = None
           ) -> Response:
    return Response(status, dumps({"error": title, "details": details}), headers or {})


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


@dataclass(frozen=True)
class Change:
    """One change of one record: when it becomes visible, its version, what it did."""

    version: int
    visible: datetime  # the clock must reach this for the change to exist
    at: datetime  # the time the record shows (updated_at, deleted_at)
    key: str  # the PanPan key of the record
    kind: str  # create, count, void, touch, delete
    level: int | None = None  # count: the on-hand quantity


class LightspeedXEmulator(Emulator):
    """X-Series 2.0 collections with the global version cursor."""

    name = "lightspeed_x"

    def __init__(self, data: PanPanData, *, token: str = "emulator-token",
                 now: datetime | None = None, tax_rate: Decimal | str = "0.055",
                 history: timedelta | None = None, enforce_rate_limit: bool = False,
                 rate_limit: int | None = None, client_id: str = "ls-client-emulator",
                 client_secret: str = "ls-secret-emulator",
                 refresh_token: str = "ls-refresh-emulator",
                 domain_prefix: str = "panpan") -> None:
        super().__init__(token=token, now=now)
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_token, self.domain_prefix = refresh_token, domain_prefix
        self._issued: dict[str, datetime] = {}  # OAuth access token -> expiry (emulator clock)
        self.data = data
        self.tax_rate = Decimal(tax_rate)
        self.history = history
        self._json_cache: dict[int, tuple[Any, int, bytes]] = {}
        self.enforce_rate_limit = enforce_rate_limit
        self.rate_limit = rate_limit if rate_limit is not None else 300 * len(data.shops) + 50
        self._window: tuple[float, int] = (0.0, 0)  # start (monotonic), requests counted
        self._state = threading.RLock()
        self.shops = {s.shop_id: s for s in data.shops}
        self.products = {p.sku: p for p in data.products}
        self.customers = {c.customer_id: c for c in data.customers}
        self.orders = {o.receipt_no: o for o in data.orders}
        first = min(s.opened_on for s in data.shops)
        self.created = _midnight(first)
        self._ids: dict[str, dict[str, str]] = {}  # resource -> X-Series id -> key, lazily
        self._extras: list[tuple[datetime, int, str, str, str, datetime]] = []
        self._extra_versions: dict[str, list[int]] = {r: [] for r in RESOURCES}
        self._base = self._base_changes()
        self._base_per_second = Counter(c.version // SLOTS for rs in self._base.values()
                                        for c in rs)
        self._base_records = {r: _by_record(self._base[r]) for r in RESOURCES}
        self._log = dict(self._base)
        self._versions = {r: [c.version for c in self._base[r]] for r in RESOURCES}
        self._records = dict(self._base_records)
        self._record_times = {r: {k: [c.visible for c in cs] for k, cs in per.items()}
                              for r, per in self._base_records.items()}

    # --- the change log -------------------------------------------------------------------

    def _base_changes(self) -> dict[str, list[Change]]:
        """Every change the PanPan data implies, numbered by (second, resource, key)."""
        raw: list[tuple[int, int, str, datetime, str, str, int | None]] = []
        for shop in self.data.shops:
            opened = _midnight(shop.opened_on)
            raw.append((int(opened.timestamp()), 0, shop.shop_id, opened, "outlets", "create",
                        None))
            raw.append((int(opened.timestamp()), 1, shop.shop_id, opened, "registers",
                        "create", None))
        created = int(self.created.timestamp())
        raw.extend((created, 2, p.sku, self.created, "products", "create", None)
                   for p in self.data.products)
        raw.extend((int(c.signed_up.timestamp()), 3, c.customer_id, c.signed_up, "customers",
                    "create", None) for c in self.data.customers)
        raw.extend((int(o.sold_at.timestamp()), 4, o.receipt_no, o.sold_at, "sales", "create",
                    None) for o in self.data.orders)
        raw.extend((int(o.cancelled_at.timestamp()), 4, o.receipt_no, o.cancelled_at, "sales",
                    "void", None) for o in self.data.orders if o.cancelled_at is not None)
        for count in self.data.stock_counts:
            at = count.counted_at
            raw.append((int(at.timestamp()), 5, f"{count.sku}@{count.shop_id}", at,
                        "inventory", "count", count.on_hand))
        raw.sort(key=lambda r: r[:3])
        changes: dict[str, list[Change]] = {r: [] for r in RESOURCES}
        second, rank = None, 0
        for s, _, key, at, resource, kind, level in raw:
            rank = rank + 1 if s == second else 0
            second = s
            changes[resource].append(Change(s * SLOTS + rank, at, at, key, kind, level))
        return changes

    def _rebuild(self) -> None:
        """Merge touches and deletes into the log: versions by (second, base first, time).

        Only resources whose extra changes moved are rebuilt; the base log never changes.
        """
        extras: dict[str, list[Change]] = {r: [] for r in RESOURCES}
        taken: Counter[int] = Counter()
        for visible, _, resource, key, kind, at in sorted(self._extras, key=lambda e: e[:2]):
            s = int(visible.timestamp())
            rank = self._base_per_second[s] + taken[s]
            taken[s] += 1
            extras[resource].append(Change(s * SLOTS + rank, visible, at, key, kind))
        for resource in RESOURCES:
            added = sorted(extras[resource], key=lambda c: c.version)
            versions = [c.version for c in added]
            if versions == self._extra_versions[resource]:
                continue
            merged = list(heapq.merge(self._base[resource], added, key=lambda c: c.version))
            records = dict(self._base_records[resource])
            times = dict(self._record_times[resource])
            for key, changes in _by_record(merged, {c.key for c in added}).items():
                records[key] = changes
                times[key] = [c.visible for c in changes]
            self._log[resource] = merged
            self._versions[resource] = [c.version for c in merged]
            self._records[resource] = records
            self._record_times[resource] = times
            self._extra_versions[resource] = versions

    def _key(self, resource: str, record_id: str) -> str:
        if resource not in RESOURCES:
            raise ValueError(f"unknown resource {resource!r}; one of {', '.join(RESOURCES)}")
        if record_id in self._records[resource]:
            return record_id
        if resource not in self._ids:
            self._ids[resource] = {ls_id(resource, key): key for key in self._records[resource]}
        key = self._ids[resource].get(record_id)
        if key is None:
            raise KeyError(f"no {resource} record {record_id!r}")
        return key

    def _change(self, resource: str, record_id: str, at: datetime, kind: str) -> None:
        key = self._key(resource, record_id)
        with self._state:
            # Handed out now (never below what is already visible) and not before the record
            # exists, so the change always gets a version above the record's current one.
            first = self._records[resource][key][0]
            visible = max(at, self.now, first.visible)
            self._extras.append((visible, len(self._extras), resource, key, kind,
                                 max(at, first.at)))
            self._rebuild()

    def touch(self, resource: str, record_id: str, at: datetime) -> None:
        """Edit a record at `at`: it gets a new, higher version and updated_at = at."""
        self._change(resource, record_id, at, "touch")

    def delete(self, resource: str, record_id: str, at: datetime) -> None:
        """Soft-delete a record at `at`: new version, deleted_at = at."""
        self._change(resource, record_id, at, "delete")

    def version_at(self, moment: datetime) -> int:
        """The first version of the second `moment` falls in (for history checks, tests)."""
        return int(moment.timestamp()) * SLOTS

    # --- records --------------------------------------------------------------------------

    def _render(self, resource: str, key: str, changes: list[Change]) -> dict[str, Any]:
        """The record as the clock shows it, from its visible changes (oldest first)."""
        latest = changes[-1]
        deleted = next((c.at for c in changes if c.kind == "delete"), None)
        meta = {"created_at": ls_time(changes[0].at), "updated_at": ls_time(latest.at),
                "deleted_at": ls_time(deleted), "version": latest.version}
        if resource == "inventory":
            # Inventory records carry no created_at or updated_at in 2.0 (List inventory
            # records, x-series-api.lightspeedhq.com/reference/listinventory): only the
            # version says that a level changed.
            del meta["created_at"], meta["updated_at"]
        if resource == "outlets":
            shop = self.shops[key]
            body = {"id": ls_id("outlets", key), "name": shop.name, "time_zone": "Europe/Paris",
                    "currency": "EUR", "physical_city": shop.city,
                    "physical_country_id": "FR"}
        elif resource == "registers":
            shop = self.shops[key]
            body = {"id": ls_id("registers", key), "name": f"{shop.name} - Caisse 1",
                    "outlet_id": ls_id("outlets", key), "is_open": True}
        elif resource == "products":
            product = self.products[key]
            body = {"id": ls_id("products", key), "sku": product.sku,
                    "handle": _handle(product.name), "name": product.name,
                    "description": "", "active": True, "has_inventory": True,
                    "product_type": {"id": ls_id("product_types", product.category),
                                     "name": product.category},
                    "price_including_tax": product.unit_price,
                    "price_excluding_tax": self._ex_tax(product.unit_price),
                    "supply_price": product.unit_cost}
        elif resource == "customers":
            customer = self.customers[key]
            body = {"id": ls_id("customers", key), "customer_code": customer.customer_id,
                    "first_name": customer.first_name, "last_name": customer.last_name,
                    "email": customer.email, "phone": customer.phone,
                    "enable_loyalty": customer.loyalty_opt_in}
        elif resource == "sales":
            body = self._sale(self.orders[key], any(c.kind == "void" for c in changes))
        else:
            sku, shop_id = key.split("@")
            level = next(c.level for c in reversed(changes) if c.kind == "count")
            body = {"id": ls_id("inventory", key), "product_id": ls_id("products", sku),
                    "outlet_id": ls_id("outlets", shop_id), "inventory_level": level,
                    "reorder_point": self.products[sku].reorder_point, "reorder_amount": 0,
                    "average_cost": self.products[sku].unit_cost}
        return {**body, **meta}

    def _ex_tax(self, amount: Decimal) -> Decimal:
        return (amount / (1 + self.tax_rate)).quantize(UNIT, ROUND_HALF_UP)

    def _sale(self, order: Order, voided: bool = False) -> dict[str, Any]:
        lines, total_price, total_tax = [], Decimal("0.00"), Decimal("0.00")
        for line in order.lines:
            tax_total = (line.line_total * self.tax_rate / (1 + self.tax_rate)).quantize(
                CENT, ROUND_HALF_UP)
            price_total = line.line_total - tax_total
            quantity = line.quantity
            lines.append({
                "id": ls_id("line_items", f"{order.receipt_no}#{line.line_no}"),
                "product_id": ls_id("products", line.sku), "sequence": line.line_no - 1,
                "quantity": quantity,
                "price": (price_total / quantity).quantize(UNIT, ROUND_HALF_UP),
                "discount": (line.discount / quantity / (1 + self.tax_rate)).quantize(
                    UNIT, ROUND_HALF_UP),
                "tax": (tax_total / quantity).quantize(UNIT, ROUND_HALF_UP),
                "price_total": price_total, "tax_total": tax_total, "note": None})
            total_price += price_total
            total_tax += tax_total
        original = order.receipt_no.removeprefix("RET-")
        delivery = order.channel == "livraison" and not order.is_return
        if voided:
            status, state = "VOIDED", "voided"
        else:
            status, state = ("DISPATCHED_CLOSED" if delivery else "CLOSED"), "closed"
        sale = {
            "id": ls_id("sales", order.receipt_no), "outlet_id": ls_id("outlets", order.shop_id),
            "register_id": ls_id("registers", order.shop_id),
            "customer_id": ls_id("customers", order.customer_id) if order.customer_id else None,
            "invoice_number": order.receipt_no, "status": status, "state": state,
            "attributes": ["delivery"] if delivery else [],
            "sale_date": ls_time(order.sold_at), "total_price": total_price,
            "total_tax": total_tax, "note": "", "source": "USER",
            "return_for": ls_id("sales", original)
            if order.is_return and original in self.orders else None,
            "line_items": lines}
        return sale

    # --- OAuth ----------------------------------------------------------------------------

    def issue_access_token(self, expires_at: datetime) -> str:
        """An OAuth access token as the token endpoint would have issued it (for tests)."""
        access = secrets.token_hex(20)
        with self._state:
            self._issued[access] = expires_at
        return access

    def authorized(self, request: Request) -> bool:
        if request.path == TOKEN_PATH:
            return True  # the token endpoint authenticates with the client secret instead
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if token == self.token:
            return True
        with self._state:
            expiry = self._issued.get(token)
        return expiry is not None and self.now < expiry

    def _token(self, request: Request) -> Response:
        """The refresh grant: a form body with grant_type, client_id, client_secret and
        refresh_token; a new access token for a day and a new refresh token (the old one
        stops working)."""
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "refresh_token":
            return _error(400, "unsupported_grant_type", "grant_type must be refresh_token")
        if form.get("client_id") != self.client_id or \
                form.get("client_secret") != self.client_secret:
            return _error(401, "invalid_client", "Client authentication failed")
        with self._state:
            if form.get("refresh_token") != self.refresh_token:
                return _error(400, "invalid_grant", "The refresh token is invalid")
            access = secrets.token_hex(20)
            expires = self.now + TOKEN_TTL
            self._issued[access] = expires
            self.refresh_token = secrets.token_hex(20)
            refresh = self.refresh_token
        return Response(200, dumps({
            "access_token": access, "token_type": "Bearer",
            "expires": int(expires.timestamp()), "expires_in": int(TOKEN_TTL.total_seconds()),
            "refresh_token": refresh, "domain_prefix": self.domain_prefix}))

    # --- requests -------------------------------------------------------------------------

    def route(self, request: Request) -> Response:
        if request.path == TOKEN_PATH:
            if request.method != "POST":
                return _error(405, "Method Not Allowed", f"{request.method} is not allowed here")
            return self._token(request)
        if not request.path.startswith(PREFIX):
            return _error(404, "Not Found", f"no such endpoint: {request.path}")
        resource = request.path.removeprefix(PREFIX).rstrip("/")
        if resource not in RESOURCES:
            return _error(404, "Not Found", f"no such endpoint: {request.path}")
        if request.method != "GET":
            return _error(405, "Method Not Allowed", f"{request.method} is not allowed here")
        after = _int(request.param("after", "0"))
        if after is None:
            return _error(400, "Bad Request", "after must be a non-negative integer version")
        size = _int(request.param("page_size", str(PAGE_SIZE_DEFAULT)))
        if size is None or not 1 <= size <= PAGE_SIZE_MAX:
            return _error(400, "Bad Request",
                          f"page_size must be an integer between 1 and {PAGE_SIZE_MAX}")
        deleted = request.param("deleted", "false").lower()
        if deleted not in ("true", "false", "1", "0"):
            return _error(400, "Bad Request", "deleted must be true or false")
        if self.history is not None and 0 < after < self.version_at(self.now - self.history):
            return self.expired_cursor(request)
        return Response(200, self._page(resource, after, size, deleted in ("true", "1")))

    def _render_json(self, resource: str, key: str, visible: list[Change]) -> bytes:
        """A record's JSON, kept per change: a record reads the same until its next change,
        so serving the feed again costs no re-rendering (the benchmark serves 200k)."""
        cached = self._json_cache.get(id(visible[-1]))
        if cached is None or cached[0] is not visible[-1] or cached[1] != len(visible):
            cached = (visible[-1], len(visible), dumps(self._render(resource, key, visible)))
            self._json_cache[id(visible[-1])] = cached
        return cached[2]

    def _page(self, resource: str, after: int, size: int, with_deleted: bool) -> bytes:
        now = self.now
        data: list[bytes] = []
        versions_shown: list[int] = []
        with self._state:
            log, versions = self._log[resource], self._versions[resource]
            records, times = self._records[resource], self._record_times[resource]
            for change in log[bisect_right(versions, after):]:
                if change.visible > now:
                    break  # versions follow time: nothing later is visible either
                shown = bisect_right(times[change.key], now)
                if records[change.key][shown - 1] is not change:
                    continue  # superseded by a later visible change of the same record
                visible = records[change.key][:shown]
                if not with_deleted and any(c.kind == "delete" for c in visible):
                    continue
                data.append(self._render_json(resource, change.key, visible))
                versions_shown.append(change.version)
                if len(data) == size:
                    break
        if not data:
            return dumps({"data": [], "version": {"min": None, "max": None}})
        return (b'{"data":[' + b",".join(data) + b'],"version":{"min":%d,"max":%d}}'
                % (versions_shown[0], versions_shown[-1]))

    def handle(self, request: Request) -> Response | Fault:
        """The harness's dispatch, behind the documented request budget when enforced."""
        if not self.enforce_rate_limit:
            return super().handle(request)
        with self._lock:
            start, used = self._window
            clock = time.monotonic()
            if clock - start >= RATE_WINDOW:
                start, used = clock, 0
            used += 1
            self._window = (start, used)
        budget = {"X-RateLimit-Limit": str(self.rate_limit),
                  "X-RateLimit-Remaining": str(max(self.rate_limit - used, 0))}
        if used > self.rate_limit:
            self.requests.append(Request(request.method, request.path, request.query, {
                k: "***" if k in SECRET_HEADERS else v for k, v in request.headers.items()}))
            wait = max(1, int(start + RATE_WINDOW - clock + 0.999))
            response = self.rate_limited(request, wait)
        else:
            outcome = super().handle(request)
            if not isinstance(outcome, Response):
                return outcome
            response = outcome
        response.headers.update(budget)
        return response

    # --- X-Series error shapes ------------------------------------------------------------

    def unauthorized(self, request: Request) -> Response:
        return _error(401, "Unauthorized", "The access token is missing, invalid or expired")

    def rate_limited(self, request: Request, retry_after: float | None) -> Response:
        headers = {} if retry_after is None else {"Retry-After": _seconds(retry_after)}
        return _error(429, "Too Many Requests", "Rate limit exceeded for this retailer and "
                      "application", headers)

    def server_error(self, request: Request, status: int) -> Response:
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Server Error"
        return _error(status, title, "Something went wrong")

    def expired_cursor(self, request: Request) -> Response:
        return _error(400, "Bad Request", "the after version is older than the retained "
                      "history; start again from after=0")


def _by_record(changes: list[Change], only: set[str] | None = None
               ) -> dict[str, list[Change]]:
    per: dict[str, list[Change]] = {}
    for change in changes:
        if only is None or change.key in only:
            per.setdefault(change.key, []).append(change)
    return per


def _midnight(day: Any) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _handle(name: str) -> str:
    """The product's URL handle, as X-Series derives it: ASCII, lower case, hyphens."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")

