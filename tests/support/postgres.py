"""A throw-away PostgreSQL cluster on loopback for the test session (no Docker, no service).

The same class keeps a cluster in a chosen directory for `make deploy-local` (deploy/local.py):
one way to start PostgreSQL as its own user, for the tests and the local deployment alike.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg2
from psycopg2 import sql

DEBIAN_POSTGRES_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"
# The account PostgreSQL runs as when the tests run as root (Debian's package creates it).
SYSTEM_USER = "postgres"

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found in "
    "/usr/lib/postgresql/<version>/bin or on PATH. Install them, e.g. "
    "`sudo apt-get install postgresql` on Debian/Ubuntu (`.ci/run` does this for you), "
    "then run the tests again."
)


class PostgresNotFoundError(RuntimeError):
    """The PostgreSQL server binaries needed by the tests are not installed."""


class PostgresStartError(RuntimeError):
    """The temporary PostgreSQL cluster could not be created or started."""


def find_postgres_bin_dir() -> Path:
    """Return the directory holding `initdb` and `pg_ctl`, preferring Debian's newest version."""
    candidates: list[Path] = []
    if DEBIAN_POSTGRES_ROOT.is_dir():
        # Debian installs each major version side by side and keeps initdb off PATH.
        versions = [
            p for p in DEBIAN_POSTGRES_ROOT.iterdir() if re.fullmatch(r"\d+(\.\d+)?", p.name)
        ]
        versions.sort(key=lambda p: tuple(int(n) for n in p.name.split(".")), reverse=True)
        candidates += [v / "bin" for v in versions]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bin_dir in candidates:
        if (bin_dir / "initdb").is_file() and (bin_dir / "pg_ctl").is_file():
            return bin_dir
    raise PostgresNotFoundError(INSTALL_HINT)


