"""Image pulls as Container Apps makes them (providers/pulls.py): a revision's operation fails on a
missing tag or missing pull rights, waits while a fresh AcrPull propagates (then succeeds, or fails
"Operation expired" after the pull timeout); a job execution fails when its pull fails at start."""

import time

import pytest
from azure.core.exceptions import HttpResponseError

from tests import services

from .conftest import LOCATION, app_body

ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
REGISTRY = "acrmlflow01"          # app_body pulls from acrmlflow01.azurecr.io with the group's identity
HOST = f"{REGISTRY}.azurecr.io"


@pytest.fixture
def acr(azure, group):
    return azure.acr.registries.begin_create(group.name, REGISTRY, {"location": LOCATION,
                                                                   "sku": {"name": "Basic"}}).result()


def _grant_pull(standin, azure, group, scope: str) -> None:
    azure.auth.role_assignments.create(scope, "3f2504e0-4f89-11d3-9a0c-0305e82c3301", {
        "role_definition_id": f"/subscriptions/{standin.subscription_id}/providers/Microsoft.Authorization/"
                              f"roleDefinitions/{ACR_PULL}",
        "principal_id": group.identity.principal_id, "principal_type": "ServicePrincipal"})


def _deploy(azure, group, env, image: str, **options):
    return azure.aca.container_apps.begin_create_or_update(group.name, "mlflow", app_body(group, env, image=image),
                                                           **options)


def _failure(poller) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as failed:
        poller.result()
    return failed.value


def _latest_revision(azure, group):
    app = azure.aca.container_apps.get(group.name, "mlflow")
    return azure.aca.container_apps_revisions.get_revision(group.name, "mlflow", app.latest_revision_name)


def test_a_missing_tag_fails_the_revision(standin, azure, group, env, acr):
    standin.add_registry_image(f"{HOST}/mlflow:1")
    _grant_pull(standin, azure, group, acr.id)
    error = _failure(_deploy(azure, group, env, f"{HOST}/mlflow:2"))
    expected = (f"Failed to provision revision for container app 'mlflow'. Error details: The following field(s) are "
                f"either invalid or missing. Field 'template.containers.mlflow.image' is invalid with details: "
                f"'Invalid value: \"{HOST}/mlflow:2\": GET https:: MANIFEST_UNKNOWN: manifest tagged by \"2\" is not "
                f"found; map[Tag:2]';..")
    assert (error.error.code, error.error.message) == ("ContainerAppOperationError", expected)
    revision = _latest_revision(azure, group)
    assert (revision.provisioning_state, revision.provisioning_error) == ("Failed", expected)

    app = _deploy(azure, group, env, f"{HOST}/mlflow:1").result()
    assert app.provisioning_state == "Succeeded" and _latest_revision(azure, group).health_state == "Healthy"


@pytest.mark.parametrize("case", ["no role", "no registry entry", "other registry's role"])
def test_no_pull_rights_fail_the_revision(standin, azure, group, env, acr, case):
    standin.add_registry_image(f"{HOST}/mlflow:1")
    body = app_body(group, env, image=f"{HOST}/mlflow:1")
    if case == "no registry entry":
        _grant_pull(standin, azure, group, acr.id)
        body["properties"]["configuration"]["registries"] = []
    if case == "other registry's role":
        other = azure.acr.registries.begin_create(group.name, "acrother01", {"location": LOCATION,
                                                                           "sku": {"name": "Basic"}}).result()
        _grant_pull(standin, azure, group, other.id)
    error = _failure(azure.aca.container_apps.begin_create_or_update(group.name, "mlflow", body))
    assert error.error.code == "ContainerAppOperationError"
    assert error.error.message.endswith(f"'Invalid value: \"{HOST}/mlflow:1\": GET https:: UNAUTHORIZED: "
                                        "authentication required, visit https://aka.ms/acr/authorization for more "
                                        "information.';..")


def test_a_pull_role_at_the_group_scope_is_enough(standin, azure, group, env, acr):
    standin.add_registry_image(f"{HOST}/mlflow:1")
    _grant_pull(standin, azure, group, group.id)
    assert _deploy(azure, group, env, f"{HOST}/mlflow:1").result().provisioning_state == "Succeeded"


def test_a_fresh_pull_role_holds_the_revision_until_it_has_propagated(standin, azure, group, env, acr):
    standin.add_registry_image(f"{HOST}/mlflow:1")
    standin.set_role_propagation_delay(1.5)
    _grant_pull(standin, azure, group, acr.id)
    poller = _deploy(azure, group, env, f"{HOST}/mlflow:1", polling_interval=0.2)
    time.sleep(0.3)
    assert poller.status() == "InProgress" and not poller.done()   # latency 0, yet still running
    revision = _latest_revision(azure, group)
    assert (revision.provisioning_state, revision.running_state) == ("Provisioning", "Processing")
    replica = azure.aca.container_apps_revision_replicas.list_replicas(group.name, "mlflow", revision.name).value[0]
    assert replica.running_state == "NotRunning"
    assert replica.running_state_details.startswith(f'Persistent Image Pull Errors for image "{HOST}/mlflow:1": '
                                                    "GET https:: UNAUTHORIZED")
    assert replica.containers[0].running_state_details == "ImagePullBackOff"

    assert poller.result().provisioning_state == "Succeeded"
    revision = _latest_revision(azure, group)
    assert (revision.provisioning_state, revision.health_state) == ("Provisioned", "Healthy")
    replica = azure.aca.container_apps_revision_replicas.list_replicas(group.name, "mlflow", revision.name).value[0]
    assert (replica.running_state, replica.containers[0].running_state_details) == ("Running", "")


