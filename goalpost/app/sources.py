"""Adding, listing, testing and removing a client's sources.

The registry file is the truth: these functions edit `clients/<slug>.yaml` (keeping its
comments) and mirror the change into the warehouse.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from goalpost.app import clients
from goalpost.core import registry
from goalpost.core.canonical import ENTITIES
from goalpost.core.errors import ConfigError, NotFoundError
from goalpost.core.identifiers import check_name, raw_table, schema_name
from goalpost.core.paths import project_root
from goalpost.core.registry.models import ApiSource, Client, FileStream
from goalpost.pipelines.stream_check import StreamCheck


def validate_stream(values: dict[str, Any]) -> FileStream:
    """A FileStream from CLI values, with ConfigError naming the bad option."""
    try:
        return FileStream.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'stream'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid stream settings: {problems}") from None


def probe_new_stream(slug: str, source: str, values: dict[str, Any], client: Client) -> StreamCheck:
    """Read a stream's files before it is added, to detect its dialect and columns."""
    from goalpost.pipelines.files.probe import probe_stream

    check_name(source, "source name")
    return probe_stream(source, validate_stream(values), project_root(), country=client.country)


def add_file_stream(slug: str, source: str, stream: dict[str, Any]) -> tuple[FileStream, bool]:
    """Add a file stream to a source (creating the source); returns (stream, changed).

    Adding the same stream again with the same settings changes nothing; a different stream
    under an existing name is refused rather than silently replaced.
    """
    check_name(source, "source name")
    document = registry.load_document(slug)
    candidate = validate_stream(stream)
    sources = document.setdefault("sources", CommentedSeq())
    entry = next((s for s in sources if s.get("name") == source), None)
    if entry is None:
        entry = CommentedMap(name=source, connector="files", streams=CommentedSeq())
        sources.append(entry)
    elif entry.get("connector") != "files":
        raise ConfigError(f"source {source!r} of {slug} uses connector {entry.get('connector')}, "
                          "not files", hint="choose another source name")
    for existing in entry["streams"]:
        if existing.get("name") == candidate.name:
            if FileStream.model_validate(dict(existing)) == candidate:
                return candidate, False
            raise ConfigError(
                f"stream {source}.{candidate.name} already exists in {slug} with other settings",
                hint="edit clients/{slug}.yaml, or remove it with `goalpost source remove`",
            )
    entry["streams"].append(CommentedMap(candidate.model_dump(exclude_defaults=True)))
    registry.save_document(slug, document)
    return candidate, True


def remove_source(conn: psycopg.Connection, slug: str, source: str, *, drop_data: bool) -> None:
    """Take a source out of the registry; with drop_data also its raw tables and state."""
    document = registry.load_document(slug)
    sources = document.get("sources") or []
    entry = next((s for s in sources if s.get("name") == source), None)
    if entry is None:
        raise NotFoundError(f"client {slug} has no source {source!r}",
                            hint=f"see `goalpost source list {slug}`")
    if entry.get("connector", "files") == "files":
        streams = [s["name"] for s in entry.get("streams", [])]
    else:
        streams = ApiSource.model_validate(dict(entry)).stream_names()
    sources.remove(entry)
    registry.save_document(slug, document)
    if drop_data:
        with conn.transaction():
            for stream in streams:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}.{}").format(
                    sql.Identifier(schema_name(slug, "raw")),
                    sql.Identifier(raw_table(source, stream))))
            for table in ("quarantine", "source_files", "extract_state"):
                conn.execute(f"DELETE FROM goalpost.{table} WHERE client = %s AND source = %s",
                             (slug, source))
    clients.sync(conn, slug, registry.load_client(slug))


def list_streams(conn: psycopg.Connection, slug: str, client: Client) -> list[dict[str, Any]]:
    """Every stream of the client with what has been loaded from it."""
    loaded = {
        (row[0], row[1]): row[2:]
        for row in conn.execute(
            """SELECT source, stream, count(*), coalesce(sum(rows_loaded), 0),
                      coalesce(sum(rows_quarantined), 0), max(loaded_at)
               FROM goalpost.source_files WHERE client = %s GROUP BY source, stream""",
            (slug,),
        )
    }
    rows = []
    for source in client.sources:
        if isinstance(source, ApiSource):
            rows.extend(_api_streams(conn, slug, source))
            continue
        for stream in source.streams:
            files, rows_loaded, quarantined, last = loaded.get(
                (source.name, stream.name), (0, 0, 0, None))
            rows.append({
                "source": source.name, "stream": stream.name, "connector": source.connector,
                "entity": stream.entity, "path": stream.path, "files_loaded": files,
                "rows_loaded": int(rows_loaded), "rows_quarantined": int(quarantined),
                "last_loaded_at": last,
            })
    return rows


def _api_streams(conn: psycopg.Connection, slug: str, source: ApiSource) -> list[dict[str, Any]]:
    state = {row[0]: row[1:] for row in conn.execute(
        "SELECT stream, cursor, updated_at FROM goalpost.extract_state WHERE client = %s AND "
        "source = %s", (slug, source.name))}
    manifest = source.load_manifest()
    rows = []
    for name in source.stream_names():
        table = sql.SQL("{}.{}").format(sql.Identifier(schema_name(slug, "raw")),
                                        sql.Identifier(raw_table(source.name, name)))
        exists = conn.execute("SELECT to_regclass(%s)", (table.as_string(conn),)).fetchone()[0]
        count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()[0] \
            if exists else 0
        cursor, updated = state.get(name, (None, None))
        rows.append({"source": source.name, "stream": name, "connector": source.connector,
                     "entity": manifest.streams[name].entity, "path": None, "files_loaded": None,
                     "rows_loaded": count, "rows_quarantined": 0, "last_loaded_at": updated,
                     "cursor": cursor})
    return rows


