"""Access tokens for an application's own scope at the managed-identity endpoint.

Entra issues a token for `resource` only when the resource names a service principal in the
tenant: otherwise AADSTS500011 "The resource principal named <resource> was not found in the
tenant named <tenant>. ..." (e.g. AzureAD/microsoft-authentication-library-for-dotnet#3979, a
managed identity asking for a misspelt resource; Azure-Samples/azure-search-openai-demo#1969 for
api://<appId>). When the service principal has appRoleAssignmentRequired, a client without an
app role assignment (direct, or through a group it is a direct member of) is refused with
AADSTS501051 "Application '<appId>'(<name>) is not assigned to a role for the application
'<resource appId>'(<resource name>)." (login.microsoftonline.com/error?code=501051 as quoted in
Azure/azure-functions-host#9884, a managed identity's token request).

Tokens: v1 (api.requestedAccessTokenVersion null or 1): aud = the resource as asked,
iss https://sts.windows.net/<tid>/, appid; v2: aud = the appId, iss <login>/<tid>/v2.0, azp
(learn.microsoft.com/entra/identity-platform/access-token-claims-reference). `roles` carries the
values of the app roles assigned to the client, `groups` its groups when the application's
groupMembershipClaims is SecurityGroup or All (same reference, "groups" claim; groups are
transitive there).

Resources that are not applications in the directory stay what they were: Microsoft's own
services (ARM, Graph, SQL, Storage, ACR, Key Vault, ...) by their well-known URIs and suffixes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .directory import Directory, DirectoryObject

if TYPE_CHECKING:
    from ..app import StandinApp

# Microsoft first-party resources, with or without the trailing slash.
SERVICE_RESOURCES = {
    "https://management.core.windows.net", "https://management.azure.com", "https://graph.microsoft.com",
    "https://graph.windows.net", "https://database.windows.net", "https://storage.azure.com",
    "https://containerregistry.azure.net", "https://vault.azure.net", "https://ossrdbms-aad.database.windows.net",
    "https://management.core.windows.net:8443", "https://datalake.azure.net", "https://batch.core.windows.net",
    "https://api.loganalytics.io", "https://api.applicationinsights.io", "https://rest.media.azure.net",
    "https://cognitiveservices.azure.com", "https://servicebus.azure.net", "https://eventhubs.azure.net",
    "https://monitor.azure.com", "https://gallery.azure.com",
}
# Per-resource audiences of those services (a storage account's blob endpoint, a vault, a registry).
SERVICE_SUFFIXES = (".core.windows.net", ".database.windows.net", ".vault.azure.net", ".azurecr.io",
                    ".azure.net", ".azure.com")


def _normal(resource: str) -> str:
    return resource.rstrip("/").lower()


def is_service_resource(app: "StandinApp", resource: str) -> bool:
    norm = _normal(resource)
    own = {_normal(a) for a in app.tokens.audiences} | {_normal(app.base_url + "/")}
    if norm in own or norm in SERVICE_RESOURCES:
        return True
    parts = urlsplit(norm)
    if parts.scheme == "https" and parts.hostname in ("127.0.0.1", "localhost") and not parts.path \
            and parts.port == urlsplit(app.base_url).port:
        return True   # the stand-in's Graph URL however the client reached it
    return parts.scheme == "https" and bool(parts.hostname) and parts.hostname.endswith(SERVICE_SUFFIXES)


def find_resource_app(directory: Directory, resource: str) -> DirectoryObject | None:
    """The application whose identifier URI or appId is `resource`."""
    norm = resource.lower()
    for application in directory.of_kind("application"):
        doc = application.doc
        if norm == doc["appId"].lower() or norm in (u.lower() for u in doc.get("identifierUris") or []):
            return application
    return None


def check_resource(app: "StandinApp", directory: Directory, resource: str, oid: str, client_id: str) -> dict | str:
    """Claims to add to a token for `resource` requested by the principal `oid`, or the AADSTS
    message Entra answers instead."""
    if is_service_resource(app, resource):
        return {}
    application = find_resource_app(directory, resource)
    sp = directory.service_principal_for(application.doc["appId"]) if application is not None else None
    if sp is None:
        return (f"AADSTS500011: The resource principal named {resource} was not found in the tenant named "
                f"{directory.tenant_id}. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You might have sent your "
                "authentication request to the wrong tenant.")
    held = directory.assignments_of(oid, sp.id)
    if sp.doc.get("appRoleAssignmentRequired") and not held:
        caller = directory.get(oid)
        name = caller.doc.get("displayName") if caller is not None else client_id
        return (f"AADSTS501051: Application '{client_id}'({name}) is not assigned to a role for the application "
                f"'{resource}'({sp.doc.get('displayName')}).")
    return token_claims(directory, application, held, oid, resource, app.tokens.login_endpoint)


def token_claims(directory: Directory, application: DirectoryObject, held: list[dict], oid: str, resource: str,
                 login_endpoint: str) -> dict:
    doc = application.doc
    claims: dict = {}
    if (doc.get("api") or {}).get("requestedAccessTokenVersion") == 2:
        claims.update({"aud": doc["appId"], "iss": f"{login_endpoint.rstrip('/')}/{directory.tenant_id}/v2.0",
                       "ver": "2.0"})
    else:
        claims.update({"aud": resource, "ver": "1.0"})
    role_values = {r["id"].lower(): r.get("value") for r in doc.get("appRoles") or []}
    roles = sorted({role_values[a["appRoleId"].lower()] for a in held
                    if a["appRoleId"].lower() in role_values and role_values[a["appRoleId"].lower()]})
    if roles:
        claims["roles"] = roles
    groups = group_claim(directory, doc, oid)
    if groups:
        claims["groups"] = groups
    return claims


def group_claim(directory: Directory, application_doc: dict, oid: str) -> list[str]:
    if application_doc.get("groupMembershipClaims") not in ("SecurityGroup", "All"):
        return []
    return directory.groups_of(oid)
