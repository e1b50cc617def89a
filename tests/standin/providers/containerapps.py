"""Microsoft.App/containerApps: apps, their revisions and replicas, secrets (auth configs: authconfigs.py),
start/stop, and the app's ingress as a virtual host for the CONNECT proxy.

A PUT whose template differs from the latest revision's (or that names a new revisionSuffix)
creates a revision `<app>--<suffix>`; configuration-only changes (secrets, ingress) do not,
as in ACA. The revision becomes Provisioned/Running/Healthy when the app's operation
succeeds; tests can then make it unhealthy or failed through the control API. Before that the
operation pulls the revision's images (pulls.py): it fails, or waits in ImagePullBackOff while
pull rights propagate, as Container Apps does.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import ipaddress
import json
import random
import secrets as pysecrets
from typing import TYPE_CHECKING

from ..arm import Request, Response, bad_request, not_found
from ..proxy import VirtualHost
from ..resources import RG_PREFIX, PutContext, ResourceKind, check_enum, register_kind, resource_not_found
from ..store import Resource, now_iso
from . import aca_common as common
from . import pulls
from .authconfigs import auth_secret_ref
from .msi import resolve_identity

if TYPE_CHECKING:
    from ..app import StandinApp

APP_TYPE = "Microsoft.App/containerApps"
REVISION_TYPE = "Microsoft.App/containerApps/revisions"
REPLICA_TYPE = "Microsoft.App/containerApps/revisions/replicas"
DEFAULT_MLFLOW_VERSION = "3.6.0"


class ContainerApps(ResourceKind):
    namespace = common.NAMESPACE
    path = "containerApps/{name}"
    versions = common.VERSIONS
    latency_key = "containerApps"
    delete_lro = True

    def validate_name(self, name: str) -> None:
        common.check_app_name(name)

    def build(self, ctx: PutContext) -> dict:
        props, old = ctx.properties, ctx.old_properties
        env_id = props.get("managedEnvironmentId") or props.get("environmentId")
        env = common.environment(ctx, env_id, old.get("managedEnvironmentId"))
        identity = resolve_identity(ctx.app, ctx.body.get("identity"), ctx.id)
        config = copy.deepcopy(props.get("configuration") or {})
        template = copy.deepcopy(props.get("template") or {})
        shown_secrets = common.secrets(ctx, config, identity)
        names = {s["name"] for s in shown_secrets}
        config["secrets"] = shown_secrets
        config["registries"] = common.registries(config, names, identity)
        config["activeRevisionsMode"] = check_enum(config.get("activeRevisionsMode", "Single"),
                                                   ["Single", "Multiple", "Labels"],
                                                   "configuration.activeRevisionsMode")
        if config.get("ingress"):
            config["ingress"] = _ingress(ctx.name, config["ingress"], env)
        common.containers(template, names, workload_profiles=common.uses_workload_profiles(env), what="container app")
        template["scale"] = common.scale(template)
        _check_auth_secret_refs(ctx, names)
        out = {"managedEnvironmentId": env.id, "environmentId": env.id,
               "workloadProfileName": props.get("workloadProfileName"),
               "configuration": config, "template": template,
               "outboundIpAddresses": old.get("outboundIpAddresses") or [_ip() for _ in range(3)],
               "customDomainVerificationId": env.properties["customDomainConfiguration"]["customDomainVerificationId"],
               "eventStreamEndpoint": env.properties["eventStreamEndpoint"].replace(
                   f"managedEnvironments/{env.doc['name']}", f"containerApps/{ctx.name}"),
               "runningStatus": "Progressing" if ctx.existing is None else old.get("runningStatus", "Running"),
               "latestRevisionName": old.get("latestRevisionName"),
               "latestReadyRevisionName": old.get("latestReadyRevisionName"),
               "latestRevisionFqdn": old.get("latestRevisionFqdn")}
        revision = _revision_name(ctx, template)
        if revision:
            domain = env.properties["defaultDomain"]
            out["latestRevisionName"] = revision
            out["latestRevisionFqdn"] = f"{revision}.{domain}" if config.get("ingress") else ""
            ctx.on_stored.append(lambda: _add_revision(ctx.app, ctx.id, revision, template, out["latestRevisionFqdn"]))
            ctx.on_success.append(lambda: _revision_ready(ctx.app, ctx.id, revision))
            ctx.on_failure.append(lambda: _revision_failed(ctx.app, ctx.id, revision, ctx.failure))
            pulls.watch_revision(ctx, revision, template, config, identity)
        else:
            ctx.on_success.append(lambda: _refresh_app(ctx.app, ctx.app.store.get(ctx.id)))
        doc = {"properties": out}
        if identity:
            doc["identity"] = identity
        if ctx.body.get("kind"):
            doc["kind"] = ctx.body["kind"]
        return doc


def _ip() -> str:
    return f"20.{random.randint(1, 250)}.{random.randint(1, 250)}.{random.randint(1, 250)}"


def _ingress(app_name: str, ingress: dict, env: Resource) -> dict:
    port = ingress.get("targetPort")
    # Azure accepts any case and answers with its own: `az containerapp show` on a live app prints
    # "transport": "Auto" for an app created with "auto" (public CLI outputs); the stand-in answers so too.
    transport = check_enum(ingress.get("transport", "auto"), ["Auto", "Http", "Http2", "Tcp"], "ingress.transport",
                           code="ContainerAppInvalidIngress")
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise bad_request("ContainerAppInvalidIngress",
                          f"Invalid ingress: targetPort must be between 1 and 65535 (got {port!r}).")
    actions = set()
    for rule in ingress.get("ipSecurityRestrictions") or []:
        if not rule.get("name"):
            raise bad_request("ContainerAppInvalidIngress", "Each IP security restriction needs a name.")
        try:
            ipaddress.ip_network(str(rule.get("ipAddressRange")), strict=False)
        except ValueError:
            raise bad_request("ContainerAppInvalidIngress",
                              f"IP security restriction '{rule['name']}' has an invalid ipAddressRange "
                              f"'{rule.get('ipAddressRange')}'.") from None
        actions.add(check_enum(rule.get("action"), ["Allow", "Deny"], "ipSecurityRestrictions.action",
                               code="ContainerAppInvalidIngress"))
    if len(actions) > 1:
        raise bad_request("ContainerAppInvalidIngress",
                          "Allow and Deny IP security restrictions cannot be mixed: all rules must use the same action.")
    traffic = ingress.get("traffic") or []
    if traffic and sum(int(t.get("weight") or 0) for t in traffic) != 100:
        raise bad_request("ContainerAppInvalidIngress", "The traffic weights must add up to 100.")
    domain = env.properties["defaultDomain"]
    external = bool(ingress.get("external", False))
    fqdn = f"{app_name}.{domain}" if external else f"{app_name}.internal.{domain}"
    return {**ingress, "external": external, "targetPort": port, "transport": transport,
            "allowInsecure": bool(ingress.get("allowInsecure", False)), "fqdn": fqdn,
            "traffic": traffic or [{"weight": 100, "latestRevision": True}]}


def _check_auth_secret_refs(ctx: PutContext, names: set[str]) -> None:
    # An auth config keeps pointing at its client secret: removing the secret breaks it, so refuse.
    for auth in ctx.app.store.of_type("Microsoft.App/containerApps/authConfigs", ctx.id):
        ref = auth_secret_ref(auth.properties)
        if ref and ref not in names:
            raise bad_request("ContainerAppSecretRefNotFound",
                              f"The auth config's clientSecretSettingName '{ref}' refers to a secret that the app "
                              "no longer defines.")


# -- revisions --------------------------------------------------------------------------------------
def _revision_name(ctx: PutContext, template: dict) -> str | None:
    """The new revision's name, or None when the change is not revision-scoped."""
    store = ctx.app.store
    latest_name = ctx.old_properties.get("latestRevisionName")
    latest = store.get(f"{ctx.id}/revisions/{latest_name}") if latest_name else None
    suffix = template.get("revisionSuffix")
    if latest is not None and _comparable(latest.properties["template"]) == _comparable(template) \
            and (not suffix or latest_name == f"{ctx.name}--{suffix}"):
        return None
    if suffix:
        if store.get(f"{ctx.id}/revisions/{ctx.name}--{suffix}") is not None:
            raise bad_request("ContainerAppRevisionSuffixExists",
                              f"A revision with suffix '{suffix}' already exists; choose another revisionSuffix.")
        return f"{ctx.name}--{suffix}"
    return f"{ctx.name}--{''.join(random.choices('abcdefghijklmnopqrstuvwxyz0123456789', k=7))}"


