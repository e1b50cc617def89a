"""The managed-identity endpoint over plain HTTP, as Container Apps provides it (identity_http.py)."""

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from .faults import server_error


def _plain(standin) -> list[dict]:
    """Requests on the plain-HTTP listener (the fixtures' SDK clients use the HTTPS one)."""
    return [r for r in standin.identity_requests() if r["via"] == "http"]


def _get(url: str, header: str | None, **query: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url + "?" + urllib.parse.urlencode(query),
                                     headers={"X-IDENTITY-HEADER": header} if header is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture
def endpoint(standin):
    return standin.identity_http()


def test_serves_tokens_over_plain_http_with_compact_json(standin, group, endpoint):
    assert endpoint.startswith("http://127.0.0.1:") and endpoint.endswith("/msi/token")
    client_id = group.identity.client_id
    status, body = _get(endpoint, standin.app.tokens.identity_header, **{
        "api-version": "2019-08-01", "resource": "https://database.windows.net/", "client_id": client_id})
    assert status == 200
    # ODBC Driver 18 reads only the compact form (notes/odbc-and-sql.md).
    assert body.startswith(b'{"access_token":"') and b'": ' not in body and b", " not in body
    answer = json.loads(body)
    claims = standin.app.tokens.verify(answer["access_token"])
    assert (claims["aud"], claims["appid"], claims["oid"]) == (
        "https://database.windows.net/", client_id, group.identity.principal_id)
    assert (answer["client_id"], answer["resource"], answer["token_type"]) == (
        client_id, "https://database.windows.net/", "Bearer")
    [seen] = _plain(standin)
    assert seen["via"] == "http" and seen["header"] == "right" and seen["status"] == 200
    assert seen["query"] == {"api-version": "2019-08-01", "resource": "https://database.windows.net/",
                             "client_id": client_id}
    assert seen["request_line"].startswith("GET /msi/token?api-version=2019-08-01&resource=")
    assert "access_token" not in json.dumps(seen)


def test_same_listener_for_the_same_address(standin, endpoint):
    assert standin.identity_http() == endpoint
    assert standin.identity_http(url_host="172.17.0.1") == endpoint.replace("127.0.0.1", "172.17.0.1")


@pytest.mark.parametrize("header, expected", [(None, "missing"), ("not-it", "wrong")])
def test_refuses_a_missing_or_wrong_header(standin, group, endpoint, header, expected):
    status, body = _get(endpoint, header, **{"api-version": "2019-08-01", "resource": "https://database.windows.net/",
                                             "client_id": group.identity.client_id})
    assert status == 401 and b"access_token" not in body
    assert [(r["header"], r["status"]) for r in _plain(standin)] == [(expected, 401)]


def test_unknown_client_id_is_400_as_in_azure(standin, group, endpoint):
    # The object (principal) id is not a client id: Azure answers 400, so does the stand-in.
    status, body = _get(endpoint, standin.app.tokens.identity_header, **{
        "api-version": "2019-08-01", "resource": "https://database.windows.net/",
        "client_id": group.identity.principal_id})
    assert status == 400 and b"No User Assigned" in body
    [seen] = _plain(standin)
    assert (seen["status"], seen["client_id"]) == (400, None)


def test_only_the_identity_path_is_served(standin, endpoint):
    status, _ = _get(endpoint.replace("/msi/token", "/subscriptions"), standin.app.tokens.identity_header)
    assert status == 404


def test_faults_and_request_log_apply(standin, group, endpoint):
    standin.add_fault(server_error("^/msi/token", status=503))
    query = {"api-version": "2019-08-01", "resource": "https://database.windows.net/",
             "client_id": group.identity.client_id}
    assert _get(endpoint, standin.app.tokens.identity_header, **query)[0] == 503
    assert _get(endpoint, standin.app.tokens.identity_header, **query)[0] == 200
    assert [e["status"] for e in standin.requests("GET", "/msi/token")][-2:] == [503, 200]


def test_the_https_endpoint_is_recorded_too_and_reset_forgets(standin, standin_env, group):
    from azure.identity import ManagedIdentityCredential
    ManagedIdentityCredential(client_id=group.identity.client_id).get_token("https://database.windows.net/.default")
    assert [r["via"] for r in standin.identity_requests()][-1] == "https"
    standin.reset()
    assert standin.identity_requests() == []
