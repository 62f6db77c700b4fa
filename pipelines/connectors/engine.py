"""Running one stream of a REST source into its raw table, exactly once.

For each partition and time window the stream's pages are fetched by a background thread, one
page ahead of the loading, and each page lands in one transaction: its records are upserted by
primary key into `<slug>_raw.<source>__<stream>` (a re-delivered record replaces the stored one
only when it differs and is not older), and the stream's state in `goalpost.extract_state`
moves in the same transaction. The records go to Postgres as the JSON text the vendor sent, so
amounts keep their exact digits. A killed run loses at most the page in flight; the next run
asks again from the last committed cursor and the upsert absorbs what comes twice.

Streams without an incremental cursor are read whole each run; records that no longer come
are then removed, unless the API returned nothing at all (an outage looks like that), which
needs `force`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg import sql

from goalpost.core.runs import check_deadline
from goalpost.pipelines.connectors.http import (
    ApiClient,
    ExtractError,
    Page,
    RestartChain,
    SplitWindow,
)
from goalpost.pipelines.connectors.manifest import (
    Check,
    Incremental,
    Manifest,
    Stream,
    duration_seconds,
)
from goalpost.pipelines.connectors.templating import TemplateError, get_path, render, set_path
from goalpost.pipelines.raw import ensure_raw_table, raw_identifier

Progress = Callable[[str], None]
MAX_RESTARTS = 3
MIN_WINDOW_SECONDS = 1.0
PREFETCH_PAGES = 2


@dataclass
class StreamResult:
    stream: str
    records: int = 0  # records received
    inserted: int = 0
    updated: int = 0
    deleted: int = 0  # removed by a full read that no longer returned them
    pages: int = 0
    retries: int = 0
    cursor: dict[str, Any] = field(default_factory=dict)
    new_fields: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _quiet(_: str) -> None:
    return None


# --- cursor values ------------------------------------------------------------------------


def parse_cursor(value: Any, incremental: Incremental) -> datetime | float:
    if incremental.type == "number":
        return float(value)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    text = str(value).strip()
    if text.isdigit():
        number = int(text)
        return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_cursor(value: datetime | float, incremental: Incremental) -> Any:
    """A cursor value as the API wants it sent."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    moment = value.astimezone(UTC)
    if incremental.format == "epoch_ms":
        return str(int(moment.timestamp() * 1000))
    if incremental.format == "epoch_s":
        return str(int(moment.timestamp()))
    if incremental.format == "rfc3339_ms":
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- state --------------------------------------------------------------------------------


def load_state(conn: psycopg.Connection, slug: str, source: str,
               stream: str) -> tuple[dict[str, Any], dict[str, Any]]:
    row = conn.execute(
        "SELECT cursor, state FROM goalpost.extract_state WHERE client = %s AND source = %s "
        "AND stream = %s", (slug, source, stream)).fetchone()
    if row is None:
        return {}, {}
    return dict(row[0] or {}), dict(row[1] or {})


def save_state(conn: psycopg.Connection, slug: str, source: str, stream: str,
               cursor: dict[str, Any], state: dict[str, Any], run_id: int) -> None:
    conn.execute(
        "INSERT INTO goalpost.extract_state (client, source, stream, cursor, state, run_id, "
        "updated_at) VALUES (%s, %s, %s, %s, %s, %s, now()) ON CONFLICT (client, source, stream) "
        "DO UPDATE SET cursor = EXCLUDED.cursor, state = EXCLUDED.state, run_id = EXCLUDED.run_id, "
        "updated_at = now()",
        (slug, source, stream, orjson.dumps(cursor).decode(), orjson.dumps(state).decode(),
         run_id))


# --- loading a page -----------------------------------------------------------------------


def _json_path(path: str) -> list[str]:
    return path.split(".") if path else []


