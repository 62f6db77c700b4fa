"""The `goalpost` command: a thin shell over the library functions.

Exit codes: 0 success, 1 a run or check failed, 2 invalid input or configuration, 3 not
found, 4 warehouse unreachable, 130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson

from goalpost.app import clients
from goalpost.core import masking, registry, schedules
from goalpost.core.canonical import ENTITY_NAMES
from goalpost.core.errors import ConfigError, GoalpostError, NotFoundError
from goalpost.core.registry.models import Client

JSON = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


def _emit_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode())


def _progress(message: str) -> None:
    click.echo(click.style("  · ", fg="cyan") + message, err=True)


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


class _Goalpost(click.Group):
    """Turns user mistakes (GoalpostError) into a message and an exit code, not a traceback;
    and masks secrets in everything a command prints or logs (goalpost.core.masking)."""

    def invoke(self, ctx: click.Context) -> Any:
        masking.install_log_masking()
        streams = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = (s if isinstance(s, masking.MaskingStream)
                                  else masking.MaskingStream(s) for s in streams)
        try:
            return super().invoke(ctx)
        except GoalpostError as exc:
            click.echo(click.style("error: ", fg="red") + str(exc), err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            sys.stdout, sys.stderr = streams


@click.group(cls=_Goalpost,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="goalpost")
def cli() -> None:
    """Goalpost: a data stack in a box for small-business analytics.

    Clients live in clients/<slug>.yaml (the registry); their data in Postgres, in schemas
    <slug>_raw, <slug>_staging, <slug>_marts and <slug>_insights. Without
    GOALPOST_DATABASE_URL an embedded Postgres under .goalpost/ is started and reused.

    Start with `goalpost demo`, or `goalpost client add` then `goalpost source add`.
    """


# --- db ---------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Manage the embedded Postgres (used when GOALPOST_DATABASE_URL is unset)."""


@db.command("start")
def db_start() -> None:
    """Start the embedded server (initialising it on first use) and migrate it."""
    from goalpost.core.warehouse import connection, ready

    url = connection.embedded_server().start()
    ready(url).close()
    click.echo(f"embedded Postgres running: {connection.redact(url)}")


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded server."""
    from goalpost.core.warehouse import connection

    stopped = connection.embedded_server().stop()
    click.echo("embedded Postgres stopped" if stopped else "embedded Postgres was not running")


@db.command("status")
@JSON
def db_status(as_json: bool) -> None:
    """Say whether the warehouse is reachable and which one is in use."""
    import os

    from goalpost.core.warehouse import connection

    if os.environ.get("GOALPOST_DATABASE_URL"):
        url = os.environ["GOALPOST_DATABASE_URL"]
        connection.connect(url).close()
        info = {"mode": "external", "running": True, "url": connection.redact(url)}
    else:
        status = connection.embedded_server().status()
        info = {"mode": "embedded", "backend": status.backend, "running": status.running,
                "data_dir": str(status.data_dir), "pid": status.pid,
                "url": connection.redact(status.url) if status.url else None}
    if as_json:
        _emit_json(info)
        return
    for key, value in info.items():
        click.echo(f"{key:9} {value}")
    if not info["running"]:
        sys.exit(1)


@db.command("url")
def db_url() -> None:
    """Print the warehouse URL (with its password), starting the embedded server if needed."""
    from goalpost.core.warehouse import database_url

    # The one output meant to show a secret.
    click.echo(database_url(), file=masking.unmasked(sys.stdout))


# --- client -------------------------------------------------------------------------------


@cli.group()
def client() -> None:
    """Add, inspect, validate, export and remove clients (clients/<slug>.yaml)."""


@client.command("add")
@click.argument("slug", required=False)
@click.option("--name", help="The business name shown on dashboards.")
@click.option("--timezone", help="IANA time zone, e.g. Europe/Paris.")
@click.option("--currency", help="ISO 4217 code, e.g. EUR.")
@click.option("--country", help="ISO 3166 code, e.g. FR (used for holidays and date formats).")
@click.option("--schedule", help="Cron for scheduled runs, in the client's time zone.")
@click.option("--owner", "owners", multiple=True, help="'Name <email>'; repeatable.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask; use defaults for what is missing.")
def client_add(slug: str | None, name: str | None, timezone: str | None, currency: str | None,
               country: str | None, schedule: str | None, owners: tuple[str, ...],
               yes: bool) -> None:
    """Create clients/SLUG.yaml, the client's schemas and its read-only role.

    Asks for what is missing when run in a terminal; with --yes (or without a terminal)
    defaults are used and a missing name is an error. Safe to run again: an existing client
    is left as it is and its schemas and role are checked.
    """
    from goalpost.core.warehouse import ready

    ask = _interactive() and not yes
    if not slug:
        if not ask:
            raise ConfigError("a client slug is required", hint="goalpost client add panpan ...")
        slug = click.prompt("Client slug (e.g. panpan)")
    slug = slug.strip()
    if registry.client_path(slug).exists():
        existing = registry.load_client(slug)
        with ready() as conn:
            clients.sync(conn, slug, existing)
        click.echo(f"client {slug} already exists ({registry.client_path(slug).name}); "
                   "schemas and role checked")
        return
    # The registry's own defaults: what a client file that leaves a field out gets.
    defaults = {key: Client.model_fields[key].default
                for key in ("timezone", "currency", "country", "schedule")}
    given = {"name": name, "timezone": timezone, "currency": currency, "country": country,
             "schedule": schedule}
    values: dict[str, Any] = {}
    for key, value in given.items():
        if value is None and ask:
            value = click.prompt(key.capitalize(), default=defaults.get(key))
        if value is None and key == "name":
            raise ConfigError("--name is required", hint=f"goalpost client add {slug} --name ...")
        values[key] = value if value is not None else defaults[key]
    owner_list = [clients.parse_owner(o) for o in owners]
    if not owner_list and ask:
        entered = click.prompt("Owner ('Name <email>', empty to skip)", default="",
                               show_default=False)
        if entered:
            owner_list.append(clients.parse_owner(entered))
    values["owners"] = owner_list
    values["sources"] = []
    path, _ = clients.create(slug, values)
    with ready() as conn:
        clients.sync(conn, slug, registry.load_client(slug))
    click.echo(f"created {registry.store.display_path(path)}, schemas {slug}_raw/_staging/_marts/"
               f"_insights and role {slug}_reader")
    click.echo(f"next: goalpost source add {slug} <name> --path '<folder or glob>' "
               "--entity order_lines")


@client.command("list")
@JSON
def client_list(as_json: bool) -> None:
    """List the clients in the registry, and whether each file is valid."""
    rows = []
    for slug in registry.list_slugs():
        try:
            item = registry.load_client(slug)
            rows.append({"slug": slug, "name": item.name, "valid": True,
                         "sources": [s.name for s in item.sources], "error": None})
        except GoalpostError as exc:
            rows.append({"slug": slug, "name": None, "valid": False, "sources": [],
                         "error": exc.message})
    if as_json:
        _emit_json(rows)
        return
    if not rows:
        click.echo("no clients yet: goalpost client add <slug> --name '...'")
    for row in rows:
        state = ", ".join(row["sources"]) or "no sources" if row["valid"] else "INVALID"
        click.echo(f"{row['slug']:20} {row['name'] or '':30} {state}")


@client.command("show")
@click.argument("slug")
@JSON
def client_show(slug: str, as_json: bool) -> None:
    """Show a client's definition as validated (defaults filled in)."""
    item = registry.load_client(slug)
    data = {"slug": slug, **item.model_dump(mode="json")}
    if as_json:
        _emit_json(data)
    else:
        click.echo(registry.store.dump(data), nl=False)


@client.command("validate")
@click.argument("slugs", nargs=-1)
def client_validate(slugs: tuple[str, ...]) -> None:
    """Validate client files (all of them by default); exit 2 if any is invalid."""
    bad = 0
    from goalpost.alerts.i18n import untranslated

    for slug in slugs or registry.list_slugs():
        try:
            loaded = registry.load_client(slug)
            click.echo(f"ok       {registry.client_path(slug).name}")
            missing = untranslated(loaded.language)
            if missing:
                click.echo(f"         language {loaded.language}: {len(missing)} strings of "
                           "the review and alert emails read in English (no translation "
                           f"yet), e.g. {'; '.join(repr(m) for m in missing[:3])}")
        except GoalpostError as exc:
            bad += 1
            click.echo(f"invalid  {exc}", err=True)
    if bad:
        sys.exit(2)


