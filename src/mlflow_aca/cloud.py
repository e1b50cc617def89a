"""Azure clouds: where Resource Manager lives, which token audience it wants, and the DNS
suffixes of the data-plane services (storage, SQL, registry).

Named clouds come from a table; a custom cloud (Azure Stack, a sovereign cloud not in the table,
or any ARM-compatible endpoint) is read from `<arm_endpoint>/metadata/endpoints`, the document
Azure's own tools (azure-cli `cloud register --endpoint-resource-manager`) read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mlflow_aca.errors import ConfigError, OperationError

METADATA_API_VERSION = "2022-09-01"


@dataclass(frozen=True)
class Cloud:
    name: str
    resource_manager: str  # ARM base URL, with a trailing slash
    authority_host: str  # Entra login endpoint
    audience: str  # ARM token audience; the scope is audience + ".default"
    storage_suffix: str  # e.g. core.windows.net (blob host: <account>.blob.<suffix>)
    sql_suffix: str  # e.g. database.windows.net (server host: <server>.<suffix>)
    acr_suffix: str  # e.g. azurecr.io (login server: <registry>.<suffix>)
    # Microsoft Graph (app registrations for sign-in): the metadata's microsoftGraphResourceId,
    # both the API's base URL and its token audience, as azure-cli uses it.
    graph_endpoint: str = "https://graph.microsoft.com/"
    # ACR's Entra audience is the same in every public and sovereign cloud.
    registry_audience: str = "https://containerregistry.azure.net/"
    custom: bool = False

    @property
    def arm_scope(self) -> str:
        return self.audience.rstrip("/") + "/.default"

    @property
    def graph_scope(self) -> str:
        return self.graph_endpoint.rstrip("/") + "/.default"

    def open_id_issuer(self, tenant_id: str) -> str:
        """The issuer Container Apps' sign-in layer trusts: the tenant's v2.0 endpoint."""
        return f"{self.authority_host.rstrip('/')}/{tenant_id}/v2.0"

    @property
    def registry_scope(self) -> str:
        return self.registry_audience.rstrip("/") + "/.default"

    def blob_host(self, account: str) -> str:
        return f"{account}.blob.{self.storage_suffix}"

    def sql_host(self, server: str) -> str:
        return f"{server}.{self.sql_suffix}"

    def registry_login_server(self, registry: str) -> str:
        return f"{registry.lower()}.{self.acr_suffix}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


KNOWN_CLOUDS: dict[str, Cloud] = {
    "AzureCloud": Cloud(
        name="AzureCloud",
        resource_manager="https://management.azure.com/",
        authority_host="https://login.microsoftonline.com",
        audience="https://management.core.windows.net/",
        storage_suffix="core.windows.net",
        sql_suffix="database.windows.net",
        acr_suffix="azurecr.io",
    ),
    "AzureChinaCloud": Cloud(
        name="AzureChinaCloud",
        resource_manager="https://management.chinacloudapi.cn/",
        authority_host="https://login.chinacloudapi.cn",
        audience="https://management.core.chinacloudapi.cn/",
        storage_suffix="core.chinacloudapi.cn",
        sql_suffix="database.chinacloudapi.cn",
        acr_suffix="azurecr.cn",
        graph_endpoint="https://microsoftgraph.chinacloudapi.cn/",
    ),
    "AzureUSGovernment": Cloud(
        name="AzureUSGovernment",
        resource_manager="https://management.usgovcloudapi.net/",
        authority_host="https://login.microsoftonline.us",
        audience="https://management.core.usgovcloudapi.net/",
        storage_suffix="core.usgovcloudapi.net",
        sql_suffix="database.usgovcloudapi.net",
        acr_suffix="azurecr.us",
        graph_endpoint="https://graph.microsoft.us/",
    ),
}


def cloud_from_metadata(document: Any, arm_endpoint: str) -> Cloud:
    """Build a Cloud from a `/metadata/endpoints` document.

    api-version 2022-09-01 answers with a list of clouds; older versions and Azure Stack answer
    with a single object. From a list, take the entry whose resourceManager is the endpoint
    asked (a custom endpoint describes itself there).
    """
    entries = document if isinstance(document, list) else [document]
    wanted = _norm_url(arm_endpoint)
    entry = next(
        (e for e in entries if isinstance(e, dict) and _norm_url(e.get("resourceManager", "")) == wanted),
        entries[0] if len(entries) == 1 else None,
    )
    if not isinstance(entry, dict):
        raise OperationError(
            f"The cloud metadata at {arm_endpoint} does not describe that endpoint.",
            code="CloudMetadataInvalid",
            hint="Check arm_endpoint: it must be the Resource Manager URL of the cloud.",
        )
    try:
        auth = entry["authentication"]
        suffixes = entry["suffixes"]
        return Cloud(
            name=str(entry.get("name") or "custom"),
            resource_manager=_norm_url(entry["resourceManager"]) + "/",
            authority_host=str(auth["loginEndpoint"]).rstrip("/"),
            audience=str(auth["audiences"][0]),
            storage_suffix=str(suffixes["storage"]).lstrip("."),
            sql_suffix=str(suffixes["sqlServerHostname"]).lstrip("."),
            acr_suffix=str(suffixes["acrLoginServer"]).lstrip("."),
            graph_endpoint=_norm_url(entry.get("microsoftGraphResourceId")
                                     or "https://graph.microsoft.com") + "/",
            custom=True,
        )
    except (KeyError, IndexError, TypeError) as exc:
        raise OperationError(
            f"The cloud metadata at {arm_endpoint} lacks a required field ({exc}).",
            code="CloudMetadataInvalid",
            hint="The document must carry resourceManager, authentication.loginEndpoint, "
            "authentication.audiences and suffixes.storage/sqlServerHostname/acrLoginServer.",
        ) from None


def fetch_custom_cloud(arm_endpoint: str, timeout: float = 15.0) -> Cloud:
    """Read a custom cloud's metadata document over HTTPS (trusting REQUESTS_CA_BUNDLE)."""
    import requests  # deferred: only custom clouds need it, and it costs start-up time

    url = f"{arm_endpoint.rstrip('/')}/metadata/endpoints?api-version={METADATA_API_VERSION}"
    try:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
        document = response.json()
    except requests.exceptions.SSLError as exc:
        raise OperationError(
            f"TLS verification failed for the custom cloud endpoint {arm_endpoint}: {exc}",
            code="CloudMetadataUnreachable",
            hint="If the endpoint uses a private CA, point REQUESTS_CA_BUNDLE at its bundle.",
        ) from None
    except (requests.RequestException, ValueError) as exc:
        raise OperationError(
            f"Could not read the cloud metadata from {url}: {exc}",
            code="CloudMetadataUnreachable",
            hint="Check arm_endpoint (MLFLOW_ACA_ARM_ENDPOINT) and the network.",
        ) from None
    return cloud_from_metadata(document, arm_endpoint)


def resolve_cloud(cloud_name: str, arm_endpoint: str | None) -> Cloud:
    if arm_endpoint:
        return fetch_custom_cloud(arm_endpoint)
    try:
        return KNOWN_CLOUDS[cloud_name]
    except KeyError:
        raise ConfigError(
            f"Unknown cloud {cloud_name!r} for 'cloud'.",
            hint=f"Use one of {', '.join(KNOWN_CLOUDS)}, or set arm_endpoint for a custom cloud.",
        ) from None


def _norm_url(url: str) -> str:
    return str(url).strip().rstrip("/").lower()
