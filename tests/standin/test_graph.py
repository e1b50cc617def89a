"""Microsoft Entra's directory side: Graph v1.0, application tokens at the identity endpoint and
the sign-in page (entra/). Everything goes through real HTTP against the running stand-in."""

from __future__ import annotations

import base64
import html
import json
import re
import uuid

import pytest
import requests

from .conftest import LOCATION

DEFAULT_ACCESS = "00000000-0000-0000-0000-000000000000"
AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
CALLBACK = "https://mlflow.example.westeurope.azurecontainerapps.io/.auth/login/aad/callback"


# -- helpers -----------------------------------------------------------------------------------------
def msi(standin, resource: str, client_id: str | None = None) -> requests.Response:
    """A token request at the identity endpoint, as DefaultAzureCredential makes it."""
    params = {"api-version": "2019-08-01", "resource": resource}
    if client_id:
        params["client_id"] = client_id
    return requests.get(standin.url + "/msi/token", params=params, verify=standin.ca_path, timeout=10,
                        headers={"X-IDENTITY-HEADER": standin.app.tokens.identity_header})


def claims_of(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


class GraphClient:
    def __init__(self, standin, client_id: str | None = None, token: str | None = None) -> None:
        self.standin = standin
        self.base = standin.url + "/v1.0/"
        if token is None:
            answer = msi(standin, standin.url + "/", client_id)
            assert answer.status_code == 200, answer.text
            token = answer.json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, body=None, **headers) -> requests.Response:
        url = path if path.startswith("https://") else self.base + path
        return requests.request(method, url, json=body, headers={**self.headers, **headers},
                                verify=self.standin.ca_path, timeout=10)

    def upsert(self, unique: str, body: dict) -> requests.Response:
        return self.call("PATCH", f"applications(uniqueName='{unique}')", body, Prefer="create-if-missing")

    def app(self, unique: str = "mlflow-aca-demo", **body) -> dict:
        answer = self.upsert(unique, {"displayName": unique, **body})
        assert answer.status_code == 201, answer.text
        return answer.json()

    def sp(self, app_id: str, **body) -> dict:
        answer = self.call("POST", "servicePrincipals", {"appId": app_id, **body})
        assert answer.status_code == 201, answer.text
        return answer.json()


def error(answer: requests.Response) -> tuple[int, str | None]:
    if not answer.content:
        return answer.status_code, None
    body = answer.json()["error"]
    assert set(body["innerError"]) >= {"date", "request-id", "client-request-id"}
    return answer.status_code, body["code"]


def scope(scope_id: str | None = None, value: str = "user_impersonation", enabled: bool = True) -> dict:
    return {"id": scope_id or str(uuid.uuid4()), "value": value, "type": "User", "isEnabled": enabled,
            "adminConsentDisplayName": "Access MLflow", "adminConsentDescription": "Access MLflow",
            "userConsentDisplayName": "Access MLflow", "userConsentDescription": "Access MLflow"}


@pytest.fixture
def graph(standin):
    return GraphClient(standin)


@pytest.fixture
def identity(azure):
    azure.resources.resource_groups.create_or_update("rg-graph", {"location": LOCATION})
    return azure.msi.user_assigned_identities.create_or_update("rg-graph", "id-client", {"location": LOCATION})


# -- metadata and authentication ---------------------------------------------------------------------
def test_metadata_names_the_standin_as_microsoft_graph(standin):
    (cloud,) = requests.get(f"{standin.url}/metadata/endpoints?api-version=2022-09-01", verify=standin.ca_path,
                            timeout=5).json()
    assert cloud["microsoftGraphResourceId"] == standin.url + "/"


def test_graph_token_from_default_azure_credential(standin, standin_env):
    from azure.identity import DefaultAzureCredential
    token = DefaultAzureCredential().get_token(standin.url + "/.default").token
    assert GraphClient(standin, token=token).upsert("via-sdk", {"displayName": "x"}).status_code == 201


