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

    @property
    def credential(self) -> Any:
        with self._lock:
            if self._credential is None:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential(authority=self.cloud.authority_host)
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
