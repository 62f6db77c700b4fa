"""The REST client for Metabase, and where Goalpost finds Metabase and its API key.

Settings (environment):

- GOALPOST_METABASE_URL: Metabase's address (default http://localhost:3000).
- GOALPOST_METABASE_API_KEY: the API key; without it, the key `goalpost metabase bootstrap`
  saved in `<state dir>/metabase_api_key` (mode 0600).
- GOALPOST_METABASE_DB_HOST, _DB_PORT, _DB_NAME: the warehouse as Metabase reaches it (in
  docker-compose: postgres, 5432); default: the host, port and database of the warehouse
  URL Goalpost itself uses. GOALPOST_METABASE_DB_SSL=true makes Metabase connect with SSL.

Every failure is a MetabaseError naming the call and what it was for, with Metabase's own
message; the CLI prints it without a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from goalpost.core.errors import ConfigError, GoalpostError
from goalpost.core.paths import state_dir

DEFAULT_URL = "http://localhost:3000"
KEY_FILE = "metabase_api_key"


class MetabaseError(GoalpostError):
    """Metabase could not be reached or refused a call."""

    exit_code = 4

    def __init__(self, message: str, *, status: int | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


def metabase_url() -> str:
    return os.environ.get("GOALPOST_METABASE_URL", DEFAULT_URL).rstrip("/")


def key_path() -> Path:
    return state_dir() / KEY_FILE


def api_key() -> str | None:
    """GOALPOST_METABASE_API_KEY, else the key bootstrap saved."""
    env = os.environ.get("GOALPOST_METABASE_API_KEY")
    if env:
        return env.strip()
    path = key_path()
    return path.read_text().strip() if path.is_file() else None


def save_api_key(key: str) -> Path:
    """Keep the key where only this user can read it."""
    path = key_path()
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(key + "\n")
    return path


def warehouse_details() -> dict[str, Any]:
    """How Metabase reaches the warehouse: host, port, dbname (and ssl)."""
    from goalpost.core.warehouse.connection import database_url

    env = os.environ
    parts = urlsplit(database_url()) if not all(
        env.get(f"GOALPOST_METABASE_DB_{k}") for k in ("HOST", "PORT", "NAME")) else None
    host = env.get("GOALPOST_METABASE_DB_HOST") or (parts.hostname if parts else None)
    port_text = env.get("GOALPOST_METABASE_DB_PORT") or str((parts.port if parts else None) or 5432)
    dbname = env.get("GOALPOST_METABASE_DB_NAME") or (parts.path.lstrip("/") if parts else "")
    if not host:
        raise ConfigError("the warehouse URL has no host Metabase could connect to (a Unix "
                          "socket?)", hint="set GOALPOST_METABASE_DB_HOST (and _DB_PORT, "
                          "_DB_NAME) to the warehouse as Metabase sees it")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"GOALPOST_METABASE_DB_PORT={port_text!r} is not a port number") \
            from None
    ssl = env.get("GOALPOST_METABASE_DB_SSL", "false").lower() in ("1", "true", "yes")
    return {"host": host, "port": port, "dbname": dbname, "ssl": ssl}


class MetabaseClient:
    """Calls to Metabase's REST API, authenticated with an API key or a session."""

    def __init__(self, url: str | None = None, *, key: str | None = None,
                 session: str | None = None, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = (url or metabase_url()).rstrip("/")
        self._headers: dict[str, str] = {}
        if key:
            self._headers["x-api-key"] = key
        if session:
            self._headers["X-Metabase-Session"] = session
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    @classmethod
    def from_env(cls) -> MetabaseClient:
        key = api_key()
        if not key:
            raise ConfigError("no Metabase API key",
                              hint="run `goalpost metabase bootstrap` once, or set "
                              "GOALPOST_METABASE_API_KEY")
        return cls(key=key)

    def use_session(self, session: str) -> None:
        self._headers.pop("x-api-key", None)
        self._headers["X-Metabase-Session"] = session

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MetabaseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, *, what: str, json: Any = None,
             params: dict[str, Any] | list[tuple[str, Any]] | None = None) -> Any:
        """One request; `what` says what it is for, in the error message."""
        try:
            response = self._http.request(method, path, json=json, params=params,
                                          headers=self._headers)
        except httpx.HTTPError as exc:
            raise MetabaseError(
                f"cannot reach Metabase at {self.url} ({what}): {exc}",
                hint="is Metabase running? check GOALPOST_METABASE_URL") from None
        if response.status_code >= 400:
            raise MetabaseError(
                f"Metabase refused {method} {path} ({what}): {response.status_code} "
                f"{_message(response)}", status=response.status_code,
                hint=_hint(response.status_code))
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise MetabaseError(f"Metabase answered {method} {path} ({what}) with something "
                                "that is not JSON", hint="is GOALPOST_METABASE_URL Metabase's "
                                "address?") from None

    def get(self, path: str, *, what: str, params: Any = None) -> Any:
        return self.call("GET", path, what=what, params=params)

    def post(self, path: str, json: Any = None, *, what: str, params: Any = None) -> Any:
        return self.call("POST", path, what=what, json=json, params=params)

    def put(self, path: str, json: Any = None, *, what: str, params: Any = None) -> Any:
        return self.call("PUT", path, what=what, json=json, params=params)

    def delete(self, path: str, *, what: str) -> Any:
        return self.call("DELETE", path, what=what)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip()
    if isinstance(body, dict):
        for key in ("message", "errors", "error"):
            if body.get(key):
                return str(body[key])[:500]
    return str(body)[:300]


def _hint(status: int) -> str | None:
    return {
        401: "the API key is missing or revoked: run `goalpost metabase bootstrap` or set "
             "GOALPOST_METABASE_API_KEY",
        403: "the API key's group lacks the permission: use a key in the Administrators group",
        409: "someone changed the permissions meanwhile: run the command again",
        402: "that feature needs Metabase Pro/Enterprise",
    }.get(status)