@pytest.mark.parametrize("case, message", [
    ("missing", "Access token is empty."),
    ("arm", "Access token validation failure. Invalid audience."),
    ("forged", "Access token validation failure."),
    ("expired", "Lifetime validation failed, the token is expired."),
    ("tenant", "Access token validation failure. Invalid issuer."),
])
def test_graph_refuses_tokens_that_are_not_graphs(standin, case, message):
    graph_url = standin.url + "/"
    token = {"missing": "", "arm": standin.issue_token(), "forged": standin.issue_token(graph_url)[:-4] + "AAAA",
             "expired": standin.issue_token(graph_url, lifetime=-60),
             "tenant": standin.issue_token(graph_url, claims={"tid": str(uuid.uuid4()),
                                                               "iss": "https://sts.windows.net/other/"})}[case]
    answer = GraphClient(standin, token=token or "x").call("GET", "applications(appId='x')",
                                                           Authorization=f"Bearer {token}".strip())
    assert error(answer) == (401, "InvalidAuthenticationToken")
    assert answer.json()["error"]["message"] == message
    assert "WWW-Authenticate" in answer.headers


def test_graph_accepts_its_audience_with_and_without_slash_and_arm_keeps_its_rule(standin, graph):
    assert msi(standin, standin.url.replace("127.0.0.1", "localhost") + "/").status_code == 200
    for audience in (standin.url + "/", standin.url):
        client = GraphClient(standin, token=standin.issue_token(audience))
        assert error(client.call("GET", "applications(appId='x')")) == (404, "Request_ResourceNotFound")
    arm = requests.get(f"{standin.url}/subscriptions/{standin.subscription_id}/resourcegroups?api-version=2025-04-01",
                       headers=graph.headers, verify=standin.ca_path, timeout=5)
    assert arm.status_code == 401 and arm.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"


# -- applications ------------------------------------------------------------------------------------
def test_upsert_creates_then_updates_and_keys_find_it(graph, standin):
    assert error(graph.call("GET", "applications(uniqueName='mlflow-aca-demo')")) == (404, "Request_ResourceNotFound")
    no_prefer = graph.call("PATCH", "applications(uniqueName='mlflow-aca-demo')", {"displayName": "x"})
    assert error(no_prefer) == (404, "Request_ResourceNotFound")
    created = graph.app(tags=["mlflow-aca"])
    assert uuid.UUID(created["id"]) and uuid.UUID(created["appId"]) and created["id"] != created["appId"]
    assert created["uniqueName"] == "mlflow-aca-demo" and created["tags"] == ["mlflow-aca"]
    again = graph.upsert("mlflow-aca-demo", {"displayName": "renamed", "notes": "n"})
    assert again.status_code == 204 and not again.content
    by_key = graph.call("GET", "applications(uniqueName='mlflow-aca-demo')").json()
    by_app_id = graph.call("GET", f"applications(appId='{created['appId']}')").json()
    by_id = graph.call("GET", f"applications/{created['id']}").json()
    assert by_key["displayName"] == by_app_id["displayName"] == by_id["displayName"] == "renamed"
    assert by_id["tags"] == ["mlflow-aca"]   # PATCH leaves what it does not name
    assert graph.call("PATCH", f"applications/{created['id']}", {"notes": "m"}).status_code == 204
    sp = graph.sp(created["appId"])
    assert graph.call("DELETE", f"applications/{created['id']}").status_code == 204
    assert error(graph.call("GET", f"applications/{created['id']}")) == (404, "Request_ResourceNotFound")
    assert error(graph.call("GET", f"servicePrincipals/{sp['id']}")) == (404, "Request_ResourceNotFound")


def test_creating_needs_display_name_and_refuses_unknown_or_read_only_properties(graph):
    assert graph.upsert("a", {"notes": "no name"}).status_code == 400
    assert error(graph.upsert("a", {"displayName": "a", "colour": "red"})) == (400, "BadRequest")
    assert error(graph.upsert("a", {"displayName": "a", "appId": str(uuid.uuid4())})) == (400, "Request_BadRequest")


@pytest.mark.parametrize("uri, accepted", [
    ("api://{appId}", True), ("api://{tenantId}/mlflow", True), ("api://mlflow/{appId}", True),
    ("api://mlflow", False), ("https://mlflow.example.com", False), ("api://{otherGuid}", False),
])
def test_identifier_uris_follow_the_default_tenant_policy(graph, standin, uri, accepted):
    created = graph.app()
    value = uri.format(appId=created["appId"], tenantId=standin.tenant_id, otherGuid=uuid.uuid4())
    answer = graph.call("PATCH", f"applications/{created['id']}", {"identifierUris": [value]})
    if accepted:
        assert answer.status_code == 204
    else:
        assert error(answer) == (400, "HostNameNotOnVerifiedDomain")
        assert value in answer.json()["error"]["message"]


