"""Least privilege for the server, against the Azure stand-in (no Docker): the app's identity is
not the SQL server's administrator (a separate migration identity is, and holds no Azure role),
the migration job signs in with that identity and pulls with the app's, and the app's blob role
is scoped to the artifact container. An existing deployment (app identity as administrator,
blob role on the whole account, no database user of its own) converges on its next deploy,
and the rerun after it writes nothing."""

from __future__ import annotations

import json
from urllib.parse import quote, unquote, urlsplit

from mlflow_aca.azure.roles import STORAGE_BLOB_DATA_CONTRIBUTOR, assignment_name, role_definition_path
from mlflow_aca.config import Settings

IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments"
DB_USER_TAG = "mlflow-aca-db-user"


def names(deployment):
    return Settings(name="mlflow", location="westeurope", subscription_id=deployment.subscription_id).names


def identities(deployment) -> dict[str, dict]:
    return {r["name"]: r for r in deployment.resources(IDENTITY_TYPE)}


def server_administrators(deployment) -> dict:
    server = deployment.one("Microsoft.Sql/servers")
    path = server["id"].split(deployment.subscription_id, 1)[1]
    return deployment.arm("GET", f"{path}?api-version=2025-01-01&$expand=administrators/activedirectory")[
        "properties"]["administrators"]


def test_up_makes_the_migration_identity_the_only_admin_and_narrows_the_blob_role(deployment):
    deployment.ok("provision")
    deployment.push_template_image()
    deployment.ok("deploy")
    n = names(deployment)
    found = identities(deployment)
    app_id = found[n.identity]
    app_client = app_id["properties"]["clientId"]
    admins = server_administrators(deployment)
    assert admins["sid"] != app_client, "the app's identity is the SQL server's administrator"
    assert set(found) == {n.identity, "mlflow-migrate-id"} and n.migration_identity == "mlflow-migrate-id"
    migration_id = found[n.migration_identity]
    migration_client = migration_id["properties"]["clientId"]
    assert migration_id["tags"] == deployment.owned_tags
    assert admins["sid"] == migration_client
    assert (admins["login"], admins["principalType"], admins["azureADOnlyAuthentication"]) == (
        n.migration_identity, "Application", True)

    app = deployment.one("Microsoft.App/containerApps")
    assert list(app["identity"]["userAssignedIdentities"]) == [app_id["id"]]
    assert app["tags"][DB_USER_TAG] == app_client

    job = deployment.one("Microsoft.App/jobs")
    assert set(job["identity"]["userAssignedIdentities"]) == {app_id["id"], migration_id["id"]}
    assert job["properties"]["configuration"]["registries"][0]["identity"] == app_id["id"]  # pulls as the app
    template = job["properties"]["template"]
    (grant,) = template["initContainers"]
    (upgrade,) = template["containers"]
    for container in (grant, upgrade):
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["AZURE_CLIENT_ID"] == migration_client
        assert env["MLFLOW_BACKEND_STORE_URI"].startswith(f"mssql+pyodbc://{migration_client}@")
    env = {e["name"]: e.get("value") for e in grant["env"]}
    assert (env["MLFLOW_ACA_APP_USER"], env["MLFLOW_ACA_APP_CLIENT_ID"]) == (n.identity, app_client)
    assert (grant["command"], grant["args"]) == (["python", "-m", "mlflow_aca_sql"], ["grant"])

    container = deployment.one("Microsoft.Storage/storageAccounts/blobServices/containers")
    account = deployment.one("Microsoft.Storage/storageAccounts")
    assert container["id"].lower() == f"{account['id']}/blobServices/default/containers/{n.storage_container}".lower()
    granted = {(a["properties"]["roleDefinitionId"].rsplit("/", 1)[-1], a["properties"]["scope"].lower(),
                a["properties"]["principalId"]) for a in deployment.resources(ASSIGNMENT_TYPE)}
    principal = app_id["properties"]["principalId"]
    assert (STORAGE_BLOB_DATA_CONTRIBUTOR, container["id"].lower(), principal) in granted
    assert not [g for g in granted if g[0] == STORAGE_BLOB_DATA_CONTRIBUTOR and g[1] == account["id"].lower()]
    assert not [g for g in granted if g[2] == migration_id["properties"]["principalId"]]


