"""Azure SQL: servers with Entra or SQL administrators, firewall rules and serverless databases."""

import pytest
from azure.core.exceptions import HttpResponseError

from .conftest import LOCATION

EXPAND = "administrators/activedirectory"


def _error(call):
    with pytest.raises(HttpResponseError) as err:
        call()
    return err.value


def _entra_server(group, **overrides):
    from azure.mgmt.sql.models import Server, ServerExternalAdministrator
    admin = ServerExternalAdministrator(administrator_type="ActiveDirectory", principal_type="Application",
                                        login="id-mlflow", sid=group.identity.client_id,
                                        tenant_id=group.identity.tenant_id, azure_ad_only_authentication=True)
    settings = dict(location=LOCATION, version="12.0", minimal_tls_version="1.2", administrators=admin)
    settings.update(overrides)
    return Server(**settings)


def _database(**overrides):
    from azure.mgmt.sql.models import Database, Sku
    settings = dict(location=LOCATION, sku=Sku(name="GP_S_Gen5", tier="GeneralPurpose", family="Gen5", capacity=1),
                    auto_pause_delay=60, min_capacity=0.5)
    settings.update(overrides)
    return Database(**settings)


def test_entra_only_server_with_firewall_rule_and_serverless_database(standin, azure, group):
    from azure.mgmt.sql.models import FirewallRule
    servers = azure.sql.servers
    assert azure.sql.servers.check_name_availability({"name": "sql-mlflow", "type": "Microsoft.Sql/servers"}).available
    server = servers.begin_create_or_update(group.name, "sql-mlflow", _entra_server(group)).result()
    assert server.fully_qualified_domain_name == "sql-mlflow.database.windows.net"
    expanded = servers.get(group.name, "sql-mlflow", expand=EXPAND)
    assert expanded.administrators.azure_ad_only_authentication is True
    assert expanded.administrators.sid == group.identity.client_id
    admin = azure.sql.server_azure_ad_administrators.get(group.name, "sql-mlflow", "ActiveDirectory")
    assert admin.login == "id-mlflow"
    entra_only = azure.sql.server_azure_ad_only_authentications.get(group.name, "sql-mlflow", "Default")
    assert entra_only.azure_ad_only_authentication is True

    rule = azure.sql.firewall_rules.create_or_update(group.name, "sql-mlflow", "AllowAllWindowsAzureIps",
                                                     FirewallRule(start_ip_address="0.0.0.0", end_ip_address="0.0.0.0"))
    assert rule.start_ip_address == "0.0.0.0"
    database = azure.sql.databases.begin_create_or_update(group.name, "sql-mlflow", "mlflow", _database()).result()
    assert (database.sku.name, database.auto_pause_delay, database.min_capacity) == ("GP_S_Gen5", 60, 0.5)
    assert database.status == "Online"
    # every server has a master database
    assert sorted(d.name for d in azure.sql.databases.list_by_server(group.name, "sql-mlflow")) == ["master", "mlflow"]
    assert [e["status"] for e in standin.requests("PUT", "/servers/sql-mlflow/databases/mlflow")] == [201]


def test_sql_authentication_keeps_the_password_write_only(standin, azure, group):
    from azure.mgmt.sql.models import Server
    password = "S3cure!pass-" + "x" * 8
    server = azure.sql.servers.begin_create_or_update(group.name, "sql-pw", Server(
        location=LOCATION, administrator_login="mlflowadmin", administrator_login_password=password)).result()
    assert server.administrator_login == "mlflowadmin"
    assert server.administrator_login_password is None
    assert password not in str(azure.sql.servers.get(group.name, "sql-pw").as_dict())
    assert standin.resource(server.id)["write_only"] == ["administratorLoginPassword"]
    logged = standin.requests("PUT", "/servers/sql-pw")[0]["body"]
    assert logged["properties"]["administratorLoginPassword"] == "***"


@pytest.mark.parametrize("props, code", [
    ({}, "InvalidParameterValue"),                                              # no administrator at all
    ({"administratorLogin": "admin", "administratorLoginPassword": "S3cure!passw0rd"}, "InvalidLoginName"),
    ({"administratorLogin": "mlflowadmin", "administratorLoginPassword": "simple"}, "PasswordNotComplex"),
    ({"administratorLogin": "mlflowadmin", "administratorLoginPassword": "S3cure!passw0rd",
      "minimalTlsVersion": "1.5"}, "InvalidParameterValue"),
    ({"administrators": {"administratorType": "ActiveDirectory", "principalType": "Robot", "login": "x",
                         "sid": "00000000-0000-0000-0000-000000000001", "azureADOnlyAuthentication": True}},
     "InvalidParameterValue"),
])
def test_server_validation(azure, group, props, code):
    body = {"location": LOCATION, "properties": props}
    assert _error(lambda: azure.sql.servers.begin_create_or_update(group.name, "sql-mlflow", body).result()
                  ).error.code == code


