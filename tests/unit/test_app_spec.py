"""The container app spec, by value: the product's most consequential output."""

import fnmatch
import json

import pytest

from mlflow_aca.cloud import KNOWN_CLOUDS
from mlflow_aca.config import Settings
from mlflow_aca.resources.app import AppInputs, allowed_hosts, container_app_spec
from tests.values import SUBSCRIPTION

CLOUD = KNOWN_CLOUDS["AzureCloud"]
FQDN = "mlflow.happy-sky-1234.westeurope.azurecontainerapps.io"
IDENTITY = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-mlflow/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mlflow-id"
PASSWORD = "S3cr;t}P@ss/w0rd"


def spec(**overrides):
    settings = Settings(name="mlflow", location="westeurope", subscription_id=SUBSCRIPTION, **overrides)
    password = PASSWORD if settings.sql_auth == "password" else None
    inputs = AppInputs(
        image="acrmlflow.azurecr.io/mlflow-server:3.17.2-abc",
        identity_id=IDENTITY,
        identity_client_id="client-guid",
        environment_id="/subscriptions/x/resourceGroups/rg/providers/Microsoft.App/managedEnvironments/mlflow-env",
        registry_server="acrmlflow.azurecr.io",
        fqdn=FQDN,
        backend_store_uri=settings.backend_store_uri(CLOUD, client_id="client-guid", password=password),
        artifacts_destination=settings.artifacts_destination(CLOUD),
    )
    return settings, container_app_spec(settings, inputs, settings.tags_for_resources)


def container(document):
    (only,) = document["properties"]["template"]["containers"]
    return only


def env_map(document):
    return {item["name"]: item for item in container(document)["env"]}


def test_server_command_and_port():
    _settings, document = spec()
    main = container(document)
    assert main["command"] == ["mlflow"]
    assert main["args"] == ["server", "--host", "0.0.0.0", "--port", "5000"]
    ingress = document["properties"]["configuration"]["ingress"]
    assert ingress["targetPort"] == 5000 and ingress["external"] is True and ingress["allowInsecure"] is False


def test_uris_identity_and_host_checks_through_environment():
    settings, document = spec()
    env = env_map(document)
    assert env["MLFLOW_BACKEND_STORE_URI"]["value"].startswith("mssql+pyodbc://client-guid@")
    assert "authentication=ActiveDirectoryMsi" in env["MLFLOW_BACKEND_STORE_URI"]["value"]
    assert env["MLFLOW_ARTIFACTS_DESTINATION"]["value"] == settings.artifacts_destination(CLOUD)
    assert env["AZURE_CLIENT_ID"]["value"] == "client-guid"
    assert env["MLFLOW_SERVER_CORS_ALLOWED_ORIGINS"]["value"] == f"https://{FQDN}"
    hosts = env["MLFLOW_SERVER_ALLOWED_HOSTS"]["value"].split(",")
    assert FQDN in hosts
    assert "--disable-security-middleware" not in json.dumps(document)
    assert document["properties"]["configuration"]["secrets"] == []


def test_password_only_travels_as_a_secret():
    _settings, document = spec(sql_auth="password")
    secrets = document["properties"]["configuration"]["secrets"]
    assert [s["name"] for s in secrets] == ["backend-store-uri"]
    env = env_map(document)
    assert env["MLFLOW_BACKEND_STORE_URI"] == {"name": "MLFLOW_BACKEND_STORE_URI", "secretRef": "backend-store-uri"}
    # Every secretRef names a secret that exists.
    names = {s["name"] for s in secrets}
    assert all(item["secretRef"] in names for item in container(document)["env"] if "secretRef" in item)
    # The password appears nowhere but in the secret's value.
    without_secret_values = json.dumps({**document, "properties": {
        **document["properties"], "configuration": {**document["properties"]["configuration"], "secrets": []}}})
    from urllib.parse import quote
    assert PASSWORD not in without_secret_values and quote(PASSWORD, safe="") not in without_secret_values


def test_identity_pulls_from_the_registry():
    _settings, document = spec()
    assert document["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}}
    assert document["properties"]["configuration"]["registries"] == [
        {"server": "acrmlflow.azurecr.io", "identity": IDENTITY}]


def test_probes_on_health():
    _settings, document = spec()
    probes = container(document)["probes"]
    assert {p["type"] for p in probes} == {"Startup", "Readiness", "Liveness"}
    assert all(p["httpGet"]["path"] == "/health" and p["httpGet"]["port"] == 5000 for p in probes)


@pytest.mark.parametrize(("memory", "cpu", "workers", "jobs"), [("2Gi", 1.0, "1", "false"), ("8Gi", 4.0, "4", "true")])
def test_resources_scale_and_sizing(memory, cpu, workers, jobs):
    _settings, document = spec(memory=memory, cpu=cpu, min_replicas=1, max_replicas=3)
    main = container(document)
    assert main["resources"] == {"cpu": cpu, "memory": memory}
    assert document["properties"]["template"]["scale"] == {"minReplicas": 1, "maxReplicas": 3}
    env = env_map(document)
    assert env["MLFLOW_WORKERS"]["value"] == workers
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"]["value"] == jobs


def test_ip_allow_list():
    _settings, document = spec(allowed_ips=["203.0.113.0/24", "198.51.100.7"])
    rules = document["properties"]["configuration"]["ingress"]["ipSecurityRestrictions"]
    assert [r["ipAddressRange"] for r in rules] == ["203.0.113.0/24", "198.51.100.7"]
    assert {r["action"] for r in rules} == {"Allow"}


def test_allowed_hosts_match_what_callers_send():
    hosts = allowed_hosts(FQDN, "mlflow")
    def admitted(host):
        return any(fnmatch.fnmatch(host, pattern) for pattern in hosts)
    for host in (FQDN, f"{FQDN}:443", "mlflow", "mlflow:80", "mlflow.internal.happy-sky-1234.westeurope.azurecontainerapps.io",
                 "localhost:5000", "127.0.0.1:5000"):
        assert admitted(host), host
    for host in ("evil.example", "mlflow.evil.example", "10.0.0.5:5000"):
        assert not admitted(host), host


def test_tags_on_the_app():
    settings, document = spec(tags={"team": "ml"})
    assert document["tags"] == {"team": "ml", "managed-by": "mlflow-aca", "mlflow-aca-deployment": "mlflow",
                                "mlflow-aca-mlflow-version": settings.mlflow_version,
                                # the app identity whose database user the migration job created
                                "mlflow-aca-db-user": "client-guid"}


def test_a_database_that_may_pause_gets_no_connection_pool():
    # Auto-pause needs zero sessions; a pooled idle connection is one (serverless-tier-overview).
    env = env_map(spec()[1])
    assert env["MLFLOW_SQLALCHEMYSTORE_POOLCLASS"]["value"] == "NullPool"
    assert "MLFLOW_SQLALCHEMYSTORE_POOL_RECYCLE" not in env


def test_a_database_that_never_pauses_keeps_a_recycled_pool():
    env = env_map(spec(sql_auto_pause_minutes=-1)[1])
    assert "MLFLOW_SQLALCHEMYSTORE_POOLCLASS" not in env
    assert env["MLFLOW_SQLALCHEMYSTORE_POOL_RECYCLE"]["value"] == "1200"
