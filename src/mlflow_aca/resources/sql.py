"""The backend store: an Azure SQL server (Entra-only with the identity as administrator, or
SQL authentication with a generated password), its firewall rules and a serverless database."""

from __future__ import annotations

import secrets
import string
from typing import Any

from mlflow_aca.azure import sql as azure_sql
from mlflow_aca.graph import StepResult
from mlflow_aca.redaction import register_secret
from mlflow_aca.resources.base import Context, Resource, require_name_available

# Symbols that need no quoting in shells or ODBC connection strings; URIs encode them anyway.
_PASSWORD_SYMBOLS = "-_.~!*"
PASSWORD_KEY = "sql_admin_password"


def generate_password(length: int = 32) -> str:
    """A password meeting Azure SQL's rules: all four character classes, 8-128 characters."""
    alphabet = string.ascii_letters + string.digits + _PASSWORD_SYMBOLS
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if (any(c.islower() for c in candidate) and any(c.isupper() for c in candidate)
                and any(c.isdigit() for c in candidate)
                and any(c in _PASSWORD_SYMBOLS for c in candidate)):
            register_secret(candidate)
            return candidate


class SqlServer(Resource):
    key = "sql_server"
    kind = azure_sql.SERVER
    # The identity must exist first: with Entra authentication it is the administrator.
    deps = ("resource_group", "identity")
    ignored = ("properties.administratorLoginPassword",)

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, ctx.names.sql_server)

    def desired(self, ctx: Context) -> dict[str, Any]:
        properties: dict[str, Any] = {"version": "12.0", "minimalTlsVersion": "1.2",
                                      "publicNetworkAccess": "Enabled"}
        if ctx.settings.sql_auth == "entra":
            properties["administrators"] = {
                "administratorType": "ActiveDirectory",
                "principalType": "Application",
                "login": ctx.names.identity,
                # For an application (a managed identity is one) the sid is its client id.
                "sid": ctx.output("identity", "client_id"),
                "tenantId": ctx.output("identity", "tenant_id"),
                "azureADOnlyAuthentication": True,
            }
        else:
            properties["administratorLogin"] = ctx.settings.sql_admin_login
        return {"location": ctx.settings.location, "tags": ctx.tags, "properties": properties}

    def publish(self, ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
        return {"id": state.get("id")}

    def create(self, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        name = ctx.names.sql_server
        require_name_available(azure_sql.server_name_available(ctx.session, name), what="SQL server",
                               name=name, key="sql_server_name", code="ServerNameNotAvailable")
        if ctx.settings.sql_auth == "password":
            password = generate_password()
            body = _with_password(body, password)
            ctx.private[PASSWORD_KEY] = password
        return super().create(ctx, body)

    def reset_password(self, ctx: Context) -> str:
        """Give the administrator a new password (when no copy of the old one exists)."""
        password = generate_password()
        super().update(ctx, _with_password(self.desired(ctx), password), {})
        ctx.private[PASSWORD_KEY] = password
        return password


def _with_password(body: dict[str, Any], password: str) -> dict[str, Any]:
    return {**body, "properties": {**body["properties"], "administratorLoginPassword": password}}


class FirewallRule(Resource):
    kind = azure_sql.FIREWALL_RULE
    deps = ("sql_server",)

    def __init__(self, key: str, rule_name: str, start: str, end: str, purpose: str) -> None:
        self.key = key
        self.rule_name = rule_name
        self.start, self.end = start, end
        self.purpose = purpose

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, ctx.names.sql_server, self.rule_name)

    def label(self, ctx: Context) -> str:
        return f"SQL firewall: {self.purpose}"

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"properties": {"startIpAddress": self.start, "endIpAddress": self.end}}


def firewall_rules(ctx: Context) -> list[FirewallRule]:
    # 0.0.0.0-0.0.0.0 is Azure's notation for "services running in Azure" (the app).
    rules = [FirewallRule("sql_firewall_azure", "AllowAllWindowsAzureIps", "0.0.0.0", "0.0.0.0",
                          "Azure services")]
    if ctx.settings.operator_ip:
        ip = ctx.settings.operator_ip
        rules.append(FirewallRule("sql_firewall_operator", "mlflow-aca-operator", ip, ip,
                                  f"operator {ip}"))
    return rules


class SqlDatabase(Resource):
    key = "sql_database"
    kind = azure_sql.DATABASE
    deps = ("sql_server",)

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, ctx.names.sql_server, ctx.names.sql_database)

    def desired(self, ctx: Context) -> dict[str, Any]:
        settings = ctx.settings
        return {
            "location": settings.location,
            "tags": ctx.tags,
            "sku": {"name": "GP_S_Gen5", "tier": "GeneralPurpose", "family": "Gen5",
                    "capacity": settings.sql_max_vcores},
            "properties": {
                "autoPauseDelay": settings.sql_auto_pause_minutes,
                "minCapacity": settings.sql_min_capacity,
            },
        }


def ensure_password_known(ctx: Context, server: SqlServer, stored: str | None) -> StepResult | None:
    """With SQL authentication, make sure this process knows the administrator password.

    Order: a password generated earlier in this run, else the copy the app holds as a secret,
    else (no copy anywhere) a reset — reported, never silent.
    """
    if ctx.settings.sql_auth != "password" or ctx.private.get(PASSWORD_KEY):
        return None
    if stored:
        ctx.private[PASSWORD_KEY] = stored
        register_secret(stored)
        return None
    if ctx.dry_run:
        return StepResult("update", "administrator password will be reset (no stored copy)")
    server.reset_password(ctx)
    return StepResult("updated", "administrator password reset: no stored copy existed")