class PageLoader:
    """The stream's upsert, built once: one page of records per call, inside a transaction.

    The page goes to Postgres as the text the vendor sent (jsonb keeps exact numbers); the
    records are picked out, keyed and upserted there. With `seen_table`, the keys also go to a
    session table, so that a full read can remove what it no longer returned.
    """

    def __init__(self, slug: str, source: str, name: str, stream: Stream,
                 seen_table: str | None = None) -> None:
        self.table = raw_identifier(slug, source, name)
        key = sql.SQL(", ").join(
            sql.SQL("r #> {}").format(sql.Literal(_json_path(k))) for k in stream.primary_key)
        deleted: sql.Composable = sql.SQL("false")
        if stream.deletes is not None:
            path = sql.Literal(_json_path(stream.deletes.field))
            if stream.deletes.equals is None:
                deleted = sql.SQL("coalesce(jsonb_typeof(r #> {}) <> 'null', false)").format(path)
            else:
                deleted = sql.SQL("coalesce(r #> {} = {}::jsonb, false)").format(
                    path, sql.Literal(orjson.dumps(stream.deletes.equals).decode()))
        newer: sql.Composable = sql.SQL("true")
        if stream.incremental is not None:
            path = sql.Literal(_json_path(stream.incremental.cursor_field))
            cast = sql.SQL("numeric" if stream.incremental.type == "number" else "timestamptz")
            newer = sql.SQL(
                "(t.data #>> {p} IS NULL OR EXCLUDED.data #>> {p} IS NULL OR "
                "(EXCLUDED.data #>> {p})::{c} >= (t.data #>> {p})::{c})").format(p=path, c=cast)
        record = (sql.SQL("e.r #> {}").format(sql.Literal(_json_path(stream.record_path)))
                  if stream.record_path else sql.SQL("e.r"))
        seen = sql.SQL("")
        if seen_table is not None:
            seen = sql.SQL(", seen AS (INSERT INTO {} SELECT k FROM keyed ON CONFLICT DO NOTHING)"
                           ).format(sql.Identifier(seen_table))
        self.upsert = sql.SQL(
            "WITH body AS (SELECT %(page)s::jsonb #> %(records)s AS list), "
            "page AS (SELECT {record} AS r, e.n FROM body, jsonb_array_elements(CASE "
            "jsonb_typeof(body.list) WHEN 'array' THEN body.list WHEN 'object' THEN "
            "jsonb_build_array(body.list) ELSE '[]' END) "
            "WITH ORDINALITY AS e(r, n)), "
            "keyed AS (SELECT DISTINCT ON (k) jsonb_build_array({key})::text AS k, r, n "
            "FROM page ORDER BY k, n DESC){seen} "
            "INSERT INTO {table} AS t (_key, _run_id, _row, data, _deleted) "
            "SELECT k, %(run)s, n, r, {deleted} FROM keyed "
            "ON CONFLICT (_key) DO UPDATE SET data = EXCLUDED.data, _run_id = EXCLUDED._run_id, "
            "_row = EXCLUDED._row, _deleted = EXCLUDED._deleted, _loaded_at = now() "
            "WHERE t.data IS DISTINCT FROM EXCLUDED.data AND {newer} "
            "RETURNING (xmax = 0)"
        ).format(record=record, key=key, seen=seen, table=self.table, deleted=deleted,
                 newer=newer)

    def load(self, conn: psycopg.Connection, page: Page, records_path: str,
             run_id: int) -> tuple[int, int]:
        """(inserted, updated) for one page."""
        rows = conn.execute(self.upsert, {"page": page.content.decode("utf-8"),
                                          "records": _json_path(records_path),
                                          "run": run_id}).fetchall()
        inserted = sum(1 for (new,) in rows if new)
        return inserted, len(rows) - inserted


# --- fetching pages -----------------------------------------------------------------------


@dataclass
class Fetched:
    page: Page
    records: list[Any]
    last: bool  # the last page of its partition


@dataclass
class _Window:
    start: datetime | float | None
    end: datetime | None


