"""Container Apps built-in authentication ("Easy Auth"): the sign-in layer in front of an app.

When the app's `authConfigs/current` has `platform.enabled` true, every request on the app's
FQDN passes this layer before the app (built-in answer or a real backend) sees it: "the
authentication and authorization middleware component ... runs as a sidecar container on each
replica ... your application handles each incoming HTTP request after it passes through the
security layer" (https://learn.microsoft.com/azure/container-apps/authentication#feature-architecture).
The proxy (proxy.py) parses each request and asks `decide()`; the `/.auth/*` routes are in
easyauth_routes.py. Decisions are kept (never a token) for `auth_requests()`.

Sources (Microsoft Learn; the doc sources are MicrosoftDocs/azure-docs):
- [CA]  container-apps/authentication: /.auth routes, Require authentication → browser redirected
        to /.auth/login/<provider>, "native mobile app" → 401, or 401/403 for all; X-MS-CLIENT-
        PRINCIPAL-* headers, "External requests aren't allowed to set these headers".
- [CAE] container-apps/authentication-entra: issuer `<endpoint>/<tenant>/v2.0` (v1: without
        /v2.0); "The configured Application (client) ID is *always* implicitly considered to be
        an allowed audience"; without a client secret the implicit flow returns only an id token.
- [AAD] app-service/configure-authentication-provider-aad#use-a-built-in-authorization-policy:
        allowedApplications (appid/azp), allowedPrincipals.identities (oid), AND between them,
        OR inside allowedPrincipals, "Requests that fail these built-in checks are given an HTTP
        403 Forbidden response"; a non-tenant issuer is multi-tenant: no issuer/tenant check.
- [UID] app-service/configure-authentication-user-identities: X-MS-CLIENT-PRINCIPAL(-ID/-NAME/
        -IDP) and the X-MS-CLIENT-PRINCIPAL JSON shape.
- [SPEC] azure-rest-api-specs Microsoft.App/ContainerApps/stable/2025-07-01/AuthConfigs.json.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from .app import StandinApp

AUTH_TYPE = "Microsoft.App/containerApps/authConfigs"
APP_TYPE = "Microsoft.App/containerApps"
SESSION_COOKIE = "AppServiceAuthSession"
# Headers only the layer may set [CA][UID]; X-MS-TOKEN-* carry token-store tokens (App Service
# "Retrieve tokens in app code"), so a client must not be able to inject those either.
_RESERVED = ("x-ms-client-principal", "x-ms-token-")
V1_ISSUER = "https://sts.windows.net/{tid}/"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass
class Settings:
    """One app's auth config, read for one request."""
    app_id: str
    host: str
    action: str
    prefix: str
    excluded: list[str]
    aad: bool                     # the Microsoft provider is configured and enabled
    client_id: str
    issuer: str                   # openIdIssuer without a trailing slash
    tenant: str | None            # None: multi-tenant issuer, no issuer/tenant check [AAD]
    audiences: set[str]
    allowed_apps: list[str]
    identities: list[str]
    groups: list[str]
    www_authenticate: bool
    token_store: bool
    external_redirects: list[str]
    validate_nonce: bool
    nonce_seconds: float
    cookie_seconds: float

    @property
    def authority(self) -> str:
        return self.issuer[:-len("/v2.0")] if self.issuer.endswith("/v2.0") else self.issuer


@dataclass
class Decision:
    """What the layer does with a request: forward it (adding `add` headers) or answer it."""
    forward: bool
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    add: dict = field(default_factory=dict)


@dataclass
class State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: dict = field(default_factory=dict)   # cookie value -> {"app_id", "client_id", "claims", "expires"}
    logins: dict = field(default_factory=dict)     # state -> {"nonce", "cookie", "redirect", "expires", ...}
    log: list = field(default_factory=list)


_STATE_LOCK = threading.Lock()


def state(app: "StandinApp") -> State:
    with _STATE_LOCK:
        if not hasattr(app, "easyauth"):
            app.easyauth = State()
        return app.easyauth


def reset(app: "StandinApp") -> None:
    with _STATE_LOCK:
        app.easyauth = State()


def decisions(app: "StandinApp", app_id: str | None = None) -> list[dict]:
    st = state(app)
    with st.lock:
        return [dict(e) for e in st.log if app_id is None or e["app_id"].lower() == app_id.lower()]


