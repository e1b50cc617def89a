"""Replaying what the Azure stand-in holds with Docker, the way Container Apps would run it.

After `deploy`, the container app (or the migration job) is read back from the stand-in and its
container is run with the real engine: the image pulled from the local registry, the same
command, args and environment (each `secretRef` resolved from the resource's secrets through
listSecrets), the ingress target port published, and the probes exercised. What cannot match
Azure is changed in exactly one place, `substitute_for_local`; everything else is the deployed
spec as it is. The sign-in replay (test_signin_replay.py) has its own substitution beside it,
`substitute_sql_front`: the real Azure SQL URI, its host answered by a SQL login front.

Fixtures (session; imported by conftest.py):
- `replay_image`: the build/push issue's `product_image` (the product template built by the CLI,
  Microsoft's repository step off) pushed to the htpasswd registry and pulled back from it; the
  registry reference.
- `postgres_driver`: a folder with psycopg installed by that image's own pip (the product image
  has no PostgreSQL driver; substitute_for_local mounts it).
"""

from __future__ import annotations

import contextlib
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests import services

POSTGRES_DRIVER = ("psycopg==3.3.9", "psycopg-binary==3.3.9")  # the test extra's pin
DRIVER_MOUNT = "/opt/replay/postgres-driver"
SQL_SCHEME = "mssql+pyodbc://"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # Debian's, read by OpenSSL and libcurl
# How long a replayed server may take to pass its startup probe. MLflow answers /health in
# ~6 s with one worker (notes/mlflow.md); ACA's own budget (initialDelay + period x threshold)
# is minutes, which a test cannot afford to wait out when a probe points at the wrong port.
STARTUP_SECONDS = 60


# -- the one place the replay departs from the deployed spec ---------------------------------------------
def substitute_for_local(run: ContainerRun, *, azurite: services.Azurite, database_url: str,
                         postgres_driver: Path) -> ContainerRun:
    """Everything the replay changes from what Container Apps would run, and nothing else.

    1. Blob: in Azure the user-assigned identity (AZURE_CLIENT_ID) gets a token; Azurite takes
       only its account key. MLflow tries AZURE_STORAGE_CONNECTION_STRING before any other
       credential and then ignores the wasbs URI's host, so the deployed destination (container
       and path) is used unchanged, against Azurite.
    2. SQL: no SQL Server can run here. The Azure SQL URL is replaced by a PostgreSQL one in
       whichever variable the spec put it (whether MLflow reads that variable stays under test),
       and the PostgreSQL driver the image lacks is mounted and put on PYTHONPATH.
    """
    assert "AZURE_STORAGE_CONNECTION_STRING" not in run.env, "the spec must not carry a storage key"
    assert "PYTHONPATH" not in run.env
    sql = [name for name, value in run.env.items() if value.startswith(SQL_SCHEME)]
    assert sql, "the spec passes no Azure SQL URL for the replay to replace"
    env = {**run.env, **{name: database_url for name in sql},
           "AZURE_STORAGE_CONNECTION_STRING": azurite.container_connection_string,
           "PYTHONPATH": DRIVER_MOUNT}
    return replace(run, env=env, volumes={str(postgres_driver): {"bind": DRIVER_MOUNT, "mode": "ro"}})


def substitute_sql_front(run: ContainerRun, *, gateway: str, front_port: int, ca_bundle: str,
                         identity_endpoint: str, identity_header: str) -> ContainerRun:
    """What the sign-in replay changes from what Container Apps would run, and nothing else.

    1. SQL: the deployed URI is kept (host, database, user, `authentication=`, `plugin=`): only
       its port becomes the SQL front's, and the server's FQDN resolves to the Docker gateway
       where the front listens (as `<server>.database.windows.net` resolves to Azure SQL's
       gateway). The front's certificate is for that FQDN; its CA joins the container's CA
       bundle, which the driver's OpenSSL reads (observed: tests/sqlfront/README.md).
    2. Managed identity: Container Apps gives every container with an identity
       `IDENTITY_ENDPOINT` (a plain-HTTP local URL) and `IDENTITY_HEADER`; here they are the
       Azure stand-in's plain-HTTP identity listener, on the gateway.
    """
    assert not {"IDENTITY_ENDPOINT", "IDENTITY_HEADER"} & set(run.env), "the platform sets these, not the spec"
    sql = [name for name, value in run.env.items() if value.startswith(SQL_SCHEME)]
    assert sql, "the spec passes no Azure SQL URL"
    env = dict(run.env)
    hosts = set()
    for name in sql:
        url = make_url(env[name])
        assert url.port == 1433, url.port
        hosts.add(url.host)
        env[name] = env[name].replace(f"@{url.host}:1433/", f"@{url.host}:{front_port}/", 1)
        assert env[name] != run.env[name]
    env.update({"IDENTITY_ENDPOINT": identity_endpoint, "IDENTITY_HEADER": identity_header})
    return replace(run, env=env, extra_hosts={host: gateway for host in hosts},
                   volumes={ca_bundle: {"bind": SYSTEM_CA_BUNDLE, "mode": "ro"}})


