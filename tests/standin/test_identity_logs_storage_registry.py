"""User-assigned identities, Log Analytics, storage accounts and container registries through
the real SDK clients."""

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from .conftest import LOCATION


def _error(call):
    with pytest.raises(HttpResponseError) as err:
        call()
    return err.value


# -- identities -------------------------------------------------------------------------------------
def test_identity_ids_are_generated_and_kept(standin, azure, group):
    ids = azure.msi.user_assigned_identities
    first = group.identity
    assert first.tenant_id == standin.tenant_id
    again = ids.create_or_update(group.name, "id-mlflow", {"location": LOCATION, "tags": {"a": "b"}})
    assert (again.principal_id, again.client_id, again.tags) == (first.principal_id, first.client_id, {"a": "b"})
    ids.delete(group.name, "id-mlflow")
    assert isinstance(_error(lambda: ids.get(group.name, "id-mlflow")), ResourceNotFoundError)


@pytest.mark.parametrize("name", ["ab", "-leading", "has space", "x" * 129])
def test_identity_name_rules(azure, group, name):
    err = _error(lambda: azure.msi.user_assigned_identities.create_or_update(group.name, name, {"location": LOCATION}))
    assert err.error.code == "InvalidResourceName"


def test_tracked_resources_need_a_known_location_that_never_changes(azure, group):
    ids = azure.msi.user_assigned_identities
    assert _error(lambda: ids.create_or_update(group.name, "id2", {})).error.code == "LocationRequired"
    assert _error(lambda: ids.create_or_update(group.name, "id2", {"location": "atlantis"})).error.code == \
        "LocationNotAvailableForResourceType"
    assert _error(lambda: ids.create_or_update(group.name, "id-mlflow", {"location": "eastus"})).error.code == \
        "InvalidResourceLocation"
    assert _error(lambda: ids.create_or_update(group.name, "id2", {"location": LOCATION, "tags": {"a/b": "c"}})
                  ).error.code == "InvalidTagNameCharacters"
    assert ids.create_or_update(group.name, "id2", {"location": "West Europe"}).location == "westeurope"


# -- Log Analytics ------------------------------------------------------------------------------------
def test_workspace_is_a_long_running_create_with_write_only_keys(standin, azure, group):
    from azure.mgmt.loganalytics.models import Workspace, WorkspaceSku
    standin.set_latency(0.004)            # ~0.1 s: the first poll still sees it running
    poller = azure.logs.workspaces.begin_create_or_update(
        group.name, "log-mlflow", Workspace(location=LOCATION, sku=WorkspaceSku(name="PerGB2018"), retention_in_days=30))
    assert poller.status() in ("InProgress", "Creating")
    workspace = poller.result()
    assert workspace.provisioning_state == "Succeeded" and workspace.customer_id
    keys = azure.logs.shared_keys.get_shared_keys(group.name, "log-mlflow")
    assert keys.primary_shared_key and keys.secondary_shared_key
    shown = azure.logs.workspaces.get(group.name, "log-mlflow").as_dict()
    assert keys.primary_shared_key not in str(shown)
    puts = [e for e in standin.requests("PUT", "/workspaces/")]
    assert puts and puts[0]["status"] == 201


@pytest.mark.parametrize("name, body, code", [
    ("log", {"sku": {"name": "PerGB2018"}}, "InvalidParameter"),
    ("log-mlflow", {"sku": {"name": "Gold"}}, "InvalidParameter"),
    ("log-mlflow", {"sku": {"name": "PerGB2018"}, "retentionInDays": 7}, "InvalidParameter"),
])
def test_workspace_validation(azure, group, name, body, code):
    err = _error(lambda: azure.logs.workspaces.begin_create_or_update(
        group.name, name, {"location": LOCATION, "properties": body}).result())
    assert err.error.code == code


# -- storage ---------------------------------------------------------------------------------------------
def _account(name="stmlflow01", **overrides):
    from azure.mgmt.storage.models import Sku, StorageAccountCreateParameters
    settings = dict(sku=Sku(name="Standard_LRS"), kind="StorageV2", location=LOCATION, allow_blob_public_access=False,
                    allow_shared_key_access=False, minimum_tls_version="TLS1_2", enable_https_traffic_only=True)
    settings.update(overrides)
    return name, StorageAccountCreateParameters(**settings)


