"""One run of one client: extract every source stream, build that client's models, run its
extensions, report how fresh each source is, then evaluate its alert rules.

Each stream is a step of its own: a stream that fails is recorded and the others go on, and
the transform still builds from what is in raw (every file lands whole or not at all).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from goalpost.app import clients, metric_points
from goalpost.core import registry
from goalpost.core.errors import GoalpostError
from goalpost.core.freshness import source_freshness
from goalpost.core.paths import project_root
from goalpost.core.registry.models import ApiSource, Client, FileSource
from goalpost.core.runs import RunRecorder, Step
from goalpost.core.warehouse import database_url, ready

Progress = Callable[[str], None]


@dataclass
class RunResult:
    run_id: int
    client: str
    status: str
    steps: list[Step] = field(default_factory=list)
    rows_loaded: int = 0
    rows_quarantined: int = 0
    models: dict[str, int] = field(default_factory=dict)
    # Raw tables ("<slug>_raw.<source>__<stream>") whose rows changed: what the build restates.
    changed_tables: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "client": self.client,
            "status": self.status,
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
            "models": self.models,
            "steps": [
                {"name": s.name, "kind": s.kind, "status": s.status, "rows_loaded": s.rows_loaded,
                 "rows_quarantined": s.rows_quarantined, "seconds": round(s.seconds, 3),
                 "error": s.error, "details": s.details}
                for s in self.steps
            ],
        }


def _quiet(_: str) -> None:
    return None


def run_client(
    slug: str,
    *,
    full_refresh: bool = False,
    force: bool = False,
    trigger: str = "cli",
    wait_for_lock: float = 0.0,
    step_timeout: float | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Extract and transform one client, recorded as a run with per-step status.

    `force` lets a full read that returned nothing empty a table (see pipelines.connectors).
    Runs of one client never overlap: a second one waits up to `wait_for_lock` seconds, then
    is refused. `step_timeout` stops an extract step at its next safe point once exceeded.
    """
    client = registry.load_client(slug)
    from goalpost.pipelines.raw import ensure_raw_table

    say = progress or _quiet
    url = database_url()
    with ready(url) as conn:
        clients.sync(conn, slug, client)
        # Staging reads every selected stream, extracted yet or not.
        for source in client.sources:
            if isinstance(source, FileSource):
                for stream in source.streams:
                    ensure_raw_table(conn, slug, source.name, stream.name)
            else:
                for name in source.stream_names():
                    ensure_raw_table(conn, slug, source.name, name, unique_key=True)

    recorder = RunRecorder(url, slug, trigger=trigger, full_refresh=full_refresh,
                           wait_for_lock=wait_for_lock, step_timeout=step_timeout)
    result = RunResult(recorder.run_id, slug, "running")
    say(f"run {recorder.run_id} of {slug}")
    if full_refresh:
        say("full refresh: every file is read again, not only new ones, and every model rebuilt")
    try:
        _run_steps(recorder, result, slug, client, url, full_refresh=full_refresh, force=force,
                   say=say)
    except BaseException as exc:
        # A bug or an interrupt: the run is recorded failed and its lock released at once,
        # rather than left 'running' until something notices its process is gone.
        recorder.abort(exc)
        raise
    return result


