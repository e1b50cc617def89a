"""Azure clouds: where Resource Manager lives, which token audience it wants, and the DNS
suffixes of the data-plane services (storage, SQL, registry).

Named clouds come from a table; a custom cloud (Azure Stack, a sovereign cloud not in the table,
or any ARM-compatible endpoint) is read from `<arm_endpoint>/metadata/endpoints`, the document
Azure's own tools (azure-cli `cloud register --endpoint-resource-manager`) read.

That document decides where the operator's credential signs in, which token audiences it asks
for and where the tokens go, and `arm_endpoint` can come from a file in a repository. So a custom
cloud may not claim anything of Microsoft's own clouds (`check_custom_cloud`): otherwise a
hostile document could name the public cloud's audience and collect a token that real Azure
accepts (AzureCliCredential and ManagedIdentityCredential ignore the authority and get real
tokens for whatever scope is asked).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

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
    # ACR's Entra audience is the same in every public and sovereign cloud. Empty for a custom
    # cloud whose registries are not Microsoft's: the audience is Microsoft's, so a token for
    # it must only go to Microsoft's registry hosts (see cloud_from_metadata).
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
        if not self.registry_audience:
            raise ConfigError(
                f"The custom cloud {self.name} names its registries under '{self.acr_suffix}', not "
                "one of Microsoft's registry domains; mlflow-aca only knows Microsoft's registry "
                "token audience and will not send a token for it there.",
                code="CloudMetadataRefused",
                hint="Registry sign-in (build, push, image checks) is not available for this cloud.",
            )
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

# The DNS domains of Microsoft's public and sovereign clouds, with the cloud each belongs to. A
# custom cloud may name none of them for its Resource Manager, login endpoint, token audiences or
# Graph. Sources (hosts, then the domain they fall under):
# - azure-cli src/azure-cli-core/azure/cli/core/cloud.py, AZURE_PUBLIC_CLOUD / AZURE_CHINA_CLOUD /
#   AZURE_US_GOV_CLOUD / AZURE_GERMAN_CLOUD: management (the ARM audience) management.core.windows.net,
#   management.core.chinacloudapi.cn, management.core.usgovcloudapi.net, management.core.cloudapi.de;
#   resource_manager management.azure.com, management.chinacloudapi.cn, management.usgovcloudapi.net,
#   management.microsoftazure.de; active_directory login.microsoftonline.com, login.chinacloudapi.cn,
#   login.microsoftonline.us, login.microsoftonline.de; Graph graph.microsoft.com, graph.windows.net,
#   microsoftgraph.chinacloudapi.cn, graph.chinacloudapi.cn, graph.microsoft.us, graph.microsoft.de,
#   graph.cloudapi.de; data-plane audiences under azure.net/azure.com (vault.azure.net, ...).
# - msal 1.39 authority.py WELL_KNOWN_AUTHORITY_HOSTS (login aliases): login.microsoft.com,
#   login.windows.net, sts.windows.net, login.partner.microsoftonline.cn, login-us.microsoftonline.com,
#   login.usgovcloudapi.net, login.sovcloud-identity.fr/.de/.sg; azure-identity 1.27
#   AzureAuthorityHosts: login.microsoftonline.com, login.chinacloudapi.cn, login.microsoftonline.us.
# Whole domains rather than those exact hosts: Entra issues tokens for every Microsoft service
# under them, and a storage static website (<account>.web.core.windows.net) is attacker-hostable.
MICROSOFT_DOMAINS: dict[str, str] = {
    "windows.net": "AzureCloud", "azure.com": "AzureCloud", "azure.net": "AzureCloud",
    "microsoft.com": "AzureCloud", "microsoftonline.com": "AzureCloud",
    "usgovcloudapi.net": "AzureUSGovernment", "microsoftonline.us": "AzureUSGovernment",
    "microsoft.us": "AzureUSGovernment", "azure.us": "AzureUSGovernment",
    "chinacloudapi.cn": "AzureChinaCloud", "microsoftonline.cn": "AzureChinaCloud",
    "azure.cn": "AzureChinaCloud",
    "cloudapi.de": "AzureGermanCloud", "microsoftazure.de": "AzureGermanCloud",
    "microsoftonline.de": "AzureGermanCloud", "microsoft.de": "AzureGermanCloud",
    "sovcloud-identity.fr": "a national cloud", "sovcloud-identity.de": "a national cloud",
    "sovcloud-identity.sg": "a national cloud",
}
# Microsoft's registry domains (azure-cli cloud.py acr_login_server_endpoint): the only hosts a
# token for Microsoft's registry audience may be sent to.
MICROSOFT_REGISTRY_SUFFIXES = ("azurecr.io", "azurecr.us", "azurecr.cn")


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
        acr_suffix = str(suffixes["acrLoginServer"]).lstrip(".").lower()
        cloud = Cloud(
            name=str(entry.get("name") or "custom"),
            resource_manager=_norm_url(entry["resourceManager"]) + "/",
            authority_host=str(auth["loginEndpoint"]).rstrip("/"),
            audience=str(auth["audiences"][0]),
            storage_suffix=str(suffixes["storage"]).lstrip("."),
            sql_suffix=str(suffixes["sqlServerHostname"]).lstrip("."),
            acr_suffix=acr_suffix,
            # Required: without it the public cloud's Graph would get the token, and app
            # registrations would be written to the operator's real directory.
            graph_endpoint=_norm_url(entry["microsoftGraphResourceId"]) + "/",
            registry_audience=Cloud.registry_audience if acr_suffix in MICROSOFT_REGISTRY_SUFFIXES
            else "",
            custom=True,
        )
        check_custom_cloud(cloud, [str(a) for a in auth["audiences"]], arm_endpoint)
        return cloud
    except (KeyError, IndexError, TypeError) as exc:
        raise OperationError(
            f"The cloud metadata at {arm_endpoint} lacks a required field ({exc}).",
            code="CloudMetadataInvalid",
            hint="The document must carry resourceManager, authentication.loginEndpoint, "
            "authentication.audiences, microsoftGraphResourceId and "
            "suffixes.storage/sqlServerHostname/acrLoginServer.",
        ) from None


def check_custom_cloud(cloud: Cloud, audiences: list[str], arm_endpoint: str) -> None:
    """Refuse a custom cloud that claims a Microsoft cloud's endpoints or token audiences.

    Runs before any token is requested. Every audience listed counts, not only the first one
    used; an audience must be an https URL (a bare application id such as ARM's would name a
    Microsoft service just as well).
    """
    claims = [("Resource Manager", cloud.resource_manager), ("login endpoint", cloud.authority_host),
              ("Microsoft Graph endpoint", cloud.graph_endpoint)]
    claims += [("token audience", audience) for audience in audiences]
    for what, url in claims:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower().rstrip(".")
        if parts.scheme.lower() != "https" or not host:
            raise ConfigError(
                f"The custom cloud at {arm_endpoint} gives {url!r} as its {what}, not an https URL; "
                "refusing it before any token is requested.",
                code="CloudMetadataRefused",
                hint="A custom cloud's metadata must name https URLs of its own.",
            )
        owner = microsoft_cloud_of(host)
        if owner:
            raise ConfigError(
                f"The custom cloud at {arm_endpoint} claims {url} as its {what}, which belongs to "
                f"Microsoft's {owner}; refusing it before any token is requested: your credential "
                f"would get a token real Azure accepts and send it to {arm_endpoint}.",
                code="CloudMetadataRefused",
                hint="For Azure itself, remove arm_endpoint and set cloud (AzureCloud, "
                "AzureUSGovernment or AzureChinaCloud). Check where arm_endpoint came from: "
                "mlflow-aca.toml, MLFLOW_ACA_ARM_ENDPOINT or --arm-endpoint.",
            )


def microsoft_cloud_of(host: str) -> str | None:
    """The Microsoft cloud whose domain `host` is in (or is), else None."""
    host = host.lower().rstrip(".")
    return next((cloud for domain, cloud in MICROSOFT_DOMAINS.items()
                 if host == domain or host.endswith("." + domain)), None)


def known_cloud_at(arm_endpoint: str) -> Cloud | None:
    """The named cloud whose Resource Manager `arm_endpoint` is: its table entry is trusted, so
    pointing arm_endpoint at real Azure needs no metadata (which would be refused)."""
    return next((c for c in KNOWN_CLOUDS.values()
                 if _norm_url(c.resource_manager) == _norm_url(arm_endpoint)), None)


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
        return known_cloud_at(arm_endpoint) or fetch_custom_cloud(arm_endpoint)
    try:
        return KNOWN_CLOUDS[cloud_name]
    except KeyError:
        raise ConfigError(
            f"Unknown cloud {cloud_name!r} for 'cloud'.",
            hint=f"Use one of {', '.join(KNOWN_CLOUDS)}, or set arm_endpoint for a custom cloud.",
        ) from None


def _norm_url(url: str) -> str:
    return str(url).strip().rstrip("/").lower()
