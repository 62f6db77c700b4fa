"""Calling a vendor API the way its manifest says: auth, retries, rate limits, error rules.

Every response is classified before anyone reads it: the stream's and the manifest's error
rules first (they catch errors hidden in a 200 body, expired cursors, result ceilings), then the
defaults: 429 waits (Retry-After when sent, else exponential backoff with full jitter), 5xx,
timeouts, cut connections and malformed JSON are retried up to a cap, 401 refreshes an OAuth
token once, any other 4xx fails with the vendor's message. Messages never carry secrets.
"""

from __future__ import annotations

import random
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson

from goalpost.core.errors import ConfigError, GoalpostError
from goalpost.pipelines.connectors.manifest import ErrorRule, Manifest
from goalpost.pipelines.connectors.secrets import Redactor, store_secret
from goalpost.pipelines.connectors.templating import TemplateError, get_path, render

MAX_RETRY_AFTER = 600.0


class ExtractError(GoalpostError):
    """A source could not be read; the message says why and what to do (secrets masked)."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(Redactor.redact(message), hint=Redactor.redact(hint) if hint else None)


class BudgetSpent(ExtractError):
    """The day's API allowance is used up: the run stops before the vendor refuses it."""


class RestartChain(Exception):  # noqa: N818 - a signal, not an error
    """The API refused a page token (expired cursor): start the query again."""


class SplitWindow(Exception):  # noqa: N818 - a signal, not an error
    """The API's result ceiling was hit: ask for a shorter time window."""


@dataclass
class Page:
    status: int
    content: bytes
    body: Any
    headers: httpx.Headers
    url: str
    warning: str | None = None  # a `warn` error rule matched: loaded, and said in the run