def test_server_names_are_global_and_failures_come_from_the_operation(standin, azure, group):
    servers = azure.sql.servers
    assert _error(lambda: servers.begin_create_or_update(group.name, "SQL_Bad", _entra_server(group)).result()
                  ).error.code == "InvalidResourceName"
    servers.begin_create_or_update(group.name, "sql-mlflow", _entra_server(group)).result()
    azure.resources.resource_groups.create_or_update("rg-other", {"location": LOCATION})
    err = _error(lambda: servers.begin_create_or_update("rg-other", "sql-mlflow", _entra_server(group)).result())
    assert err.error.code == "NameAlreadyExists"
    # SQL accepts the PUT and fails the operation; nothing is left behind
    assert [e["status"] for e in standin.requests("PUT", "rg-other/providers/Microsoft.Sql")] == [201]
    assert _error(lambda: servers.get("rg-other", "sql-mlflow")).status_code == 404
    standin.take_name("sql", "sql-elsewhere")
    result = servers.check_name_availability({"name": "sql-elsewhere", "type": "Microsoft.Sql/servers"})
    assert (result.available, result.reason) == (False, "AlreadyExists")


def test_administrator_login_cannot_change(azure, group):
    from azure.mgmt.sql.models import Server
    servers = azure.sql.servers
    servers.begin_create_or_update(group.name, "sql-pw", Server(
        location=LOCATION, administrator_login="mlflowadmin", administrator_login_password="S3cure!passw0rd")).result()
    err = _error(lambda: servers.begin_create_or_update(group.name, "sql-pw", Server(
        location=LOCATION, administrator_login="someoneelse", administrator_login_password="S3cure!passw0rd")).result())
    assert err.error.code == "InvalidParameterValue"


def test_entra_only_needs_an_administrator(azure, group):
    from azure.mgmt.sql.models import Server, ServerAzureADOnlyAuthentication
    azure.sql.servers.begin_create_or_update(group.name, "sql-pw", Server(
        location=LOCATION, administrator_login="mlflowadmin", administrator_login_password="S3cure!passw0rd")).result()
    err = _error(lambda: azure.sql.server_azure_ad_only_authentications.begin_create_or_update(
        group.name, "sql-pw", "Default", ServerAzureADOnlyAuthentication(azure_ad_only_authentication=True)).result())
    assert err.error.code == "InvalidServerAADOnlyAuthNoAADAdminPropertyName"


def test_server_reads_show_administrators_only_when_expanded(standin, azure, group):
    servers = azure.sql.servers
    created = servers.begin_create_or_update(group.name, "sql-mlflow", _entra_server(group)).result()
    # Like Azure's ServerGet.json example: no `administrators` without $expand, not even in the
    # PUT's own result.
    assert created.administrators is None
    assert servers.get(group.name, "sql-mlflow").administrators is None
    assert [s.administrators for s in servers.list_by_resource_group(group.name)] == [None]
    assert [s.administrators for s in servers.list()] == [None]
    expanded = servers.get(group.name, "sql-mlflow", expand=EXPAND).administrators
    assert expanded.as_dict() == {
        "administratorType": "ActiveDirectory", "principalType": "Application", "login": "id-mlflow",
        "sid": group.identity.client_id, "tenantId": group.identity.tenant_id, "azureADOnlyAuthentication": True}
    assert [s.administrators.login for s in servers.list_by_resource_group(group.name, expand=EXPAND)] == ["id-mlflow"]
    assert [s.administrators.login for s in servers.list(expand=EXPAND)] == ["id-mlflow"]
    assert standin.requests("GET", "/servers/sql-mlflow")[-1]["status"] == 200


def test_server_update_accepts_the_same_administrators_and_refuses_changed_ones(azure, group):
    servers = azure.sql.servers
    servers.begin_create_or_update(group.name, "sql-mlflow", _entra_server(group)).result()
    servers.begin_create_or_update(group.name, "sql-mlflow", _entra_server(group, minimal_tls_version="1.3")).result()
    servers.begin_create_or_update(group.name, "sql-mlflow", _entra_server(group, administrators=None)).result()
    assert servers.get(group.name, "sql-mlflow").minimal_tls_version == "1.2"  # the last PUT sent 1.2 again
    assert servers.get(group.name, "sql-mlflow", expand=EXPAND).administrators.login == "id-mlflow"

    renamed = _entra_server(group)
    renamed.administrators.login = "someone-else"
    err = _error(lambda: servers.begin_create_or_update(group.name, "sql-mlflow", renamed).result())
    assert (err.status_code, err.error.code) == (400, "InvalidParameterValue")
    relaxed = _entra_server(group)
    relaxed.administrators.azure_ad_only_authentication = False
    err = _error(lambda: servers.begin_create_or_update(group.name, "sql-mlflow", relaxed).result())
    assert (err.status_code, err.error.code) == (400, "InvalidServerAzureADOnlyAuthenticationParameter")
    assert servers.get(group.name, "sql-mlflow", expand=EXPAND).administrators.login == "id-mlflow"


