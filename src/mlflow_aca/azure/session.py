"""One authenticated connection to a cloud and subscription, with SDK clients built lazily and
cached per service."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from mlflow_aca.cloud import Cloud


class AzureSession:
    """Credential + cloud + subscription. Clients point at the cloud's Resource Manager with the
    cloud's token audience, so a custom cloud needs no code path of its own."""

    def __init__(self, cloud: Cloud, subscription_id: str, *, poll_interval: float = 5.0,
                 credential: Any = None) -> None:
        self.cloud = cloud
        self.subscription_id = subscription_id
        self.poll_interval = poll_interval
        self._credential = credential
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        # Called before every write this session sends (management PUT/PATCH/DELETE and POST
        # actions that are not reads, Graph writes): the run lease (lease.py) holds writes here
        # until it is confirmed, and raises when the deployment is busy. None: writes go at once.
        self.write_gate: Callable[[], None] | None = None

    def before_write(self) -> None:
        gate = self.write_gate
        if gate is not None:
            gate()

    @property
    def credential(self) -> Any:
        with self._lock:
            if self._credential is None:
                from azure.identity import DefaultAzureCredential

                watch = _TokenAnswers()
                self._credential = _WatchedCredential(
                    DefaultAzureCredential(authority=self.cloud.authority_host, raw_response_hook=watch.seen),
                    watch)
            return self._credential

    def token(self, scope: str) -> str:
        from mlflow_aca.azure.errors import translate_errors

        with translate_errors("get an access token"):
            return self.credential.get_token(scope).token

    def client(self, name: str) -> Any:
        """A management client by service name, created once per session."""
        with self._lock:
            if name in self._clients:
                return self._clients[name]
        factory = _FACTORIES[name]
        credential = self.credential
        built = factory()(
            credential,
            self.subscription_id,
            base_url=self.cloud.resource_manager,
            credential_scopes=[self.cloud.arm_scope],
            polling_interval=self.poll_interval,
            per_call_policies=[_repeatable_posts(), _gated_writes(self)],
        )
        with self._lock:
            return self._clients.setdefault(name, built)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
            credential = self._credential
        for client in clients:
            client.close()
        if credential is not None and hasattr(credential, "close"):
            credential.close()


# azure-core's RetryPolicy rides out a dropped connection, a 408/429 or a 5xx only for the methods of
# its allowlist (HEAD GET PUT DELETE OPTIONS TRACE, azure/core/pipeline/policies/_retry.py); a POST
# that lost its connection fails at once. These POST actions read (list*, sharedKeys, name checks)
# or start a job whose run is idempotent (the migration: Alembic applies only missing revisions,
# resources/job.py), so they are retried as a GET would be. scheduleRun is not: a second build.
REPEATABLE_POSTS = frozenset({"listsecrets", "sharedkeys", "listkeys", "listcredentials", "start",
                              "checknameavailability", "listbuildsourceuploadurl", "listlogsasurl"})
RETRY_METHODS = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})


def _repeatable_posts() -> Any:
    """A per-call policy (it runs before the retry policy: azure-core PipelineClient) that lets the
    retry policy repeat the POSTs above. `retry_on_methods` is the retry policy's per-request
    option (RetryPolicy.configure_retries; azure-identity sets it the same way for its token POSTs)."""
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class RepeatablePosts(SansIOHTTPPolicy):
        def on_request(self, request: Any) -> None:
            http = request.http_request
            action = http.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].lower()
            if http.method.upper() == "POST" and action in REPEATABLE_POSTS:
                request.context.options.setdefault("retry_on_methods", RETRY_METHODS)

    return RepeatablePosts()


# The POST actions above that only read (every one but a job's start): not held by the write gate.
READ_POSTS = REPEATABLE_POSTS - {"start"}


