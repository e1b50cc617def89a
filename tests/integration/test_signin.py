"""Entra sign-in through the CLI against the stand-in's Microsoft Graph and Container Apps:
what `provision`/`deploy` register and configure, idempotency, the ways out when the operator
may not register applications, bad principals, and what status/env/plan/teardown say."""

from __future__ import annotations

import json
import uuid

GRAPH_WRITES = ("POST", "PATCH", "DELETE")


def graph_writes(deployment) -> list[dict]:
    return [r for r in deployment.requests() if "/v1.0/" in r["path"] and r["method"] in GRAPH_WRITES
            and not r["path"].endswith("/getByIds")]


def auth_config(deployment) -> dict:
    (config,) = deployment.resources("Microsoft.App/containerApps/authConfigs")
    return config["properties"]


def applications(deployment) -> list[dict]:
    return deployment.standin.graph_objects("application")


def assignments(deployment, sp_id: str) -> list[dict]:
    """Who is assigned, as Graph answers the operator."""
    import requests

    standin = deployment.standin
    token = standin.issue_token(resource=standin.url + "/")
    answer = requests.get(f"{standin.url}/v1.0/servicePrincipals/{sp_id}/appRoleAssignedTo",
                          headers={"Authorization": f"Bearer {token}"}, verify=standin.ca_path, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["value"]


def test_default_deploy_registers_an_app_and_puts_sign_in_in_front(deployment):
    deployment.ok("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    deployed = deployment.ok("deploy")
    (application,) = applications(deployment)
    app_id = application["appId"]
    fqdn = deployment.one("Microsoft.App/containerApps")["properties"]["configuration"]["ingress"]["fqdn"]
    assert application["signInAudience"] == "AzureADMyOrg"
    assert application["identifierUris"] == [f"api://{app_id}"]
    assert application["web"]["redirectUris"] == [f"https://{fqdn}/.auth/login/aad/callback"]
    assert application["web"]["implicitGrantSettings"]["enableIdTokenIssuance"] is True
    assert not application.get("passwordCredentials") and not application.get("keyCredentials")
    (sp,) = [o for o in deployment.standin.graph_objects("servicePrincipal") if o.get("appId") == app_id]
    assert sp["appRoleAssignmentRequired"] is False

    config = auth_config(deployment)
    tenant = deployment.standin.tenant_id
    assert config["platform"]["enabled"] is True
    assert config["globalValidation"]["unauthenticatedClientAction"] == "RedirectToLoginPage"
    assert config["globalValidation"]["excludedPaths"] == ["/health"]
    aad = config["identityProviders"]["azureActiveDirectory"]
    assert aad["registration"]["clientId"] == app_id
    assert aad["registration"]["openIdIssuer"] == f"{deployment.standin.url}/{tenant}/v2.0"
    app_row = next(r for r in deployed["resources"] if r["key"] == "app")
    assert "sign-in" in app_row["detail"], app_row

    # What a client is told, and what status sees.
    env = deployment.ok("env")
    assert env["variables"]["MLFLOW_TRACKING_AUTH"] == "mlflow-aca"
    assert env["variables"]["MLFLOW_ACA_AUTH_SCOPE"] == f"api://{app_id}/.default"
    assert f"export MLFLOW_ACA_AUTH_SCOPE=api://{app_id}/.default" in env["lines"]
    status = deployment.ok("status")
    assert status["app"]["sign_in"]["enabled"] is True and status["app"]["sign_in"]["client_id"] == app_id
    assert status["app"]["mlflow"]["health"] == "OK"
    assert status["app"]["mlflow"]["version"], status["app"]["mlflow"]  # /version with the operator's token
    assert status["warnings"] == []

    # A rerun writes nothing, in Graph or in ARM.
    deployment.standin.clear_requests()
    again = deployment.ok("deploy")
    assert {r["outcome"] for r in again["resources"]} == {"ok"}, again["resources"]
    assert graph_writes(deployment) == [] and deployment.writes() == []


def test_allowed_principals_are_assigned_and_checked_by_the_layer(deployment):
    standin = deployment.standin
    user = standin.add_directory_object("user", "Ada")
    group = standin.add_directory_object("group", "ML team", members=[user])
    deployment.write_config(auth_allowed_principals=[user, group])
    deployment.ok("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    deployment.ok("deploy")
    (application,) = applications(deployment)
    (sp,) = [o for o in standin.graph_objects("servicePrincipal") if o.get("appId") == application["appId"]]
    assert sp["appRoleAssignmentRequired"] is True
    assert application["groupMembershipClaims"] == "SecurityGroup"
    policy = auth_config(deployment)["identityProviders"]["azureActiveDirectory"]["validation"][
        "defaultAuthorizationPolicy"]
    assert policy == {"allowedPrincipals": {"identities": [user], "groups": [group]}}
    assigned = assignments(deployment, sp["id"])
    assert sorted(a["principalId"] for a in assigned) == sorted([user, group])

    # Removing one converges: its assignment goes, the layer's list follows.
    deployment.write_config(auth_allowed_principals=[group])
    deployment.ok("deploy")
    assert [a["principalId"] for a in assignments(deployment, sp["id"])] == [group]
    policy = auth_config(deployment)["identityProviders"]["azureActiveDirectory"]["validation"][
        "defaultAuthorizationPolicy"]
    assert policy == {"allowedPrincipals": {"identities": [], "groups": [group]}}


def test_an_unknown_principal_is_a_configuration_error_before_any_write(deployment):
    stranger = str(uuid.uuid4())
    deployment.write_config(auth_allowed_principals=[stranger])
    result = deployment.cli("provision", "--json")
    assert result.code == 1, result
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "PrincipalUnknown" and "auth_allowed_principals" in error["message"]
    assert stranger in error["message"]
    assert graph_writes(deployment) == []


def test_a_tenant_that_forbids_app_registration_gets_both_ways_out(deployment):
    deployment.standin.deny_app_registration(True)
    result = deployment.cli("provision", "--json")
    assert result.code == 3, result
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "Authorization_RequestDenied"
    assert "Insufficient privileges" in error["message"]
    assert "auth_client_id" in error["hint"] and 'auth = "none"' in error["hint"]
    assert "Traceback" not in result.stderr


def test_an_admin_made_registration_is_used_checked_and_never_deleted(deployment):
    standin = deployment.standin
    missing = str(uuid.uuid4())
    deployment.write_config(auth_client_id=missing)
    result = deployment.cli("provision", "--json")
    assert result.code == 1, result
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "RegistrationNotFound" and "auth_client_id" in error["message"]

    # The admin's registration without the redirect URI: the message says exactly what to add.
    made = standin.register_application("MLflow (admin)", id_tokens=True)
    app_id = made["appId"]
    standin.deny_app_registration(True)       # the operator cannot register apps: not needed now
    deployment.write_config(auth_client_id=app_id)
    result = deployment.cli("provision", "--json")
    assert result.code == 1, result
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "RegistrationIncomplete" and "/.auth/login/aad/callback" in error["message"]
    assert f"api://{app_id}" in error["message"]

    env_domain = deployment.one("Microsoft.App/managedEnvironments")["properties"]["defaultDomain"]
    complete = standin.register_application("MLflow (admin, complete)", id_tokens=True,
                                            identifier_uris=["api://{appId}"],
                                            redirect_uris=[f"https://mlflow.{env_domain}/.auth/login/aad/callback"])
    deployment.write_config(auth_client_id=complete["appId"])
    deployment.standin.clear_requests()
    deployment.ok("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    deployment.ok("deploy")
    aad = auth_config(deployment)["identityProviders"]["azureActiveDirectory"]
    assert aad["registration"]["clientId"] == complete["appId"]
    assert graph_writes(deployment) == []     # the tool changed nothing of the admin's

    deployment.ok("teardown", "--delete-data", "--yes")
    assert complete["appId"] in [a["appId"] for a in applications(deployment)]


def test_no_sign_in_needs_allowed_ips_and_is_announced_everywhere(deployment):
    deployment.write_config(auth="none")
    result = deployment.cli("plan", "--json")
    assert result.code == 1 and "allowed_ips" in json.loads(result.stdout)["error"]["message"]

    deployment.write_config(allowed_ips=["203.0.113.0/24"])
    plan = deployment.cli("plan")
    assert plan.code == 0 and "OPEN SERVER" in plan.stdout, plan
    deployment.ok("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    deployment.ok("deploy")
    assert deployment.resources("Microsoft.App/containerApps/authConfigs") == []
    assert applications(deployment) == []
    status = deployment.ok("status")
    assert status["app"]["sign_in"] == {"enabled": False, "open": True}
    assert any("OPEN SERVER" in w and "203.0.113.0/24" in w for w in status["warnings"])
    env = deployment.ok("env")
    assert "MLFLOW_TRACKING_AUTH" not in env["variables"]


def test_turning_sign_in_off_removes_the_layer_and_on_again_restores_it(deployment):
    deployment.ok("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    deployment.ok("deploy")
    deployment.write_config(auth="none", public=True)
    deployed = deployment.ok("deploy")
    assert deployment.resources("Microsoft.App/containerApps/authConfigs") == []
    assert "sign-in" in next(r for r in deployed["resources"] if r["key"] == "app")["detail"]
    deployment.settings.pop("public")
    deployment.write_config(auth="entra")
    deployment.ok("deploy")
    assert auth_config(deployment)["platform"]["enabled"] is True


def test_teardown_with_data_deletes_the_registration_it_made(deployment):
    deployment.ok("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    deployment.ok("deploy")
    assert len(applications(deployment)) == 1
    torn = deployment.ok("teardown", "--delete-data", "--yes")
    row = next(r for r in torn["resources"] if r["key"] == "auth_app")
    assert row["outcome"] == "deleted"
    assert applications(deployment) == []
