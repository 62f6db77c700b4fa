"""HubSpot CRM v3 emulator: contacts, companies and deals over the PanPan demo data.

What it serves follows HubSpot's CRM v3 reference (developers.hubspot.com/docs/api/crm: the
objects and search guides, usage-details for rate limits, error-handling) and its OpenAPI
documents (HubSpot/HubSpot-public-api-spec-collection, PublicApiSpecs/CRM/*/Rollouts/424/v3):

- contacts = PanPan customers (they exist from `signed_up`); companies = the PanPan shops
  (present from their opening day, which is long past); deals = the PanPan delivery orders
  (channel "livraison"), closed-won in the default pipeline at `sold_at`. A delivery return
  (`RET-` receipt) is a deal of its own with a negative amount: a CRM has no refund object,
  and a negative deal keeps the revenue reconcilable with the POS. Deals are associated with
  their customer's contact (when the order has one) and with their shop's company.
- Ids are numeric strings, by object type: contacts 1000000 + customer number, companies
  2000001.. in shop order, deals 3000001.. in (sold_at, receipt) order, so new records get
  higher ids, as HubSpot's do.
- Every property value is a string or null; `amount` is the order total's exact decimal text
  (e.g. "20.60", "-4.20"); dates are RFC 3339 with milliseconds and a Z.

Endpoints (also under the date-versioned prefix `/crm/objects/<YYYY-MM>/`):

- `GET /crm/v3/objects/{type}`: `limit` (default 10, 1..100 else 400: the max of 100 is [U] in
  the doc and the brief asks for a 400), `after` (opaque: base64 of the next id; anything that
  does not decode gives 400 VALIDATION_ERROR), `properties` (comma-separated and/or repeated),
  `associations`, `archived` (true lists only archived records, with `archivedAt`). Ordered
  by id. `paging.next` = {after, link}; absent on the last page. Other query parameters are
  ignored, as HubSpot ignores them.
- `GET /crm/v3/objects/{type}/{id}`: one record, 404 OBJECT_NOT_FOUND otherwise.
- `POST /crm/v3/objects/{type}/search`: `filterGroups` (ORed; filters ANDed; at most 5 groups,
  10 filters per group, 25 in all), operators EQ NEQ LT LTE GT GTE BETWEEN IN NOT_IN
  HAS_PROPERTY NOT_HAS_PROPERTY; date values as epoch milliseconds (string or number) or RFC
  3339; one sort (`{propertyName, direction}` or "prop"/"-prop"), default createdate
  ascending, ties broken by id; `properties`; `query` (case-insensitive substring over the
  type's searchable text properties); `limit` (default 10, 1..200 else 400); `after` (a
  numeric offset string). Answer `{total, results, paging:{next:{after}}}` (no `link`: [U],
  search is a POST). Archived records are left out. Offsets at or past `search_ceiling`
  (10,000: "limited to 10,000 total results", developers.hubspot.com/docs/api/crm/search)
  give a 400 even though `total` says more exist; the last page before the ceiling still
  carries `paging.next`. HubSpot does not document the 400's text, so this one words it
  neutrally: a client must read the ceiling from `total`, not from the message.

Choices where the doc is unsure ([U]) or silent:

- Without `properties`, each type returns HubSpot's default set; with it, the requested known
  properties (null when empty) plus createdate, the modified-date property and hs_object_id
  (HubSpot always adds them); unknown property names are silently dropped.
- Contacts have only `lastmodifieddate`; companies and deals only `hs_lastmodifieddate`.
  Filtering or sorting on a property the type lacks is a 400 VALIDATION_ERROR.
- String EQ/NEQ/IN compare case-insensitively, as HubSpot search does.
- Archiving does not move updatedAt; the record gets `archivedAt`.
- Rate-limit headers: X-HubSpot-RateLimit-Daily / -Daily-Remaining on every successful
  response; the burst set (-Max, -Remaining, -Interval-Milliseconds, -Secondly,
  -Secondly-Remaining) on list/read responses only (search responses omit it, [U]). Counts
  are real (per emulator, 10 s rolling window) but limits are not enforced: use
  `inject("rate_limit")`. The 429 is always the SECONDLY policy body.
- A wrong or missing bearer token both get the "Authentication credentials not found" 401.
  `hapikey=` is sunset and not honoured. No OAuth refresh: private-app tokens do not expire.
- Every response carries X-HubSpot-Correlation-Id, equal to the body's correlationId on errors.

Merges (`merge(primary, other, at)`, contacts only), as HubSpot's changelog "Updated merge
functionality for contacts and companies" describes them: the merge makes a new record with a
new id (the next contact id), holding the primary's property values (the other's where the
primary has none), the older createdate of the two, both records' deals, and
`hs_merged_object_ids` = the two old ids (and those they had merged before), `;`-separated.
Its modified date is the merge time. The two old records leave lists and search, and are not
listed as archived [U]; reading one by id gives the merged record, as HubSpot redirects old ids.

Search is an index that lags behind edits (HubSpot's CRM search guide: newly created or
updated records may take a few moments to appear in search results): `touch(..., search_lag=)`
makes an edit show in search that much after reads by id and lists show it.

`touch(resource, id, at)` and `archive(resource, id, at)` accept `contacts` (or `customers`),
`companies` (or `shops`), `deals` (or `orders`), and either the HubSpot id or the PanPan key
(customer_id, shop_id, receipt_no); `merge` takes contact ids or customer ids. All take effect
once the clock reaches `at`.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlencode

from goalpost.sandbox.emulators.base import Emulator, Request, Response, parse_time, rfc3339
from goalpost.sandbox.emulators.panpan import PARIS, PanPanData

TYPES = ("contacts", "companies", "deals")
_TYPE_ALIASES = {
    "contacts": "contacts", "contact": "contacts", "0-1": "contacts",
    "companies": "companies", "company": "companies", "0-2": "companies",
    "deals": "deals", "deal": "deals", "0-3": "deals",
}
_RESOURCE_ALIASES = {"contacts": "contacts", "customers": "contacts",
                     "companies": "companies", "shops": "companies",
                     "deals": "deals", "orders": "deals"}
_ID_BASE = {"contacts": 1_000_000, "companies": 2_000_000, "deals": 3_000_000}
MODIFIED = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate",
            "deals": "hs_lastmodifieddate"}

# Property name -> type (string, number, datetime, bool, enumeration) per object type.
PROPERTIES: dict[str, dict[str, str]] = {
    "contacts": {"email": "string", "firstname": "string", "lastname": "string",
                 "phone": "string", "country": "string", "createdate": "datetime",
                 "lastmodifieddate": "datetime", "hs_object_id": "number",
                 "hs_merged_object_ids": "enumeration", "panpan_customer_id": "string",
                 "panpan_loyalty_opt_in": "bool"},
    "companies": {"name": "string", "domain": "string", "city": "string", "country": "string",
                  "createdate": "datetime", "hs_lastmodifieddate": "datetime",
                  "hs_object_id": "number", "panpan_shop_id": "string"},
    "deals": {"dealname": "string", "amount": "number", "closedate": "datetime",
              "dealstage": "enumeration", "pipeline": "enumeration",
              "deal_currency_code": "enumeration", "createdate": "datetime",
              "hs_lastmodifieddate": "datetime", "hs_object_id": "number",
              "panpan_receipt_no": "string", "panpan_shop_id": "string"},
}
DEFAULT_PROPERTIES = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate",
                 "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": ("amount", "closedate", "createdate", "dealname", "dealstage",
              "hs_lastmodifieddate", "hs_object_id", "pipeline"),
}
_SEARCHABLE = {"contacts": ("email", "firstname", "lastname", "phone"),
               "companies": ("name", "domain"), "deals": ("dealname",)}
_OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN",
              "HAS_PROPERTY", "NOT_HAS_PROPERTY"}
_SEARCH_KEYS = {"filterGroups", "sorts", "properties", "limit", "after", "query"}
_PATH = re.compile(r"/crm/(v3/objects|objects/\d{4}-\d{2})/([^/]+)(?:/([^/]+))?/?")
AUTH_MESSAGE = ("Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview")


@dataclass
class _Record:
    kind: str
    id: str
    key: str  # the PanPan id it comes from
    created: datetime  # when the record comes into being
    props: dict[str, str | None]  # everything but createdate, modified date, hs_object_id
    links: dict[str, list[str]] = field(default_factory=dict)  # associated type -> ids
    # The createdate it shows when that is not `created` (a merge keeps the older one).
    createdate: datetime | None = None

    @property
    def created_shown(self) -> datetime:
        return self.createdate or self.created


class _BadRequest(Exception):
    """A request HubSpot answers with 400 VALIDATION_ERROR."""


class HubSpotEmulator(Emulator):
    """HubSpot CRM v3 objects and search over PanPan data; see the module docstring."""

    name = "hubspot"

    def __init__(self, data: PanPanData, *, token: str = "pat-eu1-emulator",
                 now: datetime | None = None, search_ceiling: int = 10_000,
                 daily_limit: int = 500_000, burst_limit: int = 150) -> None:
        super().__init__(token=token, now=now)
        self.search_ceiling = search_ceiling
        self.daily_limit = daily_limit
        self.burst_limit = burst_limit
        self._records: dict[str, dict[str, _Record]] = {kind: {} for kind in TYPES}
        self._by_key: dict[str, dict[str, str]] = {kind: {} for kind in TYPES}
        # (kind, id) -> [(edited at, searchable from)]: search is an index that lags.
        self._touches: dict[tuple[str, str], list[tuple[datetime, datetime]]] = {}
        self._archived: dict[tuple[str, str], datetime] = {}
        self._merged: dict[tuple[str, str], tuple[str, datetime]] = {}  # -> (new id, at)
        self._state_lock = threading.Lock()
        self._props_cache: dict[tuple[str, str], tuple[datetime, dict[str, str | None]]] = {}
        self._daily_used = 0
        self._recent: deque[float] = deque()
        self._load(data)

    # --- data ------------------------------------------------------------------------------

    def _add(self, record: _Record) -> None:
        self._records[record.kind][record.id] = record
        self._by_key[record.kind][record.key] = record.id

    def _load(self, data: PanPanData) -> None:
        for customer in data.customers:
            self._add(_Record("contacts", str(_ID_BASE["contacts"] + int(customer.customer_id[1:])),
                              customer.customer_id, customer.signed_up, {
                                  "email": customer.email, "firstname": customer.first_name,
                                  "lastname": customer.last_name, "phone": customer.phone or None,
                                  "panpan_customer_id": customer.customer_id,
                                  "panpan_loyalty_opt_in": str(customer.loyalty_opt_in).lower()},
                              {"deals": []}))
        for n, shop in enumerate(data.shops, start=1):
            opened = datetime.combine(shop.opened_on, dtime(), PARIS).astimezone(UTC)
            self._add(_Record("companies", str(_ID_BASE["companies"] + n), shop.shop_id, opened, {
                "name": shop.name, "domain": f"{shop.shop_id.lower()}.panpan.fr",
                "city": shop.city, "country": "France", "panpan_shop_id": shop.shop_id},
                {"deals": []}))
        deliveries = [o for o in data.orders if o.channel == "livraison"]
        for n, order in enumerate(deliveries, start=1):
            name = (f"Retour livraison {order.receipt_no[4:]}" if order.is_return
                    else f"Livraison {order.receipt_no}")
            deal = _Record("deals", str(_ID_BASE["deals"] + n), order.receipt_no, order.sold_at, {
                "dealname": name, "amount": str(order.total), "closedate": rfc3339(order.sold_at),
                "dealstage": "closedwon", "pipeline": "default", "deal_currency_code": "EUR",
                "panpan_receipt_no": order.receipt_no, "panpan_shop_id": order.shop_id},
                {"contacts": [], "companies": []})
            contact_id = self._by_key["contacts"].get(order.customer_id)
            if contact_id:
                deal.links["contacts"].append(contact_id)
                self._records["contacts"][contact_id].links["deals"].append(deal.id)
            company_id = self._by_key["companies"].get(order.shop_id)
            if company_id:
                deal.links["companies"].append(company_id)
                self._records["companies"][company_id].links["deals"].append(deal.id)
            self._add(deal)

    def _find(self, resource: str, record_id: str) -> _Record:
        kind = _RESOURCE_ALIASES.get(resource)
        if kind is None:
            known = ", ".join(_RESOURCE_ALIASES)
            raise ValueError(f"unknown resource {resource!r}; one of {known}")
        record_id = self._by_key[kind].get(record_id, record_id)
        if record_id not in self._records[kind]:
            raise KeyError(f"no {kind} record {record_id!r}")
        return self._records[kind][record_id]

    def touch(self, resource: str, record_id: str, at: datetime,
              search_lag: timedelta = timedelta(0)) -> None:
        """Edit the record at `at`: its modified date and updatedAt move there once now >= at;
        search shows the edit only `search_lag` later (its index lags behind edits)."""
        record = self._find(resource, record_id)
        with self._state_lock:
            self._touches.setdefault((record.kind, record.id), []).append(
                (at, at + search_lag))

    def archive(self, resource: str, record_id: str, at: datetime) -> None:
        """Archive (delete) the record at `at`: it leaves lists and search for `archived=true`."""
        record = self._find(resource, record_id)
        with self._state_lock:
            self._archived[(record.kind, record.id)] = at

    def merge(self, resource: str, primary_id: str, other_id: str, at: datetime) -> str:
        """Merge two contacts at `at` into a new record (see the module docstring); its id."""
        primary, other = self._find(resource, primary_id), self._find(resource, other_id)
        if primary.kind != "contacts" or primary.id == other.id:
            raise ValueError("merge takes two different contacts")
        with self._state_lock:
            if any((r.kind, r.id) in self._merged for r in (primary, other)):
                raise ValueError("a contact can be merged away only once")
            new_id = str(max(int(i) for i in self._records["contacts"]) + 1)
            merged_ids = [i for r in (primary, other)
                          for i in (r.props.get("hs_merged_object_ids") or "").split(";") if i]
            props = {k: v for k, v in other.props.items() if v is not None}
            props.update({k: v for k, v in primary.props.items() if v is not None})
            props["hs_merged_object_ids"] = ";".join([*merged_ids, primary.id, other.id])
            deals = [*primary.links.get("deals", []), *other.links.get("deals", [])]
            record = _Record("contacts", new_id, primary.key, at, props, {"deals": deals},
                             createdate=min(primary.created_shown, other.created_shown))
            self._records["contacts"][new_id] = record
            for deal_id in deals:
                self._records["deals"][deal_id].links["contacts"].append(new_id)
            for old in (primary, other):
                self._merged[(old.kind, old.id)] = (new_id, at)
        return new_id

    def _exists(self, record: _Record) -> bool:
        return record.created <= self.now

    def _merged_into(self, record: _Record) -> _Record | None:
        """The record this one was merged into, once the clock reaches the merge."""
        merged = self._merged.get((record.kind, record.id))
        if merged is None or merged[1] > self.now:
            return None
        return self._records[record.kind][merged[0]]

    def _live(self, record: _Record) -> bool:
        """Exists now and is neither archived nor merged away."""
        return (self._exists(record) and self._archived_at(record) is None
                and self._merged_into(record) is None)

    def _updated(self, record: _Record, search: bool = False) -> datetime:
        """The last modification now: as reads show it, or as the search index has it."""
        touches = self._touches.get((record.kind, record.id), ())
        return max([record.created, *(at for at, indexed in touches
                                      if (indexed if search else at) <= self.now)])

    def _archived_at(self, record: _Record) -> datetime | None:
        at = self._archived.get((record.kind, record.id))
        return at if at is not None and at <= self.now else None

    def _all_properties(self, record: _Record, search: bool = False) -> dict[str, str | None]:
        """Every property of the record as the clock shows it (a fresh dict each call; built
        once per record and modification time, since searches scan every record)."""
        updated = self._updated(record, search)
        cached = self._props_cache.get((record.kind, record.id))
        if cached is None or cached[0] != updated:
            props = dict(record.props)
            props["createdate"] = rfc3339(record.created_shown)
            props[MODIFIED[record.kind]] = rfc3339(updated)
            props["hs_object_id"] = record.id
            cached = (updated, props)
            self._props_cache[(record.kind, record.id)] = cached
        return dict(cached[1])

    def _visible(self, kind: str, archived: bool) -> list[_Record]:
        """Records that exist now, are not merged away and are (or are not) archived, by id."""
        return sorted((r for r in self._records[kind].values()
                       if self._exists(r) and self._merged_into(r) is None
                       and (self._archived_at(r) is not None) == archived),
                      key=lambda r: int(r.id))

    def _render(self, record: _Record, wanted: list[str] | None,
                associations: list[str] | None = None, search: bool = False) -> dict[str, Any]:
        props = self._all_properties(record, search)
        if wanted is None:
            names = list(DEFAULT_PROPERTIES[record.kind])
        else:
            known = PROPERTIES[record.kind]
            names = [n for n in wanted if n in known]
            names += [n for n in ("createdate", MODIFIED[record.kind], "hs_object_id")
                      if n not in names]
        out: dict[str, Any] = {
            "id": record.id,
            "properties": {n: props.get(n) for n in sorted(names)},
            "createdAt": rfc3339(record.created_shown),
            "updatedAt": rfc3339(self._updated(record, search)),
            "archived": False,
        }
        archived_at = self._archived_at(record)
        if archived_at is not None:
            out["archived"] = True
            out["archivedAt"] = rfc3339(archived_at)
        linked: dict[str, Any] = {}
        for other in associations or ():
            ids = [i for i in record.links.get(other, ()) if self._live(self._records[other][i])]
            if ids:
                singular = {"contacts": "contact", "companies": "company", "deals": "deal"}
                kind_name = f"{singular[record.kind]}_to_{singular[other]}"
                linked[other] = {"results": [{"id": i, "type": kind_name} for i in ids]}
        if linked:
            out["associations"] = linked
        return out

    # --- errors in HubSpot's shapes --------------------------------------------------------

    def _error(self, status: int, message: str, category: str | None = None,
               headers: dict[str, str] | None = None, **extra: Any) -> Response:
        correlation = str(uuid.uuid4())
        body: dict[str, Any] = {"status": "error", "message": message,
                                "correlationId": correlation}
        if category is not None:
            body["category"] = category
        body.update(extra)
        return Response(status, body, {"X-HubSpot-Correlation-Id": correlation,
                                       **(headers or {})})

    def unauthorized(self, request: Request) -> Response:
        return self._error(401, AUTH_MESSAGE, "INVALID_AUTHENTICATION",
                           {"X-HubSpot-Auth-Failure": "401 Unauthorized"})

    def rate_limited(self, request: Request, retry_after: float | None) -> Response:
        headers = {
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_limit
                                                           - self._daily_used)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(self.burst_limit),
            "X-HubSpot-RateLimit-Remaining": "0",
            "X-HubSpot-RateLimit-Secondly": str(max(1, self.burst_limit // 10)),
            "X-HubSpot-RateLimit-Secondly-Remaining": "0",
        }
        if retry_after is not None:
            headers["Retry-After"] = (str(int(retry_after)) if float(retry_after).is_integer()
                                      else f"{retry_after:.1f}")
        correlation = str(uuid.uuid4())
        headers["X-HubSpot-Correlation-Id"] = correlation
        return Response(429, {"status": "error", "message": "You have reached your secondly limit.",
                              "errorType": "RATE_LIMIT", "correlationId": correlation,
                              "policyName": "SECONDLY"}, headers)

    def server_error(self, request: Request, status: int) -> Response:
        message = "internal error" if status == 500 else HTTPStatus(status).phrase
        return self._error(status, message)

    def expired_cursor(self, request: Request) -> Response:
        after = request.param("after")
        if after is None and request.method == "POST":
            try:
                after = str((request.json() or {}).get("after"))
            except (ValueError, AttributeError):
                after = None
        return self._error(400, f"Invalid paging cursor: after={after!r} is expired or not a "
                                "cursor this endpoint issued", "VALIDATION_ERROR")

    def _not_found(self, request: Request) -> Response:
        return self._error(404, f"Resource not found: {request.method} {request.path}",
                           "OBJECT_NOT_FOUND")

    # --- rate-limit accounting -------------------------------------------------------------

    def _count_request(self) -> None:
        clock = time.monotonic()
        with self._state_lock:
            self._daily_used += 1
            self._recent.append(clock)
            while self._recent and self._recent[0] <= clock - 10.0:
                self._recent.popleft()

    def _rate_headers(self, burst: bool) -> dict[str, str]:
        clock = time.monotonic()
        with self._state_lock:
            headers = {"X-HubSpot-RateLimit-Daily": str(self.daily_limit),
                       "X-HubSpot-RateLimit-Daily-Remaining":
                           str(max(0, self.daily_limit - self._daily_used))}
            if burst:
                in_window = sum(1 for t in self._recent if t > clock - 10.0)
                in_second = sum(1 for t in self._recent if t > clock - 1.0)
                secondly = max(1, self.burst_limit // 10)
                headers.update({
                    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                    "X-HubSpot-RateLimit-Max": str(self.burst_limit),
                    "X-HubSpot-RateLimit-Remaining": str(max(0, self.burst_limit - in_window)),
                    "X-HubSpot-RateLimit-Secondly": str(secondly),
                    "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, secondly - in_second)),
                })
        return headers

    # --- routing ---------------------------------------------------------------------------

    def route(self, request: Request) -> Response:
        self._count_request()
        response = self._route(request)
        response.headers.setdefault("X-HubSpot-Correlation-Id", str(uuid.uuid4()))
        return response

    def _route(self, request: Request) -> Response:
        match = _PATH.fullmatch(request.path)
        if match is None:
            return self._not_found(request)
        prefix, type_name, object_id = match.groups()
        kind = _TYPE_ALIASES.get(type_name)
        if kind is None:
            return self._error(400, f"Unable to infer object type from: {type_name}",
                               "VALIDATION_ERROR")
        try:
            if object_id == "search" and request.method == "POST":
                response = self._search(kind, request)
                response.headers.update(self._rate_headers(burst=False))
                return response
            if request.method != "GET":
                return self._error(405, f"HTTP {request.method} is not supported by this "
                                        "emulator (read-only)", "VALIDATION_ERROR")
            if object_id is None:
                response = self._list(kind, prefix, request)
            else:
                response = self._get(kind, object_id, request)
        except _BadRequest as exc:
            return self._error(400, str(exc), "VALIDATION_ERROR")
        response.headers.update(self._rate_headers(burst=True))
        return response

    # --- GET list / read -------------------------------------------------------------------

    def _list_param(self, request: Request, name: str) -> list[str] | None:
        values = request.query.get(name)
        if not values:
            return None
        return [part.strip() for value in values for part in value.split(",") if part.strip()]

    def _associations(self, request: Request) -> list[str]:
        out = []
        for name in self._list_param(request, "associations") or ():
            kind = _TYPE_ALIASES.get(name)
            if kind is None:
                raise _BadRequest(f"Unable to infer object type from: {name}")
            out.append(kind)
        return out

    def _archived_flag(self, request: Request) -> bool:
        value = request.param("archived", "false")
        if value not in ("true", "false"):
            raise _BadRequest(f"archived: '{value}' is not a valid boolean value")
        return value == "true"

    def _list(self, kind: str, prefix: str, request: Request) -> Response:
        raw_limit = request.param("limit", "10")
        try:
            limit = int(raw_limit or "")
        except ValueError:
            raise _BadRequest(f"limit: '{raw_limit}' is not a valid integer") from None
        if not 1 <= limit <= 100:
            raise _BadRequest(f"limit must be between 1 and 100, got {limit}")
        archived = self._archived_flag(request)
        wanted = self._list_param(request, "properties")
        associations = self._associations(request)
        after = request.param("after")
        start = 0
        if after is not None:
            start = _decode_after(after)
            if start is None:
                return self._error(400, f"Invalid paging cursor: after={after!r} is not a "
                                        "cursor this endpoint issued", "VALIDATION_ERROR")
        records = [r for r in self._visible(kind, archived) if int(r.id) >= start]
        body: dict[str, Any] = {"results": [self._render(r, wanted, associations)
                                            for r in records[:limit]]}
        if len(records) > limit:
            token = _encode_after(int(records[limit].id))
            query = [(k, v) for k, vs in request.query.items() if k != "after" for v in vs]
            query.append(("after", token))
            link = f"{self.url}/crm/{prefix}/{kind}?{urlencode(query, quote_via=quote)}"
            body["paging"] = {"next": {"after": token, "link": link}}
        return Response(200, body)

    def _get(self, kind: str, object_id: str, request: Request) -> Response:
        archived = self._archived_flag(request)
        record = self._records[kind].get(object_id)
        if record is not None and self._exists(record):
            record = self._merged_into(record) or record  # an old id reads the merged record
        if (record is None or not self._exists(record)
                or (self._archived_at(record) is not None) != archived):
            return self._error(404, "Object not found.  objectId are usually numeric.",
                               "OBJECT_NOT_FOUND", context={"id": [object_id]})
        return Response(200, self._render(record, self._list_param(request, "properties"),
                                          self._associations(request)))

    # --- POST search -----------------------------------------------------------------------

    def _search(self, kind: str, request: Request) -> Response:
        try:
            body = request.json() if request.body else {}
        except ValueError as exc:
            raise _BadRequest(f"Invalid input JSON on line 1, column 1: {exc}") from None
        if not isinstance(body, dict):
            raise _BadRequest("Invalid input JSON: expected an object")
        unknown = sorted(set(body) - _SEARCH_KEYS)
        if unknown:
            raise _BadRequest(f'Invalid input JSON: Unrecognized field "{unknown[0]}"')
        limit = body.get("limit", 10)
        if isinstance(limit, str) and limit.isdigit():
            limit = int(limit)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 200:
            raise _BadRequest(f"limit must be between 1 and 200, got {limit!r}")
        offset = _offset(body.get("after"))
        if offset is None:
            return self._error(400, f"Invalid paging cursor: after={body.get('after')!r} is not "
                                    "a numeric offset", "VALIDATION_ERROR")
        if offset >= self.search_ceiling:
            return self._error(400, f"after={offset} is not a valid offset for this search",
                               "VALIDATION_ERROR")
        wanted = body.get("properties")
        if wanted is not None and (not isinstance(wanted, list)
                                   or not all(isinstance(p, str) for p in wanted)):
            raise _BadRequest("properties must be a list of property names")
        groups = _filter_groups(kind, body.get("filterGroups"))
        query = body.get("query")
        if query is not None and not isinstance(query, str):
            raise _BadRequest("query must be a string")
        sort_name, descending = _sort(kind, body.get("sorts"))

        matches = []
        for record in self._visible(kind, archived=False):
            props = self._all_properties(record, search=True)
            if groups and not any(all(_matches(kind, f, props) for f in g) for g in groups):
                continue
            if query and not any(query.lower() in (props.get(p) or "").lower()
                                 for p in _SEARCHABLE[kind]):
                continue
            matches.append((record, props))
        with_value = [m for m in matches if m[1].get(sort_name) is not None]
        with_value.sort(key=lambda m: int(m[0].id))  # ties by ascending id, either direction
        with_value.sort(key=lambda m: _typed(kind, sort_name, m[1][sort_name]),
                        reverse=descending)
        ordered = with_value + sorted((m for m in matches if m[1].get(sort_name) is None),
                                      key=lambda m: int(m[0].id))
        end = min(offset + limit, self.search_ceiling)
        page = ordered[offset:end]
        out: dict[str, Any] = {"total": len(ordered),
                               "results": [self._render(r, wanted, search=True)
                                           for r, _ in page]}
        if end < len(ordered):
            out["paging"] = {"next": {"after": str(end)}}
        return Response(200, out)


# --- helpers -------------------------------------------------------------------------------

def _encode_after(next_id: int) -> str:
    return base64.b64encode(str(next_id).encode()).decode().rstrip("=")


def _decode_after(token: str) -> int | None:
    try:
        text = base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _offset(after: Any) -> int | None:
    if after is None or after == "":
        return 0
    if isinstance(after, int) and not isinstance(after, bool) and after >= 0:
        return after
    if isinstance(after, str) and after.isdigit():
        return int(after)
    return None


def _ms(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _typed(kind: str, name: str, value: Any) -> Any:
    """A property or filter value as something comparable for the property's type."""
    try:
        return _typed_hashable(kind, name, value)
    except TypeError:  # an unhashable value (a list): checked without the cache
        return _typed_value(kind, name, value)


