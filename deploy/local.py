"""`make deploy-local` / `make deploy-down`: the production topology on one machine, no containers.

PostgreSQL (Dagster's instance and Pay, separate databases), Redis (the Celery broker), the Assignar
simulator, a gRPC code server, the webserver, the daemon and two dagster-celery workers, each its
own process in its own session, as an unprivileged user, logging to a file, with a pid file. The
commands are the image's (Dockerfile, docker-compose.yaml); the Python environment is built like
the image's (`uv sync --frozen --no-dev --no-editable`), in the state directory.

    python -m deploy.local up | down | status

Settings come from the environment (DAGSTER_PORT, CODE_SERVER_PORT, SIMULATOR_PORT, POSTGRES_PORT,
REDIS_PORT (0: any free port), DEPLOY_DIR, DEPLOY_USER, SIMULATOR_NOW, SIMULATOR_SCALE) and are kept
in DEPLOY_DIR/settings.json, so a restart reuses them.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
#: Seconds a service gets to exit after SIGTERM before its whole process group is killed.
#: `dagster code-server start` ignores SIGTERM for longer than 15 s, so it always ends this way.
STOP_TIMEOUT = 10.0
LOCATION = "assignar_pipeline"
DEMO_KEY = "demo"
DEMO_OWNER = "priya.raman@example.com"
DEMO_CLIENT_ID = "demo-client"
# The simulator's demo credentials (as in `make run`), not a real secret.
DEMO_SECRET = "demo-secret-change-me"  # noqa: S105
WORKERS = ("worker1", "worker2")
#: Dagster stores a ranged run's per-date events in batches of this many (README, Settings).
EVENT_BATCH_SIZE = "1000"


class DeployError(RuntimeError):
    """The topology cannot start; the message says what to fix."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    return _free_port() if value == "0" else int(value)


@dataclass
class Settings:
    """Where everything lives and listens; written to DEPLOY_DIR/settings.json by `up`."""

    state_dir: str
    user: str
    webserver_port: int
    code_server_port: int
    simulator_port: int
    postgres_port: int
    redis_port: int
    simulator_now: str
    dagster_pg_password: str = field(repr=False)
    pay_pg_password: str = field(repr=False)
    sensor_interval: str = ""
    simulator_scale: str = "1"
    backfill_days_per_run: str = ""

    @classmethod
    def from_env(cls) -> Settings:
        state = Path(os.environ.get("DEPLOY_DIR") or ROOT / ".deploy").resolve()
        saved = state / "settings.json"
        if saved.exists():
            # Restarting keeps ports and passwords (the databases already hold the passwords).
            return cls(**json.loads(saved.read_text()))
        return cls(
            state_dir=str(state),
            user=os.environ.get("DEPLOY_USER") or ("dagster" if os.geteuid() == 0 else _me()),
            webserver_port=_port("DAGSTER_PORT", 3000),
            code_server_port=_port("CODE_SERVER_PORT", 4266),
            simulator_port=_port("SIMULATOR_PORT", 8700),
            postgres_port=_port("POSTGRES_PORT", 5433),
            redis_port=_port("REDIS_PORT", 6380),
            simulator_now=os.environ.get("SIMULATOR_NOW")
            or datetime.now(UTC).strftime("%Y-%m-%dT%H:00:00Z"),
            dagster_pg_password=secrets.token_urlsafe(18),
            pay_pg_password=secrets.token_urlsafe(18),
            sensor_interval=os.environ.get("PIPELINE_SENSOR_INTERVAL", ""),
            simulator_scale=os.environ.get("SIMULATOR_SCALE", "1"),
            backfill_days_per_run=os.environ.get("BACKFILL_DAYS_PER_RUN", ""),
        )

    # -- paths -----------------------------------------------------------------------------------
    @property
    def state(self) -> Path:
        return Path(self.state_dir)

    @property
    def venv(self) -> Path:
        return self.state / "venv"

    @property
    def dagster_home(self) -> Path:
        return self.state / "dagster_home"

    @property
    def etc(self) -> Path:
        return self.state / "etc"

    def log(self, name: str) -> Path:
        return self.state / "logs" / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        return self.state / "run" / f"{name}.pid"

    @property
    def webserver_url(self) -> str:
        return f"http://127.0.0.1:{self.webserver_port}"

    def pay_url(self) -> str:
        return (
            f"postgresql+psycopg2://pay:{self.pay_pg_password}@127.0.0.1:{self.postgres_port}/pay"
        )

    def env(self) -> dict[str, str]:
        """What every service sees (the same names as in docker-compose.yaml and Helm values)."""
        simulator = f"http://127.0.0.1:{self.simulator_port}"
        redis = f"redis://127.0.0.1:{self.redis_port}"
        env = {
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.state / "home"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "DAGSTER_HOME": str(self.dagster_home),
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.postgres_port),
            "DAGSTER_PG_DB": "dagster",
            "DAGSTER_PG_USERNAME": "dagster",
            "DAGSTER_PG_PASSWORD": self.dagster_pg_password,
            "DAGSTER_CODE_SERVER_HOST": "127.0.0.1",
            "DAGSTER_CODE_SERVER_PORT": str(self.code_server_port),
            "DAGSTER_CELERY_BROKER_URL": f"{redis}/0",
            "DAGSTER_CELERY_BACKEND_URL": f"{redis}/1",
            "PIPELINE_EXECUTOR": "celery",
            "PAY_DATABASE_URL": self.pay_url(),
            "ASSIGNAR_API_URL": f"{simulator}/v2",
            "ASSIGNAR_TOKEN_URL": f"{simulator}/oauth2/token",
            "ASSIGNAR_CLIENT_ID": DEMO_CLIENT_ID,
            "ASSIGNAR_CLIENT_SECRET": DEMO_SECRET,
            "DAGSTER_URL": self.webserver_url,
            "DAGSTER_GRAPHQL_URL": f"{self.webserver_url}/graphql",
            "DAGSTER_EVENT_BATCH_SIZE": EVENT_BATCH_SIZE,
        }
        if self.sensor_interval:
            env["PIPELINE_SENSOR_INTERVAL"] = self.sensor_interval
        if self.backfill_days_per_run:
            env["BACKFILL_DAYS_PER_RUN"] = self.backfill_days_per_run
        return env