@client.command("export")
@click.argument("slug")
@click.option("--to", "target", type=click.Path(dir_okay=False, path_type=Path),
              help="The zip file to write (default <slug>-export-<date>.zip here).")
@JSON
def client_export(slug: str, target: Path | None, as_json: bool) -> None:
    """Export everything of a client (every table of its layers as CSV, its registry file)
    into one zip, for handing over when it leaves."""
    from datetime import date

    from goalpost.backup.core import export_client
    from goalpost.core.warehouse import ready

    target = target or Path(f"{slug}-export-{date.today().isoformat()}.zip")
    path = registry.client_path(slug)
    with ready() as conn:
        counts = export_client(conn, slug, target, path if path.exists() else None)
    if as_json:
        _emit_json({"file": str(target), "tables": counts})
        return
    click.echo(f"exported {len(counts)} tables ({sum(counts.values()):,} rows) of {slug} "
               f"to {target}")


@client.command("remove")
@click.argument("slug")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--keep-file", is_flag=True, help="Keep clients/SLUG.yaml; drop only the data.")
def client_remove(slug: str, yes: bool, keep_file: bool) -> None:
    """Drop a client's schemas, role, run state and (unless --keep-file) its YAML."""
    from goalpost.core.warehouse import ready

    if not yes:
        if not _interactive():
            raise ConfigError("removing a client deletes its data", hint="add --yes to confirm")
        click.confirm(f"Drop every schema of {slug} and its data?", abort=True)
    with ready() as conn:
        removed = clients.remove(conn, slug, keep_file=keep_file)
    click.echo(f"removed {slug}: " + ", ".join(removed))


# --- source -----------------------------------------------------------------------------


@cli.group()
def source() -> None:
    """Add, list, test, reset and remove a client's sources (files or REST connectors)."""


@source.command("add")
@click.argument("slug")
@click.argument("name")
@click.option("--connector", default="files", show_default=True,
              help="files, or a REST connector (see `goalpost connectors`).")
@click.option("--config", "config_items", multiple=True, metavar="KEY=VALUE",
              help="A REST connector setting; secrets as env:NAME. Repeatable.")
@click.option("--streams", "stream_list", help="REST: comma-separated streams (default: all).")
@click.option("--stream", "stream_name", help="Stream name (default: the entity's name).")
@click.option("--path", help="A file, folder or glob, relative to the project root.")
@click.option("--entity", type=click.Choice(sorted(ENTITY_NAMES)),
              help="What the rows are.")
@click.option("--primary-key", help="Comma-separated columns that identify a record.")
@click.option("--map", "mappings", multiple=True, metavar="FIELD=COLUMN",
              help="Canonical field = your file's column; repeatable.")
@click.option("--delimiter", help="Override the detected delimiter (',', ';', '|', 'tab').")
@click.option("--encoding", help="Override the detected encoding (utf-8, cp1252, ...).")
@click.option("--decimal", type=click.Choice([".", ","]), help="Override the decimal mark.")
@click.option("--date-format", help="Override the detected date format (strptime, e.g. %d/%m/%Y).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for what is missing.")
def source_add(slug: str, name: str, connector: str, config_items: tuple[str, ...],
               stream_list: str | None, stream_name: str | None, path: str | None,
               entity: str | None, primary_key: str | None, mappings: tuple[str, ...],
               delimiter: str | None, encoding: str | None, decimal: str | None,
               date_format: str | None, yes: bool) -> None:
    """Add source NAME to client SLUG: a stream of files, or a REST connector.

    Files (--connector files, the default): the files are read first, the detected dialect is
    shown, and a required field that no column provides is asked for (in a terminal) or
    refused with the columns to choose from.

    REST (--connector square, hubspot, ...; see `goalpost connectors`): settings go in with
    --config KEY=VALUE; secrets are never written to the YAML, only references to
    environment variables (--config access_token=env:SHOP_SQUARE_TOKEN). Missing required
    settings are asked for in a terminal.
    """
    from goalpost.app import sources

    ask = _interactive() and not yes
    registry.load_client(slug)
    if connector != "files":
        _add_api_source(slug, name, connector, config_items, stream_list, ask)
        return
    if entity is None:
        if not ask:
            raise ConfigError("--entity is required", hint="one of " + ", ".join(ENTITY_NAMES))
        entity = click.prompt("Entity", type=click.Choice(sorted(ENTITY_NAMES)))
    if path is None:
        if not ask:
            raise ConfigError("--path is required", hint="a file, folder or glob")
        path = click.prompt("Files (file, folder or glob)")
    mapping = {}
    for item in mappings:
        field_name, sep, column = item.partition("=")
        if not sep or not field_name.strip() or not column.strip():
            raise ConfigError(f"--map {item!r} is not FIELD=COLUMN")
        mapping[field_name.strip()] = column.strip()
    values: dict[str, Any] = {"name": stream_name or entity, "path": path, "entity": entity}
    if primary_key:
        values["primary_key"] = [c.strip() for c in primary_key.split(",") if c.strip()]
    overrides = {"delimiter": delimiter, "encoding": encoding, "decimal": decimal,
                 "date_format": date_format}
    values.update({k: v for k, v in overrides.items() if v})
    values["columns"] = mapping
    client_now = registry.load_client(slug)
    probe = sources.probe_new_stream(slug, name, values, client_now)
    missing = sources.missing_required(entity, mapping, probe.columns)
    if missing and not ask:
        raise sources.missing_fields_problem(entity, missing, mapping, probe.columns)
    def column_or_constant(value: str) -> str:
        if value.startswith("=") or value in probe.columns:
            return value
        raise click.BadParameter(f"not a column of the files ({', '.join(probe.columns)}); "
                                 "or =value for a constant")

    for field_name in missing:
        guess = sources.likely_column(field_name, probe.columns, set(mapping.values()))
        mapping[field_name] = click.prompt(
            f"Column for {field_name} (or =value for a constant)", default=guess,
            value_proc=column_or_constant)
    values["columns"] = mapping
    if missing:
        probe = sources.probe_new_stream(slug, name, values, client_now)
    for problem in probe.problems:
        click.echo(click.style(f"warning: {problem}", fg="yellow"), err=True)
    for idle in sources.fields_feeding_nothing(client_now, entity, mapping):
        click.echo(click.style(
            f"warning: {idle} (from column {mapping[idle]}) feeds no mart: declare it as a "
            f"dimension to see it in kpi_daily and the dashboards (in clients/{slug}.yaml: "
            f"dimensions: {{{idle}: {{entity: "
            f"{'orders' if entity == 'order_lines' else entity}, field: {idle}}}}})",
            fg="yellow"), err=True)
    added, changed = sources.add_file_stream(slug, name, values)
    from goalpost.core.warehouse import ready
    from goalpost.pipelines.raw import ensure_raw_table

    with ready() as conn:
        clients.sync(conn, slug, registry.load_client(slug))
        ensure_raw_table(conn, slug, name, added.name)
    if not changed:
        click.echo(f"stream {name}.{added.name} already in clients/{slug}.yaml; nothing to do")
        return
    click.echo(f"added stream {name}.{added.name} ({entity}) to clients/{slug}.yaml: "
               f"{len(probe.files)} file(s) match, dialect {probe.dialect_summary()}")
    click.echo(f"next: goalpost source test {slug} {name}, then goalpost run {slug}")


