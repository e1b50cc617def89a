"""One refused request for each remaining validation rule, sent as raw ARM requests (the SDK
models would refuse some of these bodies before sending them)."""

import copy

import pytest
import requests

from .conftest import LOCATION, app_body


@pytest.fixture
def arm(standin, standin_env, group):
    token = standin.issue_token()
    base = f"{standin.url}{group.id}/providers"

    def call(method, path, body=None, version=None):
        namespace = path.split("/")[0]
        version = version or {"Microsoft.ManagedIdentity": "2024-11-30", "Microsoft.Storage": "2026-09-01",
                              "Microsoft.ContainerRegistry": "2025-11-01", "Microsoft.Sql": "2025-01-01",
                              "Microsoft.App": "2026-07-01", "Microsoft.OperationalInsights": "2025-07-01",
                              "Microsoft.Authorization": "2022-04-01"}[namespace]
        url = path if path.startswith("/") else f"{base}/{path}"
        if url.startswith("/"):
            url = standin.url + url
        return requests.request(method, f"{url}?api-version={version}", json=body, timeout=5,
                                headers={"Authorization": f"Bearer {token}"})
    return call


def refused(response, status, code):
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
    return True


SQL = "Microsoft.Sql/servers/sql-rules"


@pytest.fixture
def sql_server(arm):
    arm("PUT", SQL, {"location": LOCATION, "properties": {
        "administratorLogin": "mlflowadmin", "administratorLoginPassword": "S3cure!passw0rd"}})
    return SQL


@pytest.mark.parametrize("path, body, status, code", [
    ("Microsoft.ManagedIdentity/userAssignedIdentities/id-x",
     {"location": LOCATION, "tags": {f"t{i}": "v" for i in range(51)}}, 400, "InvalidTagCount"),
    ("Microsoft.ManagedIdentity/userAssignedIdentities/id-x",
     {"location": LOCATION, "tags": {"t": "v" * 257}}, 400, "InvalidTagValueLength"),
    ("Microsoft.ManagedIdentity/userAssignedIdentities/id-x",
     {"location": LOCATION, "properties": {"isolationScope": "Global"}}, 400, "InvalidParameterValue"),
    ("Microsoft.ContainerRegistry/registries/acrrules01", {"location": LOCATION}, 400, "MissingRequiredProperty"),
    ("Microsoft.ContainerRegistry/registries/acrrules01",
     {"location": LOCATION, "sku": {"name": "Basic"}, "properties": {"adminUserEnabled": "no"}},
     400, "InvalidParameterValue"),
    ("Microsoft.ContainerRegistry/registries/acrrules01",
     {"location": LOCATION, "sku": {"name": "Basic"}, "properties": {"roleAssignmentMode": "Whatever"}},
     400, "InvalidParameterValue"),
    ("Microsoft.ContainerRegistry/registries/acrrules01",
     {"location": LOCATION, "sku": {"name": "Basic"}, "identity": {"type": "Magic"}}, 400, "InvalidIdentityType"),
    ("Microsoft.ContainerRegistry/registries/acrrules01",
     {"location": LOCATION, "sku": {"name": "Basic"}, "identity": {"type": "UserAssigned"}}, 400, "BadRequest"),
    ("Microsoft.Storage/storageAccounts/strules01",
     {"location": LOCATION, "sku": {"name": "Standard_LRS"}, "kind": "StorageV2",
      "properties": {"supportsHttpsTrafficOnly": "yes"}}, 400, "InvalidRequestPropertyValue"),
    ("Microsoft.Storage/storageAccounts/strules01",
     {"location": LOCATION, "sku": {"name": "Standard_LRS"}}, 400, "MissingRequiredProperty"),
])
def test_body_rules(arm, path, body, status, code):
    assert refused(arm("PUT", path, body), status, code)


def test_storage_rules(arm):
    account = "Microsoft.Storage/storageAccounts/strules01"
    arm("PUT", account, {"location": LOCATION, "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"})
    assert refused(arm("PUT", account, {"location": LOCATION, "sku": {"name": "Premium_LRS"}, "kind": "StorageV2"}),
                   409, "InvalidSkuTierChange")
    assert refused(arm("PUT", account + "/blobServices/other", {"properties": {}}), 400, "InvalidResourceName")
    assert refused(arm("PUT", account + "/blobServices/default/containers/c01", {"properties": {"publicAccess": "All"}}),
                   400, "InvalidRequestPropertyValue")


