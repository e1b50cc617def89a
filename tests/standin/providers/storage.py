"""Microsoft.Storage: storage accounts (globally unique names), blob service properties and
blob containers (management plane)."""

from __future__ import annotations

import base64
import re
import secrets
from typing import TYPE_CHECKING

from ..arm import Request, Response, bad_request, conflict
from ..resources import (
    RG_PREFIX,
    PutContext,
    ResourceKind,
    check_enum,
    name_availability,
    register_kind,
    resource_not_found,
)
from ..store import Resource, now_iso

if TYPE_CHECKING:
    from ..app import StandinApp

NAMESPACE = "Microsoft.Storage"
ACCOUNT_TYPE = "Microsoft.Storage/storageAccounts"
VERSIONS = frozenset({"2019-06-01", "2021-04-01", "2021-09-01", "2022-05-01", "2022-09-01", "2023-01-01",
                      "2023-04-01", "2023-05-01", "2024-01-01", "2025-01-01", "2025-06-01", "2026-09-01"})
SKUS = ["Standard_LRS", "Standard_GRS", "Standard_RAGRS", "Standard_ZRS", "Premium_LRS", "Premium_ZRS",
        "Standard_GZRS", "Standard_RAGZRS"]
KINDS = ["Storage", "StorageV2", "BlobStorage", "FileStorage", "BlockBlobStorage"]
TLS_VERSIONS = ["TLS1_0", "TLS1_1", "TLS1_2", "TLS1_3"]
_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def account_name_problem(name: str) -> str | None:
    if not _ACCOUNT_NAME.match(name):
        return (f"{name} is not a valid storage account name. Storage account name must be between 3 and 24 "
                "characters in length and use numbers and lower-case letters only.")
    return None


def taken(app: "StandinApp", name: str, except_id: str = "") -> bool:
    if name.lower() in app.store.taken_elsewhere.get("storage", set()):
        return True
    return any(r.doc["name"].lower() == name.lower() and r.id.lower() != except_id.lower()
               for r in app.store.of_type(ACCOUNT_TYPE))


class StorageAccounts(ResourceKind):
    namespace = NAMESPACE
    path = "storageAccounts/{name}"
    versions = VERSIONS
    put_lro = "location"      # a create answers 202 + Location and no body; an update answers 200
    sync_update = True
    lro_state = "Creating"
    latency_key = "storageAccounts"

    def validate_name(self, name: str) -> None:
        problem = account_name_problem(name)
        if problem:
            raise bad_request("AccountNameInvalid", problem)

    def build(self, ctx: PutContext) -> dict:
        if ctx.existing is None and taken(ctx.app, ctx.name):
            mine = any(r.doc["name"].lower() == ctx.name.lower() for r in ctx.app.store.of_type(ACCOUNT_TYPE))
            if mine:
                raise conflict("StorageAccountAlreadyExists",
                               f"The storage account named {ctx.name} already exists under the subscription.")
            raise conflict("StorageAccountAlreadyTaken", f"The storage account named {ctx.name} is already taken.")
        body, props, old = ctx.body, ctx.properties, ctx.old_properties
        sku = body.get("sku")
        if not isinstance(sku, dict) or not sku.get("name"):
            raise bad_request("MissingRequiredProperty" if not sku else "InvalidRequestPropertyValue",
                              "The required property 'sku.name' is missing from the request.")
        sku_name = check_enum(sku["name"], SKUS, "sku.name", code="InvalidRequestPropertyValue")
        kind = check_enum(body.get("kind"), KINDS, "kind", code="InvalidRequestPropertyValue")
        if kind is None:
            raise bad_request("MissingRequiredProperty", "The required property 'kind' is missing from the request.")
        if ctx.existing is not None:
            old_kind = ctx.existing.doc["kind"]
            if kind != old_kind and not (old_kind in ("Storage", "BlobStorage") and kind == "StorageV2"):
                raise conflict("InvalidAccountKindUpgrade",
                               f"Storage account kind cannot be changed from '{old_kind}' to '{kind}'.")
            old_tier = ctx.existing.doc["sku"]["name"].split("_")[0]
            if sku_name.split("_")[0] != old_tier:
                raise conflict("InvalidSkuTierChange",
                               f"The sku tier of the storage account cannot be changed from '{old_tier}' to "
                               f"'{sku_name.split('_')[0]}'.")
        tls = check_enum(props.get("minimumTlsVersion", old.get("minimumTlsVersion", "TLS1_0")), TLS_VERSIONS,
                         "properties.minimumTlsVersion", code="InvalidRequestPropertyValue")
        for flag in ("supportsHttpsTrafficOnly", "allowBlobPublicAccess", "allowSharedKeyAccess", "isHnsEnabled"):
            if flag in props and not isinstance(props[flag], bool):
                raise bad_request("InvalidRequestPropertyValue", f"The value of 'properties.{flag}' must be a boolean.")
        if ctx.existing is None:
            ctx.secrets = {"key1": _key(), "key2": _key()}
            ctx.on_success.append(lambda: _default_blob_service(ctx.app, ctx.id))
        suffix = "core.windows.net"
        endpoints = {svc: f"https://{ctx.name}.{svc}.{suffix}/" for svc in ("blob", "queue", "table", "file", "dfs", "web")}
        merged = {**old, **{k: v for k, v in props.items() if k != "provisioningState"}}
        merged.update({"minimumTlsVersion": tls,
                       "supportsHttpsTrafficOnly": props.get("supportsHttpsTrafficOnly",
                                                             old.get("supportsHttpsTrafficOnly", True)),
                       "allowBlobPublicAccess": props.get("allowBlobPublicAccess", old.get("allowBlobPublicAccess", False)),
                       "allowSharedKeyAccess": props.get("allowSharedKeyAccess", old.get("allowSharedKeyAccess", True)),
                       "creationTime": old.get("creationTime") or now_iso(), "primaryEndpoints": endpoints,
                       "primaryLocation": ctx.location.replace(" ", "").lower(), "statusOfPrimary": "available"})
        return {"sku": {"name": sku_name, "tier": sku_name.split("_")[0]}, "kind": kind, "properties": merged}


