"""Container Apps' log streams: the calls `az containerapp logs show` makes.

Sources (read through the search tool):
- Azure/azure-cli, containerapp/custom.py `stream_containerapp_logs`: `POST .../containerApps/{app}/
  getAuthToken` gives a short-lived token (`properties.token`); console logs are then
  `GET <base>/subscriptions/{sub}/resourceGroups/{rg}/containerApps/{app}/revisions/{rev}/replicas/
  {replica}/containers/{container}/logstream` with `follow`, `output`, `tailLines` and
  `Authorization: Bearer <token>`, system logs `GET <base>/.../containerApps/{app}/eventstream`
  (the app's `eventStreamEndpoint`), answered one log line per line; `tailLines` is 0..300.
- Azure/azure-rest-api-specs Microsoft.App (ContainerApps_GetAuthToken, Replicas_Get): the token's
  shape, and each replica container's `logStreamEndpoint`.
- Azure/azure-cli-extensions containerapp/_clients.py `ContainerAppsJobPreviewClient`: a job's
  token is `POST .../jobs/{job}/getAuthToken` and an execution's replicas are
  `GET .../jobs/{job}/executions/{execution}/replicas`, both at api-version 2023-11-02-preview,
  which the SDK (azure-mgmt-appcontainers 5.1) does not wrap: they go through the SDK client's
  pipeline (`send_request`: same credential, cloud, retries and proxy).

The token is a secret: it is registered with the redaction filter as soon as it is received and
only ever travels in the Authorization header of the stream request.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from mlflow_aca.azure import rest
from mlflow_aca.azure.errors import translate_errors
from mlflow_aca.azure.session import AzureSession
from mlflow_aca.errors import OperationError
from mlflow_aca.redaction import register_secret

MAX_TAIL = 300  # az containerapp logs show: "--tail must be between 0 and 300"
JOB_API_VERSION = "2023-11-02-preview"  # ContainerAppsJobPreviewClient.LOG_STREAM_API_VERSION
CONNECT_TIMEOUT = 30
READ_TIMEOUT = 120  # a non-following read; a follow waits as long as the stream stays open


@dataclass
class Target:
    """Where one stream is read from: its URL and the token that opens it (never printed)."""

    url: str
    token: str = field(repr=False)
    system: bool = False


def app(session: AzureSession, resource_group: str, name: str) -> dict[str, Any] | None:
    client = session.client("apps")
    return rest.get_or_none(f"read container app {name}", lambda: client.container_apps.get(resource_group, name))


def job(session: AzureSession, resource_group: str, name: str) -> dict[str, Any] | None:
    client = session.client("apps")
    return rest.get_or_none(f"read job {name}", lambda: client.jobs.get(resource_group, name))


def app_token(session: AzureSession, resource_group: str, name: str) -> str:
    client = session.client("apps")
    answer = rest.run(f"get a log-stream token for container app {name}",
                      lambda: client.container_apps.get_auth_token(resource_group, name))
    return _token(answer, f"container app {name}")


def job_token(session: AzureSession, resource_group: str, name: str) -> str:
    answer = _send(session, "POST", _job_path(session, resource_group, name) + "/getAuthToken",
                   f"get a log-stream token for job {name}")
    return _token(answer, f"job {name}")


def executions(session: AzureSession, resource_group: str, name: str) -> list[dict[str, Any]]:
    client = session.client("apps")
    with translate_errors(f"list the executions of job {name}"):
        return [rest.to_rest(item) for item in client.jobs_executions.list(resource_group, name)]


def execution_replicas(session: AzureSession, resource_group: str, name: str, execution: str) -> list[dict[str, Any]]:
    path = f"{_job_path(session, resource_group, name)}/executions/{quote(execution)}/replicas"
    return _send(session, "GET", path, f"list the replicas of execution {execution}").get("value", [])


def stream_url(endpoint: str, resource_path: str, leaf: str) -> str:
    """A stream's URL from the endpoint Azure gave (a replica container's `logStreamEndpoint`,
    leaf "logstream"; an app's `eventStreamEndpoint`, leaf "eventstream"). It is used as it is
    when it already is the stream (ends in /<leaf>); otherwise, as az does with the endpoint it
    has, only its origin is kept (`base_url = endpoint[:endpoint.index("/subscriptions/")]`) and
    the resource's path is put under it."""
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        # The token goes wherever this URL points: only to an https host Azure named, nowhere else.
        raise OperationError(f"Azure gave an unusable log-stream endpoint ({parts.scheme}://{parts.hostname}).",
                             code="LogStreamUnavailable",
                             hint="Rerun; if it persists, use the Azure portal's Log stream.")
    if parts.path.rstrip("/").endswith("/" + leaf):
        return endpoint
    return f"https://{parts.netloc}{resource_path}/{leaf}"


