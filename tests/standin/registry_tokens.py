"""ACR's token endpoints, as a registry's login server serves them.

- `POST /oauth2/exchange` (form: grant_type=access_token, service, tenant, access_token): an
  Entra token for the registry audience becomes an ACR refresh token. This is what
  `az acr login` does; the refresh token is then the password of the user
  00000000-0000-0000-0000-000000000000.
- `/oauth2/token`: the realm of the registry's Bearer challenge. The Docker engine asks with
  `GET ?service=&scope=repository:<name>:pull,push` and Basic auth (that user + the refresh
  token); other clients `POST` a form (grant_type=refresh_token, service, scope,
  refresh_token). The answer is a registry token: a JWT signed (RS256) with a key whose
  certificate the real token-auth registry behind the login server trusts, granting only the
  actions the principal's role assignments allow on the registry.

Errors use the registry's JSON shape, `{"errors": [{"code", "message"}]}`.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from .arm import Request, Response
from .auth import normalize_audience

if TYPE_CHECKING:
    from .app import StandinApp

REGISTRY_AUDIENCE = "https://containerregistry.azure.net"
ACR_USER = "00000000-0000-0000-0000-000000000000"
ISSUER = "Azure Container Registry"
REFRESH_LIFETIME = 3 * 3600
ACCESS_LIFETIME = 75 * 60
REGISTRY_TYPE = "Microsoft.ContainerRegistry/registries"
ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments"
# What each built-in role lets a principal do on a registry's data plane.
ROLE_ACTIONS = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": {"pull", "push", "delete"},  # Owner
    "b24988ac-6180-42a0-ab88-20f7382dd24c": {"pull", "push", "delete"},  # Contributor
    "8311e382-0749-4cb8-b61a-304f252e45ec": {"pull", "push"},            # AcrPush
    "7f951dda-4ed3-4680-a7ca-43fe172d538d": {"pull"},                    # AcrPull
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": {"pull"},                    # Reader
}


def registry_error(status: int, code: str, message: str) -> Response:
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="Azure Container Registry"'
    return Response(status, {"errors": [{"code": code, "message": message}]}, headers)


def exchange(app: "StandinApp", login_server: str, req: Request) -> Response:
    form = _form(req)
    if form.get("grant_type") != "access_token":
        return registry_error(400, "UNSUPPORTED", "grant_type must be access_token.")
    if form.get("service", "").lower() != login_server:
        return registry_error(400, "INVALID_SERVICE", f"service must be {login_server}.")
    claims = app.tokens.verify(form.get("access_token", ""))
    if claims is None:
        return registry_error(401, "UNAUTHORIZED", "The access token is invalid.")
    if claims.get("exp", 0) < time.time():
        return registry_error(401, "UNAUTHORIZED", "The access token has expired.")
    if normalize_audience(str(claims.get("aud", ""))) != REGISTRY_AUDIENCE:
        return registry_error(401, "UNAUTHORIZED",
                              f"The access token has the wrong audience '{claims.get('aud')}': "
                              f"it must be issued for {REGISTRY_AUDIENCE}.")
    tenant = form.get("tenant")
    if claims.get("tid") != app.tenant_id or (tenant and tenant != claims.get("tid")):
        return registry_error(401, "UNAUTHORIZED", "The access token is from another tenant.")
    now = int(time.time())
    refresh = app.tokens.sign({"jti": uuid.uuid4().hex, "sub": claims.get("oid"), "oid": claims.get("oid"),
                               "tid": claims.get("tid"), "aud": login_server, "iss": ISSUER,
                               "grant_type": "refresh_token", "iat": now, "nbf": now,
                               "exp": now + REFRESH_LIFETIME})
    return Response(200, {"refresh_token": refresh})


def token(app: "StandinApp", front, req: Request) -> Response:
    """Grant a registry token for the requested scopes, reduced to what the principal may do."""
    if req.method == "POST":
        pairs = parse_qsl(req.body if isinstance(req.body, str) else "", keep_blank_values=True)
        form = dict(pairs)
        if form.get("grant_type") != "refresh_token":
            return registry_error(400, "UNSUPPORTED", "grant_type must be refresh_token.")
        refresh = form.get("refresh_token", "")
    else:
        pairs = parse_qsl(req.raw_query, keep_blank_values=True)
        form = dict(pairs)
        refresh = _basic_password(req.headers.get("authorization", ""))
        if refresh is None:
            return registry_error(401, "UNAUTHORIZED", "authentication required, visit https://aka.ms/acr/"
                                  "authorization for more information.")
    if form.get("service", "").lower() != front.login_server:
        return registry_error(400, "INVALID_SERVICE", f"service must be {front.login_server}.")
    claims = app.tokens.verify(refresh)
    if (claims is None or claims.get("grant_type") != "refresh_token" or claims.get("aud") != front.login_server
            or claims.get("exp", 0) < time.time()):
        return registry_error(401, "UNAUTHORIZED", "authentication required, visit https://aka.ms/acr/"
                              "authorization for more information.")
    allowed = rights(app, str(claims.get("oid", "")), front.login_server)
    access = []
    for name, value in pairs:
        if name != "scope":
            continue
        for scope in value.split(" "):
            kind, _, rest = scope.partition(":")
            repository, _, actions = rest.rpartition(":")
            granted = [a for a in actions.split(",") if a in allowed]
            if kind == "repository" and repository:
                access.append({"type": kind, "name": repository, "actions": granted})
    signed = front.sign_registry_token(subject=str(claims.get("oid")), access=access, ttl=ACCESS_LIFETIME)
    return Response(200, {"access_token": signed, "token": signed, "expires_in": ACCESS_LIFETIME})


def rights(app: "StandinApp", principal_id: str, login_server: str) -> set[str]:
    """Data-plane actions a principal has on the registries served at `login_server`: everything
    for the operator (owner of the subscription), otherwise what its role assignments grant at
    the registry or any scope above it, once they have propagated (`effective_from`)."""
    now = time.time()
    return {action for action, since in effective_from(app, principal_id, login_server).items() if since <= now}


def effective_from(app: "StandinApp", principal_id: str, login_server: str) -> dict[str, float]:
    """For each data-plane action the principal's role assignments grant on the registries at
    `login_server`, the time from which the data plane honours it: the assignment's `createdOn`
    plus the stand-in's role propagation delay (control `set_role_propagation_delay`). Azure role
    assignments take minutes to reach the data planes (Azure RBAC troubleshooting: Resource Manager
    caches, "it can sometimes take up to 30 minutes for changes to take effect", quoted in
    learn.microsoft.com/answers/questions/524792; microsoft/azure-container-apps#646: a fresh AcrPull
    fails the image pull until it has propagated). The operator,
    owner of the subscription from the start, has every action from time 0."""
    if principal_id.lower() == app.operator["principal_id"]:
        return {"pull": 0.0, "push": 0.0, "delete": 0.0}
    with app.store.lock:
        delay = float(app.store.role_propagation_delay)
        registries = [r.id.lower() for r in app.store.of_type(REGISTRY_TYPE)
                      if str(r.properties.get("loginServer", "")).lower() == login_server.lower()]
        granted: dict[str, float] = {}
        for assignment in app.store.of_type(ASSIGNMENT_TYPE):
            props = assignment.properties
            if str(props.get("principalId", "")).lower() != principal_id.lower():
                continue
            scope = str(props.get("scope", "")).lower().rstrip("/")
            if any(rid == scope or rid.startswith(scope + "/") for rid in registries):
                role = str(props.get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower()
                since = _timestamp(str(props.get("createdOn") or "")) + delay
                for action in ROLE_ACTIONS.get(role, set()):
                    granted[action] = min(granted.get(action, since), since)
    return granted


def _timestamp(iso: str) -> float:
    """Seconds since the epoch of a stand-in timestamp (`store.now_iso`); 0 when absent."""
    import calendar

    if not iso:
        return 0.0
    whole, _, fraction = iso.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float("0." + (fraction or "0"))


def sign_rs256(*, key_pem: bytes, cert_pem: bytes, claims: dict) -> str:
    """A JWT as distribution's token auth verifies it: RS256, the signing certificate in `x5c`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    header = {"alg": "RS256", "typ": "JWT", "x5c": [base64.b64encode(der).decode()]}
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    key = serialization.load_pem_private_key(key_pem, password=None)
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _form(req: Request) -> dict[str, str]:
    return dict(parse_qsl(req.body if isinstance(req.body, str) else "", keep_blank_values=True))


def _basic_password(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return None
    return password if user == ACR_USER and password else None
