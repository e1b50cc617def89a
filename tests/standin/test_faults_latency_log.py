"""Scripted faults and how azure-core rides them out, the latency model, and the request log."""

import time

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError

from tests.standin import faults
from tests.standin.latency import parse_scale
from tests.standin.requestlog import redact_body

from .conftest import LOCATION


def _statuses(standin, path, method=None):
    return [e["status"] for e in standin.requests(method, path)]


def test_throttling_with_retry_after_is_retried(standin, azure, group):
    standin.add_fault(faults.throttled(r"/userAssignedIdentities/id-mlflow$", retry_after=1, method="GET"))
    started = time.monotonic()
    assert azure.msi.user_assigned_identities.get(group.name, "id-mlflow").name == "id-mlflow"
    assert time.monotonic() - started >= 1.0          # the client waited as told
    assert _statuses(standin, "/userAssignedIdentities/id-mlflow", "GET") == [429, 200]
    assert standin.faults() == []


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_for_get_and_post(standin, azure, group, status):
    standin.add_fault(faults.server_error(r"/resourcegroups/rg-test$", status=status, method="GET"))
    assert azure.resources.resource_groups.get(group.name).name == group.name
    standin.add_fault(faults.server_error(r"/checkNameAvailability$", status=status, method="POST", times=2))
    assert azure.storage.storage_accounts.check_name_availability(
        {"name": "stmlflow01", "type": "Microsoft.Storage/storageAccounts"}).name_available
    assert _statuses(standin, "/checkNameAvailability") == [status, status, 200]


def test_persistent_server_errors_surface_after_the_retry_budget(standin, azure, group):
    standin.add_fault(faults.server_error(r"/resourcegroups/rg-test$", method="GET", times=10))
    with pytest.raises(HttpResponseError) as err:
        azure.resources.resource_groups.get(group.name)
    assert err.value.status_code == 500 and err.value.error.code == "InternalServerError"
    assert len(standin.requests("GET", "/resourcegroups/rg-test")) == 4        # 1 + retry_status (3)


def test_dropped_connection_is_retried(standin, azure, group):
    standin.add_fault(faults.dropped(r"/userAssignedIdentities/id-mlflow$", method="GET"))
    assert azure.msi.user_assigned_identities.get(group.name, "id-mlflow").name == "id-mlflow"
    assert _statuses(standin, "/userAssignedIdentities/id-mlflow", "GET") == [0, 200]
    assert standin.requests("GET", "/userAssignedIdentities/id-mlflow")[0]["fault"] == "drop"


def test_lro_ending_failed(standin, azure, group):
    from azure.mgmt.containerregistry.models import Registry, Sku
    standin.add_fault(faults.lro_failed(r"/registries/acrmlflow01$", "InternalServerError", "Registry creation failed."))
    with pytest.raises(HttpResponseError) as err:
        azure.acr.registries.begin_create(group.name, "acrmlflow01", Registry(location=LOCATION, sku=Sku(name="Basic"))
                                          ).result()
    assert err.value.error.code == "InternalServerError"
    assert azure.acr.registries.get(group.name, "acrmlflow01").provisioning_state == "Failed"
    standin.add_fault(faults.lro_failed(r"/registries/acrmlflow01$", "RegistryDeleteFailed", method="DELETE"))
    with pytest.raises(HttpResponseError) as err:
        azure.acr.registries.begin_delete(group.name, "acrmlflow01").result()
    assert err.value.error.code == "RegistryDeleteFailed"
    assert azure.acr.registries.get(group.name, "acrmlflow01").name == "acrmlflow01"


def test_lro_ending_failed_on_a_location_poll(standin, azure, group):
    from azure.mgmt.storage.models import Sku, StorageAccountCreateParameters
    standin.add_fault(faults.lro_failed(r"/storageAccounts/stmlflow01$", "StorageProvisioningFailed"))
    with pytest.raises(HttpResponseError) as err:
        azure.storage.storage_accounts.begin_create(group.name, "stmlflow01", StorageAccountCreateParameters(
            sku=Sku(name="Standard_LRS"), kind="StorageV2", location=LOCATION)).result()
    assert err.value.error.code == "StorageProvisioningFailed"


def test_missing_registration_on_a_long_running_put_is_not_auto_registered(standin, azure, group):
    standin.unregister_provider("Microsoft.OperationalInsights")
    with pytest.raises(ResourceExistsError) as err:
        azure.logs.workspaces.begin_create_or_update(group.name, "log-mlflow", {"location": LOCATION}).result()
    assert err.value.error.code == "MissingSubscriptionRegistration"
    azure.resources.providers.register("Microsoft.OperationalInsights")
    assert azure.logs.workspaces.begin_create_or_update(group.name, "log-mlflow", {"location": LOCATION}).result().name


@pytest.mark.slow
def test_missing_registration_is_registered_by_the_sdk_policy(standin, azure, group):
    # azure-mgmt-core registers the provider itself on a synchronous call, then waits a hard-coded 10 s.
    standin.add_fault(faults.missing_registration(r"/userAssignedIdentities/id-two$", "Microsoft.ManagedIdentity",
                                                  method="PUT"))
    identity = azure.msi.user_assigned_identities.create_or_update(group.name, "id-two", {"location": LOCATION})
    assert identity.name == "id-two"
    assert [e["path"].rsplit("/", 2)[-2:] for e in standin.requests("POST")] == [["Microsoft.ManagedIdentity", "register"]]


