"""The backend store: an Azure SQL server (Entra-only with the migration job's identity as
administrator, or
SQL authentication with a generated password), its Entra administrator settings, its firewall
rules and a serverless database."""

from __future__ import annotations

import secrets
import string
import time
from typing import Any

from mlflow_aca.azure import sql as azure_sql
from mlflow_aca.errors import OperationError
from mlflow_aca.graph import StepResult
from mlflow_aca.redaction import register_secret
from mlflow_aca.resources import ownership
from mlflow_aca.resources.base import Context, Pending, Resource, changed_paths, require_name_available
from mlflow_aca.resources.ownership import OURS

# Symbols that need no quoting in shells or ODBC connection strings; URIs encode them anyway.
_PASSWORD_SYMBOLS = "-_.~!*"
PASSWORD_KEY = "sql_admin_password"
# What a server answers (409) while an earlier update of it still runs: ARM's generic code, and the
# one Azure SQL is reported to use for its own resources (ConflictingDatabaseOperation for a
# database: Azure/azure-service-operator#1274; the server's counterpart is assumed, not observed).
BUSY_CODES = frozenset({"AnotherOperationInProgress", "ConflictingServerOperation"})


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
    """The logical server. Its desired state leaves the Entra administrator out: Azure shows a
    server's `administrators` only to a GET with `$expand=administrators/activedirectory` and
    honours it in a PUT only when the PUT creates the server (Servers.json, 2025-01-01:
    x-ms-mutability ["read", "create"]; 2023-08-01: "If used for server update, it will be
    ignored or it will result in an error. For updates individual APIs will need to be used.").
    Creation sends it (an Entra-only server cannot be created without it); afterwards
    `SqlEntraAdmin` and `SqlEntraOnly` converge it through those individual APIs."""

    key = "sql_server"
    kind = azure_sql.SERVER
    tagged = True
    # The migration identity must exist first: with Entra authentication it is the administrator.
    deps = ("resource_group", "migration_identity")
    ignored = ("properties.administratorLoginPassword",)

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, ctx.names.sql_server)

    def desired(self, ctx: Context) -> dict[str, Any]:
        properties: dict[str, Any] = {"version": "12.0", "minimalTlsVersion": "1.2",
                                      "publicNetworkAccess": "Enabled"}
        if ctx.settings.sql_auth != "entra":
            properties["administratorLogin"] = ctx.settings.sql_admin_login
        return {"location": ctx.settings.location, "tags": ctx.tags, "properties": properties}

    def publish(self, ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
        # Whether the tool created it: an adopted server's sign-in settings belong to its owners
        # (SqlEntraAdmin, SqlEntraOnly, ensure_password_known keep them).
        return {"id": state.get("id"), "ours": ownership.owner(state.get("tags"), ctx.settings.name) == OURS}

    def create(self, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        name = ctx.names.sql_server
        require_name_available(azure_sql.server_name_available(ctx.session, name), what="SQL server",
                               name=name, key="sql_server_name", code="ServerNameNotAvailable")
        if ctx.settings.sql_auth == "entra":
            body = _with_properties(body, administrators={**entra_administrator(ctx), "principalType": "Application",
                                                          "azureADOnlyAuthentication": True})
        else:
            password = generate_password()
            body = _with_password(body, password)
            ctx.private[PASSWORD_KEY] = password
        return super().create(ctx, body)

    def reset_password(self, ctx: Context) -> str:
        """Give the administrator a new password (when no copy of the old one exists).

        A run killed during its reset leaves that update running in Azure, with the password it set
        lost: the rerun resets again, and waits (within timeout_minutes) while the server refuses
        writes because the killed run's update has not finished."""
        password = generate_password()
        deadline = time.monotonic() + ctx.settings.timeout_minutes * 60
        while True:
            try:
                super().update(ctx, _with_password(self.desired(ctx), password), {})
                break
            except OperationError as error:
                if error.code not in BUSY_CODES or time.monotonic() >= deadline:
                    raise
                time.sleep(ctx.settings.poll_interval)
        ctx.private[PASSWORD_KEY] = password
        return password


def entra_administrator(ctx: Context) -> dict[str, Any]:
    """The server's Entra administrator: the migration job's identity, never the app's (the app
    signs in as a contained database user with data access only, which the job creates)."""
    return {
        "administratorType": "ActiveDirectory",
        "login": ctx.names.migration_identity,
        # For an application (a managed identity is one) the sid is its client id.
        "sid": ctx.output("migration_identity", "client_id"),
        "tenantId": ctx.output("migration_identity", "tenant_id"),
    }


class SqlEntraAdmin(Resource):
    """`servers/{server}/administrators/ActiveDirectory` (Entra authentication only)."""

    key = "sql_entra_admin"
    kind = azure_sql.ENTRA_ADMIN
    deps = ("sql_server", "migration_identity")

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, ctx.names.sql_server, "ActiveDirectory")

    def label(self, ctx: Context) -> str:
        return f"SQL Entra administrator {ctx.names.migration_identity}"

    def desired(self, ctx: Context) -> dict[str, Any]:
        # azureADOnlyAuthentication is read-only here (ServerAzureADAdministrators.json): the
        # switch is SqlEntraOnly's.
        return {"properties": entra_administrator(ctx)}

    def changes(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any]) -> list[str]:
        # GUIDs compare case-insensitively, as Entra treats them.
        return changed_paths(_lower_guids(desired), _lower_guids(current), ignored=self.ignored)

    def ensure(self, ctx: Context) -> StepResult:
        """An adopted server that already has an Entra administrator keeps it: a server has one,
        and replacing it would lock its owners out. With none, the migration identity becomes it
        (nobody loses access). The migration job then signs in as the migration identity, which
        must be that administrator or a member of it (a group): said here, because nothing in
        Azure Resource Manager can tell group membership without Microsoft Graph."""
        if server_is_ours(ctx):
            return super().ensure(ctx)
        current = self.settled_read(ctx)
        props = (current or {}).get("properties") or {}
        ours = str(ctx.output("migration_identity", "client_id")).lower()
        if current is None or str(props.get("sid") or "").lower() == ours:
            return super().ensure(ctx)
        return StepResult("ok", f"kept: the adopted server's Entra administrator {props.get('login') or props.get('sid')} "
                                f"stays (replacing it would lock it out); the migration job signs in as "
                                f"{ctx.names.migration_identity}, which must be that administrator or a member "
                                "of it (an Entra group)")


