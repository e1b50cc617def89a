"""ACR Tasks quick runs (`az acr build`): upload URL, scheduleRun, run status and run log.

The sequence a client follows: `listBuildSourceUploadUrl` → Put Blob of the source archive to
that SAS URL (blobs.py) → `scheduleRun` with a `DockerBuildRequest` naming the uploaded
`sourceLocation` → `runs/{runId}/listLogSasUrl` and read the log blob until its metadata says
`Complete` → `runs/{runId}` for the final status and the pushed images' digests.

Nothing is built: the run reads the Dockerfile from the uploaded archive (a missing one fails
the run as ACR would) and writes a log shaped like ACR's, one line per Dockerfile instruction,
revealed over the run's duration (the latency model's `runs`; instant at latency 0). A run
succeeds unless an `lro_failed` fault matched its `scheduleRun` (the run then fails with that
fault's message). `tasks_not_allowed()` in faults.py is the refusal free-trial subscriptions get.

`scheduleRun` answers 200 with the queued Run, as the 2025-03-01-preview spec lists; an `accepted`
fault (`schedule_run_accepted()`) makes it answer 202 with Location and Azure-AsyncOperation
instead, the form the 2019-06-01-preview spec allows (`x-ms-long-running-operation`, 200/202);
the Location link then answers the Run.
"""

from __future__ import annotations

import hashlib
import io
import math
import tarfile
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import blobs
from ..arm import Request, Response, bad_request, not_found
from ..store import Resource, _iso
from .registry import NAMESPACE, REGISTRY_TYPE

if TYPE_CHECKING:
    from ..app import StandinApp

VERSIONS = frozenset({"2019-06-01-preview", "2025-03-01-preview"})
RUN_TYPE = "Microsoft.ContainerRegistry/registries/runs"
_REGISTRY = ("/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/"
             "Microsoft.ContainerRegistry/registries/{registryName}")
OS_VALUES = {"linux": "Linux", "windows": "Windows"}
ARCHITECTURES = {"amd64", "x86", "386", "arm", "arm64"}
SOURCE_CONTAINER = "source"
LOG_CONTAINER = "logs"


@dataclass
class RunState:
    """A run's course: revealed over `duration` seconds from `created`."""

    resource: Resource
    login_server: str
    images: list[str]
    push: bool
    created: float
    duration: float
    steps: list[str]
    failure: str | None = None
    digest: str = field(default_factory=lambda: "sha256:" + hashlib.sha256(uuid.uuid4().bytes).hexdigest())

    @property
    def run_id(self) -> str:
        return self.resource.doc["name"]

    def elapsed(self) -> float:
        return time.time() - self.created

    def done(self) -> bool:
        return self.elapsed() >= self.duration

    def status(self) -> str:
        if self.done():
            return "Failed" if self.failure else "Succeeded"
        return "Running" if self.elapsed() >= self.duration * 0.1 else "Queued"

    def log_lines(self) -> list[str]:
        started = _stamp(self.created)
        lines = [f"{started} Downloading source code...", f"{started} Finished downloading source code",
                 f"{started} Logging in to registry: {self.login_server}",
                 f"{started} Successfully logged into {self.login_server}",
                 f"{started} Executing step ID: build. Timeout(sec): 28800, Working directory: '', Network: ''",
                 "Sending build context to Docker daemon  4.096kB"]
        lines += self.steps
        tagged = [f"{self.login_server}/{image}" for image in self.images]
        if self.failure:
            lines += [self.failure, f"{_stamp(time.time())} Container failed during run: build. No retries remaining.",
                      "failed to run step ID: build: exit status 1", "",
                      f"Run ID: {self.run_id} failed after {self.duration:.0f}s. Error: failed during run, "
                      "err: exit status 1"]
            return lines
        lines += ["Successfully built 0123456789ab"] + [f"Successfully tagged {t}" for t in tagged]
        if self.push:
            for t in tagged:
                lines += [f"{_stamp(time.time())} Pushing image: {t}, attempt 1",
                          f"{t.rsplit(':', 1)[-1]}: digest: {self.digest} size: 2417",
                          f"{_stamp(time.time())} Successfully pushed image: {t}"]
        lines += ["", f"Run ID: {self.run_id} was successful after {self.duration:.0f}s"]
        return lines

    def log(self) -> tuple[bytes, dict[str, str]]:
        """The log blob as it is now: the part written so far; `Complete` once the run ended."""
        lines = self.log_lines()
        if self.done():
            return ("\r\n".join(lines) + "\r\n").encode(), {"Complete": "failed" if self.failure else "successful"}
        shown = lines[:math.floor(len(lines) * self.elapsed() / self.duration)]
        return ("".join(line + "\r\n" for line in shown)).encode(), {}

    def render(self) -> dict:
        doc = {**self.resource.doc, "properties": dict(self.resource.properties)}
        props = doc["properties"]
        props["status"] = self.status()
        props["lastUpdatedTime"] = _iso(min(time.time(), self.created + self.duration))
        if self.status() != "Queued":
            props["startTime"] = _iso(self.created + self.duration * 0.1)
        if self.done():
            props["finishTime"] = _iso(self.created + self.duration)
            if self.failure:
                props["runErrorMessage"] = "failed during run, err: exit status 1"
            elif self.push:
                props["outputImages"] = [
                    {"registry": self.login_server, "repository": image.rsplit(":", 1)[0],
                     "tag": image.rsplit(":", 1)[1] if ":" in image else "latest", "digest": self.digest}
                    for image in self.images]
        return doc