@lru_cache(maxsize=262_144)
def _typed_hashable(kind: str, name: str, value: Any) -> Any:
    return _typed_value(kind, name, value)


def _typed_value(kind: str, name: str, value: Any) -> Any:
    ptype = PROPERTIES[kind][name]
    if isinstance(value, bool) or value is None:
        raise _BadRequest(f"Invalid value {value!r} for property {name}")
    if ptype == "datetime":
        if isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"-?\d+", value)):
            return int(value)
        try:
            moment = parse_time(str(value))
        except ValueError:
            raise _BadRequest(f"Invalid value {value!r} for date-time property {name}: use "
                              "epoch milliseconds or an ISO 8601 timestamp") from None
        return _ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    if ptype == "number":
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise _BadRequest(f"Invalid value {value!r} for number property {name}") from None
    if ptype == "bool":
        text = str(value).lower()
        if text not in ("true", "false"):
            raise _BadRequest(f"Invalid value {value!r} for boolean property {name}")
        return text
    return str(value).lower()


def _filter_groups(kind: str, groups: Any) -> list[list[dict[str, Any]]]:
    if groups is None:
        return []
    if not isinstance(groups, list) or not all(
            isinstance(g, dict) and isinstance(g.get("filters"), list) for g in groups):
        raise _BadRequest("filterGroups must be a list of {filters: [...]} objects")
    if len(groups) > 5:
        raise _BadRequest(f"Too many filter groups: {len(groups)} (at most 5)")
    total = 0
    for group in groups:
        filters = group["filters"]
        if len(filters) > 10:
            raise _BadRequest(f"Too many filters in a group: {len(filters)} (at most 10)")
        total += len(filters)
        for f in filters:
            if not isinstance(f, dict):
                raise _BadRequest("each filter must be an object")
            name, op = f.get("propertyName"), f.get("operator")
            if name not in PROPERTIES[kind]:
                raise _BadRequest(f"Property {name!r} does not exist on {kind}")
            if op not in _OPERATORS:
                raise _BadRequest(f"Invalid operator {op!r}")
            if op in ("IN", "NOT_IN"):
                if not isinstance(f.get("values"), list):
                    raise _BadRequest(f"{op} needs a 'values' list")
                for v in f["values"]:
                    _typed(kind, name, v)
            elif op not in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
                _typed(kind, name, f.get("value"))
                if op == "BETWEEN":
                    _typed(kind, name, f.get("highValue"))
    if total > 25:
        raise _BadRequest(f"Too many filters: {total} (at most 25)")
    return [g["filters"] for g in groups]