class ApiClient:
    """One source's HTTP client: holds the connection pool and the current credentials."""

    def __init__(self, manifest: Manifest, settings: dict[str, Any], *, slug: str, source: str,
                 sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.manifest = manifest
        self.settings = settings
        self.slug, self.source = slug, source
        self.sleep, self.clock = sleep, clock
        self.retries = 0
        self.waited = 0.0
        self.calls = 0  # API requests sent (token requests aside)
        self._sent: deque[float] = deque()  # clock of the last minute's requests
        self.day_budget = _day_budget(manifest, settings)
        self.budget_day = datetime.now(UTC).date().isoformat()
        self.calls_today: int | None = None  # set from the stored count before the first call
        self.check_results: dict[str, list[str]] = {}  # the manifest's checks, asked once
        try:
            base = settings.get("base_url") or render(manifest.base_url, {"config": settings})
        except TemplateError as exc:
            raise ExtractError(f"{source}: the connector's base URL needs the setting "
                               f"{exc.args[0].removeprefix('config.')}",
                               hint="add it under the source's config") from None
        timeout = httpx.Timeout(manifest.retry.timeout_seconds, connect=10.0)
        if transport is None:
            # Small request bodies follow their headers at once rather than after an ACK.
            transport = httpx.HTTPTransport(
                retries=0, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self.http = httpx.Client(base_url=base, timeout=timeout, transport=transport,
                                 headers=render(manifest.headers, {"config": settings}))
        self._fixed_base = bool(settings.get("base_url"))
        self._access_token: str | None = None
        self.token_expires_at: datetime | None = None  # the OAuth access token's, when known
        self.token_answer: dict[str, Any] = {}  # the last token answer, secrets left out

    def close(self) -> None:
        self.http.close()

    # --- auth -----------------------------------------------------------------------------

    def _auth(self, headers: dict[str, str], params: dict[str, Any]) -> httpx.Auth | None:
        auth = self.manifest.auth
        context = {"config": self.settings}
        if auth.type == "bearer":
            headers["Authorization"] = f"Bearer {render(auth.token, context)}"
        elif auth.type == "header":
            headers[auth.header] = f"{auth.prefix}{render(auth.token, context)}"
        elif auth.type == "query":
            params[auth.param] = render(auth.token, context)
        elif auth.type == "basic":
            return httpx.BasicAuth(render(auth.username, context),
                                   render(auth.password or "", context))
        elif auth.type == "oauth2_refresh":
            if self._access_token is None:
                initial = render(auth.token, context) if auth.token else None
                if initial:
                    Redactor.add(initial)
                    self._access_token = initial
                else:
                    self.refresh_token()
            headers[auth.scheme_header] = f"{auth.scheme} {self._access_token}".strip()
        return None

    def read_token_status(self) -> None:
        """Ask the vendor when the access token in use expires (auth.status_url)."""
        auth = self.manifest.auth
        if auth.status_url is None:
            return
        page = self.request("POST", render(auth.status_url, {"config": self.settings}),
                            json_body={})
        if isinstance(page.body, dict):
            self.token_expires_at = _expiry(page.body, auth.expires_at_path,
                                            auth.expires_in_path)

    def can_refresh(self) -> bool:
        """Whether the source has what an OAuth refresh needs."""
        auth = self.manifest.auth
        return auth.type == "oauth2_refresh" and all(
            self.settings.get(name) not in (None, "") for name in auth.refresh_settings())

    def refresh_token(self) -> None:
        """Trade the refresh token for an access token; keep a rotated refresh token."""
        auth = self.manifest.auth
        context = {"config": self.settings}
        if not self.can_refresh():
            raise ExtractError(
                f"{self.source}: the access token was refused (expired or revoked) and no "
                "refresh token is configured to renew it",
                hint="set " + ", ".join(auth.refresh_settings()) + " in the source's config "
                     "(as env:NAME) so that Goalpost renews the token itself, or paste a new "
                     "access token")
        payload = {"grant_type": "refresh_token",
                   "client_id": render(auth.client_id, context),
                   "client_secret": render(auth.client_secret, context),
                   "refresh_token": render(auth.refresh_token, context)}
        url = render(auth.token_url, context)
        try:
            response = (self.http.post(url, json=payload) if auth.token_body == "json"
                        else self.http.post(url, data=payload))
        except httpx.HTTPError as exc:
            raise ExtractError(f"{self.source}: cannot reach the token endpoint {url}: "
                               f"{exc}") from None
        body = _json_or_none(response.content)
        token = get_path(body, auth.access_token_path) if body is not None else None
        if response.status_code >= 400 or not token:
            raise ExtractError(
                f"{self.source}: the token endpoint refused the refresh token "
                f"(HTTP {response.status_code}: {_excerpt(response.content)})",
                hint="issue a new refresh token and update the environment variable")
        Redactor.add(token)
        self._access_token = token
        self.token_answer = {k: v for k, v in body.items()
                             if k not in (auth.access_token_path, auth.refresh_token_path)}
        self.token_expires_at = _expiry(body, auth.expires_at_path, auth.expires_in_path)
        domain = get_path(body, auth.api_domain_path) if auth.api_domain_path else None
        if isinstance(domain, str) and domain and not self._fixed_base:
            # The token answer names the API host of the account's data centre.
            self.http.base_url = domain
        if auth.rotates:
            new_refresh = get_path(body, auth.refresh_token_path)
            setting = (auth.refresh_token or "").strip("{}").removeprefix("config.")
            if new_refresh and setting in self.settings:
                Redactor.add(new_refresh)
                self.settings[setting] = new_refresh
                store_secret(self.slug, self.source, setting, new_refresh)

    # --- requests -------------------------------------------------------------------------

    def request(self, method: str, url: str, *, params: dict[str, Any] | None = None,
                json_body: Any = None, headers: dict[str, str] | None = None,
                rules: list[ErrorRule] = ()) -> Page:  # type: ignore[assignment]
        """Send a request until it succeeds, retrying what is worth retrying."""
        retry = self.manifest.retry
        attempt = 0
        refreshed = False
        while True:
            send_headers = dict(headers or {})
            send_params = dict(params or {})
            auth = self._auth(send_headers, send_params)
            self._spend()
            try:
                response = self.http.request(method, url, params=send_params or None,
                                             json=json_body, headers=send_headers, auth=auth)
                content = response.content
            except httpx.TimeoutException as exc:
                attempt = self._backoff(attempt, None, f"timed out ({type(exc).__name__})", url)
                continue
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                # The URL itself is wrong: asking again cannot help.
                raise ConfigError(
                    f"{self.source}: {Redactor.redact(url)} is not a URL it can call ({exc})",
                    hint="check base_url in the client's YAML (http:// or https://, or an "
                         "env: reference to a variable that holds one)") from None
            except httpx.TransportError as exc:
                attempt = self._backoff(attempt, None, f"connection failed ({exc})", url)
                continue
            body = _json_or_none(content)
            action, message = self._classify(response, content, body, [*rules,
                                             *self.manifest.errors])
            if action in ("ok", "warn"):
                self._respect_budget(response.headers)
                return Page(response.status_code, content, body, response.headers,
                            str(response.url), warning=message if action == "warn" else None)
            if action == "ignore":
                return Page(response.status_code, b"null", None, response.headers,
                            str(response.url))
            if action in ("retry", "rate_limited"):
                wait = _retry_after(response.headers.get(retry.retry_after_header))
                attempt = self._backoff(attempt, wait, message, url)
                continue
            if action == "refresh_token" and not refreshed and \
                    self.manifest.auth.type == "oauth2_refresh":
                refreshed = True
                self.refresh_token()
                continue
            if action == "restart":
                raise RestartChain(message)
            if action == "split_window":
                raise SplitWindow(message)
            if action == "refresh_token":
                raise ExtractError(
                    f"{self.source}: the API rejected the credentials ({message})",
                    hint="check the token in the environment variable named in the source's "
                         "config; `goalpost source test` tries them without loading")
            raise ExtractError(f"{self.source}: {method} {_path(url)} failed: {message}")

    def use_budget(self, day: str, used: int) -> None:
        """Start counting the day's calls from what earlier runs of this source spent."""
        if self.calls_today is None:
            self.budget_day = datetime.now(UTC).date().isoformat()
            self.calls_today = used if day == self.budget_day else 0

    def budget_left(self) -> int | None:
        """Calls the day's allowance still allows (None: the vendor sets no daily cap)."""
        if self.day_budget is None:
            return None
        return max(self.day_budget - (self.calls_today or 0), 0)

    def _spend(self) -> None:
        """Pace to the per-minute allowance; refuse a call the day's allowance lacks."""
        budget = self.manifest.budget
        if budget is None:
            return
        today = datetime.now(UTC).date().isoformat()
        if today != self.budget_day:
            self.budget_day, self.calls_today = today, 0
        if self.day_budget is not None and (self.calls_today or 0) >= self.day_budget:
            raise BudgetSpent(
                f"{self.source}: the day's API budget of {self.day_budget:,} calls is spent "
                f"({self.calls_today:,} calls today, UTC); the run stops here rather than be "
                "refused by the vendor, and the next run goes on from what is loaded",
                hint="raise the source's daily_budget if the organisation's plan allows more "
                     "calls, or run again tomorrow")
        if budget.per_minute:
            moment = self.clock()
            while self._sent and self._sent[0] <= moment - 60.0:
                self._sent.popleft()
            if len(self._sent) >= budget.per_minute:
                wait = self._sent[0] + 60.0 - moment
                self.waited += wait
                self.sleep(wait)
                moment = self.clock()
                while self._sent and self._sent[0] <= moment - 60.0:
                    self._sent.popleft()
            self._sent.append(moment)
        self.calls += 1
        self.calls_today = (self.calls_today or 0) + 1

    def _classify(self, response: httpx.Response, content: bytes, body: Any,
                  rules: list[ErrorRule]) -> tuple[str, str]:
        status = response.status_code
        for rule in rules:
            if rule.status and status not in rule.status:
                continue
            if rule.json_path is not None:
                value = get_path(body, rule.json_path)
                if value is None or (rule.equals is not None and value != rule.equals):
                    continue
            if rule.contains is not None and rule.contains.encode() not in content:
                continue
            return rule.action, rule.message or f"HTTP {status}: {_excerpt(content)}"
        if status == 429:
            return "rate_limited", f"rate limited (HTTP 429: {_excerpt(content)})"
        if status == 401:
            return "refresh_token", f"HTTP 401: {_excerpt(content)}"
        if status >= 500 or status == 408:
            return "retry", f"HTTP {status}: {_excerpt(content)}"
        if status >= 400:
            return "fail", f"HTTP {status}: {_excerpt(content)}"
        if content.strip() and body is None:
            return "retry", f"malformed JSON in a {status} response: {_excerpt(content)}"
        return "ok", ""

    def _backoff(self, attempt: int, wait: float | None, message: str, url: str) -> int:
        retry = self.manifest.retry
        if attempt >= retry.max_retries:
            raise ExtractError(
                f"{self.source}: {_path(url)} still failing after {attempt} retries: {message}",
                hint="the run can be repeated safely: records already loaded are kept once")
        if wait is None:
            wait = random.uniform(0, min(retry.max_seconds, retry.base_seconds * 2 ** attempt))
        self.retries += 1
        self.waited += wait
        self.sleep(wait)
        return attempt + 1

    def _respect_budget(self, headers: httpx.Headers) -> None:
        retry = self.manifest.retry
        value = headers.get(retry.budget_header) if retry.budget_header else None
        if not value:
            return
        try:
            if retry.budget_format == "used/size":
                used, size = (float(x) for x in value.split("/"))
                free = size - used
            else:
                free = float(value)
        except ValueError:
            return
        if free < retry.budget_min_free:
            self.waited += retry.budget_wait_seconds
            self.sleep(retry.budget_wait_seconds)


def _day_budget(manifest: Manifest, settings: dict[str, Any]) -> int | None:
    if manifest.budget is None or manifest.budget.per_day is None:
        return None
    value = render(manifest.budget.per_day, {"config": settings})
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        raise ExtractError(f"the daily API budget must be a number of calls, not {value!r}",
                           hint="fix daily_budget in the source's config") from None


def _expiry(body: dict[str, Any], at_path: str, in_path: str) -> datetime | None:
    """When a token answer says its access token expires: an RFC 3339 time or seconds."""
    at = get_path(body, at_path)
    if isinstance(at, str):
        try:
            moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None:
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    seconds = get_path(body, in_path)
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
        return datetime.now(UTC) + timedelta(seconds=seconds)
    return None


def _json_or_none(content: bytes) -> Any:
    if not content.strip():
        return None
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (a number or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        pass
    try:
        return min(max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0),
                   MAX_RETRY_AFTER)
    except (TypeError, ValueError):
        return None


def _excerpt(content: bytes, limit: int = 300) -> str:
    # Masked whole, then cut: a secret cut in two would no longer be recognised.
    text = Redactor.redact(content.decode("utf-8", "replace").strip().replace("\n", " "))
    return text[:limit] + ("..." if len(text) > limit else "") or "(empty)"


def _path(url: str) -> str:
    """The URL without its query string (which may hold credentials)."""
    return Redactor.redact(url.split("?", 1)[0])
