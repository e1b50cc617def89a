"""Container Apps: environments, apps with revisions and replicas, secrets, auth configs, jobs,
and the app's FQDN through the CONNECT proxy."""

import copy

import pytest
import requests
from azure.core.exceptions import HttpResponseError

from .conftest import LOCATION, app_body


def _error(call):
    with pytest.raises(HttpResponseError) as err:
        call()
    return err.value


def test_environment_has_domain_and_keeps_the_key_write_only(standin, azure, env):
    assert env.provisioning_state == "Succeeded"
    assert env.default_domain.endswith(f".{LOCATION}.azurecontainerapps.io") and env.static_ip
    shown = azure.aca.managed_environments.get("rg-test", "cae-mlflow")
    assert shown.app_logs_configuration.log_analytics_configuration.shared_key is None
    assert env.workspace_key not in str(shown.as_dict())
    puts = standin.requests("PUT", "/managedEnvironments/")
    assert puts[0]["status"] == 201 and "***" in str(puts[0]["body"])


@pytest.mark.parametrize("change, code", [
    ({"customer_id": "00000000-0000-0000-0000-000000000000"}, "LogAnalyticsWorkspaceNotFound"),
    ({"shared_key": "bm90IHRoZSBrZXk="}, "LogAnalyticsSharedKeyInvalid"),
])
def test_environment_checks_its_log_analytics_workspace(azure, env, change, code):
    body = {"location": LOCATION, "properties": {"appLogsConfiguration": {
        "destination": "log-analytics", "logAnalyticsConfiguration": {
            "customerId": env.app_logs_configuration.log_analytics_configuration.customer_id,
            "sharedKey": env.workspace_key,
            **{{"customer_id": "customerId", "shared_key": "sharedKey"}[k]: v for k, v in change.items()}}}}}
    assert _error(lambda: azure.aca.managed_environments.begin_create_or_update("rg-test", "cae-two", body).result()
                  ).error.code == code


def test_environment_type_cannot_change(azure, env):
    body = {"location": LOCATION, "properties": {"workloadProfiles": [
        {"name": "Consumption", "workloadProfileType": "Consumption"}]}}
    assert _error(lambda: azure.aca.managed_environments.begin_create_or_update("rg-test", "cae-mlflow", body).result()
                  ).error.code == "InvalidRequestParameterWithDetails"


def test_app_creates_a_revision_with_healthy_replicas(standin, azure, group, env):
    apps = azure.aca.container_apps
    app = apps.begin_create_or_update(group.name, "mlflow", app_body(group, env)).result()
    assert app.provisioning_state == "Succeeded" and app.running_status == "Running"
    assert app.latest_revision_name.startswith("mlflow--")
    assert app.latest_ready_revision_name == app.latest_revision_name
    assert app.configuration.ingress.fqdn == f"mlflow.{env.default_domain}"
    assert len(app.outbound_ip_addresses) >= 1
    assert app.identity.user_assigned_identities[group.identity.id].client_id == group.identity.client_id
    (revision,) = azure.aca.container_apps_revisions.list_revisions(group.name, "mlflow")
    assert (revision.health_state, revision.running_state, revision.provisioning_state, revision.replicas) == \
        ("Healthy", "Running", "Provisioned", 1)
    (replica,) = azure.aca.container_apps_revision_replicas.list_replicas(group.name, "mlflow", revision.name).value
    assert replica.running_state == "Running" and replica.containers[0].ready is True
    # write-only secret values: not in GET, available from listSecrets, redacted in the log
    assert app.configuration.secrets[0].value is None
    assert azure.aca.container_apps.list_secrets(group.name, "mlflow").value[0].value == "mssql+pyodbc://x"
    assert standin.requests("PUT", "/containerApps/mlflow")[0]["body"]["properties"]["configuration"]["secrets"] == \
        [{"name": "backend-uri", "value": "***"}]


