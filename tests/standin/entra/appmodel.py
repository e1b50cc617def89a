"""Applications and service principals as Graph v1.0 stores them: defaults, the PATCH merge, and
the validation Graph applies to a write.

Sources, per rule:
- identifierUris: learn.microsoft.com/entra/identity-platform/identifier-uri-restrictions (the
  formats a tenant accepts without a verified domain: api://<appId>, api://<tenantId>/<string>,
  api://<string>/<appId>); Graph's answer otherwise is 400 HostNameNotOnVerifiedDomain "Values of
  identifierUris property must use a verified domain of the organization or its subdomain: '<uri>'"
  (Azure/Industrial-IoT#1432, a Microsoft.Graph v1.0 client). The stand-in tenant has no verified
  domain. An identifier URI already used by another application: "Another object with the same
  value for property identifierUris already exists." (MicrosoftLearning/AI-102-AIEngineer#204).
- web.redirectUris: learn.microsoft.com/entra/identity-platform/reply-url ("Supported schemes":
  HTTPS, or HTTP for localhost/127.0.0.1 only). Graph's exact answer for an http URI is unverified;
  the stand-in answers 400 Request_BadRequest "Invalid value specified for property 'web' of
  resource 'Application'." (the message Graph gives for a refused `web`, microsoftgraph/
  msgraph-sdk-powershell#3149).
- An enabled permission scope or app role cannot be removed or changed: it must be disabled in an
  earlier request: 400 CannotDeleteOrUpdateEnabledEntitlement "Permission (scope or role) cannot be
  deleted or updated unless disabled first." (microsoftgraph/msgraph-sdk-powershell#1054, #1211;
  msgraph-sdk-dotnet#1888; Azure-Samples/azure-search-openai-demo#1601).
- preAuthorizedApplications may only name scopes the application already has: a scope added in
  the same request is not recognised (microsoftgraph/microsoft-graph-docs#20177). The error text
  is unverified; the stand-in answers 400 Request_BadRequest.
- Scope ids are GUIDs (permissionScope.id is Guid in the v1.0 metadata); duplicate ids or values
  are refused (text unverified).
- uniqueName is an immutable alternate key (learn.microsoft.com/graph/api/resources/application:
  "uniqueName ... Immutable"; application-upsert): a PATCH that changes it is refused as read-only.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any
from urllib.parse import urlsplit

from .errors import GraphError, bad_request, read_only, unknown_property

APPLICATION_PROPERTIES = {
    "addIns", "api", "appId", "applicationTemplateId", "appRoles", "certification", "createdDateTime",
    "defaultRedirectUri", "deletedDateTime", "description", "disabledByMicrosoftStatus", "displayName",
    "groupMembershipClaims", "id", "identifierUris", "info", "isDeviceOnlyAuthSupported", "isFallbackPublicClient",
    "keyCredentials", "logo", "nativeAuthenticationApisEnabled", "notes", "oauth2RequirePostResponse",
    "optionalClaims", "parentalControlSettings", "passwordCredentials", "publicClient", "publisherDomain",
    "requestSignatureVerification", "requiredResourceAccess", "samlMetadataUrl", "serviceManagementReference",
    "servicePrincipalLockConfiguration", "signInAudience", "spa", "tags", "tokenEncryptionKeyId", "uniqueName",
    "verifiedPublisher", "web"}
APPLICATION_READ_ONLY = {"id", "appId", "createdDateTime", "deletedDateTime", "publisherDomain",
                         "disabledByMicrosoftStatus"}
NESTED = {  # complex types the product writes: their properties (v1.0 metadata)
    "web": ("webApplication", {"homePageUrl", "implicitGrantSettings", "logoutUrl", "redirectUris",
                               "redirectUriSettings"}),
    "api": ("apiApplication", {"acceptMappedClaims", "knownClientApplications", "oauth2PermissionScopes",
                               "preAuthorizedApplications", "requestedAccessTokenVersion"}),
}
SCOPE_PROPERTIES = {"adminConsentDescription", "adminConsentDisplayName", "id", "isEnabled", "origin", "type",
                    "userConsentDescription", "userConsentDisplayName", "value"}
SERVICE_PRINCIPAL_WRITABLE = {
    "accountEnabled", "addIns", "alternativeNames", "appDescription", "appRoleAssignmentRequired", "appRoles",
    "description", "disabledByMicrosoftStatus", "displayName", "homepage", "info", "keyCredentials", "loginUrl",
    "logoutUrl", "notes", "notificationEmailAddresses", "oauth2PermissionScopes", "passwordCredentials",
    "preferredSingleSignOnMode", "preferredTokenSigningKeyThumbprint", "replyUrls", "samlSingleSignOnSettings",
    "servicePrincipalNames", "servicePrincipalType", "tags", "tokenEncryptionKeyId"}
SERVICE_PRINCIPAL_READ_ONLY = {"id", "appId", "appDisplayName", "appOwnerOrganizationId", "deletedDateTime",
                               "signInAudience", "createdDateTime"}
GROUP_CLAIMS = {None, "None", "SecurityGroup", "All", "DirectoryRole", "ApplicationGroup"}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_guid(value: Any) -> bool:
    return isinstance(value, str) and bool(_GUID.match(value))


def new_application(app_id: str, object_id: str, created: str) -> dict:
    """An application as Graph returns it right after creation (defaults of the v1.0 resource)."""
    return {
        "id": object_id, "appId": app_id, "createdDateTime": created, "deletedDateTime": None,
        "displayName": None, "description": None, "uniqueName": None, "notes": None, "tags": [],
        # Graph's default audience for a created application is unverified; the product sets it.
        "signInAudience": "AzureADMyOrg", "identifierUris": [], "groupMembershipClaims": None,
        "publisherDomain": None, "appRoles": [], "requiredResourceAccess": [], "keyCredentials": [],
        "passwordCredentials": [], "isFallbackPublicClient": None, "optionalClaims": None,
        "api": {"acceptMappedClaims": None, "knownClientApplications": [], "requestedAccessTokenVersion": None,
                "oauth2PermissionScopes": [], "preAuthorizedApplications": []},
        "web": {"homePageUrl": None, "logoutUrl": None, "redirectUris": [], "redirectUriSettings": [],
                "implicitGrantSettings": {"enableAccessTokenIssuance": False, "enableIdTokenIssuance": False}},
        "spa": {"redirectUris": []}, "publicClient": {"redirectUris": []}, "info": {},
    }


def merge(target: dict, patch: dict) -> dict:
    """PATCH semantics: properties not sent keep their values, complex values are patched
    recursively, collections are replaced whole (OData 4.01 Protocol §11.4.3 "Update an Entity")."""
    out = copy.deepcopy(target)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def check_body_shape(body: Any, *, creating: bool) -> dict:
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
    for name in body:
        if name.startswith("@odata."):
            continue
        if name not in APPLICATION_PROPERTIES:
            raise unknown_property(name, "application")
        if name in APPLICATION_READ_ONLY:
            raise read_only(name)
    for name, (type_name, known) in NESTED.items():
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise bad_request(f"Invalid value specified for property '{name}' of resource 'Application'.")
        for sub in value:
            if sub not in known and not sub.startswith("@odata."):
                raise unknown_property(sub, type_name)
    if creating and not body.get("displayName"):
        # application-upsert: "The request body must contain displayName, which is a required property."
        raise bad_request("Property 'displayName' is required.")   # wording unverified
    return body


def check_application(old: dict | None, new: dict, *, tenant_id: str, others: list[dict]) -> None:
    """Refuse what Graph refuses in the application `new` (after the write), given `old` (before)."""
    if old is not None and old.get("uniqueName") and new.get("uniqueName") != old.get("uniqueName"):
        raise read_only("uniqueName")
    _check_identifier_uris(old or {}, new, tenant_id, others)
    _check_redirect_uris(new)
    if new.get("groupMembershipClaims") not in GROUP_CLAIMS:
        raise bad_request("Invalid value specified for property 'groupMembershipClaims' of resource 'Application'.")
    api = new.get("api") or {}
    if api.get("requestedAccessTokenVersion") not in (None, 1, 2):
        raise bad_request("Invalid value specified for property 'api' of resource 'Application'.")
    old_api = (old or {}).get("api") or {}
    _check_permissions(old_api.get("oauth2PermissionScopes") or [], api.get("oauth2PermissionScopes") or [],
                       "oauth2PermissionScopes", SCOPE_PROPERTIES)
    _check_permissions((old or {}).get("appRoles") or [], new.get("appRoles") or [], "appRoles", None)
    known_scopes = {str(s.get("id")).lower() for s in old_api.get("oauth2PermissionScopes") or []}
    for pre in api.get("preAuthorizedApplications") or []:
        if not is_guid(pre.get("appId")):
            raise bad_request("Invalid value specified for property 'api' of resource 'Application'.")
        for scope_id in pre.get("delegatedPermissionIds") or []:
            if str(scope_id).lower() not in known_scopes:
                raise bad_request(f"Property preAuthorizedApplications references a permission scope '{scope_id}' "
                                  "that does not exist on the application.")   # wording unverified


def _check_identifier_uris(old: dict, new: dict, tenant_id: str, others: list[dict]) -> None:
    app_id = new["appId"].lower()
    before = {u.lower() for u in old.get("identifierUris") or []}
    for uri in new.get("identifierUris") or []:
        low = str(uri).lower().rstrip("/")
        taken = [o for o in others if low in {u.lower().rstrip("/") for u in o.get("identifierUris") or []}]
        if taken:
            raise bad_request("Another object with the same value for property identifierUris already exists.",
                              "Request_MultipleObjectsWithSameKeyValue")
        if str(uri).lower() in before:
            continue   # the restriction applies to URIs added or changed, not to existing ones
        if not _default_uri(low, app_id, tenant_id.lower()):
            raise bad_request(f"Values of identifierUris property must use a verified domain of the organization or "
                              f"its subdomain: '{uri}'", "HostNameNotOnVerifiedDomain",
                              details=[{"code": "HostNameNotOnVerifiedDomain", "target": "identifierUris",
                                        "message": str(uri)}])


def _default_uri(uri: str, app_id: str, tenant_id: str) -> bool:
    if not uri.startswith("api://"):
        return False
    rest = uri[len("api://"):]
    host, _, path = rest.partition("/")
    if not path:
        return host == app_id                       # api://<appId>
    if host == tenant_id:
        return bool(path)                           # api://<tenantId>/<string> (incl. /<appId>)
    return path == app_id                           # api://<string>/<appId>


def _check_redirect_uris(new: dict) -> None:
    for uri in (new.get("web") or {}).get("redirectUris") or []:
        parts = urlsplit(str(uri))
        ok = parts.scheme == "https" and bool(parts.hostname) or (
            parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1"))
        if not ok or "#" in str(uri):   # reply-url: no fragments
            raise bad_request("Invalid value specified for property 'web' of resource 'Application'.")


def _check_permissions(old: list[dict], new: list[dict], name: str, known: set[str] | None) -> None:
    ids, values = set(), set()
    for entry in new:
        if not isinstance(entry, dict) or not is_guid(entry.get("id")):
            raise bad_request(f"Invalid value specified for property '{name}' of resource 'Application'.")
        if known is not None:
            for key in entry:
                if key not in known and not key.startswith("@odata."):
                    raise unknown_property(key, "permissionScope")
        if entry["id"].lower() in ids or (entry.get("value") and entry["value"] in values):
            raise bad_request(f"Property {name} contains duplicate values.")   # wording unverified
        ids.add(entry["id"].lower())
        if entry.get("value"):
            values.add(entry["value"])
    by_id = {e["id"].lower(): e for e in new}
    for before in old:
        if not before.get("isEnabled"):
            continue
        after = by_id.get(str(before.get("id")).lower())
        if after is None or _differs(before, after):
            raise bad_request("Permission (scope or role) cannot be deleted or updated unless disabled first.",
                              "CannotDeleteOrUpdateEnabledEntitlement")


def _differs(before: dict, after: dict) -> bool:
    """True when an enabled entry changed otherwise than by being disabled. Fields left out of
    the new entry count as unchanged only if they were empty."""
    if after.get("isEnabled") is False:
        rest = {k: v for k, v in after.items() if k != "isEnabled"}
        return any(before.get(k) != v for k, v in rest.items())
    keys = set(before) | set(after)
    return any((before.get(k) or None) != (after.get(k) or None) for k in keys if k != "isEnabled") or \
        after.get("isEnabled", True) is not True


def new_guid() -> str:
    return str(uuid.uuid4())
