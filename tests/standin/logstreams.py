"""Container Apps' log streams: `getAuthToken` on apps and jobs, a job execution's replicas, and
the streams themselves as virtual hosts of the HTTPS proxy.

What a client sees (sources: azure-cli containerapp/custom.py `stream_containerapp_logs` and
`stream_environment_logs`; azure-cli-extensions containerapp/_clients.py
`ContainerAppsJobPreviewClient`; Microsoft.App ContainerApps_GetAuthToken, Replicas_Get):
- `POST .../containerApps/{app}/getAuthToken` and `POST .../jobs/{job}/getAuthToken` answer
  `{id, name, type: .../accesstoken, location, properties: {token, expires}}`.
- a replica container's `logStreamEndpoint` (containerapps.py `_sync_replicas`) names the host
  `<revision>.logstream.azurecontainerapps.dev`; the client GETs
  `/subscriptions/{sub}/resourceGroups/{rg}/containerApps/{app}/revisions/{rev}/replicas/{replica}/
  containers/{container}/logstream?tailLines=N&follow=true|false&output=text` there with
  `Authorization: Bearer <token>`. A job execution's replica carries the full URL (host
  `<execution>.logstream.azurecontainerapps.dev`, path .../jobs/{job}/executions/{e}/replicas/...).
- system events: the app's `eventStreamEndpoint` (`<location>.azurecontainerapps.dev/.../
  containerApps/{app}/eventstream`), one JSON document per line.

Stricter where unverified: the token opens only the streams of the resource it was issued for
(401 otherwise, and always after `refuse_log_tokens`); the host must be the one the endpoint named; an
unknown replica or container is 404. Whether Azure keeps a finished execution's replica readable is
not documented: here it stays (as Kubernetes keeps a finished Job's pod) and its stream ends after
the recorded lines.

Content: lines fed with the control `append_app_logs(resource_id, lines, system=False)` (an app or a
job execution id; e.g. a replayed container's output), else a few lines like Container Apps'. A
followed stream stays open and sends lines as they are appended, until the client leaves (or, for
a job, the execution ends).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
from typing import TYPE_CHECKING, Iterator
from urllib.parse import parse_qsl, unquote, urlsplit

from .arm import Request, Response, not_found
from .proxy import VirtualHost
from .resources import RG_PREFIX
from .store import now_iso
from .providers import aca_common as common

if TYPE_CHECKING:
    from .app import StandinApp

TOKEN_LIFETIME = 3600
JOB_VERSIONS = common.VERSIONS | {"2023-11-02-preview"}   # what az's job log client sends
LOGSTREAM_SUFFIX = ".logstream.azurecontainerapps.dev"
EVENTSTREAM_SUFFIX = ".azurecontainerapps.dev"
TICK = 0.25   # how often a followed stream looks for new lines and for a client that left

_CONSOLE = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/(?P<kind>containerApps|jobs)/"
                      r"(?P<name>[^/]+)/(?:revisions|executions)/(?P<run>[^/]+)/replicas/(?P<replica>[^/]+)/"
                      r"containers/(?P<container>[^/]+)/logstream$", re.IGNORECASE)
_EVENTS = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/containerApps/(?P<name>[^/]+)"
                     r"/eventstream$", re.IGNORECASE)


class LogState:
    """Tokens issued and lines fed; kept in the store so `reset` forgets them."""

    def __init__(self) -> None:
        self.tokens: dict[str, tuple[str, float]] = {}   # token -> (lower resource id, expires)
        self.lines: dict[str, list[str]] = {}            # "<lower id>|console" or "|system" -> lines
        self.changed = threading.Condition()
        self.refused = False                              # refuse_log_tokens: every token answers 401


def state(app: "StandinApp") -> LogState:
    with app.store.lock:
        found = getattr(app.store, "log_state", None)
        if found is None:
            found = app.store.log_state = LogState()
        return found


def append(app: "StandinApp", resource_id: str, lines: list[str], *, system: bool = False) -> None:
    logs = state(app)
    with logs.changed:
        logs.lines.setdefault(f"{resource_id.lower()}|{'system' if system else 'console'}", []).extend(
            str(line) for line in lines)
        logs.changed.notify_all()


def refuse(app: "StandinApp", refused: bool = True) -> None:
    state(app).refused = refused


def issued(app: "StandinApp") -> list[str]:
    return list(state(app).tokens)


# -- ARM -------------------------------------------------------------------------------------------
def _issue(app: "StandinApp", req: Request, kind: str) -> Response:
    app.require_scope(req)
    rid = f"{app.group_id(req.params['resourceGroupName'])}/providers/Microsoft.App/{kind}/{req.params['name']}"
    res = app.store.get(rid)
    if res is None:
        raise not_found("ResourceNotFound", f"The Resource 'Microsoft.App/{kind}/{req.params['name']}' under resource "
                        f"group '{req.params['resourceGroupName']}' was not found.")
    token = secrets.token_urlsafe(48)
    expires = time.time() + TOKEN_LIFETIME
    state(app).tokens[token] = (res.id.lower(), expires)
    return Response(200, {"id": res.id, "name": res.doc["name"], "type": f"Microsoft.App/{kind}/accesstoken",
                          "location": res.doc.get("location"),
                          "properties": {"token": token, "expires": time.strftime(
                              "%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))}})


def _execution_replicas(app: "StandinApp", req: Request) -> Response:
    app.require_scope(req)
    job_id = f"{app.group_id(req.params['resourceGroupName'])}/providers/Microsoft.App/jobs/{req.params['name']}"
    execution = app.store.get(f"{job_id}/executions/{req.params['executionName']}")
    if app.store.get(job_id) is None or execution is None:
        raise not_found("ResourceNotFound", f"Job execution '{req.params['executionName']}' was not found.")
    return Response(200, {"value": [execution_replica(app, execution)]})


def execution_replica(app: "StandinApp", execution) -> dict:
    running = execution.properties.get("status") == "Running"
    name = f"{execution.doc['name']}-{hashlib.sha1(execution.id.encode()).hexdigest()[:5]}"
    rid = f"{execution.id}/replicas/{name}"
    path = rid.replace("/providers/Microsoft.App", "")
    return {"id": rid, "name": name, "type": "Microsoft.App/jobs/executions/replicas", "properties": {
        "createdTime": execution.properties.get("startTime"), "runningState": "Running" if running else "NotRunning",
        "containers": [{"name": c["name"], "ready": running, "started": True, "restartCount": 0,
                        "runningState": "Running" if running else "Terminated",
                        "logStreamEndpoint": f"https://{execution.doc['name']}{LOGSTREAM_SUFFIX}{path}/containers/"
                                             f"{c['name']}/logstream"}
                       for c in (execution.properties.get("template") or {}).get("containers", [])]}}


# -- the streams -------------------------------------------------------------------------------------
def _resolve(app: "StandinApp", host: str) -> VirtualHost | None:
    if not host.endswith(EVENTSTREAM_SUFFIX):
        return None
    return VirtualHost(handle=lambda method, target, headers, body: _serve(app, host, method, target, headers))


def _serve(app: "StandinApp", host: str, method: str, target: str, headers: dict):
    parts = urlsplit(target)
    req = Request(method=method, path=parts.path, query=dict(parse_qsl(parts.query)), headers=headers, body=None,
                  base_url=f"https://{host}", raw_query=parts.query)
    answer: dict = {}

    def handler(request: Request) -> Response:
        status, payload = _stream(app, host, request)
        answer.update(status=status, payload=payload)
        return Response(status)

    response = app.serve_data_plane(req, handler)
    if not answer:   # a fault answered
        return response.status, json.dumps(response.body or {}).encode(), {"Content-Type": "application/json"}
    content = "text/plain; charset=utf-8" if answer["status"] == 200 else "application/json"
    return answer["status"], answer["payload"], {"Content-Type": content}


def _stream(app: "StandinApp", host: str, req: Request):
    if req.method != "GET":
        return 405, _error("MethodNotAllowed", "Only GET reads a log stream.")
    path = unquote(req.path)
    console, events = _CONSOLE.match(path), _EVENTS.match(path)
    match = console or events
    if match is None:
        return 404, _error("NotFound", "No log stream at this path.")
    kind = match["kind"] if console else "containerApps"
    owner = (f"{app.group_id(match['rg'])}/providers/Microsoft.App/{kind}/{match['name']}").lower()
    header = req.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    grant = state(app).tokens.get(token.strip()) if scheme.lower() == "bearer" else None
    if grant is None or grant[0] != owner or grant[1] < time.time() or state(app).refused:
        return 401, _error("Unauthorized", "The log-stream token is missing, expired or not for this resource.")
    tail = req.query.get("tailLines", "20")
    if not tail.isdigit() or int(tail) > 300:
        return 400, _error("BadRequest", "tailLines must be between 0 and 300.")
    follow = req.query.get("follow", "false").lower() == "true"
    with app.store.lock:
        app.store.settle()
        if console:
            found = _console_source(app, host, owner, match)
        else:
            found = _system_source(app, host, owner, match)
    if found is None:
        return 404, _error("NotFound", "No such replica or container.")
    key, header_lines, default, ended = found
    return 200, _lines(app, key, header_lines, default, int(tail), follow, ended)


def _console_source(app: "StandinApp", host: str, owner: str, match):
    rid = f"{owner}/{'revisions' if match['kind'].lower() == 'containerapps' else 'executions'}/{match['run']}"
    run = app.store.get(rid)
    if run is None or host != f"{match['run'].lower()}{LOGSTREAM_SUFFIX}":
        return None
    if match["kind"].lower() == "containerapps":
        replica = app.store.get(f"{rid}/replicas/{match['replica']}")
        containers = ((replica.properties if replica else {}).get("containers")) or []
        key, ended = owner, lambda: False
        default = _server_lines()
    else:
        shown = execution_replica(app, run)
        containers = shown["properties"]["containers"] if shown["name"].lower() == match["replica"].lower() else []
        key = rid.lower()
        ended = lambda: run.properties.get("status") != "Running"   # noqa: E731
        default = _migration_lines()
    if not any(c["name"].lower() == match["container"].lower() for c in containers):
        return None
    intro = [f"{now_iso()} Connecting to the container '{match['container']}'...",
             f"{now_iso()} Successfully Connected to container: '{match['container']}' "
             f"[Revision: '{match['run']}', Replica: '{match['replica']}']"]
    return f"{key}|console", intro, default, ended


def _system_source(app: "StandinApp", host: str, owner: str, match):
    res = app.store.get(owner)
    if res is None or urlsplit(res.properties.get("eventStreamEndpoint", "")).hostname != host:
        return None
    revision = res.properties.get("latestRevisionName") or ""
    default = [json.dumps({"TimeStamp": now_iso(), "Type": "Normal", "ContainerAppName": res.doc["name"],
                           "RevisionName": revision, "ReplicaName": "", "Msg": message, "Reason": reason,
                           "EventSource": "ContainerAppController", "Count": 1})
               for reason, message in (("RevisionReady", f"Revision ready: {revision}"),
                                       ("ContainerAppReady", "Container App is ready"))]
    return f"{owner}|system", [], default, lambda: False


def _lines(app: "StandinApp", key: str, intro: list[str], default: list[str], tail: int, follow: bool,
           ended) -> Iterator[bytes]:
    logs = state(app)
    with logs.changed:
        fed = logs.lines.get(key)
        recorded = list(fed) if fed is not None else list(default)
        sent = len(fed or [])
    for line in intro + (recorded[-tail:] if tail else []):
        yield (line + "\n").encode()
    while follow:
        with logs.changed:
            logs.changed.wait(TICK)
            fresh = logs.lines.get(key, [])[sent:]
            sent += len(fresh)
        for line in fresh:
            yield (line + "\n").encode()
        if not fresh:
            with app.store.lock:
                app.store.settle()
                if ended():
                    return
            yield b""    # a tick: the proxy checks whether the client is still there


def _server_lines() -> list[str]:
    return ["[INFO] Starting gunicorn 23.0.0", "[INFO] Listening at: http://0.0.0.0:5000 (1)",
            "[INFO] Using worker: sync", "[INFO] Booting worker with pid: 7"]


def _migration_lines() -> list[str]:
    return ["INFO  [alembic.runtime.migration] Context impl MSSQLImpl.",
            "INFO  [alembic.runtime.migration] Will assume transactional DDL.",
            "Database schema is up to date."]


def _error(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def register(app: "StandinApp") -> None:
    add = app.router.add
    opts = dict(versions=common.VERSIONS, namespace=common.NAMESPACE, type_name="containerApps")
    job_opts = dict(versions=JOB_VERSIONS, namespace=common.NAMESPACE, type_name="jobs")
    add("POST", RG_PREFIX + "/providers/Microsoft.App/containerApps/{name}/getAuthToken",
        lambda r: _issue(app, r, "containerApps"), **opts)
    add("POST", RG_PREFIX + "/providers/Microsoft.App/jobs/{name}/getAuthToken", lambda r: _issue(app, r, "jobs"),
        **job_opts)
    add("GET", RG_PREFIX + "/providers/Microsoft.App/jobs/{name}/executions/{executionName}/replicas",
        lambda r: _execution_replicas(app, r), **job_opts)
    app.hosts.append(lambda host: _resolve(app, host))
