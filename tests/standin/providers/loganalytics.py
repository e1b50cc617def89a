"""Microsoft.OperationalInsights: Log Analytics workspaces and their shared keys."""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from typing import TYPE_CHECKING

from ..arm import Request, Response, bad_request
from ..resources import RG_PREFIX, PutContext, ResourceKind, check_enum, register_kind, resource_not_found
from ..store import now_iso

if TYPE_CHECKING:
    from ..app import StandinApp

WORKSPACE_TYPE = "Microsoft.OperationalInsights/workspaces"
SKUS = ["Free", "Standard", "Premium", "PerNode", "PerGB2018", "Standalone", "CapacityReservation", "LACluster"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]$")


class Workspaces(ResourceKind):
    namespace = "Microsoft.OperationalInsights"
    path = "workspaces/{name}"
    versions = frozenset({"2015-11-01-preview", "2020-03-01-preview", "2020-08-01", "2020-10-01",
                          "2021-06-01", "2021-12-01-preview", "2022-10-01", "2023-09-01", "2025-02-01",
                          "2025-07-01"})
    lro_state = "Creating"
    latency_key = "workspaces"

    def validate_name(self, name: str) -> None:
        if not _NAME.match(name):
            raise bad_request("InvalidParameter",
                              f"Workspace name '{name}' is invalid. It must be 4 to 63 characters of letters, "
                              "digits and '-', and start and end with a letter or digit.")

    def build(self, ctx: PutContext) -> dict:
        props = ctx.properties
        old = ctx.old_properties
        sku = props.get("sku") or old.get("sku") or {"name": "PerGB2018"}
        sku_name = check_enum(sku.get("name"), SKUS, "properties.sku.name", code="InvalidParameter")
        retention = props.get("retentionInDays", old.get("retentionInDays", 30))
        low = 7 if sku_name == "Free" else 30
        if not isinstance(retention, int) or not low <= retention <= 730:
            raise bad_request("InvalidParameter",
                              f"Retention period '{retention}' is invalid for SKU '{sku_name}': it must be "
                              f"between {low} and 730 days.")
        if ctx.existing is None:
            # Shared keys are created with the workspace and never shown by GET.
            ctx.secrets = {"primarySharedKey": _key(), "secondarySharedKey": _key()}
        out = {k: v for k, v in props.items() if k not in ("provisioningState", "customerId", "createdDate")}
        out.update({"sku": {**sku, "name": sku_name}, "retentionInDays": retention,
                    "customerId": old.get("customerId") or str(uuid.uuid4()),
                    "createdDate": old.get("createdDate") or now_iso(), "modifiedDate": now_iso(),
                    "publicNetworkAccessForIngestion": props.get("publicNetworkAccessForIngestion", "Enabled"),
                    "publicNetworkAccessForQuery": props.get("publicNetworkAccessForQuery", "Enabled")})
        return {"properties": out}


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(64)).decode()


def register(app: "StandinApp") -> None:
    kind = Workspaces()
    register_kind(app, kind)
    app.router.add("POST", RG_PREFIX + "/providers/Microsoft.OperationalInsights/workspaces/{name}/sharedKeys",
                   lambda r: shared_keys(app, kind, r), versions=kind.versions, namespace=kind.namespace,
                   type_name="workspaces")


def shared_keys(app: "StandinApp", kind: Workspaces, req: Request) -> Response:
    app.require_scope(req)
    res = app.store.get(kind.resource_id(app, req.params, app.require_scope(req)))
    if res is None:
        raise resource_not_found(kind, req.params["name"], req)
    return Response(200, dict(res.secrets))


def find_by_customer_id(app: "StandinApp", customer_id: str):
    for res in app.store.of_type(WORKSPACE_TYPE):
        if res.properties.get("customerId", "").lower() == str(customer_id).lower():
            return res
    return None