def _comparable(template: dict) -> str:
    return json.dumps({k: v for k, v in template.items() if k != "revisionSuffix"}, sort_keys=True)


def _add_revision(app: "StandinApp", app_id: str, name: str, template: dict, fqdn: str) -> None:
    rid = f"{app_id}/revisions/{name}"
    app.store.put(Resource(rid, REVISION_TYPE, {"id": rid, "name": name, "type": REVISION_TYPE, "properties": {
        "createdTime": now_iso(), "lastActiveTime": now_iso(), "fqdn": fqdn, "template": copy.deepcopy(template),
        "active": True, "replicas": 0, "trafficWeight": 0, "healthState": "None",
        "provisioningState": "Provisioning", "runningState": "Processing", "provisioningError": None}}))


def _revision_ready(app: "StandinApp", app_id: str, name: str) -> None:
    res = app.store.get(app_id)
    revision = app.store.get(f"{app_id}/revisions/{name}")
    if res is None or revision is None:
        return
    scale = revision.properties["template"].get("scale") or {}
    revision.properties.update(provisioningState="Provisioned", runningState="Running", healthState="Healthy",
                               replicas=max(scale.get("minReplicas", 0), 1))
    if res.properties["configuration"]["activeRevisionsMode"] == "Single":
        for other in app.store.of_type(REVISION_TYPE, app_id):
            if other is not revision and other.properties["active"]:
                other.properties.update(active=False, replicas=0, trafficWeight=0, runningState="Stopped")
                app.store.remove(other.id + "/replicas")
    _sync_replicas(app, revision)
    _refresh_app(app, res)


