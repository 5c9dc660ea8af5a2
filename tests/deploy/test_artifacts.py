"""The deployment files checked against what they configure (part of `make test`): the instance
config loaded on a real PostgreSQL, the Celery worker config against the executor, and the
container and cluster artifacts that this machine cannot run (Dockerfile, docker-compose.yaml,
Helm values) against the local topology, the project and the official chart's structure."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import psycopg2
import pytest
import sqlalchemy as sa
import yaml
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_celery.cli import get_validated_config
from dagster_postgres import PostgresRunStorage

from assignar_pipeline.definitions import executor_from_env
from deploy.local import Settings, commands
from tests.support.postgres import TemporaryPostgres

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _local_settings() -> Settings:
    return Settings(
        state_dir="/srv/deploy", user="dagster", webserver_port=3000, code_server_port=4266,
        simulator_port=8700, postgres_port=5433, redis_port=6380,
        simulator_now="2025-11-14T07:00:00Z", dagster_pg_password="pw", pay_pg_password="pw",
    )  # fmt: skip


def _instance_env(monkeypatch: pytest.MonkeyPatch, pg_url: str) -> None:
    url = urlsplit(pg_url)
    monkeypatch.setenv("DAGSTER_PG_HOST", url.hostname or "")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(url.port))
    monkeypatch.setenv("DAGSTER_PG_DB", url.path.lstrip("/"))
    monkeypatch.setenv("DAGSTER_PG_USERNAME", url.username or "")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "")


# -- deploy/dagster.yaml ------------------------------------------------------------------------


def test_instance_config_loads_on_postgresql_with_every_setting_in_force(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/dagster.yaml, read from DAGSTER_HOME with the DAGSTER_PG_* variables, stores runs on
    PostgreSQL through psycopg2 and has the queue, pools, monitoring and retries it describes."""
    _instance_env(monkeypatch, pg_url)
    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert instance.run_storage._engine.dialect.driver == "psycopg2"
        run = instance.create_run_for_job(dg.GraphDefinition("noop").to_job(), run_id=None)
        assert instance.get_run_by_id(run.run_id) is not None  # the tables exist and work
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.run_coordinator.dequeue_interval_seconds == 1
        concurrency = instance.get_concurrency_config()
        queue = concurrency.run_queue_config
        assert queue.max_concurrent_runs == 6
        assert queue.tag_concurrency_limits == [
            {"key": "assignar/operation", "value": "bulk_import", "limit": 2}
        ]
        assert concurrency.pool_config.default_pool_limit == 4
        assert concurrency.pool_config.pool_granularity.value == "op"
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_runtime_seconds == 7200
        assert instance.run_monitoring_start_timeout_seconds == 180
        assert instance.run_monitoring_poll_interval_seconds == 15
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.run_retries_retry_on_asset_or_op_failure is False
        assert instance.telemetry_enabled is False and instance.nux_enabled is False


def test_api_steps_are_in_the_pool_the_instance_limits() -> None:
    """Every step that calls Assignar (extract assets, the sync op) is in the pool `assignar_api`,
    which `concurrency: pools: default_limit` bounds."""
    from assignar_pipeline.definitions import defs

    extract = [a for a in defs.assets if a.key.path[-1].startswith("assignar_") and "pay_rates"
               not in a.key.path[-1]]  # fmt: skip
    assert extract and {a.op.pool for a in extract} == {"assignar_api"}
    sync = defs.resolve_job_def("sync_assignar")
    assert {node.definition.pool for node in sync.nodes} == {"assignar_api"}


# -- Celery -------------------------------------------------------------------------------------


def test_celery_workers_and_executor_share_one_broker_and_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """deploy/celery.yaml (what `dagster-celery worker start -y` reads) resolves to the same broker,
    backend and retries as the executor that PIPELINE_EXECUTOR=celery gives every job."""
    monkeypatch.setenv("PIPELINE_EXECUTOR", "celery")
    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "redis://127.0.0.1:6380/0")
    monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", "redis://127.0.0.1:6380/1")
    executor = executor_from_env()
    assert executor is not None and executor.name == "celery"
    mapped = executor.apply_config_mapping({})
    assert mapped.success, mapped.errors
    assert get_validated_config(str(DEPLOY / "celery.yaml")) == mapped.value["config"]


