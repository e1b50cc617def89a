"""Role definitions and role assignments."""

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError

ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ACR_PUSH = "8311e382-0749-4cb8-b61a-304f252e45ec"
BLOB_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"


def _error(call):
    with pytest.raises(HttpResponseError) as err:
        call()
    return err.value


def _role(azure, role):
    return f"/subscriptions/{azure.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}"


def _params(azure, principal, role=ACR_PULL, principal_type="ServicePrincipal"):
    from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
    return RoleAssignmentCreateParameters(role_definition_id=_role(azure, role), principal_id=principal,
                                          principal_type=principal_type)


def test_sdk_default_principal_type_is_user(azure, group):
    # RoleAssignmentCreateParameters defaults principal_type to "User": an identity needs "ServicePrincipal".
    from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
    params = RoleAssignmentCreateParameters(role_definition_id=_role(azure, ACR_PULL),
                                            principal_id=group.identity.principal_id)
    assert _error(lambda: azure.auth.role_assignments.create(group.id, str(uuid.uuid4()), params)).error.code == \
        "UnmatchedPrincipalType"


def test_built_in_role_definitions(azure, group):
    definitions = azure.auth.role_definitions
    for role, name in ((ACR_PULL, "AcrPull"), (ACR_PUSH, "AcrPush"), (BLOB_CONTRIBUTOR, "Storage Blob Data Contributor")):
        assert definitions.get(group.id, role).role_name == name
    (found,) = definitions.list(f"/subscriptions/{azure.subscription_id}", filter="roleName eq 'AcrPull'")
    assert found.name == ACR_PULL


def test_assignment_is_idempotent_under_its_guid_name(azure, group):
    assignments = azure.auth.role_assignments
    name = str(uuid.uuid5(uuid.NAMESPACE_URL, group.id + "acrpull"))
    created = assignments.create(group.id, name, _params(azure, group.identity.principal_id))
    assert created.scope == group.id and created.principal_id == group.identity.principal_id
    again = assignments.create(group.id, name, _params(azure, group.identity.principal_id))
    assert again.id == created.id
    assert [a.name for a in assignments.list_for_scope(group.id, filter=f"principalId eq '{group.identity.principal_id}'")
            ] == [name]
    assert _error(lambda: assignments.create(group.id, name, _params(azure, group.identity.principal_id, ACR_PUSH))
                  ).error.code == "RoleAssignmentUpdateNotPermitted"
    duplicate = _error(lambda: assignments.create(group.id, str(uuid.uuid4()), _params(azure, group.identity.principal_id)))
    assert isinstance(duplicate, ResourceExistsError) and duplicate.error.code == "RoleAssignmentExists"
    assignments.delete(group.id, name)
    assert list(assignments.list_for_scope(group.id)) == []


@pytest.mark.parametrize("case, code", [
    ("name", "InvalidRoleAssignmentId"),
    ("role", "RoleDefinitionDoesNotExist"),
    ("principal", "PrincipalNotFound"),
    ("type", "UnmatchedPrincipalType"),
    ("scope", "ResourceNotFound"),
])
def test_assignment_validation(azure, group, case, code):
    principal = group.identity.principal_id
    name, scope, params = str(uuid.uuid4()), group.id, _params(azure, principal)
    if case == "name":
        name = "acrpull-for-mlflow"
    elif case == "role":
        params = _params(azure, principal, role=str(uuid.uuid4()))
    elif case == "principal":
        params = _params(azure, str(uuid.uuid4()))
    elif case == "type":
        params = _params(azure, principal, principal_type="User")
    else:
        scope = group.id + "/providers/Microsoft.ContainerRegistry/registries/acrabsent"
    assert _error(lambda: azure.auth.role_assignments.create(scope, name, params)).error.code == code


def test_assignment_on_a_resource_scope_goes_with_the_resource(standin, azure, group):
    from azure.mgmt.containerregistry.models import Registry, Sku
    registry = azure.acr.registries.begin_create(group.name, "acrmlflow01", Registry(
        location="westeurope", sku=Sku(name="Basic"))).result()
    azure.auth.role_assignments.create(registry.id, str(uuid.uuid4()), _params(azure, group.identity.principal_id))
    assert len(list(azure.auth.role_assignments.list_for_scope(group.id))) == 1      # below the group
    assert len(list(azure.auth.role_assignments.list_for_scope(group.id, filter="atScope()"))) == 0
    azure.acr.registries.begin_delete(group.name, "acrmlflow01").result()
    assert standin.resources("Microsoft.Authorization/roleAssignments") == []


def test_replication_delay_refuses_a_new_identity_a_few_times(standin, azure, group):
    standin.set_replication_delay(2)
    identity = azure.msi.user_assigned_identities.create_or_update(group.name, "id-new", {"location": "westeurope"})
    params = _params(azure, identity.principal_id)
    name = str(uuid.uuid4())
    for _ in range(2):
        assert _error(lambda: azure.auth.role_assignments.create(group.id, name, params)).error.code == "PrincipalNotFound"
    assert azure.auth.role_assignments.create(group.id, name, params).principal_id == identity.principal_id
    # identities created before the setting are replicated already
    assert azure.auth.role_assignments.create(group.id, str(uuid.uuid4()), _params(
        azure, group.identity.principal_id)).name
