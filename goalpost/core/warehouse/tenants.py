"""Per-client isolation in Postgres: the four layer schemas and a read-only login role.

The role `<slug>_reader` may read `<slug>_marts` and `<slug>_insights` and nothing else; it is
what Metabase connects with. Its password is derived from the installation's secret key, so it
is never stored and can always be recomputed.

What every role may do by default is narrowed where it would let one tenant reach another:
advisory locks (PUBLIC may take any key, so a reader could hold another client's run lock) are
revoked from PUBLIC. And what Postgres lets any role do to itself, which no privilege can take
away (change its own password, set its own defaults: `ALTER ROLE <self> SET
statement_timeout = 1`, and Metabase's SQL editor runs tenants' SQL as that role) is checked
and put back by `repair_reader`: at every run and every scheduler heartbeat.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

import psycopg
from psycopg import sql

from goalpost.core import masking
from goalpost.core.errors import WarehouseError
from goalpost.core.identifiers import LAYERS, check_slug, reader_role, schema_name
from goalpost.core.paths import state_dir

READABLE_LAYERS = ("marts", "insights")


def secret_key() -> bytes:
    """GOALPOST_SECRET_KEY, or a key generated once into the state folder."""
    env = os.environ.get("GOALPOST_SECRET_KEY")
    if env:
        return env.encode()
    path = state_dir() / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    key = path.read_text().strip()
    masking.register(key)
    return key.encode()


def reader_password(slug: str) -> str:
    password = hmac.new(secret_key(), f"reader:{check_slug(slug)}".encode(),
                        hashlib.sha256).hexdigest()
    masking.register(password)
    return password


def _is_superuser(conn: psycopg.Connection) -> bool:
    return bool(conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                             ).fetchone()[0])


def open_lock_functions(conn: psycopg.Connection) -> list[str]:
    """The advisory-lock functions every role may still call (PUBLIC has EXECUTE)."""
    return [row[0] for row in conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = "
        "'pg_catalog'::regnamespace AND p.proname LIKE 'pg\\_%%advisory%%' AND "
        "has_function_privilege('public', p.oid, 'EXECUTE') ORDER BY 1")]


def close_lock_functions(conn: psycopg.Connection) -> list[str]:
    """Revoke the advisory-lock functions from PUBLIC in this database, so that only the
    owner's sessions take the locks runs, alert evaluations and migrations hold; returns
    what is still open (the functions belong to the superuser: without one they stay
    open, and `goalpost doctor` says so)."""
    still_open = open_lock_functions(conn)
    if still_open and _is_superuser(conn):
        for function in still_open:
            conn.execute(sql.SQL("REVOKE EXECUTE ON FUNCTION {} FROM PUBLIC").format(
                sql.SQL(function)))
        still_open = open_lock_functions(conn)
    return still_open


def _scram_matches(verifier: str, password: str) -> bool:
    """Whether `password` is the one a SCRAM-SHA-256 verifier of pg_authid was made from
    (RFC 5802: StoredKey = H(HMAC(SaltedPassword, "Client Key")))."""
    try:
        method, rest = verifier.split("$", 1)
        params, keys = rest.split("$", 1)
        iterations, salt = params.split(":", 1)
        stored_key, server_key = keys.split(":", 1)
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt),
                                     int(iterations))
    except ValueError:
        return False
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return method == "SCRAM-SHA-256" and hmac.compare_digest(
        base64.b64encode(hashlib.sha256(client_key).digest()).decode(), stored_key) and \
        hmac.compare_digest(base64.b64encode(server).decode(), server_key)


def repair_reader(conn: psycopg.Connection, slug: str) -> list[str]:
    """Put back what the reader role may have changed on itself (its password, its own
    session defaults); returns what was changed, [] when it was as it should be."""
    role = reader_role(slug)
    found = conn.execute("SELECT oid FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    if found is None:
        return []
    repaired = []
    settings = conn.execute(
        "SELECT setconfig FROM pg_db_role_setting WHERE setrole = %s AND setdatabase IN "
        "(0, (SELECT oid FROM pg_database WHERE datname = current_database()))",
        (found[0],)).fetchall()
    if any(config for (config,) in settings):
        conn.execute(sql.SQL("ALTER ROLE {} RESET ALL").format(sql.Identifier(role)))
        conn.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} RESET ALL").format(
            sql.Identifier(role), sql.Identifier(conn.info.dbname)))
        repaired.append("its own settings ("
                        + ", ".join(c for (config,) in settings for c in config or []) + ")")
    if _is_superuser(conn):
        (verifier,) = conn.execute("SELECT rolpassword FROM pg_authid WHERE oid = %s",
                                   (found[0],)).fetchone()
        if verifier is None or not _scram_matches(verifier, reader_password(slug)):
            _set_password(conn, role, slug)
            repaired.append("its password")
    else:  # pg_authid is the superuser's: set it again rather than tell
        _set_password(conn, role, slug)
    return repaired


def _set_password(conn: psycopg.Connection, role: str, slug: str) -> None:
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        sql.Identifier(role), sql.Literal(reader_password(slug))))


def physical_schemas(conn: psycopg.Connection, slug: str) -> list[str]:
    """Schemas SQLMesh created for this client (versioned tables and its state)."""
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s) ORDER BY nspname",
        ([f"sqlmesh__{schema_name(slug, layer)}" for layer in LAYERS] + [state_schema(slug)],),
    ).fetchall()
    return [row[0] for row in rows]


def state_schema(slug: str) -> str:
    """Where SQLMesh keeps this client's state: one state per client keeps contexts small."""
    return f"sqlmesh_state__{check_slug(slug)}"


