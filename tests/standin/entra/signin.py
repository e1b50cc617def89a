"""The Entra side of the OpenID Connect implicit flow Easy Auth uses:
`GET <stand-in>/{tenant}/oauth2/v2.0/authorize?client_id&redirect_uri&response_type=id_token
&response_mode=form_post&scope=openid ...&nonce&state`.

The browser is taken as already signed in (the operator, or the user `set_browser_user` names),
so the answer is at once what Entra answers after the sign-in screen:
- success: the OAuth 2.0 Form Post Response Mode page, a form (method=post, action=redirect_uri)
  with hidden `id_token` and `state` that submits itself (openid.net/specs/oauth-v2-form-post-
  response-mode-1_0.html, section 5 example; Entra's page has the same form);
- refusals before the redirect URI is trusted, and the user-assignment refusal, are Entra's
  error page carrying the AADSTS code (Entra shows AADSTS50105 on its own page: "Sorry, but
  we're having trouble signing you in", e.g. pozi docs quoted in the report); 400 here;
- AADSTS700054 (ID tokens not enabled) goes back to the redirect URI as a form post with `error`
  and `error_description` (RFC 6749 4.2.2.1; Static Web Apps users see it only on the
  `.auth/login/aad/callback` request: ITCardo/cardo-intel README). The `error` value is unverified.

AADSTS texts: learn.microsoft.com/entra/identity-platform/reference-error-codes and
login.microsoftonline.com/error?code=N, as quoted in public issues: 700016 (azure-sdk fixtures,
e.g. "Application with identifier '...' was not found in the directory '...'"), 50011 ("The
redirect URI '...' specified in the request does not match the redirect URIs configured for the
application '...'"), 700054, 50105, 900144 (a missing parameter), 90002 (unknown tenant).

id_token claims: learn.microsoft.com/entra/identity-platform/id-token-claims-reference (aud = the
client id, iss <login>/<tid>/v2.0, sub pairwise per application, nonce echoed, ver 2.0).
"""

from __future__ import annotations

import hashlib
import html
import re
import time
from typing import TYPE_CHECKING

from ..arm import Request, Response
from .directory import Directory, DirectoryObject
from .tokens import group_claim

if TYPE_CHECKING:
    from ..auth import TokenService

AUTHORIZE = re.compile(r"^/([^/]+)/oauth2/v2\.0/authorize/?$", re.IGNORECASE)
ID_TOKEN_LIFETIME = 3600   # id tokens live an hour (id-token-claims-reference, "exp")


class SignInRefused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.text = f"AADSTS{code}: {message}"


