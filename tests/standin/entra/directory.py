"""The directory behind Microsoft Graph: applications, service principals, users, groups and
app role assignments, plus the objects other parts of the stand-in already hold.

Managed identities created through ARM are service principals of type "ManagedIdentity"
whose appId is the identity's client id (learn.microsoft.com/entra/identity/managed-identities-
azure-resources/overview: "a service principal of a special type"; a user-assigned one lists
`alternativeNames` ["isExplicit=True", <resource id>], as microsoftgraph/microsoft-graph-docs-contrib
#1407 shows for a system-assigned one with isExplicit=False). The operator (the identity
endpoint's default principal) is a person after `az login`, so the directory shows it as a user.
They are derived from the ARM store on every read, so they appear and disappear with it.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..store import now_iso

if TYPE_CHECKING:
    from ..app import StandinApp

# App role id meaning "default access" (no particular role): learn.microsoft.com/graph/api/
# serviceprincipal-post-approleassignedto ("If the resource app has not declared any app roles,
# a default app role ID of 00000000-0000-0000-0000-000000000000 can be specified").
DEFAULT_ACCESS = "00000000-0000-0000-0000-000000000000"

ODATA_TYPES = {"user": "#microsoft.graph.user", "group": "#microsoft.graph.group",
               "servicePrincipal": "#microsoft.graph.servicePrincipal", "application": "#microsoft.graph.application"}


@dataclass
class DirectoryObject:
    kind: str                      # "application", "servicePrincipal", "user" or "group"
    doc: dict
    owners: list[str] = field(default_factory=list)    # object ids (applications, service principals)
    members: list[str] = field(default_factory=list)   # object ids (groups)

    @property
    def id(self) -> str:
        return self.doc["id"]

    def render(self) -> dict:
        return {"@odata.type": ODATA_TYPES[self.kind], **self.doc}


def new_id() -> str:
    return str(uuid.uuid4())


def assignment_id(principal_id: str) -> str:
    """App role assignment ids are not GUIDs: Graph shows 43-character base64url keys that start
    with the principal's id (e.g. "S8-44MyLhUKxf6jJa4RO3pRWQ1NbMWVEm5_T4YSdxlo" in
    microsoftgraph/microsoft-graph-docs-contrib#8669), so clients must treat them as opaque."""
    raw = uuid.UUID(principal_id).bytes_le + uuid.uuid4().bytes
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Directory:
    def __init__(self, app: "StandinApp") -> None:
        self.app = app
        self.reset()

    def reset(self) -> None:
        self.objects: dict[str, DirectoryObject] = {}    # lower id -> object (not identities/operator)
        self.assignments: dict[str, dict] = {}           # assignment id -> appRoleAssignment
        self.app_registration_denied = False
        self.browser_user: str | None = None             # set_browser_user; None: the operator

    # -- lookups -----------------------------------------------------------------------------------
    @property
    def tenant_id(self) -> str:
        return self.app.tenant_id

    @property
    def domain(self) -> str:
        # Every tenant has an initial domain <name>.onmicrosoft.com; the stand-in's is made up.
        return f"standin{self.tenant_id[:8]}.onmicrosoft.com"

    def operator(self) -> DirectoryObject:
        oid = self.app.operator["principal_id"]
        return DirectoryObject("user", {
            "id": oid, "displayName": "Stand-in Operator", "userPrincipalName": f"operator@{self.domain}",
            "mail": None, "givenName": "Stand-in", "surname": "Operator", "accountEnabled": True})

    def identities(self) -> list[DirectoryObject]:
        found = []
        for res in self.app.identities():
            props = res.properties
            found.append(DirectoryObject("servicePrincipal", {
                "id": props["principalId"], "appId": props["clientId"], "displayName": res.doc["name"],
                "servicePrincipalType": "ManagedIdentity", "accountEnabled": True,
                "alternativeNames": ["isExplicit=True", res.id],
                "servicePrincipalNames": [props["clientId"], f"https://identity.azure.net/{props['clientId']}"],
                "appRoleAssignmentRequired": False, "appRoles": [], "oauth2PermissionScopes": [], "tags": [],
                "appOwnerOrganizationId": None, "deletedDateTime": None}))
        return found

    def all_objects(self) -> list[DirectoryObject]:
        return [self.operator(), *self.identities(), *self.objects.values()]

    def get(self, object_id: str, kind: str | None = None) -> DirectoryObject | None:
        key = (object_id or "").lower()
        for obj in self.all_objects():
            if obj.id.lower() == key and (kind is None or obj.kind == kind):
                return obj
        return None

    def of_kind(self, kind: str) -> list[DirectoryObject]:
        return [o for o in self.all_objects() if o.kind == kind]

    def application_by(self, key: str, value: str) -> DirectoryObject | None:
        for obj in self.of_kind("application"):
            if str(obj.doc.get(key) or "").lower() == value.lower():
                return obj
        return None

    def service_principal_for(self, app_id: str) -> DirectoryObject | None:
        for obj in self.of_kind("servicePrincipal"):
            if obj.doc.get("appId", "").lower() == app_id.lower():
                return obj
        return None

    def principal_type(self, object_id: str) -> str | None:
        obj = self.get(object_id)
        if obj is None or obj.kind == "application":
            return None
        return {"user": "User", "group": "Group", "servicePrincipal": "ServicePrincipal"}[obj.kind]

    def groups_of(self, object_id: str, *, transitive: bool = True) -> list[str]:
        """Ids of the groups `object_id` belongs to: directly, or also through nested groups."""
        found: list[str] = []
        frontier = [object_id.lower()]
        while frontier:
            member = frontier.pop()
            for obj in self.objects.values():
                if obj.kind == "group" and obj.id not in found and member in (m.lower() for m in obj.members):
                    found.append(obj.id)
                    if transitive:
                        frontier.append(obj.id.lower())
        return found

    def assignments_to(self, resource_sp_id: str) -> list[dict]:
        return [a for a in self.assignments.values() if a["resourceId"].lower() == resource_sp_id.lower()]

    def assignments_of(self, principal_id: str, resource_sp_id: str) -> list[dict]:
        """Assignments on the resource held by the principal directly or by a group it is a direct
        member of (learn.microsoft.com/entra/identity/enterprise-apps/assign-user-or-group-access-
        portal: group-based assignment covers the group's members; nested groups are not supported)."""
        holders = {principal_id.lower(), *(g.lower() for g in self.groups_of(principal_id, transitive=False))}
        return [a for a in self.assignments_to(resource_sp_id) if a["principalId"].lower() in holders]

    # -- writes ------------------------------------------------------------------------------------
    def add(self, obj: DirectoryObject) -> DirectoryObject:
        self.objects[obj.id.lower()] = obj
        return obj

    def remove(self, object_id: str) -> None:
        obj = self.objects.pop(object_id.lower(), None)
        if obj is None:
            return
        # Deleting an application deletes its service principal
        # (learn.microsoft.com/graph/api/application-delete); either takes its assignments along.
        if obj.kind == "application":
            sp = self.service_principal_for(obj.doc["appId"])
            if sp is not None:
                self.remove(sp.id)
        for key, assignment in list(self.assignments.items()):
            if object_id.lower() in (assignment["resourceId"].lower(), assignment["principalId"].lower()):
                del self.assignments[key]

    def add_user(self, display_name: str) -> DirectoryObject:
        oid = new_id()
        nickname = "".join(c for c in display_name.lower() if c.isalnum()) or "user"
        return self.add(DirectoryObject("user", {
            "id": oid, "displayName": display_name, "userPrincipalName": f"{nickname}.{oid[:4]}@{self.domain}",
            "mail": None, "givenName": None, "surname": None, "accountEnabled": True}))

    def add_group(self, display_name: str, members: list[str] | None = None) -> DirectoryObject:
        for member in members or []:
            if self.principal_type(member) is None:
                raise ValueError(f"no directory object {member}")
        return self.add(DirectoryObject("group", {
            "id": new_id(), "displayName": display_name, "securityEnabled": True, "mailEnabled": False,
            "groupTypes": [], "mailNickname": display_name.replace(" ", ""), "createdDateTime": now_iso()},
            members=[m.lower() for m in members or []]))

    def summary(self, obj: DirectoryObject) -> dict:
        out = {"kind": obj.kind, **obj.doc}
        if obj.kind in ("application", "servicePrincipal"):
            out["owners"] = list(obj.owners)
        if obj.kind == "group":
            out["members"] = list(obj.members)
        return out
