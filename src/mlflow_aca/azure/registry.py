"""Container registries (Microsoft.ContainerRegistry)."""

from __future__ import annotations

from mlflow_aca.azure import rest
from mlflow_aca.azure.arm import Kind
from mlflow_aca.azure.session import AzureSession

REGISTRY = Kind(
    label="container registry",
    client="registry",
    get=lambda c, rg, name: c.registries.get(rg, name),
    put=lambda c, rg, name, body: c.registries.begin_create(rg, name, body),
    delete=lambda c, rg, name: c.registries.begin_delete(rg, name),
    model="azure.mgmt.containerregistry.models:Registry",
)


def name_available(session: AzureSession, name: str) -> tuple[bool, str]:
    client = session.client("registry")
    return rest.name_available(
        f"check the registry name {name}",
        lambda: client.registries.check_name_availability({"name": name, "type": "Microsoft.ContainerRegistry/registries"}),
    )