def _me() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


# -- the services ---------------------------------------------------------------------------------


def commands(s: Settings) -> dict[str, list[str]]:
    """Each long-running service's command line, in start order (the image runs the same)."""
    workspace, celery_yaml = str(s.etc / "workspace.yaml"), str(s.etc / "celery.yaml")
    cmds = {
        "redis": [
            "redis-server", "--bind", "127.0.0.1", "--port", str(s.redis_port),
            "--save", "", "--appendonly", "no", "--dir", str(s.state / "redis"),
        ],
        "simulator": [
            "assignar-pipeline", "simulator", "serve", "--host", "127.0.0.1",
            "--port", str(s.simulator_port), "--now", s.simulator_now,
            "--scale", s.simulator_scale,
        ],
        "code-server": [
            "dagster", "code-server", "start", "-h", "127.0.0.1", "-p", str(s.code_server_port),
            "-m", "assignar_pipeline.definitions", "--location-name", LOCATION,
        ],
        "webserver": [
            "dagster-webserver", "-h", "127.0.0.1", "-p", str(s.webserver_port), "-w", workspace,
        ],
        "daemon": ["dagster-daemon", "run", "-w", workspace],
    }  # fmt: skip
    for worker in WORKERS:
        cmds[worker] = [
            "dagster-celery", "worker", "start", "-A", "dagster_celery.app", "-y", celery_yaml,
            "-n", worker, "--", "--concurrency=1",
        ]  # fmt: skip
    return cmds


def _service_ids(s: Settings) -> tuple[int, int] | None:
    """(uid, gid) to drop to, or None when we already are that user."""
    entry = pwd.getpwnam(s.user)
    if entry.pw_uid == os.geteuid():
        return None
    return entry.pw_uid, entry.pw_gid


