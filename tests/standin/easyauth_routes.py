"""The sign-in layer's own routes under /.auth (httpSettings.routes.apiPrefix), see easyauth.py.

- `GET /.auth/login/aad[?post_login_redirect_uri=...]` → 302 to the tenant's authorize endpoint:
  the OpenID Connect implicit flow (response_type=id_token, response_mode=form_post), which is
  what Easy Auth uses when no client secret is set ("When the client secret isn't set, implicit
  flow is used and only an ID token is returned", container-apps/authentication-entra); the
  redirect URI is `<app-url>/.auth/login/aad/callback` (same page); `post_login_redirect_uri`
  from container-apps/authentication#customize-sign-in-and-sign-out.
- `POST /.auth/login/aad/callback` (form: id_token, state) → checks the id token (signature,
  lifetime, issuer, audience = client id, nonce [SPEC login.nonce.validateNonce]) and the
  authorization policy, sets the `AppServiceAuthSession` cookie (HttpOnly, Secure; the value is
  opaque, the claims stay server-side), 302 to the post-login URL. "App Service adds
  authenticated cookie to response" (app-service/overview-authentication-authorization).
- `GET /.auth/me`: the session's claims, only with login.tokenStore.enabled ("If the token store
  is enabled ... calling /.auth/me", app-service/configure-authentication-user-identities);
  404 otherwise (status unverified).
- `GET /.auth/logout[?post_logout_redirect_uri=...]`: ends the session and redirects to
  `/.auth/logout/done` by default (container-apps/authentication#sign-out-of-a-session); the
  provider-side sign-out the docs mention is not modelled.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit

from . import easyauth as ea

if TYPE_CHECKING:
    from .app import StandinApp

# The browser-binding cookie of a sign-in in progress. Easy Auth keeps its nonce in a cookie named
# "Nonce" (observed name, unverified); the stand-in requires it at the callback, so a callback
# replayed from another browser fails -- the stricter behaviour.
NONCE_COOKIE = "Nonce"
_COOKIE_ATTRS = "Path=/; Secure; HttpOnly; SameSite=None"


def handle(app: "StandinApp", cfg: ea.Settings, method: str, target: str, headers: dict, body: bytes) -> ea.Decision:
    path, _, query = target.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    route = path[len(cfg.prefix):]
    if route == "/login/aad" and method in ("GET", "HEAD"):
        decision, outcome, why, oid = _login(app, cfg, params)
    elif route == "/login/aad/callback" and method == "POST":
        decision, outcome, why, oid = _callback(app, cfg, headers, body)
    elif route == "/me" and method in ("GET", "HEAD"):
        decision, outcome, why, oid = _me(app, cfg, headers)
    elif route == "/logout" and method in ("GET", "HEAD"):
        decision, outcome, why, oid = _logout(app, cfg, headers, params)
    elif route == "/logout/done" and method in ("GET", "HEAD"):
        decision, outcome, why, oid = ea.answer(200, "You have successfully signed out."), "logout", "done", None
    else:
        decision, outcome, why, oid = ea.answer(404, "Not Found"), "auth_route", "unknown /.auth route", None
    ea.record(app, cfg, method, path, decision.status, outcome, why, oid)
    return decision


def _login(app: "StandinApp", cfg: ea.Settings, params: dict):
    if not cfg.aad:
        return ea.answer(404, "The Microsoft identity provider is not configured."), "login", "no provider", None
    if not cfg.issuer.startswith(app.base_url.rstrip("/") + "/"):
        # Easy Auth reads <openIdIssuer>/.well-known/openid-configuration; only the stand-in's own
        # login endpoint can answer here, so any other issuer fails like unreachable metadata.
        return (ea.answer(500, f"Could not load the OpenID Connect metadata of '{cfg.issuer}'."), "login",
                "issuer is not the stand-in's login endpoint", None)
    redirect = params.get("post_login_redirect_uri", "/")
    if not _allowed_redirect(cfg, redirect):
        return ea.answer(400, "The post-login redirect URL is not allowed."), "login", "redirect not allowed", None
    state, nonce, binding = (secrets.token_urlsafe(24) for _ in range(3))
    st = ea.state(app)
    with st.lock:
        now = time.time()
        for key in [k for k, v in st.logins.items() if v["expires"] <= now]:
            del st.logins[key]
        st.logins[state] = {"nonce": nonce, "binding": binding, "redirect": redirect, "app_id": cfg.app_id.lower(),
                            "expires": now + cfg.nonce_seconds}
    query = urlencode({"client_id": cfg.client_id, "response_type": "id_token", "response_mode": "form_post",
                       "redirect_uri": f"https://{cfg.host}{cfg.prefix}/login/aad/callback",
                       "scope": "openid profile email", "nonce": nonce, "state": state})
    headers = {"Location": f"{cfg.authority}/oauth2/v2.0/authorize?{query}",
               "Set-Cookie": f"{NONCE_COOKIE}={binding}; Max-Age={int(cfg.nonce_seconds)}; {_COOKIE_ATTRS}"}
    return ea.answer(302, "", headers), "login", "redirect to the identity provider", None


def _callback(app: "StandinApp", cfg: ea.Settings, headers: dict, body: bytes):
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if not cfg.aad:
        return ea.answer(404, "The Microsoft identity provider is not configured."), "callback", "no provider", None
    if form.get("error"):
        return ea.answer(401, f"Sign-in failed: {form['error']}."), "callback", f"provider error {form['error']}", None
    st = ea.state(app)
    with st.lock:
        login = st.logins.pop(form.get("state", ""), None)
    binding = ea.cookies(headers).get(NONCE_COOKIE)
    if login is None or login["expires"] <= time.time() or login["app_id"] != cfg.app_id.lower():
        return ea.unauthorized(cfg, "The sign-in request is unknown or expired."), "callback", "unknown state", None
    if binding != login["binding"]:
        return (ea.unauthorized(cfg, "The sign-in was started in another browser."), "callback",
                "nonce cookie missing or different", None)
    claims, why = ea.validate_token(app, cfg, form.get("id_token", ""), audiences={cfg.client_id},
                                    nonce=login["nonce"] if cfg.validate_nonce else None)
    if claims is None:
        return ea.unauthorized(cfg, "The id token is not valid.", invalid=True), "callback", why, None
    why = ea.authorize(cfg, claims)
    if why:
        return (ea.answer(403, "You do not have permission to view this directory or page."), "callback", why,
                claims.get("oid"))
    value = secrets.token_urlsafe(32)
    expires = min(float(claims["exp"]), time.time() + cfg.cookie_seconds)
    with st.lock:
        st.sessions[value] = {"app_id": cfg.app_id.lower(), "client_id": cfg.client_id, "claims": claims,
                              "expires": expires}
    cookies = [f"{ea.SESSION_COOKIE}={value}; {_COOKIE_ATTRS}", f"{NONCE_COOKIE}=; Max-Age=0; {_COOKIE_ATTRS}"]
    return (ea.answer(302, "", {"Location": login["redirect"], "Set-Cookie": cookies}), "callback", "signed in",
            claims.get("oid"))


def _me(app: "StandinApp", cfg: ea.Settings, headers: dict):
    if not cfg.token_store:
        return ea.answer(404, "The token store is not enabled."), "me", "token store disabled", None
    session = ea._session(app, cfg, headers)
    if session is None:
        return ea.unauthorized(cfg, "You are not signed in."), "me", "no session", None
    claims = session["claims"]
    entry = {"provider_name": "aad", "user_id": ea.principal_headers(claims).get("X-MS-CLIENT-PRINCIPAL-NAME", ""),
             "user_claims": [{"typ": k, "val": str(v)} for k, v in claims.items()],
             "expires_on": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(session["expires"]))}
    decision = ea.answer(200, json.dumps([entry]), {"Content-Type": "application/json; charset=utf-8"})
    return decision, "me", "session", claims.get("oid")


def _logout(app: "StandinApp", cfg: ea.Settings, headers: dict, params: dict):
    target = params.get("post_logout_redirect_uri", f"{cfg.prefix}/logout/done")
    if not _allowed_redirect(cfg, target):
        return ea.answer(400, "The post-logout redirect URL is not allowed."), "logout", "redirect not allowed", None
    value = ea.cookies(headers).get(ea.SESSION_COOKIE)
    st = ea.state(app)
    with st.lock:
        session = st.sessions.pop(value, None) if value else None
    headers = {"Location": target, "Set-Cookie": f"{ea.SESSION_COOKIE}=; Max-Age=0; {_COOKIE_ATTRS}"}
    oid = session["claims"].get("oid") if session else None
    return ea.answer(302, "", headers), "logout", "signed out", oid


def _allowed_redirect(cfg: ea.Settings, url: str) -> bool:
    """Relative paths and URLs on the app's own host are always allowed; other hosts only when
    listed in login.allowedExternalRedirectUrls, "the query string part of the URL is ignored"
    [SPEC Login.allowedExternalRedirectUrls]."""
    if url.startswith("/") and not url.startswith(("//", "/\\")):
        return True
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.netloc.lower() == cfg.host.lower():
        return True
    bare = url.split("?", 1)[0]
    return any(bare == allowed.split("?", 1)[0] for allowed in cfg.external_redirects)
