"""`mlflow-aca logs`: which stream to read (the server's console, Container Apps' system events,
the latest migration execution) and the errors a person can act on when there is none."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mlflow_aca.errors import NotDeployedError, OperationError
from mlflow_aca.resources.base import Context


def open_stream(ctx: Context, *, system: bool = False, job: bool = False, tail: int,
                follow: bool) -> tuple[dict[str, Any], Iterator[str]]:
    """What is read (for people and --json) and its lines; nothing is fetched until iterated."""
    from mlflow_aca.azure import logstream

    target, source = _job_target(ctx) if job else _app_target(ctx, system=system)
    return source, logstream.lines(target, tail=tail, follow=follow)


def _app_target(ctx: Context, *, system: bool) -> tuple[Any, dict[str, Any]]:
    from mlflow_aca.azure import apps, logstream

    session, group, name = ctx.session, ctx.names.resource_group, ctx.names.app
    state = logstream.app(session, group, name)
    if state is None:
        # The condition `status` and `env` report for a missing app: the same code and exit (4).
        raise NotDeployedError(f"The container app {name} is not deployed, so it has no logs to read.",
                               hint="Run `mlflow-aca up` (or `mlflow-aca deploy`).")
    props = state.get("properties") or {}
    if system:
        endpoint = props.get("eventStreamEndpoint")
        if not endpoint:
            raise OperationError(f"Azure shows no system log stream for the container app {name}.",
                                 code="LogStreamUnavailable", hint="Rerun in a minute.")
        url = logstream.stream_url(endpoint, f"/subscriptions/{ctx.subscription_id}/resourceGroups/{group}"
                                   f"/containerApps/{name}", "eventstream")
        return logstream.Target(url, logstream.app_token(session, group, name), system=True), \
            {"kind": "system", "app": name}
    revision = props.get("latestReadyRevisionName") or props.get("latestRevisionName")
    running = [r for r in (apps.replicas(session, group, name, revision) if revision else [])
               if (r.get("properties") or {}).get("containers")]
    if not running:
        raise OperationError(
            f"The container app {name} has no replica running (revision {revision or 'none'} is scaled to "
            "zero), so there is no server console to read.",
            code="NoReplicaRunning",
            hint="A request to the server starts a replica (e.g. `mlflow-aca status`); `mlflow-aca logs "
            "--system` shows Container Apps' own events meanwhile.")
    replica = _prefer_running(running)
    container = _container(replica, _app_container_name(props))
    resource = (f"/subscriptions/{ctx.subscription_id}/resourceGroups/{group}/containerApps/{name}"
                f"/revisions/{revision}/replicas/{replica['name']}/containers/{container['name']}")
    url = logstream.stream_url(str(container.get("logStreamEndpoint") or ""), resource, "logstream")
    token = logstream.app_token(session, group, name)
    return (logstream.Target(url, token),
            {"kind": "console", "app": name, "revision": revision, "replica": replica["name"],
             "container": container["name"]})


def _job_target(ctx: Context) -> tuple[Any, dict[str, Any]]:
    from mlflow_aca.azure import logstream

    session, group, name = ctx.session, ctx.names.resource_group, ctx.names.job
    if logstream.job(session, group, name) is None:
        raise NotDeployedError(f"The migration job {name} is not deployed, so it has no logs to read.",
                               hint="Run `mlflow-aca up` (or `mlflow-aca deploy`).")
    runs = logstream.executions(session, group, name)
    if not runs:
        raise OperationError(f"The migration job {name} has not run yet.", code="NoExecution",
                             hint="`mlflow-aca deploy` runs it before each new revision.")
    latest = max(runs, key=lambda run: str((run.get("properties") or {}).get("startTime") or ""))
    execution, status = latest["name"], (latest.get("properties") or {}).get("status")
    replicas = [r for r in logstream.execution_replicas(session, group, name, execution)
                if (r.get("properties") or {}).get("containers")]
    if not replicas:
        raise OperationError(
            f"The latest migration execution {execution} ({status}) has no replica left to read logs from.",
            code="NoReplicaRunning",
            hint="Read it in the Log Analytics workspace (ContainerAppConsoleLogs_CL), or rerun "
            "`mlflow-aca deploy` to run the migration again.")
    replica = _prefer_running(replicas)
    container = _container(replica, None)
    resource = (f"/subscriptions/{ctx.subscription_id}/resourceGroups/{group}/jobs/{name}/executions/{execution}"
                f"/replicas/{replica['name']}/containers/{container['name']}")
    url = logstream.stream_url(str(container.get("logStreamEndpoint") or ""), resource, "logstream")
    token = logstream.job_token(session, group, name)
    return (logstream.Target(url, token),
            {"kind": "job", "job": name, "execution": execution, "status": status, "replica": replica["name"],
             "container": container["name"]})


def _prefer_running(replicas: list[dict[str, Any]]) -> dict[str, Any]:
    return next((r for r in replicas if (r.get("properties") or {}).get("runningState") == "Running"), replicas[0])


def _container(replica: dict[str, Any], wanted: str | None) -> dict[str, Any]:
    containers = (replica.get("properties") or {}).get("containers") or []
    return next((c for c in containers if c.get("name") == wanted), containers[0])


def _app_container_name(props: dict[str, Any]) -> str | None:
    containers = (props.get("template") or {}).get("containers") or []
    return containers[0].get("name") if containers else None