def _free_loopback_port() -> int:
    """Ask the kernel for a port nobody listens on right now (a race is handled by retrying)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TemporaryPostgres:
    """Context manager: a private PostgreSQL cluster in a temporary directory, deleted on exit.

    Trust authentication on 127.0.0.1 only, superuser `postgres`, durability switched off for speed.
    With `base_dir`, the cluster lives in that directory instead and is kept on exit (`start()`
    reuses it, `stop()` stops it), listening on `port` (0: a free one).
    """

    def __init__(
        self, start_timeout: float = 60.0, *, base_dir: Path | None = None, port: int = 0
    ) -> None:
        self.start_timeout = start_timeout
        self.bin_dir: Path | None = None
        self.base_dir: Path | None = base_dir
        self.port: int = port
        self._keep = base_dir is not None
        self._run_as_system_user = os.geteuid() == 0

    # -- paths ---------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        assert self.base_dir is not None, "cluster not started"
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.base_dir is not None, "cluster not started"
        return self.base_dir / "socket"

    @property
    def log_file(self) -> Path:
        assert self.base_dir is not None, "cluster not started"
        return self.base_dir / "postgres.log"

    @property
    def pid(self) -> int | None:
        """Process id of the running postmaster, from its pid file (None when not running)."""
        if self.base_dir is None:
            return None
        pid_file = self.data_dir / "postmaster.pid"
        try:
            first_line = pid_file.read_text(encoding="utf-8").splitlines()[0]
            return int(first_line)
        except (FileNotFoundError, IndexError, ValueError):
            return None

    # -- public API ------------------------------------------------------------------------------
    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL of `dbname` (psycopg2 named: SQLAlchemy 2.1 would pick psycopg 3)."""
        return f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres") -> psycopg2.extensions.connection:
        """A raw psycopg2 connection to `dbname` (caller closes it)."""
        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=dbname, connect_timeout=5
        )

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        conn = self.connect()
        try:
            # CREATE DATABASE cannot run inside a transaction block.
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()
        return self.url(name)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> TemporaryPostgres:
        """Create the cluster unless its directory holds one, and start it."""
        self.bin_dir = find_postgres_bin_dir()
        if self._run_as_system_user and shutil.which("runuser") is None:
            raise PostgresStartError(
                "running as root needs `runuser` (util-linux) to drop to the postgres user"
            )
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="pytest-postgres-"))
        else:
            self.base_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._prepare_base_dir()
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb()
            self._start()
        except BaseException:
            self._stop()
            self._remove_base_dir()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown, then SIGKILL if it hangs); the directory stays."""
        self.bin_dir = self.bin_dir or find_postgres_bin_dir()
        self._stop()

    def __enter__(self) -> TemporaryPostgres:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._stop()
        finally:
            self._remove_base_dir()

    # -- internals -----------------------------------------------------------------------------
    def _command(self, *args: str | Path) -> list[str]:
        """Prefix a command to run as the postgres user when we are root (postgres refuses root)."""
        argv = [str(a) for a in args]
        if self._run_as_system_user:
            return ["runuser", "-u", SYSTEM_USER, "--", *argv]
        return argv

    def _run(self, *args: str | Path, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        assert self.base_dir is not None
        # cwd inside our directory: the postgres user may not be allowed into the caller's cwd.
        return subprocess.run(
            self._command(*args),
            cwd=self.base_dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _prepare_base_dir(self) -> None:
        assert self.base_dir is not None
        self.socket_dir.mkdir(exist_ok=True)
        if not self._run_as_system_user:
            return
        try:
            pw = _system_user_ids(SYSTEM_USER)
        except KeyError as e:
            raise PostgresStartError(
                f"running as root, but there is no `{SYSTEM_USER}` system user to run PostgreSQL "
                "as; installing Debian's `postgresql` package creates it"
            ) from e
        for path in (self.base_dir, self.socket_dir):
            os.chown(path, *pw)
        probe = subprocess.run(
            self._command("test", "-w", self.base_dir), capture_output=True, check=False
        )
        if probe.returncode != 0:
            raise PostgresStartError(
                f"the `{SYSTEM_USER}` user cannot reach {self.base_dir}; point TMPDIR at a "
                "directory every user can traverse (e.g. /tmp)"
            )

    def _initdb(self) -> None:
        assert self.bin_dir is not None
        result = self._run(
            self.bin_dir / "initdb",
            "--pgdata",
            self.data_dir,
            "--username",
            SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
        if result.returncode != 0:
            raise PostgresStartError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            # A throw-away cluster: losing it on a crash is fine, waiting for disks is not.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        conf = "".join(f"{key} = {value}\n" for key, value in settings.items())
        # Appending as root keeps the file's owner; the server only needs to read it.
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as f:
            f.write("\n# pytest TemporaryPostgres\n" + conf)

    def _start(self) -> None:
        assert self.bin_dir is not None
        last_error = ""
        chosen = self.port
        # The free port can be taken between probing and binding: try a few.
        for _attempt in range(1 if chosen else 5):
            self.port = chosen or _free_loopback_port()
            result = self._run(
                self.bin_dir / "pg_ctl",
                "start",
                "--pgdata",
                self.data_dir,
                "--log",
                self.log_file,
                "--wait",
                "--timeout",
                str(int(self.start_timeout)),
                "-o",
                f"-p {self.port}",
                timeout=self.start_timeout + 10,
            )
            if result.returncode == 0:
                self._wait_until_accepting()
                return
            last_error = f"{result.stdout}\n{result.stderr}\n{self._log_tail()}"
            if "Address already in use" not in last_error:
                break
        raise PostgresStartError(f"pg_ctl start failed:\n{last_error}")

    def restart(self) -> None:
        """Stop the server (fast: open sessions are cut) and start it again on the same port, as
        a database failover or a host restart does to the clients."""
        assert self.bin_dir is not None
        result = self._run(
            self.bin_dir / "pg_ctl",
            "restart",
            "--pgdata",
            self.data_dir,
            "--log",
            self.log_file,
            "-m",
            "fast",
            "--wait",
            "-o",
            f"-p {self.port}",
            timeout=self.start_timeout + 40,
        )
        if result.returncode != 0:
            raise PostgresStartError(f"pg_ctl restart failed:\n{result.stdout}\n{result.stderr}")
        self._wait_until_accepting()

    def _wait_until_accepting(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                self.connect().close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise PostgresStartError(
                        f"PostgreSQL did not accept connections on port {self.port}:\n"
                        f"{self._log_tail()}"
                    ) from None
                time.sleep(0.1)

    def _stop(self) -> None:
        if self.bin_dir is None or self.base_dir is None or not self.data_dir.exists():
            return
        pid = self.pid
        if pid is None:
            return
        result = self._run(
            self.bin_dir / "pg_ctl",
            "stop",
            "--pgdata",
            self.data_dir,
            "-m",
            "fast",
            "--wait",
            timeout=40,
        )
        if result.returncode == 0 and not process_alive(pid):
            return
        # A fast shutdown that hangs must not leave a server behind the test session; the backends
        # notice their postmaster's death and exit on their own.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _remove_base_dir(self) -> None:
        if self.base_dir is not None and not self._keep:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(encoding="utf-8").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no server log)"


def _system_user_ids(name: str) -> tuple[int, int]:
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def process_alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie left for someone else to reap is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed postmaster is re-parented; where nobody reaps it, it lingers as a harmless zombie.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
