"""Microsoft.App/containerApps/{app}/authConfigs/{name}: a container app's built-in
authentication ("Easy Auth") settings, as the REST spec describes them
(azure-rest-api-specs specification/app/resource-manager/Microsoft.App/ContainerApps/stable/
2025-07-01/AuthConfigs.json):

- a ProxyResource (no location or tags), child of the app: PUT is synchronous and answers 200
  (the spec lists only 200, also for a new config), GET 200, DELETE 200 or 204 when absent,
  and a list `{"value": [...]}` under `.../authConfigs`; the app must exist (404 otherwise) and
  the config goes with the app (the store deletes children with their parent);
- the only name is `current`: azure-cli and every spec example use it, nothing documents another
  (unverified; the stand-in refuses others, the stricter reading);
- enums from the spec: globalValidation.unauthenticatedClientAction (RedirectToLoginPage,
  AllowAnonymous, Return401, Return403), httpSettings.forwardProxy.convention,
  login.cookieExpiration.convention;
- azureActiveDirectory.registration.clientId "is required for enabling OpenID Connection
  authentication" (spec); the stand-in refuses an enabled provider without it and an openIdIssuer
  that is not an https URL (error codes unverified);
- clientSecretSettingName must name one of the app's secrets.

Enforcement in front of the app is easyauth.py (via the proxy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..arm import bad_request
from ..resources import PutContext, ResourceKind, check_enum, register_kind
from . import aca_common as common

if TYPE_CHECKING:
    from ..app import StandinApp


class AuthConfigs(ResourceKind):
    namespace = common.NAMESPACE
    path = "containerApps/{containerAppName}/authConfigs/{name}"
    versions = common.VERSIONS
    tracked = False
    put_lro = None
    has_provisioning_state = False
    created_status = 200      # the spec's PUT answers 200 only, also for a new auth config

    def validate_name(self, name: str) -> None:
        if name != "current":
            raise bad_request("InvalidParameterValue", "The auth config name must be 'current'.")

    def build(self, ctx: PutContext) -> dict:
        props = ctx.properties
        validation = props.get("globalValidation") or {}
        check_enum(validation.get("unauthenticatedClientAction"),
                   ["RedirectToLoginPage", "AllowAnonymous", "Return401", "Return403"],
                   "globalValidation.unauthenticatedClientAction")
        paths = validation.get("excludedPaths") or []
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise bad_request("InvalidParameterValue", "globalValidation.excludedPaths must be a list of strings.")
        check_enum(((props.get("httpSettings") or {}).get("forwardProxy") or {}).get("convention"),
                   ["NoProxy", "Standard", "Custom"], "httpSettings.forwardProxy.convention")
        check_enum(((props.get("login") or {}).get("cookieExpiration") or {}).get("convention"),
                   ["FixedTime", "IdentityProviderDerived"], "login.cookieExpiration.convention")
        _check_aad(props)
        ref = auth_secret_ref(props)
        if ref and ref not in {s["name"] for s in ctx.parent.properties["configuration"].get("secrets", [])}:
            raise bad_request("ContainerAppSecretRefNotFound",
                              f"clientSecretSettingName '{ref}' does not name a secret of the container app.")
        return {"properties": props}


def _check_aad(props: dict) -> None:
    aad = (props.get("identityProviders") or {}).get("azureActiveDirectory")
    if not aad or aad.get("enabled") is False:
        return
    registration = aad.get("registration") or {}
    if not registration.get("clientId"):
        raise bad_request("InvalidParameterValue",
                          "identityProviders.azureActiveDirectory.registration.clientId is required when the "
                          "Microsoft identity provider is enabled.")
    issuer = registration.get("openIdIssuer")
    if issuer is not None:
        parts = urlsplit(str(issuer))
        if parts.scheme != "https" or not parts.netloc:
            raise bad_request("InvalidParameterValue",
                              f"identityProviders.azureActiveDirectory.registration.openIdIssuer '{issuer}' must be "
                              "an https URL.")


def auth_secret_ref(props: dict) -> str | None:
    aad = (props.get("identityProviders") or {}).get("azureActiveDirectory") or {}
    return (aad.get("registration") or {}).get("clientSecretSettingName")


def register(app: "StandinApp") -> None:
    register_kind(app, AuthConfigs())