def _matches(kind: str, f: dict[str, Any], props: dict[str, str | None]) -> bool:
    name, op = f["propertyName"], f["operator"]
    raw = props.get(name)
    if op == "HAS_PROPERTY":
        return raw is not None
    if op == "NOT_HAS_PROPERTY":
        return raw is None
    if raw is None:
        return op in ("NEQ", "NOT_IN")
    value = _typed(kind, name, raw)
    if op in ("IN", "NOT_IN"):
        inside = value in {_typed(kind, name, v) for v in f["values"]}
        return inside if op == "IN" else not inside
    target = _typed(kind, name, f["value"])
    if op == "BETWEEN":
        return target <= value <= _typed(kind, name, f["highValue"])
    return {"EQ": value == target, "NEQ": value != target, "LT": value < target,
            "LTE": value <= target, "GT": value > target, "GTE": value >= target}[op]


def _sort(kind: str, sorts: Any) -> tuple[str, bool]:
    if not sorts:
        return "createdate", False
    if not isinstance(sorts, list) or len(sorts) != 1:
        raise _BadRequest("sorts: only one sort is supported")
    sort = sorts[0]
    if isinstance(sort, str):
        name, descending = sort.lstrip("-"), sort.startswith("-")
    elif isinstance(sort, dict):
        name = sort.get("propertyName")
        direction = sort.get("direction", "ASCENDING")
        if direction not in ("ASCENDING", "DESCENDING"):
            raise _BadRequest(f"Invalid sort direction {direction!r}")
        descending = direction == "DESCENDING"
    else:
        raise _BadRequest("sorts must hold {propertyName, direction} objects")
    if name not in PROPERTIES[kind]:
        raise _BadRequest(f"Property {name!r} does not exist on {kind}")
    return name, descending
