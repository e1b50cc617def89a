"""Microsoft Entra sign-in in front of MLflow: the app registration and its service principal
(Microsoft Graph), who is assigned to it, and the container app's built-in authentication
(`authConfigs/current`).

Browsers sign in through Container Apps' sign-in layer with the OpenID Connect implicit flow:
the registration issues ID tokens and holds no client secret. Microsoft's description of the
built-in authentication's client secret: "This setting is optional. If no client secret is
configured, the OpenID Connect implicit auth flow is used to authenticate end users"
(learn.microsoft.com/dotnet/api/microsoft.azure.powershell.cmdlets.functions.models.
isiteauthsettingsproperties.clientsecret; Container Apps' authConfigs share the model). Only
an ID token comes back (response_mode=form_post), which is all a browser session needs; API
clients send their own bearer token for the registration's scope, which the layer validates
(issuer, audience, expiry, allowed principals) before MLflow sees the request. Not verified
against Azure here: that Container Apps' layer behaves the same with no secret (the stand-in
implements it as App Service documents it).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from mlflow_aca.azure import apps as azure_apps
from mlflow_aca.azure.msgraph import DEFAULT_ACCESS_ROLE, Graph, GraphError, object_kind, subscription_tenant
from mlflow_aca.errors import ConfigError
from mlflow_aca.graph import StepResult
from mlflow_aca.resources.base import Context, Pending, Resource, changed_paths
from mlflow_aca.resources.util import dig

SCOPE_VALUE = "user_impersonation"
CALLBACK_PATH = "/.auth/login/aad/callback"
# Paths the sign-in layer lets through unauthenticated: the health probes' path.
EXCLUDED_PATHS = ["/health"]
# Clients that may ask for the scope without a consent prompt, so `az login` (and Azure
# PowerShell) users get tokens at once: the well-known first-party application ids of Azure CLI
# and Azure PowerShell (learn.microsoft.com/troubleshoot/entra/entra-id/governance/
# verify-first-party-apps-sign-in).
PREAUTHORIZED_CLIENTS = ("04b07795-8ddb-461a-bbee-02f9e1bf7b46", "1950a258-227b-4e31-a9cf-717495945fc2")
TAG = "mlflow-aca"
# A service principal just created is not visible to every Graph replica at once: retry
# "not found" when assigning, as role assignments do for PrincipalNotFound.
REPLICATION_RETRIES = 8

_NAMESPACE = uuid.UUID("6f1f0a52-3f0e-4c34-9a52-7e4b0d1e5c11")


def graph(ctx: Context) -> Graph:
    with ctx._lock:
        client = ctx.private.get("graph")
        if client is None:
            client = ctx.private["graph"] = Graph(ctx.session)
    return client


def scope_id(ctx: Context) -> str:
    """The user_impersonation scope's id: fixed per deployment, so reruns compare equal."""
    return str(uuid.uuid5(_NAMESPACE, f"{ctx.settings.auth_unique_name}/{SCOPE_VALUE}"))


def registered_by_us(application: dict[str, Any], deployment: str) -> bool:
    tags = application.get("tags") or []
    return TAG in tags and f"mlflow-aca-deployment:{deployment}" in tags


def token_scope(client_id: str) -> str:
    """What a client asks Entra for to call the server."""
    return f"api://{client_id}/.default"


