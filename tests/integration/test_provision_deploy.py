"""provision + deploy against the Azure stand-in, with the real SDK clients and the real
DefaultAzureCredential: security settings, idempotency, targeted updates."""

import re
import uuid

import pytest

from mlflow_aca.azure.roles import ACR_PULL, STORAGE_BLOB_DATA_CONTRIBUTOR
from mlflow_aca.config import Settings

TOOL_TAGS = {"managed-by": "mlflow-aca", "mlflow-aca-deployment": "mlflow"}


def names(deployment):
    settings = Settings(name="mlflow", location="westeurope", subscription_id=deployment.subscription_id)
    return settings.names


def test_fresh_provision_and_deploy_applies_every_security_setting(deployment):
    provisioned = deployment.ok("provision")
    outcomes = {r["key"]: r["outcome"] for r in provisioned["resources"]}
    # The server's creation set its Entra administrator and Entra-only authentication.
    assert outcomes.pop("sql_entra_admin") == outcomes.pop("sql_entra_only") == "ok"
    # Nobody to assign: with no auth_allowed_principals everyone in the tenant may sign in.
    assert outcomes.pop("auth_assignments") == "ok"
    assert outcomes.pop("location") == "ok"  # the location check, before the first write
    assert outcomes.pop("role_blob_data_account") == "ok"  # no account-wide blob grant to remove
    assert set(outcomes.values()) <= {"created", "updated"}
    deployment.push_template_image()  # stands for build + push run earlier
    deployed = deployment.ok("deploy")
    app_row = next(r for r in deployed["resources"] if r["key"] == "app")
    assert app_row["outcome"] == "created" and "healthy" in app_row["detail"]
    n = names(deployment)

    identities = {i["name"]: i for i in deployment.resources("Microsoft.ManagedIdentity/userAssignedIdentities")}
    assert set(identities) == {n.identity, n.migration_identity}
    identity, migration = identities[n.identity], identities[n.migration_identity]
    principal = identity["properties"]["principalId"]
    client_id = identity["properties"]["clientId"]

    group = deployment.one("Microsoft.Resources/resourceGroups")
    assert group["name"] == n.resource_group and group["tags"] == TOOL_TAGS

    storage = deployment.one("Microsoft.Storage/storageAccounts")
    props = storage["properties"]
    assert storage["kind"] == "StorageV2" and storage["name"] == n.storage_account
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    blob = deployment.one("Microsoft.Storage/storageAccounts/blobServices")
    assert blob["properties"]["deleteRetentionPolicy"] == {"enabled": True, "days": 7}
    container = deployment.one("Microsoft.Storage/storageAccounts/blobServices/containers")
    assert container["name"] == n.storage_container and container["properties"]["publicAccess"] == "None"

    registry = deployment.one("Microsoft.ContainerRegistry/registries")
    assert registry["sku"]["name"] == "Basic"
    assert registry["properties"]["adminUserEnabled"] is False
    assert registry["properties"]["roleAssignmentMode"] == "LegacyRegistryPermissions"

    server = deployment.one("Microsoft.Sql/servers")
    assert server["properties"]["minimalTlsVersion"] == "1.2"
    admin = deployment.one("Microsoft.Sql/servers/administrators")["properties"]
    # The migration job's identity administers the server; the app's does not.
    assert admin["sid"] == migration["properties"]["clientId"] != client_id and admin["login"] == n.migration_identity
    assert deployment.one("Microsoft.Sql/servers/azureADOnlyAuthentications")["properties"] == {
        "azureADOnlyAuthentication": True}
    path = server["id"].split(deployment.subscription_id, 1)[1]
    expanded = deployment.arm("GET", f"{path}?api-version=2025-01-01&$expand=administrators/activedirectory")
    assert expanded["properties"]["administrators"]["principalType"] == "Application"
    assert "administratorLoginPassword" not in server["properties"] and server["write_only"] == []
    # The administrator was set by the server's creation: no separate write for it.
    assert deployment.requests(method="PUT", path="/administrators/") == []
    assert deployment.requests(method="PUT", path="/azureADOnlyAuthentications/") == []
    rules = {r["name"]: r["properties"] for r in deployment.resources("Microsoft.Sql/servers/firewallRules")}
    assert rules == {"AllowAllWindowsAzureIps": {"startIpAddress": "0.0.0.0", "endIpAddress": "0.0.0.0"}}
    database = next(d for d in deployment.resources("Microsoft.Sql/servers/databases") if d["name"] == "mlflow")
    assert database["sku"]["name"] == "GP_S_Gen5" and database["properties"]["autoPauseDelay"] == 60

    workspace = deployment.one("Microsoft.OperationalInsights/workspaces")
    assert workspace["properties"]["sku"]["name"] == "PerGB2018"
    environment = deployment.one("Microsoft.App/managedEnvironments")
    logs = environment["properties"]["appLogsConfiguration"]
    assert logs["destination"] == "log-analytics"
    assert logs["logAnalyticsConfiguration"]["customerId"] == workspace["properties"]["customerId"]

    assignments = deployment.resources("Microsoft.Authorization/roleAssignments")
    granted = {(a["properties"]["roleDefinitionId"].rsplit("/", 1)[-1], a["properties"]["scope"].lower())
               for a in assignments}
    assert granted == {(ACR_PULL, registry["id"].lower()), (STORAGE_BLOB_DATA_CONTRIBUTOR, container["id"].lower())}
    assert all(a["properties"]["principalId"] == principal for a in assignments)
    assert all(uuid.UUID(a["name"]) for a in assignments)

    app = deployment.one("Microsoft.App/containerApps")
    config, template = app["properties"]["configuration"], app["properties"]["template"]
    assert app["identity"]["type"] == "UserAssigned"
    assert list(app["identity"]["userAssignedIdentities"]) == [identity["id"]]
    assert config["registries"] == [{"server": registry["properties"]["loginServer"], "identity": identity["id"]}]
    assert config["ingress"]["allowInsecure"] is False and config["ingress"]["targetPort"] == 5000
    (main,) = template["containers"]
    assert main["image"].startswith(registry["properties"]["loginServer"] + "/mlflow-server:3.17.2-")
    env = {e["name"]: e for e in main["env"]}
    fqdn = config["ingress"]["fqdn"]
    assert fqdn in env["MLFLOW_SERVER_ALLOWED_HOSTS"]["value"].split(",")
    assert env["MLFLOW_SERVER_CORS_ALLOWED_ORIGINS"]["value"] == f"https://{fqdn}"
    assert env["AZURE_CLIENT_ID"]["value"] == client_id
    assert env["MLFLOW_BACKEND_STORE_URI"]["value"].startswith(f"mssql+pyodbc://{client_id}@{n.sql_server}.database.windows.net:1433/mlflow?")
    assert env["MLFLOW_ARTIFACTS_DESTINATION"]["value"] == f"wasbs://{n.storage_container}@{n.storage_account}.blob.core.windows.net/"
    assert main["resources"]["cpu"] == 1.0 and main["resources"]["memory"] == "2Gi"
    assert template["scale"]["minReplicas"] == 1
    assert deployed["url"] == f"https://{fqdn}"

    for resource in deployment.resources():
        if resource["type"].count("/") == 1 and resource["type"] != "Microsoft.Authorization/roleAssignments":
            assert resource.get("tags", {}).items() >= TOOL_TAGS.items(), resource["id"]


