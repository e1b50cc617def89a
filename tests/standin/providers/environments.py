"""Microsoft.App/managedEnvironments: where container apps and jobs run."""

from __future__ import annotations

import random
import re
import secrets
from typing import TYPE_CHECKING

from ..arm import bad_request, conflict
from ..resources import PutContext, ResourceKind, check_enum, register_kind
from ..store import Resource
from . import loganalytics
from .aca_common import NAMESPACE, VERSIONS
from .msi import resolve_identity

if TYPE_CHECKING:
    from ..app import StandinApp

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,58}[a-z0-9]$")
_WORDS = ("happy", "calm", "brave", "gentle", "lively", "proud", "quiet", "wise", "kind", "bold")
_NOUNS = ("river", "forest", "meadow", "stone", "ocean", "island", "desert", "field", "pond", "hill")


class ManagedEnvironments(ResourceKind):
    namespace = NAMESPACE
    path = "managedEnvironments/{name}"
    versions = VERSIONS
    lro_state = "Waiting"
    latency_key = "managedEnvironments"
    delete_lro = True

    def validate_name(self, name: str) -> None:
        if not _NAME.match(name) or "--" in name:
            raise bad_request("ManagedEnvironmentInvalidName",
                              f"Invalid ManagedEnvironment name '{name}'. A name must consist of lower case "
                              "alphanumeric characters or '-', start with a letter, end with an alphanumeric "
                              "character, cannot have '--', and be at most 60 characters long.")

    def build(self, ctx: PutContext) -> dict:
        props, old = ctx.properties, ctx.old_properties
        logs = props.get("appLogsConfiguration")
        if logs:
            _check_logs(ctx, logs)
        profiles = props.get("workloadProfiles") or []
        if ctx.existing is not None and bool(profiles) != bool(old.get("workloadProfiles")):
            # The environment type (consumption-only vs workload profiles) is fixed at creation.
            raise bad_request("InvalidRequestParameterWithDetails",
                              "A Consumption-only environment cannot be converted to a workload profiles "
                              "environment, nor the other way round.")
        for profile in profiles:
            if not profile.get("name") or not profile.get("workloadProfileType"):
                raise bad_request("InvalidRequestParameterWithDetails",
                                  "Each workload profile needs a name and a workloadProfileType.")
        out = {k: v for k, v in props.items() if k != "provisioningState"}
        if logs and logs.get("logAnalyticsConfiguration"):
            # The shared key is write-only: keep it aside, show the customer id only.
            ctx.secrets = {"sharedKey": logs["logAnalyticsConfiguration"].get("sharedKey")}
            out["appLogsConfiguration"] = {**logs, "logAnalyticsConfiguration": {
                "customerId": logs["logAnalyticsConfiguration"].get("customerId")}}
        location = ctx.location.replace(" ", "").lower()
        out.update({
            "defaultDomain": old.get("defaultDomain") or
            f"{random.choice(_WORDS)}{random.choice(_NOUNS)}-{secrets.token_hex(4)}.{location}.azurecontainerapps.io",
            "staticIp": old.get("staticIp") or f"20.{random.randint(1, 250)}.{random.randint(1, 250)}.{random.randint(1, 250)}",
            "zoneRedundant": bool(props.get("zoneRedundant", False)),
            "customDomainConfiguration": {"customDomainVerificationId": old.get("customDomainConfiguration", {}).get(
                "customDomainVerificationId") or secrets.token_hex(32).upper()},
            "eventStreamEndpoint": f"https://{location}.azurecontainerapps.dev/subscriptions/{ctx.app.subscription_id}"
                                   f"/resourceGroups/{ctx.group.doc['name']}/managedEnvironments/{ctx.name}/eventstream",
            "infrastructureResourceGroup": old.get("infrastructureResourceGroup") or f"ME_{ctx.name}_{ctx.group.doc['name']}_{location}",
        })
        doc = {"properties": out}
        identity = resolve_identity(ctx.app, ctx.body.get("identity"), ctx.id)
        if identity:
            doc["identity"] = identity
        return doc

    def before_delete(self, app: "StandinApp", res: Resource) -> None:
        users = [r for r in app.store.resources.values()
                 if r.type in ("Microsoft.App/containerApps", "Microsoft.App/jobs")
                 and str(r.properties.get("managedEnvironmentId") or r.properties.get("environmentId")).lower()
                 == res.id.lower()]
        if users:
            raise conflict("ManagedEnvironmentInUse",
                           f"Cannot delete managed environment '{res.doc['name']}' because it still has container "
                           f"apps or jobs: {', '.join(r.doc['name'] for r in users)}.")


def _check_logs(ctx: PutContext, logs: dict) -> None:
    destination = check_enum(logs.get("destination"), ["log-analytics", "azure-monitor", "none"],
                             "appLogsConfiguration.destination")
    if destination != "log-analytics":
        return
    config = logs.get("logAnalyticsConfiguration") or {}
    customer_id, key = config.get("customerId"), config.get("sharedKey")
    if not customer_id or not key:
        raise bad_request("InvalidRequestParameterWithDetails",
                          "appLogsConfiguration.logAnalyticsConfiguration needs customerId and sharedKey when the "
                          "destination is 'log-analytics'.")
    workspace = loganalytics.find_by_customer_id(ctx.app, customer_id)
    if workspace is None:
        raise bad_request("LogAnalyticsWorkspaceNotFound",
                          f"No Log Analytics workspace has customer id '{customer_id}'.")
    if key not in workspace.secrets.values():
        raise bad_request("LogAnalyticsSharedKeyInvalid",
                          f"The shared key given for Log Analytics workspace '{customer_id}' is not valid.")


def register(app: "StandinApp") -> None:
    register_kind(app, ManagedEnvironments())
