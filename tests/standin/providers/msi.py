"""Microsoft.ManagedIdentity: user-assigned identities, and the `identity` block other resources
use to reference them."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from ..arm import bad_request
from ..resources import PutContext, ResourceKind, check_enum, register_kind

if TYPE_CHECKING:
    from ..app import StandinApp

IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$")


class UserAssignedIdentities(ResourceKind):
    namespace = "Microsoft.ManagedIdentity"
    path = "userAssignedIdentities/{name}"
    versions = frozenset({"2018-11-30", "2021-09-30-preview", "2022-01-31-preview", "2023-01-31",
                          "2023-07-31-preview", "2024-11-30", "2025-01-31-preview"})
    put_lro = None
    latency_key = "userAssignedIdentities"
    has_provisioning_state = False

    def validate_name(self, name: str) -> None:
        if not _NAME.match(name):
            raise bad_request("InvalidResourceName",
                              f"Resource name '{name}' is invalid. The name can contain only letters, digits, '-' "
                              "and '_', must start with a letter or digit, and be 3 to 128 characters long.")

    def build(self, ctx: PutContext) -> dict:
        old = ctx.old_properties
        props = {"tenantId": ctx.app.tenant_id,
                 "principalId": old.get("principalId") or str(uuid.uuid4()),
                 "clientId": old.get("clientId") or str(uuid.uuid4())}
        if ctx.properties.get("isolationScope"):
            props["isolationScope"] = check_enum(ctx.properties["isolationScope"], ["None", "Regional"],
                                                 "properties.isolationScope")
        if ctx.existing is None and ctx.app.store.replication_delay:
            # Entra replicates a new service principal lazily: role assignments fail for a while.
            ctx.app.store.pending_replication[props["principalId"]] = ctx.app.store.replication_delay
        return {"properties": props}


def register(app: "StandinApp") -> None:
    register_kind(app, UserAssignedIdentities())


def resolve_identity(app: "StandinApp", block: Any, owner_id: str) -> dict | None:
    """Validate a resource's `identity` block and return it as ARM reports it.

    Every user-assigned identity id must exist (ARM answers FailedIdentityOperation otherwise);
    principal and client ids are filled in; a system-assigned identity gets a principal.
    """
    if block is None:
        return None
    if not isinstance(block, dict):
        raise bad_request("InvalidRequestContent", "The 'identity' property must be an object.")
    kind = check_enum(block.get("type", "None"), ["None", "SystemAssigned", "UserAssigned",
                                                  "SystemAssigned,UserAssigned"], "identity.type",
                      code="InvalidIdentityType")
    users = block.get("userAssignedIdentities") or {}
    if "UserAssigned" in kind and not users:
        raise bad_request("BadRequest", "The 'userAssignedIdentities' property is required when identity type "
                                        f"is '{kind}'.")
    if users and "UserAssigned" not in kind:
        raise bad_request("BadRequest", "The 'userAssignedIdentities' property can only be given with an "
                                        "identity type that includes 'UserAssigned'.")
    out: dict[str, Any] = {"type": kind}
    if "SystemAssigned" in kind:
        out["principalId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, owner_id.lower()))
        out["tenantId"] = app.tenant_id
    if users:
        out["userAssignedIdentities"] = {}
        for identity_id in users:
            identity = app.store.get(identity_id)
            if identity is None or identity.type != IDENTITY_TYPE:
                raise bad_request("FailedIdentityOperation",
                                  f"Identity operation for resource '{owner_id}' failed with error 'Failed to "
                                  f"perform resource identity operation. Status: 'NotFound'. Response: "
                                  f"'{{\"error\":{{\"code\":\"ResourceNotFound\",\"message\":\"The user assigned "
                                  f"identity '{identity_id}' was not found.\"}}}}''.")
            out["userAssignedIdentities"][identity.id] = {"principalId": identity.properties["principalId"],
                                                          "clientId": identity.properties["clientId"]}
    return out