def test_an_identifier_uri_belongs_to_one_application(graph, standin):
    first, second = graph.app("one"), graph.app("two")
    uri = f"api://{standin.tenant_id}/mlflow"
    assert graph.call("PATCH", f"applications/{first['id']}", {"identifierUris": [uri]}).status_code == 204
    clash = graph.call("PATCH", f"applications/{second['id']}", {"identifierUris": [uri]})
    assert error(clash) == (400, "Request_MultipleObjectsWithSameKeyValue")


@pytest.mark.parametrize("uri, accepted", [
    (CALLBACK, True), ("http://localhost:5000/callback", True),
    ("http://mlflow.example.com/.auth/login/aad/callback", False), ("ftp://example.com/x", False),
])
def test_redirect_uris_are_https_except_localhost(graph, uri, accepted):
    created = graph.app()
    answer = graph.call("PATCH", f"applications/{created['id']}", {"web": {"redirectUris": [uri]}})
    assert answer.status_code == (204 if accepted else 400)


def test_permission_scopes_need_guid_ids_and_unique_values(graph):
    created = graph.app()
    path = f"applications/{created['id']}"
    bad_id = graph.call("PATCH", path, {"api": {"oauth2PermissionScopes": [scope("not-a-guid")]}})
    assert error(bad_id) == (400, "Request_BadRequest")
    twice = graph.call("PATCH", path, {"api": {"oauth2PermissionScopes": [scope(), scope()]}})
    assert error(twice) == (400, "Request_BadRequest")
    assert graph.call("PATCH", path, {"api": {"oauth2PermissionScopes": [scope()]}}).status_code == 204


def test_an_enabled_scope_is_disabled_before_it_changes_or_goes(graph):
    created = graph.app()
    path = f"applications/{created['id']}"
    first = scope()
    assert graph.call("PATCH", path, {"api": {"oauth2PermissionScopes": [first]}}).status_code == 204
    removed = graph.call("PATCH", path, {"api": {"oauth2PermissionScopes": []}})
    assert error(removed) == (400, "CannotDeleteOrUpdateEnabledEntitlement")
    renamed = graph.call("PATCH", path, {"api": {"oauth2PermissionScopes": [{**first, "value": "other"}]}})
    assert error(renamed) == (400, "CannotDeleteOrUpdateEnabledEntitlement")
    unchanged = graph.call("PATCH", path, {"api": {"oauth2PermissionScopes": [first]}})
    assert unchanged.status_code == 204
    disabled = graph.call("PATCH", path, {"api": {"oauth2PermissionScopes": [{**first, "isEnabled": False}]}})
    assert disabled.status_code == 204
    assert graph.call("PATCH", path, {"api": {"oauth2PermissionScopes": []}}).status_code == 204


def test_pre_authorized_applications_name_scopes_the_application_already_has(graph):
    created = graph.app()
    path = f"applications/{created['id']}"
    first = scope()
    pre = {"preAuthorizedApplications": [{"appId": AZURE_CLI, "delegatedPermissionIds": [first["id"]]}]}
    together = graph.call("PATCH", path, {"api": {"oauth2PermissionScopes": [first], **pre}})
    assert error(together) == (400, "Request_BadRequest")
    assert graph.call("PATCH", path, {"api": {"oauth2PermissionScopes": [first]}}).status_code == 204
    assert graph.call("PATCH", path, {"api": pre}).status_code == 204
    unknown = {"preAuthorizedApplications": [{"appId": AZURE_CLI, "delegatedPermissionIds": [str(uuid.uuid4())]}]}
    assert error(graph.call("PATCH", path, {"api": unknown})) == (400, "Request_BadRequest")


def test_unique_name_is_immutable(graph):
    created = graph.app()
    changed = graph.call("PATCH", f"applications/{created['id']}", {"uniqueName": "other"})
    assert error(changed) == (400, "Request_BadRequest")
    assert graph.call("PATCH", f"applications/{created['id']}", {"uniqueName": "mlflow-aca-demo"}).status_code == 204