def _run_steps(recorder: RunRecorder, result: RunResult, slug: str, client: Client, url: str,
               *, full_refresh: bool, force: bool, say: Progress) -> None:
    """The steps of one run, in order: extracts, transform, extensions, freshness, alerts."""
    # Imported here: SQLMesh takes a second to import and most commands never need it.
    from goalpost.transform.build import build_client, mark_pending

    # Before raw can change: if this process dies from here on, the next build restates.
    mark_pending(recorder.conn, slug, recorder.run_id, full_refresh)
    with ready(url) as conn:
        for source in client.sources:
            if isinstance(source, FileSource):
                _extract_files(conn, recorder, result, slug, client, source, full_refresh, say)
            else:
                _extract_api(conn, recorder, result, slug, source, full_refresh, force, say)

    # Values entered by hand since the last build are new data too.
    entered = metric_points.newest(recorder.conn, slug)
    if metric_points.unbuilt(recorder.conn, slug):
        result.changed_tables.add(metric_points.TABLE)
    with recorder.step("transform", "transform") as step:
        restate = full_refresh or bool(result.changed_tables)
        say("transform: SQLMesh plan and apply"
            + (" (restating with new data)" if restate else ""))
        built = build_client(slug, client, url=url, restate=restate,
                             changed=result.changed_tables, full_refresh=full_refresh,
                             run_id=recorder.run_id, progress=say)
        result.models = dict(built.rows)
        metric_points.mark_built(recorder.conn, slug, entered)
        # Failed blocking audits fail the build itself; these are the non-blocking ones.
        step.details = {"models": built.models, "rows": built.rows,
                        "audit_failures": built.audit_failures, "seconds": built.seconds,
                        "warnings": built.audit_failures}

    _run_extensions(recorder, slug, client, built_ok=step.status == "succeeded", say=say)

    with recorder.step("freshness", "check") as step:
        now = datetime.now(UTC)
        report = source_freshness(recorder.conn, slug, client, now)
        step.details = {
            "sources": {f.source: {"stream": f.stream, "last_data_at": f.last_data_at,
                                  "max_age_hours": f.max_age.total_seconds() / 3600,
                                  "stale": f.stale} for f in report},
            "warnings": [f.describe(now) for f in report if f.stale],
        }
        for warning in step.details["warnings"]:
            say(f"warning: {warning}")

    _run_alerts(recorder, slug, client, say)

    result.steps = recorder.steps
    result.status = recorder.finish(
        {"rows_loaded": result.rows_loaded, "rows_quarantined": result.rows_quarantined,
         "models": result.models}
    )


def run_extensions(slug: str, names: list[str] | None = None, *, force: bool = False,
                   progress: Progress | None = None) -> RunResult:
    """Run the client's extensions (or the named ones) on its current marts, as a run of its
    own; `force` recomputes even when their inputs did not change."""
    client = registry.load_client(slug)
    url = database_url()
    ready(url).close()
    say = progress or _quiet
    recorder = RunRecorder(url, slug, trigger="extensions")
    result = RunResult(recorder.run_id, slug, "running")
    try:
        _run_extensions(recorder, slug, client, built_ok=True, say=say, names=names,
                        force=force)
        result.steps = recorder.steps
        result.status = recorder.finish({"extensions": [s.name for s in recorder.steps]})
    except BaseException as exc:
        recorder.abort(exc)
        raise
    return result


def _run_alerts(recorder: RunRecorder, slug: str, client: Client, say: Progress) -> None:
    """Evaluate the alert rules at the end of every run, a failed one too (it alerts the
    consultant). Rules that cannot be evaluated and deliveries that fail are warnings of the
    step: they are retried at the next evaluation and never fail the run."""
    from goalpost.alerts.check import evaluate_alerts

    failed = "; ".join(f"{s.name}: {s.error}" for s in recorder.steps if s.status == "failed")
    with recorder.step("alerts", "alert") as step:
        outcome = evaluate_alerts(recorder.conn, slug, client, trigger="run",
                                  run_id=recorder.run_id, run_errors=failed)
        fired = sum(r.get("fired", 0) + r.get("reminded", 0) for r in outcome.rules)
        step.details = {"evaluation_id": outcome.evaluation_id, "rules": len(outcome.rules),
                        "notified": fired, "emails_sent": len(outcome.delivery.sent),
                        "emails_failed": len(outcome.delivery.failed),
                        "held": outcome.delivery.held, "warnings": outcome.warnings()}
        say(f"alerts: {len(outcome.rules)} rule(s), {fired} notification(s), "
            f"{len(outcome.delivery.sent)} email(s) sent")
        for warning in step.details["warnings"]:
            say(f"warning: {warning}")