# -- configuration -------------------------------------------------------------------------------
def settings_for(app: "StandinApp", host: str) -> Settings | None:
    """The auth settings of the app served on `host`, or None when built-in auth is off there."""
    with app.store.lock:
        app.store.settle()
        for res in app.store.of_type(APP_TYPE):
            ingress = res.properties.get("configuration", {}).get("ingress") or {}
            if str(ingress.get("fqdn", "")).lower() == host.lower():
                auth = app.store.get(res.id + "/authConfigs/current")
                if auth is None or not (auth.properties.get("platform") or {}).get("enabled"):
                    return None
                return _parse(res.id, host, json.loads(json.dumps(auth.properties)))
    return None


def _parse(app_id: str, host: str, props: dict) -> Settings:
    gv = props.get("globalValidation") or {}
    aad = (props.get("identityProviders") or {}).get("azureActiveDirectory") or {}
    reg, val, login = aad.get("registration") or {}, aad.get("validation") or {}, props.get("login") or {}
    issuer = str(reg.get("openIdIssuer") or "").rstrip("/")
    parts = issuer.split("/")
    # `<endpoint>/<tenant>/v2.0` or `<endpoint>/<tenant>` [CAE]; anything else is multi-tenant [AAD].
    tenant = next((p for p in reversed(parts[3:]) if _GUID.match(p)), None)
    policy = val.get("defaultAuthorizationPolicy") or {}
    principals = policy.get("allowedPrincipals") or {}
    client_id = str(reg.get("clientId") or "")
    nonce = login.get("nonce") or {}
    return Settings(
        app_id=app_id, host=host,
        # The spec gives no default; the portal's default is to redirect [CAE step "default
        # selections redirect all requests"], so an unset action redirects.
        action=gv.get("unauthenticatedClientAction") or "RedirectToLoginPage",
        prefix=((props.get("httpSettings") or {}).get("routes") or {}).get("apiPrefix") or "/.auth",
        excluded=[str(p) for p in gv.get("excludedPaths") or []],
        aad=bool(reg) and aad.get("enabled", True) is not False and bool(client_id),
        client_id=client_id, issuer=issuer, tenant=tenant,
        audiences={client_id, *[str(a) for a in val.get("allowedAudiences") or []]} - {""},
        allowed_apps=[str(a) for a in policy.get("allowedApplications") or []],
        identities=[str(i).lower() for i in principals.get("identities") or []],
        groups=[str(g).lower() for g in principals.get("groups") or []],
        www_authenticate=not (aad.get("login") or {}).get("disableWWWAuthenticate", False),
        token_store=bool((login.get("tokenStore") or {}).get("enabled", False)),
        external_redirects=[str(u) for u in login.get("allowedExternalRedirectUrls") or []],
        validate_nonce=nonce.get("validateNonce", True) is not False,
        nonce_seconds=_timespan(nonce.get("nonceExpirationInterval"), 300),
        cookie_seconds=_timespan((login.get("cookieExpiration") or {}).get("timeToExpiration"), 8 * 3600))


def _timespan(text: Any, default: float) -> float:
    """A .NET TimeSpan such as "08:00:00" (the portal's cookie default; unverified default for the
    nonce: 5 minutes is taken, the shorter plausible value)."""
    match = re.fullmatch(r"(?:(\d+)\.)?(\d+):(\d+):(\d+)", str(text or ""))
    if not match:
        return default
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


# -- tokens and the authorization policy --------------------------------------------------------------
def validate_token(app: "StandinApp", cfg: Settings, token: str, *, audiences: set[str],
                   nonce: str | None = None) -> tuple[dict | None, str]:
    """The token's claims, or None and why not. Checks signature, lifetime, issuer, tenant, audience."""
    claims = app.tokens.verify(token)
    if claims is None:
        return None, "the token's signature is invalid"
    now = time.time()
    # No clock-skew allowance: the stricter reading (Easy Auth's own skew is not documented).
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= now:
        return None, "the token has expired"
    if isinstance(claims.get("nbf"), (int, float)) and claims["nbf"] > now:
        return None, "the token is not valid yet"
    if cfg.tenant is not None:
        # The v2 issuer is openIdIssuer itself; Entra's v1 access tokens (requestedAccessTokenVersion
        # null/1) carry https://sts.windows.net/<tid>/ for the same tenant. Accepting both is
        # Easy Auth's observed behaviour for v1 tokens (unverified in Microsoft's docs).
        allowed = {cfg.issuer, V1_ISSUER.format(tid=cfg.tenant).rstrip("/")}
        if str(claims.get("iss", "")).rstrip("/") not in allowed:
            return None, f"the token's issuer '{claims.get('iss')}' is not allowed"
        if str(claims.get("tid", "")).lower() != cfg.tenant.lower():
            return None, "the token is from another tenant"
    if str(claims.get("aud", "")) not in audiences:   # exact match: the stricter reading
        return None, f"the token's audience '{claims.get('aud')}' is not allowed"
    if nonce is not None and claims.get("nonce") != nonce:
        return None, "the id token's nonce does not match the sign-in request"
    return claims, ""


