"""ACR Tasks quick runs (what `az acr build` does), through azure-mgmt-containerregistrytasks,
and the two blob transfers around a run: the source archive up, the run log down.

The sequence: `registries.get_build_source_upload_url` → upload the tar.gz to that SAS URL →
POST `scheduleRun` with a DockerBuildRequest (answered with the queued Run, at once or through a
long-running operation: see `schedule_docker_build`) → `runs.get_log_sas_url` and read the log
blob while it grows, until its metadata carries `Complete` → `runs.get` for the final status and
the pushed image's digest.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from mlflow_aca.azure import rest
from mlflow_aca.azure.errors import DEFAULT_HINT, is_not_found, translate_errors
from mlflow_aca.azure.session import AzureSession
from mlflow_aca.errors import OperationError

TASKS_NOT_ALLOWED = "TasksOperationsNotAllowed"
# The api-version azure-mgmt-containerregistrytasks 1.0.0b1 sends for every Tasks call.
API_VERSION = "2025-03-01-preview"
# How long Azure may take to queue a run answered 202 (not the build itself, which is followed
# through its log with the caller's own deadline).
QUEUE_TIMEOUT = 600.0


def upload_source(session: AzureSession, resource_group: str, registry: str, archive: bytes) -> str:
    """Upload the build context; return the relative path a run names as its source."""
    from azure.storage.blob import BlobClient

    client = session.client("registry_tasks")
    target = rest.run(f"get a source upload URL from the registry {registry}",
                      lambda: client.registries.get_build_source_upload_url(resource_group, registry))
    with translate_errors("upload the build context"):
        with BlobClient.from_blob_url(target["uploadUrl"]) as blob:
            blob.upload_blob(archive, overwrite=True)
    return str(target["relativePath"])


def schedule_docker_build(session: AzureSession, resource_group: str, registry: str, *, source: str,
                          dockerfile: str, images: list[str], no_cache: bool,
                          build_args: dict[str, str]) -> dict[str, Any]:
    """Queue a Linux/amd64 build that pushes `images` (repository:tag, in this registry)."""
    from azure.mgmt.containerregistrytasks.models import Argument, DockerBuildRequest, PlatformProperties

    request = DockerBuildRequest(
        docker_file_path=dockerfile,
        platform=PlatformProperties(os="Linux", architecture="amd64"),
        image_names=images,
        is_push_enabled=True,
        no_cache=no_cache,
        source_location=source,
        # Secret: ACR keeps secret arguments out of the run log (a proxy URL may carry a password).
        arguments=[Argument(name=k, value=v, is_secret=True) for k, v in build_args.items()],
    )
    # Registries_ScheduleRun answers 200 with the Run (2025-03-01-preview spec) but is declared
    # `x-ms-long-running-operation` with 200 and 202 in 2019-06-01-preview (azure-rest-api-specs,
    # containerregistry_build.json). The generated `schedule_run` of 1.0.0b1 accepts only 200 and
    # would report a 202 as an error, so the request goes through the client's pipeline
    # (`send_request`: same credential, retries and proxy) and a 202 is followed to its Run.
    client = session.client("registry_tasks")
    path = (f"/subscriptions/{quote(session.subscription_id)}/resourceGroups/{quote(resource_group)}/providers/"
            f"Microsoft.ContainerRegistry/registries/{quote(registry)}/scheduleRun")
    with translate_errors(f"schedule a build in the registry {registry}"):
        answer = _send(client, "POST", path, request.as_dict())
        if answer.status_code == 202:
            return _accepted_run(client, answer, interval=session.poll_interval)
        return dict(answer.json())


def _send(client: Any, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    """One request through the SDK client's pipeline; Azure's errors raised as the SDK raises them."""
    from azure.core.exceptions import HttpResponseError, map_error
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat

    params = {} if "api-version=" in url else {"api-version": API_VERSION}
    response = client.send_request(HttpRequest(method, url, params=params, json=body))
    if response.status_code >= 400:
        map_error(response.status_code, response, _error_map())
        raise HttpResponseError(response=response, error_format=ARMErrorFormat)
    return response


def _accepted_run(client: Any, accepted: Any, *, interval: float) -> dict[str, Any]:
    """Follow a 202 the way ARM's asynchronous-operation protocol says (learn.microsoft.com,
    azure-resource-manager/management/async-operations): poll Azure-AsyncOperation until its
    status is terminal, then read the result from Location, which answers 202 until it is ready."""
    status_link = accepted.headers.get("Azure-AsyncOperation")
    result_link = accepted.headers.get("Location")
    if not (status_link or result_link):
        raise OperationError("ACR Tasks accepted the run (HTTP 202) but gave no link to follow it.",
                             code="RunNotQueued", hint="Rerun; the run may also appear in the registry's Runs.")
    deadline = time.monotonic() + QUEUE_TIMEOUT
    answer = accepted
    while status_link:
        _wait(answer, interval, deadline)
        answer = _send(client, "GET", status_link)
        document = answer.json() or {}
        status = str(document.get("status") or "").lower()
        if status == "succeeded":
            break
        if status in ("failed", "canceled", "cancelled"):
            error = document.get("error") or {}
            raise OperationError(f"ACR Tasks did not queue the run: {error.get('message') or status} "
                                 f"({error.get('code') or document.get('status')}).",
                                 code=str(error.get("code") or "RunNotQueued"), hint=DEFAULT_HINT)
    while result_link:
        answer = _send(client, "GET", result_link)
        if answer.status_code != 202:
            return dict(answer.json())
        _wait(answer, interval, deadline)
    raise OperationError("ACR Tasks queued the run but gave no link to read it from.", code="RunNotQueued",
                         hint="Find the run in the registry's Runs (`az acr task list-runs`).")


def _wait(answer: Any, interval: float, deadline: float) -> None:
    """Sleep as the last answer's Retry-After asks (else the session's poll interval); raise once
    the deadline has passed."""
    if time.monotonic() > deadline:
        raise OperationError("ACR Tasks had not queued the run when the time allowed ran out.",
                             code="RunNotQueued", hint=DEFAULT_HINT)
    try:
        time.sleep(float(answer.headers.get("Retry-After", interval)))
    except ValueError:  # an HTTP date instead of seconds
        time.sleep(interval)


def _error_map() -> dict[int, Any]:
    from azure.core.exceptions import ClientAuthenticationError, ResourceExistsError, ResourceNotFoundError

    # What the generated operations map (azure-mgmt-containerregistrytasks 1.0.0b1 schedule_run).
    return {401: ClientAuthenticationError, 404: ResourceNotFoundError, 409: ResourceExistsError}


def get_run(session: AzureSession, resource_group: str, registry: str, run_id: str) -> dict[str, Any]:
    client = session.client("registry_tasks")
    return rest.run(f"read run {run_id}", lambda: client.runs.get(resource_group, registry, run_id))


def stream_log(session: AzureSession, resource_group: str, registry: str, run_id: str, *,
               interval: float, deadline: float) -> Iterator[str]:
    """The run's log text as it is written, until the log blob says the run is complete.

    Raises when `deadline` (time.monotonic()) passes first.
    """
    from azure.storage.blob import BlobClient

    client = session.client("registry_tasks")
    link = rest.run(f"get the log link of run {run_id}",
                    lambda: client.runs.get_log_sas_url(resource_group, registry, run_id))
    offset = 0
    with translate_errors(f"read the log of run {run_id}"), BlobClient.from_blob_url(link["logLink"]) as blob:
        while True:
            size, complete = _log_state(blob)
            if size > offset:
                data = blob.download_blob(offset=offset, length=size - offset).readall()
                offset += len(data)
                yield data.decode("utf-8", errors="replace")
            if complete:
                return
            if time.monotonic() > deadline:
                raise OperationError(f"Run {run_id} had not finished when the time allowed ran out.",
                                     code="RunTimeout", hint="Raise timeout_minutes, or follow the run in the "
                                     "Azure portal; it continues in Azure.")
            time.sleep(interval)


def _log_state(blob: Any) -> tuple[int, bool]:
    """(bytes written so far, whether the run is complete). A log not written yet is empty."""
    try:
        properties = blob.get_blob_properties()
    except Exception as exc:  # noqa: BLE001 - only "not there yet" is expected; the rest propagates
        if is_not_found(exc):
            return 0, False
        raise
    complete = any(key.lower() == "complete" for key in (properties.metadata or {}))
    return int(properties.size or 0), complete