def test_sql_rules(arm, sql_server):
    admin = {"administratorType": "ActiveDirectory", "login": "x", "sid": "not-a-guid", "tenantId": None}
    cases = [
        ("PUT", "Microsoft.Sql/servers/sql-two", {"location": LOCATION, "properties": {
            "version": "11.0", "administratorLogin": "a1", "administratorLoginPassword": "S3cure!passw0rd"}},
         400, "InvalidParameterValue"),
        ("PUT", "Microsoft.Sql/servers/sql-two", {"location": LOCATION, "properties": {
            "publicNetworkAccess": "Sometimes", "administratorLogin": "a1",
            "administratorLoginPassword": "S3cure!passw0rd"}}, 400, "InvalidParameterValue"),
        ("PUT", sql_server + "/administrators/ActiveDirectory", {"properties": admin}, 400, "InvalidParameterValue"),
        ("PUT", sql_server + "/administrators/Other", {"properties": admin}, 400, "InvalidResourceName"),
        ("PUT", sql_server + "/azureADOnlyAuthentications/Other", {"properties": {"azureADOnlyAuthentication": True}},
         400, "InvalidServerAADOnlyAuthTypePropertyName"),
        ("PUT", sql_server + "/azureADOnlyAuthentications/Default", {"properties": {"azureADOnlyAuthentication": "y"}},
         400, "InvalidParameterValue"),
        ("PUT", sql_server + "/databases/bad%3Fname", {"location": LOCATION}, 400, "InvalidResourceName"),
        ("PUT", sql_server + "/databases/master", {"location": LOCATION}, 400, "InvalidResourceName"),
        ("DELETE", sql_server + "/databases/master", None, 400, "InvalidResourceName"),
        ("PUT", sql_server + "/firewallRules/bad%3Arule", {"properties": {"startIpAddress": "0.0.0.0",
                                                                         "endIpAddress": "0.0.0.0"}},
         400, "InvalidResourceName"),
    ]
    for method, path, body, status, code in cases:
        assert refused(arm(method, path, body), status, code)


def test_sql_entra_administrator_rules(arm, group):
    server = "Microsoft.Sql/servers/sql-entra"
    admin = {"administratorType": "ActiveDirectory", "principalType": "Application", "login": "id-mlflow",
             "sid": group.identity.client_id, "azureADOnlyAuthentication": True}
    arm("PUT", server, {"location": LOCATION, "properties": {"administrators": admin}})
    assert refused(arm("PUT", server + "/azureADOnlyAuthentications/Default",
                       {"properties": {"azureADOnlyAuthentication": False}}), 400, "InvalidParameterValue")
    assert refused(arm("DELETE", server + "/administrators/ActiveDirectory"), 400,
                   "InvalidServerAzureADAdminDeleteOperation")


def test_environment_rules(arm, env):
    cases = [
        ("Microsoft.App/managedEnvironments/Bad_Env", {"location": LOCATION}, "ManagedEnvironmentInvalidName"),
        ("Microsoft.App/managedEnvironments/cae-two", {"location": LOCATION, "properties": {
            "appLogsConfiguration": {"destination": "splunk"}}}, "InvalidParameterValue"),
        ("Microsoft.App/managedEnvironments/cae-two", {"location": LOCATION, "properties": {
            "appLogsConfiguration": {"destination": "log-analytics", "logAnalyticsConfiguration": {"customerId": "c"}}}},
         "InvalidRequestParameterWithDetails"),
        ("Microsoft.App/managedEnvironments/cae-two", {"location": LOCATION, "properties": {
            "workloadProfiles": [{"name": "Consumption"}]}}, "InvalidRequestParameterWithDetails"),
    ]
    for path, body, code in cases:
        assert refused(arm("PUT", path, body), 400, code)


def _set(body, path, value):
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


CONFIG = ("properties", "configuration")
CONTAINER = ("properties", "template", "containers", 0)


