"""The artifact store: a locked-down storage account, blob soft delete, the container."""

from __future__ import annotations

from typing import Any

from mlflow_aca.azure import storage as azure_storage
from mlflow_aca.graph import StepResult
from mlflow_aca.resources.base import Context, Resource, require_name_available

# Set (in Context.private) when this run created the storage account.
ACCOUNT_CREATED = "storage_account_created"


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
        state = super().create(ctx, body)
        ctx.private[ACCOUNT_CREATED] = True
        return state


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

    def ensure(self, ctx: Context) -> StepResult:
        """The blob service is not created on its own: it is a singleton child of the account
        (azure-rest-api-specs, Microsoft.Storage BlobServiceProperties.tsp: `@singleton("default")
        @parentResource(StorageAccount)`) that exists, soft delete off, as soon as the account
        does. A plan, which reads no account yet (404), shows it as created with the account; the
        run that created the account writes its settings onto that fresh default and reports it
        created too, not as an update of a service the operator never had: plan and provision
        say the same thing."""
        result = super().ensure(ctx)
        if result.outcome == "updated" and ctx.private.get(ACCOUNT_CREATED):
            return StepResult("created", "", {})
        return result


class BlobContainer(Resource):
    key = "blob_container"
    kind = azure_storage.CONTAINER
    deps = ("storage_account",)

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, ctx.names.storage_account, ctx.names.storage_container)

    def desired(self, ctx: Context) -> dict[str, Any]:
        # MLflow does not create the container itself: uploads fail until it exists.
        return {"properties": {"publicAccess": "None"}}