class AppRegistration(Resource):
    """The registration MLflow's sign-in uses: created (by uniqueName) unless auth_client_id
    names one an admin made, which is then only read and checked."""

    key = "auth_app"
    deps = ("environment",)

    def label(self, ctx: Context) -> str:
        if ctx.settings.auth_client_id:
            return f"app registration {ctx.settings.auth_client_id} (existing)"
        return f"app registration {ctx.settings.auth_unique_name}"

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.settings.auth_client_id or ctx.settings.auth_unique_name,)

    def read(self, ctx: Context) -> dict[str, Any] | None:
        if ctx.settings.auth_client_id:
            return graph(ctx).application_by_app_id(ctx.settings.auth_client_id)
        return graph(ctx).application_by_unique_name(ctx.settings.auth_unique_name)

    def redirect_uri(self, ctx: Context) -> str | None:
        domain = ctx.output("environment", "default_domain")
        if isinstance(domain, Pending):
            return None
        return f"https://{ctx.names.app}.{domain}{CALLBACK_PATH}"

    def desired(self, ctx: Context, app_id: str | None = None) -> dict[str, Any]:
        settings = ctx.settings
        scope = {
            "id": scope_id(ctx), "value": SCOPE_VALUE, "type": "User", "isEnabled": True,
            "adminConsentDisplayName": f"Use MLflow {settings.name}",
            "adminConsentDescription": f"Sign in to the MLflow tracking server {settings.name}.",
            "userConsentDisplayName": f"Use MLflow {settings.name}",
            "userConsentDescription": f"Sign in to the MLflow tracking server {settings.name}.",
        }
        body: dict[str, Any] = {
            "displayName": settings.auth_display_name,
            "signInAudience": "AzureADMyOrg",
            "web": {"implicitGrantSettings": {"enableIdTokenIssuance": True}},
            "api": {"oauth2PermissionScopes": [scope]},
            # Group ids in tokens, for allowed groups (Easy Auth checks the `groups` claim).
            "groupMembershipClaims": "SecurityGroup" if self._groups_allowed(ctx) else None,
            "tags": [TAG, f"mlflow-aca-deployment:{settings.name}"],
        }
        redirect = self.redirect_uri(ctx)
        if redirect:
            body["web"]["redirectUris"] = [redirect]
        if app_id:
            # Known only once Graph created the registration; the default tenant policy
            # accepts api://<appId> as identifier URI.
            body["identifierUris"] = [f"api://{app_id}"]
            body["api"]["preAuthorizedApplications"] = [
                {"appId": client, "delegatedPermissionIds": [scope_id(ctx)]} for client in PREAUTHORIZED_CLIENTS]
        return body

    def _groups_allowed(self, ctx: Context) -> bool:
        return bool(resolve_principals(ctx)["groups"])

    def ensure(self, ctx: Context) -> StepResult:
        tenant = self._tenant(ctx)
        resolve_principals(ctx)   # unknown principals stop the run before anything is written
        if ctx.settings.auth_client_id:
            return self._check_existing(ctx, tenant)
        client = graph(ctx)
        current = self.read(ctx)
        if current is None:
            if ctx.dry_run:
                self._publish(ctx, {"appId": Pending("<new app id>"), "id": Pending("<new id>"), "tenant": tenant})
                return StepResult("create", "", {"changes": ["(new)"]})
            created = client.upsert_application(ctx.settings.auth_unique_name, self.desired(ctx)) or self.read(ctx) or {}
            # The identifier URI and pre-authorised clients name the appId and the scope, which
            # exist only now: a second write.
            client.update_application(created["id"], self.desired(ctx, created["appId"]))
            self._publish(ctx, {**created, "tenant": tenant})
            return StepResult("created", f"application id {created['appId']}")
        desired = self.desired(ctx, current["appId"])
        fields = changed_paths(desired, current)
        if fields and not ctx.dry_run:
            client.update_application(current["id"], desired)
        self._publish(ctx, {**current, "tenant": tenant})
        if not fields:
            return StepResult("ok", f"application id {current['appId']}")
        return StepResult("update" if ctx.dry_run else "updated", ", ".join(fields), {"changes": fields})

    def _check_existing(self, ctx: Context, tenant: str) -> StepResult:
        """An admin's registration: it must exist and carry what the sign-in layer needs; the
        tool does not change it (the operator usually cannot)."""
        client_id = ctx.settings.auth_client_id or ""
        current = self.read(ctx)
        if current is None:
            raise ConfigError(
                f"auth_client_id: no app registration with application (client) id {client_id} "
                f"exists in tenant {tenant}.",
                code="RegistrationNotFound",
                hint="Check the id (Entra admin center > App registrations > Application (client) "
                "ID), or remove auth_client_id to let the tool register one.")
        missing = []
        redirect = self.redirect_uri(ctx)
        if redirect and redirect not in (dig(current, "web.redirectUris") or []):
            missing.append(f"web redirect URI {redirect}")
        if not dig(current, "web.implicitGrantSettings.enableIdTokenIssuance"):
            missing.append("ID tokens enabled (Authentication > Implicit grant > ID tokens)")
        if f"api://{client_id}" not in (current.get("identifierUris") or []):
            missing.append(f"application ID URI api://{client_id} (Expose an API)")
        if missing:
            raise ConfigError(
                f"auth_client_id: the app registration {client_id} lacks what sign-in needs: "
                + "; ".join(missing) + ".",
                code="RegistrationIncomplete",
                hint="Ask its owner to add these, then rerun.")
        self._publish(ctx, {**current, "tenant": tenant})
        return StepResult("ok", f"existing registration {client_id}")

    def _tenant(self, ctx: Context) -> str:
        tenant = subscription_tenant(ctx.session)
        others = [t for t in ctx.settings.auth_allowed_tenants if t != tenant.lower()]
        if others:
            raise ConfigError(
                f"auth_allowed_tenants: {others[0]} is not the subscription's tenant ({tenant}); "
                "Container Apps' sign-in layer trusts only that tenant's issuer.",
                code="TenantNotAllowed",
                hint="Remove it, and invite that tenant's accounts as guests, then allow them by "
                "object id in auth_allowed_principals.")
        return tenant

    def publish(self, ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
        return {"id": state.get("id"), "app_id": state.get("appId"), "tenant_id": state.get("tenant")}


def resolve_principals(ctx: Context) -> dict[str, list[str]]:
    """auth_allowed_principals sorted into identities (users, service principals, managed
    identities) and groups; an id Graph does not know is a configuration error."""
    with ctx._lock:
        cached = ctx.private.get("auth_principals")
    if cached is not None:
        return cached
    wanted = ctx.settings.auth_allowed_principals
    found = graph(ctx).objects_by_ids(wanted) if wanted else {}
    unknown = [principal for principal in wanted if principal not in found]
    if unknown:
        raise ConfigError(
            f"auth_allowed_principals: {unknown[0]} is not a user, group or service principal "
            "in this tenant" + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "") + ".",
            code="PrincipalUnknown",
            hint="Use object ids (Entra admin center > Users/Groups/Enterprise applications > "
            "Object ID; for a managed identity its principal id).")
    sorted_ids: dict[str, list[str]] = {"identities": [], "groups": []}
    for principal in wanted:
        sorted_ids["groups" if object_kind(found[principal]) == "group" else "identities"].append(principal)
    resolved = {key: sorted(values) for key, values in sorted_ids.items()}
    with ctx._lock:
        ctx.private["auth_principals"] = resolved
    return resolved


