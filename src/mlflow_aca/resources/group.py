"""The resource group: created only if absent, and then marked as the tool's own."""

from __future__ import annotations

from typing import Any

from mlflow_aca.azure.groups import RESOURCE_GROUP
from mlflow_aca.graph import StepResult
from mlflow_aca.resources.base import Context, Resource, tagged_by_us


class ResourceGroup(Resource):
    key = "resource_group"
    kind = RESOURCE_GROUP

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group,)

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"location": ctx.settings.location, "tags": ctx.tags}

    def publish(self, ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
        return {"id": state.get("id"), "owned": tagged_by_us(state, ctx.settings.name)}

    def changes(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any]) -> list[str]:
        # A group the user made is theirs: never retag or move it (and teardown will never
        # delete it). One the tool made is converged like any other resource.
        return super().changes(ctx, desired, current) if tagged_by_us(current, ctx.settings.name) else []

    def ensure(self, ctx: Context) -> StepResult:
        result = super().ensure(ctx)
        if result.outcome == "ok" and not ctx.outputs[self.key]["owned"]:
            result.detail = "existing group, not managed by mlflow-aca"
        return result