def test_storage_account_create_and_name_availability(standin, azure, group):
    accounts = azure.storage.storage_accounts
    available = accounts.check_name_availability({"name": "stmlflow01", "type": "Microsoft.Storage/storageAccounts"})
    assert available.name_available is True
    name, params = _account()
    account = accounts.begin_create(group.name, name, params).result()
    assert account.provisioning_state == "Succeeded"
    assert account.primary_endpoints.blob == "https://stmlflow01.blob.core.windows.net/"
    assert (account.allow_shared_key_access, account.minimum_tls_version, account.enable_https_traffic_only) == \
        (False, "TLS1_2", True)
    create = standin.requests("PUT", "/storageAccounts/stmlflow01")[0]
    assert create["status"] == 202          # storage answers 202 + Location, not 201
    taken = accounts.check_name_availability({"name": "stmlflow01", "type": "Microsoft.Storage/storageAccounts"})
    assert (taken.name_available, taken.reason) == (False, "AlreadyExists")
    invalid = accounts.check_name_availability({"name": "St-Bad", "type": "Microsoft.Storage/storageAccounts"})
    assert (invalid.name_available, invalid.reason) == (False, "AccountNameInvalid")
    # a PUT on an existing account is a synchronous update
    updated = accounts.begin_create(group.name, *_account(tags={"x": "y"})).result()
    assert updated.tags == {"x": "y"}


def test_storage_account_names_are_global(standin, azure, group):
    accounts = azure.storage.storage_accounts
    azure.resources.resource_groups.create_or_update("rg-other", {"location": LOCATION})
    accounts.begin_create(group.name, *_account()).result()
    err = _error(lambda: accounts.begin_create("rg-other", *_account()).result())
    assert isinstance(err, ResourceExistsError) and err.error.code == "StorageAccountAlreadyExists"
    standin.take_name("storage", "stsomeoneelse")
    err = _error(lambda: accounts.begin_create(group.name, *_account("stsomeoneelse")).result())
    assert err.status_code == 409 and err.error.code == "StorageAccountAlreadyTaken"


@pytest.mark.parametrize("overrides, code", [
    ({"name": "Upper"}, "AccountNameInvalid"),
    ({"name": "ab"}, "AccountNameInvalid"),
    ({"sku": None}, "MissingRequiredProperty"),
    ({"sku": {"name": "Standard_XYZ"}}, "InvalidRequestPropertyValue"),
    ({"kind": "Blobby"}, "InvalidRequestPropertyValue"),
    ({"minimum_tls_version": "TLS9"}, "InvalidRequestPropertyValue"),
])
def test_storage_account_validation(azure, group, overrides, code):
    name = overrides.pop("name", "stmlflow01")
    _, params = _account(name)
    body = params.as_dict()
    for key, value in overrides.items():
        camel = {"minimum_tls_version": "minimumTlsVersion"}.get(key)
        if camel:
            body["properties"][camel] = value
        elif value is None:
            body.pop(key, None)
        else:
            body[key] = value
    err = _error(lambda: azure.storage.storage_accounts.begin_create(group.name, name, body).result())
    assert err.error.code == code


def test_storage_account_immutable_properties(azure, group):
    accounts = azure.storage.storage_accounts
    accounts.begin_create(group.name, *_account()).result()
    err = _error(lambda: accounts.begin_create(group.name, *_account(kind="BlockBlobStorage")).result())
    assert (err.status_code, err.error.code) == (409, "InvalidAccountKindUpgrade")
    err = _error(lambda: accounts.begin_create(group.name, *_account(location="eastus")).result())
    assert err.error.code == "InvalidResourceLocation"