def test_new_revision_only_for_template_changes(azure, group, env):
    apps = azure.aca.container_apps
    first = apps.begin_create_or_update(group.name, "mlflow", app_body(group, env)).result().latest_revision_name
    same = apps.begin_create_or_update(group.name, "mlflow", app_body(
        group, env, secrets=[{"name": "backend-uri", "value": "rotated"}])).result()
    assert same.latest_revision_name == first
    second = apps.begin_create_or_update(group.name, "mlflow", app_body(group, env, image="acrmlflow01.azurecr.io/mlflow:2")
                                         ).result()
    assert second.latest_revision_name != first
    revisions = {r.name: r for r in azure.aca.container_apps_revisions.list_revisions(group.name, "mlflow")}
    assert revisions[first].active is False and revisions[second.latest_revision_name].active is True
    suffixed = app_body(group, env, image="acrmlflow01.azurecr.io/mlflow:3")
    suffixed["properties"]["template"]["revisionSuffix"] = "v3"
    assert apps.begin_create_or_update(group.name, "mlflow", suffixed).result().latest_revision_name == "mlflow--v3"


def test_a_get_modify_put_round_trip_loses_secret_values(azure, group, env):
    apps = azure.aca.container_apps
    apps.begin_create_or_update(group.name, "mlflow", app_body(group, env)).result()
    round_trip = apps.get(group.name, "mlflow")
    err = _error(lambda: apps.begin_create_or_update(group.name, "mlflow", round_trip).result())
    assert err.error.code == "ContainerAppSecretInvalid"


def test_unhealthy_and_failed_revisions(standin, azure, group, env):
    from tests.standin import faults
    apps = azure.aca.container_apps
    app = apps.begin_create_or_update(group.name, "mlflow", app_body(group, env)).result()
    standin.set_revision_state(app.id, health="Unhealthy", running_state="Degraded", restart_count=4)
    revision = azure.aca.container_apps_revisions.get_revision(group.name, "mlflow", app.latest_revision_name)
    assert (revision.health_state, revision.running_state) == ("Unhealthy", "Degraded")
    (replica,) = azure.aca.container_apps_revision_replicas.list_replicas(group.name, "mlflow", revision.name).value
    assert replica.containers[0].restart_count == 4 and replica.containers[0].ready is False

    standin.set_revision_state(app.id, health="Healthy", running_state="Running")
    standin.add_fault(faults.lro_failed("/containerApps/mlflow$", "ContainerAppImagePullFailed",
                                        "Failed to pull image 'acrmlflow01.azurecr.io/mlflow:broken'."))
    err = _error(lambda: apps.begin_create_or_update(group.name, "mlflow", app_body(
        group, env, image="acrmlflow01.azurecr.io/mlflow:broken")).result())
    assert err.error.code == "ContainerAppImagePullFailed"
    after = apps.get(group.name, "mlflow")
    assert after.provisioning_state == "Failed"
    assert after.latest_revision_name != app.latest_revision_name
    assert after.latest_ready_revision_name == app.latest_revision_name
    failed = azure.aca.container_apps_revisions.get_revision(group.name, "mlflow", after.latest_revision_name)
    assert failed.provisioning_state == "Failed" and "broken" in failed.provisioning_error


def _mutate(body, path, value):
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


CONTAINER = ("properties", "template", "containers", 0)