# -- service principals ------------------------------------------------------------------------------
def test_one_service_principal_per_application(graph):
    created = graph.app()
    sp = graph.sp(created["appId"], appRoleAssignmentRequired=True, tags=["mlflow-aca"])
    assert uuid.UUID(sp["id"]) and sp["appId"] == created["appId"] and sp["appRoleAssignmentRequired"] is True
    again = graph.call("POST", "servicePrincipals", {"appId": created["appId"]})
    assert error(again) == (409, "Request_MultipleObjectsWithSameKeyValue")
    unknown = graph.call("POST", "servicePrincipals", {"appId": str(uuid.uuid4())})
    assert error(unknown) == (400, "Request_BadRequest")
    assert graph.call("GET", f"servicePrincipals(appId='{created['appId']}')").json()["id"] == sp["id"]
    assert graph.call("PATCH", f"servicePrincipals/{sp['id']}", {"appRoleAssignmentRequired": False}).status_code == 204
    assert graph.call("GET", f"servicePrincipals/{sp['id']}").json()["appRoleAssignmentRequired"] is False
    assert error(graph.call("GET", f"servicePrincipals(appId='{uuid.uuid4()}')")) == (404, "Request_ResourceNotFound")


def test_app_role_assignments(graph, standin, identity):
    created = graph.app()
    sp = graph.sp(created["appId"])
    path = f"servicePrincipals/{sp['id']}/appRoleAssignedTo"
    body = {"principalId": identity.principal_id, "resourceId": sp["id"], "appRoleId": DEFAULT_ACCESS}
    made = graph.call("POST", path, body)
    assert made.status_code == 201
    assert made.json()["principalType"] == "ServicePrincipal" and made.json()["resourceId"] == sp["id"]
    assert error(graph.call("POST", path, body)) == (400, "Request_BadRequest")
    assert "already exists" in graph.call("POST", path, body).json()["error"]["message"]
    role = graph.call("POST", path, {**body, "appRoleId": str(uuid.uuid4())})
    assert error(role) == (400, "Request_BadRequest")
    assert "Permission being assigned was not found" in role.json()["error"]["message"]
    nobody = graph.call("POST", path, {**body, "principalId": str(uuid.uuid4())})
    assert error(nobody) == (404, "Request_ResourceNotFound")
    user = standin.add_directory_object("user", "Alice")
    group = standin.add_directory_object("group", "MLflow users", members=[user])
    for principal in (user, group, standin.info()["operator_principal_id"]):
        assert graph.call("POST", path, {**body, "principalId": principal}).status_code == 201
    first = graph.call("GET", path + "?$top=2").json()
    assert len(first["value"]) == 2 and "@odata.nextLink" in first
    rest = graph.call("GET", first["@odata.nextLink"]).json()
    assert len(rest["value"]) == 2 and "@odata.nextLink" not in rest
    types = sorted(a["principalType"] for a in first["value"] + rest["value"])
    assert types == ["Group", "ServicePrincipal", "User", "User"]
    gone = first["value"][0]["id"]
    assert graph.call("DELETE", f"{path}/{gone}").status_code == 204
    assert len(graph.call("GET", path).json()["value"]) == 3
    assert error(graph.call("DELETE", f"{path}/{gone}")) == (404, "Request_ResourceNotFound")


def test_get_by_ids_shows_known_objects_of_the_types_asked(graph, standin, identity):
    user = standin.add_directory_object("user", "Bob")
    group = standin.add_directory_object("group", "Team", members=[user, identity.principal_id])
    operator = standin.info()["operator_principal_id"]
    ids = [user, group, identity.principal_id, operator, str(uuid.uuid4())]
    answer = graph.call("POST", "directoryObjects/getByIds", {"ids": ids, "types": ["user", "group",
                                                                                     "servicePrincipal"]}).json()
    found = {o["id"]: o for o in answer["value"]}
    assert set(found) == {user, group, identity.principal_id, operator}
    assert found[user]["@odata.type"] == "#microsoft.graph.user"
    assert found[operator]["@odata.type"] == "#microsoft.graph.user"
    assert found[group]["@odata.type"] == "#microsoft.graph.group"
    managed = found[identity.principal_id]
    assert managed["@odata.type"] == "#microsoft.graph.servicePrincipal"
    assert (managed["servicePrincipalType"], managed["appId"]) == ("ManagedIdentity", identity.client_id)
    only_users = graph.call("POST", "directoryObjects/getByIds", {"ids": ids, "types": ["user"]}).json()
    assert {o["id"] for o in only_users["value"]} == {user, operator}