class PageFetcher:
    """Walks one partition of a stream page by page: windows, pagination, restarts, splits."""

    def __init__(self, client: ApiClient, stream: Stream, context: dict[str, Any]) -> None:
        self.client, self.stream, self.context = client, stream, context
        self.restarts = 0
        self.warnings: list[str] = []  # said by `warn` error rules, once each
        wanted = (context.get("config") or {}).get("page_size")
        size = stream.paginator.size
        # A source may ask for smaller pages than the manifest's, never larger ones.
        self.page_size = min(int(wanted), size) if wanted and size else size

    def _request(self, window: _Window, token: Any, offset: int) -> tuple[str, dict, Any, dict]:
        stream, paginator = self.stream, self.stream.paginator
        incremental = stream.incremental
        cursor = {"start": None, "end": None}
        if incremental is not None and window.start is not None:
            cursor["start"] = format_cursor(window.start, incremental)
            if window.end is not None and incremental.send_end:
                cursor["end"] = format_cursor(window.end, incremental)
        page_token = offset if paginator.type in ("offset", "page") else token
        size = self.page_size
        context = dict(self.context, cursor=cursor, page={"token": page_token, "size": size})
        try:
            path = render(stream.request.path, context)
            params = render(stream.request.params, context)
            body = render(stream.request.json_body, context)
            headers = render(stream.request.headers, context)
        except TemplateError as exc:
            raise ExtractError(f"the stream's request uses {{{exc.args[0]}}}, which has no "
                               "value", hint="set it in the source's config") from None
        if paginator.size_field and size:
            self._inject(paginator.inject, paginator.size_field, size, params, body)
        if paginator.field and page_token is not None:
            self._inject(paginator.inject, paginator.field, page_token, params, body)
        return path, params, body, headers

    @staticmethod
    def _inject(where: str, name: str, value: Any, params: dict, body: Any) -> None:
        if where == "params":
            params[name] = value
        elif where == "json":
            set_path(body, name, value)
        else:
            set_path(body, f"variables.{name}", value)

    def windows(self, start: datetime | float | None, end: datetime) -> Iterator[_Window]:
        incremental = self.stream.incremental
        if incremental is None or start is None or isinstance(start, float) or \
                not incremental.window:
            yield _Window(start, end)
            return
        step = timedelta(seconds=duration_seconds(incremental.window))
        while start < end:
            yield _Window(start, min(start + step, end))
            start = start + step

    def pages(self, start: datetime | float | None, end: datetime) -> Iterator[Fetched]:
        """Every page of the partition, the last one flagged."""
        previous: tuple[Page, list[Any]] | None = None
        for window in self.windows(start, end):
            for item in self._window_pages(window):
                if previous is not None:
                    yield Fetched(*previous, last=False)
                previous = item
        if previous is not None:
            yield Fetched(*previous, last=True)

    def _window_pages(self, window: _Window) -> Iterator[tuple[Page, list[Any]]]:
        try:
            yield from self._chain(window)
        except SplitWindow as exc:
            if not isinstance(window.start, datetime) or window.end is None or \
                    (window.end - window.start).total_seconds() < 2 * MIN_WINDOW_SECONDS:
                raise ExtractError(f"the API's result ceiling is hit even for a one-second "
                                   f"window ({exc})") from None
            middle = window.start + (window.end - window.start) / 2
            yield from self._window_pages(_Window(window.start, middle))
            yield from self._window_pages(_Window(middle, window.end))

    def _chain(self, window: _Window) -> Iterator[tuple[Page, list[Any]]]:
        stream, paginator, client = self.stream, self.stream.paginator, self.client
        token: Any = None
        offset = paginator.start
        next_url: str | None = None
        while True:
            path, params, body, headers = self._request(window, token, offset)
            try:
                if next_url is not None:
                    page = client.request(stream.request.method, next_url, headers=headers,
                                          json_body=body, rules=stream.errors)
                else:
                    page = client.request(stream.request.method, path, params=params,
                                          json_body=body, headers=headers, rules=stream.errors)
            except RestartChain as exc:
                self.restarts += 1
                if self.restarts > MAX_RESTARTS:
                    raise ExtractError(f"the API keeps refusing its own page token ({exc})",
                                       hint="run again; if it persists, reset the stream with "
                                            "`goalpost source reset`") from None
                token, offset, next_url = None, paginator.start, None
                continue
            records = get_path(page.body, stream.records)
            if records is None:
                records = []
            elif isinstance(records, dict):
                records = [records]  # an endpoint that returns one object
            elif not isinstance(records, list):
                raise ExtractError(f"{path}: expected a list of records at {stream.records!r}, "
                                   f"got {type(records).__name__}")
            if stream.record_path:
                records = [get_path(item, stream.record_path) for item in records]
            self._check_total(page, token is None and next_url is None)
            if page.warning and page.warning not in self.warnings:
                self.warnings.append(page.warning)
            if stream.nested and self._page_nested(records, path, headers):
                # The records grew: the page is stored as they now are (the connections that
                # are paged this way carry amounts as strings, so no digit is lost).
                page.content = orjson.dumps(page.body)
            yield page, records
            kind = paginator.type
            if kind == "none":
                return
            if kind in ("body_cursor", "version"):
                token = get_path(page.body, paginator.token_path)
                if not token or (kind == "version" and not records):
                    return
            elif kind == "header_token":
                token = page.headers.get(paginator.token_header or "")
                if not token:
                    return
            elif kind == "link_header":
                next_url = _next_link(page.headers.get("link", ""))
                if not next_url:
                    return
            elif kind == "graphql":
                info = get_path(page.body, paginator.page_info_path) or {}
                if not info.get("hasNextPage"):
                    return
                token = info.get("endCursor")
            elif kind == "offset":
                if not records or (self.page_size and len(records) < self.page_size):
                    return
                offset += len(records)
            elif kind == "page":
                more = get_path(page.body, paginator.has_more_path) \
                    if paginator.has_more_path else None
                if more is False or not records or (
                        more is None and self.page_size and len(records) < self.page_size):
                    return
                offset += 1


    def _page_nested(self, records: list[Any], path: str, headers: dict) -> bool:
        """Ask for the rest of each record's nested connections that have more pages."""
        grown = False
        for spec in self.stream.nested:
            for record in records:
                connection = get_path(record, spec.path)
                if not isinstance(connection, dict):
                    continue
                while (connection.get("pageInfo") or {}).get("hasNextPage"):
                    body = {"query": spec.query, "variables": {
                        "id": get_path(record, spec.id_field),
                        "after": connection["pageInfo"].get("endCursor")}}
                    page = self.client.request(self.stream.request.method, path, json_body=body,
                                               headers=headers, rules=self.stream.errors)
                    more = get_path(page.body, spec.records)
                    if not isinstance(more, dict) or not isinstance(more.get("nodes"), list):
                        raise ExtractError(f"{path}: the page of {spec.path} asked for has no "
                                           f"{spec.records}.nodes")
                    connection["nodes"] = [*connection.get("nodes", []), *more["nodes"]]
                    connection["pageInfo"] = more.get("pageInfo") or {}
                    grown = True
        return grown

    def _check_total(self, page: Page, first: bool) -> None:
        """Split the window before paging past a search's result ceiling."""
        paginator = self.stream.paginator
        if not first or paginator.max_total is None or paginator.total_path is None:
            return
        total = get_path(page.body, paginator.total_path)
        if isinstance(total, int) and not isinstance(total, bool) and \
                total > paginator.max_total:
            raise SplitWindow(f"the search matched {total:,} records and pages through at "
                              f"most {paginator.max_total:,}")