@pytest.mark.parametrize("path, value, code", [
    (("properties", "managedEnvironmentId"), None, "ManagedEnvironmentRequired"),
    (CONTAINER + ("env",), [{"name": "X", "secretRef": "missing"}], "ContainerAppSecretRefNotFound"),
    (("properties", "configuration", "secrets"), [{"name": "backend-uri"}], "ContainerAppSecretInvalid"),
    (("properties", "configuration", "secrets"), [{"name": "Bad_Name", "value": "v"}], "ContainerAppSecretInvalidName"),
    (("properties", "configuration", "registries"), [{"server": "a.azurecr.io", "identity": "/subscriptions/x/id"}],
     "ContainerAppUserAssignedIdentityNotFound"),
    (("identity", "userAssignedIdentities"), {"/subscriptions/{sub}/resourceGroups/rg-test/providers/"
                                              "Microsoft.ManagedIdentity/userAssignedIdentities/absent": {}},
     "FailedIdentityOperation"),
    (CONTAINER + ("resources",), {"cpu": 1.0, "memory": "1Gi"}, "ContainerAppInvalidResourceTotal"),
    (CONTAINER + ("probes",), [{"type": "Liveness", "httpGet": {"port": 5000}}] * 2, "ContainerAppInvalidProbe"),
    (CONTAINER + ("probes",), [{"type": "Sometimes", "httpGet": {"port": 5000}}], "ContainerAppInvalidProbe"),
    (("properties", "configuration", "ingress", "targetPort"), 70000, "ContainerAppInvalidIngress"),
    (("properties", "configuration", "ingress", "ipSecurityRestrictions"),
     [{"name": "office", "ipAddressRange": "203.0.113.0/24", "action": "Allow"},
      {"name": "bad", "ipAddressRange": "198.51.100.7", "action": "Deny"}], "ContainerAppInvalidIngress"),
    (("properties", "configuration", "activeRevisionsMode"), "Several", "InvalidParameterValue"),
    (("properties", "template", "scale"), {"minReplicas": 3, "maxReplicas": 1}, "InvalidParameterValue"),
])
def test_app_validation(azure, group, env, path, value, code):
    body = app_body(group, env)
    if path[0] == "identity":
        value = {k.replace("{sub}", azure.subscription_id): v for k, v in value.items()}
    _mutate(body, path, value)
    assert _error(lambda: azure.aca.container_apps.begin_create_or_update(group.name, "mlflow", body).result()
                  ).error.code == code


@pytest.mark.parametrize("name", ["MLflow", "1app", "app--x", "a" * 33, "app-"])
def test_app_name_rules(azure, group, env, name):
    assert _error(lambda: azure.aca.container_apps.begin_create_or_update(group.name, name, app_body(group, env))
                  .result()).error.code == "ContainerAppInvalidName"


def test_app_environment_must_exist_be_ready_and_stay(standin, azure, group, env):
    apps = azure.aca.container_apps
    missing = app_body(group, env)
    missing["properties"]["managedEnvironmentId"] = env.id.replace("cae-mlflow", "cae-absent")
    assert _error(lambda: apps.begin_create_or_update(group.name, "mlflow", missing).result()).error.code == \
        "ManagedEnvironmentNotFound"
    standin.set_latency(1)      # an environment takes minutes: still Waiting right after the PUT
    azure.aca.managed_environments.begin_create_or_update(group.name, "cae-slow", {"location": LOCATION})
    slow = app_body(group, env)
    slow["properties"]["managedEnvironmentId"] = env.id.replace("cae-mlflow", "cae-slow")
    assert _error(lambda: apps.begin_create_or_update(group.name, "mlflow", slow).result()).status_code == 409
    standin.set_latency(0)
    apps.begin_create_or_update(group.name, "mlflow", app_body(group, env)).result()
    assert _error(lambda: apps.begin_create_or_update(group.name, "mlflow", slow).result()).error.code == \
        "ManagedEnvironmentCannotBeChanged"


def test_environment_with_apps_cannot_be_deleted(azure, group, env):
    azure.aca.container_apps.begin_create_or_update(group.name, "mlflow", app_body(group, env)).result()
    assert _error(lambda: azure.aca.managed_environments.begin_delete(group.name, "cae-mlflow").result()
                  ).error.code == "ManagedEnvironmentInUse"
    azure.aca.container_apps.begin_delete(group.name, "mlflow").result()
    azure.aca.managed_environments.begin_delete(group.name, "cae-mlflow").result()
    assert list(azure.aca.managed_environments.list_by_resource_group(group.name)) == []


def test_auth_config_and_stop_start(azure, group, env):
    from azure.mgmt.appcontainers.models import AuthConfig
    apps = azure.aca.container_apps
    apps.begin_create_or_update(group.name, "mlflow", app_body(group, env)).result()
    auth = azure.aca.container_apps_auth_configs.create_or_update(group.name, "mlflow", "current", AuthConfig(
        platform={"enabled": True}, global_validation={"unauthenticatedClientAction": "Return401"}))
    assert auth.platform.enabled is True
    bad = AuthConfig(identity_providers={"azureActiveDirectory": {"registration": {
        "clientId": "x", "clientSecretSettingName": "no-such-secret"}}})
    assert _error(lambda: azure.aca.container_apps_auth_configs.create_or_update(
        group.name, "mlflow", "current", bad)).error.code == "ContainerAppSecretRefNotFound"
    assert apps.begin_stop(group.name, "mlflow").result().running_status == "Stopped"
    assert apps.begin_start(group.name, "mlflow").result().running_status == "Running"