def register(app: "StandinApp") -> None:
    opts = dict(versions=VERSIONS, namespace=NAMESPACE, type_name="registries")
    app.router.add("POST", _REGISTRY + "/listBuildSourceUploadUrl", lambda r: upload_url(app, r), **opts)
    app.router.add("POST", _REGISTRY + "/scheduleRun", lambda r: schedule_run(app, r), **opts)
    app.router.add("GET", _REGISTRY + "/runs", lambda r: list_runs(app, r), **opts)
    app.router.add("GET", _REGISTRY + "/runs/{runId}", lambda r: get_run(app, r), **opts)
    app.router.add("POST", _REGISTRY + "/runs/{runId}/listLogSasUrl", lambda r: log_url(app, r), **opts)
    blobs.register(app)


def _registry(app: "StandinApp", req: Request) -> Resource:
    group = app.require_scope(req)
    name = req.params["registryName"]
    res = app.store.get(f"{group.id}/providers/{NAMESPACE}/registries/{name}")
    if res is None:
        raise not_found("ResourceNotFound", f"The Resource '{REGISTRY_TYPE}/{name}' under resource group "
                        f"'{req.params['resourceGroupName']}' was not found.")
    return res


def upload_url(app: "StandinApp", req: Request) -> Response:
    registry = _registry(app, req)
    relative = f"{SOURCE_CONTAINER}/{time.strftime('%Y%m%d%H%M', time.gmtime())}/{uuid.uuid4()}.tar.gz"
    url = blobs.grant(app, _container(registry), relative, "cw")
    return Response(200, {"uploadUrl": url, "relativePath": relative})


def schedule_run(app: "StandinApp", req: Request) -> Response:
    registry = _registry(app, req)
    body = req.body if isinstance(req.body, dict) else {}
    if body.get("type") != "DockerBuildRequest":
        raise bad_request("InvalidRunRequest", f"The run request type '{body.get('type')}' is not supported here "
                          "(the stand-in serves DockerBuildRequest).")
    dockerfile = body.get("dockerFilePath")
    if not dockerfile:
        raise bad_request("InvalidRunRequest", "The property 'dockerFilePath' is required.")
    platform = body.get("platform") or {}
    if str(platform.get("os", "")).lower() not in OS_VALUES:
        raise bad_request("InvalidRunRequest", "The property 'platform.os' must be Linux or Windows.")
    if platform.get("architecture") and str(platform["architecture"]).lower() not in ARCHITECTURES:
        raise bad_request("InvalidRunRequest", f"The architecture '{platform['architecture']}' is not supported.")
    images = list(body.get("imageNames") or [])
    if body.get("isPushEnabled") and not images:
        raise bad_request("InvalidRunRequest", "Push is enabled but no image names were given.")
    source = body.get("sourceLocation") or ""
    archive = blobs.uploaded(app, _container(registry), source)
    if archive is None:
        raise bad_request("InvalidSourceLocation", f"The source location '{source}' was not found: upload the "
                          "source to the URL from listBuildSourceUploadUrl first.")
    steps, problem = _dockerfile_steps(archive, dockerfile)
    # An `accepted` fault marks the request as lro_failed ones do (faults.py); it is no failure.
    accepted = req.fault == "accepted"
    failure = problem or (req.lro_failure[1] if req.lro_failure and not accepted else None)
    run_number = 1 + sum(1 for r in app.store.of_type(RUN_TYPE, registry.id))
    run_id = f"ca{run_number}"
    now = time.time()
    res = Resource(f"{registry.id}/runs/{run_id}", RUN_TYPE, {
        "id": f"{registry.id}/runs/{run_id}", "name": run_id, "type": RUN_TYPE,
        "properties": {"runId": run_id, "runType": "QuickRun", "createTime": _iso(now), "isArchiveEnabled": False,
                       "platform": {"os": OS_VALUES[str(platform['os']).lower()],
                                    "architecture": platform.get("architecture") or "amd64"},
                       "agentConfiguration": {"cpu": 2}, "provisioningState": "Succeeded"}})
    app.store.put(res)
    state = RunState(resource=res, login_server=registry.properties["loginServer"], images=images,
                     push=bool(body.get("isPushEnabled")), created=now,
                     duration=app.latency.seconds("runs"), steps=steps, failure=failure)
    if state.push and not failure:
        # The pushed image lands in the registry the stand-in's pulls and image checks read
        # (registry_catalog.py). Already now rather than when the run ends: clients wait for the
        # run's end before they use the image, and the log shows the digest while it runs.
        from .. import registry_catalog

        digests = [registry_catalog.add_image(app, f"{state.login_server}/{image}")["digest"] for image in images]
        state.digest = digests[0]
    app.store.runs[res.id.lower()] = state
    if accepted:
        return _accepted(app, req, registry, state)
    return Response(200, state.render())


