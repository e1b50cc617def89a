"""The user-assigned managed identity the app uses for ACR, Blob storage and SQL."""

from __future__ import annotations

from typing import Any

from mlflow_aca.azure.msi import IDENTITY
from mlflow_aca.resources.base import Context, Resource
from mlflow_aca.resources.util import dig


class Identity(Resource):
    key = "identity"
    kind = IDENTITY
    tagged = True
    deps = ("resource_group",)

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, ctx.names.identity)

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"location": ctx.settings.location, "tags": ctx.tags}

    def publish(self, ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": state.get("id"),
            "principal_id": dig(state, "properties.principalId"),
            "client_id": dig(state, "properties.clientId"),
            "tenant_id": dig(state, "properties.tenantId"),
        }