def _next_link(header: str) -> str | None:
    for part in header.split(","):
        if 'rel="next"' in part or "rel=next" in part:
            start, end = part.find("<"), part.find(">")
            if start != -1 and end > start:
                return part[start + 1:end]
    return None


def prefetched(pages: Iterator[Fetched], depth: int = PREFETCH_PAGES) -> Iterator[Fetched]:
    """The same pages, fetched by a background thread up to `depth` pages ahead."""
    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in pages:
                while not stop.is_set():
                    try:
                        box.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            box.put(exc)

    worker = threading.Thread(target=produce, name="page-fetcher", daemon=True)
    worker.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                box.get_nowait()
            except queue.Empty:
                worker.join(0.05)


# --- running a stream ---------------------------------------------------------------------


def partitions(conn: psycopg.Connection, stream: Stream, slug: str, source: str,
               settings: dict[str, Any], read_up_to: list[str] | None = None
               ) -> list[dict[str, Any]]:
    """The stream's partitions: [{"key", "value", "values"}], one "*" when it has none.

    With `changed_only`, the parent records loaded after `read_up_to` ([loaded_at, value]),
    in load order, each with its "mark" for the stream's state.
    """
    spec = stream.partitions
    if spec is None:
        return [{"key": "*", "value": None, "values": None}]
    if spec.changed_only:
        return _changed_parents(conn, spec.field, raw_identifier(slug, source, spec.from_stream),
                                read_up_to)
    if spec.values is not None:
        values = render(spec.values, {"config": settings})
        values = values if isinstance(values, list) else [values]
    else:
        values = [row[0] for row in conn.execute(
            sql.SQL("SELECT DISTINCT data #>> {} FROM {} WHERE NOT _deleted ORDER BY 1").format(
                sql.Literal(_json_path(spec.field)),
                raw_identifier(slug, source, spec.from_stream)))
            if row[0] is not None]
    chunks = [values[i:i + spec.chunk] for i in range(0, len(values), spec.chunk)]
    return [{"key": ",".join(map(str, chunk)), "value": chunk[0], "values": chunk}
            for chunk in chunks]


