"""A credential that is configured and refused is reported as what failed (issue 13 item 1): the
credential DefaultAzureCredential stopped at and Entra's AADSTS error, with a hint for that error,
never the secret. The real credential classes sign in against the stand-in's Entra token endpoint
(tests/standin/entra/clientcreds.py); only a chain with nothing configured is "no credential"."""

from __future__ import annotations

import uuid

NO_IDENTITY = {"IDENTITY_ENDPOINT": "", "IDENTITY_HEADER": ""}


def _service_principal_env(sp: dict, **changes: str) -> dict[str, str]:
    return {"AZURE_CLIENT_ID": sp["client_id"], "AZURE_TENANT_ID": sp["tenant_id"],
            "AZURE_CLIENT_SECRET": sp["secret"], **changes}


def _token_posts(deployment) -> list[dict]:
    return [r for r in deployment.requests(method="POST") if r["path"].endswith("/oauth2/v2.0/token")]


def test_a_wrong_client_secret_names_the_credential_and_entras_error(deployment):
    sp = deployment.standin.add_service_principal("ci")
    wrong = "Wr0ng~" + sp["secret"][::-1]
    env = _service_principal_env(sp, AZURE_CLIENT_SECRET=wrong)
    result = deployment.cli("plan", env=env)
    assert result.code == 1, result
    assert "AuthenticationFailed" in result.stderr and "CredentialUnavailable" not in result.stderr, result
    assert "EnvironmentCredential" in result.stderr and "AADSTS7000215" in result.stderr, result
    assert "Invalid client secret provided." in result.stderr and "AZURE_CLIENT_SECRET" in result.stderr, result
    as_json = deployment.cli("plan", "--json", env=env)
    assert as_json.code == 1 and as_json.json["error"]["code"] == "AuthenticationFailed", as_json
    assert "AADSTS7000215" in as_json.json["error"]["message"], as_json
    for shown in (result.stdout, result.stderr, as_json.stdout, as_json.stderr):
        assert wrong not in shown and sp["secret"] not in shown
    assert {r["status"] for r in _token_posts(deployment)} == {401}   # Entra refused it each time


def test_an_unknown_client_id_says_the_app_id_or_tenant_is_wrong(deployment):
    sp = deployment.standin.add_service_principal("ci")
    result = deployment.cli("plan", "--json", env=_service_principal_env(sp, AZURE_CLIENT_ID=str(uuid.uuid4())))
    assert result.code == 1, result
    error = result.json["error"]
    assert error["code"] == "AuthenticationFailed" and "EnvironmentCredential" in error["message"], error
    assert "AADSTS700016" in error["message"] and "was not found in the directory" in error["message"], error
    assert "application id or the tenant is wrong" in error["hint"], error
    assert sp["secret"] not in result.output


def test_the_right_secret_gets_past_sign_in(deployment):
    sp = deployment.standin.add_service_principal("ci")
    result = deployment.cli("plan", env={**_service_principal_env(sp), **NO_IDENTITY})
    assert "AuthenticationFailed" not in result.output and "CredentialUnavailable" not in result.output, result
    assert {r["status"] for r in _token_posts(deployment)} == {200}, deployment.requests()
    assert any(r["path"].startswith("/subscriptions/") for r in deployment.requests()), deployment.requests()
    assert sp["secret"] not in result.output


def test_nothing_configured_is_still_no_credential(deployment):
    result = deployment.cli("plan", "--json", env=NO_IDENTITY)
    assert result.code == 1, result
    assert result.json["error"]["code"] == "CredentialUnavailable", result
    assert "az login" in result.json["error"]["hint"] and _token_posts(deployment) == []
