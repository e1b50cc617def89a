"""Azure SQL servers, firewall rules and databases (Microsoft.Sql)."""

from __future__ import annotations

from mlflow_aca.azure import rest
from mlflow_aca.azure.arm import Kind
from mlflow_aca.azure.session import AzureSession

SERVER = Kind(
    label="SQL server",
    client="sql",
    get=lambda c, rg, name: c.servers.get(rg, name),
    put=lambda c, rg, name, body: c.servers.begin_create_or_update(rg, name, body),
    delete=lambda c, rg, name: c.servers.begin_delete(rg, name),
    model="azure.mgmt.sql.models:Server",
)

# The server's Entra administrator and its Entra-only switch are child resources with fixed
# names (ServerAzureADAdministrators.json, ServerAzureADOnlyAuthentications.json, 2025-01-01:
# administratorName enum ["ActiveDirectory"], authenticationName enum ["Default"]). They go
# with the server: no delete of their own here.
ENTRA_ADMIN = Kind(
    label="SQL Entra administrator",
    client="sql",
    get=lambda c, rg, server, name: c.server_azure_ad_administrators.get(rg, server, name),
    put=lambda c, rg, server, name, body: c.server_azure_ad_administrators.begin_create_or_update(
        rg, server, name, body),
    delete=None,
    model="azure.mgmt.sql.models:ServerAzureADAdministrator",
)

ENTRA_ONLY = Kind(
    label="SQL Entra-only authentication",
    client="sql",
    get=lambda c, rg, server, name: c.server_azure_ad_only_authentications.get(rg, server, name),
    put=lambda c, rg, server, name, body: c.server_azure_ad_only_authentications.begin_create_or_update(
        rg, server, name, body),
    delete=None,
    model="azure.mgmt.sql.models:ServerAzureADOnlyAuthentication",
)

FIREWALL_RULE = Kind(
    label="SQL firewall rule",
    client="sql",
    get=lambda c, rg, server, name: c.firewall_rules.get(rg, server, name),
    put=lambda c, rg, server, name, body: c.firewall_rules.create_or_update(rg, server, name, body),
    delete=lambda c, rg, server, name: c.firewall_rules.delete(rg, server, name),
    model="azure.mgmt.sql.models:FirewallRule",
)

DATABASE = Kind(
    label="SQL database",
    client="sql",
    get=lambda c, rg, server, name: c.databases.get(rg, server, name),
    put=lambda c, rg, server, name, body: c.databases.begin_create_or_update(rg, server, name, body),
    delete=lambda c, rg, server, name: c.databases.begin_delete(rg, server, name),
    model="azure.mgmt.sql.models:Database",
)


def server_name_available(session: AzureSession, name: str) -> tuple[bool, str]:
    client = session.client("sql")
    return rest.name_available(
        f"check the SQL server name {name}",
        lambda: client.servers.check_name_availability({"name": name, "type": "Microsoft.Sql/servers"}),
        flag="available",
    )
