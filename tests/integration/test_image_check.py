"""The image is checked before the migration job or the app is written (issue 11, item 1): in the
deployment's registry through ACR's data plane (Entra token exchange, as push does), anywhere
else anonymously (the Docker token flow). The stand-in's registry catalog serves both
(tests/standin/registry_catalog.py); `push_template_image` stands for build + push run earlier."""

import json

from tests.standin import faults

def error_of(result) -> dict:
    return json.loads(result.stdout)["error"]


def rows(data) -> dict:
    return {r["key"]: r for r in data["resources"]}


def login_server(deployment) -> str:
    return deployment.one("Microsoft.ContainerRegistry/registries")["properties"]["loginServer"]


def test_a_template_image_never_pushed_stops_deploy_before_any_write(deployment):
    deployment.ok("provision")
    deployment.standin.clear_requests()
    result = deployment.cli("deploy", "--json")
    assert result.code == 3, result
    error = error_of(result)
    assert error["code"] == "ImageNotFound", error
    assert "never pushed" in error["message"] and login_server(deployment) in error["message"]
    assert "mlflow-aca push" in error["hint"] and "mlflow-aca up" in error["hint"]
    assert deployment.writes() == []          # neither the migration job nor the app was written
    assert deployment.resources("Microsoft.App/jobs") == deployment.resources("Microsoft.App/containerApps") == []
    # Asked the way push asks: Entra exchange, then the manifest with a registry token.
    assert deployment.requests("POST", "/oauth2/exchange")
    assert [r for r in deployment.requests("HEAD") if "/manifests/" in r["path"]]
    human = deployment.cli("deploy")
    assert human.code == 3 and "mlflow-aca push" in human.stderr and "Traceback" not in human.output

    pushed = deployment.push_template_image()
    deployed = deployment.ok("deploy")
    assert rows(deployed)["image_check"]["outcome"] == "ok"
    assert deployment.one("Microsoft.App/containerApps")["properties"]["template"]["containers"][0]["image"] == pushed


def test_an_image_missing_from_the_deployments_registry_is_refused(deployment):
    deployment.ok("provision")
    deployment.standin.clear_requests()
    result = deployment.cli("deploy", "--image", f"{login_server(deployment)}/mlflow-server:never-pushed", "--json")
    assert result.code == 3, result
    error = error_of(result)
    assert error["code"] == "ImageNotFound" and "mlflow-server:never-pushed" in error["message"], error
    assert deployment.writes() == []


def test_a_public_image_from_another_registry_is_deployed(deployment):
    deployment.ok("provision")
    image = deployment.publish_public_image("public.example.io/team/mlflow:3.17.2")
    deployment.standin.clear_requests()
    deployed = deployment.ok("deploy", "--image", image)
    check = rows(deployed)["image_check"]
    assert check["outcome"] == "ok" and "anonymously" in check["detail"], check
    app = deployment.one("Microsoft.App/containerApps")
    assert app["properties"]["template"]["containers"][0]["image"] == image
    # Anonymously: a token from the realm (GET, no refresh token), no Entra exchange.
    assert deployment.requests("GET", "/oauth2/token") and deployment.requests("POST", "/oauth2/exchange") == []


def test_docker_hub_names_are_looked_up_on_registry_1(deployment):
    deployment.ok("provision")
    deployment.standin.add_registry_image("registry-1.docker.io/library/mlflow:3", anonymous=True)
    deployed = deployment.ok("deploy", "--image", "mlflow:3")
    assert rows(deployed)["image_check"]["outcome"] == "ok"
    result = deployment.cli("deploy", "--image", "docker.io/library/mlflow:4", "--json")
    assert result.code == 3 and error_of(result)["code"] == "ImageNotFound", result


def test_a_private_image_from_another_registry_is_refused(deployment):
    deployment.ok("provision")
    deployment.standin.add_registry_image("private.example.io/team/mlflow:1")   # anonymous pull refused
    deployment.standin.clear_requests()
    result = deployment.cli("deploy", "--image", "private.example.io/team/mlflow:1", "--json")
    assert result.code == 3, result
    error = error_of(result)
    assert error["code"] == "PrivateImage", error
    assert "without credentials" in error["message"]
    assert "az acr import" in error["hint"] and login_server(deployment) in error["hint"]
    assert deployment.writes() == []


def test_an_unreachable_registry_is_its_own_error(deployment):
    deployment.ok("provision")
    deployment.standin.clear_requests()
    nowhere = deployment.cli("deploy", "--image", "nowhere.example.io/team/mlflow:1", "--json")
    assert nowhere.code == 3, nowhere
    assert error_of(nowhere)["code"] == "RegistryUnreachable", nowhere
    image = deployment.publish_public_image()
    deployment.standin.add_fault(faults.server_error(r"^/v2/$", status=503, times=5))
    failing = deployment.cli("deploy", "--image", image, "--json")
    assert failing.code == 3, failing
    error = error_of(failing)
    assert error["code"] == "RegistryUnreachable" and "503" in error["message"], error
    assert deployment.writes() == []


def test_a_digest_reference_works(deployment):
    deployment.ok("provision")
    image = deployment.publish_public_image()
    (listed,) = deployment.standin.registry_images("public.example.io")
    by_digest = f"public.example.io/team/mlflow@{listed['digest']}"
    assert deployment.ok("deploy", "--image", by_digest)
    assert deployment.one("Microsoft.App/containerApps")["properties"]["template"]["containers"][0]["image"] == by_digest
    pushed = deployment.push_template_image()
    (own,) = deployment.standin.registry_images(login_server(deployment))
    deployed = deployment.ok("deploy", "--image", f"{pushed.rsplit(':', 1)[0]}@{own['digest']}")
    assert rows(deployed)["image_check"]["outcome"] == "ok"
    absent = deployment.cli("deploy", "--image", f"public.example.io/team/mlflow@sha256:{'0' * 64}", "--json")
    assert absent.code == 3 and error_of(absent)["code"] == "ImageNotFound", absent
    assert image


def test_plan_reports_the_image_without_failing(deployment):
    fresh = deployment.ok("plan")
    assert rows(fresh)["image_check"]["outcome"] == "unchecked"
    deployment.ok("provision")
    deployment.standin.clear_requests()
    missing = deployment.ok("plan")
    check = rows(missing)["image_check"]
    assert check["outcome"] == "missing" and "mlflow-aca push" in check["detail"], check
    assert rows(deployment.ok("deploy", "--dry-run"))["image_check"]["outcome"] == "missing"
    deployment.push_template_image()
    assert rows(deployment.ok("plan"))["image_check"]["outcome"] == "ok"
    assert deployment.writes() == []
