"""Signing in to a registry's data plane with Entra, the way `az acr login` does, and asking the
registry's HTTP API whether a tag is already there.

An Entra token for the registry audience is exchanged at `https://<login server>/oauth2/exchange`
for an ACR refresh token. That refresh token is the password of the fixed user
00000000-0000-0000-0000-000000000000: the Docker engine takes it per request (`auth_config`),
and `/oauth2/token` trades it for short-lived access tokens scoped to one repository. No admin
user, no `docker login`, nothing written to the Docker config.

Plain HTTPS through `requests`, so REQUESTS_CA_BUNDLE and HTTPS_PROXY/NO_PROXY apply as they do
to every other call the tool makes. Every token is registered with the redaction filter the
moment it exists.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

from mlflow_aca.azure.session import AzureSession
from mlflow_aca.distribution import MANIFEST_TYPES, json_object
from mlflow_aca.errors import OperationError
from mlflow_aca.redaction import register_secret

ACR_USER = "00000000-0000-0000-0000-000000000000"
TIMEOUT = 30
# The codes a failed sign-in or lookup raises (see _call).
CHECK_FAILURES = frozenset({"RegistrySignInFailed", "RegistryAccessDenied", "RegistryUnreachable",
                            "RegistryUnavailable"})
# Answers that say the registry (or a gateway before it) timed out, throttled or failed, not that it
# refused: the status codes azure-core's RetryPolicy retries (_RETRY_CODES: 408, 429, 500, 502, 503,
# 504). Retried a few times, then reported as unavailable, never as access denied.
TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
ATTEMPTS = 3
BACKOFF = 0.5  # seconds before the second attempt, doubled for the next; Retry-After wins (capped)
DENIED_HINT = ("The signed-in identity needs AcrPush (or Contributor) on the registry to push, and "
               "AcrPull to read; check the credential (`az login`, AZURE_CLIENT_ID, ...).")


@dataclass(frozen=True)
class RegistryLogin:
    login_server: str
    refresh_token: str = field(repr=False)

    def auth_config(self) -> dict[str, str]:
        """The docker SDK's per-request credentials for this registry."""
        return {"username": ACR_USER, "password": self.refresh_token, "serveraddress": self.login_server}


def sign_in(session: AzureSession, login_server: str) -> RegistryLogin:
    """Exchange an Entra token from the session's credential for the registry's refresh token."""
    entra_token = session.token(session.cloud.registry_scope)
    register_secret(entra_token)
    form = {"grant_type": "access_token", "service": login_server, "access_token": entra_token}
    tenant = _claim(entra_token, "tid")
    if tenant:
        form["tenant"] = tenant
    answer = _call("POST", f"https://{login_server}/oauth2/exchange", f"sign in to the registry {login_server}",
                   data=form, hint="The registry refused the Entra token. " + DENIED_HINT,
                   code="RegistrySignInFailed")
    refresh = json_object(answer).get("refresh_token")
    if not refresh:
        raise OperationError(f"The registry {login_server} answered the token exchange without a refresh token.",
                             code="RegistrySignInFailed")
    register_secret(refresh)
    return RegistryLogin(login_server, refresh)


def access_token(login: RegistryLogin, scope: str) -> str:
    """A registry access token for `scope` (e.g. "repository:mlflow-server:pull")."""
    answer = _call("POST", f"https://{login.login_server}/oauth2/token",
                   f"get a registry token for {scope}",
                   data={"grant_type": "refresh_token", "service": login.login_server, "scope": scope,
                         "refresh_token": login.refresh_token},
                   hint=DENIED_HINT, code="RegistryAccessDenied")
    token = json_object(answer).get("access_token")
    if not token:
        raise OperationError(f"The registry {login.login_server} granted no token for {scope}.",
                             code="RegistryAccessDenied", hint=DENIED_HINT)
    register_secret(token)
    return token


def manifest_digest(login: RegistryLogin, repository: str, tag: str) -> str | None:
    """The digest the registry holds for `repository:tag`, or None when it has no such tag."""
    token = access_token(login, f"repository:{repository}:pull")
    answer = _call("HEAD", f"https://{login.login_server}/v2/{repository}/manifests/{tag}",
                   f"look up {repository}:{tag} in {login.login_server}",
                   headers={"Authorization": f"Bearer {token}", "Accept": MANIFEST_TYPES},
                   hint=DENIED_HINT, code="RegistryAccessDenied", absent_ok=True)
    if answer.status_code == 404:
        return None
    return answer.headers.get("Docker-Content-Digest")


def _call(method: str, url: str, action: str, *, hint: str, code: str, absent_ok: bool = False,
          **kwargs: Any) -> Any:
    for attempt in range(1, ATTEMPTS + 1):
        response = _send(method, url, action, **kwargs)
        if response.ok or (absent_ok and response.status_code == 404):
            return response
        if response.status_code not in TRANSIENT or attempt == ATTEMPTS:
            break
        time.sleep(_backoff(response, attempt))
    registry_code, message = _registry_error(response)
    if response.status_code in TRANSIENT:
        # A gateway's 502 or a throttled request says nothing about the identity's rights.
        raise OperationError(f"The registry failed to {action}: {message} (HTTP {response.status_code}, "
                             f"{registry_code}; {ATTEMPTS} attempts).", code="RegistryUnavailable",
                             hint="The registry or a gateway before it is failing, not refusing: rerun in a "
                             "minute (reruns converge).")
    raise OperationError(f"Could not {action}: {message} (HTTP {response.status_code}, {registry_code}).",
                         code=code, hint=hint)


def _send(method: str, url: str, action: str, **kwargs: Any) -> Any:
    """One request; a failure to connect (or to verify TLS) raised as RegistryUnreachable."""
    import requests  # deferred: only registry work needs it

    try:
        return requests.request(method, url, timeout=TIMEOUT, **kwargs)
    except requests.exceptions.SSLError as exc:
        raise OperationError(f"TLS verification failed to {action}: {exc}", code="RegistryUnreachable",
                             hint="If the registry is reached through a private CA, point REQUESTS_CA_BUNDLE "
                             "at its bundle.") from None
    except requests.RequestException as exc:
        raise OperationError(f"Could not reach the registry to {action}: {exc}", code="RegistryUnreachable",
                             hint="Check the network (and HTTPS_PROXY/NO_PROXY); reruns converge.") from None


def _backoff(response: Any, attempt: int) -> float:
    """Seconds before the next attempt: the answer's Retry-After (in seconds, capped), else a doubling backoff."""
    try:
        return min(float(response.headers.get("Retry-After", "")), 10.0)
    except ValueError:
        return BACKOFF * 2 ** (attempt - 1)


def _registry_error(response: Any) -> tuple[str, str]:
    """The registry's `{"errors": [{code, message}]}`, or ARM's `{"error": {code, message}}`."""
    body = json_object(response)
    errors = body.get("errors")
    error = errors[0] if isinstance(errors, list) and errors else body.get("error")
    if isinstance(error, dict):
        return str(error.get("code") or response.status_code), str(error.get("message") or response.reason)
    return f"HTTP{response.status_code}", response.reason or "no details"


def _claim(jwt: str, name: str) -> str | None:
    """A claim of a JWT, read without verifying it (the issuer checks it; we only route by it)."""
    try:
        payload = jwt.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get(name)
    except (IndexError, ValueError, AttributeError):
        return None