# -- permissions -------------------------------------------------------------------------------------
def test_application_registration_can_be_denied(graph, standin):
    standin.deny_app_registration()
    refused = graph.upsert("mlflow-aca-demo", {"displayName": "x"})
    assert error(refused) == (403, "Authorization_RequestDenied")
    assert refused.json()["error"]["message"] == "Insufficient privileges to complete the operation."
    assert error(graph.call("POST", "applications", {"displayName": "x"})) == (403, "Authorization_RequestDenied")
    standin.deny_app_registration(False)
    assert graph.call("POST", "applications", {"displayName": "x"}).status_code == 201


def test_only_owners_write(graph, standin, identity):
    created = graph.app()
    sp = graph.sp(created["appId"])
    other = GraphClient(standin, client_id=identity.client_id)
    assert other.call("GET", f"applications/{created['id']}").status_code == 200
    for method, path, body in (("PATCH", f"applications/{created['id']}", {"notes": "x"}),
                               ("PATCH", f"servicePrincipals/{sp['id']}", {"appRoleAssignmentRequired": True}),
                               ("POST", f"servicePrincipals/{sp['id']}/appRoleAssignedTo",
                                {"principalId": identity.principal_id, "resourceId": sp["id"],
                                 "appRoleId": DEFAULT_ACCESS}),
                               ("DELETE", f"applications/{created['id']}", None)):
        assert error(other.call(method, path, body)) == (403, "Authorization_RequestDenied")
    owned = [o for o in standin.graph_objects("application") if o["id"] == created["id"]]
    assert owned[0]["owners"] == [standin.info()["operator_principal_id"]]


def test_an_administrators_application_is_not_the_operators(graph, standin):
    made = standin.register_application("Admin app", identifier_uris=["api://{appId}"], redirect_uris=[CALLBACK])
    app = graph.call("GET", f"applications(appId='{made['appId']}')").json()
    assert app["identifierUris"] == [f"api://{made['appId']}"] and app["web"]["redirectUris"] == [CALLBACK]
    assert error(graph.call("PATCH", f"applications/{made['id']}", {"notes": "x"})) == (403, "Authorization_RequestDenied")
    assign = graph.call("POST", f"servicePrincipals/{made['servicePrincipalId']}/appRoleAssignedTo", {
        "principalId": standin.info()["operator_principal_id"], "resourceId": made["servicePrincipalId"],
        "appRoleId": DEFAULT_ACCESS})
    assert error(assign) == (403, "Authorization_RequestDenied")


def test_directory_objects_and_reset(standin):
    user = standin.add_directory_object("user", "Carol")
    group = standin.add_directory_object("group", "G", members=[user])
    assert {o["id"] for o in standin.graph_objects("group")} == {group}
    assert standin.graph_objects("group")[0]["members"] == [user]
    with pytest.raises(ValueError):
        standin.add_directory_object("group", "bad", members=[str(uuid.uuid4())])
    standin.reset()
    assert [o["id"] for o in standin.graph_objects("user")] == [standin.info()["operator_principal_id"]]
    assert standin.graph_objects("group") == []


# -- tokens for an application's scope ---------------------------------------------------------------
def _resource_app(graph, standin, **body):
    created = graph.app(**body)
    graph.call("PATCH", f"applications/{created['id']}", {"identifierUris": [f"api://{created['appId']}"]})
    return created


def test_unknown_resources_are_refused_with_aadsts500011(standin, graph):
    for resource in ("api://" + str(uuid.uuid4()), "https://managements.azure.example"):
        answer = msi(standin, resource)
        assert answer.status_code == 400 and answer.json()["message"].startswith("AADSTS500011: ")
        assert answer.json()["statusCode"] == 400
    created = _resource_app(graph, standin)   # an application without a service principal
    assert msi(standin, f"api://{created['appId']}").json()["message"].startswith("AADSTS500011: ")


