"""Storage accounts, their blob service settings and blob containers (Microsoft.Storage)."""

from __future__ import annotations

from mlflow_aca.azure import rest
from mlflow_aca.azure.arm import Kind
from mlflow_aca.azure.session import AzureSession

ACCOUNT = Kind(
    label="storage account",
    client="storage",
    get=lambda c, rg, name: c.storage_accounts.get_properties(rg, name),
    # A PUT on an existing account updates its properties (Azure's documented behaviour).
    put=lambda c, rg, name, body: c.storage_accounts.begin_create(rg, name, body),
    delete=lambda c, rg, name: c.storage_accounts.delete(rg, name),
    model="azure.mgmt.storage.models:StorageAccountCreateParameters",
)

BLOB_SERVICE = Kind(
    label="blob service",
    client="storage",
    get=lambda c, rg, account: c.blob_services.get_service_properties(rg, account),
    put=lambda c, rg, account, body: c.blob_services.set_service_properties(rg, account, body),
    delete=None,
    model="azure.mgmt.storage.models:BlobServiceProperties",
)

CONTAINER = Kind(
    label="blob container",
    client="storage",
    get=lambda c, rg, account, name: c.blob_containers.get(rg, account, name),
    # Management-plane container calls work with shared-key access disabled.
    put=lambda c, rg, account, name, body: c.blob_containers.create(rg, account, name, body),
    delete=lambda c, rg, account, name: c.blob_containers.delete(rg, account, name),
    model="azure.mgmt.storage.models:BlobContainer",
)


def account_name_available(session: AzureSession, name: str) -> tuple[bool, str]:
    client = session.client("storage")
    return rest.name_available(
        f"check the storage account name {name}",
        lambda: client.storage_accounts.check_name_availability({"name": name, "type": "Microsoft.Storage/storageAccounts"}),
    )