def server_is_ours(ctx: Context) -> bool:
    """Whether the tool created the SQL server (published by SqlServer; a plan's pending server is ours)."""
    return ctx.outputs.get("sql_server", {}).get("ours") is not False


def _lower_guids(state: dict[str, Any]) -> dict[str, Any]:
    properties = dict(state.get("properties") or {})
    for key in ("sid", "tenantId"):
        value = properties.get(key)
        if isinstance(value, str) and not isinstance(value, Pending):
            properties[key] = value.lower()
    return {**state, "properties": properties}


class SqlEntraOnly(Resource):
    """`servers/{server}/azureADOnlyAuthentications/Default`: no SQL logins at all."""

    key = "sql_entra_only"
    kind = azure_sql.ENTRA_ONLY
    # Azure refuses Entra-only authentication without an Entra administrator
    # (InvalidServerAADOnlyAuthNoAADAdminPropertyName, ServerAzureADOnlyAuthentications.json).
    deps = ("sql_entra_admin",)

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, ctx.names.sql_server, "Default")

    def label(self, ctx: Context) -> str:
        return "SQL Entra-only authentication"

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"properties": {"azureADOnlyAuthentication": True}}

    def ensure(self, ctx: Context) -> StepResult:
        """An adopted server with SQL logins keeps them: switching Entra-only on would stop every
        SQL login of its owners and their applications (the app and the job sign in with Entra
        either way)."""
        if server_is_ours(ctx):
            return super().ensure(ctx)
        current = self.settled_read(ctx)
        if ((current or {}).get("properties") or {}).get("azureADOnlyAuthentication") is True:
            return StepResult("ok")
        return StepResult("ok", "kept off: the adopted server's SQL logins stay enabled (Entra-only would "
                                "lock its owners' SQL logins out)")


def sql_server_resources(ctx: Context) -> list[Resource]:
    """The server and, with Entra authentication, its administrator settings."""
    if ctx.settings.sql_auth != "entra":
        return [SqlServer()]
    return [SqlServer(), SqlEntraAdmin(), SqlEntraOnly()]


def _with_properties(body: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {**body, "properties": {**body["properties"], **properties}}


def _with_password(body: dict[str, Any], password: str) -> dict[str, Any]:
    return _with_properties(body, administratorLoginPassword=password)


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
    tagged = True
    deps = ("sql_server",)

    def __init__(self, entra: bool = False) -> None:
        # With Entra authentication the migration job logs in as the server's Entra
        # administrator (and creates the app's database user); it waits for the database, so
        # the database waits for those settings.
        if entra:
            self.deps = (*self.deps, SqlEntraOnly.key)

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


def _created_by_us(ctx: Context, server: SqlServer) -> bool:
    known = ctx.outputs.get("sql_server", {}).get("ours")
    if isinstance(known, bool):
        return known
    state = server.read(ctx)  # deploy looks the server up only here, on the rare reset path
    return state is None or ownership.owner(state.get("tags"), ctx.settings.name) == OURS


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
    if not _created_by_us(ctx, server):
        # The administrator password of a server the tool did not create is its owners'; a reset
        # would lock them and their applications out.
        raise OperationError(
            f"mlflow-aca holds no copy of the administrator password of the adopted SQL server "
            f"{ctx.names.sql_server} and will not reset it: that would lock its owners out.",
            code="SqlPasswordUnknown",
            hint="Use sql_auth = \"entra\" for an adopted server (its SQL logins are kept), or a server "
                 "the tool creates (sql_server_name).")
    if ctx.dry_run:
        return StepResult("update", "administrator password will be reset (no stored copy)")
    server.reset_password(ctx)
    return StepResult("updated", "administrator password reset: no stored copy existed")
