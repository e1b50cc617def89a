"""The container registry holding the server image: Basic, admin user off."""

from __future__ import annotations

from typing import Any

from mlflow_aca.azure import registry as azure_registry
from mlflow_aca.resources.base import Context, Resource, require_name_available
from mlflow_aca.resources.util import dig


class Registry(Resource):
    key = "registry"
    kind = azure_registry.REGISTRY
    tagged = True
    deps = ("resource_group",)

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, ctx.names.registry)

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {
            "location": ctx.settings.location,
            "tags": ctx.tags,
            "sku": {"name": "Basic"},
            "properties": {
                "adminUserEnabled": False,
                # ABAC-mode registries ignore AcrPull, which is how the app pulls.
                "roleAssignmentMode": "LegacyRegistryPermissions",
            },
        }

    def publish(self, ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
        # Azure reports the login server; derive it from the cloud only for a plan.
        login = dig(state, "properties.loginServer")
        if login is None and ctx.dry_run:
            login = ctx.cloud.registry_login_server(ctx.names.registry)
        return {"id": state.get("id"), "login_server": login}

    def create(self, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        name = ctx.names.registry
        require_name_available(azure_registry.name_available(ctx.session, name), what="registry",
                               name=name, key="registry_name", code="RegistryNameNotAvailable")
        return super().create(ctx, body)
