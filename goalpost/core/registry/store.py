"""Reading and writing `clients/<slug>.yaml` with messages that point at the file and line.

Files are read with ruamel.yaml in round-trip mode, so that the CLI can edit a client (add a
source) and keep the consultant's comments and key order intact.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from goalpost.core.errors import ConfigError, NotFoundError
from goalpost.core.identifiers import check_slug
from goalpost.core.paths import clients_dir, project_root
from goalpost.core.registry.alert_rules import RULE_TAGS
from goalpost.core.registry.models import Client

M = TypeVar("M", bound=BaseModel)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    return yaml


def client_path(slug: str) -> Path:
    return clients_dir() / f"{check_slug(slug)}.yaml"


def display_path(path: Path) -> str:
    """The path relative to the project root when it is inside it, for messages."""
    try:
        return str(path.resolve().relative_to(project_root()))
    except ValueError:
        return str(path)


# Tags of the unions (a source's files or API, a goal's dates or keyword, an alert rule's
# kind): in pydantic's error locations, not in the file.
UNION_TAGS = ("files", "api", "dates_form", "keyword_form", *RULE_TAGS)


# Steps of pydantic's validators that show in error locations but not in the file.
VALIDATOR_STEPS = ("function-after", "function-before")


def _clean_loc(loc: Iterable[Any]) -> list[Any]:
    return [part for part in loc if part not in UNION_TAGS and part not in VALIDATOR_STEPS]


def _line_of(document: Any, loc: Iterable[Any]) -> int | None:
    """1-based line of the deepest node of `loc` found in the round-trip document."""
    node, line = document, None
    for part in _clean_loc(loc):
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def _field_path(loc: Iterable[Any]) -> str:
    text = ""
    for part in _clean_loc(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        elif "[" in str(part):
            continue
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _explain(error: dict[str, Any]) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return "unknown key: remove it or check its spelling"
    if kind == "missing":
        return "required: add it"
    if kind == "literal_error":
        return msg.replace("Input should be", "must be one of")
    if kind == "string_pattern_mismatch":
        return f"{msg} (got {error.get('input')!r})"
    return msg.removeprefix("Value error, ")


def parse_yaml_model(text: str, path: Path, model: type[M], *, what: str, keys: str,
                     hint: str) -> tuple[M, CommentedMap]:
    """Validate a YAML document against `model`; ConfigError lists every problem as
    file:line: field: message. `what` names the kind of file ("client definition"), `keys`
    a few of its top-level keys and `hint` where its format is described."""
    shown = display_path(path)
    try:
        document = _yaml().load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}" if mark else shown
        raise ConfigError(
            f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}",
            hint="check indentation and quoting around that line",
        ) from None
    if document is None:
        raise ConfigError(f"{shown}: the file is empty", hint=hint)
    if not isinstance(document, CommentedMap):
        raise ConfigError(f"{shown}: expected a mapping of keys ({keys}, ...)")
    try:
        value = model.model_validate(document)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            # A validator's error may say where below its field it is (MetricError.loc).
            cause = (error.get("ctx") or {}).get("error")
            loc = (*error["loc"], *getattr(cause, "loc", ()))
            line = _line_of(document, loc)
            where = f"{shown}:{line}" if line else shown
            lines.append(f"{where}: {_field_path(loc)}: {_explain(error)}")
        raise ConfigError(f"{shown} is not a valid {what}:\n  " + "\n  ".join(lines),
                          hint=hint) from None
    return value, document


def parse_client(text: str, path: Path) -> tuple[Client, CommentedMap]:
    """Validate one client's YAML; ConfigError lists every problem with file:line: field."""
    return parse_yaml_model(text, path, Client, what="client definition",
                            keys="name:, timezone:",
                            hint="fix the fields above, then run `goalpost client validate` "
                                 "(clients/panpan.yaml is a worked example)")


def load_client(slug: str) -> Client:
    """The validated client `slug`, or NotFoundError naming the registry folder."""
    path = client_path(slug)
    if not path.exists():
        known = ", ".join(list_slugs()) or "none yet"
        raise NotFoundError(
            f"no client {slug!r} in {display_path(path.parent)} (known: {known})",
            hint="create it with `goalpost client add`",
        )
    client, _ = parse_client(path.read_text(encoding="utf-8"), path)
    return client


def load_document(slug: str) -> CommentedMap:
    """The client's YAML as an editable round-trip document (after validating it)."""
    path = client_path(slug)
    if not path.exists():
        raise NotFoundError(f"no client {slug!r}", hint="create it with `goalpost client add`")
    _, document = parse_client(path.read_text(encoding="utf-8"), path)
    return document


def list_slugs() -> list[str]:
    folder = clients_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def dump(document: Any) -> str:
    buffer = io.StringIO()
    _yaml().dump(document, buffer)
    return buffer.getvalue()


def save_document(slug: str, document: CommentedMap) -> Path:
    """Validate, then write atomically: a bad edit never replaces a good file."""
    path = client_path(slug)
    text = dump(document)
    parse_client(text, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def new_document(values: dict[str, Any]) -> CommentedMap:
    """A round-trip document from plain values, so new files look hand-written."""
    return _yaml().load(dump(values))
