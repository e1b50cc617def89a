"""Microsoft.App/jobs: Container Apps jobs, their start action and executions.

`start` completes once the execution has started (the LRO's final Location poll answers
`{name, id}`); the execution itself runs for the `jobExecutions` latency and then ends
Succeeded, or with the outcome a test set through `set_job_execution_outcome`, or Failed when its
images cannot be pulled at start (pulls.py).
"""

from __future__ import annotations

import copy
import random
import time
from typing import TYPE_CHECKING

from ..arm import Request, Response, bad_request, not_found
from ..resources import RG_PREFIX, PutContext, ResourceKind, check_enum, register_kind, resource_not_found
from ..store import Resource, now_iso
from . import aca_common as common
from . import pulls
from .msi import resolve_identity

if TYPE_CHECKING:
    from ..app import StandinApp

JOB_TYPE = "Microsoft.App/jobs"
EXECUTION_TYPE = "Microsoft.App/jobs/executions"


class Jobs(ResourceKind):
    namespace = common.NAMESPACE
    path = "jobs/{name}"
    versions = common.VERSIONS
    latency_key = "jobs"
    delete_lro = True

    def validate_name(self, name: str) -> None:
        common.check_app_name(name, "Job")

    def build(self, ctx: PutContext) -> dict:
        props, old = ctx.properties, ctx.old_properties
        env = common.environment(ctx, props.get("environmentId") or props.get("managedEnvironmentId"),
                                 old.get("environmentId"))
        identity = resolve_identity(ctx.app, ctx.body.get("identity"), ctx.id)
        config = copy.deepcopy(props.get("configuration") or {})
        template = copy.deepcopy(props.get("template") or {})
        trigger = check_enum(config.get("triggerType"), ["Manual", "Schedule", "Event"], "configuration.triggerType")
        if trigger is None:
            raise bad_request("InvalidParameterValue", "The property 'configuration.triggerType' is required.")
        timeout = config.get("replicaTimeout")
        if not isinstance(timeout, int) or timeout <= 0:
            raise bad_request("InvalidParameterValue",
                              "The property 'configuration.replicaTimeout' is required: a number of seconds above 0.")
        retries = config.setdefault("replicaRetryLimit", 0)
        if not isinstance(retries, int) or retries < 0:
            raise bad_request("InvalidParameterValue", "configuration.replicaRetryLimit must be 0 or more.")
        if trigger == "Manual":
            config["manualTriggerConfig"] = {"parallelism": 1, "replicaCompletionCount": 1,
                                             **(config.get("manualTriggerConfig") or {})}
        elif trigger == "Schedule" and not (config.get("scheduleTriggerConfig") or {}).get("cronExpression"):
            raise bad_request("InvalidParameterValue", "A Schedule job needs scheduleTriggerConfig.cronExpression.")
        elif trigger == "Event" and not config.get("eventTriggerConfig"):
            raise bad_request("InvalidParameterValue", "An Event job needs eventTriggerConfig.")
        config["triggerType"] = trigger
        shown = common.secrets(ctx, config, identity)
        names = {s["name"] for s in shown}
        config["secrets"] = shown
        config["registries"] = common.registries(config, names, identity)
        common.containers(template, names, workload_profiles=common.uses_workload_profiles(env), what="job")
        out = {"environmentId": env.id, "workloadProfileName": props.get("workloadProfileName"),
               "configuration": config, "template": template, "runningState": "Ready",
               "outboundIpAddresses": old.get("outboundIpAddresses") or
               [f"20.{random.randint(1, 250)}.{random.randint(1, 250)}.{random.randint(1, 250)}"],
               "eventStreamEndpoint": env.properties["eventStreamEndpoint"].replace(
                   f"managedEnvironments/{env.doc['name']}", f"jobs/{ctx.name}")}
        doc = {"properties": out}
        if identity:
            doc["identity"] = identity
        return doc


def _job(app: "StandinApp", kind: Jobs, req: Request) -> Resource:
    res = app.store.get(kind.resource_id(app, req.params, app.require_scope(req)))
    if res is None:
        raise resource_not_found(kind, req.params["name"], req)
    return res


