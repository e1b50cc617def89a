"""Microsoft.Authorization: built-in role definitions and role assignments at any scope.

Assignments are checked the way ARM checks them: GUID names, an existing scope, a known role
definition, an existing principal of the stated type, no duplicate (scope, role, principal)
under another name, and no change to an existing assignment. Access is not enforced: every
token may do everything (the stand-in has no RBAC evaluation).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from ..arm import ArmError, Request, Response, bad_request, conflict, not_found
from ..resources import check_enum
from ..store import Resource, now_iso

if TYPE_CHECKING:
    from ..app import StandinApp

NAMESPACE = "Microsoft.Authorization"
ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments"
ASSIGNMENT_VERSIONS = {"2015-07-01", "2018-01-01-preview", "2018-09-01-preview", "2020-03-01-preview",
                       "2020-04-01-preview", "2020-10-01-preview", "2021-04-01-preview", "2022-01-01-preview",
                       "2022-04-01"}
DEFINITION_VERSIONS = {"2015-07-01", "2018-01-01-preview", "2022-04-01", "2022-05-01-preview"}
PRINCIPAL_TYPES = ["User", "Group", "ServicePrincipal", "ForeignGroup", "Device"]
BUILT_IN_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": ("Owner", "Grants full access to manage all resources."),
    "b24988ac-6180-42a0-ab88-20f7382dd24c": ("Contributor", "Grants full access to manage all resources, "
                                                            "but does not allow you to assign roles."),
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": ("Reader", "View all resources, but does not allow you to make "
                                                       "any changes."),
    "7f951dda-4ed3-4680-a7ca-43fe172d538d": ("AcrPull", "acr pull"),
    "8311e382-0749-4cb8-b61a-304f252e45ec": ("AcrPush", "acr push"),
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": ("Storage Blob Data Contributor",
                                             "Allows for read, write and delete access to Azure Storage blob "
                                             "containers and data"),
}
_ASSIGNMENT = "{scope}/providers/Microsoft.Authorization/roleAssignments"
_DEFINITION = "{scope}/providers/Microsoft.Authorization/roleDefinitions"


def register(app: "StandinApp") -> None:
    add = app.router.add
    ra = dict(versions=ASSIGNMENT_VERSIONS, namespace=NAMESPACE, type_name="roleAssignments")
    add("PUT", _ASSIGNMENT + "/{name}", lambda r: put_assignment(app, r), **ra, latency_key="roleAssignments")
    add("GET", _ASSIGNMENT + "/{name}", lambda r: get_assignment(app, r), **ra)
    add("DELETE", _ASSIGNMENT + "/{name}", lambda r: delete_assignment(app, r), **ra)
    add("GET", _ASSIGNMENT, lambda r: list_assignments(app, r), **ra)
    rd = dict(versions=DEFINITION_VERSIONS, namespace=NAMESPACE, type_name="roleDefinitions")
    add("GET", _DEFINITION + "/{name}", lambda r: get_definition(app, r), **rd)
    add("GET", _DEFINITION, lambda r: list_definitions(app, r), **rd)


# -- role definitions ----------------------------------------------------------------------------
def definition_doc(app: "StandinApp", role_id: str) -> dict:
    name, description = BUILT_IN_ROLES[role_id]
    return {"id": f"/subscriptions/{app.subscription_id}/providers/{NAMESPACE}/roleDefinitions/{role_id}",
            "name": role_id, "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {"roleName": name, "type": "BuiltInRole", "description": description,
                           "assignableScopes": ["/"], "permissions": [{"actions": [], "notActions": [],
                                                                       "dataActions": [], "notDataActions": []}]}}


def get_definition(app: "StandinApp", req: Request) -> Response:
    _check_scope(app, req.params["scope"])
    role_id = req.params["name"].lower()
    if role_id not in BUILT_IN_ROLES:
        raise not_found("RoleDefinitionDoesNotExist", f"The specified role definition with ID '{role_id}' does not exist.")
    return Response(200, definition_doc(app, role_id))


def list_definitions(app: "StandinApp", req: Request) -> Response:
    _check_scope(app, req.params["scope"])
    wanted = _filter_value(req.query.get("$filter", ""), "roleName")
    docs = [definition_doc(app, rid) for rid in BUILT_IN_ROLES]
    if wanted is not None:
        docs = [d for d in docs if d["properties"]["roleName"].lower() == wanted.lower()]
    return Response(200, {"value": docs})


def _filter_value(text: str, field: str) -> str | None:
    """The value of `<field> eq '<value>'` in an OData $filter, if present."""
    head = f"{field.lower()} eq '"
    lowered = text.lower()
    if head not in lowered:
        return None
    start = lowered.index(head) + len(head)
    return text[start:text.index("'", start)]


# -- role assignments ------------------------------------------------------------------------------
def _check_scope(app: "StandinApp", scope: str) -> str:
    """Raise as ARM does when the scope does not exist; return its canonical id."""
    parts = scope.strip("/").split("/")
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        raise bad_request("InvalidScope",
                          f"The scope '{scope}' is not valid for role assignments.")
    if parts[1].lower() != app.subscription_id:
        raise not_found("SubscriptionNotFound", f"The subscription '{parts[1]}' could not be found.")
    if len(parts) == 2:
        return f"/subscriptions/{app.subscription_id}"
    if len(parts) >= 4 and parts[2].lower() == "resourcegroups":
        group = app.store.get(app.group_id(parts[3]))
        if group is None:
            raise not_found("ResourceGroupNotFound", f"Resource group '{parts[3]}' could not be found.")
        if len(parts) == 4:
            return group.id
        res = app.store.get(scope)
        if res is None:
            raise not_found("ResourceNotFound", f"The Resource '{'/'.join(parts[5:])}' under resource group "
                                                f"'{parts[3]}' was not found. For more details please go to "
                                                "https://aka.ms/ARMResourceNotFoundFix")
        return res.id
    raise bad_request("InvalidScope", f"The scope '{scope}' is not valid for role assignments.")


def _role_id(app: "StandinApp", value: str) -> str:
    parts = str(value).strip("/").split("/")
    role = parts[-1].lower()
    sub_ok = len(parts) < 2 or parts[0].lower() != "subscriptions" or parts[1].lower() == app.subscription_id
    if role not in BUILT_IN_ROLES or not sub_ok or (len(parts) > 1 and "roledefinitions" not in value.lower()):
        raise bad_request("RoleDefinitionDoesNotExist", f"The specified role definition with ID '{role}' does not exist.")
    return role


def put_assignment(app: "StandinApp", req: Request) -> Response:
    name = req.params["name"]
    try:
        uuid.UUID(name)
    except ValueError:
        raise bad_request("InvalidRoleAssignmentId",
                          f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.") from None
    scope = _check_scope(app, req.params["scope"])
    props = (req.body or {}).get("properties") if isinstance(req.body, dict) else None
    if not isinstance(props, dict):
        raise bad_request("InvalidRequestContent", "The request content is missing 'properties'.")
    for key in ("roleDefinitionId", "principalId"):
        if not props.get(key):
            raise bad_request("MissingRequiredProperty",
                              f"The required property 'properties.{key}' is missing from the request.")
    role = _role_id(app, props["roleDefinitionId"])
    principal = str(props["principalId"]).lower()
    rid = f"{scope}/providers/{NAMESPACE}/roleAssignments/{name.lower()}"
    existing = app.store.get(rid)
    if existing is not None:
        old = existing.properties
        if old["roleDefinitionId"].rsplit("/", 1)[-1] != role or old["principalId"] != principal:
            raise bad_request("RoleAssignmentUpdateNotPermitted",
                              "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
        return Response(200, existing.doc)
    for other in app.store.of_type(ASSIGNMENT_TYPE):
        o = other.properties
        if (o["scope"].lower() == scope.lower() and o["principalId"] == principal
                and o["roleDefinitionId"].rsplit("/", 1)[-1] == role):
            raise conflict("RoleAssignmentExists",
                           f"The role assignment already exists. The ID of the existing role assignment is "
                           f"{other.doc['name']}.")
    _check_principal(app, principal, props.get("principalType"))
    now = now_iso()
    doc = {"id": rid, "name": name.lower(), "type": ASSIGNMENT_TYPE, "properties": {
        "roleDefinitionId": f"/subscriptions/{app.subscription_id}/providers/{NAMESPACE}/roleDefinitions/{role}",
        "principalId": principal, "principalType": props.get("principalType") or "ServicePrincipal",
        "scope": scope, "condition": props.get("condition"), "conditionVersion": props.get("conditionVersion"),
        "description": props.get("description"), "createdOn": now, "updatedOn": now,
        "createdBy": (req.principal or {}).get("oid"), "updatedBy": (req.principal or {}).get("oid"),
        "delegatedManagedIdentityResourceId": None}}
    app.store.put(Resource(rid, ASSIGNMENT_TYPE, doc))
    return Response(201, doc)


def _check_principal(app: "StandinApp", principal: str, stated_type) -> None:
    pending = app.store.pending_replication.get(principal, 0)
    if pending:
        app.store.pending_replication[principal] = pending - 1
        raise _principal_not_found(app, principal)
    actual = app.principal_type(principal)
    if actual is None:
        raise _principal_not_found(app, principal)
    if stated_type is not None:
        stated = check_enum(stated_type, PRINCIPAL_TYPES, "properties.principalType")
        if stated != actual:
            raise bad_request("UnmatchedPrincipalType",
                              f"The PrincipalId '{principal}' has type '{actual}' , which is different from "
                              f"specified PrincipalType '{stated}'.")


def _principal_not_found(app: "StandinApp", principal: str) -> ArmError:
    return bad_request("PrincipalNotFound",
                       f"Principal {principal.replace('-', '')} does not exist in the directory {app.tenant_id}. "
                       "Check that you have the correct principal ID. If you are creating this principal and then "
                       "immediately assigning a role, this error might be related to a replication delay. In this "
                       "case, set the role assignment principalType property to a value, such as ServicePrincipal, "
                       "User, or Group.  See https://aka.ms/docs-principaltype")


def get_assignment(app: "StandinApp", req: Request) -> Response:
    scope = _check_scope(app, req.params["scope"])
    res = app.store.get(f"{scope}/providers/{NAMESPACE}/roleAssignments/{req.params['name']}")
    if res is None:
        raise not_found("RoleAssignmentNotFound", f"The role assignment '{req.params['name']}' is not found.")
    return Response(200, res.doc)


def delete_assignment(app: "StandinApp", req: Request) -> Response:
    scope = _check_scope(app, req.params["scope"])
    res = app.store.get(f"{scope}/providers/{NAMESPACE}/roleAssignments/{req.params['name']}")
    if res is None:
        return Response(204)
    app.store.remove(res.id)
    return Response(200, res.doc)


def list_assignments(app: "StandinApp", req: Request) -> Response:
    """Assignments at, above and below the scope (`atScope()` keeps those at or above), optionally
    filtered by `principalId eq '...'`."""
    scope = _check_scope(app, req.params["scope"]).lower()
    text = req.query.get("$filter", "")
    principal = _filter_value(text, "principalId")
    at_scope = "atscope()" in text.lower()
    out = []
    for res in app.store.of_type(ASSIGNMENT_TYPE):
        own = res.properties["scope"].lower()
        above = scope == own or scope.startswith(own + "/")
        below = own.startswith(scope + "/")
        if (above or (below and not at_scope)) and (principal is None or res.properties["principalId"] == principal.lower()):
            out.append(res.doc)
    return Response(200, {"value": out})
