"""Resource groups (Microsoft.Resources)."""

from mlflow_aca.azure.arm import Kind

RESOURCE_GROUP = Kind(
    label="resource group",
    client="resources",
    get=lambda c, rg: c.resource_groups.get(rg),
    put=lambda c, rg, body: c.resource_groups.create_or_update(rg, body),
    delete=lambda c, rg: c.resource_groups.begin_delete(rg),
    model="azure.mgmt.resource.resources.models:ResourceGroup",
)
