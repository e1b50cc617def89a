"""`teardown`: delete compute and keep data by default; with `delete_data`, delete every resource
the tool tagged — and the resource group only if the tool created it and nothing else is in it.

Nothing without the tool's tags is ever deleted: every resource is read and its tags checked
immediately before its DELETE.
"""

from __future__ import annotations

from typing import Any

from mlflow_aca.azure import rest
from mlflow_aca.deployment import Outcome, execute, infrastructure, role_assignments
from mlflow_aca.graph import Step, StepResult
from mlflow_aca.resources.app import ContainerApp
from mlflow_aca.resources.base import Context, Resource, tagged_by_us
from mlflow_aca.resources.group import ResourceGroup
from mlflow_aca.resources.job import MigrationJob
from mlflow_aca.resources.roles import RoleAssignment


def teardown(ctx: Context, reporter: Any, *, delete_data: bool) -> Outcome:
    return execute(ctx, teardown_steps(ctx, delete_data=delete_data), reporter)


def teardown_steps(ctx: Context, *, delete_data: bool) -> list[Step]:
    app = ContainerApp()
    steps = [_delete(ctx, app, deps=()), _delete(ctx, MigrationJob(app), deps=()),
             _delete(ctx, _by_key(ctx, "environment"), deps=("app", "migration"))]
    if not delete_data:
        return steps
    roles = [_delete_role(ctx, role) for role in role_assignments()]
    data_keys = ("sql_database", "sql_server", "storage_account", "registry", "workspace", "identity")
    role_keys = tuple(step.key for step in roles)
    for key in data_keys:
        deps: tuple[str, ...] = role_keys
        if key == "workspace":
            deps = ("environment",)
        elif key == "identity":
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
        if not tagged_by_us(state, ctx.settings.name):
            return StepResult("kept", "not tagged by mlflow-aca for this deployment")
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

    return Step(role.key, f"role {role.role_name} for {ctx.names.identity}", run)


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
    from mlflow_aca.azure.errors import translate_errors

    client = ctx.session.client("resources")
    with translate_errors(f"list the resources in {ctx.names.resource_group}"):
        return [rest.to_rest(item).get("name", "?")
                for item in client.resources.list_by_resource_group(ctx.names.resource_group)]