def _add_api_source(slug: str, name: str, connector: str, items: tuple[str, ...],
                    stream_list: str | None, ask: bool) -> None:
    from goalpost.pipelines.connectors.manifest import load_manifest
    from goalpost.pipelines.connectors.operations import add_api_source
    from goalpost.pipelines.connectors.secrets import is_env_ref

    manifest = load_manifest(connector)
    config: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--config {item!r} is not KEY=VALUE")
        config[key.strip()] = value.strip()
    for key, spec in manifest.settings.items():
        if key in config or not spec.required or spec.default is not None:
            continue
        if not ask:
            raise ConfigError(f"--config {key}=... is required by {connector} "
                              f"({spec.description})",
                              hint="secrets go in as env:NAME" if spec.secret else None)
        if spec.secret:
            variable = click.prompt(f"Environment variable holding {key}",
                                    default=f"{slug.upper()}_{name.upper()}_{key.upper()}")
            config[key] = f"env:{variable.removeprefix('env:')}"
        else:
            config[key] = click.prompt(f"{key} ({spec.description})")
    for key, spec in manifest.settings.items():
        if spec.secret and key in config and not is_env_ref(config[key]):
            raise ConfigError(f"--config {key}: secrets are never written to the YAML",
                              hint=f"pass --config {key}=env:NAME and export NAME")
    streams = [s.strip() for s in stream_list.split(",")] if stream_list else None
    added, changed = add_api_source(slug, name, connector, config, streams)
    from goalpost.core.warehouse import ready

    with ready() as conn:
        clients.sync(conn, slug, registry.load_client(slug))
    if not changed:
        click.echo(f"source {name} already in clients/{slug}.yaml; nothing to do")
        return
    click.echo(f"added source {name} ({connector}: {', '.join(added.stream_names())}) to "
               f"clients/{slug}.yaml")
    click.echo(f"next: goalpost source test {slug} {name}, then goalpost run {slug}")


@source.command("reset")
@click.argument("slug")
@click.argument("name")
@click.option("--stream", "stream_name", help="Only this stream.")
@click.option("--drop-data", is_flag=True, help="Also empty the raw tables.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def source_reset(slug: str, name: str, stream_name: str | None, drop_data: bool,
                 yes: bool) -> None:
    """Forget a REST source's cursors so that the next run reads from its start date.

    Records already loaded stay (the next run upserts over them) unless --drop-data.
    """
    from goalpost.app import sources
    from goalpost.core.registry.models import ApiSource
    from goalpost.core.warehouse import ready
    from goalpost.pipelines.connectors.operations import reset_source

    item = sources.source_of(registry.load_client(slug), slug, name)
    if not isinstance(item, ApiSource):
        raise ConfigError(f"source {name} reads files: there is no cursor to reset",
                          hint=f"use `goalpost run {slug} --full-refresh` to reload its files")
    if drop_data and not yes:
        if not _interactive():
            raise ConfigError("--drop-data deletes loaded data", hint="add --yes to confirm")
        click.confirm(f"Empty the raw tables of {slug}.{name}?", abort=True)
    with ready() as conn:
        done = reset_source(conn, slug, item, stream_name, drop_data=drop_data)
    click.echo(f"reset {', '.join(f'{name}.{s}' for s in done)}"
               + (" and emptied their raw tables" if drop_data else ""))


# --- scheduler ----------------------------------------------------------------------------


@cli.command("scheduler")
@click.option("--acceleration", type=float, default=1.0, show_default=True,
              help="Run the schedules this many times faster than real time (trials).")
@click.option("--clock-start", type=float,
              help="With --acceleration: the Unix time the accelerated clock starts from "
                   "(give schedulers that share a warehouse the same one).")
@click.option("--instance", help="A name for this scheduler process (default host-pid).")
@click.option("--backup-schedule", default="0 3 * * *", show_default=True,
              help="Cron (UTC) of the daily backup; 'off' to disable.")
@click.option("--step-timeout", type=float, default=7200.0, show_default=True,
              help="Seconds after which an extract step stops (between pages or chunks).")
@click.option("--workers", type=click.IntRange(min=1), envvar="GOALPOST_SCHEDULER_WORKERS",
              help="How many clients run at once, each in a worker process [default: the "
                   "usable cores, fewer if memory cannot hold 1.5 GB each; env "
                   "GOALPOST_SCHEDULER_WORKERS].")
def scheduler_command(acceleration: float, clock_start: float | None, instance: str | None,
                      backup_schedule: str, step_timeout: float, workers: int | None) -> None:
    """Run every client's pipeline on its schedule, and the daily backup, until stopped.

    Several schedulers may share one warehouse: each due run happens once (or is recorded as
    missed), runs of one client never overlap, and a run interrupted by a crash is marked
    failed by the next scheduler. SIGTERM stops after the running runs finish.
    """
    import logging

    from goalpost.app.scheduler import serve
    from goalpost.core.warehouse import database_url

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if backup_schedule != "off":
        try:
            schedules.check_cron(backup_schedule)
        except ValueError as exc:
            raise ConfigError(f"--backup-schedule: {exc}") from None
    serve(database_url(), acceleration=acceleration, instance=instance, clock_start=clock_start,
          backup_schedule=None if backup_schedule == "off" else backup_schedule,
          step_timeout=step_timeout, workers=workers)


# --- metrics ------------------------------------------------------------------------------


@cli.group()
def extensions() -> None:
    """Python jobs writing forecasts, anomalies and other insights tables after each build."""


@extensions.command("list")
@click.argument("slug", required=False)
@JSON
def extensions_list(slug: str | None, as_json: bool) -> None:
    """Every extension, or those of client SLUG, with the table each writes."""
    from goalpost.extensions.runner import catalogue, enabled

    found = enabled(registry.load_client(slug)) if slug else list(catalogue().values())
    items = [{"name": e.name, "builtin": e.builtin, "version": e.version, "table": e.table,
              "description": e.description} for e in found]
    if as_json:
        _emit_json(items)
        return
    for item in items:
        kind = "built-in" if item["builtin"] else "own"
        click.echo(f"{item['name']:14} {kind:8} {item['table']:20} {item['description']}")


@extensions.command("run")
@click.argument("slug")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Recompute even when the inputs did not change.")
@JSON
def extensions_run(slug: str, names: tuple[str, ...], force: bool, as_json: bool) -> None:
    """Run client SLUG's extensions (or the NAMES given) on its current marts; exit 1 if one
    failed. Each writes <slug>_insights.<table> whole or not at all."""
    from goalpost.app.orchestrator import run_extensions

    result = run_extensions(slug, list(names) or None, force=force,
                            progress=None if as_json else _progress)
    if as_json:
        _emit_json(result.as_dict())
    else:
        _print_run(result.as_dict())
    if result.status != "succeeded":
        raise SystemExit(1)


# --- report ---------------------------------------------------------------------------


@cli.command("report")
@click.argument("slug")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]),
              help="First day of the date filters (default: each dashboard's, e.g. past 90 days).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]),
              help="Last day of the date filters (default: open-ended with --since).")
@click.option("--location", "locations", multiple=True, metavar="ID",
              help="Only these locations (repeatable or comma-separated; default: all).")
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="A text filter, such as one of the client's dimensions "
                   "(--filter country=France; repeatable).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the page (default: .goalpost/reports/SLUG.html).")
@JSON
def report(slug: str, since: Any, until: Any, locations: tuple[str, ...],
           filters: tuple[str, ...], out: Path | None, as_json: bool) -> None:
    """Preview client SLUG's dashboards without Metabase: one self-contained HTML page.

    Every card of the client's dashboards (the templates in metabase/templates/ fitted to
    its sources, dimensions and data) runs on the client's marts and insights as its
    read-only role, with the dashboards' default filters or the ones given here, and is
    drawn as Metabase would show it (charts as inline SVG; no network needed to open the
    page). Default dates (past 90 days...) count back from the data's latest day when it is
    before yesterday. A card whose query fails shows its error on the page and is listed
    here; the command still succeeds. Exit 3 for an unknown client or one with no data built
    yet (run `goalpost run SLUG` first).
    """
    from goalpost.metabase.report import Options, build_report, parse_filters, parse_locations

    options = Options(since=since.date() if since else None,
                      until=until.date() if until else None,
                      locations=parse_locations(locations), values=parse_filters(filters))
    made = build_report(slug, options=options, out=out,
                        progress=None if as_json else _progress)
    if as_json:
        _emit_json(made.as_dict())
        return
    click.echo(f"{made.path}")
    click.echo(f"{made.cards} cards on {made.dashboards} dashboards, data as of "
               f"{made.data_as_of or 'no date'}; {len(made.empty)} without data, "
               f"{len(made.errors)} failed")
    if made.dates_counted_from:
        click.echo(f"default dates count back from {made.dates_counted_from}, the data's "
                   "latest day")
    for error in made.errors:
        click.echo(click.style(f"  {error.dashboard} / {error.card}: ", fg="red") + error.error)