def _changed_parents(conn: psycopg.Connection, field_name: str, table: sql.Composable,
                     read_up_to: list[str] | None) -> list[dict[str, Any]]:
    since, after = (read_up_to or ["-infinity", ""])
    rows = conn.execute(sql.SQL(
        "SELECT data #>> {f}, _loaded_at FROM {t} WHERE NOT _deleted AND data #>> {f} IS NOT "
        "NULL AND (_loaded_at > %(since)s::timestamptz OR (_loaded_at = %(since)s::timestamptz "
        "AND data #>> {f} > %(after)s)) ORDER BY _loaded_at, 1").format(
        f=sql.Literal(_json_path(field_name)), t=table), {"since": since, "after": after})
    return [{"key": value, "value": value, "values": [value],
             "mark": [loaded_at.isoformat(), value]} for value, loaded_at in rows]


def run_check(client: ApiClient, check: Check) -> list[str]:
    """The messages of a check's expectations that the account does not meet."""
    request = check.request
    context = {"config": client.settings}
    page = client.request(request.method, render(request.path, context),
                          params=render(request.params, context),
                          json_body=render(request.json_body, context),
                          headers=render(request.headers, context))
    items = get_path(page.body, check.values)
    if not isinstance(items, list):
        return [f"{check.name}: the answer has no list at {check.values}, so it cannot be "
                "checked"]
    found = {get_path(item, check.field) if check.field else item for item in items}
    return [expect.message for expect in check.expect if expect.value not in found]


def account_warnings(client: ApiClient, stream: str) -> list[str]:
    """What the manifest's checks found missing that concerns this stream (each check is
    asked once per client)."""
    out: list[str] = []
    for check in client.manifest.checks:
        if stream not in check.streams:
            continue
        if check.name not in client.check_results:
            client.check_results[check.name] = run_check(client, check)
        out.extend(client.check_results[check.name])
    return out


BUDGET_STATE = "_calls"  # the extract_state row holding a source's API calls of the day


def _load_budget(conn: psycopg.Connection, client: ApiClient, slug: str, source: str) -> None:
    if client.manifest.budget is not None and client.calls_today is None:
        _, state = load_state(conn, slug, source, BUDGET_STATE)
        client.use_budget(str(state.get("day", "")), int(state.get("calls", 0)))


def _save_budget(conn: psycopg.Connection, client: ApiClient, slug: str, source: str,
                 run_id: int) -> None:
    if client.manifest.budget is not None:
        save_state(conn, slug, source, BUDGET_STATE, {},
                   {"day": client.budget_day, "calls": client.calls_today or 0}, run_id)


def run_stream(
    conn: psycopg.Connection,
    client: ApiClient,
    *,
    slug: str,
    source: str,
    manifest: Manifest,
    name: str,
    settings: dict[str, Any],
    run_id: int,
    full_refresh: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    now: datetime | None = None,
    prefetch: int = PREFETCH_PAGES,
) -> StreamResult:
    """Extract one stream into raw; `conn` must be in autocommit mode.

    `prefetch` pages are fetched ahead by a background thread (0: fetch in turn).
    """
    say = progress or _quiet
    stream = manifest.streams[name]
    incremental = stream.incremental
    ensure_raw_table(conn, slug, source, name, unique_key=True)
    cursors, state = load_state(conn, slug, source, name)
    if full_refresh:
        cursors = {}
        state = {k: v for k, v in state.items() if k != "parents_read"}
    changed_only = stream.partitions is not None and stream.partitions.changed_only
    # A stream read for changed parents only never sees the others: nothing to reconcile.
    reconcile = (incremental is None or full_refresh) and not changed_only
    _load_budget(conn, client, slug, source)
    seen_table = f"goalpost_seen_{name}" if reconcile else None
    if seen_table is not None:
        conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (k text PRIMARY KEY)").format(
            sql.Identifier(seen_table)))
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(seen_table)))
    loader = PageLoader(slug, source, name, stream, seen_table)
    known = set(state.get("fields", []))
    first_run = not known
    result = StreamResult(name)
    sync_start = now or datetime.now(UTC)
    retries_before = client.retries
    started = time.monotonic()

    result.warnings.extend(account_warnings(client, name))
    try:
        _read_partitions(conn, client, stream, partitions(
            conn, stream, slug, source, settings, state.get("parents_read")),
            cursors, state, known, first_run, loader, result, settings=settings, slug=slug,
            source=source, name=name, run_id=run_id, sync_start=sync_start, prefetch=prefetch,
            say=say, started=started)
    finally:
        _save_budget(conn, client, slug, source, run_id)

    if reconcile:
        result.deleted = _reconcile(conn, loader, seen_table, result, force)
    result.cursor = cursors
    result.retries = client.retries - retries_before
    return result


