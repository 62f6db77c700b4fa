"""Set up a fresh Metabase from code, once, and keep an API key for everything after.

1. First admin through the setup token (`GET /api/session/properties`, `POST /api/setup/`),
   or, on a Metabase already set up, a login with the admin's email and password (skipped
   when the saved API key still works).
2. Site settings: name, weeks starting on Monday (as the templates' date filters assume), no
   anonymous tracking, the site URL when given, and the report time zone
   (GOALPOST_METABASE_TIMEZONE, default UTC), which Metabase reads alert schedules in.
3. SMTP from the same variables as Goalpost's alert emails (GOALPOST_SMTP_HOST, _PORT,
   _SECURITY starttls|ssl|none, _USER, _PASSWORD, _FROM).
4. "All Users" locked out: no queries on any database, no access to collections from root
   down (each client's group is given its own in `apply`).
5. An API key in the Administrators group, saved to <state dir>/metabase_api_key (0600)
   unless GOALPOST_METABASE_API_KEY is set.

Admin credentials: GOALPOST_METABASE_ADMIN_EMAIL (default admin@goalpost.invalid) and
GOALPOST_METABASE_ADMIN_PASSWORD; without a password a strong one is generated at first setup
and saved to <state dir>/metabase_admin_password (0600).

Re-running it writes only what differs.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from goalpost.core.errors import ConfigError
from goalpost.core.paths import state_dir
from goalpost.metabase import permissions
from goalpost.metabase.api import MetabaseClient, MetabaseError, api_key, metabase_url, save_api_key
from goalpost.metabase.plan import all_users_group
from goalpost.metabase.timezone import SETTING, wanted_timezone

KEY_NAME = "Goalpost"
PASSWORD_FILE = "metabase_admin_password"


@dataclass
class Bootstrapped:
    url: str
    steps: list[str] = field(default_factory=list)
    key_saved_to: str | None = None

    def render(self) -> str:
        return "\n".join([f"Metabase bootstrap ({self.url}):"] + [f"  {s}" for s in self.steps])


def _admin_credentials(generate: bool) -> tuple[str, str | None]:
    email = os.environ.get("GOALPOST_METABASE_ADMIN_EMAIL", "admin@goalpost.invalid")
    password = os.environ.get("GOALPOST_METABASE_ADMIN_PASSWORD")
    path = state_dir() / PASSWORD_FILE
    if not password and path.is_file():
        password = path.read_text().strip()
    if not password and generate:
        password = secrets.token_urlsafe(18) + "9a"
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(password + "\n")
    return email, password


def smtp_settings() -> tuple[dict[str, Any], str | None] | None:
    """Metabase's email settings from Goalpost's SMTP variables; None without a host."""
    env = os.environ
    host = env.get("GOALPOST_SMTP_HOST")
    if not host:
        return None
    security = env.get("GOALPOST_SMTP_SECURITY", "starttls").lower()
    if security not in ("starttls", "ssl", "none"):
        raise ConfigError(f"GOALPOST_SMTP_SECURITY={security!r}: use starttls, ssl or none")
    port_text = env.get("GOALPOST_SMTP_PORT") or {"starttls": "587", "ssl": "465"}.get(
        security, "25")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"GOALPOST_SMTP_PORT={port_text!r} is not a port number") from None
    settings = {"email-smtp-host": host, "email-smtp-port": port,
                "email-smtp-security": security,
                "email-smtp-username": env.get("GOALPOST_SMTP_USER") or None,
                "email-smtp-password": env.get("GOALPOST_SMTP_PASSWORD") or None}
    return settings, env.get("GOALPOST_SMTP_FROM") or None


def _key_works(url: str, key: str) -> bool:
    with MetabaseClient(url, key=key) as probe:
        try:
            probe.get("/api/permissions/group", what="checking the saved API key")
        except MetabaseError as exc:
            if exc.status in (401, 403):
                return False
            raise
    return True


def bootstrap(url: str | None = None, *, site_name: str | None = None) -> Bootstrapped:
    """Set Metabase up (or check it is) and make sure Goalpost has a working API key."""
    url = (url or metabase_url()).rstrip("/")
    done = Bootstrapped(url)
    mb = MetabaseClient(url)
    try:
        props = mb.get("/api/session/properties", what="reading Metabase's setup state")
        key = api_key()
        if not props.get("has-user-setup"):
            token = props.get("setup-token")
            if not token:
                raise MetabaseError("Metabase is not set up and offers no setup token",
                                    hint="restart Metabase, or set it up by hand once")
            email, password = _admin_credentials(generate=True)
            session = mb.post("/api/setup/", {
                "token": token,
                "user": {"email": email, "password": password, "first_name": "Goalpost",
                         "last_name": "Admin"},
                "prefs": {"site_name": site_name or "Goalpost", "site_locale": "en"}},
                what="creating the first admin")["id"]
            mb.use_session(session)
            done.steps.append(f"first admin {email} created")
            key = None
        elif key and _key_works(url, key):
            mb = MetabaseClient(url, key=key)
            done.steps.append("already set up; the saved API key works")
        else:
            email, password = _admin_credentials(generate=False)
            if not password:
                raise ConfigError("Metabase is already set up and Goalpost has no working API "
                                  "key", hint="set GOALPOST_METABASE_ADMIN_EMAIL and "
                                  "GOALPOST_METABASE_ADMIN_PASSWORD to an admin's login, or "
                                  "GOALPOST_METABASE_API_KEY to an admin API key")
            session = mb.post("/api/session/", {"username": email, "password": password},
                              what=f"logging in as {email}")["id"]
            mb.use_session(session)
            done.steps.append(f"logged in as {email}")
            key = None
        _site_settings(mb, site_name, done)
        _smtp(mb, done)
        _lock_all_users(mb, done)
        if key is None:
            key = _new_key(mb)
            if os.environ.get("GOALPOST_METABASE_API_KEY"):
                done.steps.append("API key created; GOALPOST_METABASE_API_KEY is set, so it "
                                  "was saved but that variable still wins: update it")
            path = save_api_key(key)
            done.key_saved_to = str(path)
            done.steps.append(f"API key '{KEY_NAME}' (Administrators) saved to {path}")
    finally:
        mb.close()
    return done


def _site_settings(mb: MetabaseClient, site_name: str | None, done: Bootstrapped) -> None:
    wanted: dict[str, Any] = {"start-of-week": "monday", "anon-tracking-enabled": False,
                              SETTING: wanted_timezone()}
    if site_name:
        wanted["site-name"] = site_name
    if os.environ.get("GOALPOST_METABASE_SITE_URL"):
        wanted["site-url"] = os.environ["GOALPOST_METABASE_SITE_URL"]
    current = {s["key"]: s.get("value") for s in mb.get("/api/setting/",
                                                        what="reading site settings")}
    changed = {k: v for k, v in wanted.items() if current.get(k) != v}
    if changed:
        mb.put("/api/setting/", changed, what="updating site settings")
        done.steps.append(f"site settings: {', '.join(sorted(changed))}")
    if SETTING in changed:
        done.steps.append(
            f"report time zone {wanted[SETTING]} (was {current.get(SETTING) or 'unset'}): "
            "alert schedules are read in it; `goalpost metabase apply` each client with "
            "Metabase alerts to convert theirs")


def _smtp(mb: MetabaseClient, done: Bootstrapped) -> None:
    found = smtp_settings()
    if found is None:
        done.steps.append("no GOALPOST_SMTP_HOST: Metabase's email left as it is")
        return
    settings, sender = found
    current = {s["key"]: s.get("value") for s in mb.get("/api/setting/",
                                                        what="reading email settings")}
    if any(current.get(k) != v for k, v in settings.items() if k != "email-smtp-password") \
            or settings["email-smtp-password"]:
        mb.put("/api/email/", settings, what="setting Metabase's SMTP server")
        done.steps.append(f"SMTP: {settings['email-smtp-host']}:{settings['email-smtp-port']} "
                          f"({settings['email-smtp-security']})")
    if sender and current.get("email-from-address") != sender:
        mb.put("/api/setting/email-from-address", {"value": sender},
               what="setting the sender address")
        done.steps.append(f"email from: {sender}")


def _lock_all_users(mb: MetabaseClient, done: Bootstrapped) -> None:
    all_users = all_users_group(mb)
    databases = [db["id"] for db in mb.get("/api/database/", what="listing databases")["data"]]
    data, collections = permissions.lockdown_entries(all_users, databases)
    graph = mb.get("/api/permissions/graph", what="reading the data permissions")
    delta = permissions.data_delta(graph, data)
    if delta:
        mb.put("/api/permissions/graph", {"revision": graph["revision"], "groups": delta},
               params={"skip-graph": "true"}, what="locking All Users out of every database")
        done.steps.append(f"All Users: no queries on {len(delta[str(all_users)])} database(s)")
    coll_graph = mb.get("/api/collection/graph", what="reading the collection permissions")
    coll_delta = permissions.collection_delta(coll_graph, collections)
    if coll_delta:
        mb.put("/api/collection/graph", {"revision": coll_graph["revision"],
                                         "groups": coll_delta},
               params={"skip-graph": "true"}, what="locking All Users out of collections")
        done.steps.append("All Users: no access to the root collection")


def _new_key(mb: MetabaseClient) -> str:
    groups = mb.get("/api/permissions/group", what="listing groups")
    admins = next(g["id"] for g in groups if g["name"] == permissions.ADMINISTRATORS)
    existing = next((k for k in mb.get("/api/api-key/", what="listing API keys")
                     if k["name"] == KEY_NAME), None)
    if existing is not None:
        found = mb.put(f"/api/api-key/{existing['id']}/regenerate",
                       what="regenerating Goalpost's API key (the saved one was lost)")
    else:
        found = mb.post("/api/api-key/", {"group_id": admins, "name": KEY_NAME},
                        what="creating Goalpost's API key")
    return found["unmasked_key"]
