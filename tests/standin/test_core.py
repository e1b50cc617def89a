"""Cloud metadata, the identity endpoint, ARM authentication, api-versions, the subscription,
resource groups and provider registration."""

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

from .conftest import LOCATION


def test_metadata_endpoint_describes_the_standin_cloud(standin, standin_env):
    response = requests.get(f"{standin.url}/metadata/endpoints?api-version=2022-09-01", timeout=5)
    assert response.status_code == 200
    (cloud,) = response.json()
    assert cloud["resourceManager"] == standin.url + "/"
    # Its own audiences, not the public cloud's: the product refuses a custom cloud claiming those.
    assert cloud["authentication"]["audiences"] == ["https://management.standin.invalid/",
                                                    "https://arm.standin.invalid/"]
    assert cloud["authentication"]["loginEndpoint"] == standin.url + "/"
    assert cloud["suffixes"]["storage"] == "core.windows.net"
    assert cloud["suffixes"]["sqlServerHostname"] == "database.windows.net"
    assert cloud["suffixes"]["acrLoginServer"] == "azurecr.io"
    assert cloud["name"] == "AzureStandin"
    refused = requests.get(f"{standin.url}/metadata/endpoints?api-version=2099-01-01", timeout=5)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "InvalidApiVersionParameter"


def test_identity_endpoint_follows_the_app_service_protocol(standin, standin_env, group):
    url = standin_env["IDENTITY_ENDPOINT"]
    header = {"X-IDENTITY-HEADER": standin_env["IDENTITY_HEADER"]}
    params = {"api-version": "2019-08-01", "resource": standin.audience}
    assert requests.get(url, params=params, timeout=5).status_code == 401
    assert requests.get(url, params={**params, "api-version": "2018-02-01"}, headers=header,
                        timeout=5).status_code == 400
    unknown = requests.get(url, params={**params, "client_id": "00000000-0000-0000-0000-000000000001"},
                           headers=header, timeout=5)
    assert unknown.status_code == 400 and "No User Assigned" in unknown.json()["message"]
    token = requests.get(url, params={**params, "client_id": group.identity.client_id}, headers=header,
                         timeout=5).json()
    assert token["token_type"] == "Bearer" and int(token["expires_on"]) > 0
    assert token["client_id"] == group.identity.client_id


@pytest.mark.parametrize("use_client_id", [False, True])
def test_default_azure_credential_gets_tokens_with_and_without_client_id(standin, azure, group, monkeypatch,
                                                                          use_client_id):
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.resource.resources import ResourceManagementClient

    if use_client_id:
        monkeypatch.setenv("AZURE_CLIENT_ID", group.identity.client_id)
    credential = DefaultAzureCredential()
    client = ResourceManagementClient(credential, standin.subscription_id, **azure.kwargs)
    assert client.resource_groups.get(group.name).name == group.name
    token = credential.get_token(standin.credential_scopes[0]).token
    import base64
    import json
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    expected = group.identity.principal_id if use_client_id else standin.info()["operator_principal_id"]
    assert claims["oid"] == expected and claims["tid"] == standin.tenant_id
    assert claims["aud"].startswith("https://management.standin.invalid")


