"""The extensions a client may switch on, registered with goalpost.core.vocabulary.

Listed from the package's modules without importing them (they import pandas and the
statistics libraries): every module but the framework's own is an extension.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path

# The extension framework and the libraries the built-ins share: not extensions themselves.
FRAMEWORK = frozenset({"api", "runner", "forecasting", "vocabulary", "detector", "seasons"})


def module_names() -> list[str]:
    """The modules that hold the extensions (goalpost.extensions.<name>)."""
    folder = str(Path(__file__).resolve().parent)
    return sorted(module.name for module in pkgutil.iter_modules([folder])
                  if module.name not in FRAMEWORK and not module.name.startswith("_"))


def names() -> list[str]:
    return module_names()