def _revision_failed(app: "StandinApp", app_id: str, name: str, failure) -> None:
    revision = app.store.get(f"{app_id}/revisions/{name}")
    if revision is not None:
        revision.properties.update(provisioningState="Failed", runningState="Failed", healthState="Unhealthy",
                                   provisioningError=failure[1] if failure else "Revision provisioning failed.")
    res = app.store.get(app_id)
    if res is not None:
        _refresh_app(app, res)


def _sync_replicas(app: "StandinApp", revision: Resource) -> None:
    """Keep the revision's replica resources in line with its `replicas` count and health."""
    props = revision.properties
    existing = app.store.of_type(REPLICA_TYPE, revision.id)
    for extra in existing[props["replicas"]:]:
        app.store.remove(extra.id)
    healthy = props["healthState"] == "Healthy" and props["runningState"] == "Running"
    pulling = app.store.pull_waits.get(revision.id.lower())   # the image pull keeps failing (pulls.py)
    for index in range(props["replicas"]):
        if index < len(existing):
            replica = existing[index]
        else:
            short = hashlib.sha1(revision.id.encode()).hexdigest()[:10]
            name = f"{revision.doc['name']}-{short}-{pysecrets.token_hex(3)[:5]}"
            rid = f"{revision.id}/replicas/{name}"
            replica = app.store.put(Resource(rid, REPLICA_TYPE, {"id": rid, "name": name, "type": REPLICA_TYPE,
                                                                 "properties": {"createdTime": now_iso()}}))
        restarts = props.get("restartCount", 0)
        replica.properties.update(
            runningState="Running" if healthy else "NotRunning",
            runningStateDetails="" if healthy else (pulling or props.get("provisioningError")
                                                    or "Container is not ready."),
            containers=[{"name": c["name"], "containerId": "containerd://" + hashlib.sha256(
                (replica.id + c["name"]).encode()).hexdigest(), "ready": healthy, "started": healthy,
                "restartCount": restarts, "runningState": "Running" if healthy else "Waiting",
                "runningStateDetails": "" if healthy else "ImagePullBackOff" if pulling else "CrashLoopBackOff",
                "logStreamEndpoint": f"https://{revision.doc['name']}.logstream.azurecontainerapps.dev",
                "execEndpoint": f"wss://{revision.doc['name']}.exec.azurecontainerapps.dev"}
                for c in props["template"].get("containers", [])])


def _refresh_app(app: "StandinApp", res: Resource | None) -> None:
    """Derive latestReadyRevisionName, traffic weights and runningStatus from the revisions."""
    if res is None:
        return
    revisions = app.store.of_type(REVISION_TYPE, res.id)
    ready = [r for r in revisions if r.properties["provisioningState"] == "Provisioned"
             and r.properties["healthState"] == "Healthy"]
    if ready:
        res.properties["latestReadyRevisionName"] = max(ready, key=lambda r: r.properties["createdTime"]).doc["name"]
    active = [r for r in revisions if r.properties["active"]]
    for r in active:
        r.properties["trafficWeight"] = 100 if r.doc["name"] == res.properties.get("latestReadyRevisionName") else 0
    if res.properties.get("runningStatus") != "Stopped":
        res.properties["runningStatus"] = "Running" if any(
            r.properties["runningState"] == "Running" for r in active) else "Progressing"


