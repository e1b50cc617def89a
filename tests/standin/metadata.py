"""`GET /metadata/endpoints`: the cloud description Azure's tools read for a custom cloud.

Since api-version 2019-05-01 ARM answers with a JSON list of cloud objects (management.azure.com
lists the public clouds). The stand-in lists one cloud, its own: resource manager, login endpoint
and Microsoft Graph (`microsoftGraphResourceId`) point at the stand-in, and the token audiences
are its own (ARM_AUDIENCES); only the DNS suffixes are the public cloud's, so names the product
derives (`<account>.blob.core.windows.net`, ...) look real and registry tokens keep Microsoft's
registry audience (the product sends that audience only to `*.azurecr.io`-style hosts).

A custom cloud's metadata may not claim a public or sovereign cloud's audiences, login endpoint
or Graph: the product refuses such a cloud before requesting any token (mlflow_aca/cloud.py
check_custom_cloud), since a hostile document could otherwise collect a token real Azure accepts.
So ARM here accepts tokens for the stand-in's own audiences only, not the public cloud's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .arm import Request, Response, bad_request

if TYPE_CHECKING:
    from .app import StandinApp

CLOUD_NAME = "AzureStandin"
# ARM's token audiences: the first is the one clients use; both are accepted, with or without
# the trailing slash, as real ARM accepts management.core.windows.net and management.azure.com.
# `.invalid` (RFC 2606): names no real host, and none of Microsoft's domains.
ARM_AUDIENCES = ["https://management.standin.invalid/", "https://arm.standin.invalid/"]
VERSIONS = {"2019-05-01", "2020-06-01", "2022-09-01"}
SUFFIXES = {
    "storage": "core.windows.net",
    "sqlServerHostname": "database.windows.net",
    "acrLoginServer": "azurecr.io",
    "keyVaultDns": "vault.azure.net",
    "mhsmDns": "managedhsm.azure.net",
    "mysqlServerEndpoint": "mysql.database.azure.com",
    "postgresqlServerEndpoint": "postgres.database.azure.com",
    "mariadbServerEndpoint": "mariadb.database.azure.com",
    "azureDataLakeStoreFileSystem": "azuredatalakestore.net",
    "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
    "azureFrontDoorEndpointSuffix": "azurefd.net",
    "storageSyncEndpointSuffix": "afs.azure.net",
    "synapseAnalytics": "dev.azuresynapse.net",
    "attestationEndpoint": "attest.azure.net",
}


def cloud(app: "StandinApp", base_url: str) -> dict:
    return {
        "name": CLOUD_NAME,
        "portal": base_url + "/",
        "resourceManager": base_url + "/",
        "authentication": {
            "loginEndpoint": base_url + "/",
            "audiences": list(app.tokens.audiences),
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "media": "https://rest.media.azure.net",
        "graphAudience": "https://graph.windows.net/",
        "graph": "https://graph.windows.net/",
        # Microsoft Graph is the stand-in too (entra/graph.py, under /v1.0/): clients read Graph's
        # URL here, as azure-cli does for a registered cloud (`az cloud show` endpoints.microsoftGraphResourceId).
        "microsoftGraphResourceId": base_url + "/",
        "batch": "https://batch.core.windows.net/",
        "sqlManagement": "https://management.core.windows.net:8443/",
        "gallery": "https://gallery.azure.com/",
        "activeDirectoryDataLake": "https://datalake.azure.net/",
        "appInsightsResourceId": "https://api.applicationinsights.io",
        "logAnalyticsResourceId": "https://api.loganalytics.io",
        "ossrdbmsResourceId": "https://ossrdbms-aad.database.windows.net",
        "suffixes": dict(SUFFIXES),
    }


def endpoints(app: "StandinApp", req: Request) -> Response:
    version = req.api_version
    if not version:
        raise bad_request("MissingApiVersionParameter",
                          "The api-version query parameter (?api-version=) is required for all requests.")
    if version not in VERSIONS:
        raise bad_request("InvalidApiVersionParameter",
                          f"The api-version '{version}' is invalid. The supported versions are "
                          f"{', '.join(sorted(VERSIONS, reverse=True))}.")
    return Response(200, [cloud(app, req.base_url)])