# -- what Container Apps would run ---------------------------------------------------------------------
@dataclass(frozen=True)
class ContainerRun:
    """One container of a deployed app or job, its environment resolved."""

    image: str
    command: list[str] | None
    args: list[str] | None
    env: dict[str, str] = field(repr=False)  # may hold secret values: never in a test report
    cpu: float | None = None
    memory: str | None = None
    target_port: int | None = None
    probes: list[dict[str, Any]] = field(default_factory=list)
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)
    extra_hosts: dict[str, str] = field(default_factory=dict)

    def without(self, *names: str) -> ContainerRun:
        """The same run less some variables (negative controls)."""
        missing = [n for n in names if n not in self.env]
        assert not missing, f"the spec has no {missing} to remove"
        return replace(self, env={k: v for k, v in self.env.items() if k not in names})


def app_run(app: dict[str, Any], secrets: dict[str, str]) -> ContainerRun:
    """The container app's only container, as ACA would start it."""
    props = app["properties"]
    (container,) = props["template"]["containers"]
    return replace(_container_run(container, secrets, where=app["name"]),
                   target_port=props["configuration"]["ingress"]["targetPort"],
                   probes=container.get("probes") or [])


def job_run(job: dict[str, Any], secrets: dict[str, str]) -> ContainerRun:
    (container,) = job["properties"]["template"]["containers"]
    return _container_run(container, secrets, where=job["name"])


def job_init_run(job: dict[str, Any], secrets: dict[str, str], name: str) -> ContainerRun:
    """One of the job's init containers (which ACA runs to completion before its containers)."""
    (container,) = [c for c in job["properties"]["template"].get("initContainers") or [] if c["name"] == name]
    return _container_run(container, secrets, where=f"{job['name']}/{name}")


# -- the deployment's registry ------------------------------------------------------------------------
# In the stand-in, the deployment's registry holds catalog entries (a manifest, no layers): what
# the image check and the revision's pull look at. The image deployed as `<login server>/<repo>:<tag>`
# is run from the local registry's copy of the same image (same repository and tag).
_LOCAL_COPIES: dict[str, str] = {}


def deployable(deployment: Any, local_reference: str) -> str:
    """Stands for `mlflow-aca push` of an image already in the local registry: the reference to
    deploy from the deployment's registry (provisioned), whose replay runs the local copy."""
    login_server = deployment.one("Microsoft.ContainerRegistry/registries")["properties"]["loginServer"]
    deployed = f"{login_server}/{local_reference.split('/', 1)[1]}"
    deployment.standin.add_registry_image(deployed)
    _LOCAL_COPIES[deployed] = local_reference
    return deployed


def _container_run(container: dict[str, Any], secrets: dict[str, str], *, where: str) -> ContainerRun:
    resources = container.get("resources") or {}
    return ContainerRun(image=_LOCAL_COPIES.get(container["image"], container["image"]), command=container.get("command"), args=container.get("args"),
                        env=resolve_env(container.get("env") or [], secrets, where=where),
                        cpu=resources.get("cpu"), memory=resources.get("memory"))


def resolve_env(variables: list[dict[str, Any]], secrets: dict[str, str], *, where: str) -> dict[str, str]:
    """Plain values as they are; each secretRef replaced by the secret's value (never printed)."""
    env: dict[str, str] = {}
    for var in variables:
        if "secretRef" in var:
            ref = var["secretRef"]
            assert ref in secrets, f"{where}: {var['name']} references secret {ref!r}, which {where} does not hold"
            env[var["name"]] = secrets[ref]
        else:
            env[var["name"]] = str(var.get("value", ""))
    return env


class Secrets(dict):
    """Secret values by name. pytest prints the arguments of the frames in a failure's
    traceback: this shows only the names."""

    def __repr__(self) -> str:
        return f"Secrets({', '.join(f'{name}=***' for name in self)})"


def list_secrets(deployment: Any, resource: dict[str, Any]) -> Secrets:
    """The resource's secret values as Azure gives them: only listSecrets returns them."""
    path = resource["id"].split(deployment.subscription_id, 1)[1]
    listed = deployment.arm("POST", f"{path}/listSecrets?api-version=2025-01-01")
    return Secrets({item["name"]: item["value"] for item in listed.get("value", [])})


