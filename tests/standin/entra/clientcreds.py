"""Entra's OAuth 2.0 client credentials flow for a service principal with a client secret, and
what MSAL asks before it (msal 1.39, as azure-identity 1.27's ClientSecretCredential drives it
with `authority=<login endpoint>/<tenant>`, msal_credentials.py `_get_app`):

1. instance discovery, because the stand-in's login host is not one of MSAL's
   WELL_KNOWN_AUTHORITY_HOSTS (msal/authority.py `_initialize_entra_authority`): `GET
   https://login.microsoftonline.com/common/discovery/instance?authorization_endpoint=
   <login>/<tenant>/oauth2/v2.0/authorize&api-version=1.0` (`_instance_discovery`); MSAL reads
   `tenant_discovery_endpoint`, or refuses on `"error": "invalid_instance"`. The request goes to
   Microsoft's host, so it arrives here through the stand-in's HTTPS proxy (`resolve`). Microsoft
   knows only its own clouds' hosts; the stand-in plays the cloud whose login host it is, so it
   knows its own host and answers invalid_instance (AADSTS50049) for any other;
2. tenant discovery: `GET <login>/<tenant>/v2.0/.well-known/openid-configuration` (`tenant_discovery`:
   MSAL reads issuer, authorization_endpoint, token_endpoint, device_authorization_endpoint; a
   4xx is "OIDC Discovery failed");
3. `POST <token_endpoint>` form-encoded: grant_type=client_credentials, client_id, client_secret,
   scope (RFC 6749 4.4; learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).

Error answers have the shape of that page's "Error response": error, error_description (the
AADSTS text, then "\\r\\nTrace ID: ...\\r\\nCorrelation ID: ...\\r\\nTimestamp: ..."), error_codes,
timestamp, trace_id, correlation_id, error_uri — as Entra sent them for AADSTS7000215 with HTTP 401
`invalid_client` (verbatim in Azure/sap-automation#418 and OfficeDev/microsoft-365-agents-toolkit#8621).
AADSTS700016's text: see signin.py; its `unauthorized_client` with HTTP 400 is as commonly
reported, not verified against Entra here. The request log keeps the form with the secret masked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from ..arm import Request, Response
from ..proxy import VirtualHost
from .directory import Directory

if TYPE_CHECKING:
    from ..app import StandinApp

TOKEN = re.compile(r"^/([^/]+)/oauth2/v2\.0/token/?$", re.IGNORECASE)
OPENID = re.compile(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration/?$", re.IGNORECASE)
DISCOVERY_HOST = "login.microsoftonline.com"   # msal authority.py WORLD_WIDE
DISCOVERY_PATH = "/common/discovery/instance"
TOKEN_LIFETIME = 3599                          # Entra's expires_in for app tokens (about an hour)


class Refused(Exception):
    def __init__(self, status: int, error: str, code: int, text: str) -> None:
        super().__init__(text)
        self.status, self.error, self.code, self.text = status, error, code, text

    def response(self) -> Response:
        now = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        return Response(self.status, {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.text}\r\nTrace ID: {trace}\r\n"
                                 f"Correlation ID: {correlation}\r\nTimestamp: {now}",
            "error_codes": [self.code], "timestamp": now, "trace_id": trace, "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}"},
            {"Cache-Control": "no-store", "Pragma": "no-cache"})


class ClientCredentials:
    def __init__(self, app: "StandinApp", directory: Directory) -> None:
        self.app = app
        self.directory = directory
        self.reset()

    def reset(self) -> None:
        self.secrets: dict[str, list[bytes]] = {}   # lower appId -> sha256 of each secret

    # -- control -----------------------------------------------------------------------------------
    def add_secret(self, app_id: str) -> str:
        """A new client secret for the application (Entra's are 40 characters; only its value's
        hash is kept, as Entra shows a secret only once)."""
        secret = secrets.token_urlsafe(30)[:40]
        self.secrets.setdefault(app_id.lower(), []).append(hashlib.sha256(secret.encode()).digest())
        return secret

    # -- MSAL's requests ---------------------------------------------------------------------------
    def known_tenant(self, tenant: str) -> bool:
        return tenant.lower() in (self.directory.tenant_id, self.directory.domain)

    def openid_configuration(self, tenant: str) -> Response:
        if not self.known_tenant(tenant):
            return unknown_tenant(tenant).response()
        base = f"{self.app.base_url.rstrip('/')}/{self.directory.tenant_id}"
        return Response(200, {
            "token_endpoint": f"{base}/oauth2/v2.0/token", "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode", "issuer": f"{base}/v2.0",
            "jwks_uri": f"{base}/discovery/v2.0/keys", "token_endpoint_auth_methods_supported":
                ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "response_modes_supported": ["query", "fragment", "form_post"], "tenant_region_scope": None})

    def token(self, req: Request, tenant: str) -> Response:
        form = dict(parse_qsl(req.body)) if isinstance(req.body, str) else {}
        if "client_secret" in form:
            req.body = {**form, "client_secret": "***"}   # what the request log keeps
        try:
            return self.issue(form, tenant)
        except Refused as refused:
            return refused.response()

    def issue(self, form: dict, tenant: str) -> Response:
        d = self.directory
        if not self.known_tenant(tenant):
            raise unknown_tenant(tenant)
        for name in ("grant_type", "client_id", "scope"):
            if not form.get(name):
                raise Refused(400, "invalid_request", 900144,
                              f"The request body must contain the following parameter: '{name}'.")
        if form["grant_type"] != "client_credentials":
            raise Refused(400, "unsupported_grant_type", 70003,   # a stand-in limit: only this grant
                          f"The app requested an unsupported grant type '{form['grant_type']}'.")
        client_id = form["client_id"]
        sp = d.service_principal_for(client_id)
        if sp is None or sp.doc.get("servicePrincipalType") == "ManagedIdentity":
            raise Refused(400, "unauthorized_client", 700016,
                          f"Application with identifier '{client_id}' was not found in the directory "
                          f"'{d.domain}'. This can happen if the application has not been installed by the "
                          "administrator of the tenant or consented to by any user in the tenant. You may have "
                          "sent your authentication request to the wrong tenant.")
        secret = form.get("client_secret")
        if not secret:
            raise Refused(401, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is "
                                                          "required for the 'client_credentials' grant type.")
        digest = hashlib.sha256(secret.encode()).digest()
        if not any(hmac.compare_digest(digest, known) for known in self.secrets.get(client_id.lower(), [])):
            raise Refused(401, "invalid_client", 7000215,
                          "Invalid client secret provided. Ensure the secret being sent in the request is the "
                          f"client secret value, not the client secret ID, for a secret added to app '{client_id}'.")
        scopes = form["scope"].split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            # The client credentials flow takes one resource's "/.default" (the flow's page, "scope").
            raise Refused(400, "invalid_scope", 1002012, f"The provided value for scope {form['scope']} is not "
                                                         "valid. Client credential flows must have a scope value "
                                                         "with /.default suffixed to the resource identifier "
                                                         "(application ID URI).")
        resource = scopes[0][: -len(".default")]
        extra = self.app.tokens.resource_check(resource, sp.id, client_id) if self.app.tokens.resource_check else {}
        if isinstance(extra, str):
            code = int(re.match(r"AADSTS(\d+)", extra).group(1))
            raise Refused(400, "invalid_resource" if code == 500011 else "invalid_grant", code,
                          extra.split(": ", 1)[1])
        token, _ = self.app.tokens.issue(resource, oid=sp.id, appid=client_id, lifetime=TOKEN_LIFETIME,
                                         claims=extra)
        return Response(200, {"token_type": "Bearer", "expires_in": TOKEN_LIFETIME,
                              "ext_expires_in": TOKEN_LIFETIME, "access_token": token},
                        {"Cache-Control": "no-store", "Pragma": "no-cache"})

    # -- instance discovery on Microsoft's host, through the proxy -----------------------------------
    def resolve(self, host: str) -> VirtualHost | None:
        if host != DISCOVERY_HOST:
            return None
        return VirtualHost(handle=lambda method, target, headers, body: self._discovery(method, target, headers))

    def _discovery(self, method: str, target: str, headers: dict):
        answer = self.app.serve_host(DISCOVERY_HOST, method, target, headers, None, self._instance)
        if isinstance(answer, Response):   # a fault answered
            return answer.status, json.dumps(answer.body or {}).encode(), {"Content-Type": "application/json"}
        return answer

    def _instance(self, req: Request) -> tuple[int, bytes, dict]:
        if req.path.rstrip("/").lower() != DISCOVERY_PATH or req.method != "GET":
            return 404, b"", {}
        endpoint = urlsplit(req.query.get("authorization_endpoint", ""))
        tenant = endpoint.path.strip("/").split("/", 1)[0]
        ours = urlsplit(self.app.base_url)
        # The alias groups Microsoft's answer lists (MSAL reads them in `_get_authority_aliases`,
        # asking with Microsoft's own "https://login.microsoftonline.com/common/oauth2/authorize"):
        # the public cloud's hosts (msal authority.py WELL_KNOWN_AUTHORITY_HOSTS), and the stand-in's.
        metadata = [{"preferred_network": DISCOVERY_HOST, "preferred_cache": "login.windows.net",
                     "aliases": [DISCOVERY_HOST, "login.windows.net", "login.microsoft.com", "sts.windows.net"]},
                    {"preferred_network": ours.hostname, "preferred_cache": ours.hostname, "aliases": [ours.hostname]}]
        if endpoint.scheme == "https" and endpoint.hostname == DISCOVERY_HOST and tenant:
            base = f"https://{DISCOVERY_HOST}/{tenant}"
        elif (endpoint.scheme, endpoint.hostname) == (ours.scheme, ours.hostname) and tenant:
            # MSAL sends the authority's hostname without its port (authority.py `canonicalize`
            # returns `hostname`) and follows tenant_discovery_endpoint as given: that names the port.
            base = f"{ours.scheme}://{ours.netloc}/{tenant}"
        else:
            refused = Refused(400, "invalid_instance", 50049, "Unknown or invalid instance.").response()
            return 400, json.dumps(refused.body).encode(), {"Content-Type": "application/json; charset=utf-8"}
        body = {"tenant_discovery_endpoint": f"{base}/v2.0/.well-known/openid-configuration", "api-version": "1.1",
                "metadata": metadata}
        return 200, json.dumps(body).encode(), {"Content-Type": "application/json; charset=utf-8"}


def unknown_tenant(tenant: str) -> Refused:
    return Refused(400, "invalid_request", 90002, f"Tenant '{tenant}' not found. Check to make sure you have the "
                                                  "correct tenant ID and are signing into the correct cloud.")
