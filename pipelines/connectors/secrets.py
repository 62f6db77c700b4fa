"""Secrets of REST sources: referenced as `env:NAME` in YAML, never written there or logged.

A source's settings resolve here: `env:NAME` takes the environment variable (a clear error
names the variable when it is unset). OAuth refresh tokens that the vendor rotates are kept in
the state folder (`.goalpost/secrets/`, owner-only), which then wins over the environment.
Every resolved secret is registered with `Redactor`, which masks it, in every encoding, in any
text that leaves the process (goalpost.core.masking: messages, run records, logs).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from goalpost.core import masking
from goalpost.core.errors import ConfigError
from goalpost.core.paths import state_dir
from goalpost.pipelines.connectors.manifest import Manifest, setting_names

ENV_REF = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")
MASK = masking.MASK
# Settings every REST source takes: another host (a sandbox, an emulator) and a smaller page.
GENERIC_SETTINGS = ("base_url", "page_size")


class Redactor:
    """The connectors' name for goalpost.core.masking: register a secret, mask a text."""

    @staticmethod
    def add(value: str) -> None:
        masking.register(value)

    @staticmethod
    def redact(text: str) -> str:
        return masking.mask(text)


def is_env_ref(value: Any) -> bool:
    return isinstance(value, str) and bool(ENV_REF.match(value))


def settings_problems(manifest: Manifest, settings: dict[str, Any]) -> list[str]:
    """What is wrong with a source's settings: a secret written as a value, a required
    setting missing, an unknown setting."""
    problems = []
    for name, spec in manifest.settings.items():
        value = settings.get(name)
        if spec.choices is not None and value is not None and value not in spec.choices:
            problems.append(f"config.{name} is {value!r}; connector {manifest.name} knows "
                            f"{', '.join(map(str, spec.choices))}")
        if value is None and spec.required and spec.default is None:
            problems.append(f"config.{name} is required by connector {manifest.name} "
                            f"({spec.description})")
        if spec.secret and value is not None and not is_env_ref(value):
            problems.append(f"config.{name} is a secret and must not be written in the file: "
                            f"write `{name}: env:SOME_VARIABLE` and set that variable")
    auth = manifest.auth
    if auth.type == "oauth2_refresh":
        given = {name for name, spec in manifest.settings.items()
                 if settings.get(name, spec.default) not in (None, "")}
        renewable = set(auth.refresh_settings())
        initial = set(setting_names(auth.token))
        if not renewable <= given and not (initial and initial <= given):
            wanted = " and ".join(sorted(renewable))
            problems.append(
                f"connector {manifest.name} needs {wanted} (OAuth, renewed automatically)"
                + (f", or {' and '.join(sorted(initial))} (an access token, used until it "
                   "expires)" if initial else ""))
    unknown = sorted(set(settings) - set(manifest.settings) - set(GENERIC_SETTINGS))
    if unknown:
        problems.append(f"unknown setting(s) {', '.join(unknown)} for connector {manifest.name}"
                        f" (known: {', '.join([*sorted(manifest.settings), *GENERIC_SETTINGS])})")
    return problems


def _store(slug: str, source: str) -> Path:
    return state_dir() / "secrets" / f"{slug}__{source}.json"


def stored_secrets(slug: str, source: str) -> dict[str, str]:
    path = _store(slug, source)
    return json.loads(path.read_text()) if path.exists() else {}


def store_secret(slug: str, source: str, name: str, value: str) -> None:
    """Keep a rotated secret (an OAuth refresh token) for the next runs, owner-only."""
    path = _store(slug, source)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = stored_secrets(slug, source)
    data[name] = value
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    Redactor.add(value)


def resolve_settings(manifest: Manifest, settings: dict[str, Any], *, slug: str,
                     source: str) -> dict[str, Any]:
    """Settings with defaults applied and `env:` references replaced by their values."""
    resolved: dict[str, Any] = {}
    stored = stored_secrets(slug, source)
    for name, spec in manifest.settings.items():
        value = settings.get(name, spec.default)
        if name in stored:
            value = stored[name]
        else:
            value = _from_environment(value, name, slug=slug, source=source)
        if spec.secret and isinstance(value, str):
            Redactor.add(value)
        resolved[name] = value
    for name, spec in manifest.settings.items():
        chosen = (spec.choices or {}).get(resolved.get(name))
        for implied, value in (chosen or {}).items():
            if settings.get(implied) is None:
                resolved[implied] = value
    for name in GENERIC_SETTINGS:
        if name in settings:
            resolved[name] = _from_environment(settings[name], name, slug=slug, source=source)
    return resolved


def _from_environment(value: Any, name: str, *, slug: str, source: str) -> Any:
    """An `env:NAME` setting's value from the environment; any other value as it is."""
    if not is_env_ref(value):
        return value
    variable = ENV_REF.match(value).group(1)
    if variable not in os.environ:
        raise ConfigError(
            f"source {source} of {slug}: setting {name!r} reads the environment "
            f"variable {variable}, which is not set",
            hint=f"export {variable}=... before running")
    return os.environ[variable]
