"""What the CLI does with REST sources besides running them: test, add, reset, describe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from goalpost.core import registry
from goalpost.core.errors import ConfigError, GoalpostError, NotFoundError
from goalpost.core.identifiers import check_name
from goalpost.core.registry.models import ApiSource
from goalpost.pipelines.connectors.engine import (
    BUDGET_STATE,
    PageFetcher,
    load_state,
    parse_cursor,
    run_check,
)
from goalpost.pipelines.connectors.http import ApiClient
from goalpost.pipelines.connectors.manifest import catalogue, load_manifest
from goalpost.pipelines.connectors.secrets import Redactor, resolve_settings, settings_problems
from goalpost.pipelines.connectors.templating import render
from goalpost.pipelines.raw import raw_identifier
from goalpost.pipelines.stream_check import StreamCheck


def describe_connectors() -> list[dict[str, Any]]:
    """The catalogue: every shipped connector with its settings and streams."""
    out = []
    for name in catalogue():
        manifest = load_manifest(name)
        out.append({
            "name": name, "title": manifest.title, "description": manifest.description,
            "settings": {k: {"required": v.required, "secret": v.secret,
                             "default": v.default, "description": v.description}
                         for k, v in manifest.settings.items()},
            "streams": {k: {"description": s.description, "entity": s.entity,
                            "incremental": s.incremental.cursor_field if s.incremental else None,
                            "primary_key": s.primary_key}
                        for k, s in manifest.streams.items()},
        })
    return out


def test_api_source(slug: str, source: ApiSource,
                    conn: psycopg.Connection | None = None) -> list[StreamCheck]:
    """Authenticate and read the first page of each stream, then say what the account lacks
    before a first run (an `account` check: scopes, data centre, API budget, token expiry);
    write nothing. `conn` (optional) gives the API calls already spent today."""
    manifest = source.load_manifest()
    checks: list[StreamCheck] = []
    try:
        settings = resolve_settings(manifest, source.config, slug=slug, source=source.name)
    except GoalpostError as exc:
        return [StreamCheck(source.name, "*", False, problems=[str(exc)])]
    client = ApiClient(manifest, settings, slug=slug, source=source.name)
    parents: dict[str, list[Any]] = {}
    try:
        for name in source.stream_names():
            stream = manifest.streams[name]
            check = StreamCheck(source.name, name, True)
            checks.append(check)
            partition = {"key": "*", "value": None, "values": None}
            if stream.partitions is not None:
                if stream.partitions.from_stream:
                    values = [r.get(stream.partitions.field) for r in
                              parents.get(stream.partitions.from_stream, [])][
                        :stream.partitions.chunk]
                else:
                    values = render(stream.partitions.values, {"config": settings})
                    values = (values if isinstance(values, list) else [values])[
                        :stream.partitions.chunk]
                if not values:
                    check.notes.append("no partition to read (its parent stream is empty)")
                    continue
                partition = {"key": ",".join(map(str, values)), "value": values[0],
                             "values": values}
            fetcher = PageFetcher(client, stream, {"config": settings, "partition": partition})
            start = None
            if stream.incremental is not None and stream.incremental.type == "datetime":
                start = parse_cursor(render(stream.incremental.start_date, {"config": settings}),
                                     stream.incremental)
            try:
                first = next(iter(fetcher.pages(start, datetime.now(UTC))), None)
            except GoalpostError as exc:
                check.ok = False
                check.problems.append(Redactor.redact(str(exc)))
                continue
            check.problems.extend(w for w in fetcher.warnings)
            check.ok = not check.problems
            records = first.records if first else []
            parents[name] = [r for r in records if isinstance(r, dict)]
            check.sample_rows = len(records)
            check.columns = sorted({k for r in parents[name] for k in r})
            check.dialect = {"format": "api", "connector": manifest.name}
        checks.append(account_check(client, source.name, conn, slug))
    finally:
        client.close()
    return checks


def account_check(client: ApiClient, source: str, conn: psycopg.Connection | None,
                  slug: str) -> StreamCheck:
    """What the account lacks or will soon lack, from the manifest's checks, the token answer
    and the API budget: problems fail `source test`, notes inform."""
    manifest = client.manifest
    check = StreamCheck(source, "account", True, dialect={"format": "api",
                                                          "connector": manifest.name})
    for spec in manifest.checks:
        try:
            check.problems.extend(run_check(client, spec))
        except GoalpostError as exc:
            check.problems.append(f"{spec.name}: {Redactor.redact(str(exc))}")
    check.notes.extend(_data_centre(client))
    if client.token_expires_at is None:
        try:
            client.read_token_status()
        except GoalpostError as exc:
            check.notes.append(f"the token's expiry could not be read: {exc}")
    check.notes.extend(_token_expiry(client))
    if client.day_budget is not None:
        used = 0
        if conn is not None:
            _, state = load_state(conn, slug, source, BUDGET_STATE)
            today = datetime.now(UTC).date().isoformat()
            used = int(state.get("calls", 0)) if state.get("day") == today else 0
        spent = used + client.calls
        check.notes.append(
            f"API budget: {spent:,} of {client.day_budget:,} calls a day spent today (UTC)"
            + ("" if conn is not None else ", runs not counted: the warehouse was not read")
            + f", {max(client.day_budget - spent, 0):,} left; a run costs one call per page of "
              "each stream and one per changed item's detail")
        if spent >= client.day_budget:
            check.problems.append("the day's API budget is spent: a run now would stop at once")
    check.ok = not check.problems
    return check


def _data_centre(client: ApiClient) -> list[str]:
    """Where the token answer says the account lives, against the configured data centre."""
    domain = client.token_answer.get(client.manifest.auth.api_domain_path or "")
    if not isinstance(domain, str):
        return []
    for name, spec in client.manifest.settings.items():
        for choice, implied in (spec.choices or {}).items():
            if implied.get("api_url") == domain.rstrip("/"):
                configured = client.settings.get(name)
                if configured != choice:
                    return [f"the account is in data centre {choice} (API host {domain}); "
                            f"the source says {name}: {configured}: set {name}: {choice}"]
                return [f"data centre {choice}: API host {domain} (from the token answer)"]
    return [f"API host {domain} (from the token answer)"]


def _token_expiry(client: ApiClient) -> list[str]:
    expires = client.token_expires_at
    if expires is None:
        return []
    left = expires - datetime.now(UTC)
    hours = left.total_seconds() / 3600
    when = f"{expires:%Y-%m-%d %H:%M} UTC, in {hours:,.1f} hours" if hours < 48 else \
        f"{expires:%Y-%m-%d} (in {left.days} days)"
    if client.can_refresh():
        return [f"the access token expires {when}; Goalpost renews it from the refresh token"]
    return [f"the access token expires {when} and cannot be renewed: set "
            + ", ".join(client.manifest.auth.refresh_settings()) + " to renew it"]


def add_api_source(slug: str, name: str, connector: str, config: dict[str, Any],
                   streams: list[str] | None) -> tuple[ApiSource, bool]:
    """Add a REST source to the client's YAML; returns (source, changed)."""
    check_name(name, "source name")
    manifest = load_manifest(connector)
    problems = settings_problems(manifest, config)
    if problems:
        raise ConfigError("; ".join(problems))
    document = registry.load_document(slug)
    sources = document.setdefault("sources", CommentedSeq())
    entry = CommentedMap(name=name, connector=connector, config=CommentedMap(config))
    if streams:
        entry["streams"] = CommentedSeq(streams)
    candidate = ApiSource.model_validate(dict(entry))
    for existing in sources:
        if existing.get("name") == name:
            if existing.get("connector") == connector and \
                    ApiSource.model_validate(dict(existing)) == candidate:
                return candidate, False
            raise ConfigError(f"source {name!r} already exists in {slug} with other settings",
                              hint=f"edit clients/{slug}.yaml or remove it first")
    sources.append(entry)
    registry.save_document(slug, document)
    return candidate, True


def reset_source(conn: psycopg.Connection, slug: str, source: ApiSource,
                 stream: str | None, *, drop_data: bool) -> list[str]:
    """Forget the streams' cursors (the next run reads from the start date); with
    `drop_data` also empty their raw tables. Returns the streams reset."""
    names = source.stream_names()
    if stream is not None:
        if stream not in names:
            raise NotFoundError(f"source {source.name} of {slug} has no stream {stream!r}",
                                hint="streams: " + ", ".join(names))
        names = [stream]
    with conn.transaction():
        for name in names:
            conn.execute("DELETE FROM goalpost.extract_state WHERE client = %s AND source = %s "
                         "AND stream = %s", (slug, source.name, name))
            table = raw_identifier(slug, source.name, name)
            exists = conn.execute("SELECT to_regclass(%s)", (table.as_string(conn),)).fetchone()
            if drop_data and exists[0] is not None:
                conn.execute(sql.SQL("DELETE FROM {}").format(table))
    return names
