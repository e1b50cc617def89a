"""status (exit codes, JSON, MLflow's /health over HTTPS through the app's FQDN) and teardown's
data safety."""

import json
import uuid

import pytest

from tests.clirunner import run_cli_on_tty

DATA_TYPES = ("Microsoft.Sql/servers", "Microsoft.Storage/storageAccounts",
              "Microsoft.ContainerRegistry/registries", "Microsoft.ManagedIdentity/userAssignedIdentities")


def test_status_healthy(deployed):
    data = deployed.ok("status")
    assert data["healthy"] is True and data["problems"] == []
    app = data["app"]
    assert app["url"].startswith("https://mlflow.") and app["revision_health"] == "Healthy"
    # MLflow's own endpoints, over HTTPS on the app's FQDN.
    assert app["mlflow"]["health"] == "OK" and app["mlflow"]["version"]
    assert deployed.writes() == []
    human = deployed.cli("status")
    assert human.code == 0 and "healthy" in human.stdout and app["url"] in human.stdout


def test_status_unhealthy_revision(deployed):
    app = deployed.one("Microsoft.App/containerApps")
    deployed.standin.set_revision_state(app["id"], health="Unhealthy", running_state="Degraded", restart_count=5)
    result = deployed.cli("status", "--json")
    assert result.code == 4, result
    document = result.json
    assert document["ok"] is False and document["error"]["code"] == "Unhealthy"
    assert document["data"]["healthy"] is False
    assert any("Unhealthy" in problem for problem in document["data"]["problems"])
    human = deployed.cli("status")
    assert human.code == 4 and "UNHEALTHY" in human.stdout and "Traceback" not in human.output


def test_status_when_mlflow_does_not_answer(deployed):
    app = deployed.one("Microsoft.App/containerApps")
    # The app's FQDN now leads to a port where nothing listens.
    deployed.standin.set_app_endpoint(app["id"], backend="127.0.0.1:9")
    result = deployed.cli("status", "--json")
    assert result.code == 4
    assert any("/health" in problem for problem in result.json["data"]["problems"])


def test_status_absent(deployment):
    result = deployment.cli("status", "--json")
    assert result.code == 4, result
    assert result.json["error"]["code"] == "NotDeployed"
    assert all(row["state"] == "absent" for row in result.json["data"]["resources"])


def data_ids(deployment) -> dict[str, list[str]]:
    return {t: sorted(r["id"] for r in deployment.resources(t)) for t in DATA_TYPES}


def test_default_teardown_keeps_data_and_deploy_brings_it_back(deployed):
    before = data_ids(deployed)
    # Both identities (the app's, and the migration identity, the SQL server's administrator) are data.
    assert [i.rsplit("/", 1)[-1] for i in before["Microsoft.ManagedIdentity/userAssignedIdentities"]] == [
        "mlflow-id", "mlflow-migrate-id"]
    database_before = [d["id"] for d in deployed.resources("Microsoft.Sql/servers/databases")]
    data = deployed.ok("teardown")
    outcomes = {r["key"]: r["outcome"] for r in data["resources"]}
    assert outcomes == {"app": "deleted", "migration": "deleted", "environment": "deleted"}
    deletes = deployed.requests(method="DELETE")
    assert deletes and all(("/Microsoft.App/" in d["path"]) for d in deletes)
    for type_ in DATA_TYPES:
        assert not any(type_.split("/")[0] + "/" + type_.split("/")[1] in d["path"] for d in deletes)
    assert deployed.resources("Microsoft.App/containerApps") == []

    deployed.standin.clear_requests()
    deployed.ok("provision")  # brings back the environment only
    redeployed = deployed.ok("deploy")
    assert next(r for r in redeployed["resources"] if r["key"] == "app")["outcome"] == "created"
    assert data_ids(deployed) == before
    assert [d["id"] for d in deployed.resources("Microsoft.Sql/servers/databases")] == database_before
    created = {w["path"].split("/providers/")[-1].split("/")[0:2][1] for w in deployed.writes() if w["method"] == "PUT"}
    assert created == {"managedEnvironments", "containerApps", "jobs"}


