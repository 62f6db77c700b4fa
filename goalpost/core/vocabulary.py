"""The words of a client file that a stage defines: connectors (pipelines), extensions and
dashboard templates (metabase).

The registry validates a client against them without importing any stage: each stage
registers what it offers under the `goalpost.vocabulary` entry-point group (see
pyproject.toml), read once, on first use, when a client names one of them.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any, Protocol

from goalpost.core.errors import GoalpostError

GROUP = "goalpost.vocabulary"
KINDS = ("connectors", "extensions", "dashboards")


class Connectors(Protocol):
    """The REST connectors a source may name, and their manifests."""

    def names(self) -> list[str]: ...

    def load(self, name: str) -> Any: ...

    def parse(self, document: dict[str, Any], origin: str) -> Any: ...

    def settings_problems(self, manifest: Any, config: dict[str, Any]) -> list[str]: ...


class Names(Protocol):
    """A vocabulary that is a list of names (extensions, dashboard templates)."""

    def names(self) -> list[str]: ...


@cache
def _registered() -> dict[str, Any]:
    found = {point.name: point for point in entry_points(group=GROUP)}
    missing = [kind for kind in KINDS if kind not in found]
    if missing:
        raise GoalpostError(
            f"Goalpost is not installed whole: nothing registers {', '.join(missing)} under "
            f"the {GROUP!r} entry points",
            hint="reinstall it (`pip install goalpost-*.whl`, or `make` in a checkout)")
    return {kind: found[kind].load() for kind in KINDS}


def connectors() -> Connectors:
    return _registered()["connectors"]


def extensions() -> Names:
    return _registered()["extensions"]


def dashboards() -> Names:
    return _registered()["dashboards"]
