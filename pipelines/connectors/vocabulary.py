"""The connectors a client's sources may name, registered with goalpost.core.vocabulary."""

from __future__ import annotations

from typing import Any

from goalpost.pipelines.connectors.manifest import (
    Manifest,
    catalogue,
    load_manifest,
    parse_manifest,
)
from goalpost.pipelines.connectors.secrets import settings_problems as _settings_problems


def names() -> list[str]:
    return catalogue()


def load(name: str) -> Manifest:
    return load_manifest(name)


def parse(document: dict[str, Any], origin: str) -> Manifest:
    return parse_manifest(document, origin)


def settings_problems(manifest: Manifest, config: dict[str, Any]) -> list[str]:
    return _settings_problems(manifest, config)