def test_administrator_and_entra_only_are_child_resources(standin, azure, group):
    from azure.mgmt.sql.models import Server, ServerAzureADAdministrator, ServerAzureADOnlyAuthentication
    sql = azure.sql
    sql.servers.begin_create_or_update(group.name, "sql-pw", Server(
        location=LOCATION, administrator_login="mlflowadmin", administrator_login_password="S3cure!passw0rd")).result()
    assert sql.servers.get(group.name, "sql-pw", expand=EXPAND).administrators is None
    assert _error(lambda: sql.server_azure_ad_administrators.get(group.name, "sql-pw", "ActiveDirectory")
                  ).status_code == 404
    assert sql.server_azure_ad_only_authentications.get(group.name, "sql-pw", "Default"
                                                        ).azure_ad_only_authentication is False

    admin = ServerAzureADAdministrator(administrator_type="ActiveDirectory", login="id-mlflow",
                                       sid=group.identity.client_id, tenant_id=group.identity.tenant_id)
    created = sql.server_azure_ad_administrators.begin_create_or_update(
        group.name, "sql-pw", "ActiveDirectory", admin).result()
    assert (created.login, created.azure_ad_only_authentication) == ("id-mlflow", False)
    # ServerAzureADAdministrators_CreateOrUpdate is long-running: 202 with Location on creation.
    (put,) = standin.requests("PUT", "/servers/sql-pw/administrators/ActiveDirectory")
    assert put["status"] == 202
    sql.server_azure_ad_only_authentications.begin_create_or_update(
        group.name, "sql-pw", "Default", ServerAzureADOnlyAuthentication(azure_ad_only_authentication=True)).result()
    expanded = sql.servers.get(group.name, "sql-pw", expand=EXPAND).administrators
    assert (expanded.login, expanded.principal_type, expanded.azure_ad_only_authentication) == (
        "id-mlflow", "Application", True)
    assert sql.server_azure_ad_administrators.get(group.name, "sql-pw", "ActiveDirectory"
                                                  ).azure_ad_only_authentication is True
    assert [a.name for a in sql.server_azure_ad_administrators.list_by_server(group.name, "sql-pw")] == [
        "ActiveDirectory"]

    err = _error(lambda: sql.server_azure_ad_administrators.begin_delete(
        group.name, "sql-pw", "ActiveDirectory").result())
    assert err.error.code == "InvalidServerAzureADAdminDeleteOperation"
    sql.server_azure_ad_only_authentications.begin_create_or_update(
        group.name, "sql-pw", "Default", ServerAzureADOnlyAuthentication(azure_ad_only_authentication=False)).result()
    sql.server_azure_ad_administrators.begin_delete(group.name, "sql-pw", "ActiveDirectory").result()
    assert sql.servers.get(group.name, "sql-pw", expand=EXPAND).administrators is None


def test_child_resources_go_with_their_server(standin, azure, group):
    azure.sql.servers.begin_create_or_update(group.name, "sql-mlflow", _entra_server(group)).result()
    azure.sql.servers.begin_delete(group.name, "sql-mlflow").result()
    assert standin.resources("Microsoft.Sql/servers/administrators") == []
    assert standin.resources("Microsoft.Sql/servers/azureADOnlyAuthentications") == []


@pytest.mark.parametrize("start, end", [("0.0.0.300", "0.0.0.0"), ("10.0.0.2", "10.0.0.1")])
def test_firewall_rule_validation(azure, group, start, end):
    from azure.mgmt.sql.models import FirewallRule
    azure.sql.servers.begin_create_or_update(group.name, "sql-mlflow", _entra_server(group)).result()
    err = _error(lambda: azure.sql.firewall_rules.create_or_update(
        group.name, "sql-mlflow", "rule", FirewallRule(start_ip_address=start, end_ip_address=end)))
    assert err.error.code == "InvalidParameterValue"


@pytest.mark.parametrize("overrides", [
    {"sku": {"name": "GP_S_Gen5", "tier": "BusinessCritical", "capacity": 1}},
    {"sku": {"name": "Ultra_9"}},
    {"auto_pause_delay": 5},
    {"min_capacity": 4},
    {"location": "eastus"},
])
def test_database_validation(azure, group, overrides):
    from azure.mgmt.sql.models import Sku
    azure.sql.servers.begin_create_or_update(group.name, "sql-mlflow", _entra_server(group)).result()
    if "sku" in overrides:
        overrides["sku"] = Sku(**overrides["sku"])
    err = _error(lambda: azure.sql.databases.begin_create_or_update(group.name, "sql-mlflow", "mlflow",
                                                                    _database(**overrides)).result())
    assert err.error.code == "InvalidParameterValue"


def test_provisioned_databases_refuse_serverless_settings(azure, group):
    from azure.mgmt.sql.models import Sku
    azure.sql.servers.begin_create_or_update(group.name, "sql-mlflow", _entra_server(group)).result()
    err = _error(lambda: azure.sql.databases.begin_create_or_update(
        group.name, "sql-mlflow", "mlflow", _database(sku=Sku(name="GP_Gen5", tier="GeneralPurpose", capacity=2))
    ).result())
    assert "serverless" in err.message


def test_databases_need_their_server(azure, group):
    err = _error(lambda: azure.sql.databases.begin_create_or_update(group.name, "sql-absent", "mlflow",
                                                                    _database()).result())
    assert (err.status_code, err.error.code) == (404, "ParentResourceNotFound")