class ServicePrincipal(Resource):
    """The registration's service principal: what assignments and 'assignment required' hang on."""

    key = "auth_sp"
    deps = ("auth_app",)

    def label(self, ctx: Context) -> str:
        return "service principal of the app registration"

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (str(ctx.output("auth_app", "app_id")),)

    def read(self, ctx: Context) -> dict[str, Any] | None:
        app_id = ctx.output("auth_app", "app_id")
        if isinstance(app_id, Pending):
            return None
        return graph(ctx).service_principal(app_id)

    def desired(self, ctx: Context) -> dict[str, Any]:
        body: dict[str, Any] = {"appId": str(ctx.output("auth_app", "app_id"))}
        if ctx.settings.auth_allowed_principals or not ctx.settings.auth_client_id:
            # With allowed principals, Entra refuses tokens to anyone not assigned (AADSTS50105
            # for users, AADSTS501051 for applications); without, everyone in the tenant. An
            # admin's registration keeps its own setting unless principals are listed.
            body["appRoleAssignmentRequired"] = bool(ctx.settings.auth_allowed_principals)
        if not ctx.settings.auth_client_id:
            body["tags"] = [TAG, f"mlflow-aca-deployment:{ctx.settings.name}"]
        return body

    def ensure(self, ctx: Context) -> StepResult:
        current = self.read(ctx)
        desired = self.desired(ctx)
        if current is None:
            if ctx.dry_run:
                self._publish(ctx, {"id": Pending("<new id>")})
                return StepResult("create", "", {"changes": ["(new)"]})
            created = graph(ctx).create_service_principal(desired)
            self._publish(ctx, created)
            return StepResult("created")
        update = {k: v for k, v in desired.items() if k != "appId"}
        fields = changed_paths(update, current)
        if fields and not ctx.dry_run:
            graph(ctx).update_service_principal(current["id"], update)
        self._publish(ctx, current)
        if not fields:
            return StepResult("ok")
        return StepResult("update" if ctx.dry_run else "updated", ", ".join(fields), {"changes": fields})

    def publish(self, ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
        return {"id": state.get("id")}


class Assignments(Resource):
    """Who is assigned to the service principal (default access): exactly the allowed
    principals. On an admin's registration, only missing assignments are added."""

    key = "auth_assignments"
    deps = ("auth_sp",)

    def label(self, ctx: Context) -> str:
        count = len(ctx.settings.auth_allowed_principals)
        return f"sign-in assignments ({count} principal{'s' if count != 1 else ''})"

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (str(ctx.output("auth_sp", "id")),)

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"principals": sorted(ctx.settings.auth_allowed_principals)}

    def ensure(self, ctx: Context) -> StepResult:
        principals = resolve_principals(ctx)
        self._publish(ctx, principals)
        sp_id = ctx.output("auth_sp", "id")
        wanted = set(ctx.settings.auth_allowed_principals)
        current: dict[str, str] = {}
        if not isinstance(sp_id, Pending):
            current = {str(a.get("principalId")).lower(): str(a.get("id"))
                       for a in graph(ctx).assignments(sp_id) if a.get("appRoleId") == DEFAULT_ACCESS_ROLE}
        add = sorted(wanted - set(current))
        remove = [] if ctx.settings.auth_client_id else sorted(set(current) - wanted)
        changes = [f"+{p}" for p in add] + [f"-{p}" for p in remove]
        if not changes:
            return StepResult("ok", f"{len(wanted)} allowed" if wanted else "everyone in the tenant")
        if ctx.dry_run:
            return StepResult("update", ", ".join(changes), {"changes": changes})
        for principal in add:
            _assign_when_replicated(ctx, str(sp_id), principal)
        for principal in remove:
            graph(ctx).unassign(str(sp_id), current[principal])
        return StepResult("updated", ", ".join(changes), {"changes": changes})

    def publish(self, ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
        return dict(state)


def _assign_when_replicated(ctx: Context, sp_id: str, principal: str) -> None:
    for attempt in range(REPLICATION_RETRIES):
        try:
            graph(ctx).assign(sp_id, principal)
            return
        except GraphError as error:
            if "already exists" in error.message:
                return  # assigned meanwhile (another run): the wanted state
            if error.code != "Request_ResourceNotFound" or attempt == REPLICATION_RETRIES - 1:
                raise
            time.sleep(min(ctx.settings.poll_interval * (2 ** attempt) / 2, 30.0))


def auth_config_spec(ctx: Context) -> dict[str, Any]:
    """Container Apps built-in authentication as ARM receives it."""
    client_id = str(ctx.output("auth_app", "app_id"))
    tenant = str(ctx.output("auth_app", "tenant_id"))
    principals = {key: ctx.output("auth_assignments", key) for key in ("identities", "groups")}
    # Both lists always, empty or not: the comparison with Azure's copy only looks at what is
    # desired, so an omitted list would leave a removed principal allowed for ever.
    validation: dict[str, Any] = {
        "allowedAudiences": [f"api://{client_id}", client_id],
        "defaultAuthorizationPolicy": {"allowedPrincipals": {key: list(principals[key] or [])
                                                             for key in ("identities", "groups")}},
    }
    return {"properties": {
        "platform": {"enabled": True},
        "globalValidation": {
            # Browsers without a session are sent to sign in; a request with an invalid bearer
            # token gets 401 either way.
            "unauthenticatedClientAction": "RedirectToLoginPage",
            "redirectToProvider": "azureactivedirectory",
            "excludedPaths": list(EXCLUDED_PATHS),
        },
        "identityProviders": {"azureActiveDirectory": {
            "enabled": True,
            "registration": {"clientId": client_id, "openIdIssuer": ctx.cloud.open_id_issuer(tenant)},
            "validation": validation,
        }},
        "httpSettings": {"requireHttps": True},
    }}


class AuthConfig(Resource):
    """`authConfigs/current` of the app: the sign-in layer, on with auth = entra, absent with none."""

    key = "auth_config"
    kind = azure_apps.AUTH_CONFIG

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, ctx.names.app, azure_apps.AUTH_CONFIG_NAME)

    def label(self, ctx: Context) -> str:
        return f"sign-in of container app {ctx.names.app}"

    def desired(self, ctx: Context) -> dict[str, Any]:
        return auth_config_spec(ctx)

    def converge(self, ctx: Context, app_exists: bool) -> list[str]:
        """Bring the app's sign-in to the configured state (right after the app is written);
        what changed, or would (dry run)."""
        if ctx.settings.auth == "none":
            if not app_exists or self.read(ctx) is None:
                return []
            if not ctx.dry_run:
                self.delete(ctx)
            return ["removed (auth = none)"]
        if not app_exists:   # a new app has no auth config yet: no read needed
            if not ctx.dry_run:
                self.create(ctx, self.desired(ctx))
            return ["on"]
        result = self.ensure(ctx)
        if result.outcome in ("create", "created"):
            return ["on"]
        return list(result.data.get("changes", []))


# The Graph side of sign-in, converged before the app exists (status reads the app's auth
# config instead: these hang on each other's ids).
GRAPH_RESOURCES: tuple[type[Resource], ...] = (AppRegistration, ServicePrincipal, Assignments)


def signin_resources(ctx: Context) -> list[Resource]:
    if ctx.settings.auth != "entra":
        return []
    return [kind() for kind in GRAPH_RESOURCES]


def describe_live(config: dict[str, Any] | None) -> dict[str, Any]:
    """The sign-in state an app's authConfig shows, for status and env."""
    if not config or not dig(config, "properties.platform.enabled"):
        return {"enabled": False, "open": True}
    aad = dig(config, "properties.identityProviders.azureActiveDirectory") or {}
    client_id = dig(aad, "registration.clientId")
    allowed = dig(aad, "validation.defaultAuthorizationPolicy.allowedPrincipals") or {}
    return {
        "enabled": True, "open": False, "client_id": client_id,
        "scope": token_scope(client_id) if client_id else None,
        "unauthenticated": dig(config, "properties.globalValidation.unauthenticatedClientAction"),
        "allowed_identities": len(allowed.get("identities") or []),
        "allowed_groups": len(allowed.get("groups") or []),
    }