def set_revision_state(app: "StandinApp", app_id: str, revision: str | None, *, health=None, running_state=None,
                       provisioning_state=None, provisioning_error=None, restart_count=None, replicas=None) -> dict:
    res = app.store.get(app_id)
    if res is None or res.type != APP_TYPE:
        raise ValueError(f"no container app {app_id}")
    name = revision or res.properties.get("latestRevisionName")
    rev = app.store.get(f"{res.id}/revisions/{name}")
    if rev is None:
        raise ValueError(f"no revision {name} in {app_id}")
    props = rev.properties
    if health is not None:
        props["healthState"] = check_enum(health, ["Healthy", "Unhealthy", "None"], "health")
    if running_state is not None:
        props["runningState"] = check_enum(running_state, ["Running", "Processing", "Stopped", "Degraded", "Failed",
                                                           "Unknown"], "running_state")
    if provisioning_state is not None:
        props["provisioningState"] = check_enum(provisioning_state, ["Provisioning", "Provisioned", "Failed",
                                                                     "Deprovisioning", "Deprovisioned"],
                                                "provisioning_state")
    if provisioning_error is not None:
        props["provisioningError"] = provisioning_error
    if restart_count is not None:
        props["restartCount"] = int(restart_count)
    if replicas is not None:   # 0: scaled to zero (minReplicas 0 and no traffic)
        props["replicas"] = int(replicas)
    _sync_replicas(app, rev)
    _refresh_app(app, res)
    return copy.deepcopy(rev.doc)


# -- actions -----------------------------------------------------------------------------------------
def _app(app: "StandinApp", kind: ContainerApps, req: Request) -> Resource:
    res = app.store.get(kind.resource_id(app, req.params, app.require_scope(req)))
    if res is None:
        raise resource_not_found(kind, req.params["name"], req)
    return res


def list_secrets(app: "StandinApp", kind: ContainerApps, req: Request) -> Response:
    res = _app(app, kind, req)
    out = []
    for shown in res.properties["configuration"].get("secrets", []):
        value = res.secrets.get(shown["name"])
        out.append({**shown, "value": value} if value is not None else dict(shown))
    return Response(200, {"value": out})


def start_stop(app: "StandinApp", kind: ContainerApps, req: Request, status: str) -> Response:
    res = _app(app, kind, req)
    op = app.begin_operation(req, res.id, "action", kind.latency_key)

    def done() -> None:
        res.properties["runningStatus"] = status
        if status == "Running":
            _refresh_app(app, res)
    op.on_success.append(done)
    op.result = lambda: kind.render(res)
    return Response(202, None, {"Location": app.operation_url(req, op, kind.namespace, res.doc["location"],
                                                              "operationResults")})


def list_revisions(app: "StandinApp", kind: ContainerApps, req: Request) -> Response:
    res = _app(app, kind, req)
    return Response(200, {"value": [r.doc for r in app.store.of_type(REVISION_TYPE, res.id)]})


def get_revision(app: "StandinApp", kind: ContainerApps, req: Request) -> Response:
    res = _app(app, kind, req)
    rev = app.store.get(f"{res.id}/revisions/{req.params['revisionName']}")
    if rev is None:
        raise not_found("ResourceNotFound",
                        f"Revision '{req.params['revisionName']}' of container app '{res.doc['name']}' was not found.")
    return Response(200, rev.doc)


def list_replicas(app: "StandinApp", kind: ContainerApps, req: Request) -> Response:
    get_revision(app, kind, req)
    rev_id = f"{_app(app, kind, req).id}/revisions/{req.params['revisionName']}"
    return Response(200, {"value": [r.doc for r in app.store.of_type(REPLICA_TYPE, rev_id)]})


def get_replica(app: "StandinApp", kind: ContainerApps, req: Request) -> Response:
    get_revision(app, kind, req)
    rid = f"{_app(app, kind, req).id}/revisions/{req.params['revisionName']}/replicas/{req.params['replicaName']}"
    replica = app.store.get(rid)
    if replica is None:
        raise not_found("ResourceNotFound", f"Replica '{req.params['replicaName']}' was not found.")
    return Response(200, replica.doc)