def test_delete_data_without_a_tty_needs_yes(deployed):
    result = deployed.cli("teardown", "--delete-data")
    assert result.code == 2, result
    assert "--yes" in result.stderr and "Traceback" not in result.output
    assert deployed.requests(method="DELETE") == []


def test_delete_data_at_a_tty_needs_the_deployment_name(deployed):
    result = run_cli_on_tty("teardown", "--delete-data", cwd=deployed.directory, env=deployed.env(),
                            answers=[("to confirm", "not-the-name")])
    assert result.code == 2, result.transcript
    assert result.answered and "Not confirmed" in result.transcript
    assert deployed.requests(method="DELETE") == []


def test_delete_data_deletes_only_what_the_tool_tagged(deployed):
    group = deployed.one("Microsoft.Resources/resourceGroups")["name"]
    # Someone else's storage account in the same group, without the tool's tags.
    deployed.arm("PUT", f"/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/theirs123"
                 "?api-version=2026-09-01",
                 {"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"})
    data = deployed.ok("teardown", "--delete-data", "--yes")
    outcomes = {r["key"]: r["outcome"] for r in data["resources"]}
    assert outcomes["sql_server"] == "deleted" and outcomes["identity"] == "deleted"
    assert outcomes["migration_identity"] == "deleted"
    assert outcomes["role_acr_pull"] == outcomes["role_blob_data"] == "deleted"
    assert outcomes["role_blob_data_account"] == "absent"   # the retired account-wide grant: none
    # The group holds a resource the tool did not make: it stays, and so does that resource.
    assert outcomes["resource_group"] == "kept"
    remaining = [r["name"] for r in deployed.resources() if r["type"].count("/") == 1]
    assert sorted(remaining) == [group, "theirs123"]
    deleted_paths = [d["path"] for d in deployed.requests(method="DELETE")]
    assert not any("theirs123" in path for path in deleted_paths)
    assert not any(path.lower().endswith(f"/resourcegroups/{group}".lower()) for path in deleted_paths)


def test_delete_data_deletes_the_group_it_created(deployed):
    data = deployed.ok("teardown", "--delete-data", "--yes")
    assert {r["key"]: r["outcome"] for r in data["resources"]}["resource_group"] == "deleted"
    assert deployed.resources() == []


def test_delete_data_never_deletes_a_group_it_did_not_create(make_deployment):
    deployment = make_deployment(resource_group="rg-preexisting")
    deployment.arm("PUT", "/resourcegroups/rg-preexisting?api-version=2025-04-01", {"location": "westeurope"})
    deployment.ok("provision")
    data = deployment.ok("teardown", "--delete-data", "--yes")
    row = next(r for r in data["resources"] if r["key"] == "resource_group")
    assert row["outcome"] == "kept"
    assert [r["name"] for r in deployment.resources()] == ["rg-preexisting"]


def test_untagged_namesake_is_never_deleted(make_deployment):
    deployment = make_deployment()
    deployment.ok("provision")
    # The registry loses the tool's tags (someone re-tagged it): the tool no longer owns it.
    registry = deployment.one("Microsoft.ContainerRegistry/registries")
    deployment.arm("PUT", registry["id"].split(deployment.subscription_id, 1)[1] + "?api-version=2025-11-01",
                   {"location": "westeurope", "sku": {"name": "Basic"}, "tags": {"owner": "someone"},
                    "properties": {"adminUserEnabled": False}})
    data = deployment.ok("teardown", "--delete-data", "--yes")
    assert {r["key"]: r["outcome"] for r in data["resources"]}["registry"] == "kept"
    assert deployment.resources("Microsoft.ContainerRegistry/registries")


@pytest.mark.parametrize("command", ["plan", "status"])
def test_a_subscription_the_credential_cannot_see_is_an_error_not_an_empty_one(deployment, command):
    """Azure answers 404 SubscriptionNotFound for every read in a subscription that does not
    exist or that the credential has no access to; that is not "absent" for each resource."""
    unknown = str(uuid.uuid4())
    deployment.write_config(subscription_id=unknown)
    result = deployment.cli(command, "--json")
    assert result.code == 3, result
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "SubscriptionNotFound" and unknown in error["message"], error
    assert "subscription_id" in error["hint"]
    assert "Traceback" not in result.stderr