def _run_extensions(recorder: RunRecorder, slug: str, client: Client, *, built_ok: bool,
                    say: Progress, names: list[str] | None = None,
                    force: bool = False) -> None:
    """One step per extension of the client, after a successful build."""
    from goalpost.extensions.runner import enabled, run_extension

    try:
        chosen = enabled(client, names)
    except GoalpostError as exc:
        with recorder.step("extensions", "extension") as step:
            step.error = str(exc)
        return
    for extension in chosen:
        with recorder.step(f"extension {extension.name}", "extension") as step:
            if not built_ok:
                step.status, step.error = "skipped", "skipped: the transform failed"
                continue
            say(f"extension {extension.name}")
            job = run_extension(recorder.conn, slug, client, extension,
                                run_id=recorder.run_id, force=force)
            step.rows_loaded = job.rows if job.status == "written" else 0
            step.details = {"table": f"{slug}_insights.{job.table}", "status": job.status,
                            "rows": job.rows}
            say(f"  {extension.name}: {job.status}, {job.rows:,} rows in {job.table}")


def _extract_files(conn: Any, recorder: RunRecorder, result: RunResult, slug: str,
                   client: Client, source: FileSource, full_refresh: bool,
                   say: Progress) -> None:
    from goalpost.pipelines.files.loader import load_file_stream

    for stream in source.streams:
        name = f"{source.name}.{stream.name}"
        with recorder.step(f"extract {name}", "extract") as step:
            say(f"extract {name}")
            loaded = load_file_stream(
                conn, slug=slug, source=source.name, stream=stream, root=project_root(),
                run_id=recorder.run_id, country=client.country,
                full_refresh=full_refresh, progress=lambda m, n=name: say(f"  {n}: {m}"),
            )
            step.rows_loaded = loaded.rows_loaded
            step.rows_quarantined = loaded.rows_quarantined
            step.details = {
                "files_found": loaded.files_found,
                "files_loaded": loaded.files_loaded,
                "files_skipped": loaded.files_skipped,
                "full_refresh": loaded.full_refresh,
                "files_missing": loaded.files_missing,
                "rows_released": loaded.rows_released,
                "problems": loaded.problems,
                "warnings": loaded.warnings,
                "new_columns": loaded.new_columns,
            }
            for warning in loaded.warnings:
                say(f"warning: {warning}")
            if loaded.problems:
                # Files that loaded stay loaded; the step fails so the problem is seen.
                step.error = "; ".join(loaded.problems)
            result.rows_loaded += loaded.rows_loaded
            result.rows_quarantined += loaded.rows_quarantined
            if loaded.rows_loaded:
                result.changed_tables.add(f"{slug}_raw.{source.name}__{stream.name}")


def _extract_api(conn: Any, recorder: RunRecorder, result: RunResult, slug: str,
                 source: ApiSource, full_refresh: bool, force: bool, say: Progress) -> None:
    """One step per stream; a failed stream stops the streams that depend on it only."""
    from goalpost.pipelines.connectors.engine import run_stream
    from goalpost.pipelines.connectors.http import ApiClient
    from goalpost.pipelines.connectors.secrets import resolve_settings

    manifest = source.load_manifest()
    failed: set[str] = set()
    client = None
    try:
        for name in source.stream_names():
            label = f"{source.name}.{name}"
            parent = manifest.streams[name].partitions
            with recorder.step(f"extract {label}", "extract") as step:
                if parent is not None and parent.from_stream in failed:
                    step.status = "skipped"
                    step.error = f"skipped: {source.name}.{parent.from_stream} failed"
                    failed.add(name)
                    continue
                say(f"extract {label}")
                if client is None:
                    settings = resolve_settings(manifest, source.config, slug=slug,
                                                source=source.name)
                    client = ApiClient(manifest, settings, slug=slug, source=source.name)
                try:
                    got = run_stream(conn, client, slug=slug, source=source.name,
                                     manifest=manifest, name=name, settings=client.settings,
                                     run_id=recorder.run_id, full_refresh=full_refresh,
                                     force=force,
                                     progress=lambda m, n=label: say(f"  {n}: {m}"))
                except Exception:
                    failed.add(name)
                    raise
                step.rows_loaded = got.inserted + got.updated
                step.details = {"records": got.records, "inserted": got.inserted,
                                "updated": got.updated, "deleted": got.deleted,
                                "pages": got.pages, "retries": got.retries,
                                "cursor": got.cursor, "new_fields": got.new_fields,
                                "warnings": got.warnings}
                result.rows_loaded += got.inserted + got.updated
                if got.inserted or got.updated or got.deleted:
                    result.changed_tables.add(f"{slug}_raw.{source.name}__{name}")
    finally:
        if client is not None:
            client.close()