def _arm(standin, token=None, path=None, version="2025-04-01"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    path = path or f"/subscriptions/{standin.subscription_id}/resourcegroups"
    return requests.get(f"{standin.url}{path}?api-version={version}", headers=headers, timeout=5)


@pytest.mark.parametrize("case, code", [
    ("missing", "AuthenticationFailed"),
    ("forged", "InvalidAuthenticationToken"),
    ("audience", "InvalidAuthenticationTokenAudience"),
    ("expired", "ExpiredAuthenticationToken"),
])
def test_arm_refuses_requests_without_a_valid_token(standin, standin_env, case, code):
    token = {"missing": None,
             "forged": standin.issue_token()[:-4] + "AAAA",
             "audience": standin.issue_token("https://containerregistry.azure.net"),
             "expired": standin.issue_token(lifetime=-60)}[case]
    response = _arm(standin, token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert response.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")


def test_both_audience_spellings_are_accepted(standin, standin_env):
    for audience in ("https://management.standin.invalid/", "https://management.standin.invalid",
                     "https://arm.standin.invalid/"):
        assert _arm(standin, standin.issue_token(audience)).status_code == 200
    # The public cloud's ARM audience is not this cloud's (the stand-in is a custom cloud).
    answer = _arm(standin, standin.issue_token("https://management.core.windows.net/"))
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"


def test_sdk_reports_authentication_failure(standin, azure):
    from azure.mgmt.resource.resources import ResourceManagementClient
    wrong_audience = {**azure.kwargs, "credential_scopes": ["https://graph.microsoft.com/.default"]}
    client = ResourceManagementClient(azure.credential, standin.subscription_id, **wrong_audience)
    with pytest.raises(ClientAuthenticationError) as err:
        client.resource_groups.get("anything")
    assert err.value.error.code == "InvalidAuthenticationTokenAudience"


def test_api_versions_are_checked(standin, standin_env):
    token = standin.issue_token()
    sub = standin.subscription_id
    missing = requests.get(f"{standin.url}/subscriptions/{sub}/resourcegroups",
                           headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "MissingApiVersionParameter"
    arm_type = _arm(standin, token, version="2099-01-01")
    assert arm_type.status_code == 400 and arm_type.json()["error"]["code"] == "InvalidApiVersionParameter"
    rp_type = _arm(standin, token, f"/subscriptions/{sub}/providers/Microsoft.Storage/storageAccounts", "2015-01-01")
    assert rp_type.status_code == 400 and rp_type.json()["error"]["code"] == "NoRegisteredProviderFound"
    assert "2026-09-01" in rp_type.json()["error"]["message"]
    older = _arm(standin, token, f"/subscriptions/{sub}/providers/Microsoft.Storage/storageAccounts", "2023-01-01")
    assert older.status_code == 200


def test_other_subscriptions_do_not_exist(standin, azure):
    from azure.mgmt.resource.resources import ResourceManagementClient
    other = ResourceManagementClient(azure.credential, "11111111-2222-3333-4444-555555555555", **azure.kwargs)
    with pytest.raises(ResourceNotFoundError) as err:
        other.resource_groups.create_or_update("rg", {"location": LOCATION})
    assert err.value.error.code == "SubscriptionNotFound"


def test_resource_group_lifecycle_and_cascading_delete(standin, azure, group):
    rgs = azure.resources.resource_groups
    assert rgs.check_existence(group.name) is True
    assert rgs.check_existence("absent") is False
    again = rgs.create_or_update(group.name, {"location": LOCATION, "tags": {"managed-by": "mlflow-aca"}})
    assert again.tags == {"managed-by": "mlflow-aca"}
    assert [r.name for r in azure.resources.resources.list_by_resource_group(group.name)] == ["id-mlflow"]
    standin.set_latency(0.02)          # a real delete takes ~60 s: 1.2 s here
    poller = rgs.begin_delete(group.name)
    with pytest.raises(HttpResponseError) as err:
        azure.msi.user_assigned_identities.create_or_update(group.name, "late", {"location": LOCATION})
    assert err.value.error.code == "ResourceGroupBeingDeleted"
    poller.result()
    assert rgs.check_existence(group.name) is False
    assert standin.resources() == []
    with pytest.raises(ResourceNotFoundError) as err:
        azure.msi.user_assigned_identities.get(group.name, "id-mlflow")
    assert err.value.error.code == "ResourceGroupNotFound"


@pytest.mark.parametrize("name, body, code", [
    ("bad/name" * 1, {"location": LOCATION}, "InvalidResourceGroup"),
    ("x" * 91, {"location": LOCATION}, "InvalidResourceGroup"),
    ("ends.", {"location": LOCATION}, "InvalidResourceGroup"),
    ("rg", {}, "LocationRequired"),
    ("rg", {"location": "moon"}, "LocationNotAvailableForResourceGroup"),
])
def test_resource_group_validation(azure, name, body, code):
    with pytest.raises(HttpResponseError) as err:
        azure.resources.resource_groups.create_or_update(name, body)
    assert err.value.error.code == code


def test_resource_group_location_cannot_change(azure, group):
    with pytest.raises(HttpResponseError) as err:
        azure.resources.resource_groups.create_or_update(group.name, {"location": "eastus"})
    assert err.value.status_code == 400 and err.value.error.code == "InvalidResourceGroupLocation"


def test_provider_registration(standin, azure):
    standin.unregister_provider("Microsoft.App")
    assert azure.resources.providers.get("Microsoft.App").registration_state == "NotRegistered"
    assert azure.resources.providers.register("Microsoft.App").registration_state == "Registered"
    assert azure.resources.providers.get("Microsoft.App").registration_state == "Registered"