@pytest.mark.parametrize("sql_auth", ["entra", "password"])
def test_rerun_writes_nothing(make_deployment, sql_auth):
    """Against a stand-in that, like Azure, shows the server's Entra administrator only on
    request and keeps secret values out of GETs: a rerun must find nothing to write."""
    deployment = make_deployment(sql_auth=sql_auth)
    deployment.ok("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    deployment.ok("deploy")  # with a password, this first deploy resets it (no copy was kept)
    deployment.standin.clear_requests()
    provisioned = deployment.ok("provision")
    deployed = deployment.ok("deploy")
    writes = [f"{w['method']} {w['path'].split('/providers/', 1)[-1]}" for w in deployment.writes()]
    assert writes == []
    # writes() leaves out the run lease's tag PATCHes on the identity: bookkeeping of who is
    # running (lease.py), not a change to any resource; each command takes it and gives it back.
    # Each takes it and gives it back (two PATCHes; a slow moment adds another pair), and they
    # touch nothing but the lease's own tag.
    lease = deployment.lease_writes()
    assert len(lease) >= 4 and {tag for w in lease for tag in w["body"]["properties"]["tags"]} == {
        "mlflow-aca-lease"}, lease
    assert {r["outcome"] for r in provisioned["resources"] + deployed["resources"]} == {"ok"}
    planned = deployment.ok("plan")["resources"]
    assert {r["key"]: r["outcome"] for r in planned if r["outcome"] != "ok"} == {}


def test_up_converges_in_one_command_then_changes_only_what_a_setting_affects(deployment):
    deployment.publish_public_image("example.azurecr.io/mlflow:1")  # an existing image anyone may pull
    deployment.ok("up", "--image", "example.azurecr.io/mlflow:1")
    deployment.standin.clear_requests()
    deployment.write_config(memory="4Gi", cpu=2.0, max_replicas=3, allowed_ips=["203.0.113.0/24"])
    data = deployment.ok("up", "--image", "example.azurecr.io/mlflow:1")
    changed = {r["key"]: r["changes"] for r in data["resources"] if r["outcome"] != "ok"}
    assert set(changed) == {"app"}
    assert "properties.template.containers[0].resources.memory" in changed["app"]
    assert "properties.template.scale.maxReplicas" in changed["app"]
    writes = deployment.writes()
    assert writes and all("/Microsoft.App/containerApps/" in w["path"] for w in writes)
    app = deployment.one("Microsoft.App/containerApps")
    assert app["properties"]["template"]["containers"][0]["resources"]["memory"] == "4Gi"
    rules = app["properties"]["configuration"]["ingress"]["ipSecurityRestrictions"]
    assert [r["ipAddressRange"] for r in rules] == ["203.0.113.0/24"]


def test_database_setting_changes_only_the_database(deployment):
    deployment.ok("provision")
    deployment.standin.clear_requests()
    deployment.write_config(sql_auto_pause_minutes=120, operator_ip="198.51.100.7")
    data = deployment.ok("provision")
    changed = {r["key"] for r in data["resources"] if r["outcome"] != "ok"}
    assert changed == {"sql_database", "sql_firewall_operator"}
    paths = {w["path"].rsplit("/", 2)[-2] for w in deployment.writes()}
    assert paths == {"databases", "firewallRules"}


def test_plan_and_dry_run_write_nothing(deployment):
    plan = deployment.ok("plan")
    outcomes = {r["key"]: r["outcome"] for r in plan["resources"]}
    assert outcomes.pop("auth_assignments") == "ok"   # no principals listed: nothing to assign
    assert outcomes.pop("image_check") == "unchecked"  # no registry yet: no image to look for
    assert outcomes.pop("location") == "ok"
    assert outcomes.pop("role_blob_data_account") == "ok"   # nothing to remove
    assert set(outcomes.values()) == {"create"}
    dry = deployment.ok("provision", "--dry-run")
    outcomes = {r["key"]: r["outcome"] for r in dry["resources"]}
    assert dry["dry_run"] is True and outcomes.pop("auth_assignments") == "ok"
    assert outcomes.pop("location") == "ok"
    assert outcomes.pop("role_blob_data_account") == "ok"
    assert set(outcomes.values()) == {"create"}
    assert deployment.writes() == [] and deployment.resources() == []
    assert deployment.requests(method="POST", path="/v1.0/servicePrincipals") == []
    assert deployment.standin.graph_objects("application") == []
    deployment.ok("provision")
    deployment.standin.clear_requests()
    deployment.write_config(log_retention_days=60)
    plan = deployment.ok("plan")
    rows = {r["key"]: r for r in plan["resources"]}
    assert rows["workspace"]["outcome"] == "update"
    assert rows["workspace"]["changes"] == ["properties.retentionInDays"]
    assert rows["app"]["outcome"] == "create"
    assert rows["identity"]["outcome"] == "ok"
    deployed_plan = deployment.ok("deploy", "--dry-run")
    assert next(r for r in deployed_plan["resources"] if r["key"] == "app")["outcome"] == "create"
    assert deployment.writes() == []
    human = deployment.cli("plan")
    assert human.code == 0 and re.search(r"~ Log Analytics workspace mlflow-logs\s+[\d.]+s\s+update\s+\(properties.retentionInDays\)", human.stdout)


def test_deploy_before_provision_says_what_is_missing(deployment):
    result = deployment.cli("deploy")
    assert result.code == 3, result
    assert "does not exist" in result.stderr and "mlflow-aca provision" in result.stderr
    assert "Traceback" not in result.output
    assert deployment.writes() == []


def test_existing_resource_group_is_used_not_adopted(deployment):
    deployment.write_config(resource_group="rg-shared")
    deployment.arm("PUT", "/resourcegroups/rg-shared?api-version=2025-04-01",
                   {"location": "westeurope", "tags": {"owner": "platform"}})
    data = deployment.ok("provision")
    row = next(r for r in data["resources"] if r["key"] == "resource_group")
    assert row["outcome"] == "ok" and "not managed" in row["detail"]
    group = deployment.one("Microsoft.Resources/resourceGroups")
    assert group["tags"] == {"owner": "platform"}


def test_entra_administrator_drift_is_corrected_through_its_own_resource(deployment):
    deployment.ok("provision")
    n = names(deployment)
    admin_path = (f"/resourceGroups/{n.resource_group}/providers/Microsoft.Sql/servers/{n.sql_server}"
                  "/administrators/ActiveDirectory?api-version=2025-01-01")
    deployment.arm("PUT", admin_path, {"properties": {
        "administratorType": "ActiveDirectory", "login": "someone-else", "sid": str(uuid.uuid4())}})
    deployment.standin.clear_requests()
    plan = {r["key"]: r for r in deployment.ok("plan")["resources"]}
    assert plan["sql_entra_admin"]["outcome"] == "update"
    assert plan["sql_entra_admin"]["changes"] == ["properties.login", "properties.sid"]
    assert plan["sql_server"]["outcome"] == plan["sql_entra_only"]["outcome"] == "ok"
    assert deployment.writes() == []
    data = deployment.ok("provision")
    changed = {r["key"] for r in data["resources"] if r["outcome"] != "ok"}
    assert changed == {"sql_entra_admin"}
    assert [w["path"].rsplit("/", 2)[-2:] for w in deployment.writes()] == [["administrators", "ActiveDirectory"]]
    identity = next(i for i in deployment.resources("Microsoft.ManagedIdentity/userAssignedIdentities")
                    if i["name"] == n.migration_identity)
    admin = deployment.one("Microsoft.Sql/servers/administrators")["properties"]
    assert (admin["login"], admin["sid"]) == (n.migration_identity, identity["properties"]["clientId"])
