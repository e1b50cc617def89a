"""`status`: every resource's state, the app's URL and revision health, and MLflow's own
/health and /version over HTTPS — read-only, for people and for monitoring."""

from __future__ import annotations

from typing import Any

from mlflow_aca.azure import apps as azure_apps
from mlflow_aca.deployment import infrastructure
from mlflow_aca.graph import Step, StepResult, run_graph
from mlflow_aca.resources.app import HEALTH_PATH, ContainerApp, restart_count
from mlflow_aca.resources.base import Context, Resource
from mlflow_aca.resources import signin
from mlflow_aca.resources.roles import RoleAssignment
from mlflow_aca.resources.util import dig

HTTP_TIMEOUT = 10.0
_GOOD_STATES = (None, "Succeeded", "Provisioned")


def collect(ctx: Context, reporter: Any) -> dict[str, Any]:
    """Read everything (concurrently); decide healthy or not. Writes nothing."""
    # Role assignments and the Graph side of sign-in hang on other resources' ids; the app's
    # sign-in state is read from its auth config below.
    resources = [r for r in infrastructure(ctx)
                 if not isinstance(r, (RoleAssignment, *signin.GRAPH_RESOURCES))]
    app = ContainerApp()
    steps = [_observe(ctx, resource) for resource in resources]
    steps.append(Step("app", f"container app {ctx.names.app}", lambda: _observe_app(ctx, app)))
    results = run_graph(steps, reporter=reporter, concurrency=ctx.settings.concurrency)
    rows = [
        {"key": step.key, "resource": step.label, "state": results[step.key].outcome,
         "detail": results[step.key].detail}
        for step in steps
    ]
    app_data = results["app"].data
    problems = [f"{row['resource']}: {row['state']}" + (f" ({row['detail']})" if row["detail"] else "")
                for row in rows if row["state"] != "present"]
    problems += app_data.pop("problems", [])
    warnings = app_data.pop("warnings", [])
    return {"healthy": not problems, "problems": problems, "warnings": warnings, "resources": rows,
            "app": app_data}


def _observe(ctx: Context, resource: Resource) -> Step:
    def run() -> StepResult:
        state = resource.read(ctx)
        if state is None:
            return StepResult("absent")
        provisioning = dig(state, "properties.provisioningState")
        if provisioning not in _GOOD_STATES:
            return StepResult(str(provisioning).lower(), f"provisioning state {provisioning}")
        return StepResult("present", provisioning or "")

    # Status reads every resource independently: a missing parent shows as absent, not skipped.
    return Step(resource.key, resource.label(ctx), run)


def _observe_app(ctx: Context, app: ContainerApp) -> StepResult:
    state = app.read(ctx)
    if state is None:
        return StepResult("absent", "", {"problems": []})
    resource_group, name = app.ids(ctx)
    props = state.get("properties", {})
    fqdn = dig(props, "configuration.ingress.fqdn")
    latest = props.get("latestRevisionName")
    revision = (azure_apps.revision(ctx.session, resource_group, name, latest) if latest else None) or {}
    rev = revision.get("properties", {})
    replicas = [
        {"name": r.get("name"), "running_state": dig(r, "properties.runningState"),
         "restarts": restart_count(r)}
        for r in (azure_apps.replicas(ctx.session, resource_group, name, latest) if latest else [])
    ]
    data: dict[str, Any] = {
        "url": f"https://{fqdn}" if fqdn else None,
        "provisioning_state": props.get("provisioningState"),
        "running_status": props.get("runningStatus"),
        "latest_revision": latest,
        "latest_ready_revision": props.get("latestReadyRevisionName"),
        "revision_health": rev.get("healthState"),
        "revision_running_state": rev.get("runningState"),
        "replicas": replicas,
        "image": (dig(props, "template.containers") or [{}])[0].get("image"),
    }
    problems = []
    if props.get("provisioningState") not in _GOOD_STATES:
        problems.append(f"app provisioning state {props.get('provisioningState')}")
    if rev.get("healthState") != "Healthy":
        problems.append(f"revision {latest} health {rev.get('healthState')}"
                        f" (running state {rev.get('runningState')})")
    sign_in = signin.describe_live(signin.AuthConfig().read(ctx))
    data["sign_in"] = sign_in
    warnings = []
    if not sign_in["enabled"]:
        reach = ", ".join(ctx.settings.allowed_ips) or "the whole internet"
        message = f"OPEN SERVER: no sign-in in front of MLflow; anyone from {reach} can use it"
        if ctx.settings.auth == "entra":
            problems.append(message + " (auth = entra: run `mlflow-aca deploy`)")
        else:
            warnings.append(message + " (auth = none)")
    data["warnings"] = warnings
    token = _token_for(ctx, sign_in)
    data["mlflow"] = probe_mlflow(fqdn, token) if fqdn else {"reachable": False, "error": "no ingress FQDN"}
    if data["mlflow"].get("health") != "OK":
        problems.append(f"MLflow /health: {data['mlflow'].get('error') or data['mlflow'].get('health')}")
    data["problems"] = problems
    return StepResult("present", f"revision {latest}: {rev.get('healthState')}", data)


def _token_for(ctx: Context, sign_in: dict[str, Any]) -> str | dict[str, str] | None:
    """A token for the server's scope with the operator's credential, or why there is none
    (not among the allowed principals, say): /version is behind sign-in, /health is not."""
    if not sign_in.get("scope"):
        return None
    from mlflow_aca.errors import MlflowAcaError

    try:
        return ctx.session.token(sign_in["scope"])
    except MlflowAcaError as error:   # azure-identity's refusal, translated (never a token)
        return {"error": error.message}


def probe_mlflow(fqdn: str, token: str | dict[str, str] | None = None) -> dict[str, Any]:
    """MLflow's /health (open to probes) and /version (behind sign-in: with `token`) over HTTPS
    (honours REQUESTS_CA_BUNDLE and HTTPS_PROXY)."""
    import requests

    result: dict[str, Any] = {"reachable": False, "health": None, "version": None, "error": None}
    try:
        health = requests.get(f"https://{fqdn}{HEALTH_PATH}", timeout=HTTP_TIMEOUT)
        result["reachable"] = True
        result["health"] = health.text.strip() if health.status_code == 200 else f"HTTP {health.status_code}"
        if isinstance(token, dict):
            result["version_error"] = f"not checked: no token for the server ({token['error']})"
            return result
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        version = requests.get(f"https://{fqdn}/version", timeout=HTTP_TIMEOUT, headers=headers,
                               allow_redirects=False)
        if version.status_code == 200:
            result["version"] = version.text.strip()
        else:
            result["version_error"] = f"HTTP {version.status_code}"
    except requests.RequestException as exc:
        result["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return result
