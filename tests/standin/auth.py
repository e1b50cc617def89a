"""Tokens: the App Service managed-identity endpoint and ARM's bearer-token check (Graph's is
entra/graph.py; tokens for an application's own scope follow entra/tokens.py).

Tokens are JWT-shaped and HMAC-signed with a per-process key, so a token the stand-in did not
issue (or one edited by hand) is refused like a forged token would be. Claims follow Entra's
access tokens: aud, iss, tid, oid, appid, xms_mirid, iat, nbf, exp.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Callable

from .arm import ArmError, Request, Response

MI_API_VERSION = "2019-08-01"
TOKEN_LIFETIME = 24 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def normalize_audience(aud: str) -> str:
    # Entra issues tokens for "https://management.core.windows.net/" and for the same resource
    # without the slash (a scope of ".../.default" vs "...//.default"); ARM accepts both.
    return aud.rstrip("/").lower()


class TokenService:
    def __init__(self, tenant_id: str, audiences: list[str], login_endpoint: str):
        self.tenant_id = tenant_id
        self.audiences = audiences
        self.login_endpoint = login_endpoint
        self.identity_header = secrets.token_urlsafe(24)
        self._key = secrets.token_bytes(32)
        # Lifetime of tokens the identity endpoint issues (set_token_lifetime: short-lived
        # tokens let tests run past an expiry in seconds).
        self.lifetime = TOKEN_LIFETIME
        # Entra's rules for a resource that is not one of Microsoft's services (entra/tokens.py):
        # (resource, oid, client id) -> claims to add, or the AADSTS message refusing the token.
        self.resource_check: Callable[[str, str, str], dict | str] | None = None

    # -- issuing ---------------------------------------------------------------------------
    def issue(self, resource: str, *, oid: str, appid: str, mirid: str = "",
              lifetime: int = TOKEN_LIFETIME, claims: dict | None = None) -> tuple[str, int]:
        """`claims` override or add claims (an application's token: roles, groups, v2 aud/iss)."""
        now = int(time.time())
        body = {"aud": resource, "iss": f"https://sts.windows.net/{self.tenant_id}/",
                "tid": self.tenant_id, "oid": oid, "sub": oid, "appid": appid, "idtyp": "app",
                "iat": now, "nbf": now, "exp": now + lifetime}
        if mirid:
            body["xms_mirid"] = mirid
        body.update(claims or {})
        if body.get("ver") == "2.0" and "appid" in body:
            body["azp"] = body.pop("appid")   # v2 tokens name the client in azp (access-token-claims-reference)
        return self.sign(body), body["exp"]

    def sign(self, claims: dict) -> str:
        """A JWT with these claims under the stand-in's key (ACR refresh tokens use it too)."""
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(claims).encode())
        signature = _b64(hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        return f"{header}.{payload}.{signature}"

    def verify(self, token: str) -> dict | None:
        """The claims of a token the stand-in signed, or None (forged, edited, not a JWT)."""
        return self._verify(token)

    def managed_identity(self, request: Request, find_identity) -> Response:
        """App Service managed identity protocol, as azure-identity/MSAL call it.

        `find_identity(client_id=..., object_id=..., resource_id=...)` returns the identity's
        (principal id, client id, resource id) or None; with no selector the host's own
        (system-assigned) identity answers.
        """
        if request.headers.get("x-identity-header") != self.identity_header:
            return Response(401, {"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or invalid."})
        if request.query.get("api-version") != MI_API_VERSION:
            return Response(400, {"statusCode": 400,
                                  "message": f"api-version must be {MI_API_VERSION}."})
        resource = request.query.get("resource")
        if not resource:
            return Response(400, {"statusCode": 400, "message": "resource is required."})
        found = find_identity(client_id=request.query.get("client_id"),
                              object_id=request.query.get("object_id") or request.query.get("principal_id"),
                              resource_id=request.query.get("mi_res_id"))
        if found is None:
            return Response(400, {"statusCode": 400, "message":
                                  "No User Assigned or Delegated Managed Identity found for specified "
                                  "ClientId/ResourceId/PrincipalId."})
        oid, client_id, mirid = found
        extra = self.resource_check(resource, oid, client_id) if self.resource_check else {}
        if isinstance(extra, str):
            # App Service's endpoint answers {"statusCode", "message", "correlationId"} (MSAL.NET's
            # ManagedIdentityErrorResponse; msal-python reads statusCode and message). Whether it
            # relays Entra's AADSTS text is unverified: msal-python notes that "empirically, wrong
            # resource ends up with a vague statusCode=500". The stand-in relays it with 400.
            return Response(400, {"statusCode": 400, "message": extra, "correlationId": str(uuid.uuid4())})
        token, exp = self.issue(resource, oid=oid, appid=client_id, mirid=mirid, lifetime=self.lifetime,
                                claims=extra)
        return Response(200, {"access_token": token, "expires_on": str(exp), "resource": resource,
                              "token_type": "Bearer", "client_id": client_id})

    # -- checking --------------------------------------------------------------------------
    def authenticate(self, request: Request) -> dict:
        """Return the token's claims, or raise the 401 ARM would answer."""
        header = request.headers.get("authorization", "")
        if not header:
            raise self._unauthorized("AuthenticationFailed",
                                     "Authentication failed. The 'Authorization' header is missing.",
                                     "The authentication failed because of missing 'Authorization' header.")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise self._unauthorized("AuthenticationFailed",
                                     "Authentication failed. The 'Authorization' header is provided in an invalid format.",
                                     "The authentication failed because of invalid 'Authorization' header.")
        claims = self._verify(token.strip())
        if claims is None:
            raise self._unauthorized("InvalidAuthenticationToken", "The access token is invalid.",
                                     "The access token is invalid.")
        if claims.get("exp", 0) < time.time():
            raise self._unauthorized("ExpiredAuthenticationToken",
                                     "The access token expiry UTC time is earlier than current UTC time.",
                                     "The access token has expired.")
        allowed = {normalize_audience(a) for a in self.audiences}
        if normalize_audience(str(claims.get("aud", ""))) not in allowed:
            listed = ",".join(f"'{a}'" for a in self.audiences)
            raise self._unauthorized(
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource '{claims.get('aud')}'. "
                f"It should exactly match with one of the allowed audiences {listed}.",
                "The access token has an invalid audience.")
        if claims.get("tid") != self.tenant_id:
            raise self._unauthorized("InvalidAuthenticationTokenTenant",
                                     f"The access token is from the wrong issuer '{claims.get('iss')}'.",
                                     "The access token is from the wrong tenant.")
        return claims

    def _verify(self, token: str) -> dict | None:
        parts = token.split(".")
        if len(parts) != 3:
            return None
        expected = _b64(hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, parts[2]):
            return None
        try:
            return json.loads(_unb64(parts[1]))
        except ValueError:
            return None

    def _unauthorized(self, code: str, message: str, description: str) -> ArmError:
        challenge = (f'Bearer authorization_uri="{self.login_endpoint.rstrip("/")}/{self.tenant_id}", '
                     f'error="invalid_token", error_description="{description}"')
        return ArmError(401, code, message, headers={"WWW-Authenticate": challenge})
