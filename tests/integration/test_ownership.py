"""Ownership (issue 12, item 1) and a teardown that explains itself (issue 13, item 5): the tool
never modifies, retags or deletes a resource it did not create unless the operator adopts it,
never deletes a resource group it found, and teardown lists what it deletes and keeps first."""

import pytest

SQL_VERSION = "2023-08-01"
APP_VERSION = "2025-01-01"
GROUP = "rg-shared"
THEIR_SERVER = "datateam-sql"
THEIR_TAGS = {"owner": "data-team"}


@pytest.fixture
def their_server(make_deployment):
    """A pre-existing group holding another team's SQL server (SQL logins, a `payroll` database),
    named by this deployment's sql_server_name."""
    deployment = make_deployment(resource_group=GROUP, sql_server_name=THEIR_SERVER)
    deployment.arm("PUT", f"/resourcegroups/{GROUP}?api-version=2025-04-01", {"location": "westeurope"})
    server = f"/resourceGroups/{GROUP}/providers/Microsoft.Sql/servers/{THEIR_SERVER}"
    deployment.arm("PUT", f"{server}?api-version={SQL_VERSION}", {
        "location": "westeurope", "tags": THEIR_TAGS,
        "properties": {"administratorLogin": "payrolladmin", "administratorLoginPassword": "Pa-55word-of-theirs",
                       "version": "12.0"}})
    deployment.arm("PUT", f"{server}/databases/payroll?api-version={SQL_VERSION}", {"location": "westeurope"})
    deployment.standin.clear_requests()
    return deployment


def server_of(deployment) -> dict:
    return next(r for r in deployment.resources("Microsoft.Sql/servers") if r["name"] == THEIR_SERVER)


def databases(deployment) -> list[str]:
    return sorted(r["name"] for r in deployment.resources("Microsoft.Sql/servers/databases") if r["name"] != "master")


def test_provision_stops_at_a_foreign_sql_server_before_any_write(their_server):
    result = their_server.cli("provision", "--json")
    assert result.code == 3, result
    error = result.json["error"]
    assert error["code"] == "ForeignResource" and THEIR_SERVER in error["message"], error
    assert "owner=data-team" in error["message"] and "--adopt sql_server" in error["hint"]
    assert their_server.writes() == []   # nothing at all: not the server, nor anything before it
    assert server_of(their_server)["tags"] == THEIR_TAGS
    # plan says the same, so the operator learns it before provisioning.
    planned = their_server.cli("plan", "--json")
    assert planned.code == 3 and planned.json["error"]["code"] == "ForeignResource"
    human = their_server.cli("provision")
    assert human.code == 3 and THEIR_SERVER in human.stderr and "Traceback" not in human.output


def test_an_adopted_server_is_tagged_shown_by_plan_and_kept_by_teardown(their_server):
    preview = their_server.ok("plan", "--adopt", THEIR_SERVER)
    row = next(r for r in preview["resources"] if r["key"] == "sql_server")
    assert row["outcome"] == "update" and "adopt" in row["detail"], row
    assert their_server.writes() == []

    their_server.ok("provision", "--adopt", THEIR_SERVER)
    # Its own tags kept, the adoption recorded; the tool's ownership tags are not added.
    assert server_of(their_server)["tags"] == {**THEIR_TAGS, "mlflow-aca-adopted": "mlflow"}
    assert databases(their_server) == ["mlflow", "payroll"]

    their_server.standin.clear_requests()
    rerun = their_server.ok("provision")   # adopted once is adopted: no --adopt needed again
    assert their_server.writes() == [] and {r["outcome"] for r in rerun["resources"]} == {"ok"}
    planned = {r["key"]: r for r in their_server.ok("plan")["resources"]}
    assert planned["sql_server"]["outcome"] == "ok" and "adopted" in planned["sql_server"]["detail"]

    data = their_server.ok("teardown", "--delete-data", "--yes")
    keep = {e["key"]: e["reason"] for e in data["will_keep"]}
    assert "adopted" in keep["sql_server"] and "existed before" in keep["resource_group"]
    assert "sql_database" in {e["key"] for e in data["will_delete"]}   # the database the tool made in it
    outcomes = {r["key"]: r["outcome"] for r in data["resources"]}
    assert outcomes["sql_server"] == "kept" and outcomes["resource_group"] == "kept"
    assert databases(their_server) == ["payroll"]
    assert server_of(their_server)["tags"] == {**THEIR_TAGS, "mlflow-aca-adopted": "mlflow"}
    assert [r["name"] for r in their_server.resources("Microsoft.Resources/resourceGroups")] == [GROUP]


