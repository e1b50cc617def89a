"""Microsoft Graph, as far as sign-in needs it: app registrations, service principals, app role
assignments and directory object look-ups (graph v1.0 REST).

A few plain REST calls on azure-core's pipeline rather than the msgraph-sdk: that SDK imports
thousands of generated modules (seconds of start-up) for the dozen requests made here. The
pipeline brings the credential's bearer-token policy, retries with Retry-After, the proxy
environment and REQUESTS_CA_BUNDLE, exactly as the management clients get them.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import quote

from mlflow_aca.azure.session import AzureSession
from mlflow_aca.errors import OperationError

# Default access: "If the resource application has not declared any app roles, a default app
# role ID of 00000000-0000-0000-0000-000000000000 can be specified to signal that the principal
# is assigned to the resource app without any specific app roles"
# (learn.microsoft.com/graph/api/serviceprincipal-post-approleassignedto).
DEFAULT_ACCESS_ROLE = "00000000-0000-0000-0000-000000000000"

# What the operator can do about Graph's refusals.
HINTS = {
    "Authorization_RequestDenied": (
        "Your account may not register or change applications in this tenant (it needs the "
        "Application Developer role, 'Users can register applications' allowed, or "
        "Application.ReadWrite.All). Two ways out: ask an admin to create an app registration "
        "and set auth_client_id to its application (client) id, or set auth = \"none\" together "
        "with allowed_ips."
    ),
    "Request_ResourceNotFound": "Check the object id in the configuration; it may have been "
    "deleted or belong to another tenant.",
    "InvalidAuthenticationToken": "Sign in again (`az login`) or check the credential variables.",
}
DEFAULT_HINT = "Rerun with --verbose for details; reruns converge once the cause is fixed."


class GraphError(OperationError):
    """Graph answered with an error: its code, message and HTTP status."""

    def __init__(self, action: str, status: int, code: str, message: str) -> None:
        super().__init__(f"Microsoft Graph refused to {action}: {message} (HTTP {status}, {code}).",
                         code=code, hint=HINTS.get(code, DEFAULT_HINT))
        self.status = status


class Graph:
    """Graph v1.0 at the cloud's Graph endpoint, with the session's credential."""

    def __init__(self, session: AzureSession) -> None:
        self.session = session
        self.base = session.cloud.graph_endpoint.rstrip("/") + "/v1.0/"
        self._pipeline: Any = None
        self._lock = threading.Lock()

    # --- transport ---------------------------------------------------------------------------
    def _client(self) -> Any:
        with self._lock:
            if self._pipeline is None:
                self._pipeline = rest_client(self.base, self.session.credential,
                                             self.session.cloud.graph_scope)
            return self._pipeline

    def call(self, action: str, method: str, path: str, body: dict[str, Any] | None = None, *,
             headers: dict[str, str] | None = None, missing_ok: bool = False) -> tuple[int, dict[str, Any] | None]:
        """One request; (status, JSON body or None). 404 is (404, None) when missing_ok."""
        from mlflow_aca.azure.errors import translate_errors

        client = self._client()
        url = path if path.startswith("https://") or path.startswith("http://") else self.base + path
        request_headers = dict(headers or {})
        if body is not None:
            request_headers["Content-Type"] = "application/json"
        if method.upper() != "GET" and not path.endswith("/getByIds"):  # getByIds: a read by POST
            self.session.before_write()  # the run lease (lease.py) holds writes until confirmed
        with translate_errors(action):
            response = client.send_request(_request(method, url, request_headers, body))
        status = response.status_code
        payload = _json(response)
        if status == 404 and missing_ok:
            return status, None
        if status >= 400:
            error = (payload or {}).get("error") or {}
            raise GraphError(action, status, str(error.get("code") or f"HTTP{status}"),
                             str(error.get("message") or response.text()[:300]))
        return status, payload

    def get_all(self, action: str, path: str) -> list[dict[str, Any]]:
        """A collection, following @odata.nextLink."""
        items: list[dict[str, Any]] = []
        next_path: str | None = path
        while next_path:
            _, page = self.call(action, "GET", next_path)
            items += (page or {}).get("value", [])
            next_path = (page or {}).get("@odata.nextLink")
        return items

    # --- applications ------------------------------------------------------------------------
    def application_by_unique_name(self, unique_name: str) -> dict[str, Any] | None:
        return self.call(f"read app registration {unique_name}", "GET",
                         f"applications(uniqueName='{_key(unique_name)}')", missing_ok=True)[1]

    def application_by_app_id(self, app_id: str) -> dict[str, Any] | None:
        return self.call(f"read app registration {app_id}", "GET",
                         f"applications(appId='{_key(app_id)}')", missing_ok=True)[1]

    def upsert_application(self, unique_name: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Create (answer 201 with the application) or update (204, None) by uniqueName:
        Graph's upsert (learn.microsoft.com/graph/api/application-upsert)."""
        status, created = self.call(f"register app {unique_name}", "PATCH",
                                    f"applications(uniqueName='{_key(unique_name)}')", body,
                                    headers={"Prefer": "create-if-missing"})
        return created if status == 201 else None

    def update_application(self, object_id: str, body: dict[str, Any]) -> None:
        self.call("update the app registration", "PATCH", f"applications/{_key(object_id)}", body)

    def delete_application(self, object_id: str) -> bool:
        status, _ = self.call("delete the app registration", "DELETE", f"applications/{_key(object_id)}",
                              missing_ok=True)
        return status != 404

    # --- service principals ------------------------------------------------------------------
    def service_principal(self, app_id: str) -> dict[str, Any] | None:
        return self.call(f"read the service principal of {app_id}", "GET",
                         f"servicePrincipals(appId='{_key(app_id)}')", missing_ok=True)[1]

    def create_service_principal(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("create the service principal", "POST", "servicePrincipals", body)[1] or {}

    def update_service_principal(self, object_id: str, body: dict[str, Any]) -> None:
        self.call("update the service principal", "PATCH", f"servicePrincipals/{_key(object_id)}", body)

    # --- app role assignments ----------------------------------------------------------------
    def assignments(self, sp_id: str) -> list[dict[str, Any]]:
        return self.get_all("list who is assigned to the app",
                            f"servicePrincipals/{_key(sp_id)}/appRoleAssignedTo")

    def assign(self, sp_id: str, principal_id: str, role_id: str = DEFAULT_ACCESS_ROLE) -> dict[str, Any]:
        body = {"principalId": principal_id, "resourceId": sp_id, "appRoleId": role_id}
        return self.call(f"allow {principal_id} to sign in", "POST",
                         f"servicePrincipals/{_key(sp_id)}/appRoleAssignedTo", body)[1] or {}

    def unassign(self, sp_id: str, assignment_id: str) -> None:
        self.call("remove a sign-in assignment", "DELETE",
                  f"servicePrincipals/{_key(sp_id)}/appRoleAssignedTo/{_key(assignment_id)}",
                  missing_ok=True)

    # --- directory objects -------------------------------------------------------------------
    def objects_by_ids(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Users, groups and service principals by object id (unknown ids are absent)."""
        if not ids:
            return {}
        _, found = self.call("look up the allowed principals", "POST", "directoryObjects/getByIds",
                             {"ids": ids, "types": ["user", "group", "servicePrincipal"]})
        return {str(item.get("id")).lower(): item for item in (found or {}).get("value", [])}


def rest_client(base_url: str, credential: Any, scope: str) -> Any:
    """An azure-core pipeline for plain REST calls with bearer tokens for `scope`."""
    from azure.core import PipelineClient
    from azure.core.pipeline import policies

    return PipelineClient(base_url, policies=[
        policies.HeadersPolicy({"Accept": "application/json"}),
        policies.UserAgentPolicy("mlflow-aca"),
        policies.ProxyPolicy(),
        policies.RetryPolicy(retry_total=4, retry_backoff_factor=0.5),
        policies.BearerTokenCredentialPolicy(credential, scope),
        policies.NetworkTraceLoggingPolicy(),
    ])


def subscription_tenant(session: AzureSession) -> str:
    """The tenant of the subscription (ARM's subscription document), whose issuer the sign-in
    layer trusts. A plain GET: the subscriptions client is a package of its own since
    azure-mgmt-resource 24."""
    from mlflow_aca.azure.errors import translate_errors

    cloud = session.cloud
    client = rest_client(cloud.resource_manager, session.credential, cloud.arm_scope)
    url = f"{cloud.resource_manager}subscriptions/{session.subscription_id}?api-version=2022-12-01"
    with translate_errors("read the subscription's tenant"):
        response = client.send_request(_request("GET", url, {}, None))
        response.raise_for_status()
    tenant = (_json(response) or {}).get("tenantId")
    if not tenant:
        raise OperationError("Azure did not say which tenant the subscription belongs to.",
                             code="TenantUnknown", hint=DEFAULT_HINT)
    return str(tenant)


def object_kind(item: dict[str, Any]) -> str:
    """user / group / servicePrincipal, from @odata.type."""
    return str(item.get("@odata.type", "")).rsplit(".", 1)[-1]


def _request(method: str, url: str, headers: dict[str, str], body: dict[str, Any] | None) -> Any:
    from azure.core.rest import HttpRequest

    return HttpRequest(method, url, headers=headers, json=body)


def _json(response: Any) -> dict[str, Any] | None:
    try:
        return response.json() if response.text() else None
    except ValueError:
        return None


def _key(value: str) -> str:
    # Graph's alternate keys are OData string literals in the path: quote doubled, then
    # percent-encoded.
    return quote(value.replace("'", "''"), safe="")