class SignIn:
    def __init__(self, directory: Directory, tokens: "TokenService", base_url: str) -> None:
        self.directory = directory
        self.tokens = tokens
        self.base_url = base_url.rstrip("/")

    def handle(self, req: Request, tenant: str) -> Response:
        try:
            return self.authorize(req, tenant)
        except SignInRefused as refused:
            return error_page(refused.text)

    def authorize(self, req: Request, tenant: str) -> Response:
        d = self.directory
        q = req.query
        if tenant.lower() not in (d.tenant_id, d.domain):
            raise SignInRefused(90002, f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant "
                                       "ID and are signing into the correct cloud.")
        for name in ("client_id", "redirect_uri", "response_type", "scope"):
            if not q.get(name):
                raise SignInRefused(900144, f"The request body must contain the following parameter: '{name}'.")
        client_id = q["client_id"]
        application = next((a for a in d.of_kind("application") if a.doc["appId"].lower() == client_id.lower()), None)
        sp = d.service_principal_for(client_id) if application is not None else None
        if application is None or sp is None:
            # With no service principal the application is "not installed" in the tenant: the
            # text of 700016 says so. (A home-tenant owner could have one created by consenting;
            # the stand-in takes the stricter answer.)
            raise SignInRefused(700016, f"Application with identifier '{client_id}' was not found in the directory "
                                        f"'{d.domain}'. This can happen if the application has not been installed by "
                                        "the administrator of the tenant or consented to by any user in the tenant. "
                                        "You may have sent your authentication request to the wrong tenant.")
        redirect_uri = q["redirect_uri"]
        if redirect_uri not in ((application.doc.get("web") or {}).get("redirectUris") or []):
            raise SignInRefused(50011, f"The redirect URI '{redirect_uri}' specified in the request does not match the "
                                       f"redirect URIs configured for the application '{client_id}'. Make sure the "
                                       "redirect URI sent in the request matches one added to your application in "
                                       "the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to "
                                       "learn more about how to fix this.")
        if q["response_type"].split() != ["id_token"] or q.get("response_mode", "fragment") != "form_post":
            # A stand-in limit, not Entra's: it serves only the implicit id_token flow by form post.
            raise SignInRefused(900144, "The stand-in serves only response_type=id_token with "
                                        "response_mode=form_post.")
        if "openid" not in q["scope"].split():
            raise SignInRefused(900144, "The request body must contain the following parameter: 'scope' "
                                        "with 'openid'.")   # wording unverified
        if not q.get("nonce"):
            raise SignInRefused(900144, "The request body must contain the following parameter: 'nonce'.")  # unverified
        state = q.get("state")
        if not ((application.doc.get("web") or {}).get("implicitGrantSettings") or {}).get("enableIdTokenIssuance"):
            return form_post(redirect_uri, {
                "error": "unsupported_response_type",
                "error_description": "AADSTS700054: response_type 'id_token' is not enabled for the application.",
                "state": state})
        user = self.signed_in_user()
        if sp.doc.get("appRoleAssignmentRequired") and not d.assignments_of(user.id, sp.id):
            raise SignInRefused(50105, f"Your administrator has configured the application {sp.doc.get('displayName')} "
                                       f"('{client_id}') to block users unless they are specifically granted "
                                       "('assigned') access to the application. The signed in user "
                                       f"'{user.doc.get('userPrincipalName')}' is blocked because they are not a "
                                       "direct member of a group with access, nor had access directly assigned by an "
                                       "administrator. Please contact your administrator to assign access to this "
                                       "application.")
        return form_post(redirect_uri, {"id_token": self.id_token(application, user, q["nonce"]), "state": state})

    def signed_in_user(self) -> DirectoryObject:
        chosen = self.directory.browser_user
        user = self.directory.get(chosen, "user") if chosen else None
        return user or self.directory.operator()

    def id_token(self, application: DirectoryObject, user: DirectoryObject, nonce: str) -> str:
        d = self.directory
        now = int(time.time())
        client_id = application.doc["appId"]
        # sub is pairwise: the same user has a different sub in each application.
        sub = hashlib.sha256(f"{user.id}:{client_id}".encode()).hexdigest()[:43]
        claims = {"aud": client_id, "iss": f"{self.base_url}/{d.tenant_id}/v2.0", "tid": d.tenant_id,
                  "oid": user.id, "sub": sub, "nonce": nonce, "name": user.doc.get("displayName"),
                  "preferred_username": user.doc.get("userPrincipalName"), "ver": "2.0",
                  "iat": now, "nbf": now, "exp": now + ID_TOKEN_LIFETIME}
        groups = group_claim(d, application.doc, user.id)
        if groups:
            claims["groups"] = groups
        return self.tokens.sign(claims)


def form_post(action: str, fields: dict) -> Response:
    inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(str(v))}" />'
                     for k, v in fields.items() if v is not None)
    page = (f'<html><head><title>Working...</title></head><body><form method="POST" name="hiddenform" '
            f'action="{html.escape(action)}">{inputs}<noscript><p>Script is disabled. Click Submit to continue.</p>'
            '<input type="submit" value="Submit" /></noscript></form>'
            '<script language="javascript">document.forms[0].submit();</script></body></html>')
    return Response(200, page.encode(), {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"})


def error_page(text: str) -> Response:
    page = ("<html><head><title>Sign in to your account</title></head><body>"
            "<h1>Sorry, but we're having trouble signing you in.</h1>"
            f"<p>{html.escape(text)}</p></body></html>")
    return Response(400, page.encode(), {"Content-Type": "text/html; charset=utf-8"})
