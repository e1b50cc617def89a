"""The registry catalog (add_registry_image): images served through the proxy without a real
registry, with the Docker token flow for public/private hosts and ACR's rules on a registry
resource's login server."""

import pytest
import requests

from .conftest import LOCATION
from .control import RemoteStandin

ACR_USER = "00000000-0000-0000-0000-000000000000"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _anonymous_token(host: str, repository: str) -> requests.Response:
    return requests.get(f"https://{host}/oauth2/token", timeout=10,
                        params={"service": host, "scope": f"repository:{repository}:pull"})


def _head(host: str, repository: str, reference: str, token: str | None) -> requests.Response:
    headers = {"Accept": MANIFEST} | ({"Authorization": f"Bearer {token}"} if token else {})
    return requests.head(f"https://{host}/v2/{repository}/manifests/{reference}", headers=headers, timeout=10)


def test_a_public_image_is_pulled_anonymously(standin, standin_env):
    added = standin.add_registry_image("public.example.io/tools/hello:1.0", anonymous=True)
    assert added["digest"].startswith("sha256:")

    ping = requests.get("https://public.example.io/v2/", timeout=10)
    assert ping.status_code == 401
    assert ping.headers["WWW-Authenticate"] == ('Bearer realm="https://public.example.io/oauth2/token",'
                                                'service="public.example.io"')
    granted = _anonymous_token("public.example.io", "tools/hello")
    assert granted.status_code == 200, granted.text
    token = granted.json()["token"]
    assert granted.json()["access_token"] == token

    found = _head("public.example.io", "tools/hello", "1.0", token)
    assert (found.status_code, found.headers["Docker-Content-Digest"]) == (200, added["digest"])
    by_digest = requests.get(f"https://public.example.io/v2/tools/hello/manifests/{added['digest']}", timeout=10,
                             headers={"Authorization": f"Bearer {token}"})
    assert by_digest.status_code == 200 and by_digest.json()["mediaType"] == MANIFEST
    missing = requests.get("https://public.example.io/v2/tools/hello/manifests/2.0", timeout=10,
                           headers={"Authorization": f"Bearer {token}"})
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert _head("public.example.io", "tools/hello", "1.0", None).status_code == 401
    assert standin.requests(path="/v2/tools/hello/manifests/")  # logged like every data-plane request


def test_a_private_image_refuses_anonymous_tokens(standin, standin_env):
    standin.add_registry_image("private.example.io/team/app:7")
    refused = _anonymous_token("private.example.io", "team/app")
    assert refused.status_code == 401 and refused.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert _head("private.example.io", "team/app", "7", None).status_code == 401


def test_references_are_checked_and_reset_forgets(standin, standin_env):
    for bad in ("no-host-image:1", "example.io/UPPER:1", "example.io/app:bad tag", "example.io:5000/app:1"):
        with pytest.raises(ValueError):
            standin.add_registry_image(bad)
    standin.add_registry_image("gone.example.io/app:1", anonymous=True)
    assert standin.registry_images() == [{"host": "gone.example.io", "repository": "app", "tag": "1",
                                          "digest": standin.registry_images()[0]["digest"], "anonymous": True}]
    standin.reset()
    assert standin.registry_images() == []
    with pytest.raises(requests.exceptions.ProxyError):   # nobody serves the host any more: 502 to CONNECT
        requests.get("https://gone.example.io/v2/", timeout=10)


def test_the_control_api_over_http(standin):
    remote = RemoteStandin(standin.url, standin.ca_path)
    digest = remote.add_registry_image("remote.example.io/app:1", anonymous=True)["digest"]
    assert remote.registry_images("remote.example.io")[0]["digest"] == digest
    remote.set_role_propagation_delay(5)
    remote.set_pull_timeout(30)
    assert (standin.app.store.role_propagation_delay, standin.app.store.pull_timeout) == (5.0, 30.0)


# -- ACR: a registry resource's login server without a real registry -----------------------------------------
@pytest.fixture
def acr(azure, group):
    return azure.acr.registries.begin_create(group.name, "acrpull01", {"location": LOCATION,
                                                                      "sku": {"name": "Basic"}}).result()


def _acr_token(standin, host: str, repository: str, client_id: str | None = None) -> str:
    exchange = requests.post(f"https://{host}/oauth2/exchange", timeout=10, data={
        "grant_type": "access_token", "service": host, "tenant": standin.tenant_id,
        "access_token": standin.issue_token("https://containerregistry.azure.net", client_id=client_id)})
    assert exchange.status_code == 200, exchange.text
    granted = requests.get(f"https://{host}/oauth2/token", timeout=10,
                           auth=(ACR_USER, exchange.json()["refresh_token"]),
                           params={"service": host, "scope": f"repository:{repository}:pull"})
    assert granted.status_code == 200, granted.text
    return granted.json()["access_token"]


def test_an_acr_image_needs_a_propagated_pull_role(standin, standin_env, azure, group, acr):
    host = acr.login_server
    assert host == "acrpull01.azurecr.io"
    digest = standin.add_registry_image(f"{host}/mlflow:1")["digest"]
    operator = _acr_token(standin, host, "mlflow")
    assert _head(host, "mlflow", "1", operator).headers["Docker-Content-Digest"] == digest
    assert _head(host, "mlflow", "2", operator).status_code == 404
    assert _anonymous_token(host, "mlflow").status_code == 401

    identity = group.identity
    assert _head(host, "mlflow", "1", _acr_token(standin, host, "mlflow", identity.client_id)).status_code == 401
    standin.set_role_propagation_delay(3600)
    azure.auth.role_assignments.create(acr.id, "3f2504e0-4f89-11d3-9a0c-0305e82c3301", {
        "role_definition_id": f"/subscriptions/{standin.subscription_id}/providers/Microsoft.Authorization/"
                              f"roleDefinitions/{ACR_PULL}",
        "principal_id": identity.principal_id, "principal_type": "ServicePrincipal"})
    young = _head(host, "mlflow", "1", _acr_token(standin, host, "mlflow", identity.client_id))
    assert young.status_code == 401    # the assignment exists but has not reached the data plane
    standin.set_role_propagation_delay(0)
    assert _head(host, "mlflow", "1", _acr_token(standin, host, "mlflow", identity.client_id)).status_code == 200
