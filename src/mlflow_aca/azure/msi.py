"""User-assigned managed identities (Microsoft.ManagedIdentity)."""

from mlflow_aca.azure.arm import Kind

IDENTITY = Kind(
    label="managed identity",
    client="msi",
    get=lambda c, rg, name: c.user_assigned_identities.get(rg, name),
    put=lambda c, rg, name, body: c.user_assigned_identities.create_or_update(rg, name, body),
    delete=lambda c, rg, name: c.user_assigned_identities.delete(rg, name),
    model="azure.mgmt.msi.models:Identity",
)