def authorize(cfg: Settings, claims: dict) -> str:
    """'' when the built-in authorization policy lets the caller in, else why not [AAD]."""
    if cfg.allowed_apps:
        caller = claims.get("appid") or claims.get("azp")
        if caller not in cfg.allowed_apps:
            return f"the client application '{caller}' is not in allowedApplications"
    if cfg.identities or cfg.groups:
        # identities: the oid claim [AAD]. groups: the spec's AllowedPrincipals.groups, checked
        # against the token's `groups` claim (not in the docs; unverified).
        oid = str(claims.get("oid", "")).lower()
        groups = {str(g).lower() for g in claims.get("groups") or []}
        if oid not in cfg.identities and not groups & set(cfg.groups):
            return f"the principal '{oid or '?'}' is not in allowedPrincipals"
    return ""


def principal_headers(claims: dict) -> dict:
    """The headers the layer adds for an authenticated caller [UID]. -ID is the object id (Entra's
    identifier for the caller; which claim Easy Auth uses is unverified); -NAME is left out when
    the token names nobody (an app's token)."""
    headers = {"X-MS-CLIENT-PRINCIPAL-IDP": "aad"}
    if claims.get("oid"):
        headers["X-MS-CLIENT-PRINCIPAL-ID"] = str(claims["oid"])
    name = next((claims[k] for k in ("preferred_username", "upn", "unique_name", "email", "name") if claims.get(k)),
                None)
    if name:
        headers["X-MS-CLIENT-PRINCIPAL-NAME"] = str(name)
    values = []
    for key, value in claims.items():
        for item in value if isinstance(value, list) else [value]:
            values.append({"typ": key, "val": str(item)})
    principal = {"auth_typ": "aad", "claims": values,
                 "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                 "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"}
    headers["X-MS-CLIENT-PRINCIPAL"] = base64.b64encode(json.dumps(principal).encode()).decode()
    return headers


def is_reserved(header: str) -> bool:
    return header.lower().startswith(_RESERVED)


# -- the decision ------------------------------------------------------------------------------------
def decide(app: "StandinApp", cfg: Settings, method: str, target: str, headers: dict) -> Decision:
    """Decide about a request that is not for the layer's own /.auth routes (headers: lower-cased)."""
    path = target.split("?", 1)[0]
    if path in cfg.excluded:
        # Excluded paths skip authentication altogether [SPEC GlobalValidation.excludedPaths].
        # Exact, case-sensitive match (wildcards are not documented for Container Apps): stricter.
        return _log(app, cfg, method, path, Decision(True), "excluded", "excluded path")
    token = _bearer(headers)
    if token is not None:
        if not cfg.aad:
            return _log(app, cfg, method, path, unauthorized(cfg, "no identity provider is configured"),
                        "invalid_token", "no identity provider is configured")
        claims, why = validate_token(app, cfg, token, audiences=cfg.audiences)
        if claims is None:
            return _log(app, cfg, method, path, unauthorized(cfg, why, invalid=True), "invalid_token", why)
        return _authorized(app, cfg, method, path, claims, "bearer")
    session = _session(app, cfg, headers)
    if session is not None:
        return _authorized(app, cfg, method, path, session["claims"], "session")
    return unauthenticated(app, cfg, method, target, headers)


def _authorized(app, cfg: Settings, method: str, path: str, claims: dict, how: str) -> Decision:
    why = authorize(cfg, claims)
    if why:
        return _log(app, cfg, method, path, answer(403, "You do not have permission to view this directory or page."),
                    "forbidden", why, claims.get("oid"))
    return _log(app, cfg, method, path, Decision(True, add=principal_headers(claims)), "authenticated", how,
                claims.get("oid"))


def unauthenticated(app, cfg: Settings, method: str, target: str, headers: dict) -> Decision:
    """No credentials: the configured unauthenticatedClientAction [SPEC][CA]."""
    path = target.split("?", 1)[0]
    if cfg.action == "AllowAnonymous":
        return _log(app, cfg, method, path, Decision(True), "anonymous", "AllowAnonymous")
    if cfg.action == "Return403":
        return _log(app, cfg, method, path, answer(403, "You do not have permission to view this directory or page."),
                    "unauthenticated", "Return403")
    if cfg.action == "RedirectToLoginPage" and cfg.aad and is_browser(method, headers):
        location = f"{cfg.prefix}/login/aad?post_login_redirect_uri={quote(target, safe='')}"
        return _log(app, cfg, method, path, answer(302, "", {"Location": location}), "unauthenticated",
                    "RedirectToLoginPage")
    reason = "Return401" if cfg.action == "Return401" else "RedirectToLoginPage (not a browser navigation)"
    return _log(app, cfg, method, path, unauthorized(cfg, "You do not have permission to view this directory or page."),
                "unauthenticated", reason)


def is_browser(method: str, headers: dict) -> bool:
    """Whether a redirect to sign-in suits the client. Microsoft documents only that "a browser
    client is redirected" and that a native app's anonymous request gets 401 [CA], not how the two
    are told apart. The stand-in redirects only what is plainly a browser navigation -- GET/HEAD
    accepting text/html and not marked `X-Requested-With: XMLHttpRequest` -- and answers 401 to the
    rest (unverified; the stricter reading for API clients)."""
    if method not in ("GET", "HEAD"):
        return False
    if headers.get("x-requested-with", "").lower() == "xmlhttprequest":
        return False
    return "text/html" in headers.get("accept", "").lower()


def unauthorized(cfg: Settings, message: str, *, invalid: bool = False) -> Decision:
    # The challenge's exact form is not documented; this is the form Easy Auth is commonly seen to
    # send (realm = host, the tenant's authorize endpoint, the client id) -- unverified. The spec's
    # login.disableWWWAuthenticate omits it.
    extra = {}
    if cfg.www_authenticate and cfg.aad:
        challenge = (f'Bearer realm="{cfg.host}" authorization_uri="{cfg.authority}/oauth2/v2.0/authorize" '
                     f'resource_id="{cfg.client_id}"')
        if invalid:
            challenge += ' error="invalid_token"'
        extra["WWW-Authenticate"] = challenge
    return answer(401, message, extra)


def answer(status: int, text: str, headers: dict | None = None) -> Decision:
    return Decision(False, status, {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}, text.encode())


def _bearer(headers: dict) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def cookies(headers: dict) -> dict:
    jar = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed Cookie header counts as no cookie
        return {}
    return {k: m.value for k, m in jar.items()}


def _session(app: "StandinApp", cfg: Settings, headers: dict) -> dict | None:
    value = cookies(headers).get(SESSION_COOKIE)
    if not value:
        return None
    st = state(app)
    with st.lock:
        session = st.sessions.get(value)
        if session is None:
            return None
        # A session belongs to one app and registration, and ends with its id token or the cookie
        # lifetime, whichever comes first.
        if session["app_id"] != cfg.app_id.lower() or session["client_id"] != cfg.client_id \
                or session["expires"] <= time.time():
            st.sessions.pop(value, None)
            return None
        return session


def _log(app, cfg: Settings, method: str, path: str, decision: Decision, outcome: str, reason: str,
         oid: Any = None) -> Decision:
    record(app, cfg, method, path, decision.status if not decision.forward else None, outcome, reason, oid)
    return decision


def record(app, cfg: Settings, method: str, path: str, status: int | None, outcome: str, reason: str,
           oid: Any = None) -> None:
    """Keep a decision: never the token or the query string (which may carry one)."""
    st = state(app)
    with st.lock:
        st.log.append({"time": time.time(), "app_id": cfg.app_id, "host": cfg.host, "method": method,
                       "path": path, "outcome": outcome, "status": status, "reason": reason,
                       "principal": str(oid) if oid else None})