def test_a_pull_that_never_succeeds_expires(standin, azure, group, env, acr):
    standin.add_registry_image(f"{HOST}/mlflow:1")
    standin.set_role_propagation_delay(3600)
    standin.set_pull_timeout(0.5)
    _grant_pull(standin, azure, group, acr.id)
    poller = _deploy(azure, group, env, f"{HOST}/mlflow:1", polling_interval=0.2)
    with pytest.raises(HttpResponseError) as failed:
        poller.wait(timeout=10)   # raises once the operation has failed; returns if it is still InProgress
    error = failed.value
    assert error.error.code == "ContainerAppOperationError"
    assert error.error.message.startswith(
        "Failed to provision revision for container app 'mlflow'. Error details: Operation expired. "
        f'Persistent Image Pull Errors for image "{HOST}/mlflow:1": GET https:: UNAUTHORIZED: authentication required')
    assert _latest_revision(azure, group).provisioning_state == "Failed"


def test_registries_the_standin_cannot_see_are_pulled_unchecked(standin, azure, group, env, acr):
    # acr exists (its host is checked), but these hosts are not the stand-in's: permissive.
    for image in ("mcr.microsoft.com/k8se/quickstart:latest", "busybox", "ghcr.io/mlflow/mlflow:v3.6.0"):
        assert _deploy(azure, group, env, image).result().provisioning_state == "Succeeded"


def test_catalog_hosts_other_than_acr(standin, azure, group, env):
    standin.add_registry_image("public.example.io/tools/mlflow:1", anonymous=True)
    standin.add_registry_image("private.example.io/team/mlflow:1")
    assert _deploy(azure, group, env, "public.example.io/tools/mlflow:1").result().provisioning_state == "Succeeded"
    missing = _failure(_deploy(azure, group, env, "public.example.io/tools/mlflow:9"))
    assert "MANIFEST_UNKNOWN" in missing.error.message
    private = _failure(_deploy(azure, group, env, "private.example.io/team/mlflow:1"))
    assert private.error.message.endswith('GET https:: UNAUTHORIZED: authentication required\';..')


def test_a_job_execution_fails_when_its_pull_fails(standin, azure, group, env, acr):
    standin.add_registry_image(f"{HOST}/mlflow:1")
    body = app_body(group, env, image=f"{HOST}/mlflow:1")
    props = body["properties"]
    job = {"location": LOCATION, "identity": body["identity"], "properties": {
        "environmentId": env.id, "configuration": {"triggerType": "Manual", "replicaTimeout": 600,
                                                   "secrets": props["configuration"]["secrets"],
                                                   "registries": props["configuration"]["registries"]},
        "template": {"containers": props["template"]["containers"]}}}
    azure.aca.jobs.begin_create_or_update(group.name, "migrate", job).result()

    def run() -> str:
        started = azure.aca.jobs.begin_start(group.name, "migrate").result()
        return azure.aca.job_execution(group.name, "migrate", started.name).status

    assert run() == "Failed"                      # no pull rights
    standin.set_role_propagation_delay(3600)
    _grant_pull(standin, azure, group, acr.id)
    assert run() == "Failed"                      # rights too young
    standin.set_role_propagation_delay(0)
    assert run() == "Succeeded"


def test_a_real_registry_is_asked_for_the_tag(standin, standin_env, azure, group, env, tmp_path):
    front = standin.registry_front()
    try:
        backend = services.start_token_registry("standin-pulls", realm=front["realm"], service=front["service"],
                                                issuer=front["issuer"], rootcertbundle=front["rootcertbundle"])
    except RuntimeError as err:
        pytest.skip(f"token registry: {err}")
    with backend:
        standin.attach_registry(backend.host)
        registry = azure.acr.registries.begin_create(group.name, REGISTRY, {"location": LOCATION,
                                                                           "sku": {"name": "Basic"}}).result()
        host = registry.login_server
        assert host == front["login_server"]
        digest = standin.add_registry_image(f"{host}/mlflow:1")["digest"]   # pushed to the real registry
        _grant_pull(standin, azure, group, registry.id)
        body = app_body(group, env, image=f"{host}/mlflow:1")
        body["properties"]["configuration"]["registries"][0]["server"] = host
        apps = azure.aca.container_apps
        assert apps.begin_create_or_update(group.name, "mlflow", body).result().provisioning_state == "Succeeded"
        body["properties"]["template"]["containers"][0]["image"] = f"{host}/mlflow:2"
        error = _failure(apps.begin_create_or_update(group.name, "mlflow", body))
        assert 'GET https:: MANIFEST_UNKNOWN: manifest tagged by "2" is not found' in error.error.message
        assert digest.startswith("sha256:")
