"""Build one client's SQLMesh models: staging and marts, in that client's own SQLMesh state.

Every client gets its own SQLMesh Context over the shared model files in sqlmesh/ (instantiated
for it by blueprints), with its state in `sqlmesh_state__<slug>`: planning cost grows with the
square of the number of models in a context, so one small context per client keeps a plan
under a second. Contexts are cached per process and reused while the client's spec, the
warehouse and the model files are unchanged.

Model kinds: the file staging of order lines and stock counts (the bulk of a client's rows)
is INCREMENTAL_BY_UNIQUE_KEY: every build merges the raw rows loaded since its latest one.
The other staging models, `orders` and the marts are FULL tables, and the canonical entities
are views over the staging tables. A FULL model is rebuilt only when its definition changes or
when it is restated, so `build_client(..., restate=True)` (which the orchestrator passes
whenever an extract loaded rows) restates every FULL model of the client, even twice on the
same day; without it and without model changes a build only looks for new file rows.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import psycopg2
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from sqlglot import exp
from sqlmesh.core.config import (
    Config,
    GatewayConfig,
    ModelDefaultsConfig,
    PostgresConnectionConfig,
    TableNamingConvention,
)
from sqlmesh.core.console import Console, NoopConsole, get_console, set_console
from sqlmesh.core.constants import IGNORE_PATTERNS
from sqlmesh.core.context import Context
from sqlmesh.utils.date import now
from sqlmesh.utils.errors import NodeAuditsErrors, SQLMeshError

from goalpost.core.canonical import ENTITIES
from goalpost.core.dimensions import MART_COLUMNS
from goalpost.core.errors import ConfigError, GoalpostError
from goalpost.core.identifiers import check_slug
from goalpost.core.money import codes_by_digits
from goalpost.core.paths import state_dir
from goalpost.core.registry.models import ApiSource, Client, FileSource
from goalpost.core.runs import session_tag
from goalpost.core.warehouse import tenants
from goalpost.core.warehouse.connection import connect, redact
from goalpost.transform import PROJECT_DIR, loadable_project_dir
from goalpost.transform.metric_specs import metric_variables, rest_streams

Progress = Callable[[str], None]

# SQLMesh silences this pandas warning with catch_warnings(), which is not thread-safe: with
# concurrent tasks it leaks to stderr now and then. Nothing to act on, so it is ignored.
warnings.filterwarnings(
    "ignore", category=UserWarning, message=".*pandas only supports SQLAlchemy connectable.*"
)

MAX_WARM_CONTEXTS = 64


@dataclass
class TransformResult:
    """What one build did: models evaluated or re-pointed, row counts, time, audit failures."""

    client: str
    models: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    audit_failures: list[str] = field(default_factory=list)


def staged_entities() -> dict[str, set[str]]:
    """{connector: canonical entities} it has a `models/staging/<connector>/
    stg_<connector>__<entity>.sql` model for: adding a connector's staging is adding files."""
    staged: dict[str, set[str]] = {}
    for path in (PROJECT_DIR / "models" / "staging").glob("*/stg_*__*.sql"):
        connector = path.parent.name
        prefix = f"stg_{connector}__"
        if path.stem.startswith(prefix) and path.stem[len(prefix):] in ENTITIES:
            staged.setdefault(connector, set()).add(path.stem[len(prefix):])
    return staged