def test_an_existing_deployment_gets_its_database_user_and_loses_the_account_grant(deployment):
    """As a deployment made before this change looks after the new provision: the app without the
    database-user tag, the blob role still on the whole account (by the tool's deterministic name)."""
    deployment.ok("provision")
    deployment.push_template_image()
    deployment.ok("deploy")
    n = names(deployment)
    app_identity = identities(deployment)[n.identity]
    principal = app_identity["properties"]["principalId"]
    account = deployment.one("Microsoft.Storage/storageAccounts")
    old = account["id"].split(deployment.subscription_id, 1)[1]
    name = assignment_name(account["id"], STORAGE_BLOB_DATA_CONTRIBUTOR, principal)
    deployment.arm("PUT", f"{old}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01",
                   {"properties": {"roleDefinitionId": role_definition_path(deployment.subscription_id,
                                                                             STORAGE_BLOB_DATA_CONTRIBUTOR),
                                   "principalId": principal, "principalType": "ServicePrincipal"}})
    app = deployment.one("Microsoft.App/containerApps")
    app_path = app["id"].split(deployment.subscription_id, 1)[1]
    deployment.arm("PATCH", f"{app_path}/providers/Microsoft.Resources/tags/default?api-version=2025-04-01",
                   {"operation": "Delete", "properties": {"tags": {DB_USER_TAG: app["tags"][DB_USER_TAG]}}})
    deployment.standin.clear_requests()

    planned = {r["key"]: r for r in deployment.ok("plan")["resources"]}
    assert planned["migration"]["outcome"] == "run"
    assert f"database user for the app's identity {n.identity} not yet created" in planned["migration"]["detail"]
    assert planned["role_blob_data_account"]["outcome"] == "update"
    assert deployment.writes() == []

    deployed = {r["key"]: r for r in deployment.ok("deploy")["resources"]}
    assert deployed["migration"]["outcome"] == "ran", deployed["migration"]
    assert deployed["role_blob_data_account"]["outcome"] == "deleted"
    assert deployed["app"]["outcome"] == "updated"
    assert deployment.one("Microsoft.App/containerApps")["tags"][DB_USER_TAG] == app_identity["properties"]["clientId"]
    assert not [a for a in deployment.resources(ASSIGNMENT_TYPE)
                if a["properties"]["scope"].lower() == account["id"].lower()]

    deployment.standin.clear_requests()
    again = deployment.ok("deploy")["resources"]
    assert deployment.writes() == [] and {r["outcome"] for r in again} == {"ok"}


def listed_secrets(deployment, resource) -> dict[str, str]:
    """A resource's secret values, as only listSecrets gives them (never printed)."""
    path = resource["id"].split(deployment.subscription_id, 1)[1]
    listed = deployment.arm("POST", f"{path}/listSecrets?api-version=2025-01-01")
    return {item["name"]: item["value"] for item in listed["value"]}


def credentials(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    return unquote(parts.username or ""), unquote(parts.password or "")


def test_with_a_password_the_app_is_its_own_database_user_and_only_the_job_holds_the_admin(make_deployment):
    """sql_auth = password: the app's secret URI signs in as a contained user of its own, not the
    server's administrator login; the job holds the administrator's URI (for the upgrade and the
    grant) and the app user's password (for the grant), both by secretRef. A rerun writes nothing;
    a lost app (its copy of the password with it) gets a new password set by the job's grant,
    without resetting the administrator's."""
    deployment = make_deployment(sql_auth="password")
    deployment.ok("provision")
    deployment.push_template_image()
    deployment.ok("deploy")
    app, job = deployment.one("Microsoft.App/containerApps"), deployment.one("Microsoft.App/jobs")
    app_secrets, job_secrets = listed_secrets(deployment, app), listed_secrets(deployment, job)
    app_user, app_password = credentials(app_secrets["backend-store-uri"])
    admin_user, admin_password = credentials(job_secrets["backend-store-uri"])
    assert admin_user == "mlflowadmin" == deployment.one("Microsoft.Sql/servers")["properties"]["administratorLogin"]
    assert app_user != admin_user, "the app signs in as the SQL server's administrator login"
    assert app_user == "mlflowadmin_app"
    assert len(app_password) == 32 and app_password != admin_password  # (lengths/equality only: never print)
    assert set(app_secrets) == {"backend-store-uri"}
    assert job_secrets.get("app-db-password") == app_password
    assert app["tags"][DB_USER_TAG] == "password:mlflowadmin_app"

    template = job["properties"]["template"]
    (grant,) = template["initContainers"]
    (upgrade,) = template["containers"]
    assert (grant["command"], grant["args"]) == (["python", "-m", "mlflow_aca_sql"], ["grant"])
    for container in (grant, upgrade):
        env = {e["name"]: e for e in container["env"]}
        assert env["MLFLOW_BACKEND_STORE_URI"] == {"name": "MLFLOW_BACKEND_STORE_URI", "secretRef": "backend-store-uri"}
    env = {e["name"]: e for e in grant["env"]}
    assert env["MLFLOW_ACA_APP_USER"]["value"] == "mlflowadmin_app"
    assert env["MLFLOW_ACA_APP_PASSWORD"] == {"name": "MLFLOW_ACA_APP_PASSWORD", "secretRef": "app-db-password"}
    spec = json.dumps([app["properties"]["template"], template])
    assert sum(form in spec for form in (app_password, admin_password, quote(app_password, safe=""))) == 0

    deployment.standin.clear_requests()
    again = deployment.ok("deploy")["resources"]
    assert deployment.writes() == [] and {r["outcome"] for r in again} == {"ok"}

    # The app (and its copy) gone: a new password, set by the job; the server is not written.
    deployment.arm("DELETE", app["id"].split(deployment.subscription_id, 1)[1] + "?api-version=2025-01-01")
    deployment.standin.clear_requests()
    rows = {r["key"]: r for r in deployment.ok("deploy")["resources"]}
    assert rows["migration"]["outcome"] == "ran", rows["migration"]
    assert deployment.requests(method="PUT", path="/providers/Microsoft.Sql/servers/") == []
    new_user, new_password = credentials(listed_secrets(deployment, deployment.one("Microsoft.App/containerApps"))[
        "backend-store-uri"])
    assert new_user == "mlflowadmin_app" and new_password != app_password
    assert listed_secrets(deployment, deployment.one("Microsoft.App/jobs"))["app-db-password"] == new_password
    assert credentials(listed_secrets(deployment, deployment.one("Microsoft.App/jobs"))["backend-store-uri"]) == (
        admin_user, admin_password)
