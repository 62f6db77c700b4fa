"""The dashboard templates a client may pick, registered with goalpost.core.vocabulary."""

from __future__ import annotations

from goalpost.metabase.template import TEMPLATES_DIR


def names() -> list[str]:
    return sorted(path.stem for path in TEMPLATES_DIR.glob("*.yaml"))