@cli.command("review")
@click.argument("slug")
@click.option("--week", metavar="YYYY-Www", help="An ISO week, e.g. 2026-W49 (default: the "
              "latest closed one, or month with review.cadence: monthly).")
@click.option("--month", metavar="YYYY-MM", help="A calendar month, e.g. 2026-11.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the page (default: .goalpost/reviews/SLUG-PERIOD.html).")
@click.option("--send", is_flag=True, help="Also email it to the review's recipients who "
              "have not had this period's (as the scheduler does on Monday).")
@JSON
def review(slug: str, week: str | None, month: str | None, out: Path | None, send: bool,
           as_json: bool) -> None:
    """Client SLUG's business review of a week or a month, as one HTML page: the headline
    metric against the period before, last year and the target, what drove it, what moved,
    unusual days, goals, stock at risk and notes on the data, in the client's `language:`.
    The scheduler emails it to the owners after each period closes (`review:` in the YAML).
    Exit 1 if --send could not send it (it is retried at the next scheduled run), 3 for an
    unknown client or one with nothing built yet."""
    from goalpost.alerts.review.manage import make_review

    made = make_review(slug, week=week, month=month, out=out, send=send)
    data = made.as_dict()
    if as_json:
        _emit_json(data)
    else:
        click.echo(str(made.path))
        click.echo(f"{data['period']} ({data['start']} to {data['end']}), data as of "
                   f"{data['data_as_of'] or 'no date'}: {data['subject']}")
        delivery = data["delivery"]
        for sent in (delivery or {}).get("sent", []):
            click.echo(f"  sent to {sent['recipient']} via {sent.get('path') or 'SMTP'}")
        for recipient in (delivery or {}).get("already_sent", []):
            click.echo(f"  already sent to {recipient}")
        for warning in (delivery or {}).get("warnings", []):
            click.echo(click.style(f"  {warning}", fg="red"))
    if made.delivery and made.delivery.failed:
        sys.exit(1)


@cli.group()
def metrics() -> None:
    """The metric registry: standard metrics and each client's additions and overrides."""


@metrics.command("list")
@click.argument("slug", required=False)
@JSON
def metrics_list(slug: str | None, as_json: bool) -> None:
    """The metrics of client SLUG (the standard ones when no client is given): kind, rhythm,
    unit, category and target."""
    from goalpost.core.metrics import standard_metrics

    found = registry.load_client(slug).metric_registry() if slug else standard_metrics()
    items = [m.dictionary() for m in sorted(found.values(), key=lambda m: m.name)]
    if as_json:
        _emit_json(items)
        return
    for item in items:
        target = f"  target {item['target']:g}" if item["target"] is not None else ""
        click.echo(f"{item['name']:22} {item['label']:24} {item['kind']:8} {item['rhythm']:6} "
                   f"{item['unit'] or '-':9} {item['category']:10} {item['direction']:7}"
                   f"{target}")


@metrics.command("show")
@click.argument("slug")
@click.argument("name", required=False)
@JSON
def metrics_show(slug: str, name: str | None, as_json: bool) -> None:
    """The metric dictionary of client SLUG (or its metric NAME): what each metric means, how
    it is computed, its rhythm, type, confidence, hypothesis, owner and thresholds, and the
    relationships declared from and to it."""
    client = registry.load_client(slug)
    found = client.metric_registry()
    if name is not None and name not in found:
        raise NotFoundError(f"client {slug} has no metric {name!r}",
                            hint=f"see `goalpost metrics list {slug}`")
    chosen = [found[name]] if name else sorted(found.values(), key=lambda m: m.name)
    items = []
    for metric in chosen:
        item = metric.dictionary()
        item["drivers"] = metric.drivers.model_dump() if metric.drivers else None
        item["relationships"] = [
            {"from": r.source, "to": r.target, "direction": r.direction, "lag": r.lag,
             "confidence": r.confidence, "notes": r.notes, "comments": r.comments}
            for r in client.relationships if metric.name in (r.source, r.target)]
        items.append(item)
    if as_json:
        _emit_json(items if name is None else items[0])
        return
    for index, item in enumerate(items):
        if index:
            click.echo("")
        for key, value in item.items():
            if key == "drivers" and value:
                value = f"{value['formula']} (parts: {', '.join(value['parts'])})"
            elif key == "thresholds" and value:
                levels = ", ".join(f"{level} {value[level]:g}" for level in
                                   ("warning", "critical") if value[level] is not None)
                value = f"{value['direction']}: {levels}"
            elif key == "relationships" and value:
                value = "; ".join(f"{r['from']} -> {r['to']} ({r['direction']}, lag {r['lag']})"
                                  for r in value)
            elif isinstance(value, list):
                value = ", ".join(map(str, value))
            if value not in (None, [], ""):
                click.echo(f"{key:13} {value}")


@metrics.command("record")
@click.argument("slug")
@click.argument("metric")
@click.argument("day", metavar="DATE")
@click.argument("value")
@click.option("--dimension", metavar="NAME=VALUE",
              help="A value of one dimension (e.g. location=LYO-01); default: the total.")
@click.option("--by", help="Who gives the value (default: your login and machine).")
@click.option("--note", help="Why, or where the figure comes from.")
@JSON
def metrics_record(slug: str, metric: str, day: str, value: str, dimension: str | None,
                   by: str | None, note: str | None, as_json: bool) -> None:
    """Record one value of input metric METRIC for DATE (the day, or the first day of its
    week or month; YYYY-MM for a monthly metric). A later value for the same point replaces
    it; every value is kept with who gave it and when (`goalpost metrics history`). The next
    `goalpost run SLUG` computes with it."""
    from goalpost.app import metric_points
    from goalpost.core.warehouse import database_url, ready

    client = registry.load_client(slug)
    with ready(database_url()) as conn:
        point = metric_points.record(conn, slug, client, metric, day, value,
                                     dimension=dimension, by=by, note=note)
    if as_json:
        _emit_json(point.__dict__)
        return
    click.echo(f"recorded {point.describe()} = {point.value}; `goalpost run {slug}` computes "
               "with it")


@metrics.command("import")
@click.argument("slug")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--metric", help="The metric of every row, for a file without a metric column.")
@click.option("--by", help="Who gives the values (default: your login and machine).")
@click.option("--note", help="Why, or where the figures come from.")
@JSON
def metrics_import(slug: str, path: Path, metric: str | None, by: str | None,
                   note: str | None, as_json: bool) -> None:
    """Record the values of a CSV or XLSX file (columns metric, date, value, and optionally
    dimension and dimension_value), all or none: a file with a bad row writes nothing and
    names each bad row."""
    from goalpost.app import metric_points
    from goalpost.core.warehouse import database_url, ready

    client = registry.load_client(slug)
    with ready(database_url()) as conn:
        points = metric_points.import_file(conn, slug, client, path, metric=metric, by=by,
                                           note=note)
    if as_json:
        _emit_json({"points": len(points), "metrics": sorted({p.metric for p in points})})
        return
    click.echo(f"recorded {len(points)} values of {', '.join(sorted({p.metric for p in points}))}"
               f" from {path.name}; `goalpost run {slug}` computes with them")


@metrics.command("history")
@click.argument("slug")
@click.argument("metric", required=False)
@JSON
def metrics_history(slug: str, metric: str | None, as_json: bool) -> None:
    """Every value entered by hand for client SLUG (or one METRIC), newest first per point;
    `*` marks each point's current value."""
    from goalpost.app import metric_points
    from goalpost.core.warehouse import database_url, ready

    registry.load_client(slug)
    with ready(database_url()) as conn:
        rows = metric_points.history(conn, slug, metric)
    if as_json:
        _emit_json(rows)
        return
    if not rows:
        click.echo("no values entered by hand")
    for row in rows:
        where = f" {row['dimension']}={row['dimension_value']}" if row["dimension"] else ""
        mark = "*" if row["current"] else " "
        click.echo(f"{mark} {row['metric']} {row['period_start']}{where} = {row['value']}  "
                   f"by {row['recorded_by']} at {row['recorded_at']:%Y-%m-%d %H:%M} "
                   f"({row['origin']}){'  ' + row['note'] if row['note'] else ''}")


