"""The artifact store: a locked-down storage account, blob soft delete, the container."""

from __future__ import annotations

from typing import Any

from mlflow_aca.azure import storage as azure_storage
from mlflow_aca.resources.base import Context, Resource, require_name_available


class StorageAccount(Resource):
    key = "storage_account"
    kind = azure_storage.ACCOUNT
    tagged = True
    deps = ("resource_group",)

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, ctx.names.storage_account)

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {
            "location": ctx.settings.location,
            "tags": ctx.tags,
            "sku": {"name": "Standard_LRS"},
            "kind": "StorageV2",
            "properties": {
                "supportsHttpsTrafficOnly": True,
                "minimumTlsVersion": "TLS1_2",
                "allowBlobPublicAccess": False,
                # Only Entra identities reach the data: no account keys, no SAS from keys.
                "allowSharedKeyAccess": False,
            },
        }

    def create(self, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        name = ctx.names.storage_account
        require_name_available(azure_storage.account_name_available(ctx.session, name),
                               what="storage account", name=name, key="storage_account_name",
                               code="StorageAccountAlreadyTaken")
        return super().create(ctx, body)


class BlobService(Resource):
    key = "blob_service"
    kind = azure_storage.BLOB_SERVICE
    deps = ("storage_account",)

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, ctx.names.storage_account)

    def label(self, ctx: Context) -> str:
        return f"blob soft delete on {ctx.names.storage_account}"

    def desired(self, ctx: Context) -> dict[str, Any]:
        retention = {"enabled": True, "days": ctx.settings.blob_soft_delete_days}
        return {
            "properties": {
                "deleteRetentionPolicy": retention,
                "containerDeleteRetentionPolicy": retention,
            }
        }


class BlobContainer(Resource):
    key = "blob_container"
    kind = azure_storage.CONTAINER
    deps = ("storage_account",)

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, ctx.names.storage_account, ctx.names.storage_container)

    def desired(self, ctx: Context) -> dict[str, Any]:
        # MLflow does not create the container itself: uploads fail until it exists.
        return {"properties": {"publicAccess": "None"}}