def test_another_operation_in_progress(standin, azure, group):
    from azure.mgmt.containerregistry.models import Registry, Sku
    standin.add_fault(faults.operation_in_progress(r"/userAssignedIdentities/id-mlflow$", method="PUT"))
    with pytest.raises(ResourceExistsError) as err:
        azure.msi.user_assigned_identities.create_or_update(group.name, "id-mlflow", {"location": LOCATION})
    assert err.value.error.code == "AnotherOperationInProgress"
    # the state-based one: a second write while the first operation still runs
    standin.set_latency(1)
    azure.acr.registries.begin_create(group.name, "acrmlflow01", Registry(location=LOCATION, sku=Sku(name="Basic")))
    with pytest.raises(ResourceExistsError) as err:
        azure.acr.registries.begin_create(group.name, "acrmlflow01", Registry(location=LOCATION, sku=Sku(name="Basic")))
    assert err.value.error.code == "AnotherOperationInProgress"


def test_scripted_principal_not_found(standin, azure, group):
    import uuid
    from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
    standin.add_fault(faults.principal_not_found(times=1))
    params = RoleAssignmentCreateParameters(
        role_definition_id=f"/subscriptions/{azure.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/"
                           "7f951dda-4ed3-4680-a7ca-43fe172d538d", principal_id=group.identity.principal_id,
        principal_type="ServicePrincipal")
    with pytest.raises(HttpResponseError) as err:
        azure.auth.role_assignments.create(group.id, str(uuid.uuid4()), params)
    assert err.value.error.code == "PrincipalNotFound"
    assert azure.auth.role_assignments.create(group.id, str(uuid.uuid4()), params).principal_id


# -- latency ------------------------------------------------------------------------------------------------
def test_latency_model_scales_real_durations(standin, azure, group):
    from azure.mgmt.storage.models import Sku, StorageAccountCreateParameters
    assert parse_scale("real/100") == 0.01 and parse_scale("real") == 1.0 and parse_scale("0.5") == 0.5
    standin.set_latency("real/100")                   # storage account: ~30 s → 0.3 s
    started = time.monotonic()
    azure.storage.storage_accounts.begin_create(group.name, "stmlflow01", StorageAccountCreateParameters(
        sku=Sku(name="Standard_LRS"), kind="StorageV2", location=LOCATION)).result()
    assert time.monotonic() - started >= 0.3
    polls = _statuses(standin, "/operationResults/", "GET")
    assert polls[-1] == 200 and set(polls[:-1]) == {202} and len(polls) > 1


def test_no_retry_after_on_long_running_operations_by_default(standin, azure, group, standin_env):
    token = standin.issue_token()
    response = requests.put(f"{standin.url}{group.id}/providers/Microsoft.ContainerRegistry/registries/acrmlflow01"
                            "?api-version=2025-11-01", json={"location": LOCATION, "sku": {"name": "Basic"}},
                            headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert response.status_code == 201 and "Azure-AsyncOperation" in response.headers
    assert "Retry-After" not in response.headers
    assert response.json()["properties"]["provisioningState"] == "Creating"
    status = requests.get(response.headers["Azure-AsyncOperation"], headers={"Authorization": f"Bearer {token}"},
                          timeout=5)
    assert status.json()["status"] == "Succeeded" and "Retry-After" not in status.headers


# -- request log ---------------------------------------------------------------------------------------------
def test_request_log_redacts_secret_values():
    body = {"properties": {
        "administratorLoginPassword": "p@ss", "administratorLogin": "mlflowadmin",
        "configuration": {"secrets": [{"name": "db", "value": "s3cret"}],
                          "registries": [{"server": "r", "username": "u", "passwordSecretRef": "db"}]},
        "template": {"containers": [{"env": [{"name": "A", "value": "plain"}, {"name": "B", "secretRef": "db"}]}]},
        "appLogsConfiguration": {"logAnalyticsConfiguration": {"customerId": "c", "sharedKey": "k"}}}}
    redacted = redact_body(body)["properties"]
    assert redacted["administratorLoginPassword"] == "***" and redacted["administratorLogin"] == "mlflowadmin"
    assert redacted["configuration"]["secrets"] == [{"name": "db", "value": "***"}]
    assert redacted["configuration"]["registries"][0]["passwordSecretRef"] == "db"
    assert redacted["template"]["containers"][0]["env"] == [{"name": "A", "value": "plain"},
                                                            {"name": "B", "secretRef": "db"}]
    assert redacted["appLogsConfiguration"]["logAnalyticsConfiguration"] == {"customerId": "c", "sharedKey": "***"}
    form = redact_body("grant_type=access_token&service=x.azurecr.io&access_token=eyJ&refresh_token=abc")
    assert form == "grant_type=access_token&service=x.azurecr.io&access_token=%2A%2A%2A&refresh_token=%2A%2A%2A"


def test_request_log_keeps_settings_whose_names_mention_keys():
    """A boolean or a number is a setting to audit, not a secret: `allowSharedKeyAccess: false`
    must stay visible (it is the storage account's most important security setting)."""
    body = {"properties": {"allowSharedKeyAccess": False, "disableLocalAuth": True, "keyVaultReferences": None,
                           "primaryKey": "s3cret", "key1": "k1", "sharedKeyExpiryDays": 30}}
    redacted = redact_body(body)["properties"]
    assert redacted["allowSharedKeyAccess"] is False and redacted["sharedKeyExpiryDays"] == 30
    assert redacted["disableLocalAuth"] is True and redacted["keyVaultReferences"] is None
    assert redacted["primaryKey"] == redacted["key1"] == "***"


def test_request_log_entries(standin, azure, group):
    entries = standin.requests(path="/userAssignedIdentities/id-mlflow")
    (entry,) = entries
    assert entry["method"] == "PUT" and entry["status"] == 201 and entry["api_version"] == "2024-11-30"
    assert entry["body"]["location"] == LOCATION and entry["time"].endswith("Z")
    standin.clear_requests()
    assert standin.requests() == []