def start(app: "StandinApp", kind: Jobs, req: Request) -> Response:
    job = _job(app, kind, req)
    template = copy.deepcopy(job.properties["template"])
    override = req.body if isinstance(req.body, dict) else {}
    if override.get("containers"):
        secret_names = {s["name"] for s in job.properties["configuration"].get("secrets", [])}
        common.containers({"containers": override["containers"]}, secret_names, workload_profiles=True, what="job")
        template = {**template, **override}
    name = f"{job.doc['name']}-{''.join(random.choices('abcdefghijklmnopqrstuvwxyz0123456789', k=7))}"
    rid = f"{job.id}/executions/{name}"
    execution = app.store.put(Resource(rid, EXECUTION_TYPE, {"id": rid, "name": name, "type": EXECUTION_TYPE,
                                                             "properties": {"status": "Running",
                                                                            "startTime": now_iso(),
                                                                            "template": template}}))
    outcome = app.store.job_outcomes.get(job.id.lower(), "Succeeded")
    run = app.store.new_operation(rid, "action", app.latency.seconds("jobExecutions"))
    # The execution's replica pulls its images when it starts: a pull that fails then (tag absent,
    # no pull rights, rights not yet propagated) ends the execution Failed (pulls.py).
    pull = pulls.check(app, template, job.properties["configuration"], job.doc.get("identity"), time.time())
    if not pull.ok:
        run.failure = ("ImagePullFailure", pulls.backoff_reason(pull))

    def finished(status: str) -> None:
        if execution.properties["status"] == "Running":
            execution.properties.update(status=status, endTime=now_iso())
    run.on_success.append(lambda: finished(outcome))
    run.on_failure.append(lambda: finished("Failed"))
    started = app.begin_operation(req, rid, "action", "jobStart")
    started.result = lambda: {"name": name, "id": rid}
    return Response(202, None, {"Location": app.operation_url(req, started, kind.namespace, job.doc["location"],
                                                              "operationResults")})


def list_executions(app: "StandinApp", kind: Jobs, req: Request) -> Response:
    job = _job(app, kind, req)
    return Response(200, {"value": [e.doc for e in app.store.of_type(EXECUTION_TYPE, job.id)]})


def _execution(app: "StandinApp", kind: Jobs, req: Request) -> Resource:
    job = _job(app, kind, req)
    execution = app.store.get(f"{job.id}/executions/{req.params['executionName']}")
    if execution is None:
        raise not_found("ResourceNotFound", f"Job execution '{req.params['executionName']}' was not found.")
    return execution


def stop_execution(app: "StandinApp", kind: Jobs, req: Request) -> Response:
    execution = _execution(app, kind, req)
    if execution.properties["status"] == "Running":
        execution.properties.update(status="Stopped", endTime=now_iso())
    return Response(200)


def list_secrets(app: "StandinApp", kind: Jobs, req: Request) -> Response:
    job = _job(app, kind, req)
    out = [{**s, "value": job.secrets[s["name"]]} if s["name"] in job.secrets else dict(s)
           for s in job.properties["configuration"].get("secrets", [])]
    return Response(200, {"value": out})


def register(app: "StandinApp") -> None:
    kind = Jobs()
    register_kind(app, kind)
    add = app.router.add
    opts = dict(versions=common.VERSIONS, namespace=common.NAMESPACE, type_name="jobs")
    item = RG_PREFIX + "/providers/Microsoft.App/jobs/{name}"
    add("POST", item + "/start", lambda r: start(app, kind, r), **opts)
    add("POST", item + "/listSecrets", lambda r: list_secrets(app, kind, r), **opts)
    add("GET", item + "/executions", lambda r: list_executions(app, kind, r), **opts)
    add("GET", item + "/executions/{executionName}", lambda r: Response(200, _execution(app, kind, r).doc), **opts)
    add("POST", item + "/executions/{executionName}/stop", lambda r: stop_execution(app, kind, r), **opts)
