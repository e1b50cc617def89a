"""The subscription's locations: Subscriptions_ListLocations, `GET /subscriptions/{id}/locations`
(azure-rest-api-specs, Microsoft.Resources/subscriptions/stable/2022-12-01: one page of Location
objects with `name` such as "westeurope" and `displayName` such as "West Europe")."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from mlflow_aca.azure.errors import translate_errors
from mlflow_aca.azure.session import AzureSession

API_VERSION = "2022-12-01"


def subscription_locations(session: AzureSession) -> list[dict[str, Any]]:
    """The locations the subscription offers. azure-mgmt-resource 26 no longer ships the
    subscriptions client, so the GET goes through the resources client's pipeline (same
    credential, retries and proxy: `send_request`)."""
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat

    client = session.client("resources")
    url = f"/subscriptions/{quote(session.subscription_id)}/locations"
    with translate_errors("list the subscription's locations"):
        response = client.send_request(HttpRequest("GET", url, params={"api-version": API_VERSION}))
        if response.status_code >= 400:
            raise HttpResponseError(response=response, error_format=ARMErrorFormat)
        return list(response.json().get("value") or [])
