"""`teardown`: delete compute and keep data by default; with `delete_data`, delete every resource
the tool created — and the resource group only if the tool created it and nothing else is in it.

Nothing the tool did not create is ever deleted (ownership.py): every resource is read and its
tags checked immediately before its DELETE; an adopted resource and a pre-existing group are
kept. Before anything is deleted (and before any confirmation), `survey` lists exactly what
will be deleted and what is kept, and why; afterwards `next_steps` says how to come back.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mlflow_aca.azure import rest
from mlflow_aca.deployment import Outcome, execute, infrastructure, role_assignments
from mlflow_aca.graph import Step, StepResult
from mlflow_aca.lease import Lease
from mlflow_aca.resources.app import ContainerApp
from mlflow_aca.resources.base import Context, Resource, tagged_by_us
from mlflow_aca.resources.group import ResourceGroup
from mlflow_aca.resources.job import MigrationJob
from mlflow_aca.resources.ownership import ADOPTED, OURS, owner
from mlflow_aca.resources.roles import RoleAssignment

# In deletion order's spirit: the data resources --delete-data removes.
# The migration identity is the SQL server's administrator: kept with the server's data.
DATA_KEYS = ("sql_database", "sql_server", "storage_account", "registry", "workspace", "identity",
             "migration_identity")
KEPT_BECAUSE = {
    ADOPTED: "adopted: it existed before mlflow-aca, so teardown never deletes it",
    "foreign": "not created by mlflow-aca for this deployment",
}


@dataclass
class Survey:
    """What a teardown will delete and keep, each with the reason, read before any change."""

    delete_data: bool
    delete: list[dict[str, str]] = field(default_factory=list)
    keep: list[dict[str, str]] = field(default_factory=list)

    def add(self, key: str, label: str, *, delete: bool, reason: str) -> None:
        (self.delete if delete else self.keep).append({"key": key, "resource": label, "reason": reason})

    def as_data(self) -> dict[str, Any]:
        return {"will_delete": self.delete, "will_keep": self.keep}

    def describe(self, deployment: str) -> str:
        lines = [f"Teardown of deployment {deployment!r} will delete:"]
        lines += [f"  - {e['resource']}" for e in self.delete] or ["  nothing (none of its resources to delete exist)"]
        lines += ["and keep:"] + ([f"  - {e['resource']} ({e['reason']})" for e in self.keep] or ["  nothing"])
        return "\n".join(lines)

    def next_steps(self) -> str:
        """How to bring the server back, given what is kept."""
        ours_kept = [e for e in self.keep if e["reason"].startswith("data")]
        if not self.delete_data and ours_kept:
            return ("The data is kept. To bring the server back: `mlflow-aca up` (or `mlflow-aca provision` "
                    "then `mlflow-aca deploy`) recreates the environment, the app and its migration job, "
                    "and reuses the kept database, artifacts and registry.")
        if self.delete_data:
            text = "To start again, `mlflow-aca up` creates a new, empty deployment."
            if self.keep:
                text += " The resources kept above were left exactly as they were."
            return text
        return "`mlflow-aca up` creates the deployment."


def survey(ctx: Context, *, delete_data: bool) -> Survey:
    """Read every resource teardown considers (in parallel) and sort it into delete and keep."""
    found = Survey(delete_data)
    app = ContainerApp()
    compute: list[Resource] = [app, MigrationJob(app), _by_key(ctx, "environment")]
    data = [_by_key(ctx, key) for key in DATA_KEYS]
    with ThreadPoolExecutor(max_workers=max(1, ctx.settings.concurrency)) as pool:
        states = dict(zip([r.key for r in compute + data], pool.map(lambda r: r.read(ctx), compute + data),
                          strict=True))
    deleting: list[str] = []
    for resource in compute + data:
        state = states[resource.key]
        if state is None:
            continue
        status = owner(state.get("tags"), ctx.settings.name)
        if status != OURS:
            found.add(resource.key, resource.label(ctx), delete=False,
                      reason=KEPT_BECAUSE.get(status, KEPT_BECAUSE["foreign"]))
        elif resource in compute or delete_data:
            found.add(resource.key, resource.label(ctx), delete=True, reason="created by mlflow-aca")
            deleting.append(str(state.get("id") or "").lower())
        else:
            found.add(resource.key, resource.label(ctx), delete=False, reason="data: only --delete-data deletes it")
    _survey_roles(ctx, found, states, delete_data)
    _survey_registration(ctx, found, delete_data)
    _survey_group(ctx, found, delete_data, deleting)
    return found


def _survey_roles(ctx: Context, found: Survey, states: dict[str, Any], delete_data: bool) -> None:
    identity = states.get("identity")
    if identity is None or not tagged_by_us(identity, ctx.settings.name):
        return  # only the tool's own identity's grants are the tool's
    ctx.publish("identity", {"principal_id": (identity.get("properties") or {}).get("principalId")})
    for role in role_assignments():
        target = states.get(role.target)
        if target is None:
            continue
        ctx.publish(role.target, {"id": target.get("id")})
        if role.read(ctx) is not None:
            found.add(role.key, role.label(ctx), delete=delete_data,
                      reason="granted to the tool's identity" if delete_data else "data: only --delete-data deletes it")


def _survey_registration(ctx: Context, found: Survey, delete_data: bool) -> None:
    from mlflow_aca.resources.signin import graph, registered_by_us

    label = f"app registration {ctx.settings.auth_unique_name}"
    if ctx.settings.auth_client_id:
        if ctx.settings.auth == "entra":
            found.add("auth_app", f"app registration {ctx.settings.auth_client_id}", delete=False,
                      reason="an administrator's registration (auth_client_id): never deleted")
        return
    if not delete_data and ctx.settings.auth != "entra":
        return  # Graph is asked only when its answer matters
    state = graph(ctx).application_by_unique_name(ctx.settings.auth_unique_name)
    if state is None:
        return
    if not registered_by_us(state, ctx.settings.name):
        found.add("auth_app", label, delete=False, reason=KEPT_BECAUSE["foreign"])
    else:
        found.add("auth_app", label, delete=delete_data,
                  reason="created by mlflow-aca" if delete_data else "sign-in: only --delete-data deletes it")


def _survey_group(ctx: Context, found: Survey, delete_data: bool, deleting: list[str]) -> None:
    group = ResourceGroup()
    state = group.read(ctx)
    if state is None:
        return
    label = f"resource group {ctx.names.resource_group}"
    if not tagged_by_us(state, ctx.settings.name):
        found.add("resource_group", label, delete=False, reason="it existed before mlflow-aca: never deleted")
        return
    if not delete_data:
        found.add("resource_group", label, delete=False, reason="holds the kept data")
        return
    others = [name for rid, name in _resources_in_group(ctx)
              if not any(rid == d or rid.startswith(d + "/") for d in deleting if d)]
    if others:
        found.add("resource_group", label, delete=False,
                  reason=f"it holds {len(others)} other resource(s): " + ", ".join(sorted(others)[:5]))
    else:
        found.add("resource_group", label, delete=True, reason="created by mlflow-aca, empty once the rest is gone")


def teardown(ctx: Context, reporter: Any, *, delete_data: bool, lease: Lease | None = None) -> Outcome:
    """The deletions, under the command's lease (lease.py: no DELETE leaves before it is held;
    when the identity goes, the lease goes with it and is not given back)."""
    steps = teardown_steps(ctx, delete_data=delete_data)
    if lease is None:
        return execute(ctx, steps, reporter)
    return lease.finish(lambda: execute(ctx, steps, reporter))


def teardown_steps(ctx: Context, *, delete_data: bool) -> list[Step]:
    app = ContainerApp()
    steps = [_delete(ctx, app, deps=()), _delete(ctx, MigrationJob(app), deps=()),
             _delete(ctx, _by_key(ctx, "environment"), deps=("app", "migration"))]
    if not delete_data:
        return steps
    roles = [_delete_role(ctx, role) for role in role_assignments()]
    role_keys = tuple(step.key for step in roles)
    for key in DATA_KEYS:
        deps: tuple[str, ...] = role_keys
        if key == "workspace":
            deps = ("environment",)
        elif key in ("identity", "migration_identity"):
            deps = (*role_keys, "app", "migration")
        elif key == "sql_server":
            deps = ("sql_database",)
        steps.append(_delete(ctx, _by_key(ctx, key), deps=deps))
    steps += roles
    if not ctx.settings.auth_client_id:   # an admin's registration is never the tool's to delete
        steps.append(Step("auth_app", f"app registration {ctx.settings.auth_unique_name}",
                          lambda: _delete_registration(ctx), ("app",)))
    everything = tuple(step.key for step in steps)
    steps.append(Step("resource_group", f"resource group {ctx.names.resource_group}",
                      lambda: _delete_group(ctx), everything))
    return steps


def _by_key(ctx: Context, key: str) -> Resource:
    return next(r for r in infrastructure(ctx) if r.key == key)


def _delete(ctx: Context, resource: Resource, deps: tuple[str, ...]) -> Step:
    def run() -> StepResult:
        state = resource.read(ctx)
        if state is None:
            return StepResult("absent")
        status = owner(state.get("tags"), ctx.settings.name)
        if status != OURS:
            return StepResult("kept", KEPT_BECAUSE.get(status, KEPT_BECAUSE["foreign"]))
        resource.delete(ctx)
        return StepResult("deleted")

    return Step(resource.key, resource.label(ctx), run, deps)


def _delete_role(ctx: Context, role: RoleAssignment) -> Step:
    def run() -> StepResult:
        identity = _by_key(ctx, "identity").read(ctx)
        target = _by_key(ctx, role.target).read(ctx)
        if identity is None or target is None or not tagged_by_us(identity, ctx.settings.name):
            return StepResult("absent")
        ctx.publish("identity", {"principal_id": identity.get("properties", {}).get("principalId")})
        ctx.publish(role.target, {"id": target.get("id")})
        if role.read(ctx) is None:
            return StepResult("absent")
        role.delete(ctx)
        return StepResult("deleted")

    return Step(role.key, role.label(ctx), run)


def _delete_registration(ctx: Context) -> StepResult:
    """The app registration the tool made for this deployment (found by its uniqueName, whatever
    `auth` says now), if it carries the deployment's tag; its service principal and
    assignments go with it (Entra deletes an application's service principal in its tenant)."""
    from mlflow_aca.resources.signin import graph, registered_by_us

    state = graph(ctx).application_by_unique_name(ctx.settings.auth_unique_name)
    if state is None:
        return StepResult("absent")
    if not registered_by_us(state, ctx.settings.name):
        return StepResult("kept", "not tagged by mlflow-aca for this deployment")
    graph(ctx).delete_application(str(state["id"]))
    return StepResult("deleted")


def _delete_group(ctx: Context) -> StepResult:
    group = ResourceGroup()
    state = group.read(ctx)
    if state is None:
        return StepResult("absent")
    if not tagged_by_us(state, ctx.settings.name):
        return StepResult("kept", "the group existed before mlflow-aca")
    others = _remaining_resources(ctx)
    if others:
        return StepResult("kept", f"it still holds {len(others)} other resource(s): "
                          + ", ".join(sorted(others)[:5]))
    group.delete(ctx)
    return StepResult("deleted")


def _remaining_resources(ctx: Context) -> list[str]:
    return [name for _, name in _resources_in_group(ctx)]


def _resources_in_group(ctx: Context) -> list[tuple[str, str]]:
    """(lower-cased id, name) of every resource in the deployment's group."""
    from mlflow_aca.azure.errors import translate_errors

    client = ctx.session.client("resources")
    with translate_errors(f"list the resources in {ctx.names.resource_group}"):
        items = [rest.to_rest(item) for item in client.resources.list_by_resource_group(ctx.names.resource_group)]
    return [(str(item.get("id") or "").lower(), item.get("name", "?")) for item in items]