def test_teardown_with_data_never_deletes_a_foreign_server_nor_a_group_it_found(their_server):
    their_server.cli("provision", "--json")   # refused (the code before this change took the server over)
    data = their_server.ok("teardown", "--delete-data", "--yes")
    assert databases(their_server) == ["payroll"] and server_of(their_server)["tags"] == THEIR_TAGS
    assert their_server.requests(method="DELETE") == []
    assert data["will_delete"] == []
    keep = {e["key"]: e for e in data["will_keep"]}
    assert keep["sql_server"]["resource"].endswith(THEIR_SERVER) and "not created" in keep["sql_server"]["reason"]
    assert "existed before" in keep["resource_group"]["reason"]


def test_an_untagged_app_named_like_ours_is_refused_by_deploy_and_kept_by_teardown(deployment):
    deployment.ok("provision")
    deployment.push_template_image()
    group = deployment.one("Microsoft.Resources/resourceGroups")["name"]
    # Another team's app, in its own environment, with the name this deployment would use.
    env = deployment.arm("PUT", f"/resourceGroups/{group}/providers/Microsoft.App/managedEnvironments/web-env"
                         f"?api-version={APP_VERSION}", {"location": "westeurope", "properties": {}})
    image = deployment.publish_public_image("public.example.io/web/site:1")
    deployment.arm("PUT", f"/resourceGroups/{group}/providers/Microsoft.App/containerApps/mlflow"
                   f"?api-version={APP_VERSION}", {
                       "location": "westeurope", "tags": {"owner": "web-team"},
                       "properties": {"managedEnvironmentId": env["id"], "template": {
                           "containers": [{"name": "site", "image": image}]}}})
    deployment.standin.clear_requests()

    result = deployment.cli("deploy", "--json")
    assert result.code == 3, result
    error = result.json["error"]
    assert error["code"] == "ForeignResource" and "container app mlflow" in error["message"], error
    assert deployment.writes() == []
    app = next(a for a in deployment.resources("Microsoft.App/containerApps") if a["name"] == "mlflow")
    assert app["tags"] == {"owner": "web-team"}

    data = deployment.ok("teardown")
    assert {e["key"] for e in data["will_delete"]} == {"environment"}
    keep = {e["key"]: e["reason"] for e in data["will_keep"]}
    assert "not created" in keep["app"] and keep["sql_server"].startswith("data")
    assert {r["key"]: r["outcome"] for r in data["resources"]}["app"] == "kept"
    assert [a["name"] for a in deployment.resources("Microsoft.App/containerApps")] == ["mlflow"]
    assert {k["key"] for k in data["kept"]} >= {"app", "sql_server", "storage_account", "registry"}
    assert "mlflow-aca up" in data["next_steps"] and "reuses the kept" in data["next_steps"]


def test_teardown_lists_what_it_deletes_and_keeps_before_asking(deployment):
    deployment.ok("provision")
    deployment.standin.clear_requests()
    refused = deployment.cli("teardown", "--delete-data", "--json")   # no --yes, no terminal
    assert refused.code == 2, refused
    listed = refused.json["data"]
    assert {e["key"] for e in listed["will_delete"]} >= {"sql_server", "storage_account", "identity", "resource_group"}
    assert deployment.requests(method="DELETE") == []
    human = deployment.cli("teardown")
    assert human.code == 0, human
    # Before the work: what goes and what stays; after it: how to come back.
    assert "will delete:" in human.stderr and "and keep:" in human.stderr
    assert "Log Analytics workspace mlflow-logs (data: only --delete-data deletes it)" in human.stderr
    assert "Kept:" in human.stdout and "mlflow-aca up" in human.stdout