def client_variables(slug: str, client: Client) -> dict[str, dict[str, Any]]:
    """The SQLMesh variables describing one client, each keyed by slug.

    They are split by the macros that read them (see sqlmesh/macros/goalpost_macros.py) so
    that a change reaches only the models whose SQL it changes. The file connector is always
    there: its staging gives every canonical entity a typed (possibly empty) first part.
    """
    staged = staged_entities()
    connectors = sorted({"files"} | {source.connector for source in client.sources})
    staging = {
        # Values entered by hand (goalpost metrics record|import) are a source of every client.
        entity: ["files", *(["manual"] if entity == "metric_values" else [])] + sorted({
            source.connector for source in client.sources
            if source.connector != "files" and entity in source.fed_entities()
            and entity in staged.get(source.connector, ())
        })
        for entity in ENTITIES
    }
    api: dict[str, dict[str, dict[str, list[str]]]] = {}
    for source in client.sources:
        if isinstance(source, ApiSource):
            manifest, fed = source.load_manifest(), source.fed_entities()
            for name in source.stream_names():
                entry = api.setdefault(source.connector, {}).setdefault(
                    name, {"read": [], "fed": []})
                entry["read"].append(source.name)
                if manifest.streams[name].entity in fed:
                    entry["fed"].append(source.name)
    dimensions = sorted(client.dimensions.values(), key=lambda d: d.name)
    file_columns = {entity: sorted({d.column for d in dimensions if d.column and
                                    entity == ("order_lines" if d.entity == "orders"
                                               else d.entity)})
                    for entity in ENTITIES}
    streams = [
        {
            "source": source.name,
            "stream": stream.name,
            "entity": stream.entity,
            "columns": dict(sorted(stream.columns.items())),
            "attributes": file_columns[stream.entity],
        }
        for source in client.sources
        if isinstance(source, FileSource)
        for stream in source.streams
        if stream.entity in source.fed_entities()
    ]
    return {
        "goalpost_clients": {slug: {"connectors": connectors}},
        **metric_variables(slug, client),
        "goalpost_rest": {slug: rest_streams(client)},
        "goalpost_dimensions": {slug: [d.spec() for d in dimensions]},
        "goalpost_mart_columns": {slug: {
            mart: [d.name for d in dimensions if d.new_column(mart)] for mart in MART_COLUMNS}},
        "goalpost_staging": {slug: {entity: names for entity, names in staging.items() if names}},
        "goalpost_files": {slug: {"currency": client.currency, "streams": streams}},
        "goalpost_api": {slug: api},
        "goalpost_timezones": {slug: client.timezone},
        # The region national phone numbers are read in (staging.phone_numbers).
        "goalpost_countries": {slug: client.country},
    }


def entity_spec() -> dict[str, list[list[str]]]:
    """goalpost.canonical as data, so that the contract is part of the models' fingerprints."""
    return {entity: [[f.name, f.type, f.derived or ""] for f in fields]
            for entity, fields in ENTITIES.items()}