def test_blob_service_soft_delete_and_containers(azure, group):
    from azure.mgmt.storage.models import BlobContainer, BlobServiceProperties, DeleteRetentionPolicy
    azure.storage.storage_accounts.begin_create(group.name, *_account()).result()
    blob = azure.storage.blob_services
    assert blob.get_service_properties(group.name, "stmlflow01").delete_retention_policy.enabled is False
    settings = BlobServiceProperties(delete_retention_policy=DeleteRetentionPolicy(enabled=True, days=7),
                                     container_delete_retention_policy=DeleteRetentionPolicy(enabled=True, days=7))
    blob.set_service_properties(group.name, "stmlflow01", settings)
    policy = blob.get_service_properties(group.name, "stmlflow01").delete_retention_policy
    assert (policy.enabled, policy.days) == (True, 7)
    too_long = BlobServiceProperties(delete_retention_policy=DeleteRetentionPolicy(enabled=True, days=400))
    assert _error(lambda: blob.set_service_properties(group.name, "stmlflow01", too_long)).error.code == \
        "InvalidRequestPropertyValue"
    containers = azure.storage.blob_containers
    created = containers.create(group.name, "stmlflow01", "mlflow-artifacts", BlobContainer())
    assert created.public_access == "None"
    assert [c.name for c in containers.list(group.name, "stmlflow01")] == ["mlflow-artifacts"]
    assert _error(lambda: containers.create(group.name, "stmlflow01", "Bad--Name", BlobContainer())).error.code == \
        "ContainerOperationFailure"
    assert _error(lambda: containers.create(group.name, "stmlflow01", "public", BlobContainer(public_access="Blob"))
                  ).error.code == "PublicAccessNotPermitted"
    assert _error(lambda: containers.create(group.name, "stabsent01", "c01", BlobContainer())).error.code == \
        "ParentResourceNotFound"
    azure.storage.storage_accounts.delete(group.name, "stmlflow01")
    assert _error(lambda: containers.get(group.name, "stmlflow01", "mlflow-artifacts")).status_code == 404


# -- container registry ---------------------------------------------------------------------------------
def _registry(**overrides):
    from azure.mgmt.containerregistry.models import Registry, Sku
    settings = dict(location=LOCATION, sku=Sku(name="Basic"), admin_user_enabled=False)
    settings.update(overrides)
    return Registry(**settings)


def test_registry_create_login_server_and_names(standin, azure, group):
    registries = azure.acr.registries
    assert registries.check_name_availability({"name": "acrmlflow01", "type": "Microsoft.ContainerRegistry/registries"}
                                              ).name_available is True
    registry = registries.begin_create(group.name, "acrMlflow01", _registry()).result()
    assert registry.login_server == "acrmlflow01.azurecr.io"
    assert (registry.provisioning_state, registry.admin_user_enabled) == ("Succeeded", False)
    taken = registries.check_name_availability({"name": "ACRMLFLOW01", "type": "Microsoft.ContainerRegistry/registries"})
    assert (taken.name_available, taken.reason) == (False, "AlreadyExists")
    assert registries.check_name_availability({"name": "a-b", "type": "Microsoft.ContainerRegistry/registries"}
                                              ).reason == "Invalid"
    azure.resources.resource_groups.create_or_update("rg-other", {"location": LOCATION})
    err = _error(lambda: registries.begin_create("rg-other", "acrmlflow01", _registry()).result())
    assert (err.status_code, err.error.code) == (409, "AlreadyInUse")
    registries.begin_delete(group.name, "acrMlflow01").result()
    assert registries.check_name_availability({"name": "acrmlflow01", "type": "Microsoft.ContainerRegistry/registries"}
                                              ).name_available is True


def test_registry_validation(azure, group):
    from azure.mgmt.containerregistry.models import IdentityProperties, Sku, UserIdentityProperties
    registries = azure.acr.registries
    assert _error(lambda: registries.begin_create(group.name, "acr-bad", _registry()).result()).error.code == \
        "InvalidResourceName"
    assert _error(lambda: registries.begin_create(group.name, "acrmlflow01", _registry(sku=Sku(name="Gold")))
                  .result()).error.code == "InvalidSku"
    missing = group.identity.id.replace("id-mlflow", "id-absent")
    identity = IdentityProperties(type="UserAssigned", user_assigned_identities={missing: UserIdentityProperties()})
    assert _error(lambda: registries.begin_create(group.name, "acrmlflow01", _registry(identity=identity)).result()
                  ).error.code == "FailedIdentityOperation"
    ok = IdentityProperties(type="UserAssigned", user_assigned_identities={group.identity.id: UserIdentityProperties()})
    registry = registries.begin_create(group.name, "acrmlflow01", _registry(identity=ok)).result()
    assert registry.identity.user_assigned_identities[group.identity.id].principal_id == group.identity.principal_id