def _ensure_redis() -> None:
    """Install Debian's redis-server when it is missing and we may (root with apt-get)."""
    if shutil.which("redis-server"):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise DeployError(
            "redis-server not found: install it (Debian: apt-get install redis-server)."
        )
    say("Installing redis-server (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "redis-server"],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def _ensure_user(s: Settings) -> None:
    if os.geteuid() != 0:
        if s.user != _me():
            raise DeployError(f"DEPLOY_USER={s.user}: only root can run services as another user.")
        return
    if s.user == "root":
        raise DeployError("DEPLOY_USER=root: the services run as an unprivileged user.")
    try:
        pwd.getpwnam(s.user)
    except KeyError:
        say(f"Creating the system user '{s.user}' for the services")
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", s.user],
            check=True,
        )  # fmt: skip


def _python_for(s: Settings) -> str:
    """An interpreter the service user may run (uv's or pyenv's may sit in root's home)."""
    candidates = [os.environ.get("DEPLOY_PYTHON"), sys.executable, "/usr/bin/python3"]
    ids = _service_ids(s)
    for candidate in filter(None, candidates):
        real = os.path.realpath(candidate)
        probe = [real, "-c", "import sys; assert sys.version_info[:2] in ((3, 11), (3, 12))"]
        if ids and shutil.which("runuser"):
            probe = ["runuser", "-u", s.user, "--", *probe]
        if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
            return real
    raise DeployError(
        f"No Python 3.11 or 3.12 that the user '{s.user}' may run: install Debian's python3 "
        "(apt-get install python3) or point DEPLOY_PYTHON at one."
    )


def _build_venv(s: Settings) -> None:
    """The service environment, built as the image builds it: locked, no dev group, not editable
    (the services never read the checkout)."""
    say(f"Installing the locked dependencies into {s.venv} (as the image does)")
    uv = os.environ.get("UV") or str(ROOT / ".ci" / "uv")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(s.venv)}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [uv, "sync", "--frozen", "--no-dev", "--no-editable", "--quiet", "--python",
         _python_for(s)],
        cwd=ROOT, env=env, check=True,
    )  # fmt: skip