def lines(target: Target, *, tail: int, follow: bool) -> Iterator[str]:
    """The stream's lines as they arrive; ends when Azure ends it (at once without follow)."""
    import requests  # deferred: start-up time

    params = {"tailLines": str(tail), "follow": "true" if follow else "false"}
    if not target.system:  # az: "only json logs supported for system logs"
        params["output"] = "text"
    try:
        response = requests.get(target.url, params=params, stream=True,
                                headers={"Authorization": f"Bearer {target.token}"},
                                timeout=(CONNECT_TIMEOUT, None if follow else READ_TIMEOUT))
    except requests.RequestException as exc:
        raise OperationError(f"Could not reach the log stream at {urlsplit(target.url).hostname}: "
                             f"{type(exc).__name__}.", code="LogStreamUnavailable",
                             hint="Check the network (HTTPS_PROXY) and rerun.") from None
    with response:
        if response.status_code in (401, 403):
            raise OperationError(
                f"Container Apps refused the log-stream token (HTTP {response.status_code}).",
                code="LogStreamTokenRefused",
                hint="The token lasts a short while: rerun. If it persists, your principal needs the "
                "getAuthToken action on the app (e.g. Contributor on the resource group).")
        if response.status_code == 404:
            raise OperationError("Container Apps has no log stream for that replica any more (HTTP 404): "
                                 "it was replaced or stopped.", code="LogStreamUnavailable",
                                 hint="Rerun to read the current replica.")
        if response.status_code >= 400:
            raise OperationError(f"The log stream answered HTTP {response.status_code}.",
                                 code="LogStreamUnavailable", hint="Rerun in a minute.")
        try:
            for raw in response.iter_lines():
                if raw:
                    yield raw.decode("utf-8", errors="replace")
        except requests.RequestException as exc:
            raise OperationError(f"The log stream broke off: {type(exc).__name__}.", code="LogStreamUnavailable",
                                 hint="Rerun to read it again.") from None


def _token(answer: dict[str, Any], what: str) -> str:
    token = str((answer.get("properties") or {}).get("token") or "")
    if not token:
        raise OperationError(f"Azure gave no log-stream token for the {what}.", code="LogStreamTokenMissing",
                             hint="Rerun in a minute.")
    register_secret(token)
    return token


def _job_path(session: AzureSession, resource_group: str, name: str) -> str:
    return (f"/subscriptions/{quote(session.subscription_id)}/resourceGroups/{quote(resource_group)}"
            f"/providers/Microsoft.App/jobs/{quote(name)}")


def _send(session: AzureSession, method: str, path: str, action: str) -> dict[str, Any]:
    from azure.core.exceptions import HttpResponseError, map_error
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat

    client = session.client("apps")
    with translate_errors(action):
        response = client.send_request(HttpRequest(method, path, params={"api-version": JOB_API_VERSION}))
        if response.status_code >= 400:
            map_error(response.status_code, response, {})
            raise HttpResponseError(response=response, error_format=ARMErrorFormat)
        return dict(response.json() or {})