@pytest.mark.parametrize("resource", [
    "https://management.core.windows.net/", "https://management.azure.com/", "https://database.windows.net/",
    "https://storage.azure.com/", "https://containerregistry.azure.net", "https://graph.microsoft.com/",
    "https://stmlflow01.blob.core.windows.net/", "https://vault.azure.net",
])
def test_microsofts_services_keep_their_tokens(standin, resource):
    answer = msi(standin, resource)
    assert answer.status_code == 200 and claims_of(answer.json()["access_token"])["aud"] == resource


def test_token_for_an_application_scope(standin, graph, identity):
    created = _resource_app(graph, standin, groupMembershipClaims="SecurityGroup")
    graph.sp(created["appId"])
    group = standin.add_directory_object("group", "G", members=[identity.principal_id])
    standin.set_token_lifetime(120)
    for resource in (f"api://{created['appId']}", created["appId"]):
        answer = msi(standin, resource, identity.client_id)
        assert answer.status_code == 200, answer.text
        claims = claims_of(answer.json()["access_token"])
        assert claims["aud"] == resource and claims["iss"] == f"https://sts.windows.net/{standin.tenant_id}/"
        assert (claims["oid"], claims["appid"], claims["tid"]) == (identity.principal_id, identity.client_id,
                                                                   standin.tenant_id)
        assert claims["groups"] == [group] and claims["exp"] - claims["iat"] == 120
    assert "groups" not in claims_of(msi(standin, f"api://{created['appId']}").json()["access_token"])


def test_assignment_required_refuses_unassigned_clients_with_aadsts501051(standin, graph, identity):
    created = _resource_app(graph, standin)
    sp = graph.sp(created["appId"], appRoleAssignmentRequired=True)
    resource = f"api://{created['appId']}"
    refused = msi(standin, resource, identity.client_id)
    assert refused.status_code == 400 and refused.json()["message"].startswith("AADSTS501051: ")
    plain = standin.identity_http()   # the Container Apps listener applies the same rules
    over_http = requests.get(plain, params={"api-version": "2019-08-01", "resource": resource,
                                            "client_id": identity.client_id},
                             headers={"X-IDENTITY-HEADER": standin.app.tokens.identity_header}, timeout=10)
    assert over_http.status_code == 400 and "AADSTS501051" in over_http.json()["message"]
    group = standin.add_directory_object("group", "Allowed", members=[identity.principal_id])
    path = f"servicePrincipals/{sp['id']}/appRoleAssignedTo"
    assert graph.call("POST", path, {"principalId": group, "resourceId": sp["id"],
                                     "appRoleId": DEFAULT_ACCESS}).status_code == 201
    assert msi(standin, resource, identity.client_id).status_code == 200
    assert msi(standin, resource).status_code == 400   # the operator is not assigned
    assert graph.call("POST", path, {"principalId": standin.info()["operator_principal_id"],
                                     "resourceId": sp["id"], "appRoleId": DEFAULT_ACCESS}).status_code == 201
    assert msi(standin, resource).status_code == 200


def test_nested_groups_do_not_carry_assignments(standin, graph, identity):
    created = _resource_app(graph, standin)
    sp = graph.sp(created["appId"], appRoleAssignmentRequired=True)
    inner = standin.add_directory_object("group", "Inner", members=[identity.principal_id])
    outer = standin.add_directory_object("group", "Outer", members=[inner])
    graph.call("POST", f"servicePrincipals/{sp['id']}/appRoleAssignedTo",
               {"principalId": outer, "resourceId": sp["id"], "appRoleId": DEFAULT_ACCESS})
    assert msi(standin, f"api://{created['appId']}", identity.client_id).status_code == 400


# -- sign-in (OpenID Connect implicit flow) ----------------------------------------------------------
def authorize(standin, client_id: str, redirect_uri: str = CALLBACK, tenant: str | None = None, **extra):
    params = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "id_token",
              "response_mode": "form_post", "scope": "openid profile email", "nonce": "n-123", "state": "s-456",
              **extra}
    return requests.get(f"{standin.url}/{tenant or standin.tenant_id}/oauth2/v2.0/authorize", params=params,
                        verify=standin.ca_path, timeout=10)