# --- alerts -------------------------------------------------------------------------------


@cli.group()
def alerts() -> None:
    """Alert rules (`alerts:` in clients/<slug>.yaml), evaluated after every run and emailed.

    \b
    SMTP from the environment: GOALPOST_SMTP_HOST, GOALPOST_SMTP_PORT (587 starttls, 465 ssl,
    25 none), GOALPOST_SMTP_SECURITY (starttls | ssl | none; default starttls),
    GOALPOST_SMTP_USER, GOALPOST_SMTP_PASSWORD, GOALPOST_SMTP_FROM, GOALPOST_SMTP_TIMEOUT,
    GOALPOST_SMTP_CA_FILE (PEM certificate authorities trusted for TLS instead of the system's).
    Without GOALPOST_SMTP_HOST, emails are written as .eml files to .goalpost/outbox/<slug>/.
    GOALPOST_CONSULTANT_EMAIL receives failed-run alerts (or `alerts.consultant`).
    """


def _print_outcome(outcome: dict[str, Any]) -> None:
    for rule in outcome["rules"]:
        if rule.get("error"):
            click.echo(click.style(f"  error    {rule['rule']:24} {rule['error']}", fg="red"))
            continue
        snoozed = f", snoozed until {rule['snoozed_until']:%Y-%m-%d %H:%M} UTC" \
            if rule.get("snoozed_until") else ""
        click.echo(f"  {rule['rule']:24} checked {rule.get('checked', 0):>5}  firing "
                   f"{rule.get('firing', 0):>4}  fired {rule.get('fired', 0)}  reminded "
                   f"{rule.get('reminded', 0)}  recovered {rule.get('recovered', 0)}{snoozed}")
    _print_delivery(outcome)


def _print_delivery(outcome: dict[str, Any]) -> None:
    for sent in outcome["sent"]:
        where = sent.get("path") or "SMTP"
        click.echo(f"  sent to {sent['recipient']} ({sent['items']} item(s)) via {where}: "
                   f"{sent['subject']}")
    for failed in outcome["failed"]:
        click.echo(click.style(f"  NOT sent to {failed['recipient']} after {failed['attempts']} "
                               f"tries (retried next time): {failed['error']}", fg="red"))
    if outcome.get("held"):
        click.echo(f"  {outcome['held']} notification(s) held until the quiet hours end")


@alerts.command("check")
@click.argument("slug")
@JSON
def alerts_check(slug: str, as_json: bool) -> None:
    """Evaluate client SLUG's rules now and send what fired; exit 1 if a rule could not be
    evaluated or an email could not be sent (it is retried at the next evaluation)."""
    from goalpost.alerts.manage import check

    outcome = check(slug)
    data = outcome.as_dict()
    if as_json:
        _emit_json(data)
    else:
        click.echo(f"evaluation {outcome.evaluation_id} of {slug}")
        _print_outcome(data)
    if outcome.warnings():
        sys.exit(1)


@alerts.command("list")
@click.argument("slug")
@JSON
def alerts_list(slug: str, as_json: bool) -> None:
    """Client SLUG's rules: condition, recipients, snooze, and what is firing now."""
    from goalpost.alerts.manage import overview

    items = overview(slug)
    if as_json:
        _emit_json(items)
        return
    if not items:
        click.echo(f"no alert rules for {slug} (add them under `alerts:` in its YAML)")
    for item in items:
        snoozed = f"  snoozed until {item['snoozed_until']:%Y-%m-%d %H:%M} UTC" \
            if item["snoozed_until"] else ""
        click.echo(f"{item['rule']:24} {item['kind']:12} {item['severity']:8} "
                   f"{item['condition']}{snoozed}")
        click.echo(f"    to {', '.join(item['recipients'])}; firing {len(item['firing'])}; "
                   f"pending deliveries {item['pending_deliveries']}")
        for firing in item["firing"][:10]:
            click.echo(f"      [{firing['key']}] "
                       f"{firing['details'].get('summary') or firing['label']}")
        for key, until in item["snoozed_keys"].items():
            click.echo(f"      [{key}] snoozed until {until:%Y-%m-%d %H:%M} UTC")
        if len(item["firing"]) > 10:
            click.echo(f"      ... and {len(item['firing']) - 10} more (--json lists them all)")


@alerts.command("history")
@click.argument("slug")
@click.option("--rule", help="Only this rule's events.")
@click.option("--limit", default=50, show_default=True, help="How many events.")
@JSON
def alerts_history(slug: str, rule: str | None, limit: int, as_json: bool) -> None:
    """Client SLUG's alert events, newest first: evaluations, what fired, recovered or was
    snoozed, and every delivery attempt with its error."""
    from goalpost.alerts.manage import history

    events = history(slug, limit=limit, rule=rule)
    if as_json:
        _emit_json(events)
        return
    for event in events:
        who = f" to {event['recipient']}" if event["recipient"] else ""
        what = " ".join(str(x) for x in (event["rule"], event["key"]) if x)
        error = click.style(f"  {event['error']}", fg="red") if event["error"] else ""
        click.echo(f"{event['at']:%Y-%m-%d %H:%M:%S} {event['event']:10} {event['status']:8} "
                   f"{what}{who}{error}")


@alerts.command("test")
@click.argument("slug")
@click.option("--rule", help="Only this rule's recipients.")
@JSON
def alerts_test(slug: str, rule: str | None, as_json: bool) -> None:
    """Send a sample email to the recipients of client SLUG's rules (now, whatever the quiet
    hours); exit 1 if it could not be sent."""
    from goalpost.alerts.manage import send_test

    report = send_test(slug, rule)
    data = {"sent": report.sent, "failed": report.failed, "held": report.held}
    if as_json:
        _emit_json(data)
    else:
        _print_delivery(data)
    if report.failed:
        sys.exit(1)


@alerts.command("snooze")
@click.argument("slug")
@click.argument("rule")
@click.option("--until", "until", help="A date (2025-03-01, midnight in the client's time "
              "zone), a date and time ('2025-03-01 08:00') or a duration (12h, 3d).")
@click.option("--key", help="Only this item of the rule, e.g. LYO-01/VIE-001 (a shop and "
              "product; `goalpost alerts list` shows the keys).")
@click.option("--clear", is_flag=True, help="Wake the rule (or the --key) now.")
def alerts_snooze(slug: str, rule: str, until: str | None, key: str | None,
                  clear: bool) -> None:
    """Silence RULE of client SLUG, or one item of it (--key), until a time. If its condition
    still holds then, it is told at the next evaluation."""
    from goalpost.alerts.manage import snooze

    if bool(until) == clear:
        raise ConfigError("give --until <time> or --clear",
                          hint=f"goalpost alerts snooze {slug} {rule} --until 3d")
    end = snooze(slug, rule, None if clear else until, key=key)
    what = f"{rule} {key}" if key else f"rule {rule}"
    click.echo(f"{what} of {slug} " + (f"snoozed until {end:%Y-%m-%d %H:%M} UTC" if end
                                       else "is awake"))


# --- backups ----------------------------------------------------------------------------


@cli.group()
def backup() -> None:
    """Backups of the warehouse (pg_dump custom format with a manifest of checksums).

    Backups go to GOALPOST_BACKUP_DIR (default .goalpost/backups).
    """


@backup.command("create")
@click.option("--client", "slug", help="Only this client's schemas and control rows.")
@click.option("--remote", help="Also copy it to this rclone remote (name:path).")
@JSON
def backup_create(slug: str | None, remote: str | None, as_json: bool) -> None:
    """Make a backup of the whole warehouse, or of one client."""
    from goalpost.backup.core import create_backup, upload_backup
    from goalpost.core.warehouse import database_url, ready

    url = database_url()
    with ready(url) as conn:
        made = create_backup(conn, url, client=slug)
    info = made.summary()
    if remote:
        info["remote"] = upload_backup(made, remote)
    if as_json:
        _emit_json(info)
        return
    click.echo(f"backup {made.id}: {info['tables']} tables, {info['rows']:,} rows, "
               f"{info['size_bytes'] / 1e6:.1f} MB in {made.path}"
               + (f", copied to {info['remote']}" if remote else ""))