def connection_config(url: str, application_name: str | None = None
                      ) -> PostgresConnectionConfig:
    """SQLMesh's connection from a libpq URL or DSN, including `?host=/socket/dir` forms;
    `application_name` names its sessions (a client's builds: goalpost.core.runs)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"invalid warehouse URL {redact(url)}: {exc}") from None
    user = params.get("user") or os.environ.get("PGUSER") or getpass.getuser()
    extra = {key: params[key] for key in ("sslmode", "application_name") if params.get(key)}
    if application_name:
        extra["application_name"] = application_name
    if params.get("connect_timeout"):
        extra["connect_timeout"] = int(params["connect_timeout"])
    return PostgresConnectionConfig(
        host=params.get("host") or os.environ.get("PGHOST") or "localhost",
        port=int(params.get("port") or os.environ.get("PGPORT") or 5432),
        user=user,
        password=params.get("password") or os.environ.get("PGPASSWORD") or "",
        database=params.get("dbname") or os.environ.get("PGDATABASE") or user,
        concurrent_tasks=2,
        **extra,
    )


def sqlmesh_config(slug: str, client: Client, url: str) -> Config:
    """The SQLMesh config of one client: its warehouse, its own state schema, its spec."""
    check_slug(slug)
    used = set(client_variables(slug, client)["goalpost_clients"][slug]["connectors"])
    unused = [f"models/staging/{name}/*" for name in sorted(set(staged_entities()) - used)]
    return Config(
        gateways={
            "warehouse": GatewayConfig(
                connection=connection_config(url, session_tag(slug)),
                state_schema=tenants.state_schema(slug),
            )
        },
        default_gateway="warehouse",
        model_defaults=ModelDefaultsConfig(dialect="postgres", cron="@daily"),
        # `<table>__<fingerprint>` in `sqlmesh__<schema>`: with the schema in the name too,
        # SQLMesh's temporary tables overflow Postgres's 63-character identifiers.
        physical_table_naming_convention=TableNamingConvention.TABLE_ONLY,
        variables={"goalpost_entities": entity_spec(),
                   "goalpost_currencies": {str(digits): codes
                                           for digits, codes in codes_by_digits().items()},
                   **client_variables(slug, client)},
        ignore_patterns=[*IGNORE_PATTERNS, *unused],
        cache_dir=str(state_dir() / "sqlmesh-cache"),
        disable_anonymized_analytics=True,
    )


def cli_config(slug: str | None) -> Config:
    """The config for the `sqlmesh` CLI run in sqlmesh/: the client named by GOALPOST_CLIENT."""
    from goalpost.core.registry import load_client
    from goalpost.core.warehouse import database_url

    if not slug:
        raise ConfigError(
            "GOALPOST_CLIENT is not set: the SQLMesh project is built for one client at a time",
            hint="run e.g. `GOALPOST_CLIENT=panpan sqlmesh -p sqlmesh plan`",
        )
    return sqlmesh_config(slug, load_client(slug), database_url())


class _RoutingConsole(NoopConsole):
    """SQLMesh's console for library builds: no terminal output, messages go to `progress`,
    and what a build reports (models evaluated or re-pointed, audit failures, failed models)
    is kept. SQLMesh calls it from its worker threads, hence the lock."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.reset(None)

    def reset(self, progress: Progress | None) -> None:
        self.progress = progress
        self.evaluated: set[str] = set()
        self.promoted: set[str] = set()
        self.audit_failures: list[str] = []
        self.failures: list[tuple[str, str]] = []
        self.failed_queries: list[str] = []
        self.skipped: set[str] = set()

    def _say(self, message: str) -> None:
        message = " ".join(message.split())
        if self.progress and message:
            with self._lock:
                self.progress(message)

    def update_snapshot_evaluation_progress(self, snapshot: Any, *args: Any, **kwargs: Any) -> None:
        self.evaluated.add(snapshot.node.name)
        duration = args[2] if len(args) > 2 else kwargs.get("duration_ms")
        self._say(f"built {snapshot.node.name}" + (f" ({duration} ms)" if duration else ""))

    def update_promotion_progress(self, snapshot: Any, promoted: bool) -> None:
        if promoted:
            self.promoted.add(snapshot.node.name)

    def log_warning(self, short_message: str, long_message: str | None = None) -> None:
        if "audit error" in short_message:
            with self._lock:
                self.audit_failures.append(" ".join(short_message.split()).rstrip("."))
        self._say(f"warning: {short_message}")

    def log_error(self, message: str) -> None:
        self._say(f"error: {message}")

    def log_status_update(self, message: str) -> None:
        self._say(message)

    def log_skipped_models(self, snapshot_names: set[str]) -> None:
        with self._lock:
            self.skipped |= set(snapshot_names)

    def log_failed_models(self, errors: list[Any]) -> None:
        for error in errors:
            node = getattr(error, "node", None)
            name = getattr(node, "snapshot_name", None) or str(node)
            cause = error.__cause__ or error
            with self._lock:
                if isinstance(cause, NodeAuditsErrors):
                    # "'<audit>' audit error: N rows failed", and the query that lists them.
                    self.failures.append((name, "; ".join(str(e) for e in cause.errors)))
                    self.failed_queries += [e.sql(dialect="postgres") for e in cause.errors]
                else:
                    self.failures.append((name, _first_line(cause)))


