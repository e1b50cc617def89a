"""The Container Apps environment: workload-profile type with the Consumption profile, logs to
the workspace."""

from __future__ import annotations

from typing import Any

from mlflow_aca.azure import apps as azure_apps
from mlflow_aca.azure import monitor
from mlflow_aca.resources.base import Context, Pending, Resource
from mlflow_aca.resources.util import dig

SHARED_KEY_PATH = "properties.appLogsConfiguration.logAnalyticsConfiguration.sharedKey"
CONSUMPTION_PROFILE = "Consumption"


class Environment(Resource):
    key = "environment"
    kind = azure_apps.ENVIRONMENT
    tagged = True
    deps = ("workspace",)
    # Write-only: Azure never returns the key, so it cannot be compared.
    ignored = (SHARED_KEY_PATH,)

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, ctx.names.environment)

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {
            "location": ctx.settings.location,
            "tags": ctx.tags,
            "properties": {
                "appLogsConfiguration": {
                    "destination": "log-analytics",
                    "logAnalyticsConfiguration": {
                        "customerId": ctx.output("workspace", "customer_id"),
                        # Fetched only when writing: a no-op rerun must not ask for keys.
                        "sharedKey": Pending("<workspace shared key>"),
                    },
                },
                # Workload-profile environments are Azure's current default; an environment's
                # type can never be converted later.
                "workloadProfiles": [{"name": CONSUMPTION_PROFILE,
                                      "workloadProfileType": CONSUMPTION_PROFILE}],
            },
        }

    def create(self, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        return super().create(ctx, self._with_key(ctx, body))

    def update(self, ctx: Context, body: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        return super().update(ctx, self._with_key(ctx, body), current)

    def publish(self, ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": state.get("id"),
            "default_domain": dig(state, "properties.defaultDomain"),
            "static_ip": dig(state, "properties.staticIp"),
        }

    def _with_key(self, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        key = monitor.shared_key(ctx.session, ctx.names.resource_group, ctx.names.workspace)
        logs = body["properties"]["appLogsConfiguration"]
        return {**body, "properties": {**body["properties"], "appLogsConfiguration": {
            **logs, "logAnalyticsConfiguration": {**logs["logAnalyticsConfiguration"], "sharedKey": key}}}}
