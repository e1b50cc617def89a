"""A deployment whose revision failed recovers on the next `deploy`, and image pulls that fail
are reported for what they are, through the real CLI against the stand-in.

An unchanged template creates no revision in Container Apps, so a rerun after a failed
revision must ask for one (a new `template.revisionSuffix`); the rerun after that writes
nothing."""

from __future__ import annotations

from tests.standin import faults

APP_PUT = r"/providers/Microsoft\.App/containerApps/[^/]+$"
APP_TYPE = "Microsoft.App/containerApps"


def seeded_image(deployment) -> str:
    """An image the deployment's registry holds (the stand-in's catalog; no Docker needed)."""
    login_server = deployment.one("Microsoft.ContainerRegistry/registries")["properties"]["loginServer"]
    image = f"{login_server}/mlflow-server:recovery"
    deployment.standin.add_registry_image(image)
    return image


def app_state(deployment) -> dict:
    return deployment.one(APP_TYPE)


def revision_of(deployment, name: str) -> dict:
    app = app_state(deployment)
    return deployment.standin.resource(f"{app['id']}/revisions/{name}")


def app_row(data: dict) -> dict:
    return next(r for r in data["resources"] if r["key"] == "app")


def assert_rerun_writes_nothing(deployment, image: str) -> None:
    deployment.standin.clear_requests()
    data = deployment.ok("deploy", "--image", image)
    assert deployment.writes() == [], [(w["method"], w["path"]) for w in deployment.writes()]
    assert app_row(data)["outcome"] == "ok"


def test_a_failed_revision_is_replaced_on_rerun(deployment):
    deployment.ok("provision")
    image = seeded_image(deployment)
    deployment.ok("deploy", "--image", image)
    app = app_state(deployment)
    failed = app["properties"]["latestRevisionName"]
    deployment.standin.set_revision_state(app["id"], provisioning_state="Failed", running_state="Failed",
                                          provisioning_error="Container 'mlflow' crashed: exit code 1")
    data = deployment.ok("deploy", "--image", image)
    latest = app_state(deployment)["properties"]["latestRevisionName"]
    assert latest != failed, "the rerun started no new revision"
    assert revision_of(deployment, latest)["properties"]["healthState"] == "Healthy"
    row = app_row(data)
    assert row["outcome"] == "updated" and failed in row["detail"] and f"revision {latest} healthy" in row["detail"]
    assert_rerun_writes_nothing(deployment, image)


def test_a_failed_app_operation_converges_on_rerun(deployment):
    """The app's PUT fails (its operation ends Failed, so do the app and its revision); the next
    deploy reapplies the app and waits for a new, healthy revision."""
    deployment.ok("provision")
    image = seeded_image(deployment)
    deployment.standin.add_fault(faults.lro_failed(
        APP_PUT, "ContainerAppOperationError", "Failed to provision revision for container app 'mlflow'.",
        method="PUT"))
    first = deployment.cli("deploy", "--image", image)
    assert first.code == 3, first
    app = app_state(deployment)
    assert app["properties"]["provisioningState"] == "Failed"
    failed = app["properties"]["latestRevisionName"]
    assert revision_of(deployment, failed)["properties"]["provisioningState"] == "Failed"
    data = deployment.ok("deploy", "--image", image)
    latest = app_state(deployment)["properties"]["latestRevisionName"]
    assert latest != failed
    assert app_state(deployment)["properties"]["provisioningState"] == "Succeeded"
    assert "provisioningState" in app_row(data)["detail"]
    assert_rerun_writes_nothing(deployment, image)


# -- image pulls and a fresh AcrPull grant ------------------------------------------------------------
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"


def regrant_acr_pull(deployment) -> None:
    """Delete the identity's AcrPull assignment: the next deploy grants it again, young."""
    assignment = next(r for r in deployment.resources("Microsoft.Authorization/roleAssignments")
                      if r["properties"]["roleDefinitionId"].endswith(ACR_PULL))
    path = assignment["id"].split(deployment.subscription_id, 1)[1]
    deployment.arm("DELETE", f"{path}?api-version=2022-04-01")


def row(data: dict, key: str) -> dict:
    return next(r for r in data["resources"] if r["key"] == key)


def test_a_fresh_grant_is_waited_for_by_the_migration_job(deployment):
    """provision + deploy with role assignments that reach the registry only after a few
    seconds: the first executions of the migration job fail to pull, are retried, and the deploy
    succeeds saying so."""
    deployment.write_config(poll_interval=0.5)   # retries wait 0.25, 0.5, 1, 2, 4 s...
    deployment.standin.set_role_propagation_delay(6)
    deployment.ok("provision")
    image = seeded_image(deployment)
    data = deployment.ok("deploy", "--image", image)
    migration = row(data, "migration")
    assert migration["outcome"] == "ran" and "while the AcrPull grant propagated" in migration["detail"], migration
    assert "healthy" in row(data, "app")["detail"]


def test_a_fresh_grant_is_waited_for_by_the_app(deployment):
    """A new revision whose pull is refused while the grant propagates: the app's operation is
    held, deploy waits for it within timeout_minutes, and says it waited."""
    deployment.ok("provision")
    image = seeded_image(deployment)
    deployment.ok("deploy", "--image", image)
    second = image.replace(":recovery", ":second")
    deployment.standin.add_registry_image(second)
    deployment.standin.set_role_propagation_delay(6)
    regrant_acr_pull(deployment)
    data = deployment.ok("deploy", "--image", second)
    app = row(data, "app")
    assert app["outcome"] == "updated" and "for the image pull" in app["detail"], app
    assert app_state(deployment)["properties"]["template"]["containers"][0]["image"] == second
    assert_rerun_writes_nothing(deployment, second)


def test_a_grant_that_never_propagates_is_a_clear_error(deployment):
    """The pull is still refused when timeout_minutes run out (Azure gave up on each revision
    after its pull timeout): the error names the identity, the registry and the grant's age."""
    deployment.write_config(timeout_minutes=1)
    deployment.ok("provision")
    image = seeded_image(deployment)
    deployment.ok("deploy", "--image", image)
    second = image.replace(":recovery", ":second")
    deployment.standin.add_registry_image(second)
    deployment.standin.set_role_propagation_delay(3600)
    deployment.standin.set_pull_timeout(5)
    regrant_acr_pull(deployment)
    result = deployment.cli("deploy", "--image", second, "--json", timeout=240)
    assert result.code == 3, result
    error = result.json["error"]
    identity = next(i for i in deployment.resources("Microsoft.ManagedIdentity/userAssignedIdentities")
                    if i["name"] == "mlflow-id")["properties"]["clientId"]   # the app's: it pulls the image
    login_server = second.split("/", 1)[0]
    assert error["code"] == "ImagePullPending", error
    assert identity in error["message"] and login_server in error["message"] and "granted AcrPull" in error["message"]
    assert "few minutes" in error["hint"]
    assert "Traceback" not in result.output