def _accepted(app: "StandinApp", req: Request, registry: Resource, state: RunState) -> Response:
    """202 with both polling links; the operation ends at once (scheduling is quick, the run itself
    goes on), the Location link then answering the Run as it is."""
    # No measured figure for how long Azure takes to queue a run: the latency of a job start.
    op = app.begin_operation(req, state.resource.id, "action", "jobStart")
    op.failure = None
    op.result = state.render
    location = registry.doc.get("location") or "global"
    return Response(202, None, {
        "Location": app.operation_url(req, op, NAMESPACE, location, "operationResults"),
        "Azure-AsyncOperation": app.operation_url(req, op, NAMESPACE, location, "operationStatuses"),
        "Retry-After": "0"})


def get_run(app: "StandinApp", req: Request) -> Response:
    return Response(200, _run(app, req).render())


def list_runs(app: "StandinApp", req: Request) -> Response:
    registry = _registry(app, req)
    runs = [app.store.runs[r.id.lower()] for r in app.store.of_type(RUN_TYPE, registry.id)]
    return Response(200, {"value": [run.render() for run in runs]})


def log_url(app: "StandinApp", req: Request) -> Response:
    run = _run(app, req)
    registry = _registry(app, req)
    url = blobs.grant(app, LOG_CONTAINER, f"{registry.doc['name'].lower()}/{run.run_id}/rawtext.log", "r",
                      content=run.log)
    return Response(200, {"logLink": url, "logArtifactLink": None})


def _run(app: "StandinApp", req: Request) -> RunState:
    registry = _registry(app, req)
    state = app.store.runs.get(f"{registry.id}/runs/{req.params['runId']}".lower())
    if state is None:
        raise not_found("ResourceNotFound", f"The run '{req.params['runId']}' was not found.")
    return state


def _container(registry: Resource) -> str:
    # Each registry's sources live apart: a source uploaded for one cannot be built by another.
    return f"{SOURCE_CONTAINER}-{registry.doc['name'].lower()}"


def _dockerfile_steps(archive: bytes, path: str) -> tuple[list[str], str | None]:
    """The build's `Step i/n : INSTRUCTION` lines, or the error a missing Dockerfile gives."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            member = tar.extractfile(path[2:] if path.startswith("./") else path)
            text = member.read().decode("utf-8", errors="replace") if member else None
    except (tarfile.TarError, KeyError, OSError):
        text = None
    if text is None:
        return [], (f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                    f"lstat /workspace/{path}: no such file or directory")
    instructions, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        current = f"{current} {line[:-1].strip()}" if line.endswith("\\") else f"{current} {line}"
        if not line.endswith("\\"):
            instructions.append(" ".join(current.split()))
            current = ""
    total = len(instructions)
    steps = []
    for index, instruction in enumerate(instructions, 1):
        steps += [f"Step {index}/{total} : {instruction}", " ---> Running in 5c0ffee0ba5e" if
                  instruction.upper().startswith("RUN") else " ---> 0123456789ab"]
    return steps, None


def _stamp(ts: float) -> str:
    return time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(ts))