def test_job_start_and_executions(standin, azure, group, env):
    body = app_body(group, env)
    job = {"location": LOCATION, "identity": body["identity"], "properties": {
        "environmentId": env.id,
        "configuration": {"triggerType": "Manual", "replicaTimeout": 600,
                          "secrets": body["properties"]["configuration"]["secrets"],
                          "registries": body["properties"]["configuration"]["registries"]},
        "template": {"containers": [{**body["properties"]["template"]["containers"][0],
                                     "command": ["mlflow", "db", "upgrade"], "probes": []}]}}}
    created = azure.aca.jobs.begin_create_or_update(group.name, "mlflow-db-upgrade", job).result()
    assert created.provisioning_state == "Succeeded"
    assert created.configuration.manual_trigger_config.parallelism == 1
    started = azure.aca.jobs.begin_start(group.name, "mlflow-db-upgrade").result()
    assert started.name.startswith("mlflow-db-upgrade-")
    (execution,) = azure.aca.jobs_executions.list(group.name, "mlflow-db-upgrade")
    assert execution.status == "Succeeded"
    standin.set_job_execution_outcome(created.id, "Failed")
    failed = azure.aca.jobs.begin_start(group.name, "mlflow-db-upgrade").result()
    assert azure.aca.job_execution(group.name, "mlflow-db-upgrade", failed.name).status == "Failed"
    no_timeout = copy.deepcopy(job)
    del no_timeout["properties"]["configuration"]["replicaTimeout"]
    assert _error(lambda: azure.aca.jobs.begin_create_or_update(group.name, "job-two", no_timeout).result()
                  ).error.code == "InvalidParameterValue"
    bad_ref = copy.deepcopy(job)
    bad_ref["properties"]["template"]["containers"][0]["env"] = [{"name": "X", "secretRef": "nope"}]
    assert _error(lambda: azure.aca.jobs.begin_create_or_update(group.name, "job-two", bad_ref).result()
                  ).error.code == "ContainerAppSecretRefNotFound"


def test_app_fqdn_through_the_proxy(standin, azure, group, env, standin_env):
    body = app_body(group, env)
    container = body["properties"]["template"]["containers"][0]
    container["env"].append({"name": "MLFLOW_SERVER_ALLOWED_HOSTS", "value": "mlflow.*.azurecontainerapps.io"})
    app = azure.aca.container_apps.begin_create_or_update(group.name, "mlflow", body).result()
    url = f"https://{app.configuration.ingress.fqdn}"
    session = requests.Session()       # honours HTTPS_PROXY / NO_PROXY / REQUESTS_CA_BUNDLE from the env
    assert session.get(url + "/health", timeout=5).text == "OK"
    assert session.get(url + "/version", timeout=5).text == "3.6.0"
    assert session.get(url + "/api/3.0/mlflow/server-info", timeout=5).json() == {"store_type": "SqlStore"}
    standin.set_revision_state(app.id, health="Unhealthy")
    assert session.get(url + "/health", timeout=5).status_code == 503
    standin.set_revision_state(app.id, health="Healthy")
    azure.aca.container_apps.begin_stop(group.name, "mlflow").result()
    assert session.get(url + "/health", timeout=5).status_code == 404
    with pytest.raises(requests.exceptions.ProxyError):
        session.get("https://example.com/", timeout=5)


def test_proxy_relays_to_a_registered_backend(standin, azure, group, env, standin_env):
    import http.server
    import threading

    class Backend(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            payload = f"backend saw Host {self.headers['Host']}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    try:
        app = azure.aca.container_apps.begin_create_or_update(group.name, "mlflow", app_body(group, env)).result()
        standin.set_app_endpoint(app.id, backend=f"127.0.0.1:{backend.server_address[1]}")
        fqdn = app.configuration.ingress.fqdn
        assert requests.get(f"https://{fqdn}/anything", timeout=5).text == f"backend saw Host {fqdn}"
    finally:
        backend.shutdown()
        backend.server_close()