_CONSOLE = _RoutingConsole()
_CONTEXTS: OrderedDict[tuple[str, str], Context] = OrderedDict()
_LOCK = threading.Lock()


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _project_signature() -> list[tuple[str, int, int]]:
    """The model, macro and config files as (path, mtime, size): edits make a new context."""
    files = []
    for path in sorted(PROJECT_DIR.rglob("*")):
        relative = path.relative_to(PROJECT_DIR)
        if not path.is_file() or relative.parts[0] in ("logs", ".cache") or (
            "__pycache__" in relative.parts
        ):
            continue
        stat = path.stat()
        files.append((str(relative), stat.st_mtime_ns, stat.st_size))
    return files


def _fingerprint(slug: str, client: Client, url: str) -> str:
    payload = {
        "slug": slug,
        "url": url,
        "variables": client_variables(slug, client),
        "entities": entity_spec(),
        "project": _project_signature(),
        "state_dir": str(state_dir()),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _context(slug: str, client: Client, url: str) -> Context:
    """The warm Context of this client, or a new one (evicting the least recently used)."""
    key = (slug, _fingerprint(slug, client, url))
    context = _CONTEXTS.get(key)
    if context is not None:
        _CONTEXTS.move_to_end(key)
        return context
    for stale in [k for k in _CONTEXTS if k[0] == slug]:
        _close(_CONTEXTS.pop(stale))
    context = Context(paths=str(loadable_project_dir()),
                      config=sqlmesh_config(slug, client, url))
    context.console = _CONSOLE
    _CONTEXTS[key] = context
    while len(_CONTEXTS) > MAX_WARM_CONTEXTS:
        _close(_CONTEXTS.popitem(last=False)[1])
    return context


def _close(context: Context) -> None:
    with contextlib.suppress(Exception):
        context.close()


def forget_contexts(slug: str | None = None) -> None:
    """Close and drop cached contexts (of one client, or all): after deprovisioning, in tests."""
    with _LOCK:
        for key in [k for k in _CONTEXTS if slug is None or k[0] == slug]:
            _close(_CONTEXTS.pop(key))


def _restore_views(context: Context) -> int:
    """Recreate the views a plan lost; the number recreated.

    On Postgres SQLMesh replaces a view with DROP ... CASCADE, which takes along every view
    built on it: the physical views of other models and prod's views of them (the virtual
    layer). When it does not re-create those in the same plan (a plan re-creating an upstream
    view after the new views built on it, SQLMesh/sqlmesh#5954), what reads them fails with
    "relation does not exist". Each missing physical view is recreated once the views it reads
    exist, with the query the plan would have run; then each missing prod view, pointing at
    its model's physical table as SQLMesh's promotion does."""
    stored = {s.snapshot_id: s for s in context.state_reader.get_snapshots(
        list(context.snapshots.values())).values() if s.is_model}
    adapter = context.engine_adapter
    missing = {i: s for i, s in stored.items()
               if s.model.kind.is_view and not adapter.table_exists(s.table_name())}
    by_name = {s.name: s for s in stored.values()}
    restored = 0
    while missing:
        ready = [s for s in missing.values() if not any(p in missing for p in s.parents)]
        if not ready:  # a cycle cannot happen in a DAG; stop rather than loop
            break
        for snapshot in ready:
            at = now()
            context.snapshot_evaluator.evaluate(snapshot, start=at, end=at, execution_time=at,
                                                snapshots=by_name)
            del missing[snapshot.snapshot_id]
            restored += 1
    environment = context.state_reader.get_environment("prod")
    promoted = {s.snapshot_id for s in environment.snapshots} if environment else set()
    for snapshot in stored.values():
        if snapshot.snapshot_id not in promoted or adapter.table_exists(snapshot.name):
            continue
        if not adapter.table_exists(snapshot.table_name()):
            continue  # built by the next plan, which promotes it
        adapter.create_view(snapshot.name, exp.select("*").from_(snapshot.table_name()))
        restored += 1
    if restored:
        _CONSOLE.log_status_update(f"recreated {restored} view(s) a plan had dropped")
    return restored


def _apply(context: Context, **options: Any) -> None:
    """Plan and apply prod, then recreate any view lost on the way (see _restore_views);
    when the plan failed for want of one, apply once more."""
    try:
        context.plan_builder("prod", skip_tests=True, skip_linter=True, **options).apply()
    except SQLMeshError:
        if not _restore_views(context):
            raise
        _CONSOLE.reset(_CONSOLE.progress)
        context.plan_builder("prod", skip_tests=True, skip_linter=True, **options).apply()
    _restore_views(context)


def _plan(context: Context, restate: bool, full_refresh: bool = False,
          changed: Collection[str] | None = None) -> None:
    """Apply model changes to prod; then, with `restate` (new raw rows), let the incremental
    models take the rows loaded since their last build (whatever their cron says) and rebuild
    from raw the other models that the new rows feed, or every one with `changed` None
    (SQLMesh refuses changes and restatements in one plan, and restating a model restates
    what is built from it). Incremental models are rebuilt whole only on `full_refresh`."""
    _apply(context)
    if not restate:
        return
    models = {m.fqn: m for m in context.models.values()}  # depends_on holds fqns
    incremental = {fqn for fqn, m in models.items() if m.kind.is_incremental}
    failed = False
    # Those the plan just built (new or changed) have every row already.
    waiting = sorted(models[f].name for f in incremental
                     if models[f].name not in _CONSOLE.evaluated)
    if waiting and not full_refresh:
        # A failed statement merges nothing: the model keeps its rows, the rest is built on
        # them, and the next build retries the same new rows. (Their audits are in the views
        # over them, so that a failure blocks what is built from them.)
        failed = context.run("prod", skip_janitor=True, ignore_cron=True,
                             select_models=waiting, no_auto_upstream=True).is_failure
    if changed is None or full_refresh:
        fed = set(models)
    else:
        tables = {_display(name) for name in changed}
        readers = {fqn for fqn, m in models.items()
                   if tables & {_display(name) for name in m.depends_on}}
        # The models built from an incremental reader take its new rows only when restated.
        fed = readers | {fqn for fqn, m in models.items()
                         if m.depends_on & (readers & incremental)}
    pending = sorted(
        models[fqn].name for fqn in fed
        if models[fqn].name not in _CONSOLE.evaluated
        and (full_refresh or fqn not in incremental)
    )
    if pending:
        _apply(context, restate_models=pending)
    if failed:
        raise SQLMeshError("incremental models failed")


def _clean_up(context: Context) -> None:
    """Drop table versions no environment uses any more, once past SQLMesh's snapshot TTL.

    `sqlmesh run` does this itself; plans do not. A failure here leaves garbage, not wrong
    data, so it is reported and the build goes on.
    """
    try:
        context.run_janitor(ignore_ttl=False)
    except SQLMeshError as exc:
        _CONSOLE.log_warning(f"cleanup of old table versions failed: {_first_line(exc)}")


def _count_rows(url: str, names: list[str]) -> dict[str, int]:
    rows: dict[str, int] = {}
    with connect(url, autocommit=True) as conn:
        for name in names:
            schema, table = name.split(".")
            query = sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            rows[name] = conn.execute(query).fetchone()[0]
    return rows


def _display(model: str) -> str:
    """`"db"."schema"."table"` as `schema.table`, as the model files name it."""
    table = exp.to_table(model, dialect="postgres")
    return f"{table.db}.{table.name}" if table.db else table.name


def _error(slug: str, exc: Exception) -> GoalpostError:
    """A SQLMesh failure as a message naming the model and the database error."""
    if _CONSOLE.failures:
        details = "; ".join(f"{_display(model)}: {error}" for model, error in _CONSOLE.failures)
        blocked = sorted(_display(name) for name in _CONSOLE.skipped)
        if blocked:
            details += f". Not rebuilt until it is fixed (previous data kept): {', '.join(blocked)}"
        hint = "fix the mapping or the file, then run again (raw data is kept)"
        if _CONSOLE.failed_queries:
            hint += "; the failing rows: " + "; ".join(
                " ".join(query.split()) for query in _CONSOLE.failed_queries)
        return GoalpostError(f"transform of {slug} failed in {details}", hint=hint)
    return GoalpostError(f"transform of {slug} failed: {_first_line(exc)}")


def _legacy_marker(slug: str) -> Path:
    """Where earlier versions noted a failed restating build (read once, then removed)."""
    return state_dir() / "transform" / f"{slug}.restate"


def mark_pending(conn: psycopg.Connection, slug: str, run_id: int | None,
                 full_refresh: bool = False) -> None:
    """Note, before raw changes (a run's extracts) or a restating build starts, that the
    client's models may be behind raw until a build succeeds. A note already there, left by
    a run that did not finish its build, is kept: the next build restates everything."""
    conn.execute(
        "INSERT INTO goalpost.transform_pending (client, run_id, full_refresh) VALUES "
        "(%s, %s, %s) ON CONFLICT (client) DO UPDATE SET full_refresh = "
        "goalpost.transform_pending.full_refresh OR excluded.full_refresh",
        (slug, run_id, full_refresh))


def _left_pending(conn: psycopg.Connection, slug: str, run_id: int | None) -> bool | None:
    """None when the models are up to date with raw as far as earlier runs are concerned;
    else whether what was left pending was a full refresh (raw reloaded)."""
    row = conn.execute("SELECT run_id, full_refresh FROM goalpost.transform_pending WHERE "
                       "client = %s", (slug,)).fetchone()
    legacy = _legacy_marker(slug).exists()
    if row is not None and (row[0] is None or row[0] != run_id):
        return bool(row[1])
    return False if legacy else None


def build_client(
    slug: str,
    client: Client,
    *,
    url: str,
    restate: bool = False,
    changed: Collection[str] | None = None,
    full_refresh: bool = False,
    run_id: int | None = None,
    progress: Progress | None = None,
) -> TransformResult:
    """Plan and apply `prod` for one client's models, then grant its reader the marts.

    `restate` rebuilds the FULL models (new raw rows were loaded): those fed by the raw tables
    in `changed` ("<slug>_raw.<table>") and what is built from them, or all when it is None;
    `full_refresh` rebuilds the incremental ones from raw as well (raw was reloaded, rows may
    have gone). When an earlier run left its build unfinished (it failed, or its process was
    killed at any moment: see `mark_pending`), this build restates everything, from raw if
    that run was a full refresh, so that it ends where an uninterrupted run would have.

    Builds in one process run one at a time: SQLMesh's console is process-wide.
    """
    check_slug(slug)
    started = time.monotonic()
    with connect(url, autocommit=True) as conn:
        left = _left_pending(conn, slug, run_id)
        if left is not None:
            restate, changed, full_refresh = True, None, full_refresh or left
        if restate or full_refresh:
            mark_pending(conn, slug, run_id, full_refresh)
    with _LOCK:
        previous: Console = get_console()
        _CONSOLE.reset(progress)
        set_console(_CONSOLE)
        try:
            context = _context(slug, client, url)
            _plan(context, restate or full_refresh, full_refresh, changed)
            _clean_up(context)
        except (SQLMeshError, psycopg2.Error) as exc:
            for key in [k for k in _CONTEXTS if k[0] == slug]:
                _close(_CONTEXTS.pop(key))
            raise _error(slug, exc) from None
        finally:
            set_console(previous)
        names = sorted(model.name for model in context.models.values())
        result = TransformResult(
            client=slug,
            models=sorted(_CONSOLE.evaluated | _CONSOLE.promoted),
            audit_failures=list(_CONSOLE.audit_failures),
        )
        _CONSOLE.reset(None)
    with connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM goalpost.transform_pending WHERE client = %s", (slug,))
        _legacy_marker(slug).unlink(missing_ok=True)
        tenants.refresh_grants(conn, slug)
    result.rows = _count_rows(url, names)
    result.seconds = round(time.monotonic() - started, 3)
    return result