def source_of(client: Client, slug: str, name: str):  # noqa: ANN201 - Source
    found = client.source(name)
    if found is None:
        known = ", ".join(s.name for s in client.sources) or "none"
        raise NotFoundError(f"client {slug} has no source {name!r} (sources: {known})",
                            hint=f"add one with `goalpost source add {slug} {name} ...`")
    return found


# Column names that exports commonly give each canonical field (compared folded: case,
# spaces and underscores aside), to suggest a mapping; a suggestion is never applied unasked.
LIKELY_COLUMNS: dict[str, tuple[str, ...]] = {
    "order_id": ("invoice", "invoiceno", "receipt", "receiptno", "ticket", "order", "orderno",
                 "ordernumber", "transaction", "transactionid", "sale", "saleid"),
    "ordered_at": ("invoicedate", "date", "datetime", "timestamp", "orderdate", "soldat",
                   "saledate", "created", "createdat", "time"),
    "location_id": ("shop", "shopid", "store", "storeid", "location", "outlet", "branch",
                    "site", "warehouse"),
    "product_id": ("stockcode", "sku", "product", "productcode", "item", "itemcode", "article",
                   "code", "ean", "barcode"),
    "quantity": ("qty", "quantity", "units", "count"),
    "unit_price": ("price", "unitprice", "priceeach", "rate"),
    "line_total": ("total", "amount", "linetotal", "net", "value", "revenue", "sales"),
    "customer_id": ("customer", "customerid", "client", "clientid", "member", "account"),
    "name": ("name", "label", "title", "description"),
    "counted_on": ("date", "countdate", "countedat", "day"),
    "on_hand": ("stock", "onhand", "qty", "quantity", "level", "available"),
}


def fields_feeding_nothing(client: Client, entity: str, mapping: dict[str, str]) -> list[str]:
    """The mapped fields of `entity` that no mart reads and no dimension of the client uses:
    they would stay in staging, which the reader role and Metabase cannot see."""
    used = {d.field for d in client.dimensions.values()
            if (d.entity == "orders" and entity == "order_lines") or d.entity == entity}
    idle = {f.name for f in ENTITIES[entity] if not f.in_marts} - used
    return [name for name in mapping if name in idle]


def missing_required(entity: str, mapping: dict[str, str], columns: list[str]) -> list[str]:
    """Required canonical fields that neither the mapping (a column or an `=constant`), a
    column of their name (compared as the loader does: case and spacing aside), nor a
    derivation from present fields provides."""
    from goalpost.pipelines.files.dialect import missing_fields, resolve_columns

    resolved, _ = resolve_columns(entity, columns, mapping)
    return [f.name for f in missing_fields(entity, resolved)]


def likely_column(field_name: str, columns: list[str], taken: set[str]) -> str | None:
    """A column of the file that exports commonly use for the field, if one is there."""
    from goalpost.pipelines.files.dialect import fold

    by_fold = {fold(c): c for c in columns if c not in taken}
    return next((by_fold[name] for name in LIKELY_COLUMNS.get(field_name, ())
                 if name in by_fold), None)


def missing_fields_problem(entity: str, missing: list[str], mapping: dict[str, str],
                           columns: list[str]) -> ConfigError:
    """One error listing every required field the files lack, each with what the loader
    knows (a column that looks right, a total computed from the price, a constant), and a
    command line to try."""
    taken = set(mapping.values())
    lines, maps = [], []
    for name in missing:
        guess = likely_column(name, columns, taken)
        if guess:
            taken.add(guess)
        line = f"  {name}: --map {name}=<column>" + (f" (perhaps {guess!r})" if guess else "")
        if name == "line_total":
            price = likely_column("unit_price", columns, taken)
            line += (", or --map unit_price=<column>" + (f" (perhaps {price!r})" if price
                                                         else "")
                     + ": line_total is then computed as quantity x unit_price")
            if guess is None and price:
                guess, name = price, "unit_price"
        if name == "location_id":
            line += (", or a constant for an export with one shop or channel: "
                     "--map location_id==online")
            guess = guess or "=online"
        lines.append(line)
        if guess:
            maps.append(f"--map '{name}={guess}'")
    fields_ = ", ".join(missing)
    return ConfigError(
        f"the files lack {len(missing)} required field(s) of {entity}: {fields_} "
        f"(file columns: {', '.join(columns)})\n" + "\n".join(lines),
        hint=("add the mappings, e.g. " + " ".join(maps)) if maps else
        "add --map FIELD=COLUMN for each",
    )


def test_streams(slug: str, client: Client, source_name: str | None) -> list[StreamCheck]:
    """Read each stream's files as a load would, but write nothing."""
    from goalpost.pipelines.files.probe import probe_stream

    sources = [source_of(client, slug, source_name)] if source_name else client.sources
    checks = []
    for source in sources:
        if isinstance(source, ApiSource):

            checks.extend(_test_api(slug, source))
            continue
        for stream in source.streams:
            checks.append(probe_stream(source.name, stream, project_root(),
                                       country=client.country))
    return checks


def _test_api(slug: str, source: ApiSource) -> list[StreamCheck]:
    """A REST source's check, with the calls it spent today when the warehouse answers (a
    vendor with a daily API budget)."""
    from goalpost.core.errors import WarehouseError
    from goalpost.core.warehouse import ready
    from goalpost.pipelines.connectors.operations import test_api_source

    if source.load_manifest().budget is None:
        return test_api_source(slug, source)
    try:
        conn = ready()
    except WarehouseError:
        return test_api_source(slug, source)
    with conn:
        return test_api_source(slug, source, conn)
