"""Dotted paths into JSON and `{placeholder}` templates, as manifests use them."""

from __future__ import annotations

import copy
import re
from typing import Any

_PLACEHOLDER = re.compile(r"\{([a-z_]+(?:\.[A-Za-z0-9_]+)+)\}")
_MISSING = object()


class TemplateError(KeyError):
    """A placeholder names something the context does not have."""


def get_path(value: Any, path: str | None, default: Any = None) -> Any:
    """The value at a dotted path ("paging.next.after", "errors.0.code"); "" is the value."""
    if not path:
        return value
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.lstrip("-").isdigit():
            index = int(part)
            value = value[index] if -len(value) <= index < len(value) else _MISSING
        else:
            value = _MISSING
        if value is _MISSING:
            return default
    return value


def set_path(target: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path in nested dicts, creating the dicts on the way."""
    parts = path.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _lookup(context: dict[str, Any], dotted: str) -> Any:
    value = get_path(context, dotted, _MISSING)
    if value is _MISSING:
        raise TemplateError(dotted)
    return value


def render(value: Any, context: dict[str, Any]) -> Any:
    """Fill the placeholders of a template (string, list or dict, recursively).

    A string that is exactly one placeholder takes the value itself (a list stays a list);
    otherwise values are written into the string. A placeholder whose value is None leaves the
    key out of a dict, so that optional parameters are not sent empty.
    """
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return _lookup(context, whole.group(1))
        return _PLACEHOLDER.sub(lambda m: str(_lookup(context, m.group(1))), value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            rendered = render(item, context)
            if rendered is not None:
                out[key] = rendered
        return out
    if isinstance(value, list):
        return [render(item, context) for item in value]
    return copy.deepcopy(value)