def test_the_executor_follows_pipeline_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset: steps in the run's own process (make run); the others name their executors;
    anything else is refused with the accepted names."""
    monkeypatch.delenv("PIPELINE_EXECUTOR", raising=False)
    assert executor_from_env().name == "in_process"
    monkeypatch.setenv("PIPELINE_EXECUTOR", "multiprocess")
    assert executor_from_env().name == "multiprocess"
    monkeypatch.setenv("PIPELINE_EXECUTOR", "k8s")
    assert executor_from_env().name == "k8s"
    monkeypatch.setenv("PIPELINE_EXECUTOR", "dask")
    with pytest.raises(ValueError, match="in_process, multiprocess, celery, k8s"):
        executor_from_env()


# -- Dockerfile and docker-compose.yaml -----------------------------------------------------------

LOCAL_ONLY_ENV = {"PATH", "HOME", "LANG", "PYTHONUNBUFFERED", "DAGSTER_HOME"}


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each Dockerfile instruction, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def _normalized(argv: list[str]) -> list[str]:
    """A command with its addresses, ports and file locations replaced: what must agree between
    the local topology, the image and compose."""
    placeholders = {"-h": "HOST", "--host": "HOST", "-p": "PORT", "--port": "PORT",
                    "-w": "FILE", "-y": "FILE"}  # fmt: skip
    out = list(argv)
    for i, arg in enumerate(argv[:-1]):
        if arg in placeholders:
            out[i + 1] = placeholders[arg]
    return out


def test_image_default_command_and_compose_commands_are_the_local_topologys() -> None:
    """The image's CMD, compose's services and deploy.local run the same programs with the same
    options (addresses aside); the deployment test runs them, so the image's entry commands are
    exercised without a container."""
    cmd = next(args for op, args in _dockerfile() if op == "CMD")
    image_cmd = yaml.safe_load(cmd)
    local = commands(_local_settings())
    compose = _yaml(ROOT / "docker-compose.yaml")["services"]
    assert _normalized(image_cmd) == _normalized(local["code-server"])
    for name in ("code-server", "webserver", "daemon", "worker1", "worker2"):
        assert _normalized(compose[name]["command"]) == _normalized(local[name]), name
    assert compose["simulator"]["command"][:3] == local["simulator"][:3]
    assert compose["redis"]["command"][0] == local["redis"][0]


def test_compose_has_the_local_services_and_environment() -> None:
    """Compose runs PostgreSQL, Redis, the simulator and every Dagster process of the local
    topology, with the same variables (deploy.local's, less what the image sets itself), after
    the one-off schema step."""
    compose = _yaml(ROOT / "docker-compose.yaml")
    services = compose["services"]
    assert set(commands(_local_settings())) | {"postgres", "init"} <= set(services)
    local_env = set(_local_settings().env()) - LOCAL_ONLY_ENV - {"PIPELINE_SENSOR_INTERVAL"}
    for name in ("init", "code-server", "webserver", "daemon", "worker1", "worker2"):
        assert set(services[name]["environment"]) == local_env, name
    for name in ("code-server", "webserver", "daemon", "worker1", "worker2"):
        assert services[name]["depends_on"]["init"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    ours = [n for n, svc in services.items() if svc.get("image") == "assignar-pipeline:latest"]
    assert all(services[n].get("build") == "." for n in ours), "an image of ours would be pulled"
    env = services["webserver"]["environment"]
    assert env["PAY_DATABASE_URL"].startswith("postgresql+psycopg2://")
    assert "${DAGSTER_PG_PASSWORD:?" in env["DAGSTER_PG_PASSWORD"]  # never a literal password


def test_dockerfile_builds_the_locked_package_in_stages_and_runs_as_non_root() -> None:
    """Multi-stage; dependencies from uv.lock (frozen, no dev group) before the code, the project
    installed non-editable (as deploy.local builds its environment); every package the wheel
    ships is copied; the instance config lands in DAGSTER_HOME; the final user is not root."""
    steps = _dockerfile()
    froms = [args for op, args in steps if op == "FROM"]
    assert len(froms) == 2 and " AS " in froms[0]
    runs = [args for op, args in steps if op == "RUN"]
    copies = [shlex.split(args) for op, args in steps if op == "COPY"]
    assert any("uv sync --frozen --no-dev --no-install-project" in r for r in runs)
    assert any("uv sync --frozen --no-dev --no-editable" in r for r in runs)
    local_build = (DEPLOY / "local.py").read_text()
    assert '"sync", "--frozen", "--no-dev", "--no-editable"' in local_build
    copied = {src for c in copies for src in c[:-1]}
    assert {"pyproject.toml", "uv.lock", "README.md"} <= copied
    wheel = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    assert set(wheel["targets"]["wheel"]["packages"]) <= copied
    assert ["deploy/dagster.yaml", "/opt/dagster/dagster_home/dagster.yaml"] in copies
    env = " ".join(args for op, args in steps if op == "ENV")
    assert "DAGSTER_HOME=/opt/dagster/dagster_home" in env
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1] not in {"root", "0"}
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".deploy", ".data", ".env"} <= set(ignored)


def test_compose_postgres_init_script_creates_pays_role_and_database(
    postgres: TemporaryPostgres,
) -> None:
    """deploy/postgres-init.sh, as the postgres image runs it on first start, creates Pay's role
    with its password and Pay's database owned by it."""
    env = {
        **os.environ,
        "POSTGRES_USER": "postgres", "POSTGRES_DB": "postgres",
        "PAY_PG_PASSWORD": "it's-a-test", "PGHOST": "127.0.0.1", "PGPORT": str(postgres.port),
    }  # fmt: skip
    result = subprocess.run(
        ["sh", str(DEPLOY / "postgres-init.sh")], env=env, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    conn = psycopg2.connect(
        host="127.0.0.1", port=postgres.port, user="pay", password="it's-a-test", dbname="pay"
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, pg_catalog.pg_get_userbyid(datdba) FROM pg_database "
                        "WHERE datname = 'pay'")  # fmt: skip
            assert cur.fetchone() == ("pay", "pay")
    finally:
        conn.close()


# -- Helm values --------------------------------------------------------------------------------


def _leaves(names: str) -> dict[str, None]:
    return dict.fromkeys(names.split())


#: The keys of the official Dagster chart (1.13.x values.yaml and its JSON schema) that our
#: values may use: a dict names a section's keys; None is a leaf or a free-form Kubernetes object.
_DEPLOYMENT = _leaves(
    "name port dagsterApiGrpcArgs codeServerArgs env envConfigMaps envSecrets annotations "
    "nodeSelector affinity tolerations podSecurityContext securityContext resources livenessProbe "
    "readinessProbe startupProbe labels volumeMounts volumes schedulerName"
) | {
    "image": _leaves("repository tag pullPolicy"),
    "includeConfigInLaunchedRuns": _leaves("enabled"),
}
_K8S_RUN_LAUNCHER = _leaves(
    "image imagePullPolicy jobNamespace loadInclusterConfig kubeconfigFile envConfigMaps "
    "envSecrets envVars volumeMounts volumes labels failPodOnRunFailure resources "
    "securityContext runK8sConfig schedulerName"
)
CHART = {
    "global": _leaves("postgresqlSecretName dagsterHome serviceAccountName celeryConfigSecretName"),
    "dagster-user-deployments": _leaves("enabled enableSubchart imagePullSecrets")
    | {"deployments": [_DEPLOYMENT]},
    "runLauncher": {"type": None, "config": {"k8sRunLauncher": _K8S_RUN_LAUNCHER}},
    "postgresql": _leaves(
        "enabled image postgresqlHost postgresqlUsername postgresqlPassword postgresqlDatabase "
        "postgresqlParams postgresqlScheme"
    )
    | {"service": _leaves("port")},
    "generatePostgresqlPasswordSecret": None,
    "rabbitmq": _leaves("enabled"),
    "redis": _leaves("enabled"),
    "flower": _leaves("enabled"),
    "dagsterDaemon": {
        "enabled": None,
        "runCoordinator": _leaves("enabled type")
        | {
            "config": {
                "queuedRunCoordinator": _leaves(
                    "maxConcurrentRuns tagConcurrencyLimits dequeueIntervalSeconds "
                    "dequeueNumWorkers dequeueUseThreads"
                )
            }
        },
        "runMonitoring": _leaves(
            "enabled startTimeoutSeconds cancelTimeoutSeconds maxRuntimeSeconds "
            "maxResumeRunAttempts pollIntervalSeconds freeSlotsAfterRunEndSeconds"
        ),
        "runRetries": _leaves("enabled maxRetries retryOnAssetOrOpFailure"),
        "sensors": _leaves("useThreads numWorkers numSubmitWorkers"),
        "schedules": _leaves("useThreads numWorkers numSubmitWorkers"),
    },
    "concurrency": {
        "enabled": None,
        "pools": _leaves("defaultLimit granularity opGranularityRunBuffer"),
        "runs": _leaves("maxConcurrentRuns tagConcurrencyLimits"),
    },
    "telemetry": _leaves("enabled"),
}


def _unknown_keys(values, schema, path: str = "") -> list[str]:
    if schema is None:
        return []
    if isinstance(schema, list):
        return [k for i, item in enumerate(values) for k in _unknown_keys(item, schema[0],
                f"{path}[{i}]")]  # fmt: skip
    unknown = []
    for key, value in values.items():
        if key not in schema:
            unknown.append(f"{path}.{key}")
        else:
            unknown += _unknown_keys(value, schema[key], f"{path}.{key}")
    return unknown


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def test_helm_values_use_only_the_charts_keys() -> None:
    """Every key in deploy/helm/values.yaml is one the dagster chart (1.13) reads."""
    assert _unknown_keys(_yaml(DEPLOY / "helm" / "values.yaml"), CHART) == []


def test_helm_values_deploy_this_image_with_k8s_runs_and_secrets() -> None:
    """The user-code deployment serves our module with this image's code server, runs launch as
    Kubernetes Jobs (K8sRunLauncher) and steps as Jobs (PIPELINE_EXECUTOR=k8s), secrets come
    from Kubernetes secrets, and no password is written in the file."""
    values = _yaml(DEPLOY / "helm" / "values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["codeServerArgs"][:2] == ["--module-name", "assignar_pipeline.definitions"]
    image_cmd = yaml.safe_load(next(a for op, a in _dockerfile() if op == "CMD"))
    assert image_cmd[image_cmd.index("--location-name") + 1] in deployment["codeServerArgs"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["PIPELINE_EXECUTOR"] == "k8s"
    assert deployment["envSecrets"] and deployment["includeConfigInLaunchedRuns"]["enabled"]
    assert deployment["podSecurityContext"]["runAsNonRoot"] is True
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    assert launcher["config"]["k8sRunLauncher"]["envSecrets"] == deployment["envSecrets"]
    assert values["global"]["postgresqlSecretName"] and "postgresqlPassword" not in values[
        "postgresql"]  # fmt: skip
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"


def test_helm_instance_settings_are_deploy_dagster_yamls() -> None:
    """The chart writes its own dagster.yaml: its queue, pools, run monitoring and retries are
    the same numbers as deploy/dagster.yaml's."""
    instance = _yaml(DEPLOY / "dagster.yaml")
    values = _yaml(DEPLOY / "helm" / "values.yaml")
    runs, pools = values["concurrency"]["runs"], values["concurrency"]["pools"]
    assert values["concurrency"]["enabled"] is True
    assert runs["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    assert runs["tagConcurrencyLimits"] == instance["concurrency"]["runs"][
        "tag_concurrency_limits"]  # fmt: skip
    assert pools == {_camel(k): v for k, v in instance["concurrency"]["pools"].items()}
    daemon = values["dagsterDaemon"]
    for key, value in instance["run_monitoring"].items():
        assert daemon["runMonitoring"][_camel(key)] == value, key
    assert daemon["runRetries"] == {_camel(k): v for k, v in instance["run_retries"].items()}
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert "maxConcurrentRuns" not in queued  # the limits live under concurrency only
    assert queued["dequeueIntervalSeconds"] == instance["run_coordinator"]["config"][
        "dequeue_interval_seconds"]  # fmt: skip
    assert values["telemetry"] == instance["telemetry"]


def test_pay_and_dagster_use_separate_databases_in_every_topology() -> None:
    """Locally and in compose, Pay's URL names another database than Dagster's instance."""
    local = _local_settings().env()
    assert sa.make_url(local["PAY_DATABASE_URL"]).database != local["DAGSTER_PG_DB"]
    env = _yaml(ROOT / "docker-compose.yaml")["services"]["webserver"]["environment"]
    assert env["PAY_DATABASE_URL"].rsplit("/", 1)[1] != env["DAGSTER_PG_DB"]
