"""Log Analytics workspaces (Microsoft.OperationalInsights)."""

from __future__ import annotations

from mlflow_aca.azure import rest
from mlflow_aca.azure.arm import Kind
from mlflow_aca.azure.session import AzureSession
from mlflow_aca.redaction import register_secret

WORKSPACE = Kind(
    label="Log Analytics workspace",
    client="logs",
    get=lambda c, rg, name: c.workspaces.get(rg, name),
    put=lambda c, rg, name, body: c.workspaces.begin_create_or_update(rg, name, body),
    # force: skip the 14-day soft-delete so a deliberate --delete-data frees the name.
    delete=lambda c, rg, name: c.workspaces.begin_delete(rg, name, force=True),
    model="azure.mgmt.loganalytics.models:Workspace",
)


def shared_key(session: AzureSession, resource_group: str, name: str) -> str:
    """The workspace's primary key, which the Container Apps environment needs to send logs."""
    client = session.client("logs")
    keys = rest.run(f"read the shared key of workspace {name}",
                    lambda: client.shared_keys.get_shared_keys(resource_group, name))
    key = keys.get("primarySharedKey") or ""
    register_secret(key)
    return key
