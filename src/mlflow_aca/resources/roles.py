"""Role assignments for the app's identity, named deterministically so reruns never duplicate,
and patient with Entra ID's replication delay after the identity is created."""

from __future__ import annotations

import time
from typing import Any

from mlflow_aca.azure import roles as azure_roles
from mlflow_aca.errors import OperationError
from mlflow_aca.graph import StepResult
from mlflow_aca.resources.base import Context, Pending, Resource

# Entra ID replication after a new identity usually takes seconds to a few minutes.
PRINCIPAL_RETRIES = 12


class RoleAssignment(Resource):
    kind = azure_roles.ROLE_ASSIGNMENT

    def __init__(self, key: str, role_id: str, role_name: str, target: str) -> None:
        self.key = key
        self.role_id = role_id
        self.role_name = role_name
        self.target = target  # the key of the resource the role is scoped to
        self.deps = ("identity", target)

    def scope(self, ctx: Context) -> str:
        return str(ctx.output(self.target, "id"))

    def principal(self, ctx: Context) -> str:
        return ctx.output("identity", "principal_id")

    def ids(self, ctx: Context) -> tuple[str, ...]:
        scope = self.scope(ctx)
        return (scope, azure_roles.assignment_name(scope, self.role_id, self.principal(ctx)))

    def label(self, ctx: Context) -> str:
        return f"role {self.role_name} for {ctx.names.identity}"

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {
            "properties": {
                "roleDefinitionId": azure_roles.role_definition_path(ctx.subscription_id, self.role_id),
                "principalId": self.principal(ctx),
                "principalType": "ServicePrincipal",
            }
        }

    def read(self, ctx: Context) -> dict[str, Any] | None:
        if isinstance(ctx.output(self.target, "id"), Pending) or isinstance(self.principal(ctx), Pending):
            return None  # a plan, and the scope or the identity is still to be created
        return super().read(ctx)

    def ensure(self, ctx: Context) -> StepResult:
        current = self.read(ctx)
        if current is not None:
            return StepResult("ok")
        if ctx.dry_run:
            return StepResult("create")
        return self._create_when_replicated(ctx)

    def _create_when_replicated(self, ctx: Context) -> StepResult:
        body = self.desired(ctx)
        for attempt in range(PRINCIPAL_RETRIES):
            try:
                self.create(ctx, body)
                return StepResult("created")
            except OperationError as error:
                if error.code == "RoleAssignmentExists":
                    # Same principal, role and scope under another name: already granted.
                    return StepResult("ok", "granted earlier under another name")
                if error.code != "PrincipalNotFound" or attempt == PRINCIPAL_RETRIES - 1:
                    raise
                time.sleep(backoff(ctx.settings.poll_interval, attempt))
        raise AssertionError("unreachable")


def backoff(poll_interval: float, attempt: int) -> float:
    """Seconds before retry `attempt` (0-based): doubling from half the poll interval, at most a minute."""
    return min(poll_interval * (2 ** attempt) / 2, 60.0)


class RetiredRoleAssignment(RoleAssignment):
    """A grant an earlier version of the tool made and this one no longer wants, removed once its
    narrower replacement (`replaced_by`, a step key) exists. It is found by the deterministic
    name the tool gives its assignments (scope, role, the tool's identity): an assignment of that
    name was made by the tool, so removing it takes nothing from anyone else."""

    def __init__(self, key: str, role_id: str, role_name: str, target: str, replaced_by: str) -> None:
        super().__init__(key, role_id, role_name, target)
        self.replaced_by = replaced_by
        self.deps = (*self.deps, replaced_by)

    def label(self, ctx: Context) -> str:
        return f"role {self.role_name} on the whole {self.target.replace('_', ' ')} for {ctx.names.identity} (retired)"

    def ensure(self, ctx: Context) -> StepResult:
        if self.read(ctx) is None:
            return StepResult("ok", "not granted")
        detail = f"removed: replaced by the narrower grant ({self.replaced_by})"
        if ctx.dry_run:
            return StepResult("update", detail, {"changes": ["(role assignment removed)"]})
        self.delete(ctx)
        return StepResult("deleted", detail)
