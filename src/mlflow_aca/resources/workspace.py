"""The Log Analytics workspace the Container Apps environment sends logs to."""

from __future__ import annotations

from typing import Any

from mlflow_aca.azure.monitor import WORKSPACE
from mlflow_aca.resources.base import Context, Resource
from mlflow_aca.resources.util import dig


class Workspace(Resource):
    key = "workspace"
    kind = WORKSPACE
    tagged = True
    deps = ("resource_group",)

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, ctx.names.workspace)

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {
            "location": ctx.settings.location,
            "tags": ctx.tags,
            "properties": {
                "sku": {"name": "PerGB2018"},
                "retentionInDays": ctx.settings.log_retention_days,
            },
        }

    def publish(self, ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
        return {"id": state.get("id"), "customer_id": dig(state, "properties.customerId")}
