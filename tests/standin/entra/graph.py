"""Microsoft Graph v1.0, the calls mlflow-aca makes (helpers/issue10.md, 1-12), served at
`<stand-in>/v1.0/...` because the cloud metadata's `microsoftGraphResourceId` is the stand-in.

Sources: learn.microsoft.com/graph/api/ application-get, application-upsert, application-update,
application-delete, application-post-applications, serviceprincipal-get, serviceprincipal-post-
serviceprincipals, serviceprincipal-update, serviceprincipal-list-approleassignedto,
serviceprincipal-post-approleassignedto, serviceprincipal-delete-approleassignedto,
directoryobject-getbyids; learn.microsoft.com/graph/paging for @odata.nextLink.
Validation of application bodies: appmodel.py; the directory: directory.py.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Callable
from urllib.parse import unquote, urlencode

from ..arm import Request, Response
from ..store import now_iso
from .appmodel import (SERVICE_PRINCIPAL_READ_ONLY, SERVICE_PRINCIPAL_WRITABLE, check_application,
                       check_body_shape, is_guid, merge, new_application, unknown_property)
from .directory import DEFAULT_ACCESS, Directory, DirectoryObject, assignment_id, new_id
from .errors import GraphError, bad_request, denied, not_found, read_only

if TYPE_CHECKING:
    from ..auth import TokenService

PREFIX = "/v1.0/"
PAGE_SIZE = 100   # Graph's default page for appRoleAssignedTo (serviceprincipal-list-approleassignedto: $top 1-999)
# Graph's 401 challenge names the Graph application (00000003-...: Microsoft Graph's well-known appId).
CHALLENGE = ('Bearer realm="", authorization_uri="{login}common/oauth2/authorize", '
             'client_id="00000003-0000-0000-c000-000000000000"')
_ENTITY = re.compile(r"^(applications|servicePrincipals)(?:\((\w+)='((?:[^']|'')*)'\)|/([^/]+))?"
                     r"(?:/(appRoleAssignedTo)(?:/([^/]+))?)?$", re.IGNORECASE)


class Graph:
    def __init__(self, directory: Directory, tokens: "TokenService", graph_url: Callable[[], str]) -> None:
        self.directory = directory
        self.tokens = tokens
        self.graph_url = graph_url

    # -- entry -------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        try:
            caller = self.authenticate(req, req.base_url + "/")
            return self.route(req, caller)
        except GraphError as err:
            return err.response(req)

    def authenticate(self, req: Request, asked_url: str) -> dict:
        """Graph's token check: a token the stand-in signed, for the Graph audience, of this tenant.
        Messages as Graph sends them (401 InvalidAuthenticationToken; "Access token validation
        failure. Invalid audience." is seen verbatim in many clients' fixtures of real answers)."""
        challenge = {"WWW-Authenticate": CHALLENGE.format(login=self.tokens.login_endpoint)}
        header = req.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header or scheme.lower() != "bearer" or not token.strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.", headers=challenge)
        claims = self.tokens.verify(token.strip())
        if claims is None:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.", headers=challenge)
        if claims.get("exp", 0) < time.time():
            raise GraphError(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.",
                             headers=challenge)
        # The audience is the Graph URL the client read from the metadata (the stand-in's URL as
        # the client reached it), with or without the trailing slash.
        graph_urls = {self.graph_url().rstrip("/").lower(), asked_url.rstrip("/").lower()}
        if str(claims.get("aud", "")).rstrip("/").lower() not in graph_urls:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.",
                             headers=challenge)
        if claims.get("tid") != self.directory.tenant_id:
            # Wording unverified; a token of another tenant is refused.
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid issuer.",
                             headers=challenge)
        return claims

    def route(self, req: Request, caller: dict) -> Response:
        path = unquote(req.path[len(PREFIX):]).rstrip("/")
        if path.lower() == "directoryobjects/getbyids" and req.method == "POST":
            return self.get_by_ids(req)
        m = _ENTITY.match(path)
        if m is None:
            # Graph's answer for a path it does not know (code BadRequest).
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{path.split('/')[0]}'.")
        kind = "application" if m.group(1).lower() == "applications" else "servicePrincipal"
        key_name, key_value, object_id, nav, assignment = m.group(2), m.group(3), m.group(4), m.group(5), m.group(6)
        if key_value is not None:
            key_value = key_value.replace("''", "'")
        if key_name is None and object_id is None:
            if req.method == "POST" and not nav:
                return self.create_application(req, caller, None) if kind == "application" \
                    else self.create_service_principal(req, caller)
            raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
        if kind == "application" and key_name and key_name.lower() == "uniquename" and req.method == "PATCH" \
                and "create-if-missing" in req.headers.get("prefer", "").lower():
            existing = self.directory.application_by("uniqueName", key_value)
            if existing is None:
                return self.create_application(req, caller, key_value)
        obj = self.lookup(kind, key_name, key_value, object_id)
        if nav:
            if kind != "servicePrincipal":
                raise GraphError(400, "BadRequest", "Resource not found for the segment 'appRoleAssignedTo'.")
            return self.assignments(req, caller, obj, assignment)
        if req.method == "GET":
            return Response(200, self.render(obj))
        if req.method == "PATCH":
            return self.update(req, caller, obj)
        if req.method == "DELETE":
            self.require_owner(caller, obj)
            self.directory.remove(obj.id)
            return Response(204)
        raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")

    # -- objects -----------------------------------------------------------------------------------
    def lookup(self, kind: str, key_name: str | None, key_value: str | None, object_id: str | None) -> DirectoryObject:
        if object_id is not None:
            if not is_guid(object_id):
                raise bad_request(f"Invalid object identifier '{object_id}'.")
            obj = self.directory.get(object_id, kind)
            if obj is None:
                raise not_found(object_id)
            return obj
        allowed = {"application": ("appId", "uniqueName"), "servicePrincipal": ("appId",)}[kind]
        name = next((a for a in allowed if a.lower() == key_name.lower()), None)
        if name is None:
            raise GraphError(400, "BadRequest", f"The key property '{key_name}' is not an alternate key.")  # unverified
        obj = self.directory.application_by(name, key_value) if kind == "application" \
            else self.directory.service_principal_for(key_value)
        if obj is None:
            raise not_found(key_value)
        return obj

    def render(self, obj: DirectoryObject) -> dict:
        base = self.graph_url().rstrip("/")
        context = {"application": "applications", "servicePrincipal": "servicePrincipals",
                   "user": "users", "group": "groups"}[obj.kind]
        return {"@odata.context": f"{base}/v1.0/$metadata#{context}/$entity", **obj.doc}

    def require_owner(self, caller: dict, obj: DirectoryObject) -> None:
        """Writes need ownership: a user with default permissions may manage only the applications
        and service principals it owns (learn.microsoft.com/entra/fundamentals/users-default-
        permissions, "Owned enterprise applications" / "Owned application registrations")."""
        if str(caller.get("oid", "")).lower() not in (o.lower() for o in obj.owners):
            raise denied()

    def create_application(self, req: Request, caller: dict, unique_name: str | None) -> Response:
        if self.directory.app_registration_denied:
            # Tenant setting "Users can register applications" = No
            # (learn.microsoft.com/entra/identity/role-based-access-control/delegate-app-roles).
            raise denied()
        body = check_body_shape(req.body, creating=True)
        if unique_name is not None and body.get("uniqueName") not in (None, unique_name):
            raise read_only("uniqueName")
        created = new_application(new_id(), new_id(), now_iso())
        doc = merge(created, body)
        if unique_name is not None:
            doc["uniqueName"] = unique_name
        if doc.get("uniqueName") and self.directory.application_by("uniqueName", doc["uniqueName"]):
            raise bad_request("Another object with the same value for property uniqueName already exists.",
                              "Request_MultipleObjectsWithSameKeyValue")
        check_application(None, doc, tenant_id=self.directory.tenant_id, others=self._apps_except(None))
        # The creating principal becomes the owner (application-post-applications: "the principal
        # ... is assigned ownership of the app they create").
        obj = self.directory.add(DirectoryObject("application", doc, owners=[caller["oid"]]))
        location = f"{self.graph_url().rstrip('/')}/v1.0/applications/{obj.id}"
        return Response(201, self.render(obj), {"Location": location})

    def _apps_except(self, object_id: str | None) -> list[dict]:
        return [o.doc for o in self.directory.of_kind("application") if o.id != object_id]

    def update(self, req: Request, caller: dict, obj: DirectoryObject) -> Response:
        self.require_owner(caller, obj)
        if obj.kind == "application":
            body = check_body_shape(req.body, creating=False)
            doc = merge(obj.doc, body)
            check_application(obj.doc, doc, tenant_id=self.directory.tenant_id, others=self._apps_except(obj.id))
            obj.doc = doc
            self._sync_service_principal(obj)
            return Response(204)
        body = self._service_principal_body(req.body)
        obj.doc = merge(obj.doc, body)
        return Response(204)

    def _sync_service_principal(self, application: DirectoryObject) -> None:
        """A service principal mirrors its application's scopes, roles, names and identifier URIs."""
        sp = self.directory.service_principal_for(application.doc["appId"])
        if sp is None or sp.doc.get("servicePrincipalType") != "Application":
            return
        doc = application.doc
        sp.doc.update({"appDisplayName": doc.get("displayName"), "appRoles": list(doc.get("appRoles") or []),
                       "oauth2PermissionScopes": list((doc.get("api") or {}).get("oauth2PermissionScopes") or []),
                       "servicePrincipalNames": [doc["appId"], *(doc.get("identifierUris") or [])],
                       "replyUrls": list((doc.get("web") or {}).get("redirectUris") or [])})

    def _service_principal_body(self, body) -> dict:
        if not isinstance(body, dict):
            raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
        for name in body:
            if name.startswith("@odata."):
                continue
            if name in SERVICE_PRINCIPAL_READ_ONLY:
                raise read_only(name)
            if name not in SERVICE_PRINCIPAL_WRITABLE:
                raise unknown_property(name, "servicePrincipal")
        if "appRoleAssignmentRequired" in body and not isinstance(body["appRoleAssignmentRequired"], bool):
            raise bad_request("Invalid value specified for property 'appRoleAssignmentRequired' of resource "
                              "'ServicePrincipal'.")
        return body

    def create_service_principal(self, req: Request, caller: dict) -> Response:
        body = req.body if isinstance(req.body, dict) else {}
        app_id = body.get("appId")
        rest = {k: v for k, v in body.items() if k != "appId"}
        self._service_principal_body(rest)
        application = self.directory.application_by("appId", str(app_id or ""))
        if application is None:
            # Graph's answer (code, message and details as manicminer/hamilton and
            # azure-cli's replication retries match them).
            message = f"The appId '{app_id}' of the service principal does not reference a valid application object."
            raise bad_request(message, details=[{"code": "NoBackingApplicationObject", "message": message,
                                                 "target": "appId"}])
        if self.directory.service_principal_for(application.doc["appId"]) is not None:
            # One service principal per application in a tenant: 409 (Azure/reliable-web-app-pattern-
            # java#185, a Graph v1.0 client; KelvinTegelaar/CIPP#1142 shows HttpStatusCode Conflict).
            raise GraphError(409, "Request_MultipleObjectsWithSameKeyValue",
                             "The service principal cannot be created, updated, or restored because the service "
                             f"principal name {application.doc['appId']} is already in use.")
        # Unverified: whether a non-owner may create the service principal of an application in
        # its own tenant; the stand-in takes the stricter answer.
        self.require_owner(caller, application)
        doc = application.doc
        sp_doc = merge({
            "id": new_id(), "appId": doc["appId"], "displayName": doc.get("displayName"),
            "appDisplayName": doc.get("displayName"), "servicePrincipalType": "Application", "accountEnabled": True,
            "appRoleAssignmentRequired": False, "tags": [], "notes": None, "description": None,
            "appOwnerOrganizationId": self.directory.tenant_id, "signInAudience": doc.get("signInAudience"),
            "appRoles": [], "oauth2PermissionScopes": [], "servicePrincipalNames": [], "replyUrls": [],
            "alternativeNames": [], "deletedDateTime": None}, rest)
        sp = self.directory.add(DirectoryObject("servicePrincipal", sp_doc, owners=[caller["oid"]]))
        self._sync_service_principal(application)
        return Response(201, self.render(sp))

    # -- app role assignments ----------------------------------------------------------------------
    def assignments(self, req: Request, caller: dict, sp: DirectoryObject, assignment: str | None) -> Response:
        if assignment is not None:
            found = self.directory.assignments.get(assignment)
            if found is None or found["resourceId"].lower() != sp.id.lower():
                raise not_found(assignment)
            if req.method == "GET":
                return Response(200, dict(found))
            if req.method == "DELETE":
                self.require_owner(caller, sp)
                del self.directory.assignments[assignment]
                return Response(204)
        elif req.method == "GET":
            return self.list_assignments(req, sp)
        elif req.method == "POST":
            return self.assign(req, caller, sp)
        raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")

    def list_assignments(self, req: Request, sp: DirectoryObject) -> Response:
        try:
            top = int(req.query.get("$top", PAGE_SIZE))
            skip = int(req.query.get("$skiptoken", 0))
        except ValueError:
            raise GraphError(400, "BadRequest", "Invalid $top or $skiptoken value.") from None
        if not 1 <= top <= 999:
            raise GraphError(400, "BadRequest", "Invalid page size specified: '%d'. Must be between 1 and 999 "
                                                "inclusive." % top)
        items = sorted(self.directory.assignments_to(sp.id), key=lambda a: (a["createdDateTime"], a["id"]))
        base = self.graph_url().rstrip("/")
        body: dict = {"@odata.context": f"{base}/v1.0/$metadata#servicePrincipals('{sp.id}')/appRoleAssignedTo",
                      "value": [dict(a) for a in items[skip:skip + top]]}
        if skip + top < len(items):
            # The skip token is opaque to clients (learn.microsoft.com/graph/paging).
            query = urlencode({"$top": top, "$skiptoken": skip + top})
            body["@odata.nextLink"] = f"{base}/v1.0/servicePrincipals/{sp.id}/appRoleAssignedTo?{query}"
        return Response(200, body)

    def assign(self, req: Request, caller: dict, sp: DirectoryObject) -> Response:
        body = req.body if isinstance(req.body, dict) else {}
        for name in ("principalId", "resourceId", "appRoleId"):
            if not is_guid(body.get(name)):
                raise bad_request(f"Invalid value specified for property '{name}' of resource 'AppRoleAssignment'.")
        if body["resourceId"].lower() != sp.id.lower():
            raise bad_request("resourceId must be the service principal the assignment is posted to.")  # unverified
        self.require_owner(caller, sp)
        principal = self.directory.get(body["principalId"])
        if principal is None or principal.kind == "application":
            raise not_found(body["principalId"])
        roles = {r["id"].lower() for r in sp.doc.get("appRoles") or [] if r.get("isEnabled", True)}
        if body["appRoleId"].lower() != DEFAULT_ACCESS and body["appRoleId"].lower() not in roles:
            # Graph's answer for an app role the resource does not define (seen verbatim in scripts
            # handling it, e.g. "Permission being assigned was not found on application").
            raise bad_request(f"Permission being assigned was not found on application '{sp.doc.get('appId')}'.")
        for existing in self.directory.assignments_to(sp.id):
            if (existing["principalId"].lower(), existing["appRoleId"].lower()) == (
                    body["principalId"].lower(), body["appRoleId"].lower()):
                # 400 Request_BadRequest (scripts and tools that tolerate it match this text).
                raise bad_request("Permission being assigned already exists on the object")
        assignment = {"id": assignment_id(principal.id), "deletedDateTime": None, "appRoleId": body["appRoleId"],
                      "createdDateTime": now_iso(), "principalDisplayName": principal.doc.get("displayName"),
                      "principalId": principal.id, "principalType": self.directory.principal_type(principal.id),
                      "resourceDisplayName": sp.doc.get("displayName"), "resourceId": sp.id}
        self.directory.assignments[assignment["id"]] = assignment
        return Response(201, dict(assignment))

    # -- getByIds ----------------------------------------------------------------------------------
    def get_by_ids(self, req: Request) -> Response:
        body = req.body if isinstance(req.body, dict) else {}
        ids = body.get("ids")
        if not isinstance(ids, list) or not ids:
            raise bad_request("Invalid value specified for property 'ids'.")   # wording unverified
        if len(ids) > 1000:   # directoryobject-getbyids: "up to 1000 ids"
            raise bad_request("The number of ids exceeds the maximum of 1000.")
        types = {str(t).lower() for t in body.get("types") or []}
        found = []
        for object_id in ids:
            obj = self.directory.get(str(object_id))
            if obj is None or (types and obj.kind.lower() not in types):
                continue   # unknown ids are left out, not reported
            found.append(obj.render())
        base = self.graph_url().rstrip("/")
        return Response(200, {"@odata.context": f"{base}/v1.0/$metadata#directoryObjects", "value": found})
