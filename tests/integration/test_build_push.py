"""build and push for real: the Docker engine builds the product template, and the push goes
through the Entra-token path to the registry the stand-in's `properties.loginServer` leads to
(a real token-auth registry behind the stand-in's login-server front, which performs ACR's token
exchange). The CLI runs in a subprocess and reaches everything through user-facing settings.

With CI=true a missing engine or registry fails these tests instead of skipping them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests import services
from tests.integration.images import write_config
from tests.standin.faults import Fault

pytestmark = [pytest.mark.docker, pytest.mark.slow]

DEAD_ENGINE = "unix:///nonexistent/docker.sock"
JWT_PREFIX = "eyJ"  # every JWT (Entra token, ACR refresh and access tokens) starts so


def _configure(deployment, product_image, **extra: Any) -> dict[str, str]:
    """Settings that render the product image, a registry name we know, a unique repository."""
    names = {"resource_group": "rg-build-push", "registry_name": "acrbuildpush" + uuid.uuid4().hex[:6],
             "image_repository": f"mlflow-server-{uuid.uuid4().hex[:8]}"}
    deployment.write_config(**{**product_image.settings, **names, **extra})
    return names


def _create_registry(deployment, names: dict[str, str]) -> dict:
    deployment.arm("PUT", f"/resourcegroups/{names['resource_group']}?api-version=2025-04-01",
                   {"location": "westeurope"})
    deployment.arm("PUT", f"/resourceGroups/{names['resource_group']}/providers/Microsoft.ContainerRegistry/"
                   f"registries/{names['registry_name']}?api-version=2025-11-01",
                   {"location": "westeurope", "sku": {"name": "Basic"}, "properties": {"adminUserEnabled": False},
                    "tags": deployment.owned_tags})  # as provision makes it
    return deployment.one("Microsoft.ContainerRegistry/registries")


def _no_secrets(result, docker_config) -> None:
    assert JWT_PREFIX not in result.stdout and JWT_PREFIX not in result.stderr, result
    assert list(docker_config.iterdir()) == [], "credentials were written to the Docker config"


def _docker(docker_config) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(docker_config)}


# -- build ---------------------------------------------------------------------------------------------------
def test_product_image_builds_and_a_rebuild_is_a_cache_hit(product_image, tmp_path, docker_config):
    client = services.require_docker()
    try:
        attrs = client.api.inspect_image(product_image.reference)
    finally:
        client.close()
    assert attrs["Id"] == product_image.image_id
    assert attrs["Config"]["User"] == "10001:10001"
    assert attrs["Config"]["Cmd"] == ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]

    write_config(tmp_path, {"name": "other", "location": "westeurope", **product_image.settings})
    started = time.monotonic()
    from tests.clirunner import run_cli

    again = run_cli("build", "--json", cwd=tmp_path, env=_docker(docker_config), timeout=300)
    elapsed = time.monotonic() - started
    assert again.code == 0, again
    data = again.json["data"]
    assert (data["mode"], data["tag"], data["image_id"]) == ("local", product_image.tag, product_image.image_id)
    assert data["cached"] is True
    assert elapsed < 30, f"a rebuild with nothing changed took {elapsed:.1f}s"
    assert list(docker_config.iterdir()) == []


def test_a_failing_step_fails_with_dockers_message_and_exit_3(deployment, product_image, docker_config):
    deployment.write_config(**product_image.settings, extra_packages=["mlflow-aca-no-such-package==9.9.9"])
    result = deployment.cli("build", "--local", env=_docker(docker_config), timeout=600)
    assert result.code == 3, result
    assert "Traceback" not in result.stderr
    assert "Docker could not build" in result.stderr
    assert "returned a non-zero code: 1" in result.stderr  # Docker's own words
    assert "No matching distribution found for mlflow-aca-no-such-package==9.9.9" in result.stderr  # pip's
    assert "[BuildFailed]" in result.stderr and "Hint:" in result.stderr

    envelope = deployment.cli("build", "--local", "--json", env=_docker(docker_config), timeout=600).json
    assert envelope["ok"] is False and envelope["error"]["code"] == "BuildFailed"


def test_no_engine_is_a_clear_error_that_suggests_remote(deployment, product_image, docker_config):
    deployment.write_config(**product_image.settings)
    result = deployment.cli("build", "--local", env={**_docker(docker_config), "DOCKER_HOST": DEAD_ENGINE})
    assert result.code == 3, result
    assert "Traceback" not in result.stderr
    assert f"No Docker engine answers at {DEAD_ENGINE}" in result.stderr
    assert "--remote" in result.stderr and "[DockerUnavailable]" in result.stderr


# -- push ----------------------------------------------------------------------------------------------------
def test_push_exchanges_an_entra_token_and_lands_in_the_registry(deployment, acr, product_image, docker_config):
    names = _configure(deployment, product_image)
    registry = _create_registry(deployment, names)
    assert registry["properties"]["loginServer"] == acr.login_server  # as Azure reports it
    repository = names["image_repository"]
    deployment.ok("build", "--local", env=_docker(docker_config))
    deployment.standin.clear_requests()

    pushed = deployment.cli("push", "--json", env=_docker(docker_config), timeout=600)
    assert pushed.code == 0, pushed
    data = pushed.json["data"]
    reference = f"{acr.login_server}/{repository}:{product_image.tag}"
    assert (data["image"], data["outcome"]) == (reference, "pushed")
    # Uploaded, or mounted from another repository an earlier test of the session pushed.
    assert data["layers_pushed"] + data["layers_present"] > 0

    # The registry's own HTTP API: the tag, and the manifest under the digest the push reported.
    assert acr.tags(repository) == [product_image.tag]
    digest, manifest = acr.manifest(repository, product_image.tag)
    assert digest == data["digest"]
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    client = services.require_docker()
    try:
        local = client.api.inspect_image(product_image.reference)
    finally:
        client.close()
    assert manifest["config"]["digest"] == local["Id"]
    assert f"{acr.login_server}/{repository}@{digest}" in local["RepoDigests"]

    # ACR's protocol: the product exchanged an Entra token, the engine asked the realm.
    exchange = deployment.requests("POST", "/oauth2/exchange")
    assert len(exchange) == 1 and exchange[0]["status"] == 200
    assert "access_token=%2A%2A%2A" in exchange[0]["body"] and "grant_type=access_token" in exchange[0]["body"]
    assert deployment.requests("GET", "/oauth2/token"), "the engine never asked the token realm"
    assert deployment.requests("POST", f"/v2/{repository}/blobs/uploads")
    _no_secrets(pushed, docker_config)

    # Again: reported as present, quickly, and nothing is uploaded.
    deployment.standin.clear_requests()
    started = time.monotonic()
    again = deployment.cli("push", "--json", env=_docker(docker_config))
    elapsed = time.monotonic() - started
    assert again.code == 0, again
    assert again.json["data"]["outcome"] == "present" and again.json["data"]["digest"] == digest
    assert not [r for r in deployment.requests() if "/blobs/uploads" in r["path"] or r["method"] == "PUT"]
    assert elapsed < 10, f"pushing an image the registry has took {elapsed:.1f}s"
    human = deployment.cli("push", env=_docker(docker_config))
    assert human.code == 0 and "Already in the registry" in human.stdout, human
    _no_secrets(human, docker_config)


def test_push_when_the_registry_refuses_the_exchange(deployment, acr, product_image, docker_config):
    names = _configure(deployment, product_image)
    _create_registry(deployment, names)
    deployment.standin.add_fault(Fault(r"^/oauth2/exchange$", method="POST", status=401, code="UNAUTHORIZED",
                                       message="The access token is not valid for this registry."))
    result = deployment.cli("push", "--verbose", env=_docker(docker_config))
    assert result.code == 3, result
    assert "The access token is not valid for this registry." in result.stderr
    assert "[RegistrySignInFailed]" in result.stderr and "AcrPush" in result.stderr
    assert "Traceback" not in result.stderr
    _no_secrets(result, docker_config)


def test_push_as_an_identity_without_rights_then_with_acr_push(deployment, acr, product_image, docker_config):
    names = _configure(deployment, product_image)
    registry = _create_registry(deployment, names)
    identity = deployment.arm("PUT", f"/resourceGroups/{names['resource_group']}/providers/Microsoft.ManagedIdentity/"
                              "userAssignedIdentities/pusher?api-version=2024-11-30", {"location": "westeurope"})
    as_pusher = {**_docker(docker_config), "AZURE_CLIENT_ID": identity["properties"]["clientId"]}
    deployment.ok("build", "--local", env=_docker(docker_config))

    refused = deployment.cli("push", "--json", env=as_pusher)
    assert refused.code == 3, refused
    assert refused.json["error"]["code"] == "RegistryAccessDenied"
    assert "AcrPush" in refused.json["error"]["hint"]
    _no_secrets(refused, docker_config)

    role = "8311e382-0749-4cb8-b61a-304f252e45ec"  # AcrPush
    deployment.arm("PUT", f"{registry['id'].split(deployment.subscription_id, 1)[1]}/providers/Microsoft.Authorization/"
                   f"roleAssignments/{uuid.uuid4()}?api-version=2022-04-01",
                   {"properties": {"roleDefinitionId": f"/subscriptions/{deployment.subscription_id}/providers/"
                                   f"Microsoft.Authorization/roleDefinitions/{role}",
                                   "principalId": identity["properties"]["principalId"],
                                   "principalType": "ServicePrincipal"}})
    pushed = deployment.cli("push", "--json", env=as_pusher, timeout=600)
    assert pushed.code == 0, pushed
    assert acr.tags(names["image_repository"]) == [product_image.tag]


def test_push_of_an_image_never_built(deployment, acr, product_image, docker_config):
    names = _configure(deployment, product_image, extra_packages=["six==1.16.0"])  # another tag, never built
    _create_registry(deployment, names)
    result = deployment.cli("push", "--json", env=_docker(docker_config))
    assert result.code == 3, result
    assert result.json["error"]["code"] == "ImageNotBuilt"
    assert "mlflow-aca build" in result.json["error"]["hint"]


def test_push_before_provision_says_what_is_missing(deployment, acr, product_image, docker_config):
    _configure(deployment, product_image)
    result = deployment.cli("push", env=_docker(docker_config))
    assert result.code == 3, result
    assert "does not exist" in result.stderr and "mlflow-aca provision" in result.stderr


# -- up ------------------------------------------------------------------------------------------------------
def test_up_builds_while_provisioning_and_deploys_the_pushed_image(deployment, acr, product_image, docker_config):
    names = _configure(deployment, product_image)
    # Hold the registry back: its first PUT is throttled (Retry-After 3 s), so the registry exists
    # only seconds into `up`; a build that overlaps provisioning is done by then.
    deployment.standin.add_fault(Fault(r"/registries/[^/]+$", method="PUT", status=429,
                                       code="SubscriptionRequestsThrottled", retry_after=3))
    client = services.require_docker()
    since = time.time()
    try:
        result = deployment.cli("up", "--local", "--json", env=_docker(docker_config), timeout=600)
        assert result.code == 0, result
        events = list(client.events(since=since, until=time.time() + 1, decode=True,
                                    filters={"type": "image"}))
    finally:
        client.close()
    data = result.json["data"]
    reference = f"{acr.login_server}/{names['image_repository']}:{product_image.tag}"
    assert data["image"] == reference
    outcomes = {row["key"]: row["outcome"] for row in data["resources"]}
    assert outcomes["image_build"] == "built" and outcomes["image_push"] == "pushed"
    app = deployment.one("Microsoft.App/containerApps")
    assert app["properties"]["template"]["containers"][0]["image"] == reference
    assert app["properties"]["configuration"]["registries"][0]["server"] == acr.login_server

    # Overlap: the engine tagged the built image before Azure had the registry; the push came after.
    built = min(e["timeNano"] for e in events if e["Action"] == "tag"
                and e["Actor"]["Attributes"].get("name") == f"{names['image_repository']}:{product_image.tag}")
    pushed = min(e["timeNano"] for e in events if e["Action"] == "push"
                 and e["Actor"]["Attributes"].get("name", "").startswith(f"{acr.login_server}/{names['image_repository']}"))
    created = [r for r in deployment.requests("PUT", f"/registries/{names['registry_name']}") if r["status"] < 300]
    registry_created = _epoch_ns(created[0]["time"])
    assert built < registry_created < pushed, (built, registry_created, pushed)

    # A rerun converges: the image is present, nothing is written.
    deployment.standin.clear_requests()
    again = deployment.ok("up", "--local", env=_docker(docker_config))
    outcomes = {row["key"]: row["outcome"] for row in again["resources"]}
    assert outcomes["image_push"] == "present"
    assert not deployment.writes()


def test_up_with_an_image_skips_build_and_push(deployment, docker_config):
    deployment.publish_public_image("example.azurecr.io/mlflow:1")  # an existing image anyone may pull
    data = deployment.ok("up", "--image", "example.azurecr.io/mlflow:1",
                         env={**_docker(docker_config), "DOCKER_HOST": DEAD_ENGINE})
    assert not {"image_build", "image_push", "image"} & {row["key"] for row in data["resources"]}
    assert data["image"] == "example.azurecr.io/mlflow:1"
    assert "skipped" not in data


def _epoch_ns(stamp: str) -> int:
    """The request log's `2026-11-26T22:45:01.123Z` as nanoseconds since the epoch."""
    import calendar

    whole, _, millis = stamp.rstrip("Z").partition(".")
    return (calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) * 1000 + int(millis or 0)) * 1_000_000
