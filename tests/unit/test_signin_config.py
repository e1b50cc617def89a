"""Sign-in settings: secure by default, and every way to get them wrong names the key."""

import pytest

from mlflow_aca.cloud import KNOWN_CLOUDS, cloud_from_metadata
from mlflow_aca.config import load_settings
from mlflow_aca.errors import ConfigError
from tests.values import SUBSCRIPTION

GUID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


def load(**overrides):
    base = {"name": "mlflow", "location": "westeurope", "subscription_id": SUBSCRIPTION}
    return load_settings(None, environ={}, overrides={**base, **overrides})


def test_entra_sign_in_is_the_default():
    settings = load()
    assert settings.auth == "entra"
    assert settings.describe_sign_in() == {
        "mode": "entra", "registration": f"created: {settings.auth_unique_name}",
        "allowed_principals": ["everyone in the tenant"]}


def test_no_sign_in_needs_an_ip_allow_list_or_an_explicit_public_server():
    with pytest.raises(ConfigError, match=r"auth: 'none' would leave MLflow open to anyone"):
        load(auth="none")
    assert load(auth="none", allowed_ips=["203.0.113.0/24"]).describe_sign_in()["reachable_from"] == [
        "203.0.113.0/24"]
    assert load(auth="none", public=True).describe_sign_in() == {
        "mode": "none", "open": True, "reachable_from": ["the whole internet"]}


def test_public_only_means_something_without_sign_in():
    with pytest.raises(ConfigError, match="public: only applies to auth = 'none'"):
        load(public=True)


@pytest.mark.parametrize("key", ["auth_client_id", "auth_allowed_principals", "auth_allowed_tenants"])
def test_sign_in_keys_are_refused_when_there_is_no_sign_in(key):
    value = GUID if key == "auth_client_id" else [GUID]
    with pytest.raises(ConfigError, match=f"{key}: is only used with auth = 'entra'"):
        load(auth="none", public=True, **{key: value})


@pytest.mark.parametrize("key, value, what", [
    ("auth_client_id", "not-a-guid", "an application .client. id"),
    ("auth_allowed_principals", [GUID, "alice@example.com"], "an object id"),
    ("auth_allowed_tenants", ["contoso.onmicrosoft.com"], "a tenant id"),
    ("auth_allowed_principals", ["3f2504e04f8941d39a0c0305e82c3301"], "an object id"),
])
def test_ids_must_be_guids_and_the_error_names_the_key(key, value, what):
    with pytest.raises(ConfigError, match=key) as raised:
        load(**{key: value})
    assert raised.value.message.count(key) >= 1
    import re
    assert re.search(what, raised.value.message), raised.value.message


def test_principals_are_normalised_and_duplicates_refused():
    assert load(auth_allowed_principals=[GUID.upper()]).auth_allowed_principals == [GUID]
    with pytest.raises(ConfigError, match="listed twice"):
        load(auth_allowed_principals=[GUID, GUID.upper()])


def test_only_one_tenant_can_be_trusted():
    other = "11111111-2222-3333-4444-555555555555"
    with pytest.raises(ConfigError, match="auth_allowed_tenants: Container Apps' sign-in layer trusts one issuer"):
        load(auth_allowed_tenants=[GUID, other])


def test_unique_name_is_deterministic_and_differs_per_subscription():
    first, again = load(), load()
    other = load(subscription_id="aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
    assert first.auth_unique_name == again.auth_unique_name
    assert first.auth_unique_name != other.auth_unique_name
    assert first.auth_unique_name.startswith("mlflow-aca-mlflow-")


def test_graph_endpoint_follows_the_cloud():
    assert KNOWN_CLOUDS["AzureCloud"].graph_scope == "https://graph.microsoft.com/.default"
    assert KNOWN_CLOUDS["AzureUSGovernment"].graph_endpoint == "https://graph.microsoft.us/"
    document = {"resourceManager": "https://arm.example/", "microsoftGraphResourceId": "https://graph.example",
                "authentication": {"loginEndpoint": "https://login.example/", "audiences": ["https://arm.example/"]},
                "suffixes": {"storage": "s.example", "sqlServerHostname": "q.example", "acrLoginServer": "r.example"}}
    cloud = cloud_from_metadata(document, "https://arm.example")
    assert cloud.graph_endpoint == "https://graph.example/"
    assert cloud.open_id_issuer("t1") == "https://login.example/t1/v2.0"
