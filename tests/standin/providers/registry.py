"""Microsoft.ContainerRegistry: registries (globally unique names, login server).

`Registries` is the ARM resource. Its data plane lives elsewhere: the login server's token
exchange and `/v2/` (registry_front.py: while a real registry is attached, every registry's
`loginServer` is that front's `127.0.0.1:<port>` instead of `<name>.azurecr.io`) and ACR Tasks
runs (tasks.py).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..arm import Request, Response, bad_request, conflict
from ..metadata import SUFFIXES
from ..resources import PutContext, ResourceKind, check_enum, name_availability, register_kind
from ..store import now_iso
from .msi import resolve_identity

if TYPE_CHECKING:
    from ..app import StandinApp

NAMESPACE = "Microsoft.ContainerRegistry"
REGISTRY_TYPE = "Microsoft.ContainerRegistry/registries"
VERSIONS = frozenset({"2019-05-01", "2021-09-01", "2022-12-01", "2023-01-01-preview", "2023-07-01",
                      "2023-11-01-preview", "2024-11-01-preview", "2025-04-01", "2025-11-01"})
SKUS = ["Basic", "Standard", "Premium"]
ROLE_ASSIGNMENT_MODES = ["AbacRepositoryPermissions", "LegacyRegistryPermissions"]
_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")


def login_server(name: str, app: "StandinApp | None" = None) -> str:
    """`<name>.azurecr.io`, or the registry front's address while a real registry is attached."""
    if app is not None and app.registry_front is not None and app.store.registry_backend:
        return app.registry_front.login_server
    return f"{name.lower()}.{SUFFIXES['acrLoginServer']}"


def name_problem(name: str) -> str | None:
    if not _NAME.match(name):
        return "Registry names may contain only alpha numeric characters and must be between 5 and 50 characters."
    return None


def taken(app: "StandinApp", name: str) -> bool:
    return (name.lower() in app.store.taken_elsewhere.get("registry", set())
            or any(r.doc["name"].lower() == name.lower() for r in app.store.of_type(REGISTRY_TYPE)))


class Registries(ResourceKind):
    namespace = NAMESPACE
    path = "registries/{name}"
    versions = VERSIONS
    lro_state = "Creating"
    latency_key = "registries"
    delete_lro = True

    def validate_name(self, name: str) -> None:
        problem = name_problem(name)
        if problem:
            raise bad_request("InvalidResourceName", problem)

    def build(self, ctx: PutContext) -> dict:
        if ctx.existing is None and taken(ctx.app, ctx.name):
            raise conflict("AlreadyInUse",
                           f"The registry DNS name {login_server(ctx.name)} is already in use. You can check if "
                           "the name is already claimed using following API: https://docs.microsoft.com/en-us/"
                           "rest/api/containerregistry/registries/checknameavailability")
        sku = ctx.body.get("sku")
        if not isinstance(sku, dict) or not sku.get("name"):
            raise bad_request("MissingRequiredProperty", "The required property 'sku.name' is missing from the request.")
        sku_name = check_enum(sku["name"], SKUS, "sku.name", code="InvalidSku")
        props, old = ctx.properties, ctx.old_properties
        admin = props.get("adminUserEnabled", old.get("adminUserEnabled", False))
        if not isinstance(admin, bool):
            raise bad_request("InvalidParameterValue", "The value of 'properties.adminUserEnabled' must be a boolean.")
        mode = check_enum(props.get("roleAssignmentMode", old.get("roleAssignmentMode", "LegacyRegistryPermissions")),
                          ROLE_ASSIGNMENT_MODES, "properties.roleAssignmentMode")
        identity = resolve_identity(ctx.app, ctx.body.get("identity"), ctx.id)
        out = {**old, **{k: v for k, v in props.items() if k != "provisioningState"}}
        out.update({"loginServer": login_server(ctx.name, ctx.app), "adminUserEnabled": admin, "roleAssignmentMode": mode,
                    "creationDate": old.get("creationDate") or now_iso(),
                    "publicNetworkAccess": props.get("publicNetworkAccess", old.get("publicNetworkAccess", "Enabled")),
                    "status": {"displayStatus": "Succeeded", "timestamp": now_iso()}})
        doc = {"sku": {"name": sku_name, "tier": sku_name}, "properties": out}
        if identity:
            doc["identity"] = identity
        return doc


def register(app: "StandinApp") -> None:
    register_kind(app, Registries())
    app.router.add("POST", "/subscriptions/{subscriptionId}/providers/Microsoft.ContainerRegistry/checkNameAvailability",
                   lambda r: check_name(app, r), versions=VERSIONS, namespace=NAMESPACE, type_name="registries")


def check_name(app: "StandinApp", req: Request) -> Response:
    return name_availability(app, req, resource_type=REGISTRY_TYPE, type_error_code="InvalidParameterValue",
                             problem=name_problem, invalid_reason="Invalid", taken=lambda n: taken(app, n),
                             taken_message="The registry name is already in use.")