def form_fields(page: str) -> tuple[str, dict]:
    action = html.unescape(re.search(r'<form method="POST"[^>]*action="([^"]+)"', page).group(1))
    fields = {m.group(1): html.unescape(m.group(2))
              for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)}
    return action, fields


def _signin_app(graph, standin, *, id_tokens=True, assignment=False, **body):
    created = graph.app(web={"redirectUris": [CALLBACK], "implicitGrantSettings": {"enableIdTokenIssuance": id_tokens}},
                        **body)
    sp = graph.sp(created["appId"], appRoleAssignmentRequired=assignment)
    return created, sp


def test_sign_in_posts_an_id_token_to_the_redirect_uri(standin, graph):
    created, _ = _signin_app(graph, standin, groupMembershipClaims="All")
    group = standin.add_directory_object("group", "G", members=[standin.info()["operator_principal_id"]])
    answer = authorize(standin, created["appId"])
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/html")
    action, fields = form_fields(answer.text)
    assert action == CALLBACK and fields["state"] == "s-456"
    claims = standin.app.tokens.verify(fields["id_token"])
    assert claims is not None
    assert (claims["aud"], claims["iss"], claims["tid"], claims["ver"], claims["nonce"]) == (
        created["appId"], f"{standin.url}/{standin.tenant_id}/v2.0", standin.tenant_id, "2.0", "n-123")
    assert claims["oid"] == standin.info()["operator_principal_id"] and claims["groups"] == [group]
    assert claims["preferred_username"].startswith("operator@") and claims["name"]
    assert claims["nbf"] <= claims["iat"] < claims["exp"] and claims["sub"] != claims["oid"]


@pytest.mark.parametrize("case, code", [
    ("unknown_client", "AADSTS700016"), ("no_service_principal", "AADSTS700016"),
    ("redirect_mismatch", "AADSTS50011"), ("wrong_tenant", "AADSTS90002"),
])
def test_sign_in_refusals_show_entras_error_page(standin, graph, case, code):
    created, _ = _signin_app(graph, standin)
    bare = graph.app("no-sp", web={"redirectUris": [CALLBACK], "implicitGrantSettings": {"enableIdTokenIssuance": True}})
    answer = {"unknown_client": lambda: authorize(standin, str(uuid.uuid4())),
              "no_service_principal": lambda: authorize(standin, bare["appId"]),
              "redirect_mismatch": lambda: authorize(standin, created["appId"], CALLBACK.replace("mlflow", "other")),
              "wrong_tenant": lambda: authorize(standin, created["appId"], tenant=str(uuid.uuid4()))}[case]()
    assert answer.status_code == 400 and answer.headers["Content-Type"].startswith("text/html")
    assert code + ":" in html.unescape(answer.text) and "id_token" not in answer.text


def test_sign_in_without_id_token_issuance_posts_aadsts700054_back(standin, graph):
    created, _ = _signin_app(graph, standin, id_tokens=False)
    action, fields = form_fields(authorize(standin, created["appId"]).text)
    assert action == CALLBACK and "id_token" not in fields and fields["state"] == "s-456"
    assert fields["error_description"].startswith("AADSTS700054: ")


def test_assignment_required_blocks_unassigned_users_with_aadsts50105(standin, graph):
    created, sp = _signin_app(graph, standin, assignment=True)
    refused = authorize(standin, created["appId"])
    assert refused.status_code == 400 and "AADSTS50105:" in html.unescape(refused.text)
    alice = standin.add_directory_object("user", "Alice")
    team = standin.add_directory_object("group", "Team", members=[alice])
    graph.call("POST", f"servicePrincipals/{sp['id']}/appRoleAssignedTo",
               {"principalId": team, "resourceId": sp["id"], "appRoleId": DEFAULT_ACCESS})
    standin.set_browser_user(alice)
    _, fields = form_fields(authorize(standin, created["appId"]).text)
    assert standin.app.tokens.verify(fields["id_token"])["oid"] == alice
    standin.set_browser_user(None)
    assert authorize(standin, created["appId"]).status_code == 400
    with pytest.raises(ValueError):
        standin.set_browser_user(str(uuid.uuid4()))