@backup.command("list")
@JSON
def backup_list(as_json: bool) -> None:
    """The backups, oldest first."""
    from goalpost.backup.core import backups_dir, list_backups

    items = [b.summary() for b in list_backups()]
    if as_json:
        _emit_json(items)
        return
    if not items:
        click.echo(f"no backups in {backups_dir()}: goalpost backup create")
    for item in items:
        if item["problem"]:
            click.echo(click.style(f"{item['id']:32} UNUSABLE: {item['problem']}", fg="red"))
            continue
        click.echo(f"{item['id']:32} {item['client'] or '(all)':12} {item['tables']:>5} tables "
                   f"{item['rows']:>12,} rows {item['size_bytes'] / 1e6:>8.1f} MB")


@backup.command("verify")
@click.argument("backup_id")
@JSON
def backup_verify(backup_id: str, as_json: bool) -> None:
    """Restore BACKUP_ID into a scratch database and compare every table; exit 1 if any
    differs."""
    from goalpost.backup.core import load_backup, verify_backup
    from goalpost.core.warehouse import database_url, ready

    url = database_url()
    with ready(url) as conn:
        report = verify_backup(conn, url, load_backup(backup_id))
    if as_json:
        _emit_json(report)
    else:
        state = "ok" if report["ok"] else "DIFFERS"
        click.echo(f"backup {backup_id}: {state} ({report['tables']} tables compared)")
        for line in report["differences"]:
            click.echo(f"  {line}")
    if not report["ok"]:
        sys.exit(1)