def _gated_writes(session: AzureSession) -> Any:
    """A per-call policy that holds each write until the session's write gate lets it go (it runs
    once per request, before the retry policy, so a retried write is not held twice)."""
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class GatedWrites(SansIOHTTPPolicy):
        def on_request(self, request: Any) -> None:
            http = request.http_request
            method = http.method.upper()
            action = http.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].lower()
            if method in ("PUT", "PATCH", "DELETE") or (method == "POST" and action not in READ_POSTS):
                session.before_write()

    return GatedWrites()


class _TokenAnswers:
    """The token endpoints' failing answers seen by this thread during its current token request.

    DefaultAzureCredential reports every failure as "failed to retrieve a token from the included
    credentials": a managed-identity endpoint answering 500 comes out as the App Service
    credential being "not found in environment" (azure-identity 1.27, msal_managed_identity_client),
    which reads like a missing `az login`. The HTTP answers themselves say what happened; azure-core
    hands each one to `raw_response_hook` (CustomHookPolicy, in every credential's pipeline)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def reset(self) -> None:
        self._local.failed = None

    def seen(self, response: Any) -> None:
        status = response.http_response.status_code
        # 5xx and throttling: the token service failed; 4xx answers are about the identity itself.
        if status >= 500 or status == 429:
            url = response.http_request.url.split("?", 1)[0]  # the query names the resource, no secret
            self._local.failed = (status, url)

    def failed(self) -> tuple[int, str] | None:
        return getattr(self._local, "failed", None)


class _WatchedCredential:
    """The session's credential: DefaultAzureCredential, whose failure is reported as the token
    service's own when an endpoint answered with a server error (TokenServiceError)."""

    def __init__(self, inner: Any, watch: _TokenAnswers) -> None:
        self._inner = inner
        self._watch = watch

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return self._watched(lambda: self._inner.get_token(*scopes, **kwargs))

    def get_token_info(self, *scopes: str, **kwargs: Any) -> Any:
        return self._watched(lambda: self._inner.get_token_info(*scopes, **kwargs))

    def close(self) -> None:
        self._inner.close()

    def _watched(self, call: Callable[[], Any]) -> Any:
        from azure.core.exceptions import ClientAuthenticationError

        from mlflow_aca.azure.errors import TokenServiceError

        self._watch.reset()
        try:
            return call()
        except ClientAuthenticationError as exc:
            failed = self._watch.failed()
            if failed is None:
                raise
            raise TokenServiceError(*failed) from exc


def _resources() -> Callable[..., Any]:
    # azure-mgmt-resource 26 moved the client; the package root no longer exports it.
    from azure.mgmt.resource.resources import ResourceManagementClient

    return ResourceManagementClient


def _msi() -> Callable[..., Any]:
    from azure.mgmt.msi import ManagedServiceIdentityClient

    return ManagedServiceIdentityClient


def _storage() -> Callable[..., Any]:
    from azure.mgmt.storage import StorageManagementClient

    return StorageManagementClient


def _registry() -> Callable[..., Any]:
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient

    return ContainerRegistryManagementClient


def _registry_tasks() -> Callable[..., Any]:
    # ACR Tasks left azure-mgmt-containerregistry in 15.x.
    from azure.mgmt.containerregistrytasks import ContainerRegistryTasksMgmtClient

    return ContainerRegistryTasksMgmtClient


def _sql() -> Callable[..., Any]:
    from azure.mgmt.sql import SqlManagementClient

    return SqlManagementClient


def _logs() -> Callable[..., Any]:
    from azure.mgmt.loganalytics import LogAnalyticsManagementClient

    return LogAnalyticsManagementClient


def _apps() -> Callable[..., Any]:
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

    return ContainerAppsAPIClient


def _authorization() -> Callable[..., Any]:
    from azure.mgmt.authorization import AuthorizationManagementClient

    return AuthorizationManagementClient


_FACTORIES: dict[str, Callable[[], Callable[..., Any]]] = {
    "resources": _resources,
    "msi": _msi,
    "storage": _storage,
    "registry": _registry,
    "registry_tasks": _registry_tasks,
    "sql": _sql,
    "logs": _logs,
    "apps": _apps,
    "authorization": _authorization,
}
