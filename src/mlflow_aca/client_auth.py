"""`MLFLOW_TRACKING_AUTH=mlflow-aca`: the MLflow client signs in to the deployment with Entra.

MLflow loads this module through the `mlflow.request_auth_provider` entry point when its
request-auth registry is first imported (mlflow/tracking/request_auth/registry.py:35-38, imported
lazily by mlflow/utils/rest_utils.py:293 on the first request with MLFLOW_TRACKING_AUTH set), and
calls `get_auth()` for every request (rest_utils.py:292-295), REST calls and the artifact proxy's
uploads and downloads alike (store/artifact/http_artifact_repo.py:96, 121, 148 go through
`http_request`). So `get_auth()` only reads the scope and returns the process's one auth object;
nothing Azure is imported until a request needs a token.

The token is cached here, not left to the credential: AzureCliCredential runs `az` for every
call, and managed identity asks its endpoint whenever MSAL's cache thinks the token is within
5 minutes of expiry (msal/managed_identity.py:326).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking.request_auth.abstract_request_auth_provider import RequestAuthProvider

# The names `mlflow-aca env` prints for clients (clientenv.py: one source for both).
from mlflow_aca.azure import client_credential
from mlflow_aca.clientenv import AUTH_PROVIDER as NAME
from mlflow_aca.clientenv import SCOPE_VARIABLE
# azure-core's BearerTokenCredentialPolicy renews a token without refresh_on 5 minutes before it
# expires (azure/core/pipeline/policies/_authentication.py:40, 68-70); MSAL's managed-identity
# cache also treats a token with less than 5 minutes left as expired, so asking then gets a new one.
REFRESH_MARGIN = 300.0
# When a renewal fails while the cached token still has this long to live, keep using it and ask
# again after RETRY_FAILED_REFRESH seconds instead of failing the request.
STILL_USABLE = 60.0
RETRY_FAILED_REFRESH = 30.0

_HINT = ("sign in with `az login`, or set AZURE_CLIENT_ID to the client id of the managed identity "
         "to use (or AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_FEDERATED_TOKEN_FILE or "
         "AZURE_CLIENT_SECRET for a service principal); the identity must be one of the "
         "deployment's auth_allowed_principals")
_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# A resource (api://<app id>, https://host/path, or a bare application id) + "/.default", made of
# the characters azure-identity accepts in a scope (azure/identity/_internal/utils.py validate_scope).
_SCOPE = re.compile(rf"^(?P<resource>(?:[a-zA-Z][a-zA-Z0-9+.-]*://[0-9a-zA-Z\-_.:/]+|{_GUID}))/\.default$")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_SECRET_VARIABLES = ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_PASSWORD",
                     "IDENTITY_HEADER", "MSI_SECRET")

_logger = logging.getLogger(__name__)


class SignInError(MlflowException):
    """No token for the deployment: the message says what to do and never holds a token."""


class EntraRequestAuthProvider(RequestAuthProvider):
    def get_name(self) -> str:
        return NAME

    def get_auth(self) -> BearerAuth:
        return auth_for(scope_from(os.environ))


def scope_from(environ: Any) -> str:
    """The deployment's scope from MLFLOW_ACA_AUTH_SCOPE, or a SignInError naming the fix."""
    value = (environ.get(SCOPE_VARIABLE) or "").strip()
    if not value:
        raise SignInError(f"MLFLOW_TRACKING_AUTH=mlflow-aca needs {SCOPE_VARIABLE}: set it to the "
                          "deployment's scope, api://<application id>/.default")
    if not _SCOPE.match(value):
        shown = value if len(value) <= 120 else value[:117] + "..."
        raise SignInError(f"{SCOPE_VARIABLE}={shown!r} is not a token scope: expected "
                          "api://<application id>/.default (the resource followed by /.default)")
    return value


def resource_of(scope: str) -> str:
    """The token audience a scope asks for: the scope without `/.default`."""
    return scope[: -len("/.default")]


# --- the cache ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Cached:
    token: str
    expires_on: float
    refresh_at: float


