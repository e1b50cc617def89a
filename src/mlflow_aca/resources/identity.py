"""The deployment's two user-assigned managed identities.

- `Identity` ("identity"): the app's. It pulls the image (AcrPull on the registry), reads and
  writes artifacts (Storage Blob Data Contributor on the artifact container) and signs in to the
  database as a contained user with db_datareader and db_datawriter only (the migration job
  creates that user).
- `MigrationIdentity` ("migration_identity"): the migration job's. With `sql_auth = "entra"` it
  is the SQL server's Entra administrator, so that a flaw in the server (which runs with the
  app's identity) cannot reach every database, login and permission of the server. It holds no
  Azure role.
"""

from __future__ import annotations

from typing import Any

from mlflow_aca.azure.msi import IDENTITY
from mlflow_aca.resources.base import Context, Resource
from mlflow_aca.resources.util import dig


class Identity(Resource):
    key = "identity"
    kind = IDENTITY
    tagged = True
    deps = ("resource_group",)

    def name(self, ctx: Context) -> str:
        return ctx.names.identity

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, self.name(ctx))

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"location": ctx.settings.location, "tags": ctx.tags}

    def publish(self, ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": state.get("id"),
            "principal_id": dig(state, "properties.principalId"),
            "client_id": dig(state, "properties.clientId"),
            "tenant_id": dig(state, "properties.tenantId"),
        }


class MigrationIdentity(Identity):
    key = "migration_identity"

    def name(self, ctx: Context) -> str:
        return ctx.names.migration_identity