@backup.command("restore")
@click.argument("backup_id")
@click.option("--into", "into", help="Restore into this database instead (created if needed).")
@click.option("--remote", help="Fetch the backup from this rclone remote first if needed.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def backup_restore(backup_id: str, into: str | None, remote: str | None, yes: bool) -> None:
    """Restore BACKUP_ID: a client backup replaces that client's data; a full one the
    warehouse's. Checksums are checked first."""
    from goalpost.backup.core import fetch_backup, load_backup, restore_backup
    from goalpost.core.warehouse import database_url, ready

    item = fetch_backup(backup_id, remote) if remote else load_backup(backup_id)
    scope = f"client {item.client}" if item.client else "the whole warehouse"
    if into is None and not yes:
        if not _interactive():
            raise ConfigError(f"restoring replaces {scope}", hint="add --yes to confirm")
        click.confirm(f"Replace {scope} with backup {backup_id}?", abort=True)
    url = database_url()
    with ready(url) as conn:
        target = restore_backup(conn, url, item, into=into)
    from goalpost.core.warehouse.connection import redact

    click.echo(f"restored {backup_id} ({scope}) into {redact(target)}")


@backup.command("prune")
@click.option("--keep-daily", default=7, show_default=True)
@click.option("--keep-weekly", default=4, show_default=True)
@click.option("--keep-monthly", default=12, show_default=True)
@click.option("--dry-run", is_flag=True, help="Say what would be deleted, delete nothing.")
def backup_prune(keep_daily: int, keep_weekly: int, keep_monthly: int, dry_run: bool) -> None:
    """Delete the backups the retention policy no longer keeps (per client and for the
    whole warehouse separately)."""
    import shutil

    from goalpost.backup.core import list_backups, plan_prune

    kept, deleted = plan_prune(list_backups(), daily=keep_daily, weekly=keep_weekly,
                               monthly=keep_monthly)
    for item in deleted:
        if not dry_run:
            shutil.rmtree(item.path)
        click.echo(f"{'would delete' if dry_run else 'deleted'} {item.id}")
    for item in kept:
        if item.problem:
            click.echo(click.style(f"kept {item.id}, unusable: {item.problem} (look at it, "
                                   "then delete it by hand)", fg="yellow"))
    click.echo(f"kept {len(kept)} backup(s)")


@cli.command("connectors")
@JSON
def connectors(as_json: bool) -> None:
    """The REST connectors shipped with Goalpost, their settings and streams."""
    from goalpost.pipelines.connectors.operations import describe_connectors

    catalogue = describe_connectors()
    if as_json:
        _emit_json(catalogue)
        return
    click.echo("files        CSV, CSV.gz and XLSX exports (see `goalpost source add --help`)")
    for item in catalogue:
        click.echo(f"{item['name']:12} {item['description']}")
        settings = ", ".join(
            f"{k}{'*' if v['required'] else ''}{' (secret)' if v['secret'] else ''}"
            for k, v in item["settings"].items())
        click.echo(f"{'':12} settings: {settings}")
        for stream, info in item["streams"].items():
            mode = f"incremental on {info['incremental']}" if info["incremental"] else "full read"
            click.echo(f"{'':14}{stream:20} {mode}; {info['description']}")


@source.command("list")
@click.argument("slug")
@JSON
def source_list(slug: str, as_json: bool) -> None:
    """List a client's sources and streams with what has been loaded from each."""
    from goalpost.app import sources
    from goalpost.core.warehouse import ready

    item = registry.load_client(slug)
    with ready() as conn:
        rows = sources.list_streams(conn, slug, item)
    if as_json:
        _emit_json(rows)
        return
    if not rows:
        click.echo(f"{slug} has no sources yet: goalpost source add {slug} <name> ...")
    for row in rows:
        click.echo(f"{row['source'] + '.' + row['stream']:28} {row['entity']:17} "
                   f"{row['files_loaded']:>4} files {row['rows_loaded']:>10,} rows "
                   f"{row['rows_quarantined']:>6,} quarantined  {row['path']}")


@source.command("test")
@click.argument("slug")
@click.argument("name", required=False)
@JSON
def source_test(slug: str, name: str | None, as_json: bool) -> None:
    """Read each stream's files and check dialect and mapping, writing nothing; for a REST
    source, read a page of each stream and say what the account lacks (scopes, data centre,
    API budget, a token that will expire).

    Exit 1 when a stream has a problem.
    """
    from goalpost.app import sources

    checks = sources.test_streams(slug, registry.load_client(slug), name)
    if as_json:
        _emit_json([vars(c) for c in checks])
    else:
        for check in checks:
            mark = click.style("ok  ", fg="green") if check.ok else click.style("FAIL", fg="red")
            if check.dialect.get("format") == "api":
                click.echo(f"{mark} {check.source}.{check.stream}: {check.sample_rows:,} "
                           "records read")
            else:
                click.echo(f"{mark} {check.source}.{check.stream}: {len(check.files)} file(s), "
                           f"{check.sample_rows:,} rows read, {check.sample_rejected:,} "
                           "rejected")
            if check.dialect and check.dialect.get("format") != "api":
                click.echo(f"     dialect: {check.dialect_summary()}")
            for problem in check.problems:
                click.echo(click.style(f"     {problem}", fg="red"))
            for example in check.rejected_examples:
                click.echo(click.style(f"     would quarantine {example}", fg="yellow"))
            for note in check.notes:
                click.echo(f"     {note}")
    if not all(check.ok for check in checks):
        sys.exit(1)


@source.command("remove")
@click.argument("slug")
@click.argument("name")
@click.option("--drop-data", is_flag=True, help="Also drop its raw tables and load history.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def source_remove(slug: str, name: str, drop_data: bool, yes: bool) -> None:
    """Remove source NAME from client SLUG (its raw data is kept unless --drop-data)."""
    from goalpost.app import sources
    from goalpost.core.warehouse import ready

    if drop_data and not yes:
        if not _interactive():
            raise ConfigError("--drop-data deletes loaded data", hint="add --yes to confirm")
        click.confirm(f"Drop the raw tables of {slug}.{name}?", abort=True)
    with ready() as conn:
        sources.remove_source(conn, slug, name, drop_data=drop_data)
    click.echo(f"removed source {name} from clients/{slug}.yaml"
               + (" and dropped its raw data" if drop_data else "; its raw tables are kept"))


# --- metabase ---------------------------------------------------------------------------


@cli.group()
def metabase() -> None:
    """Metabase as code: per-client connection, group, collection, cards and dashboards.

    Everything comes from metabase/templates/*.yaml and clients/<slug>.yaml. Metabase is at
    GOALPOST_METABASE_URL (default http://localhost:3000); `bootstrap` sets a fresh one up
    and saves an API key that `plan` and `apply` use (or set GOALPOST_METABASE_API_KEY).
    Try it without Metabase: `goalpost metabase standin` in another terminal.
    """


@metabase.command("bootstrap")
@click.option("--site-name", help="The name Metabase shows (default: Goalpost on first setup).")
@JSON
def metabase_bootstrap(site_name: str | None, as_json: bool) -> None:
    """Set up a fresh Metabase (first admin, site settings, SMTP, All Users locked out) and
    save an API key; on one already set up, do only what is missing."""
    from goalpost.metabase.bootstrap import bootstrap

    done = bootstrap(site_name=site_name)
    if as_json:
        _emit_json({"url": done.url, "steps": done.steps, "key_saved_to": done.key_saved_to})
    else:
        click.echo(done.render())


def _metabase_plan(slug: str):  # noqa: ANN202 - (plan, client, connection)
    from goalpost.core.warehouse.connection import ready
    from goalpost.metabase.api import MetabaseClient
    from goalpost.metabase.plan import compute_plan

    client = registry.load_client(slug)
    mb = MetabaseClient.from_env()
    conn = ready()
    return compute_plan(slug, client, mb, conn), mb, conn


@metabase.command("plan")
@click.argument("slug")
@JSON
def metabase_plan(slug: str, as_json: bool) -> None:
    """Print what `apply` would create, update and delete for a client; writes nothing."""
    plan, mb, conn = _metabase_plan(slug)
    with mb, conn:
        if as_json:
            _emit_json(plan.to_json())
        else:
            click.echo(plan.render())


@metabase.command("apply")
@click.argument("slug")
@JSON
def metabase_apply(slug: str, as_json: bool) -> None:
    """Make the client's Metabase objects match the templates and its YAML.

    Objects are matched by stable keys, so applying again writes nothing; objects made by
    hand in Metabase are never changed.
    """
    from goalpost.metabase.apply import apply_plan

    plan, mb, conn = _metabase_plan(slug)
    with mb, conn:
        if not as_json:
            click.echo(plan.render())
        done = apply_plan(plan, mb, conn)
        if as_json:
            _emit_json({"plan": plan.to_json(), "created": done.created,
                        "updated": done.updated, "deleted": done.deleted,
                        "permission_entries": done.permissions})
        else:
            click.echo(f"applied: {done.summary()}")


@metabase.command("standin")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
def metabase_standin(host: str, port: int) -> None:
    """Run a stand-in Metabase (in memory, every request checked against Metabase's OpenAPI
    spec) to try bootstrap, plan and apply without a Metabase server. Ctrl-C stops it."""
    import signal

    from goalpost.sandbox.metabase_standin.server import StandinServer

    try:
        server = StandinServer(host, port, verbose=True)
    except OSError as exc:
        raise GoalpostError(f"cannot listen on {host}:{port}: {exc.strerror}",
                            hint="another program (or stand-in) uses that port: stop it, or "
                                 "pick another with --port") from None
    click.echo(f"stand-in Metabase on {server.url}; in another terminal:\n"
               f"  export GOALPOST_METABASE_URL={server.url}\n"
               "  goalpost metabase bootstrap && goalpost metabase plan <client>")

    def _stop(*_: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM (kill, a service manager) stops it like Ctrl-C, with the same summary.
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    if server.metabase.violations:
        click.echo(f"{len(server.metabase.violations)} request(s) did not conform to the spec:",
                   err=True)
        for violation in server.metabase.violations:
            click.echo(f"  {violation}", err=True)


# --- quarantine -------------------------------------------------------------------------


@cli.group()
def quarantine() -> None:
    """The file rows that were not loaded, and why; release the suspect ones.

    `invalid` rows cannot be read by staging (fix the file: an edited file loads again);
    `suspect` rows are readable but probably wrong (a sale dated in the future) and can be
    released: the client's next run loads them.
    """


@quarantine.command("list")
@click.argument("slug", required=False)
@JSON
def quarantine_list(slug: str | None, as_json: bool) -> None:
    """Quarantined rows per client, source, stream and kind, with the first reason."""
    from goalpost.core.warehouse import ready
    from goalpost.pipelines.files import quarantine as held

    if slug:
        registry.load_client(slug)
    with ready() as conn:
        found = held.summary(conn, slug)
    if as_json:
        _emit_json(found)
        return
    if not found:
        click.echo("nothing is quarantined" + (f" for {slug}" if slug else ""))
    for row in found:
        released = f", {row['released']:,} released" if row["released"] else ""
        click.echo(f"{row['client']:16} {row['source'] + '.' + row['stream']:28} "
                   f"{row['kind']:8} {row['rows']:>8,} rows in {row['files']} file(s){released}")
        click.echo(f"{'':18}first: {row['first_reason']}")


@quarantine.command("show")
@click.argument("slug")
@click.option("--source", help="Only this source.")
@click.option("--stream", "stream_name", help="Only this stream.")
@click.option("--kind", type=click.Choice(["invalid", "suspect"]), help="Only this kind.")
@click.option("--file", "file_name", help="Only this file (as listed).")
@click.option("--limit", default=50, show_default=True, help="Rows to show.")
@JSON
def quarantine_show(slug: str, source: str | None, stream_name: str | None, kind: str | None,
                    file_name: str | None, limit: int, as_json: bool) -> None:
    """The quarantined rows of a client: id, file, row, kind, reason and the row itself."""
    from goalpost.core.warehouse import ready
    from goalpost.pipelines.files import quarantine as held

    registry.load_client(slug)
    with ready() as conn:
        found = held.rows(conn, slug, source=source, stream=stream_name, kind=kind,
                          file=file_name, limit=limit)
    if as_json:
        _emit_json(found)
        return
    if not found:
        click.echo(f"nothing is quarantined for {slug}")
    for row in found:
        state = " (released)" if row["released_at"] else ""
        click.echo(f"{row['id']:>8} {row['kind']:8} {row['file']} row {row['row_number']:,}"
                   f"{state}: {row['reason']}")
        click.echo(f"{'':17}{row['record']}")


@quarantine.command("release")
@click.argument("slug")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-suspect", is_flag=True, help="Every suspect row (of --source/--stream).")
@click.option("--source", help="With --all-suspect: only this source.")
@click.option("--stream", "stream_name", help="With --all-suspect: only this stream.")
@JSON
def quarantine_release(slug: str, ids: tuple[int, ...], all_suspect: bool, source: str | None,
                       stream_name: str | None, as_json: bool) -> None:
    """Release suspect rows (by id, or --all-suspect): the next `goalpost run` loads them.
    Invalid rows cannot be released (staging could not read them): fix the file. Exit 1 when
    a row was refused."""
    from goalpost.core.warehouse import ready
    from goalpost.pipelines.files import quarantine as held

    registry.load_client(slug)
    with ready() as conn:
        outcome = held.release(conn, slug, list(ids), all_suspect=all_suspect, source=source,
                               stream=stream_name)
    if as_json:
        _emit_json(vars(outcome))
    else:
        click.echo(f"released {len(outcome.released):,} row(s)"
                   + (f", {len(outcome.already):,} already released" if outcome.already else "")
                   + (f": `goalpost run {slug}` loads them" if outcome.released else ""))
        for refused in outcome.refused:
            click.echo(click.style(f"refused {refused}", fg="red"), err=True)
    if outcome.refused:
        sys.exit(1)


# --- run / status -----------------------------------------------------------------------


@cli.command("run")
@click.argument("slug")
@click.option("--full-refresh", is_flag=True,
              help="Read every file again, not only new ones (each keeps its place in the load "
                   "order; rows of files no longer found are kept), re-extract every API "
                   "stream, and rebuild every model.")
@click.option("--force", is_flag=True,
              help="Let a full read that returns no records empty the table.")
@click.option("--step-timeout", type=float,
              help="Seconds after which an extract step stops (between pages or chunks).")
@JSON
def run(slug: str, full_refresh: bool, force: bool, step_timeout: float | None,
        as_json: bool) -> None:
    """Extract the client's sources, build its models, run its extensions, check its
    sources' freshness and evaluate its alert rules; exit 1 if a step failed."""
    from goalpost.app.orchestrator import run_client

    result = run_client(slug, full_refresh=full_refresh, force=force, step_timeout=step_timeout,
                        progress=None if as_json else _progress)
    if as_json:
        _emit_json(result.as_dict())
    else:
        _print_run(result.as_dict())
    if result.status != "succeeded":
        sys.exit(1)


def _print_run(run: dict[str, Any]) -> None:
    colour = "green" if run["status"] == "succeeded" else "red"
    click.echo(click.style(f"run {run['run_id']} of {run['client']}: {run['status']}", fg=colour))
    for step in run["steps"]:
        extra = ""
        d = step["details"]
        if step["kind"] == "extract" and "records" in d:
            extra = (f"{d['records']:,} records in {d['pages']} page(s): {d['inserted']:,} new, "
                     f"{d['updated']:,} updated, {d['deleted']:,} removed"
                     + (f", new fields: {', '.join(d['new_fields'])}" if d["new_fields"] else "")
                     + "".join(f"; {w}" for w in d.get("warnings", [])))
        elif step["kind"] == "extension" and "table" in d:
            extra = f"{d['status']}: {d['rows']:,} rows in {d['table']}"
        elif step["kind"] == "extract" and step["status"] != "skipped" and d.get("full_refresh"):
            extra = (f"{step['rows_loaded']:,} rows from {d.get('files_loaded', 0)} file(s) "
                     f"reloaded (full refresh: every file read again), "
                     f"{step['rows_quarantined']:,} quarantined")
        elif step["kind"] == "extract" and step["status"] != "skipped":
            extra = (f"{step['rows_loaded']:,} rows from {d.get('files_loaded', 0)} new file(s), "
                     f"{d.get('files_skipped', 0)} already loaded, "
                     f"{step['rows_quarantined']:,} quarantined")
            if d.get("rows_released"):
                extra += f", {d['rows_released']:,} released"
        click.echo(f"  {step['status']:9} {step['name']:32} {step['seconds']:7.2f}s  {extra}")
        if step["kind"] != "extract" or "files_found" in d:
            for warning in d.get("warnings", []):
                click.echo(click.style(f"            warning: {warning}", fg="yellow"))
        if step["error"]:
            click.echo(click.style(f"            {step['error']}", fg="red"))
    if run["models"]:
        click.echo("  rows: " + ", ".join(f"{k} {v:,}" for k, v in run["models"].items()))


@cli.command("status")
@JSON
def status(as_json: bool) -> None:
    """Per client: the last run, the next scheduled run, when data was last loaded and how
    old its newest business date is (the latest sale or stock count), recent failures; and
    the schedulers that are alive."""
    from datetime import UTC, datetime, timedelta

    from goalpost.app.clients import newest_business_date
    from goalpost.app.scheduler import next_slot
    from goalpost.core.runs import last_runs
    from goalpost.core.warehouse import ready

    now = datetime.now(UTC)
    with ready() as conn:
        runs = {row["client"]: row for row in last_runs(conn)}
        fresh = dict(conn.execute(
            "SELECT client, max(finished_at) FROM goalpost.runs WHERE status = 'succeeded' "
            "GROUP BY client").fetchall())
        failures = dict(conn.execute(
            "SELECT client, count(*) FROM goalpost.runs WHERE status = 'failed' AND "
            "started_at > now() - interval '1 day' GROUP BY client").fetchall())
        missed = dict(conn.execute(
            "SELECT client, count(*) FROM goalpost.schedule_slots WHERE status = 'missed' AND "
            "due_at > now() - interval '1 day' GROUP BY client").fetchall())
        schedulers = conn.execute(
            "SELECT instance, host, beat_at FROM goalpost.scheduler_instances WHERE stopped_at "
            "IS NULL AND beat_at > now() - interval '2 minutes' ORDER BY instance").fetchall()
        slugs = sorted(set(registry.list_slugs()) | set(runs))
        newest = {slug: newest_business_date(conn, slug) for slug in slugs}
    rows = []
    today = now.date()
    for slug in slugs:
        last = runs.get(slug)
        problem = None
        try:
            client = registry.load_client(slug)
            next_run = next_slot(client.schedule, client.timezone, now)
        except GoalpostError as exc:  # this client's file only: the others are shown
            next_run, problem = None, exc.message
        rows.append({
            "client": slug,
            "last_run": last["id"] if last else None,
            "status": last["status"] if last else "never run",
            "started_at": last["started_at"] if last else None,
            "seconds": round(float(last["seconds"]), 1) if last else None,
            "rows_loaded": (last["summary"] or {}).get("rows_loaded") if last else None,
            "error": last["error"] if last else None,
            "next_run": next_run,
            "data_as_of": fresh.get(slug),
            "newest_business_date": newest[slug],
            "business_data_age_days": (today - newest[slug]).days if newest[slug] else None,
            "failed_runs_24h": failures.get(slug, 0),
            "missed_runs_24h": missed.get(slug, 0),
            "config_error": problem,
        })
    if as_json:
        _emit_json({"clients": rows, "schedulers": [
            {"instance": i, "host": h, "beat_at": b} for i, h, b in schedulers]})
        return
    if not rows:
        click.echo("no clients yet")
    for row in rows:
        when = row["started_at"].strftime("%Y-%m-%d %H:%M") if row["started_at"] else "-"
        nxt = row["next_run"].strftime("%Y-%m-%d %H:%M") if row["next_run"] else "-"
        age = (f"loaded {(now - row['data_as_of']) // timedelta(minutes=1):,} min ago"
               if row["data_as_of"] else "nothing loaded")
        if row["newest_business_date"]:
            age += (f", data through {row['newest_business_date']} "
                    f"({row['business_data_age_days']:,} days old)")
        click.echo(f"{row['client']:16} {row['status']:10} last {when:16} "
                   f"{row['seconds'] if row['seconds'] is not None else '-':>6}s  next {nxt} UTC"
                   f"  {age}  failed/missed 24h: {row['failed_runs_24h']}/"
                   f"{row['missed_runs_24h']}")
        if row["config_error"]:
            click.echo(click.style(f"    not scheduled: {row['config_error']}", fg="red"))
        if row["error"]:
            click.echo(click.style(f"    {row['error']}", fg="red"))
    click.echo(f"schedulers alive: {', '.join(i for i, _, _ in schedulers) or 'none'}")


@cli.command("doctor")
def doctor() -> None:
    """Check the environment and say what to fix; exit 1 if something is wrong."""
    from goalpost.app.doctor import run_checks

    failed = 0
    for check in run_checks():
        mark = {"ok": click.style("ok  ", fg="green"), "warn": click.style("warn", fg="yellow"),
                "fail": click.style("FAIL", fg="red")}[check.status]
        click.echo(f"{mark} {check.name}: {check.detail}")
        if check.fix and check.status != "ok":
            click.echo(f"     fix: {check.fix}")
        failed += check.status == "fail"
    if failed:
        sys.exit(1)


@cli.command("demo")
@click.option("--days", default=730, show_default=True, help="Days of generated history.")
@click.option("--scale", default=1.0, show_default=True, help="Multiplier on customer traffic.")
@click.option("--fresh", is_flag=True, help="Remove the demo client and its data first.")
def demo(days: int, scale: float, fresh: bool) -> None:
    """Run the PanPan bakery demo end to end: generate, onboard, load, build, run the
    extensions and alerts, summarise."""
    from goalpost.sandbox.demo.run import run_demo

    summary = run_demo(days=days, scale=scale, fresh=fresh, progress=_progress)
    click.echo(summary.render())
    if summary.status != "succeeded":
        sys.exit(1)


def main() -> None:
    """Entry point of the console script. The streams stay masked for the life of the
    process, so that a traceback (a bug) printed on the way out is masked too."""
    sys.stdout = masking.MaskingStream(sys.stdout)
    sys.stderr = masking.MaskingStream(sys.stderr)
    cli()
