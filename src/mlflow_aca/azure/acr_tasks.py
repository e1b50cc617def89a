"""ACR Tasks quick runs (what `az acr build` does), through azure-mgmt-containerregistrytasks,
and the two blob transfers around a run: the source archive up, the run log down.

The sequence: `registries.get_build_source_upload_url` → upload the tar.gz to that SAS URL →
`registries.schedule_run(DockerBuildRequest)` (synchronous in 1.0.0b1: it answers the queued
Run) → `runs.get_log_sas_url` and read the log blob while it grows, until its metadata carries
`Complete` → `runs.get` for the final status and the pushed image's digest.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from mlflow_aca.azure import rest
from mlflow_aca.azure.errors import is_not_found, translate_errors
from mlflow_aca.azure.session import AzureSession
from mlflow_aca.errors import OperationError

TASKS_NOT_ALLOWED = "TasksOperationsNotAllowed"


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
    client = session.client("registry_tasks")
    return rest.run(f"schedule a build in the registry {registry}",
                    lambda: client.registries.schedule_run(resource_group, registry, request))


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
