"""Role assignments (Microsoft.Authorization), with deterministic names."""

from __future__ import annotations

import uuid

from mlflow_aca.azure.arm import Kind

ROLE_ASSIGNMENT = Kind(
    label="role assignment",
    client="authorization",
    get=lambda c, scope, name: c.role_assignments.get(scope, name),
    put=lambda c, scope, name, body: c.role_assignments.create(scope, name, body),
    delete=lambda c, scope, name: c.role_assignments.delete(scope, name),
    model="azure.mgmt.authorization.models:RoleAssignmentCreateParameters",
)

# Built-in role definition ids (the same in every cloud).
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ACR_PUSH = "8311e382-0749-4cb8-b61a-304f252e45ec"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"

# A fixed namespace makes assignment names a pure function of (scope, role, principal), so a
# rerun addresses the same assignment instead of creating a duplicate.
_NAMESPACE = uuid.UUID("6f1d2c8e-4f0b-5a7e-9c3d-6d2a1b0e7f41")


def assignment_name(scope: str, role_definition_id: str, principal_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{scope.lower()}|{role_definition_id.lower()}|{principal_id.lower()}"))


def role_definition_path(subscription_id: str, role_id: str) -> str:
    return f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role_id}"