class TokenCache:
    """One scope's token, renewed before it expires; safe to share between threads.

    `credential` is called once, on the first request, and must return an object with
    azure-core's `get_token_info(scope)` (azure/core/credentials.py AccessTokenInfo)."""

    def __init__(self, scope: str, credential: Callable[[], Any], clock: Callable[[], float] = time.time):
        self.scope = scope
        self._make_credential = credential
        self._credential: Any = None
        self._clock = clock
        self._cached: _Cached | None = None
        self._lock = threading.Lock()

    def token(self) -> tuple[str, bool]:
        """The token to send, and whether it was fetched for this call (not from the cache)."""
        with self._lock:
            cached, now = self._cached, self._clock()
            if cached is not None and now < cached.refresh_at:
                return cached.token, False
            try:
                return self._fetch(now).token, True
            except SignInError:
                if cached is None or now >= cached.expires_on - STILL_USABLE:
                    raise
                # The credential failed before the token ran out (az not answering, the identity
                # endpoint restarting): carry on with it and ask again a little later.
                _logger.warning("mlflow-aca: could not renew the token for %s; using the current one "
                                "(valid for %d more seconds)", self.scope, cached.expires_on - now)
                self._cached = _Cached(cached.token, cached.expires_on,
                                       min(now + RETRY_FAILED_REFRESH, cached.expires_on - STILL_USABLE))
                return cached.token, False

    def renew(self, rejected: str) -> str | None:
        """A token to replace `rejected` (which the server refused), or None when the credential
        has no other one to give."""
        with self._lock:
            if self._cached is not None and self._cached.token != rejected:
                return self._cached.token  # another request renewed it meanwhile
            fresh = self._fetch(self._clock())
            return fresh.token if fresh.token != rejected else None

    def _fetch(self, now: float) -> _Cached:
        if self._credential is None:
            self._credential = self._make_credential()
        try:
            info = self._credential.get_token_info(self.scope)
        except Exception as error:  # noqa: BLE001 - only azure-core's errors are translated
            if not client_credential.is_azure_error(error):
                raise
            # `from None`: the credential's exception is quoted (cleaned) here, and a chained
            # traceback would print it again unfiltered.
            raise SignInError(f"mlflow-aca could not get a token for {self.scope}: {_HINT}.\n"
                              f"{type(error).__name__}: {clean(str(error))}") from None
        cached = _Cached(info.token, float(info.expires_on), refresh_time(info, now))
        self._cached = cached
        _logger.debug("mlflow-aca: token for %s valid until %s, renewed from %s",
                      self.scope, cached.expires_on, cached.refresh_at)
        return cached


def refresh_time(info: Any, now: float) -> float:
    """When to ask for the next token: at the credential's refresh_on if it gives one (MSAL sets
    it to half the lifetime of long-lived tokens), else REFRESH_MARGIN before expiry; never later
    than half-way through what is left, so a short-lived token is still reused but not sent stale."""
    expires_on = float(info.expires_on)
    at = expires_on - min(REFRESH_MARGIN, max(expires_on - now, 0.0) / 2)
    refresh_on = getattr(info, "refresh_on", None)
    # A refresh_on already past (a token served from the credential's cache after a failed
    # renewal) would mean asking on every request until expiry; expiry decides then.
    if refresh_on and now < refresh_on < at:
        at = float(refresh_on)
    return at


def clean(text: str) -> str:
    """Error text without anything token-shaped or the value of a secret variable."""
    text = _JWT.sub("***", text)
    for name in _SECRET_VARIABLES:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


# --- requests --------------------------------------------------------------------------------------
class BearerAuth(requests.auth.AuthBase):
    """Adds `Authorization: Bearer <token>`; on a 401 to a cached token, gets another token once
    and resends the request once, when its body can be sent again."""

    def __init__(self, cache: TokenCache):
        self.cache = cache

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token, fresh = self.cache.token()
        request.headers["Authorization"] = f"Bearer {token}"
        replayable, position = _body_position(request.body)
        if not fresh and replayable:
            # requests calls response hooks with the adapter's send() arguments, and a hook may
            # return another response (requests/sessions.py Session.send -> dispatch_hook; the same
            # pattern as requests.auth.HTTPDigestAuth.handle_401).
            request.register_hook("response", functools.partial(self._on_401, token=token, position=position))
        return request

    def _on_401(self, response: requests.Response, *, token: str, position: int | None,
                **send_kwargs: Any) -> requests.Response:
        sent = response.request
        # Only the request this auth signed: requests drops Authorization on a redirect to another
        # host (Session.rebuild_auth), and a token must not follow it there.
        if response.status_code != 401 or sent.headers.get("Authorization") != f"Bearer {token}":
            return response
        fresh = self.cache.renew(token)
        if fresh is None:
            return response
        _logger.info("mlflow-aca: the server refused the cached token (401); retrying once with a new one")
        response.content  # noqa: B018 - read the body so the connection can be reused
        response.close()
        if position is not None:
            sent.body.seek(position)
        retry = sent.copy()
        retry.headers["Authorization"] = f"Bearer {fresh}"
        second = response.connection.send(retry, **send_kwargs)
        second.history.append(response)
        second.request = retry
        return second


def _body_position(body: Any) -> tuple[bool, int | None]:
    """Whether a body can be sent again, and where a file body starts."""
    if body is None or isinstance(body, (bytes, str)):
        return True, None
    if hasattr(body, "seek") and hasattr(body, "tell"):
        try:
            return True, body.tell()
        except OSError:
            return False, None
    return False, None  # a generator or iterator: read once


# --- one of each per process -------------------------------------------------------------------------
_state_lock = threading.Lock()
_auths: dict[str, BearerAuth] = {}
_credential: Any = None


def auth_for(scope: str) -> BearerAuth:
    with _state_lock:
        auth = _auths.get(scope)
        if auth is None:
            auth = _auths[scope] = BearerAuth(TokenCache(scope, default_credential))
        return auth


def default_credential() -> Any:
    """The process's DefaultAzureCredential, made on first use (az login, environment service
    principal, workload identity, managed identity...; the interactive browser stays excluded)."""
    global _credential
    with _state_lock:
        if _credential is None:
            _credential = client_credential.default_credential()
        return _credential


def _forget_after_fork() -> None:
    # A forked child must not share the parent's locks (possibly held at fork time) or the
    # credential's connection pool.
    global _state_lock, _credential
    _state_lock = threading.Lock()
    _auths.clear()
    _credential = None


os.register_at_fork(after_in_child=_forget_after_fork)