class BlobServices(ResourceKind):
    namespace = NAMESPACE
    path = "storageAccounts/{accountName}/blobServices/{name}"
    versions = VERSIONS
    tracked = False
    put_lro = None
    has_provisioning_state = False

    def validate_name(self, name: str) -> None:
        if name != "default":
            raise bad_request("InvalidResourceName", "The blob service name must be 'default'.")

    def build(self, ctx: PutContext) -> dict:
        props = {**ctx.old_properties, **ctx.properties}
        for key in ("deleteRetentionPolicy", "containerDeleteRetentionPolicy"):
            policy = props.get(key)
            if not policy:
                continue
            if policy.get("enabled") and not (isinstance(policy.get("days"), int) and 1 <= policy["days"] <= 365):
                raise bad_request("InvalidRequestPropertyValue",
                                  f"The value of 'properties.{key}.days' must be between 1 and 365 when the policy "
                                  "is enabled.")
        return {"properties": props}


class BlobContainers(ResourceKind):
    namespace = NAMESPACE
    path = "storageAccounts/{accountName}/blobServices/default/containers/{name}"
    versions = VERSIONS
    tracked = False
    put_lro = None
    latency_key = "blobContainers"
    has_provisioning_state = False

    def parent_id(self, rid: str) -> str | None:
        # the account: containers exist whether or not blobServices/default was ever written
        return rid.rsplit("/", 4)[0]

    def validate_name(self, name: str) -> None:
        if not _CONTAINER_NAME.match(name):
            raise bad_request("ContainerOperationFailure",
                              f"The specified resource name '{name}' contains invalid characters: container names "
                              "are 3 to 63 lower-case letters, digits and single hyphens, starting and ending "
                              "with a letter or digit.")

    def build(self, ctx: PutContext) -> dict:
        props = ctx.properties
        access = check_enum(props.get("publicAccess", "None"), ["None", "Container", "Blob"],
                            "properties.publicAccess", code="InvalidRequestPropertyValue")
        if access != "None" and not ctx.parent.properties.get("allowBlobPublicAccess", False):
            raise conflict("PublicAccessNotPermitted", "Public access is not permitted on this storage account.")
        out = {**ctx.old_properties, **props, "publicAccess": access,
               "lastModifiedTime": now_iso(), "leaseStatus": "Unlocked", "leaseState": "Available",
               "hasImmutabilityPolicy": False, "hasLegalHold": False, "deleted": False, "remainingRetentionDays": 0}
        return {"properties": out}


def _default_blob_service(app: "StandinApp", account_id: str) -> None:
    # Every account has blobServices/default from the start, with soft delete off.
    rid = account_id + "/blobServices/default"
    if app.store.get(rid) is None:
        app.store.put(Resource(rid, "Microsoft.Storage/storageAccounts/blobServices", {
            "id": rid, "name": "default", "type": "Microsoft.Storage/storageAccounts/blobServices",
            "properties": {"deleteRetentionPolicy": {"enabled": False},
                           "containerDeleteRetentionPolicy": {"enabled": False}, "cors": {"corsRules": []}}}))


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(64)).decode()


def register(app: "StandinApp") -> None:
    accounts = StorageAccounts()
    for kind in (accounts, BlobServices(), BlobContainers()):
        register_kind(app, kind)
    add = app.router.add
    opts = dict(versions=VERSIONS, namespace=NAMESPACE, type_name="storageAccounts")
    add("POST", "/subscriptions/{subscriptionId}/providers/Microsoft.Storage/checkNameAvailability",
        lambda r: check_name(app, r), **opts)
    add("POST", RG_PREFIX + "/providers/Microsoft.Storage/storageAccounts/{name}/listKeys",
        lambda r: list_keys(app, accounts, r), **opts)


def check_name(app: "StandinApp", req: Request) -> Response:
    return name_availability(app, req, resource_type=ACCOUNT_TYPE, type_error_code="InvalidRequestPropertyValue",
                             problem=account_name_problem, invalid_reason="AccountNameInvalid",
                             taken=lambda n: taken(app, n),
                             taken_message="The storage account named {name} is already taken.")


def list_keys(app: "StandinApp", kind: StorageAccounts, req: Request) -> Response:
    res = app.store.get(kind.resource_id(app, req.params, app.require_scope(req)))
    if res is None:
        raise resource_not_found(kind, req.params["name"], req)
    return Response(200, {"keys": [{"keyName": name, "value": value, "permissions": "FULL",
                                    "creationTime": res.properties["creationTime"]}
                                   for name, value in sorted(res.secrets.items())]})