def test_adopt_names_must_match_one_resource(deployment):
    result = deployment.cli("plan", "--adopt", "mlflow", "--json")   # the app and the database
    hint = result.json["error"]["hint"]
    assert result.code == 2 and "--adopt app" in hint and "--adopt sql_database" in hint, result
    result = deployment.cli("provision", "--adopt", "rg-mlflow", "--json")
    assert result.code == 2 and "never adopted" in result.json["error"]["message"], result
    assert deployment.writes() == []


# -- an adopted server's sign-in settings stay its owners' (issue 12, items 1 and 2) ------------------------
THEIR_ADMIN = {"administratorType": "ActiveDirectory", "login": "data-team-admins",
               "sid": "5b0f3d5e-2c41-4c3a-9a43-6f1d8c0e7a21", "tenantId": None}


def _server_path() -> str:
    return f"/resourceGroups/{GROUP}/providers/Microsoft.Sql/servers/{THEIR_SERVER}"


def _entra_admin(deployment) -> dict:
    return deployment.arm("GET", f"{_server_path()}/administrators/ActiveDirectory?api-version={SQL_VERSION}")


def _entra_only(deployment) -> bool:
    setting = deployment.arm("GET", f"{_server_path()}/azureADOnlyAuthentications/Default?api-version={SQL_VERSION}")
    return setting["properties"]["azureADOnlyAuthentication"]


def test_adopting_a_server_keeps_its_sql_logins_and_adds_the_migration_identity_as_admin(their_server):
    # Failed first: `assert True is False` (provision switched Entra-only on: payrolladmin and every
    # application of the data team signing in with SQL logins were locked out).
    data = their_server.ok("provision", "--adopt", THEIR_SERVER)
    assert _entra_only(their_server) is False
    admin = _entra_admin(their_server)["properties"]
    assert admin["login"] == "mlflow-migrate-id"   # the server had no Entra administrator: nobody displaced
    row = next(r for r in data["resources"] if r["key"] == "sql_entra_only")
    assert row["outcome"] == "ok" and "SQL logins stay enabled" in row["detail"], row


def test_an_adopted_servers_entra_administrator_is_kept(their_server):
    # Failed first: `assert 'mlflow-migrate-id' == 'data-team-admins'` (the tool made its own identity
    # the administrator, the server's one slot: the data team's admins lost it).
    admin = {**THEIR_ADMIN, "tenantId": their_server.standin.tenant_id}
    their_server.arm("PUT", f"{_server_path()}/administrators/ActiveDirectory?api-version={SQL_VERSION}",
                     {"properties": admin})
    data = their_server.ok("provision", "--adopt", THEIR_SERVER)
    kept = _entra_admin(their_server)["properties"]
    assert (kept["login"], kept["sid"].lower()) == ("data-team-admins", admin["sid"])
    row = next(r for r in data["resources"] if r["key"] == "sql_entra_admin")
    assert row["outcome"] == "ok" and "kept" in row["detail"] and "mlflow-migrate-id" in row["detail"], row


def test_an_adopted_servers_password_is_never_reset(make_deployment):
    # Failed first: `assert 0 == 3` (deploy reset payrolladmin's password: no stored copy existed).
    deployment = make_deployment(resource_group=GROUP, sql_server_name=THEIR_SERVER, sql_auth="password",
                                 sql_admin_login="payrolladmin")
    deployment.arm("PUT", f"/resourcegroups/{GROUP}?api-version=2025-04-01", {"location": "westeurope"})
    deployment.arm("PUT", f"{_server_path()}?api-version={SQL_VERSION}", {
        "location": "westeurope", "tags": THEIR_TAGS,
        "properties": {"administratorLogin": "payrolladmin", "administratorLoginPassword": "Pa-55word-of-theirs",
                       "version": "12.0"}})
    deployment.ok("provision", "--adopt", THEIR_SERVER)
    deployment.push_template_image()
    deployment.standin.clear_requests()
    result = deployment.cli("deploy", "--json")
    assert result.code == 3, result
    error = result.json["error"]
    assert error["code"] == "SqlPasswordUnknown" and THEIR_SERVER in error["message"], error
    assert not [r for r in deployment.writes() if r["path"].split("?")[0].endswith(f"/servers/{THEIR_SERVER}")]