def ingress_environ(deployment: Any, fqdn: str) -> dict[str, str]:
    """What a client process needs to reach the app on its FQDN through the stand-in's proxy,
    signed in (below), with MLflow failing at once rather than after its default seven retries
    with backoff."""
    env = deployment.env()
    return {**{name: env[name] for name in ("HTTPS_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE")},
            "MLFLOW_TRACKING_URI": f"https://{fqdn}", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "60", **signed_in_environ(deployment)}


def signed_in_environ(deployment: Any) -> dict[str, str]:
    """The MLflow client signed in as the operator: the identity variables the stand-in gives its
    clients, and what `mlflow-aca env` prints for sign-in (MLFLOW_TRACKING_AUTH=mlflow-aca,
    MLFLOW_ACA_AUTH_SCOPE)."""
    env = deployment.env()
    variables = deployment.ok("env")["variables"]
    return {**{name: env[name] for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER")},
            **{name: variables[name] for name in ("MLFLOW_TRACKING_AUTH", "MLFLOW_ACA_AUTH_SCOPE")}}


# -- running it ------------------------------------------------------------------------------------------
class ContainerFailed(AssertionError):
    pass


@dataclass
class RunningApp:
    container: Any
    host_port: int  # the ingress target port, published on 127.0.0.1
    probes: list[tuple[str, str, int]]  # (type, path, status) of each probe's first success

    @property
    def backend(self) -> str:
        return f"127.0.0.1:{self.host_port}"

    def logs(self, tail: int | str = 80) -> str:
        return self.container.logs(tail=tail).decode(errors="replace")


@contextlib.contextmanager
def running_app(client: Any, run: ContainerRun, *, startup_seconds: float = STARTUP_SECONDS) -> Iterator[RunningApp]:
    """Start the app's container with its target port and every probe port published, and pass
    its probes (startup, then readiness and liveness) before yielding. A container that stops
    fails at once, with its logs."""
    ports = {run.target_port, *(p["httpGet"]["port"] for p in run.probes if "httpGet" in p)} - {None}
    container = client.containers.run(run.image, detach=True, name=f"mlflow-aca-replay-{uuid.uuid4().hex[:8]}",
                                      ports={f"{p}/tcp": ("127.0.0.1", None) for p in ports}, **_docker_options(run))
    try:
        published = _published_ports(container, ports)
        results = _pass_probes(container, run.probes, published, startup_seconds)
        yield RunningApp(container, published[run.target_port], results)
    finally:
        container.remove(force=True)


def run_job(client: Any, run: ContainerRun, *, timeout: float = 600) -> tuple[int, str]:
    """Run a job's container to completion: (exit code, logs)."""
    with started(client, run, name="job") as container:
        status = container.wait(timeout=timeout)["StatusCode"]
        return status, container.logs().decode(errors="replace")


@contextlib.contextmanager
def started(client: Any, run: ContainerRun, *, name: str = "run") -> Iterator[Any]:
    """The container, started and left running until the block ends; then removed."""
    container = client.containers.run(run.image, detach=True, name=f"mlflow-aca-{name}-{uuid.uuid4().hex[:8]}",
                                      **_docker_options(run))
    try:
        yield container
    finally:
        container.remove(force=True)


def _docker_options(run: ContainerRun) -> dict[str, Any]:
    # As in Kubernetes: `command` replaces the image's ENTRYPOINT, `args` its CMD.
    options: dict[str, Any] = {"environment": run.env, "volumes": run.volumes,
                               "labels": {"mlflow-aca-test": "replay"}}
    if run.extra_hosts:
        options["extra_hosts"] = run.extra_hosts
    if run.command is not None:
        options["entrypoint"] = run.command
    if run.args is not None:
        options["command"] = run.args
    if run.memory:
        options["mem_limit"] = _memory_bytes(run.memory)
    if run.cpu:
        options["nano_cpus"] = int(float(run.cpu) * 1e9)
    return options


def _memory_bytes(value: str) -> int:
    units = {"Gi": 1024 ** 3, "Mi": 1024 ** 2}
    unit = value[-2:] if value[-2:] in units else ""
    return int(float(value[:len(value) - len(unit)]) * units.get(unit, 1))


def _published_ports(container: Any, ports: set[int]) -> dict[int, int]:
    container.reload()
    published = {}
    for port in ports:
        bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp")
        if not bindings:
            raise _failed(container, f"port {port} was not published")
        published[port] = int(bindings[0]["HostPort"])
    return published


def _pass_probes(container: Any, probes: list[dict[str, Any]], published: dict[int, int],
                 startup_seconds: float) -> list[tuple[str, str, int]]:
    """As ACA does, without its delays and periods: the startup probe until it succeeds, then
    readiness and liveness."""
    assert probes, "the container has no probes: ACA would route traffic before MLflow listens"
    ordered = sorted(probes, key=lambda p: {"Startup": 0, "Readiness": 1, "Liveness": 2}[p["type"]])
    results = []
    deadline = time.monotonic() + startup_seconds
    for probe in ordered:
        get = probe["httpGet"]
        url = f"{get.get('scheme', 'HTTP').lower()}://127.0.0.1:{published[get['port']]}{get['path']}"
        while True:
            status = _status(url, probe.get("timeoutSeconds", 1))
            if status is not None and 200 <= status < 400:
                results.append((probe["type"], get["path"], status))
                break
            container.reload()
            if container.status != "running":
                raise _failed(container, f"the container stopped while its {probe['type']} probe waited")
            if time.monotonic() >= deadline:
                raise _failed(container, f"the {probe['type']} probe (GET {get['path']} on port {get['port']}) "
                                         f"did not pass within {startup_seconds:.0f}s (last status: {status})")
            time.sleep(0.25)
    return results


def _status(url: str, timeout: float) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _failed(container: Any, reason: str) -> ContainerFailed:
    container.reload()
    state = container.attrs.get("State", {})
    logs = container.logs(tail=60).decode(errors="replace")
    return ContainerFailed(f"{reason}; container {state.get('Status')} (exit code {state.get('ExitCode')}, "
                           f"OOM-killed {state.get('OOMKilled')})\n--- its last log lines ---\n{logs}")


# -- PostgreSQL and Azurite -----------------------------------------------------------------------------
@contextlib.contextmanager
def fresh_database(postgres: services.Postgres) -> Iterator[str]:
    """A new, empty database, dropped afterwards. Yields its name."""
    import psycopg

    name = f"replay_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(postgres.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(postgres: services.Postgres, database: str, sql: str, *params: Any) -> list[tuple]:
    import psycopg

    with psycopg.connect(postgres.url(database)) as conn:
        return conn.execute(sql, params).fetchall()


def blob_container(azurite: services.Azurite, name: str) -> Any:
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(name)


def ensure_blob_container(azurite: services.Azurite, name: str, *, exists: bool) -> Any:
    """Create (as provisioning does in Azure) or delete the artifact container in Azurite."""
    container = blob_container(azurite, name)
    if exists and not container.exists():
        container.create_container()
    elif not exists and container.exists():
        container.delete_container()
    return container


# -- session fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def replay_engine(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_CONFIG", str(tmp_path_factory.mktemp("replay-docker-config")))
        client = services.require_docker()
        yield client
        client.close()


@pytest.fixture(scope="session")
def replay_image(product_image, replay_engine) -> str:
    return publish(replay_engine, product_image.reference, services.require_registry())


@pytest.fixture(scope="session")
def postgres_driver(replay_image, replay_engine, tmp_path_factory) -> Path:
    return install_postgres_driver(replay_engine, replay_image, tmp_path_factory.mktemp("postgres-driver"))


def publish(client: Any, local_reference: str, registry: services.Registry) -> str:
    """Push to the htpasswd registry, drop the local registry tag and pull it back, so what runs
    is what the registry serves. Returns the registry reference."""
    repository, _, tag = local_reference.rpartition(":")
    remote = registry.image(repository)
    client.images.get(local_reference).tag(remote, tag)
    auth = registry.auth_config()
    for chunk in client.api.push(remote, tag=tag, auth_config=auth, stream=True, decode=True):
        if "error" in chunk:
            raise AssertionError(f"push of {remote}:{tag} failed: {chunk['error']}")
    client.images.remove(f"{remote}:{tag}")  # the tag only: the local build keeps the layers
    client.images.pull(remote, tag=tag, auth_config=auth)
    return f"{remote}:{tag}"


def install_postgres_driver(client: Any, image: str, directory: Path) -> Path:
    """psycopg, installed by the image's own pip for the image's own Python, into DIRECTORY."""
    services.run_container(client, image, ["pip", "install", "--no-deps", "--target", DRIVER_MOUNT, *POSTGRES_DRIVER],
                           user="0", volumes={str(directory): {"bind": DRIVER_MOUNT, "mode": "rw"}}, timeout=300)
    directory.chmod(0o755)  # pytest makes it 0700; the image runs as uid 10001
    return directory