# -- ingress as seen through the proxy ------------------------------------------------------------------
def set_endpoint(app: "StandinApp", app_id: str, *, backend: str | None, version: str | None) -> None:
    res = app.store.get(app_id)
    if res is None or res.type != APP_TYPE:
        raise ValueError(f"no container app {app_id}")
    entry = app.store.app_endpoints.setdefault(res.id.lower(), {})
    if backend is not None:
        host, _, port = backend.rpartition(":")
        entry["backend"] = (host, int(port))
    if version is not None:
        entry["version"] = version


def resolve_host(app: "StandinApp", host: str) -> VirtualHost | None:
    for res in app.store.of_type(APP_TYPE):
        ingress = res.properties["configuration"].get("ingress") or {}
        if ingress.get("fqdn", "").lower() != host or not ingress.get("external"):
            continue
        endpoint = app.store.app_endpoints.get(res.id.lower(), {})
        if endpoint.get("backend") and _serving(app, res):
            return VirtualHost(backend=endpoint["backend"])
        return VirtualHost(respond=lambda method, path, headers, res=res: _mlflow(app, res, path, headers))
    return None


def _serving(app: "StandinApp", res: Resource) -> bool:
    return res.properties.get("runningStatus") != "Stopped" and any(
        r.properties["active"] and r.properties["healthState"] == "Healthy" and r.properties["runningState"] == "Running"
        for r in app.store.of_type(REVISION_TYPE, res.id))


def _mlflow(app: "StandinApp", res: Resource, path: str, headers: dict) -> tuple[int, str]:
    """Answer like ACA's ingress in front of an MLflow server, from the app's state."""
    with app.store.lock:
        app.store.settle()
        if res.properties.get("runningStatus") == "Stopped":
            return 404, "Error 404 - This Container App is stopped or does not exist."
        if not _serving(app, res):
            return 503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
        env = {v["name"]: v.get("value") for c in res.properties["template"]["containers"] for v in c.get("env") or []}
        version = app.store.app_endpoints.get(res.id.lower(), {}).get("version", DEFAULT_MLFLOW_VERSION)
    route = path.split("?", 1)[0]
    if route == "/health":
        return 200, "OK"
    if route == "/version":
        return 200, version
    # Since MLflow 3.5 every other route checks the Host header against MLFLOW_SERVER_ALLOWED_HOSTS.
    allowed = [p.strip() for p in (env.get("MLFLOW_SERVER_ALLOWED_HOSTS") or "").split(",") if p.strip()]
    host = headers.get("host", "")
    if not any(fnmatch.fnmatch(host, pattern) for pattern in allowed):
        return 403, "Invalid Host header - possible DNS rebinding attack detected"
    if route.endswith("/mlflow/server-info"):
        return 200, json.dumps({"store_type": "SqlStore"})
    return 404, "Not Found"


def register(app: "StandinApp") -> None:
    kind = ContainerApps()
    register_kind(app, kind)
    add = app.router.add
    opts = dict(versions=common.VERSIONS, namespace=common.NAMESPACE, type_name="containerApps")
    item = RG_PREFIX + "/providers/Microsoft.App/containerApps/{name}"
    add("POST", item + "/listSecrets", lambda r: list_secrets(app, kind, r), **opts)
    add("POST", item + "/start", lambda r: start_stop(app, kind, r, "Running"), **opts)
    add("POST", item + "/stop", lambda r: start_stop(app, kind, r, "Stopped"), **opts)
    add("GET", item + "/revisions", lambda r: list_revisions(app, kind, r), **opts)
    add("GET", item + "/revisions/{revisionName}", lambda r: get_revision(app, kind, r), **opts)
    add("GET", item + "/revisions/{revisionName}/replicas", lambda r: list_replicas(app, kind, r), **opts)
    add("GET", item + "/revisions/{revisionName}/replicas/{replicaName}", lambda r: get_replica(app, kind, r), **opts)
    app.hosts.append(lambda host: resolve_host(app, host))
    # The registries apps pull from, when no real registry stands behind them (add_registry_image).
    from .. import logstreams, registry_catalog
    registry_catalog.register(app)
    logstreams.register(app)   # getAuthToken and the replicas' log streams