@pytest.mark.parametrize("path, value, code", [
    (CONTAINER + ("image",), None, "ContainerAppImageRequired"),
    (CONTAINER + ("name",), "Main_Container", "InvalidParameterValue"),
    (CONTAINER + ("resources",), {"cpu": 1.0, "memory": "two gigs"}, "InvalidParameterValue"),
    (CONTAINER + ("env",), [{"name": "X", "value": "v", "secretRef": "backend-uri"}], "InvalidParameterValue"),
    (CONTAINER + ("probes",), [{"type": "Startup", "httpGet": {"path": "/health"}}], "ContainerAppInvalidProbe"),
    (("properties", "template", "containers"), [], "InvalidParameterValue"),
    (CONFIG + ("registries",), [{"server": "r.azurecr.io", "username": "u"}], "ContainerAppSecretRefNotFound"),
    (CONFIG + ("registries",), [{"server": "r.azurecr.io"}], "InvalidParameterValue"),
    (CONFIG + ("registries",), [{"server": "r.azurecr.io", "identity": "system"}], "InvalidParameterValue"),
    (CONFIG + ("secrets",), [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}],
     "ContainerAppDuplicateSecretName"),
    (CONFIG + ("secrets",), [{"name": "kv", "keyVaultUrl": "https://v.vault.azure.net/secrets/s"}],
     "ContainerAppSecretInvalid"),
    (CONFIG + ("ingress", "traffic"), [{"weight": 50, "latestRevision": True}], "ContainerAppInvalidIngress"),
    (CONFIG + ("ingress", "transport"), "udp", "ContainerAppInvalidIngress"),
    (CONFIG + ("ingress", "ipSecurityRestrictions"), [{"name": "x", "ipAddressRange": "300.1.1.1", "action": "Allow"}],
     "ContainerAppInvalidIngress"),
    (CONFIG + ("ingress", "ipSecurityRestrictions"), [{"ipAddressRange": "10.0.0.1", "action": "Allow"}],
     "ContainerAppInvalidIngress"),
    (("location",), "eastus", "LocationMismatch"),
])
def test_app_rules(arm, group, env, path, value, code):
    body = app_body(group, env)
    if path[-1] == "secrets":
        _set(body, CONTAINER + ("env",), [])
        _set(body, CONFIG + ("registries",), [])
    assert refused(arm("PUT", "Microsoft.App/containerApps/mlflow", _set(body, path, value)), 400, code)


def test_app_revision_suffix_and_auth_config_rules(arm, group, env):
    body = app_body(group, env)
    body["properties"]["template"]["revisionSuffix"] = "v1"
    assert arm("PUT", "Microsoft.App/containerApps/mlflow", body).status_code == 201
    changed = copy.deepcopy(body)
    changed["properties"]["template"]["containers"][0]["image"] = "acrmlflow01.azurecr.io/mlflow:9"
    assert refused(arm("PUT", "Microsoft.App/containerApps/mlflow", changed), 400, "ContainerAppRevisionSuffixExists")
    assert refused(arm("PUT", "Microsoft.App/containerApps/mlflow/authConfigs/other", {"properties": {}}),
                   400, "InvalidParameterValue")


@pytest.mark.parametrize("name, config, code", [
    ("Job_One", {"triggerType": "Manual", "replicaTimeout": 60}, "JobInvalidName"),
    ("job-one", {"replicaTimeout": 60}, "InvalidParameterValue"),
    ("job-one", {"triggerType": "Schedule", "replicaTimeout": 60}, "InvalidParameterValue"),
    ("job-one", {"triggerType": "Event", "replicaTimeout": 60}, "InvalidParameterValue"),
    ("job-one", {"triggerType": "Manual", "replicaTimeout": 60, "replicaRetryLimit": -1}, "InvalidParameterValue"),
])
def test_job_rules(arm, env, name, config, code):
    body = {"location": LOCATION, "properties": {"environmentId": env.id, "configuration": config, "template": {
        "containers": [{"name": "main", "image": "busybox", "resources": {"cpu": 0.5, "memory": "1Gi"}}]}}}
    assert refused(arm("PUT", f"Microsoft.App/jobs/{name}", body), 400, code)


def test_role_assignment_rules(standin, arm, group):
    role = f"/subscriptions/{standin.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/" \
           "7f951dda-4ed3-4680-a7ca-43fe172d538d"
    name = "6f3b6a4e-0000-4000-8000-000000000001"
    path = f"{group.id}/providers/Microsoft.Authorization/roleAssignments/{name}"
    assert refused(arm("PUT", path, {"properties": {"roleDefinitionId": role}}, version="2022-04-01"),
                   400, "MissingRequiredProperty")
    other = path.replace(standin.subscription_id, "11111111-2222-3333-4444-555555555555")
    assert refused(arm("PUT", other, {"properties": {"roleDefinitionId": role, "principalId": name}}, "2022-04-01"),
                   404, "SubscriptionNotFound")
    odd = f"/providers/Microsoft.Management/managementGroups/mg/providers/Microsoft.Authorization/roleAssignments/{name}"
    assert refused(arm("PUT", odd, {"properties": {"roleDefinitionId": role, "principalId": name}}, "2022-04-01"),
                   400, "InvalidScope")


def test_unregistered_namespace_refuses_every_request(standin, arm):
    standin.unregister_provider("Microsoft.ContainerRegistry")
    assert refused(arm("GET", "Microsoft.ContainerRegistry/registries"), 409, "MissingSubscriptionRegistration")