def _read_partitions(conn: psycopg.Connection, client: ApiClient, stream: Stream,
                     parts: list[dict[str, Any]], cursors: dict[str, Any],
                     state: dict[str, Any], known: set[str], first_run: bool,
                     loader: PageLoader, result: StreamResult, *, settings: dict[str, Any],
                     slug: str, source: str, name: str, run_id: int, sync_start: datetime,
                     prefetch: int, say: Progress, started: float) -> None:
    """Every partition's pages into raw, each page with the stream's state in one transaction."""
    incremental = stream.incremental
    for partition in parts:
        key = partition["key"]
        start: datetime | float | None = None
        if incremental is not None:
            saved = cursors.get(key)
            if saved is not None:
                start = parse_cursor(saved, incremental)
                if incremental.lookback and isinstance(start, datetime):
                    start -= timedelta(seconds=duration_seconds(incremental.lookback))
            elif incremental.type == "datetime":
                start = parse_cursor(render(incremental.start_date, {"config": settings}),
                                     incremental)
        context = {"config": settings, "partition": partition}
        fetcher = PageFetcher(client, stream, context)
        best = cursors.get(key)
        pages = fetcher.pages(start, sync_start)
        for fetched in prefetched(pages, prefetch) if prefetch else pages:
            check_deadline()
            result.warnings.extend(w for w in fetcher.warnings if w not in result.warnings)
            best = _max_cursor(best, fetched.records, incremental)
            fields = {f for record in fetched.records if isinstance(record, dict)
                      for f in record}
            new = sorted(fields - known)
            if new and not first_run:
                result.new_fields.extend(f for f in new if f not in result.new_fields)
            known |= fields
            with conn.transaction():
                inserted, updated = loader.load(conn, fetched.page, stream.records, run_id)
                if incremental is not None and best is not None and (
                        incremental.sorted or fetched.last):
                    cursors[key] = best
                if fetched.last and "mark" in partition:
                    state["parents_read"] = partition["mark"]
                state["fields"] = sorted(known)
                save_state(conn, slug, source, name, cursors, state, run_id)
                _save_budget(conn, client, slug, source, run_id)
            result.pages += 1
            result.records += len(fetched.records)
            result.inserted += inserted
            result.updated += updated
            if result.pages % 20 == 0:
                rate = result.records / max(time.monotonic() - started, 1e-6)
                say(f"{name}: {result.records:,} records, {result.pages} pages "
                    f"({rate:,.0f}/s)")


def _max_cursor(best: Any, records: list[Any], incremental: Incremental | None) -> Any:
    if incremental is None:
        return None
    parsed = parse_cursor(best, incremental) if best is not None else None
    for record in records:
        value = get_path(record, incremental.cursor_field)
        if value is None:
            continue
        candidate = parse_cursor(value, incremental)
        if parsed is None or candidate > parsed:
            best, parsed = value, candidate
    return best


def _reconcile(conn: psycopg.Connection, loader: PageLoader, seen_table: str,
               result: StreamResult, force: bool) -> int:
    """After a full read: remove the records the API no longer returns."""
    with conn.transaction():
        stored = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(loader.table)).fetchone()[0]
        if result.records == 0 and stored and not force:
            result.warnings.append(
                f"{result.stream}: the API returned no records; the {stored:,} stored ones are "
                "kept (an outage looks like this); run with --force to empty the table")
            return 0
        deleted = conn.execute(sql.SQL(
            "DELETE FROM {} t WHERE NOT EXISTS (SELECT 1 FROM {} s WHERE s.k = t._key)").format(
            loader.table, sql.Identifier(seen_table))).rowcount
    return deleted
