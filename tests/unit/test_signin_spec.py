"""The sign-in layer and the app registration, by value: what Azure and Graph receive."""

import uuid

from mlflow_aca.cloud import KNOWN_CLOUDS
from mlflow_aca.config import Settings
from mlflow_aca.resources.base import Context, Pending
from mlflow_aca.resources.signin import (
    CALLBACK_PATH,
    PREAUTHORIZED_CLIENTS,
    AppRegistration,
    auth_config_spec,
    describe_live,
    scope_id,
)
from tests.values import SUBSCRIPTION

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
APP_ID = "11111111-2222-3333-4444-555555555555"
USER, GROUP = str(uuid.uuid4()), str(uuid.uuid4())


def context(**overrides) -> Context:
    settings = Settings(name="mlflow", location="westeurope", subscription_id=SUBSCRIPTION, **overrides)
    ctx = Context(settings=settings, cloud=KNOWN_CLOUDS["AzureCloud"], session=None)
    ctx.publish("environment", {"default_domain": "happy-sky-1234.westeurope.azurecontainerapps.io"})
    ctx.publish("auth_app", {"app_id": APP_ID, "tenant_id": TENANT})
    return ctx


def test_the_layer_redirects_browsers_validates_tokens_for_the_scope_and_spares_the_probes():
    ctx = context()
    ctx.publish("auth_assignments", {"identities": [], "groups": []})
    props = auth_config_spec(ctx)["properties"]
    assert props["platform"] == {"enabled": True}
    assert props["globalValidation"] == {"unauthenticatedClientAction": "RedirectToLoginPage",
                                         "redirectToProvider": "azureactivedirectory", "excludedPaths": ["/health"]}
    aad = props["identityProviders"]["azureActiveDirectory"]
    assert aad["registration"] == {"clientId": APP_ID,
                                   "openIdIssuer": f"https://login.microsoftonline.com/{TENANT}/v2.0"}
    assert "clientSecretSettingName" not in aad["registration"]  # no secret anywhere
    assert aad["validation"] == {"allowedAudiences": [f"api://{APP_ID}", APP_ID],
                                 "defaultAuthorizationPolicy": {"allowedPrincipals": {"identities": [], "groups": []}}}
    assert props["httpSettings"] == {"requireHttps": True}


def test_allowed_principals_are_repeated_in_the_layer_by_kind():
    ctx = context(auth_allowed_principals=[USER, GROUP])
    ctx.publish("auth_assignments", {"identities": [USER], "groups": [GROUP]})
    validation = auth_config_spec(ctx)["properties"]["identityProviders"]["azureActiveDirectory"]["validation"]
    assert validation["defaultAuthorizationPolicy"] == {"allowedPrincipals": {"identities": [USER], "groups": [GROUP]}}


def test_the_registration_signs_browsers_in_without_a_secret_and_preauthorises_the_cli():
    ctx = context()
    body = AppRegistration().desired(ctx, APP_ID)
    assert body["signInAudience"] == "AzureADMyOrg"
    assert body["web"] == {"implicitGrantSettings": {"enableIdTokenIssuance": True}, "redirectUris": [
        f"https://mlflow.happy-sky-1234.westeurope.azurecontainerapps.io{CALLBACK_PATH}"]}
    assert body["identifierUris"] == [f"api://{APP_ID}"]
    (scope,) = body["api"]["oauth2PermissionScopes"]
    assert scope["id"] == scope_id(ctx) == scope_id(context()) and scope["value"] == "user_impersonation"
    assert [p["appId"] for p in body["api"]["preAuthorizedApplications"]] == list(PREAUTHORIZED_CLIENTS)
    assert all(p["delegatedPermissionIds"] == [scope["id"]] for p in body["api"]["preAuthorizedApplications"])
    assert "passwordCredentials" not in body and "keyCredentials" not in body
    assert body["tags"] == ["mlflow-aca", "mlflow-aca-deployment:mlflow"]


def test_before_creation_the_registration_names_neither_its_app_id_nor_an_unknown_domain():
    ctx = context()
    ctx.publish("environment", {"default_domain": Pending("<environment.default_domain>")})
    ctx.dry_run = True
    body = AppRegistration().desired(ctx)
    assert "identifierUris" not in body and "preAuthorizedApplications" not in body["api"]
    assert "redirectUris" not in body["web"]


def test_status_reads_the_live_config():
    ctx = context()
    ctx.publish("auth_assignments", {"identities": [USER], "groups": []})
    live = describe_live(auth_config_spec(ctx))
    assert live == {"enabled": True, "open": False, "client_id": APP_ID, "scope": f"api://{APP_ID}/.default",
                    "unauthenticated": "RedirectToLoginPage", "allowed_identities": 1, "allowed_groups": 0}
    assert describe_live(None) == {"enabled": False, "open": True}
    assert describe_live({"properties": {"platform": {"enabled": False}}})["open"] is True
