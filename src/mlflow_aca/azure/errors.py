"""Azure SDK exceptions → the tool's errors, with Azure's own error code and a hint."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlflow_aca.errors import ConfigError, MlflowAcaError, OperationError, first_line

# Hints for the Azure error codes a user can do something about.
HINTS = {
    "AuthorizationFailed": "The signed-in principal lacks permission: it needs Contributor (and "
    "User Access Administrator or Owner, for role assignments) on the subscription or resource "
    "group.",
    "InvalidAuthenticationToken": "Sign in again (`az login`) or check the credential variables.",
    "AuthenticationFailed": "Sign in again (`az login`) or check the credential variables.",
    "ExpiredAuthenticationToken": "Sign in again (`az login`).",
    "SubscriptionNotFound": "Check subscription_id / AZURE_SUBSCRIPTION_ID and that the "
    "credential can see that subscription.",
    "MissingSubscriptionRegistration": "Register the resource provider: "
    "`az provider register --namespace <namespace>`, then rerun.",
    "StorageAccountAlreadyTaken": "Storage account names are global: set storage_account_name "
    "to another value.",
    "AlreadyExists": "The name is taken globally: override the resource's name in the config.",
    "RegistryNameNotAvailable": "Registry names are global: set registry_name to another value.",
    "ServerAlreadyExists": "SQL server names are global: set sql_server_name to another value.",
    "NameAlreadyExists": "The name is taken globally: override the resource's name in the config.",
    "AnotherOperationInProgress": "Azure is still working on this resource: wait a minute and "
    "rerun (reruns converge).",
    "ResourceGroupBeingDeleted": "The resource group is being deleted; wait until it is gone, "
    "then rerun.",
    "QuotaExceeded": "Request a quota increase for the region, or use another location.",
    "SkuNotAvailable": "The SKU is not offered in this region: choose another location.",
    "RegionDoesNotAllowProvisioning": "This region is not accepting new resources of this kind: "
    "choose another location.",
    "TasksOperationsNotAllowed": "This subscription cannot run ACR Tasks (e.g. a free trial): "
    "build locally with Docker instead (`mlflow-aca build --local`).",
    "PrincipalNotFound": "The identity has not replicated in Entra ID yet: rerun in a few "
    "minutes.",
}
DEFAULT_HINT = "Rerun with --verbose for details; reruns converge once the cause is fixed."


class TokenServiceError(Exception):
    """A token endpoint (the managed-identity endpoint, Entra ID) answered with a server error:
    the credential is there, the service failing it is not a missing sign-in."""

    def __init__(self, status: int, endpoint: str) -> None:
        super().__init__(f"{endpoint} answered HTTP {status}")
        self.status = status
        self.endpoint = endpoint


@contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Run Azure calls; turn what they raise into an error a person can act on."""
    try:
        yield
    except MlflowAcaError:
        raise
    except Exception as exc:  # noqa: BLE001 - only Azure's own exception types are translated
        translated = translate(exc, action)
        if translated is None:
            raise
        raise translated from exc


def translate(exc: BaseException, action: str) -> MlflowAcaError | None:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )
    from azure.identity import CredentialUnavailableError

    if isinstance(exc, TokenServiceError):
        return OperationError(
            f"Could not get an Azure token to {action}: the token endpoint {exc.endpoint} answered "
            f"HTTP {exc.status} (a failure of the service, not of the sign-in).",
            code="TokenServiceFailed",
            hint="Rerun in a minute. If it persists on a host with a managed identity, the host's identity "
            "endpoint (IDENTITY_ENDPOINT) is failing; elsewhere check Entra ID's status.",
        )
    failed = None if isinstance(exc, CredentialUnavailableError) else _failed_credential(exc)
    if failed is not None:
        # A credential was configured and was refused: say which and why, not "no credential".
        refused = "was refused by Microsoft Entra ID" if failed.entra_code else "failed"
        return ConfigError(
            f"Azure sign-in failed while trying to {action}: {failed.credential} {refused}: {failed.detail}",
            code="AuthenticationFailed",
            hint=failed.hint,
        )
    if isinstance(exc, CredentialUnavailableError) or (
        isinstance(exc, ClientAuthenticationError) and "failed to retrieve a token from the "
        "included credentials" in str(exc)
    ):
        return ConfigError(
            f"No Azure credential is available to {action}: {first_line(exc)}",
            code="CredentialUnavailable",
            hint="Sign in with `az login`, or set AZURE_CLIENT_ID/AZURE_TENANT_ID/"
            "AZURE_CLIENT_SECRET (service principal), AZURE_FEDERATED_TOKEN_FILE (workload "
            "identity), or run where a managed identity is available.",
        )
    if isinstance(exc, ClientAuthenticationError) and getattr(exc, "status_code", None) is None:
        return ConfigError(
            f"Azure sign-in failed while trying to {action}: {first_line(exc)}",
            code="AuthenticationFailed",
            hint=HINTS["AuthenticationFailed"],
        )
    if isinstance(exc, HttpResponseError):
        code = azure_error_code(exc) or f"HTTP{exc.status_code}"
        message = azure_error_message(exc)
        return OperationError(
            f"Azure refused to {action}: {message} (HTTP {exc.status_code}, {code}).",
            code=code,
            hint=HINTS.get(code, DEFAULT_HINT),
        )
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return OperationError(
            f"Could not reach Azure to {action}: {first_line(exc)}",
            code="ServiceUnreachable",
            hint="Check the network (and REQUESTS_CA_BUNDLE for a private CA); reruns converge.",
        )
    return None


def _failed_credential(exc: BaseException) -> Any:
    from azure.core.exceptions import ClientAuthenticationError

    from mlflow_aca.azure.credential_errors import failed_credential

    if not isinstance(exc, ClientAuthenticationError):
        return None
    return failed_credential(str(getattr(exc, "message", None) or exc))


def azure_error_code(exc: Any) -> str | None:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    if code:
        return str(code)
    return None


def azure_error_message(exc: Any) -> str:
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None)
    return str(message) if message else first_line(exc)


def is_not_found(exc: BaseException) -> bool:
    """The resource is absent. Not when the whole subscription is: ARM answers every read in a
    subscription that does not exist, or that the credential cannot see, with 404
    SubscriptionNotFound, and a plan or status must not report that as "everything absent"."""
    from azure.core.exceptions import ResourceNotFoundError

    if azure_error_code(exc) == "SubscriptionNotFound":
        return False
    return isinstance(exc, ResourceNotFoundError) or getattr(exc, "status_code", None) == 404
