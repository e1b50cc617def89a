"""Microsoft Entra's directory side: Microsoft Graph v1.0 (graph.py), the sign-in page of the
OpenID Connect implicit flow (signin.py) and the rules for tokens of an application's own scope
(tokens.py), over one directory (directory.py).

`Entra.handle(req)` answers the requests that are Entra's (`/v1.0/...`,
`/{tenant}/oauth2/v2.0/authorize`, and for the client credentials flow (clientcreds.py)
`/{tenant}/oauth2/v2.0/token` and `/{tenant}/v2.0/.well-known/openid-configuration`) and returns
None for every other path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..arm import Request, Response
from .clientcreds import OPENID, TOKEN, ClientCredentials
from .directory import DEFAULT_ACCESS, Directory, DirectoryObject, new_id
from .graph import PREFIX, Graph
from .signin import AUTHORIZE, SignIn
from .tokens import check_resource

if TYPE_CHECKING:
    from ..app import StandinApp

__all__ = ["Entra", "DEFAULT_ACCESS"]


class Entra:
    def __init__(self, app: "StandinApp") -> None:
        self.app = app
        self.directory = Directory(app)
        self.graph = Graph(self.directory, app.tokens, lambda: app.base_url + "/")
        self.signin = SignIn(self.directory, app.tokens, app.base_url)
        self.client_credentials = ClientCredentials(app, self.directory)
        app.hosts.append(self.client_credentials.resolve)   # MSAL's instance discovery (clientcreds.py)
        app.tokens.resource_check = self.check_resource

    def handle(self, req: Request) -> Response | None:
        if req.path.startswith(PREFIX):
            with self.app.store.lock:
                return self.graph.handle(req)
        m = AUTHORIZE.match(req.path)
        if m is not None and req.method in ("GET", "HEAD"):
            with self.app.store.lock:
                return self.signin.handle(req, m.group(1))
        m = TOKEN.match(req.path)
        if m is not None and req.method == "POST":
            with self.app.store.lock:
                return self.client_credentials.token(req, m.group(1))
        m = OPENID.match(req.path)
        if m is not None and req.method == "GET":
            return self.client_credentials.openid_configuration(m.group(1))
        return None

    def check_resource(self, resource: str, oid: str, client_id: str) -> dict | str:
        with self.app.store.lock:
            return check_resource(self.app, self.directory, resource, oid, client_id)

    def reset(self) -> None:
        self.directory.reset()
        self.client_credentials.reset()

    # -- control operations (control.py) ---------------------------------------------------------
    def register_application(self, display_name: str, identifier_uris=None, redirect_uris=None, id_tokens=True,
                             assignment_required=False) -> dict:
        """An application and service principal an administrator made: nobody in the stand-in owns them."""
        from ..store import now_iso
        from .appmodel import merge, new_application

        d = self.directory
        doc = new_application(new_id(), new_id(), now_iso())
        doc = merge(doc, {"displayName": display_name,
                          "web": {"redirectUris": list(redirect_uris or []),
                                  "implicitGrantSettings": {"enableIdTokenIssuance": bool(id_tokens)}}})
        doc["identifierUris"] = [u.replace("{appId}", doc["appId"]) for u in identifier_uris or []]
        application = d.add(DirectoryObject("application", doc))
        sp = d.add(DirectoryObject("servicePrincipal", {
            "id": new_id(), "appId": doc["appId"], "displayName": display_name, "appDisplayName": display_name,
            "servicePrincipalType": "Application", "accountEnabled": True,
            "appRoleAssignmentRequired": bool(assignment_required), "tags": [], "notes": None, "description": None,
            "appOwnerOrganizationId": d.tenant_id, "signInAudience": doc["signInAudience"], "appRoles": [],
            "oauth2PermissionScopes": [], "servicePrincipalNames": [doc["appId"], *doc["identifierUris"]],
            "replyUrls": list(redirect_uris or []), "alternativeNames": [], "deletedDateTime": None}))
        return {"id": application.id, "appId": doc["appId"], "servicePrincipalId": sp.id}

    def add_service_principal(self, display_name: str) -> dict:
        """An application with a service principal and one client secret, as `az ad sp
        create-for-rbac` makes (it returns appId, password, tenant)."""
        made = self.register_application(display_name)
        return {"client_id": made["appId"], "secret": self.client_credentials.add_secret(made["appId"]),
                "object_id": made["servicePrincipalId"], "tenant_id": self.directory.tenant_id}

    def add_directory_object(self, kind: str, display_name: str, members=None) -> str:
        if kind == "user":
            if members:
                raise ValueError("a user has no members")
            return self.directory.add_user(display_name).id
        if kind == "group":
            return self.directory.add_group(display_name, members).id
        raise ValueError("kind must be user or group")

    def objects(self, kind: str | None = None) -> list[dict]:
        return [self.directory.summary(o) for o in self.directory.all_objects() if kind is None or o.kind == kind]

    def set_browser_user(self, principal_id: str | None) -> None:
        if principal_id is not None and self.directory.get(principal_id, "user") is None:
            raise ValueError(f"no user {principal_id} in the directory")
        self.directory.browser_user = principal_id