def _prepare_state(s: Settings) -> None:
    for sub in ("logs", "run", "etc", "redis", "home", "dagster_home"):
        (s.state / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(DEPLOY / "dagster.yaml", s.dagster_home / "dagster.yaml")
    for name in ("workspace.yaml", "celery.yaml"):
        shutil.copy(DEPLOY / name, s.etc / name)
    settings = s.state / "settings.json"
    settings.write_text(json.dumps(asdict(s), indent=2))
    settings.chmod(0o600)  # holds the database passwords
    ids = _service_ids(s)
    if ids:
        for sub in ("logs", "run", "redis", "home", "dagster_home"):
            for path in [s.state / sub, *(s.state / sub).rglob("*")]:
                os.chown(path, *ids)
        os.chmod(s.state, 0o755)  # noqa: S103 (the service user must reach its files)


def _check_reachable(s: Settings) -> None:
    if _service_ids(s) is None:
        return
    probe = ["runuser", "-u", s.user, "--", "test", "-x", str(s.venv / "bin" / "python")]
    if subprocess.run(probe, capture_output=True, check=False).returncode != 0:
        raise DeployError(
            f"The user '{s.user}' cannot reach {s.state} (a parent directory is private): set "
            "DEPLOY_DIR to a directory every user can traverse, e.g. DEPLOY_DIR=/srv/assignar."
        )


def _spawn(s: Settings, name: str, argv: list[str]) -> int:
    """Start a service in a session of its own (its pid is its process group id), as the
    service user."""
    ids = _service_ids(s)
    with s.log(name).open("ab") as log:
        log.write(f"\n==> {datetime.now(UTC).isoformat()} {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv,
            cwd=s.state,
            env=s.env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=ids[0] if ids else None,
            group=ids[1] if ids else None,
            extra_groups=[] if ids else None,
            executable=shutil.which(argv[0], path=s.env()["PATH"]),
        )
    s.pid_file(name).write_text(f"{proc.pid}\n")
    (s.state / "run" / f"{name}.cmd.json").write_text(json.dumps(argv))
    return proc.pid


def _run_once(s: Settings, argv: list[str], what: str) -> str:
    ids = _service_ids(s)
    result = subprocess.run(
        argv,
        cwd=s.state,
        env=s.env(),
        capture_output=True,
        text=True,
        user=ids[0] if ids else None,
        group=ids[1] if ids else None,
        extra_groups=[] if ids else None,
        executable=shutil.which(argv[0], path=s.env()["PATH"]),
        check=False,
    )
    with s.log("setup").open("a") as log:
        log.write(f"==> {' '.join(argv)}\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        raise DeployError(f"{what} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def _pid(s: Settings, name: str) -> int | None:
    try:
        pid = int(s.pid_file(name).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _group_alive(pid) else None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait(what: str, ready, s: Settings, name: str | None = None, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if name and _pid(s, name) is None:
            raise DeployError(f"{what} exited; see {s.log(name)}:\n{_tail(s.log(name))}")
        time.sleep(0.5)
    raise DeployError(f"{what} not ready after {timeout:.0f} s; see {s.log(name or 'setup')}")


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def _http_ok(url: str) -> bool:
    import httpx

    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=2).status_code == 200
    return False


# -- PostgreSQL (the tests' cluster class, kept in the state directory) ----------------------------


def _postgres(s: Settings):
    sys.path.insert(0, str(ROOT))
    from tests.support.postgres import TemporaryPostgres

    return TemporaryPostgres(base_dir=s.state / "postgres", port=s.postgres_port)


def _create_databases(cluster, s: Settings) -> None:
    """Roles with passwords and a database each: Dagster's instance apart from Pay's data."""
    from psycopg2 import sql

    conn = cluster.connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for name, password in (("dagster", s.dagster_pg_password), ("pay", s.pay_pg_password)):
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
                verb = "ALTER" if cur.fetchone() else "CREATE"
                cur.execute(
                    sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(name), sql.Literal(password)
                    )
                )
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if not cur.fetchone():
                    cur.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(
                            sql.Identifier(name), sql.Identifier(name)
                        )
                    )
    finally:
        conn.close()


# -- commands --------------------------------------------------------------------------------------


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def up(connect_demo: bool = True) -> Settings:
    s = Settings.from_env()
    if any(_pid(s, name) for name in commands(s)):
        raise DeployError("Already running (see `python -m deploy.local status`); stop it first.")
    for name, port in (
        ("webserver", s.webserver_port), ("code server", s.code_server_port),
        ("simulator", s.simulator_port), ("PostgreSQL", s.postgres_port),
        ("Redis", s.redis_port),
    ):  # fmt: skip
        if _listening(port):
            raise DeployError(
                f"Port {port} for the {name} is in use on 127.0.0.1: stop what listens there or "
                "choose other ports (DAGSTER_PORT, CODE_SERVER_PORT, SIMULATOR_PORT, "
                f"POSTGRES_PORT, REDIS_PORT), or remove {s.state} to start afresh."
            )
    _ensure_redis()
    _ensure_user(s)
    s.state.mkdir(parents=True, exist_ok=True)
    _build_venv(s)
    _prepare_state(s)
    _check_reachable(s)
    cmds = commands(s)
    started = time.monotonic()
    try:
        say(f"PostgreSQL on 127.0.0.1:{s.postgres_port} (databases dagster and pay)")
        cluster = _postgres(s).start()
        _create_databases(cluster, s)
        say(f"Redis on 127.0.0.1:{s.redis_port} (Celery broker and results)")
        _spawn(s, "redis", cmds["redis"])
        _wait("Redis", lambda: _listening(s.redis_port), s, "redis")
        say(f"Assignar simulator on http://127.0.0.1:{s.simulator_port} (now {s.simulator_now})")
        _spawn(s, "simulator", cmds["simulator"])
        say("Dagster instance schema (dagster instance migrate) and the demo Pay team")
        _run_once(s, ["dagster", "instance", "migrate"], "dagster instance migrate")
        init = _run_once(s, ["assignar-pipeline", "pay", "init", "--demo"], "pay init --demo")
        team_id = int(init.split("Demo team id:")[1].split()[0])
        _wait("the simulator", lambda: _listening(s.simulator_port), s, "simulator")
        say(f"Code server (gRPC) on 127.0.0.1:{s.code_server_port}")
        _spawn(s, "code-server", cmds["code-server"])
        _wait("the code server", lambda: _listening(s.code_server_port), s, "code-server")
        say(f"Webserver on {s.webserver_url}, daemon, Celery workers {', '.join(WORKERS)}")
        _spawn(s, "webserver", cmds["webserver"])
        _spawn(s, "daemon", cmds["daemon"])
        for worker in WORKERS:
            _spawn(s, worker, cmds[worker])
        _wait("the webserver", lambda: _http_ok(f"{s.webserver_url}/server_info"), s, "webserver")
        _wait("the Celery workers", lambda: len(celery_workers(s)) == len(WORKERS), s)
        if connect_demo:
            say(f"Connecting the demo Pay team {team_id} as '{DEMO_KEY}' through the GraphQL API")
            from deploy.operate import connect_demo_team

            connect_demo_team(s.webserver_url, team_id)
    except BaseException:
        say("Start failed: stopping what was started")
        down(quiet=True)
        raise
    print(
        f"""
==========================================================================
  Dagster UI:        {s.webserver_url}
  Topology:          PostgreSQL :{s.postgres_port}, Redis :{s.redis_port}, code server \
:{s.code_server_port},
                     webserver, daemon, Celery workers {", ".join(WORKERS)} (user {s.user})
  Assignar:          simulator http://127.0.0.1:{s.simulator_port} (now {s.simulator_now})
  Logs, pid files:   {s.state}/logs, {s.state}/run
  Started in {time.monotonic() - started:.0f} s.  Stop with: make deploy-down
==========================================================================
""",
        flush=True,
    )
    return s


def celery_workers(s: Settings) -> list[str]:
    """Names of the Celery workers that answer a ping through the broker."""
    from celery import Celery

    app = Celery(broker=s.env()["DAGSTER_CELERY_BROKER_URL"])
    try:
        replies = app.control.ping(timeout=1.0) or []
    except Exception:
        return []
    finally:
        app.close()
    return sorted(name for reply in replies for name in reply)


def stop_services(s: Settings, names: list[str], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM to each service's process group, then SIGKILL to the groups still alive after
    `timeout`: the code server (which ignores SIGTERM) and its run workers go this way."""
    groups = {name: pgid for name in names if (pgid := _pid(s, name)) is not None}
    for pgid in groups.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(map(_group_alive, groups.values())) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pgid in groups.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    while any(map(_group_alive, groups.values())) and time.monotonic() < deadline + 10:
        time.sleep(0.1)
    for name in names:
        s.pid_file(name).unlink(missing_ok=True)


def down(quiet: bool = False) -> None:
    s = Settings.from_env()
    if not s.state.exists():
        if not quiet:
            say("Nothing to stop.")
        return
    names = list(commands(s))
    running = [name for name in names if _pid(s, name) is not None]
    if running and not quiet:
        say(f"Stopping {', '.join(running)}")
    stop_services(s, names)
    if (s.state / "postgres" / "data").exists():
        if not quiet:
            say("Stopping PostgreSQL")
        _postgres(s).stop()
    if not quiet:
        say(f"Stopped. Data and logs stay in {s.state} (remove it to start afresh).")


def status() -> int:
    s = Settings.from_env()
    down_count = 0
    for name in commands(s):
        pid = _pid(s, name)
        down_count += pid is None
        print(f"  {name:12} {'running, pid ' + str(pid) if pid else 'stopped'}")
    return 1 if down_count else 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "up"
    try:
        if command == "up":
            up(connect_demo="--no-demo" not in argv)
        elif command == "down":
            down()
        elif command == "status":
            return status()
        else:
            print("usage: python -m deploy.local up [--no-demo] | down | status", file=sys.stderr)
            return 2
    except DeployError as exc:
        print(f"deploy-local: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
