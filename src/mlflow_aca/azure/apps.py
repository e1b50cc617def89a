"""Container Apps: managed environments, container apps and their revisions, jobs
(Microsoft.App)."""

from __future__ import annotations

from typing import Any

from mlflow_aca.azure import rest
from mlflow_aca.azure.arm import Kind
from mlflow_aca.azure.errors import translate_errors
from mlflow_aca.azure.session import AzureSession
from mlflow_aca.redaction import register_secret

ENVIRONMENT = Kind(
    label="Container Apps environment",
    client="apps",
    get=lambda c, rg, name: c.managed_environments.get(rg, name),
    put=lambda c, rg, name, body: c.managed_environments.begin_create_or_update(rg, name, body),
    delete=lambda c, rg, name: c.managed_environments.begin_delete(rg, name),
    model="azure.mgmt.appcontainers.models:ManagedEnvironment",
)

APP = Kind(
    label="container app",
    client="apps",
    get=lambda c, rg, name: c.container_apps.get(rg, name),
    put=lambda c, rg, name, body: c.container_apps.begin_create_or_update(rg, name, body),
    delete=lambda c, rg, name: c.container_apps.begin_delete(rg, name),
    model="azure.mgmt.appcontainers.models:ContainerApp",
)

# Built-in authentication of an app: a child resource with the one name "current"
# (Microsoft.App AuthConfigs.json; a synchronous PUT).
AUTH_CONFIG_NAME = "current"
AUTH_CONFIG = Kind(
    label="sign-in configuration",
    client="apps",
    get=lambda c, rg, app, name: c.container_apps_auth_configs.get(rg, app, name),
    put=lambda c, rg, app, name, body: c.container_apps_auth_configs.create_or_update(rg, app, name, body),
    delete=lambda c, rg, app, name: c.container_apps_auth_configs.delete(rg, app, name),
    model="azure.mgmt.appcontainers.models:AuthConfig",
)

JOB = Kind(
    label="Container Apps job",
    client="apps",
    get=lambda c, rg, name: c.jobs.get(rg, name),
    put=lambda c, rg, name, body: c.jobs.begin_create_or_update(rg, name, body),
    delete=lambda c, rg, name: c.jobs.begin_delete(rg, name),
    model="azure.mgmt.appcontainers.models:Job",
)


class Operation:
    """A long-running write under way. The SDK's poller polls in a thread of its own
    (azure.core.polling.LROPoller: `wait(timeout)` joins it for at most `timeout` seconds and
    re-raises the operation's error once it failed; `done()` says whether it ended), so the caller
    can wait in slices, look at what the operation is doing between them, and stop waiting at a
    deadline of its own (Azure finishes the operation anyway; a rerun finds it settled)."""

    def __init__(self, action: str, poller: Any) -> None:
        self.action = action
        self.poller = poller

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds`; True once the operation ended (raises if it failed)."""
        with translate_errors(self.action):
            self.poller.wait(seconds)
            return bool(self.poller.done())

    def result(self) -> dict[str, Any]:
        return rest.run(self.action, lambda: self.poller)


def begin_write(session: AzureSession, kind: Kind, *ids: str, body: dict[str, Any]) -> Operation:
    """Send a PUT (`kind.put` is a `begin_*` call) and return its operation without waiting."""
    client = session.client(kind.client)
    model = rest.to_model(kind.model_type(), body)
    action = f"write {kind.label} {ids[-1]}"
    with translate_errors(action):
        poller = kind.put(client, *ids, model)
    return Operation(action, poller)


def app_secrets(session: AzureSession, resource_group: str, name: str) -> dict[str, str]:
    """Secret values of an app (GET never returns them; listSecrets does)."""
    client = session.client("apps")
    listed = rest.run(f"list the secrets of container app {name}",
                      lambda: client.container_apps.list_secrets(resource_group, name))
    values = {item["name"]: item.get("value", "") for item in listed.get("value", [])}
    for value in values.values():
        register_secret(value)
    return values


def job_secrets(session: AzureSession, resource_group: str, name: str) -> dict[str, str]:
    client = session.client("apps")
    listed = rest.run(f"list the secrets of job {name}",
                      lambda: client.jobs.list_secrets(resource_group, name))
    values = {item["name"]: item.get("value", "") for item in listed.get("value", [])}
    for value in values.values():
        register_secret(value)
    return values


def revision(session: AzureSession, resource_group: str, app: str, name: str) -> dict[str, Any] | None:
    client = session.client("apps")
    return rest.get_or_none(f"read revision {name}",
                            lambda: client.container_apps_revisions.get_revision(resource_group, app, name))


def replicas(session: AzureSession, resource_group: str, app: str, revision: str) -> list[dict[str, Any]]:
    client = session.client("apps")
    return rest.run(
        f"list the replicas of revision {revision}",
        lambda: client.container_apps_revision_replicas.list_replicas(resource_group, app, revision),
    ).get("value", [])


def start_job(session: AzureSession, resource_group: str, job: str) -> dict[str, Any]:
    """Start a manual job execution and return it once Azure has accepted it."""
    client = session.client("apps")
    return rest.run(f"start job {job}", lambda: client.jobs.begin_start(resource_group, job))


def job_execution(session: AzureSession, resource_group: str, job: str, execution: str) -> dict[str, Any]:
    client = session.client("apps")
    return rest.run(f"read execution {execution} of job {job}",
                    lambda: client.job_execution(resource_group, job, execution))


def job_executions(session: AzureSession, resource_group: str, job: str) -> list[dict[str, Any]]:
    """Every execution Azure keeps for the job (Microsoft.App Jobs Executions_List)."""
    client = session.client("apps")
    return [rest.to_rest(item) for item in rest.run(
        f"list the executions of job {job}",
        lambda: {"value": list(client.jobs_executions.list(resource_group, job))}).get("value", [])]