def provision(conn: psycopg.Connection, slug: str) -> None:
    """Create (or repair) the client's schemas, reader role and grants. Idempotent."""
    role = sql.Identifier(reader_role(slug))
    with conn.transaction():
        for layer in LAYERS:
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(schema_name(slug, layer))
                )
            )
        exists = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (reader_role(slug),)
        ).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                role, sql.Literal(reader_password(slug))
            )
        )
        repair_reader(conn, slug)
        close_lock_functions(conn)
        for layer in LAYERS:
            schema = sql.Identifier(schema_name(slug, layer))
            if layer in READABLE_LAYERS:
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role))
                conn.execute(
                    sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(schema, role)
                )
                conn.execute(
                    sql.SQL(
                        "ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON TABLES TO {}"
                    ).format(schema, role)
                )
            else:
                conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(schema, role))


def refresh_grants(conn: psycopg.Connection, slug: str) -> None:
    """Grant the reader SELECT on everything now in its readable schemas (after a build)."""
    role = sql.Identifier(reader_role(slug))
    with conn.transaction():
        for layer in READABLE_LAYERS:
            conn.execute(
                sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                    sql.Identifier(schema_name(slug, layer)), role
                )
            )


def _grants_elsewhere(conn: psycopg.Connection, role: str) -> list[str]:
    """The other databases of the server where `role` holds privileges or objects (a backup
    restored `--into` a copy grants the reader there too): roles belong to the server."""
    return [row[0] for row in conn.execute(
        "SELECT DISTINCT d.datname FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid "
        "JOIN pg_roles r ON r.oid = s.refobjid WHERE s.refclassid = 'pg_authid'::regclass "
        "AND r.rolname = %s AND d.datname <> current_database() ORDER BY 1", (role,))]


def _drop_owned_in(conn: psycopg.Connection, database: str, role: str) -> None:
    from psycopg.conninfo import make_conninfo

    target = make_conninfo(conn.info.dsn, dbname=database, password=conn.info.password)
    with psycopg.connect(target, autocommit=True) as other:
        other.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))


def deprovision(conn: psycopg.Connection, slug: str) -> list[str]:
    """Drop every schema of the client (layers, SQLMesh physical and state) and its role,
    with its load bookkeeping (cursors, loaded files, quarantine): its raw data is gone, so a
    client created again under this slug starts from scratch. Run history is kept. The role's
    grants in other databases of the server (copies restored there) are revoked too, for the
    role to go; returns those databases."""
    role = reader_role(slug)
    elsewhere = _grants_elsewhere(conn, role)
    for database in elsewhere:
        try:
            _drop_owned_in(conn, database, role)
        except psycopg.Error as exc:
            raise WarehouseError(
                f"the reader role {role} also has grants in the database {database}, which "
                f"could not be revoked there: {str(exc).strip()}",
                hint=f"drop that database if it is a copy, or run `DROP OWNED BY {role}` "
                     f"in it, then remove the client again") from None
    with conn.transaction():
        for table in ("extract_state", "source_files", "quarantine"):
            conn.execute(sql.SQL("DELETE FROM goalpost.{} WHERE client = %s").format(
                sql.Identifier(table)), (slug,))
        for schema in [schema_name(slug, layer) for layer in LAYERS] + physical_schemas(conn, slug):
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    return elsewhere
