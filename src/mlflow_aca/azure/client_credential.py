"""The credential the MLflow client plugin (mlflow_aca.client_auth) signs in with: azure-identity,
imported only when the first request needs a token."""

from __future__ import annotations

from typing import Any


def default_credential() -> Any:
    """DefaultAzureCredential with its defaults (az login, environment service principal,
    workload identity, managed identity...; the interactive browser stays excluded)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def is_azure_error(error: BaseException) -> bool:
    """Whether a credential's failure is azure-core's (a refused or unavailable token)."""
    from azure.core.exceptions import AzureError

    return isinstance(error, AzureError)
